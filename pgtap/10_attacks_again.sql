-- The second round of attacks, each as its actor does it: a removed or demoted admin's invitation,
-- a payload with keys added before a genuine event's, oversized and hostile arguments, writes to an
-- archived project, NDE dated before the weld, a display name that forges activity lines, storage
-- paths that resolve into another project. (The two-session attacks — the snapshot lock, Realtime
-- read across topics — are client tests.)
begin;
\ir fixtures/actors.sql
select plan(17);

-- p_sql as a new user with an email claim: 'ok' or 'SQLSTATE key'.
create function pg_temp.error_as_email(p_user uuid, p_email text, p_sql text) returns text language plpgsql as $$
declare
    v_state text := 'ok';
    v_detail text;
begin
    perform set_config('role', 'authenticated', true);
    perform set_config('request.jwt.claims', json_build_object('sub', p_user, 'role', 'authenticated', 'email', p_email)::text, true);
    begin
        execute p_sql;
    exception when others then
        get stacked diagnostics v_state = returned_sqlstate, v_detail = pg_exception_detail;
        v_state := v_state || ' ' || coalesce(v_detail::jsonb ->> 'code', '');
    end;
    perform set_config('role', 'postgres', true);
    return v_state;
end $$;
grant execute on all functions in schema pg_temp to public;

-- ---- A removed admin does not get back in with an invitation sent before ----
select pg_temp.act_as(pg_temp.uid('admin'));
select pipetrak_api.invite_member(organization_id => :org_a, email => 'back-door@example.com', role => 'admin') ->> 'token' as back_door \gset
select pipetrak_api.invite_member(organization_id => :org_a, email => 'helper@example.com', role => 'viewer') ->> 'token' as helper \gset
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.remove_member(organization_id => :org_a, user_id => pg_temp.uid('admin')) is null as removed;
select is(pg_temp.error_as_email('c0000000-0000-4000-8000-000000000001', 'back-door@example.com',
                                 format('select pipetrak_api.accept_invitation(token => %L)', :'back_door')),
    'PT410 invitation_revoked', 'the removed admin''s invitation is revoked: nobody gets in with it');
reset role;
select is((select count(*)::int from pipetrak.invitations where organization_id = :org_a and revoked_at is not null), 2,
    'removing a member revokes every pending invitation they sent');

-- A demoted one: an admin invites, is made a foreman, and the invitation dies with the standing.
reset role;
insert into pipetrak.memberships (organization_id, user_id, role, created_by)
values (:org_a, 'c0000000-0000-4000-8000-000000000002', 'admin', pg_temp.uid('owner'));
select pg_temp.act_as('c0000000-0000-4000-8000-000000000002');
select pipetrak_api.invite_member(organization_id => :org_a, email => 'late@example.com', role => 'project_manager') ->> 'token' as late \gset
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.change_member_role(organization_id => :org_a, user_id => 'c0000000-0000-4000-8000-000000000002', role => 'foreman') is null as demoted;
select is(pg_temp.error_as_email('c0000000-0000-4000-8000-000000000003', 'late@example.com',
                                 format('select pipetrak_api.accept_invitation(token => %L)', :'late')),
    'PT410 invitation_revoked', 'a demoted admin''s invitation is revoked too');
-- Even one never revoked (written before this rule) is refused on acceptance: standing is read then.
reset role;
update pipetrak.invitations set revoked_at = null, revoked_by = null where lower(email) = 'late@example.com';
select is(pg_temp.error_as_email('c0000000-0000-4000-8000-000000000003', 'late@example.com',
                                 format('select pipetrak_api.accept_invitation(token => %L)', :'late')),
    'PT410 invitation_revoked', 'accepting reads the inviter''s standing at that moment');

-- ---- Events: a signature covers the exact text sent ----
select jsonb_build_object('kind', 'import_progress', 'import_id', 7, 'project_id', :project_a) as event \gset
select pipetrak.signed_payload(s.signing_key, (:'event'::jsonb)::text) as genuine
from pipetrak.project_secrets s where s.project_id = :project_a \gset
select is(pg_temp.try_as('viewer', format('select pipetrak_api.event_is_genuine(%s, %L)', :project_a, :'genuine')),
    'true', 'the payload as sent is genuine');
select is(pg_temp.try_as('viewer', format('select pipetrak_api.event_is_genuine(%s, %L)', :project_a,
        replace(:'genuine', '"event": {', '"event": {"kind": "project_deleted", '))),
    'false', 'a key prefixed to a genuine event (a first-wins parser would act on it) makes it not genuine');
select is(pg_temp.error_of('viewer', format('select pipetrak_api.event_is_genuine(%s, repeat(''x'', 10000000))', :project_a)),
    'PT422 text_too_long', 'a payload no NOTIFY could carry is refused before any work');

-- ---- Batch refusals are the catalogued ones ----
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.retire_components(component_ids => array(select %s::bigint from generate_series(1, 10001)), reason => ''too many'')', :valve_a)),
    'PT413 batch_too_large', 'retire_components over its limit is batch_too_large, not a permission error');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_components(corrections => (select jsonb_agg(jsonb_build_object(''component_id'', %s, ''description'', ''x'')) from generate_series(1, 10001)), reason => ''too many'')', :valve_a)),
    'PT413 batch_too_large', 'correct_components over its limit too');

-- ---- What a request stores is bounded before any work ----
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => jsonb_build_object(''attributes'', (select jsonb_object_agg(''k'' || n, repeat(''v'', 20)) from generate_series(1, 5000) n)), reason => ''bulk'')', :valve_a)),
    'PT413 value_too_large', 'correct_component refuses attributes past 16 kB (a million keys once ran past every timeout)');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.create_component(project_id => %s, drawing_id => %s, component_type => ''valve'', tag => ''V-77'', size => ''2'', description => repeat(''d'', 2001))', :project_a, :drawing_a)),
    'PT422 text_too_long', 'create_component holds a description to the 2,000 characters a correction allows');

-- ---- Archived projects take no writes, by any path ----
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.archive_project(project_id => :project_a) is null as archived;
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.set_post_hydro(component_ids => array[%s::bigint])', :valve_a)),
    'PT409 project_archived', 'set_post_hydro by ids refuses an archived project''s components');
reset role;
select is((select post_hydro from pipetrak.components where id = :valve_a), false, 'and changes nothing');
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.unarchive_project(project_id => :project_a) is null as unarchived;

-- ---- NDE is never dated before the weld ----
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.assign_welder(component_id => :weld_a, stencil => 'K-1', date_welded => current_date - 1) is not null as welded;
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.record_nde(component_id => %s, method => ''RT'', result => ''PASS'', examined_on => ''0001-01-01'')', :weld_a)),
    'PT422 nde_before_welded', 'an examination dated 0001-01-01 is refused, and accepts nothing');

-- ---- Names shown in sentences stay on one line; paths resolve as written ----
select is(pg_temp.error_of('viewer', format('select pipetrak_api.update_profile(display_name => %L)', E'Ann\nRoot set Install 100 % on valve V-9')),
    'PT400 invalid_argument', 'a display name with a line break is refused (it would forge an activity line)');
select is(pg_temp.try_as('outsider', format('select pipetrak.storage_allows(''pipetrak-imports'', %L, true)', :project_b || '/../' || :project_a || '/x.csv')),
    'false', 'a storage path through .. into another project belongs to no project');
select is(pg_temp.try_as('owner', 'select coalesce(pipetrak.storage_allows(''pipetrak-imports'', null, true), false)'),
    'false', 'nor does an object without a name');

select * from finish();
rollback;
