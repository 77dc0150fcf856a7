-- The flow the Citus test runs on the cluster and on a plain PostgreSQL 15, as PostgREST's users of
-- two organizations would: each request a transaction, the role and claims set with set_config()
-- and then the pre-request (pipetrak.pre_request) PostgREST is configured with on a cluster. It
-- prints what the users see, without ids (the two installs number rows differently); errors as
-- their SQLSTATE. The test compares the two outputs.
--
-- A request on one project sends PostgREST's Pipetrak-Project header (:a_in_a) and refuses,
-- through Citus's citus.multi_task_query_log_level, any statement that would run on more than one
-- shard: on the cluster such a request fails and the outputs differ. Requests across a user's
-- projects (the lists) read every shard, as they must.
\set ON_ERROR_STOP 0
\set VERBOSITY terse
\set a '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated", "email": "a@example.com"}'
\set b '{"sub": "b0000000-0000-4000-8000-000000000002", "role": "authenticated", "email": "b@example.com"}'
\set as_a 'select set_config(''role'', ''authenticated'', true), set_config(''request.jwt.claims'', :''a'', true), pipetrak.pre_request() \\g /dev/null'
\set as_b 'select set_config(''role'', ''authenticated'', true), set_config(''request.jwt.claims'', :''b'', true), pipetrak.pre_request() \\g /dev/null'
-- The files the imports upload (tests/data, base64): given with -v takeoff=… weld_log=… welds=….

begin; :as_a
select pipetrak_api.create_organization(name => 'Org A') as org_a \gset
commit;
begin; :as_a
select pipetrak_api.create_project(organization_id => :org_a, name => 'Refinery A', job_number => 'A-1') as project_a \gset
commit;
\set in_project 'set_config(''request.headers'', ''{"pipetrak-project": "'' || :''project'' || ''"}'', true), set_config(''citus.multi_task_query_log_level'', ''error'', true)'
\set project :project_a
\set a_in_a 'select set_config(''role'', ''authenticated'', true), set_config(''request.jwt.claims'', :''a'', true), :in_project, pipetrak.pre_request() \\g /dev/null'
\set b_in_a 'select set_config(''role'', ''authenticated'', true), set_config(''request.jwt.claims'', :''b'', true), :in_project, pipetrak.pre_request() \\g /dev/null'
begin; :a_in_a
select pipetrak_api.create_area(project_id => :project_a, name => 'Unit 1') as area_a \gset
select pipetrak_api.create_system(project_id => :project_a, name => 'Steam') as system_a \gset
select pipetrak_api.create_test_package(project_id => :project_a, name => 'TP-1') as package_a \gset
commit;
begin; :a_in_a
select pipetrak_api.create_drawing(project_id => :project_a, drawing_no => 'P-100', area_id => :area_a,
                                   system_id => :system_a, test_package_id => :package_a) as drawing_a \gset
select pipetrak_api.create_drawing(project_id => :project_a, drawing_no => 'P-101', area_id => :area_a) is not null;
commit;
begin; :as_b
select pipetrak_api.create_organization(name => 'Org B') as org_b \gset
commit;
begin; :as_b
select pipetrak_api.create_project(organization_id => :org_b, name => 'Plant B', job_number => 'B-1') as project_b \gset
select pipetrak_api.create_drawing(project_id => :project_b, drawing_no => 'B-1') is not null;
commit;

-- What each user reads through the API views (row-level security on the shards).
begin; :as_a
select 'a: projects', string_agg(name, ', ' order by name) from pipetrak_api.projects;
select 'a: areas', string_agg(name, ', ' order by name) from pipetrak_api.areas;
select 'a: drawings', string_agg(drawing_no, ', ' order by drawing_no) from pipetrak_api.drawings;
commit;
begin; :as_b
select 'b: projects', string_agg(name, ', ' order by name) from pipetrak_api.projects;
select 'b: areas', count(*) from pipetrak_api.areas;
select 'b: drawings', string_agg(drawing_no, ', ' order by drawing_no) from pipetrak_api.drawings;
select 'b: drawings of a', count(*) from pipetrak_api.drawings where project_id = :project_a;
commit;

