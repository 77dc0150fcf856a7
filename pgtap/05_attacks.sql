-- Attacks of a signed-in user with plain SQL access: temporary objects that hijack definer
-- functions, internal functions, event channels, membership without consent, hostile arguments.
begin;
\ir fixtures/actors.sql
select plan(42);

-- Temporary types can't hijack a definer function ---------------------------------------------------
select is(
    (select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text) from pg_proc p
     where p.pronamespace in ('pipetrak'::regnamespace, 'pipetrak_api'::regnamespace)
       and exists (select from unnest(p.proconfig) s where s like 'search_path=%')
       and not exists (select from unnest(p.proconfig) s where s ~ '^search_path=pg_catalog, *pg_temp$')),
    null, 'every function with a search_path puts pg_catalog first and pg_temp last');

select is(
    (select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text) from pg_proc p
     where p.pronamespace in ('pipetrak'::regnamespace, 'pipetrak_api'::regnamespace) and p.prosecdef
       and not exists (select from unnest(p.proconfig) s where s ~ '^search_path=pg_catalog, *pg_temp$')),
    null, 'every security definer function searches pg_temp last');

-- The attacker defines a temporary domain for every type name a body may use unqualified, each
-- with a check that records who ran it, then calls every API function (with ids that reach deep
-- into the code, then with nulls). Nothing may run as anyone but the attacker.
-- Counted with sequences, which the rollback that undoes the attack's writes leaves as they are.
create temporary sequence own_hits;
create temporary sequence definer_hits;
grant all on own_hits, definer_hits to public;
create function pg_temp.attack(p_actor text, p_ids jsonb) returns void language plpgsql as $$
declare
    v_type text;
    v_call text;
    v_fn record;
begin
    perform pg_temp.act_as(pg_temp.uid(p_actor));
    create function pg_temp.pwned() returns boolean language plpgsql as $f$
    begin
        perform pg_catalog.nextval(case when current_user = 'authenticated' then 'pg_temp.own_hits' else 'pg_temp.definer_hits' end);
        return true;
    end $f$;
    foreach v_type in array array['text', 'uuid', 'jsonb', 'json', 'date', 'bytea', 'timestamptz', 'int4', 'int8',
                                  'int2', 'bool', 'float8', 'name', 'oid', 'regclass', 'interval', 'varchar'] loop
        execute format('create domain pg_temp.%I as pg_catalog.%I check (pg_temp.pwned())', v_type, v_type);
    end loop;
    for v_fn in
        select p.proname, array_agg(a.name order by a.n) as names, array_agg(a.type order by a.n) as types
        from pg_catalog.pg_proc p
        cross join lateral unnest(p.proargnames, p.proargtypes::pg_catalog.oid[]) with ordinality as a(name, type, n)
        where p.pronamespace = 'pipetrak_api'::pg_catalog.regnamespace and p.prokind = 'f'
        group by p.proname
    loop
        foreach v_call in array array[
            format('select pipetrak_api.%I(%s)', v_fn.proname, (
                select pg_catalog.string_agg(format('%I => %s', n, case
                    when p_ids ? n then (p_ids ->> n) || '::bigint'
                    when t = 'pg_catalog.uuid'::pg_catalog.regtype then quote_literal(pg_temp.uid('viewer')) || '::pg_catalog.uuid'
                    when t = 'pg_catalog.jsonb'::pg_catalog.regtype then '''[{"component_id": ' || (p_ids ->> 'component_id') || ', "milestone": "Receive", "value": 100}]''::pg_catalog.jsonb'
                    when t = 'pg_catalog.numeric'::pg_catalog.regtype then '50'
                    when t = 'pg_catalog.date'::pg_catalog.regtype then 'pg_catalog.current_date'
                    when t = 'pg_catalog.bool'::pg_catalog.regtype then 'true'
                    when t = 'pg_catalog.int4'::pg_catalog.regtype then '1'
                    when t = 'pg_catalog.int8'::pg_catalog.regtype then '1'
                    when t = 'pg_catalog.bytea'::pg_catalog.regtype then '''DRAWING,TYPE,QTY\nP-1,Valve,1''::pg_catalog.bytea'
                    when n = 'role' then '''viewer'''
                    when n = 'kind' then '''takeoff'''
                    else '''x'''
                end), ', ')
                from unnest(v_fn.names, v_fn.types) as u(n, t))),
            format('select pipetrak_api.%I(%s)', v_fn.proname, (
                select pg_catalog.string_agg(format('%I => null', n), ', ') from unnest(v_fn.names) as u(n)))]
        loop
            begin
                execute v_call;
            exception when others then
                null;
            end;
        end loop;
    end loop;
    -- Undoes everything the calls did (and the domains), keeping the fixture as it was.
    raise exception using errcode = 'P0001', message = 'undo the attack';
