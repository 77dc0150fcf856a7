-- Security from the attacker's side: what each role, anon and an outsider can read, write and call.
begin;
\ir fixtures/actors.sql
select plan(24);

-- Reads ---------------------------------------------------------------------------------------------
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.components where project_id = %s', :project_a)),
    array['2', '2', '2', '2', '2', '2', '2', '0', '42501'],
    'members read their project''s components; the outsider sees none; anon is refused');

select is(pg_temp.matrix(format('select count(*) from pipetrak_api.project_progress where project_id = %s', :project_a)),
    array['1', '1', '1', '1', '1', '1', '1', '0', '42501'], 'rollups follow the same rule');

-- Every table and view of both schemas, probed by the outsider for rows of organization A.
select is(
    (select array_agg(c.relname::text order by c.relname)
     from pg_class c
     cross join lateral (
         select case
             when exists (select from pg_attribute where attrelid = c.oid and attname = 'project_id') then format('project_id = %s', :project_a)
             when exists (select from pg_attribute where attrelid = c.oid and attname = 'organization_id') then format('organization_id = %s', :org_a)
             when c.relname = 'organizations' then format('id = %s', :org_a)
             when exists (select from pg_attribute where attrelid = c.oid and attname = 'user_id') then format('user_id <> %L', pg_temp.uid('outsider'))
         end as filter) f
     where c.relnamespace in ('pipetrak'::regnamespace, 'pipetrak_api'::regnamespace) and c.relkind in ('r', 'v')
       and f.filter is not null
       and pg_temp.try_as('outsider', format('select count(*) from %s where %s', c.oid::regclass, f.filter)) not in ('0', '42501')),
    null, 'the outsider reads no row of organization A through any table or view');

select ok(pg_temp.try_as('viewer', format('select count(*) from pipetrak.milestone_templates where project_id = %s', :project_a))::int = 14,
    'the same probe sees organization A''s rows as a member (the probe can see)');

-- Writes through the API, per the permission matrix ----------------------------------------------------
select is(pg_temp.matrix(format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Receive'', value => 100)->>''component_id''', :valve_a)),
    array[:'valve_a', :'valve_a', :'valve_a', :'valve_a', :'valve_a', :'valve_a', '42501', 'PT404', '42501'],
    'update_milestone: every role but viewer; the outsider can''t find the component');

select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.assign_welder(component_id => %s, stencil => ''K-12'', date_welded => current_date - 1)', :weld_a))),
    array['ok', 'ok', 'ok', 'ok', 'ok', '42501', '42501', 'PT404', '42501'],
    'assign_welder: owner, admin, project manager, foreman, QC');
-- Welded once for what follows (its "weld completed" review item).
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.assign_welder(component_id => :weld_a, stencil => 'K-12', date_welded => current_date - 1) is not null as welded;
reset role;

select is(pg_temp.matrix(format('select pipetrak_api.resolve_review_item(review_item_id => (select min(id) from pipetrak.review_items where project_id = %s))', :project_a)),
    array['ok', 'ok', 'ok', '42501', 'ok', '42501', '42501', 'PT404', '42501'],
    'resolve_review_item: owner, admin, project manager, QC');

select is(pg_temp.matrix(format('select pipetrak_api.create_drawing(project_id => %s, drawing_no => ''D-%%1$s'') > 0', :project_a)),
    array['true', 'true', 'true', '42501', '42501', '42501', '42501', 'PT404', '42501'],
    'create_drawing: owner, admin, project manager');

select is(pg_temp.matrix(format('select pipetrak_api.reweight_template(project_id => %s, component_type => ''gasket'', weights => ''{"Receive": 10, "Install": 60, "Punch": 10, "Test": 15, "Restore": 5}'')', :project_a)),
    array['0', '0', '0', '42501', '42501', '42501', '42501', 'PT404', '42501'],
    'reweight_template: owner, admin, project manager');

select is(pg_temp.matrix(format('select pipetrak_api.create_project(organization_id => %s, name => ''P'', job_number => ''J-%%1$s'') > 0', :org_a)),
    array['true', 'true', '42501', '42501', '42501', '42501', '42501', 'PT404', '42501'],
    'create_project: owner and admin');

select is(pg_temp.matrix(format('select pipetrak_api.add_member(organization_id => %s, user_id => md5(''%%1$s'')::uuid, role => ''viewer'')', :org_a)),
    array['PT404', 'PT404', '42501', '42501', '42501', '42501', '42501', 'PT404', '42501'],
    'add_member: owner and admin, and only people they already share an organization with (a stranger is not found)');

-- Attacks that broke the predecessor -------------------------------------------------------------------
select is(pg_temp.try_as('viewer', format('update pipetrak.components set earned_total = 1000000, earned_install = 1000000 where id = %s', :valve_a)),
    '42501', 'a viewer can''t change progress by writing the table');

select is(pg_temp.try_as('foreman', format('update pipetrak.components set milestone_values[1] = 100 where id = %s', :valve_a)),
    '42501', 'a foreman can''t bypass the engine by writing the table');

select is(pg_temp.try_as('outsider', format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Receive'', value => 0)', :valve_a)),
    'PT404', 'the outsider can''t update organization A''s milestones');

select is(pg_temp.try_as('outsider', format('select pipetrak_api.create_drawing(project_id => %s, drawing_no => ''X'', area_id => %s)', :project_b, :area_a)),
    'PT404', 'the outsider can''t attach organization A''s area to their own drawing');

select is(pg_temp.try_as('outsider', format('select pipetrak_api.add_member(organization_id => %s, user_id => %L, role => ''owner'')', :org_a, pg_temp.uid('outsider'))),
    'PT404', 'the outsider can''t move themself into organization A');

select is(pg_temp.try_as('foreman', format('select pipetrak_api.add_member(organization_id => %s, user_id => %L, role => ''owner'')', :org_b, pg_temp.uid('foreman'))),
    'PT404', 'a member of A can''t move themself into organization B');

select is(pg_temp.try_as('foreman', format('select pipetrak_api.change_member_role(organization_id => %s, user_id => %L, role => ''owner'')', :org_a, pg_temp.uid('foreman'))),
    '42501', 'a foreman can''t raise their own role');

select is(pg_temp.try_as('admin', format('select pipetrak_api.change_member_role(organization_id => %s, user_id => %L, role => ''owner'')', :org_a, pg_temp.uid('admin'))),
    'PT403', 'an admin can''t raise their own role either');

select is(pg_temp.try_as('admin', format('select pipetrak_api.change_member_role(organization_id => %s, user_id => %L, role => ''viewer'')', :org_a, pg_temp.uid('owner'))),
    'PT403', 'an admin can''t demote an owner');

select is(pg_temp.matrix('delete from pipetrak.milestone_events'),
    array['42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501'],
    'nobody deletes audit events through the API roles');

select throws_ok('update pipetrak.milestone_events set new_value = 0', 'PT403', null,
    'not even the table owner can edit an audit event');

select throws_ok('truncate pipetrak.milestone_events cascade', 'PT403', null, 'or truncate the audit log');

set constraints pipetrak.memberships_last_owner immediate;
select throws_ok(format('delete from pipetrak.memberships where organization_id = %s and role = ''owner''', :org_a),
    'PT409', null, 'an organization never loses its last owner');

select * from finish();
rollback;
