-- The main job's end-to-end run: a project manager creates a project and imports real files from
-- tests/data through the API (upload → validate → commit), then reads the progress it produced.
\set ON_ERROR_STOP on
\set takeoff `base64 -w0 tests/data/quantity-instances.csv`
\set more `base64 -w0 tests/data/milestone-types.csv`
\set weld_log `base64 -w0 tests/data/field-weld-log-664.xlsx`

-- Act as a signed-in user the way PostgREST does.
set role authenticated;
select set_config('request.jwt.claims', '{"sub": "5a1e0000-0000-4000-8000-000000000001", "role": "authenticated", "email": "pm@example.com"}', false) \gset
select pipetrak_api.create_organization(name => 'Demo Contractor') as org \gset
select pipetrak_api.create_project(organization_id => :org, name => 'Unit 12 revamp', job_number => 'J-12',
                                   time_zone => 'America/Chicago') as project \gset

\echo '== takeoff: quantity-instances.csv'
select pipetrak_api.import_upload(project_id => :project, kind => 'takeoff', filename => 'quantity-instances.csv',
                                  content => decode(:'takeoff', 'base64')) as import \gset
select jsonb_pretty(pipetrak_api.import_validate(import_id => :import) -> 'would' -> 'components') as "dry run: components";
select pipetrak_api.import_commit(import_id => :import) as "commit";

\echo '== takeoff: milestone-types.csv'
select pipetrak_api.import_upload(project_id => :project, kind => 'takeoff', filename => 'milestone-types.csv',
                                  content => decode(:'more', 'base64')) as import \gset
select pipetrak_api.import_validate(import_id => :import) -> 'rows' as "dry run: rows";
select row, severity, code, message from pipetrak_api.import_issues where import_id = :import;
select pipetrak_api.import_commit(import_id => :import) as "commit";

\echo '== field-weld log: field-weld-log-664.xlsx'
select pipetrak_api.import_upload(project_id => :project, kind => 'field_welds', filename => 'field-weld-log-664.xlsx',
                                  content => decode(:'weld_log', 'base64')) as import \gset
select pipetrak_api.import_validate(import_id => :import) -> 'rows' as "dry run: rows";
select pipetrak_api.import_commit(import_id => :import) as "commit";

\echo '== first field updates: receive the valves, fit up a weld'
select pipetrak_api.update_milestone(component_id => id, milestone => 'Receive', value => 100) ->> 'percent_complete' as "valve %"
from pipetrak_api.components where project_id = :project and component_type = 'valve';
select pipetrak_api.update_milestone(component_id => (select min(id) from pipetrak_api.components
                                                      where project_id = :project and component_type = 'field_weld'),
                                     milestone => 'Fit-up', value => 100) ->> 'percent_complete' as "weld %";

\echo '== progress'
select project_name, component_count, completed_count, percent_complete from pipetrak_api.project_progress where project_id = :project;
select drawing_no, component_count, percent_complete from pipetrak_api.drawing_progress
where project_id = :project order by percent_complete desc, drawing_no limit 8;