exception when sqlstate 'P0001' then
    null;
end $$;
grant execute on all functions in schema pg_temp to public;

select pg_temp.attack('owner', jsonb_build_object('project_id', :project_a, 'organization_id', :org_a, 'component_id', :weld_a,
    'drawing_id', :drawing_a, 'area_id', :area_a, 'system_id', :system_a, 'test_package_id', :package_a));
select pg_temp.attack('outsider', jsonb_build_object('project_id', :project_a, 'organization_id', :org_a, 'component_id', :valve_a,
    'drawing_id', :drawing_a, 'area_id', :area_a, 'system_id', :system_a, 'test_package_id', :package_a));
select ok((select last_value from own_hits) > 1,
    'the probe works: the attacker''s domains ran in their own code');
select is((select is_called from definer_hits), false,
    'no temporary type ran inside a pipetrak function with its owner''s rights');

-- Internal functions are private -----------------------------------------------------------------------
select is(
    (select array_agg(p.proname::text order by p.proname::text) from pg_proc p
     where p.pronamespace = 'pipetrak'::regnamespace and has_function_privilege('authenticated', p.oid, 'execute')),
    array['accept_invitation', 'add_member', 'archive_project', 'assign_component', 'assign_drawing',
          'assign_welder', 'caller_is', 'certificate_label', 'change_member_role', 'clear_nde',
          'clear_welder', 'complete_stage', 'component_batch', 'component_types', 'controls_week', 'correct_component',
          'create_component', 'create_drawing', 'create_organization', 'create_project', 'create_reference',
          'create_repair', 'create_unplanned_weld', 'create_welder', 'current_claims', 'current_user_id',
          'delete_organization', 'delete_project', 'dismiss_review_item', 'edit_welder', 'event_is_genuine', 'forecasts', 'group_name',
          'import_commit', 'import_commit_chunk', 'import_report_csv', 'import_upload', 'import_validate',
          'invitation_state', 'invite_member', 'limited', 'limited', 'limited', 'manhour_progress', 'member_visible', 'move_weld',
          'my_organization_ids', 'my_project_ids', 'organization_visible', 'organization_visible_for', 'package_stage_rule',
          'package_state', 'percent_of', 'pre_request', 'progress_as_of', 'progress_delta', 'project_channel', 'project_visible',
          'project_visible_for',
          'realtime_topic_allows', 'record_hours', 'record_nde', 'remove_member', 'rename_organization', 'rename_project',
          'rename_reference', 'rename_welder', 'repick_examination', 'resend_invitation',
          'resolve_review_item', 'restore_component', 'retire_component', 'retire_component_for',
          'retire_drawing', 'retire_reference', 'retire_weld', 'revise_drawing', 'revoke_invitation',
          'reweight_template', 's_curve', 'sampling_required', 'save_certificate', 'save_stage', 'search_project', 'set_baseline',
          'set_post_hydro', 'sign_stage', 'skip_stage', 'spread_budget', 'stalled_components', 'start_stage', 'storage_allows',
          'sync_profile', 'test_package_blockers', 'turnover_report', 'unarchive_project',
          'update_milestone', 'update_milestones', 'update_profile', 'update_project_settings',
          'update_test_package', 'verify_welder', 'void_hours', 'week_end_of', 'week_start', 'weekly_report', 'weld_delta', 'weld_log_page',
          'weld_progress', 'weld_search_text', 'welder_summary'],
    'authenticated runs exactly the allow-listed internal functions');

select is(
    (select array_agg(p.proname::text order by p.proname::text) from pg_proc p
     where p.pronamespace = 'pipetrak'::regnamespace and has_function_privilege('service_role', p.oid, 'execute')),
    (select array_agg(p.proname::text order by p.proname::text) from pg_proc p
     where p.pronamespace = 'pipetrak'::regnamespace and has_function_privilege('authenticated', p.oid, 'execute')),
    'service_role runs the same allow-listed internal functions (it bypasses RLS, not the checks)');

