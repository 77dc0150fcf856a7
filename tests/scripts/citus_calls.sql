-- After tests/scripts/citus_flow.sql, on the same database: the API's other calls on a project
-- (the ones taking an id of a package, welder, drawing, review item, import or component, and the
-- project reports the flow doesn't read), once each, as user A in a request naming project A,
-- each statement asserted to run on one shard (citus.multi_task_query_log_level), each rolled
-- back. Prints `call|answer` or the error. The Citus test runs it on both engines: each line on the
-- cluster equals plain PostgreSQL's or is the catalogued refusal (not_supported_distributed) of
-- a call that doesn't run on one shard yet (pipetrak.refuse_distributed).
\set ON_ERROR_STOP 0
\set VERBOSITY terse
\set a '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated", "email": "a@example.com"}'
select id as project_a from pipetrak.projects where name = 'Refinery A' \gset
select id as area_a from pipetrak.areas where project_id = :project_a and name = 'Unit 1' \gset
select id as system_a from pipetrak.systems where project_id = :project_a and name = 'Steam' \gset
select id as package_a from pipetrak.test_packages where project_id = :project_a and name = 'TP-1' \gset
select id as drawing_a from pipetrak.drawings where project_id = :project_a and drawing_no = 'P-100' \gset
select id as drawing_b from pipetrak.drawings where project_id = :project_a and drawing_no = 'P-101' \gset
select id as valve_a from pipetrak.components where project_id = :project_a and tag = 'V-1' \gset
select id as weld_a from pipetrak.components where project_id = :project_a and tag = 'W-1' and component_type = 'field_weld' \gset
select min(id) as welder_a from pipetrak.welders where project_id = :project_a \gset
select min(id) as import_a from pipetrak.import_jobs where project_id = :project_a \gset
select min(id) as item_a from pipetrak.review_items where project_id = :project_a and resolved_at is null \gset
\set go 'select set_config(''role'', ''authenticated'', true), set_config(''request.jwt.claims'', :''a'', true), set_config(''request.headers'', ''{"pipetrak-project": "'' || :''project_a'' || ''"}'', true), set_config(''citus.multi_task_query_log_level'', ''error'', true), pipetrak.pre_request() \\g /dev/null'
begin; :go
select 'rename_area', pipetrak_api.rename_area(:area_a, 'Unit 1b') is null; rollback;
begin; :go
select 'rename_system', pipetrak_api.rename_system(:system_a, 'Steam b') is null; rollback;
begin; :go
select 'rename_test_package', pipetrak_api.rename_test_package(:package_a, 'TP-1b') is null; rollback;
begin; :go
select 'update_test_package', pipetrak_api.update_test_package(:package_a, test_type => 'Hydrostatic', test_pressure => 150, test_pressure_unit => 'psi') is null; rollback;
begin; :go
select pipetrak_api.update_test_package(:package_a, test_type => 'Hydrostatic', test_pressure => 150, test_pressure_unit => 'psi') is null;
select 'start_stage', pipetrak_api.start_stage(:package_a, 'pre_hydro') is null;
select 'save_stage', pipetrak_api.save_stage(:package_a, 'pre_hydro', '{"inspector": "Kim Lee", "nde_complete": true}') is null;
select 'sign_stage', pipetrak_api.sign_stage(:package_a, 'pre_hydro', 'qc', 'Kim Lee', 'QC inspector', current_date) is null;
select 'save_certificate', pipetrak_api.save_certificate(:package_a, client => 'Acme Refining') is null;
select 'complete_stage', pipetrak_api.complete_stage(:package_a, 'pre_hydro') is null;
select 'start_stage test', pipetrak_api.start_stage(:package_a, 'test') is null; rollback;
begin; :go
select 'test_package_blockers', count(*) from pipetrak_api.test_package_blockers(:package_a); rollback;
begin; :go
select 'turnover_report', pipetrak_api.turnover_report(:package_a) is null; rollback;
begin; :go
select 'rename_welder', pipetrak_api.rename_welder(:welder_a, 'Kim') is null; rollback;
begin; :go
select 'verify_welder', pipetrak_api.verify_welder(:welder_a, true) is null; rollback;
begin; :go
select 'assign_drawing', pipetrak_api.assign_drawing(:drawing_b, :area_a, :system_a, :package_a) is null; rollback;
begin; :go
select 'revise_drawing', pipetrak_api.revise_drawing(:drawing_a, 'B', 'Title') is null; rollback;
begin; :go
select 'assign_component', pipetrak_api.assign_component(:valve_a, :area_a, :system_a, null, false) is null; rollback;
begin; :go
select 'correct_component', pipetrak_api.correct_component(:valve_a, '{"description": "gate"}', 'typo') is null; rollback;
begin; :go
select 'retire_component', pipetrak_api.retire_component(:valve_a) is null; rollback;
begin; :go
select 'retire_components', pipetrak_api.retire_components(array[:valve_a]::bigint[], 'gone') is null; rollback;
begin; :go
select (pipetrak_api.create_component(:project_a, :drawing_a, 'field_weld', 'W-2') -> 'created' ->> 0)::bigint as new_weld \gset
select 'move_weld', pipetrak_api.move_weld(:new_weld, :drawing_b, 'moved') is null; rollback;
begin; :go
select pipetrak_api.record_nde(:weld_a, 'VT', 'FAIL', reason => 'undercut') ->> 'status';
select 'create_repair', pipetrak_api.create_repair(:weld_a, 'repair') is null; rollback;
begin; :go
select 'edit_welder', pipetrak_api.edit_welder(:weld_a, 'fix', date_welded => current_date) is null; rollback;
begin; :go
select 'clear_nde', pipetrak_api.clear_nde(:weld_a, 'VT', 'wrong') is null; rollback;
begin; :go
select (pipetrak_api.create_component(:project_a, :drawing_a, 'field_weld', 'W-3') -> 'created' ->> 0)::bigint as new_weld \gset
select pipetrak_api.assign_welder(:new_weld, 'K-12') ->> 'percent_complete';
select 'clear_welder', pipetrak_api.clear_welder(:new_weld, reason => 'wrong stencil') is null; rollback;
begin; :go
select 'retire_weld', pipetrak_api.retire_weld(:weld_a, 'cut out of the line') is null; rollback;
begin; :go
select 'record_nde RT FAIL', pipetrak_api.record_nde(:weld_a, 'RT', 'FAIL', reason => 'film re-read') ->> 'status'; rollback;
-- A weld log recording an RT FAIL of a sampled (10 %) weld: committed on one node (the FAIL calls
-- for more examinations); refused on a cluster before its first chunk, nothing written.
begin; :go
select pipetrak_api.import_upload(:project_a, 'field_welds', 'rt-fail.csv', convert_to(
    E'Weld ID,Drawing ID,Weld Size,X-ray Percent,NDE Types,NDE Result,Welder Stencil,Date Welded\n'
    || E'FW-900,P-100,2",10,RT,FAIL,K-12,' || (current_date - 1)::text || E'\n', 'UTF8')) as fail_import \gset
select 'weld log with an RT FAIL, dry run', pipetrak_api.import_validate(:fail_import) -> 'rows' ->> 'valid';
select 'weld log with an RT FAIL, commit', pipetrak_api.import_commit(:fail_import) ->> 'status'; rollback;
begin; :go
select 'resolve_review_item', pipetrak_api.resolve_review_item(:item_a, 'ok') is null; rollback;
begin; :go
select 'dismiss_review_item', pipetrak_api.dismiss_review_item(:item_a, 'not needed here') is null; rollback;
begin; :go
select 'set_post_hydro', pipetrak_api.set_post_hydro(array[:valve_a]::bigint[], null, true) is null; rollback;
begin; :go
select 'import_report_csv', length(pipetrak_api.import_report_csv(:import_a)) > 0; rollback;
begin; :go
select 'progress_as_of', count(*) from pipetrak_api.progress_as_of(:project_a, current_date, 'area'); rollback;
begin; :go
select 'weekly_report', count(*) from pipetrak_api.weekly_report(:project_a, date_trunc('week', current_date)::date - 8, 'area'); rollback;
begin; :go
select 'manhour_progress', count(*) from pipetrak_api.manhour_progress(:project_a, 'area'); rollback;
begin; :go
select 'weld_progress', count(*) from pipetrak_api.weld_progress(:project_a, 'area'); rollback;
begin; :go
select 'welder_summary', count(*) from pipetrak_api.welder_summary(:project_a); rollback;
begin; :go
select 'weld_delta', count(*) from pipetrak_api.weld_delta(:project_a, current_date - 7, current_date, 'area'); rollback;
begin; :go
select 'create_unplanned_weld', pipetrak_api.create_unplanned_weld(project_id => :project_a, drawing_id => :drawing_a, weld_number => 'W-99', weld_type => 'BW', size => '2', spec => 'A106', note => 'added in the field') is null; rollback;
begin; :go
select 'create_welder', pipetrak_api.create_welder(:project_a, 'ZZ-1', 'Zed') is null; rollback;
begin; :go
select 'reweight_template', pipetrak_api.reweight_template(:project_a, 'valve', '{"Receive": 10, "Install": 60, "Punch": 10, "Test": 10, "Restore": 10}', true) is null; rollback;
begin; :go
select 'spread_budget', pipetrak_api.spread_budget(:project_a, 1000, 'plan', current_date) is null; rollback;
begin; :go
select 'retire_drawing', pipetrak_api.retire_drawing(:drawing_b) is null; rollback;
begin; :go
select 'retire_area', pipetrak_api.retire_area(pipetrak_api.create_area(:project_a, 'Unit 9')) is null; rollback;
begin; :go
select 'retire_system', pipetrak_api.retire_system(pipetrak_api.create_system(:project_a, 'Water')) is null; rollback;
begin; :go
select 'retire_test_package', pipetrak_api.retire_test_package(pipetrak_api.create_test_package(:project_a, 'TP-9')) is null; rollback;
begin; :go
select 'update_project_settings', pipetrak_api.update_project_settings(:project_a, week_lock => true) is null; rollback;
begin; :go
select 'archive_project', pipetrak_api.archive_project(:project_a) is null; rollback;
begin; :go
select 'set_baseline', pipetrak_api.set_baseline(:project_a, 'area', 'plan', '[{"activity_code": "A1", "group": "Unit 1", "planned_start": "2026-01-01", "planned_finish": "2027-06-30", "curve": "s_curve"}]') ->> 'version';
select 'controls_week', count(*), sum(earned_percent), sum(planned_percent) from pipetrak_api.controls_week(:project_a, group_by => 'area');
select 's_curve', count(*), sum(earned_percent), sum(planned_percent) from pipetrak_api.s_curve(:project_a, weeks => 8);
select 'forecasts', count(*), sum(earned_percent) from pipetrak_api.forecasts(:project_a, group_by => 'area'); rollback;
begin; :go
select 'record_hours', pipetrak_api.record_hours(:project_a, current_date - 1, 8, person => 'J. Ortiz', group_by => 'area', "group" => 'Unit 1') is not null; rollback;
begin; :go
select 'void_hours', pipetrak_api.void_hours(pipetrak_api.record_hours(:project_a, current_date - 1, 8, crew => 'C1'), 'wrong day') is null; rollback;
begin; :go
select 'stalled_components', count(*) from pipetrak_api.stalled_components(:project_a, days => 1); rollback;
begin; :go
select pipetrak_api.import_upload(:project_a, 'timesheet', 'timesheet.csv', convert_to(E'Date,Employee,Hours,Area\n' || (current_date - 1) || E',J. Ortiz,8,Unit 1\n' || (current_date - 1) || E',K. Lee,6.5,Unit 9\n', 'UTF8')) as timesheet_a \gset
select 'timesheet dry run', pipetrak_api.import_validate(:timesheet_a) -> 'would' -> 'hours';
select 'timesheet commit', pipetrak_api.import_commit(:timesheet_a, skip_invalid_rows => true) ->> 'hours_rows_created'; rollback;
begin; :go
select pipetrak_api.import_upload(:project_a, 'schedule', 'schedule.csv', convert_to(E'Activity ID,Start,Finish,Area\nA1,2026-01-01,2027-01-01,Unit 1\nA1,2026-01-01,2027-01-01,Unit 1\n', 'UTF8')) as schedule_a \gset
select 'schedule dry run', pipetrak_api.import_validate(:schedule_a) -> 'would' -> 'baseline' ->> 'activities';
select 'schedule commit', pipetrak_api.import_commit(:schedule_a, skip_invalid_rows => true) ->> 'baseline_version'; rollback;