-- The other organization's ids: not found.
begin; :b_in_a
select pipetrak_api.create_area(project_id => :project_a, name => 'Intruder');
rollback;
begin; :b_in_a
select pipetrak_api.create_drawing(project_id => :project_a, drawing_no => 'X-1');
rollback;

-- Components, and the milestones the field marks.
begin; :a_in_a
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_a, component_type => 'valve',
                                      tag => 'V-1', size => '2') -> 'created' ->> 0)::bigint as valve_a \gset
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_a, component_type => 'valve',
                                      tag => 'V-2', quantity => 3) -> 'created' ->> 0)::bigint as valve_a2 \gset
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_a, component_type => 'field_weld',
                                      tag => 'W-1') -> 'created' ->> 0)::bigint as weld_a \gset
commit;
begin; :a_in_a
select pipetrak_api.update_milestone(component_id => :valve_a, milestone => 'Receive', value => 100) ->> 'percent_complete';
commit;
begin; :a_in_a
select 'a: components', string_agg(tag || ' ' || percent_complete, ', ' order by tag, id) from pipetrak_api.components where project_id = :project_a;
select 'a: project progress', percent_complete, component_count from pipetrak_api.project_progress where project_id = :project_a;
select 'a: area progress', area_name, percent_complete from pipetrak_api.area_progress where project_id = :project_a;
select 'a: drawing progress', drawing_no, percent_complete from pipetrak_api.drawing_progress where project_id = :project_a order by drawing_no;
select 'a: package progress', test_package_name, percent_complete from pipetrak_api.test_package_progress where project_id = :project_a;
commit;
begin; :b_in_a
select 'b: components of a', count(*) from pipetrak_api.components where project_id = :project_a;
select pipetrak_api.update_milestone(component_id => :valve_a, milestone => 'Install', value => 100);
rollback;

-- The week locked before the project's first write was frozen before it landed (the snapshot
-- a locked week's reports read).
begin; :a_in_a
select 'a: frozen weeks', count(*), bool_and(extract(isodow from week_end) = 7 and week_end < current_date)
from pipetrak_api.weekly_snapshots where project_id = :project_a;
commit;

-- Many milestones in one call, the welder, NDE.
begin; :a_in_a
select jsonb_array_length(pipetrak_api.update_milestones(updates => jsonb_build_array(
    jsonb_build_object('component_id', :valve_a, 'milestone', 'Install', 'value', 100),
    jsonb_build_object('component_id', :valve_a2, 'milestone', 'Receive', 'value', 100))));
commit;
begin; :a_in_a
select pipetrak_api.assign_welder(component_id => :weld_a, stencil => 'K-12') ->> 'percent_complete';
commit;
begin; :a_in_a
select pipetrak_api.record_nde(component_id => :weld_a, method => 'VT', result => 'PASS', reason => 'flow') is not null;
commit;
begin; :a_in_a
select pipetrak_api.record_nde(component_id => :weld_a, method => 'RT', result => 'PASS', reason => 'flow') ->> 'status';
commit;

-- The screens' reads: progress again, package readiness, the weld log, a delta report, search.
begin; :a_in_a
select 'a: components', string_agg(tag || ' ' || percent_complete, ', ' order by tag, id) from pipetrak_api.components where project_id = :project_a;
select 'a: project progress', percent_complete, component_count from pipetrak_api.project_progress where project_id = :project_a;
select 'a: package readiness', test_package_name, members, ready from pipetrak_api.test_package_readiness where project_id = :project_a;
select 'a: weld log', weld_number, welder, status from pipetrak_api.weld_log_page(project_id => :project_a);
select 'a: delta', group_name, components_touched, events, percent_complete
from pipetrak_api.progress_delta(project_id => :project_a, date_from => current_date - 7, date_to => current_date);
select 'a: search', kind, label from pipetrak_api.search(project_id => :project_a, query => 'V-1');
commit;
begin; :b_in_a
select 'b: weld log of a', count(*) from pipetrak_api.weld_log_page(project_id => :project_a);
commit;