select is(
    (select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text) from pg_proc p
     where p.pronamespace = 'pipetrak'::regnamespace and p.prosecdef and has_function_privilege('authenticated', p.oid, 'execute')
       -- (limited measures its argument and reads no row: it has no caller to check)
       and p.proname not in ('my_organization_ids', 'my_project_ids', 'limited')
       and not (pg_get_functiondef(p.oid) ~ 'require_(project|organization)_role|require_user|lock_(import|component|weld|welder|package|invitation)|write_nde\(|sync_profile\(|reference_project|drawing_project|my_project_ids|update_milestone\(|import_commit_chunk\(')),
    null, 'every definer function authenticated may run checks the caller first');

select is(
    (select array_agg(c.relname::text order by c.relname::text) from pg_class c
     where c.relnamespace in ('pipetrak'::regnamespace, 'pipetrak_api'::regnamespace) and c.relkind in ('r', 'v', 'S')
       and has_table_privilege('authenticated', c.oid, 'select')
       and c.relname not in ('error_codes', 'user_profiles', 'organizations', 'memberships', 'projects', 'areas', 'systems',
           'test_packages', 'drawings', 'milestone_templates', 'welders', 'components', 'field_welds', 'milestone_events',
           'review_items', 'client_requests', 'progress_parts', 'progress_packages', 'progress_facts', 'progress_rollups', 'import_jobs', 'import_rows',
           'nde_results', 'weld_events', 'examination_calls', 'weld_tallies', 'weld_day_tallies',
           'package_stages', 'stage_signoffs', 'package_events', 'certificate_numbers', 'package_certificates',
           'budget_versions', 'component_budgets', 'progress_days', 'snapshot_weeks', 'weekly_snapshots',
           'baselines', 'baseline_activities', 'timesheet_hours', 'hours_days', 'weekly_groups',
           'component_touches', 'component_changes')
       and c.relnamespace = 'pipetrak'::regnamespace),
    null, 'authenticated reads exactly the allow-listed tables (through RLS)');

-- A function added later (as an upgrade would add it) stays private when the grants run again.
create function pipetrak.added_by_a_later_version() returns integer language sql as 'select 1';
select pipetrak.grant_privileges();
select ok(not has_function_privilege('authenticated', 'pipetrak.added_by_a_later_version()', 'execute')
          and not has_function_privilege('anon', 'pipetrak.added_by_a_later_version()', 'execute'),
    'a new internal function is private after the grants run again');

select ok(not has_table_privilege('authenticated', 'pipetrak.project_secrets', 'select')
          and not has_table_privilege('service_role', 'pipetrak.project_secrets', 'select')
          and not has_table_privilege('authenticated', 'pipetrak.progress_deferrals', 'insert'),
    'nobody reads the event keys or writes the progress bookkeeping');

select is(pg_temp.matrix(format('select pipetrak.lock_component(%s, ''read'')', :valve_a)),
    array['42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501'],
    'nobody takes row locks through lock_component by hand');

select is(pg_temp.matrix('select count(*) from pipetrak.import_file_cells(''a,b''::bytea, ''takeoff'', array[1])'),
    array['42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501'],
    'nobody runs the file reader by hand');

select is(pg_temp.matrix('select pipetrak.stage_import(1, 1, ''takeoff'', current_date)'),
    array['42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501'],
    'nobody stages rows by hand');

-- Events: secret channels, signed payloads ---------------------------------------------------------------
select is(pg_temp.matrix(format('select pipetrak_api.project_channel(%s) ~ ''^pipetrak_[0-9a-f]{40}$''', :project_a)),
    array['true', 'true', 'true', 'true', 'true', 'true', 'true', 'PT404', '42501'],
    'members get the project''s channel; the outsider and anon don''t');

select isnt(pg_temp.try_as('owner', format('select pipetrak_api.project_channel(%s)', :project_a)),
            pg_temp.try_as('outsider', format('select pipetrak_api.project_channel(%s)', :project_b)),
    'each project has a channel of its own');

select is(pg_temp.try_as('owner', format('select pipetrak_api.project_channel(%s)', :project_a)),
          (select pipetrak.channel_name(s.channel_key) from pipetrak.project_secrets s where s.project_id = :project_a),
    'a channel name comes from the project''s secret key (160 bits of it), not from its id');

-- A genuine event, signed the way notify_project signs it, and forgeries of it.
select jsonb_build_object('kind', 'import_progress', 'import_id', 7, 'project_id', :project_a) as event \gset
select jsonb_build_object('event', :'event'::jsonb, 'sig', pipetrak.event_signature(s.signing_key, (:'event'::jsonb)::text))::text as genuine
from pipetrak.project_secrets s where s.project_id = :project_a \gset
select jsonb_build_object('event', :'event'::jsonb, 'sig', pipetrak.event_signature(s.signing_key, (:'event'::jsonb)::text))::text as signed_by_b
from pipetrak.project_secrets s where s.project_id = :project_b \gset

select is(pg_temp.matrix(format('select pipetrak_api.event_is_genuine(%s, %L)', :project_a, :'genuine')),
    array['true', 'true', 'true', 'true', 'true', 'true', 'true', 'PT404', '42501'],
    'a member can check an event is genuine');
select is(pg_temp.try_as('viewer', format('select pipetrak_api.event_is_genuine(%s, %L)', :project_a,
        replace(:'genuine', '"import_id": 7', '"import_id": 8'))),
    'false', 'an event changed in transit is not genuine');
select is(pg_temp.try_as('viewer', format('select pipetrak_api.event_is_genuine(%s, %L)', :project_a, :'signed_by_b')),
    'false', 'an event signed with another project''s key is not genuine');
select is(pg_temp.try_as('viewer', format('select pipetrak_api.event_is_genuine(%s, %L)', :project_a,
        '{"event": {"kind": "import_progress", "project_id": ' || :project_a || '}, "sig": "00"}')),
    'false', 'a forged event is not genuine');
select is(pg_temp.try_as('viewer', format('select pipetrak_api.event_is_genuine(%s, ''not json'')', :project_a)),
    'false', 'garbage is not genuine, and no error');

select pg_temp.try_as('owner', format('select pipetrak_api.project_channel(%s)', :project_a)) as channel_before \gset
select is(pg_temp.try_as('owner', format('select pipetrak_api.remove_member(%s, %L)', :org_a, pg_temp.uid('welder'))), 'ok',
    'an owner removes the welder');
select isnt(pg_temp.try_as('owner', format('select pipetrak_api.project_channel(%s)', :project_a)), :'channel_before',
    'the channel changes when someone leaves: the old name they knew is dead');
select is(pg_temp.try_as('viewer', format('select pipetrak_api.event_is_genuine(%s, %L)', :project_a, :'genuine')),
    'false', 'and so does the signing key');

-- Progress can't be switched off ---------------------------------------------------------------------
select is(pg_temp.try_as('foreman', format($q$
    select set_config('pipetrak.progress_deferred', 'on', true),
           pipetrak_api.update_milestone(component_id => %s, milestone => 'Receive', value => 100) is not null,
           (select earned_receive from pipetrak.progress_parts where drawing_id = %s and component_type = 'valve')$q$,
    :valve_a, :drawing_a)), 'on', 'a foreman sets the setting a bulk update uses');
select is((select earned_receive from pipetrak.progress_parts where drawing_id = :drawing_a and component_type = 'valve'),
          (select sum(earned_receive) from pipetrak.components where drawing_id = :drawing_a and component_type = 'valve'),
    'but progress still follows the update: only the extension''s own bookkeeping can defer it');