-- Imports: a takeoff, a weld log (.xlsx) and a weld log with welders, dates and NDE methods (.csv),
-- each uploaded, dry-run and committed in requests of their own; then what they made.
begin; :a_in_a
select pipetrak_api.import_upload(project_id => :project_a, kind => 'takeoff', filename => 'quantity-instances.csv',
                                  content => decode(:'takeoff', 'base64')) as import_takeoff \gset
commit;
begin; :a_in_a
select 'a: takeoff dry run', pipetrak_api.import_validate(import_id => :import_takeoff) -> 'would' -> 'components';
commit;
begin; :a_in_a
select 'a: takeoff commit', pipetrak_api.import_commit(import_id => :import_takeoff) - 'import_id';
commit;
begin; :a_in_a
select pipetrak_api.import_upload(project_id => :project_a, kind => 'field_welds', filename => 'field-weld-log-664.xlsx',
                                  content => decode(:'weld_log', 'base64')) as import_log \gset
commit;
begin; :a_in_a
select 'a: weld log dry run', pipetrak_api.import_validate(import_id => :import_log) -> 'rows';
commit;
begin; :a_in_a
select 'a: weld log commit', pipetrak_api.import_commit(import_id => :import_log) - 'import_id';
commit;
begin; :a_in_a
select pipetrak_api.import_upload(project_id => :project_a, kind => 'field_welds', filename => 'field-welds-complete.csv',
                                  content => decode(:'welds', 'base64')) as import_welds \gset
commit;
begin; :a_in_a
select 'a: welds dry run', pipetrak_api.import_validate(import_id => :import_welds) -> 'would';
commit;
begin; :a_in_a
select 'a: welds commit', pipetrak_api.import_commit(import_id => :import_welds) - 'import_id';
commit;
-- The other organization can't see the job.
begin; :b_in_a
select pipetrak_api.import_validate(import_id => :import_takeoff);
rollback;
begin; :as_b
select 'b: imports', count(*) from pipetrak_api.imports;
commit;
begin; :a_in_a
select 'a: imports', kind, filename, status from pipetrak_api.imports where project_id = :project_a order by filename;
select 'a: import issues', code, count(*) from pipetrak_api.import_issues where project_id = :project_a group by code order by code;
select 'a: project progress', percent_complete, component_count from pipetrak_api.project_progress where project_id = :project_a;
select 'a: drawings', count(*) from pipetrak_api.drawings where project_id = :project_a;
select 'a: weld log', count(*), count(welder), count(date_welded), sum(percent_complete), string_agg(distinct status, ', ')
from pipetrak_api.weld_log where project_id = :project_a;
select 'a: package readiness', test_package_name, members, ready from pipetrak_api.test_package_readiness where project_id = :project_a order by 2;
commit;
-- The weld log again, after the field's work: nothing the field recorded is lost.
begin; :a_in_a
select pipetrak_api.import_upload(project_id => :project_a, kind => 'field_welds', filename => 'field-welds-complete.csv',
                                  content => decode(:'welds', 'base64')) as import_again \gset
commit;
begin; :a_in_a
select 'a: welds again dry run', pipetrak_api.import_validate(import_id => :import_again) -> 'would' -> 'components';
select 'a: welds again commit', pipetrak_api.import_commit(import_id => :import_again) - 'import_id';
commit;
begin; :a_in_a
select 'a: weld log after', count(*), count(welder), count(date_welded), sum(percent_complete), string_agg(distinct status, ', ')
from pipetrak_api.weld_log where project_id = :project_a;
commit;