select is(pg_temp.try_as('foreman', format($q$select jsonb_array_length(pipetrak_api.update_milestones(updates => '[
        {"component_id": %1$s, "milestone": "Receive", "value": 0}, {"component_id": %2$s, "milestone": "Fit-up", "value": 100},
        {"component_id": %1$s, "milestone": "Receive", "value": 100}, {"component_id": %1$s, "milestone": "Install", "value": 100}]'))$q$,
    :valve_a, :weld_a)), '4', 'a bulk update touching one component several times');
select is((select array_agg(array[p.component_count, p.earned_total, p.earned_receive, p.earned_install]::bigint[] order by p.component_type)
           from pipetrak.progress_parts p where p.drawing_id = :drawing_a),
          (select array_agg(a order by t) from (
               select component_type as t, array[count(*), sum(earned_total), sum(earned_receive), sum(earned_install)]::bigint[] as a
               from pipetrak.components where drawing_id = :drawing_a and retired_at is null group by component_type) c),
    'leaves the progress parts equal to a recount of the components');

-- Membership needs consent -------------------------------------------------------------------------------
select is(pg_temp.try_as('outsider', format('select pipetrak_api.add_member(organization_id => %s, user_id => %L, role => ''viewer'')',
        :org_b, pg_temp.uid('foreman'))),
    'PT404', 'the owner of B can''t pull A''s foreman into B');
select is(pg_temp.try_as('outsider', format('select count(*) from pipetrak_api.memberships where user_id = %L', pg_temp.uid('foreman'))),
    '0', 'so B''s member list never shows the foreman''s email');
select is(pg_temp.try_as('outsider', format('select count(*) from pipetrak.user_profiles where user_id = %L', pg_temp.uid('foreman'))),
    '0', 'nor does the profiles table');

reset role;
insert into pipetrak.memberships (organization_id, user_id, role, created_by)
values (:org_b, pg_temp.uid('owner'), 'viewer', pg_temp.uid('outsider'));
select is(pg_temp.try_as('outsider', format('select pipetrak_api.add_member(organization_id => %s, user_id => %L, role => ''viewer'')',
        :org_b, pg_temp.uid('viewer'))),
    'PT404', 'sharing an organization with the owner of A doesn''t make A''s viewer reachable from B');
select is(pg_temp.try_as('owner', format('select pipetrak_api.add_member(organization_id => %s, user_id => %L, role => ''viewer'')',
        :org_a, pg_temp.uid('outsider'))),
    'ok', 'an owner adds someone they already share an organization with');

-- Staged rows don't stay forever ------------------------------------------------------------------------
select pg_temp.try_as('project_manager', format($q$select pipetrak_api.import_upload(project_id => %s, kind => 'takeoff',
    filename => 'old.csv', content => convert_to(E'DRAWING,TYPE,QTY,CMDTY CODE,SIZE\nP-7,Valve,1,V-7,2\n', 'UTF8'))$q$, :project_a)) as old_import \gset
select pg_temp.try_as('outsider', format($q$select pipetrak_api.import_upload(project_id => %s, kind => 'takeoff',
    filename => 'b.csv', content => convert_to(E'DRAWING,TYPE,QTY,CMDTY CODE,SIZE\nB-7,Valve,1,V-7,2\n', 'UTF8'))$q$, :project_b)) as b_import \gset
select pg_temp.try_as('project_manager', format('select pipetrak_api.import_validate(import_id => %s) is not null', :old_import));
select pg_temp.try_as('outsider', format('select pipetrak_api.import_validate(import_id => %s) is not null', :b_import));
-- A week passes for both jobs.
update pipetrak.import_jobs set staged_until = now() - interval '1 second' where id in (:old_import, :b_import);
select pg_temp.try_as('project_manager', format($q$select pipetrak_api.import_validate(import_id => pipetrak_api.import_upload(
    project_id => %s, kind => 'takeoff', filename => 'new.csv', content => convert_to(E'DRAWING,TYPE,QTY,CMDTY CODE,SIZE\nP-8,Valve,1,V-8,2\n', 'UTF8'))) is not null$q$,
    :project_a));
select is((select count(*) from pipetrak.import_rows where import_id = :old_import), 0::bigint,
    'a validation clears its organization''s staged rows kept past their time');
select is((select status from pipetrak.import_jobs where id = :old_import), 'uploaded',
    'and the job must be validated again before it commits');
select is(pg_temp.try_as('project_manager', format('select pipetrak_api.import_commit(import_id => %s)', :old_import)), 'PT409',
    'committing it is import_not_validated, not an empty commit');
select is((select count(*) from pipetrak.import_rows where import_id = :b_import), 1::bigint,
    'another organization''s rows are its own to clear (nobody pays for another tenant)');

-- Hostile arguments get catalogued errors -----------------------------------------------------------------
select is(pg_temp.try_as('owner', format('select pipetrak_api.create_area(project_id => %s, name => %L)', :project_a, repeat('x', 201))),
    'PT422', 'an over-long name is text_too_long (not 23514)');
select is(pg_temp.try_as('owner', format('select pipetrak_api.create_organization(name => %L)', repeat('é', 201))),
    'PT422', 'an over-long organization name too');
select is(pg_temp.try_as('foreman', format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Receive'', value => 100, work_date => ''infinity'')', :valve_a)),
    'PT422', 'an infinite work date is invalid_date (not 22008)');
select is(pg_temp.try_as('foreman', format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Receive'', value => 100, note => %L)', :valve_a, repeat('n', 2001))),
    'PT422', 'an over-long note is text_too_long');
select is(pg_temp.try_as('foreman', format('select pipetrak_api.update_milestones(updates => (select jsonb_agg(jsonb_build_object(''component_id'', %s, ''milestone'', ''Receive'', ''value'', 100)) from generate_series(1, 10001)))', :valve_a)),
    'PT413', 'a batch of more than 10,000 updates is batch_too_large');

select * from finish();
rollback;
