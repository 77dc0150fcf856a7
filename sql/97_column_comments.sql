-- The API views' columns, described for PostgREST's OpenAPI document and a DBA's \d+. A column
-- name means the same in every view (one vocabulary: '*'); where a view gives it a narrower
-- meaning, that view's entry wins. Installing fails if a view column has no description, so a new
-- column comes with its words.
--
-- Design notes:
-- - The dictionary can't rot either: installing fails on an entry for a view column that isn't
--   there, a '*' word that no view uses (or that every view using it overrides), and a pair
--   described twice.
-- - Generic words (status, state, kind, value, number, summary, result, …) are described per view
--   even where only one view has them, so a new view with such a column must say what it means
--   there instead of inheriting another view's meaning.
-- - `attachments` exists only where Supabase Storage does (install_platform, 18_platform.sql); its
--   entries are checked when it exists and kept when it doesn't. install_platform describes it
--   again when Storage arrives after the extension.
-- - A function, so install_platform can call it and every upgrade runs it after the code (the
--   upgrade generator appends the call, as it does grant_privileges).

-- Comments every column of the API's views from the dictionary below; raises if a column has no
-- words or the dictionary has words no column takes.
create function pipetrak.describe_api_columns()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $column_comments$
declare
    v_row record;
    v_missing text;
    v_stray text;
begin
    for v_row in
        with described (view_name, column_name, description) as (values
        -- ---- The vocabulary: what a column name means in every view ----
        -- Ids and owners
        ('*', 'id', 'This row''s id (other views name it after the thing: drawing_id, component_id, …).'),
        ('*', 'project_id', 'The project''s id.'),
        ('*', 'organization_id', 'The organization''s id.'),
        ('*', 'component_id', 'The component''s id; a field weld is a component, so for a weld this is the weld''s id.'),
        ('*', 'drawing_id', 'The drawing''s id.'),
        ('*', 'area_id', 'The area the component is in: its own assignment, else its drawing''s; null when none.'),
        ('*', 'system_id', 'The system the component is in: its own assignment, else its drawing''s; null when none.'),
        ('*', 'test_package_id', 'The test package''s id.'),
        ('*', 'event_id', 'The milestone event''s id.'),
        ('*', 'review_item_id', 'The review item''s id.'),
        ('*', 'import_id', 'The import job''s id.'),
        ('*', 'stage_id', 'The package stage''s id.'),
        ('*', 'welder_id', 'The welder''s id; null while the weld has no welder.'),
        ('*', 'version_id', 'The id of the budget version the budget comes from (see budget_versions).'),
        -- Who and when
        ('*', 'user_id', 'Who made the change: their user id (the JWT''s sub claim).'),
        ('*', 'actor', 'Who made the change: their user id.'),
        ('*', 'user_name', 'Who made the change, by display name; null when their profile has none.'),
        ('*', 'created_by', 'Who created it: their user id.'),
        ('*', 'created_at', 'When it was created.'),
        ('*', 'updated_at', 'When it last changed.'),
        ('*', 'retired_at', 'When it was retired (it stays for the record but is no longer in use); null while live.'),
        ('*', 'email', 'The user''s email address from their profile (first taken from the JWT); null when unknown.'),
        ('*', 'display_name', 'The name shown for the user: taken from the JWT on first use, then as they set it (update_profile); null when unknown.'),
        ('*', 'role', 'The role in the organization: owner, admin, project_manager, foreman, qc_inspector, welder or viewer.'),
        ('*', 'my_role', 'Your role in the organization: owner, admin, project_manager, foreman, qc_inspector, welder or viewer.'),
        -- Projects and reference data
        ('*', 'name', 'The name, unique among the project''s live ones (ignoring case).'),
        ('*', 'description', 'A free-text description; null when none.'),
        ('*', 'project_name', 'The project''s name.'),
        ('*', 'job_number', 'The job number, unique within the organization.'),
        ('*', 'time_zone', 'The project''s IANA time zone (e.g. America/Chicago): work dates, "today" and week locks are in it.'),
        ('*', 'sequence_mode', 'What an out-of-sequence milestone update does: flag (accepted, marked and sent to review), enforce (refused) or off.'),
        ('*', 'week_lock', 'Whether weeks lock: updates dated in a week are refused from the Tuesday 09:00 (project time) after it ends; owners and admins are exempt.'),
        ('*', 'archived_at', 'When the project was archived (readable, no more writes); null while active.'),
        ('*', 'area', 'The name of the component''s area; null when none.'),
        ('*', 'area_name', 'The area''s name; null on the row that gathers components without an area.'),
        ('*', 'system', 'The name of the component''s system; null when none.'),
        ('*', 'system_name', 'The system''s name; null on the row that gathers components without a system.'),
        ('*', 'test_package', 'The name of the component''s test package; null when none.'),
        ('*', 'test_package_name', 'The test package''s name.'),
        ('*', 'test_type', 'The pressure test: Hydrostatic, Pneumatic, Sensitive Leak, Alternative Leak, In-service or Other; null until set (no stages until then).'),
        ('*', 'test_pressure', 'The test pressure (above 0), in test_pressure_unit; null when not given.'),
        ('*', 'test_pressure_unit', 'The unit of test_pressure: PSIG, PSI, BAR or KPA; null when no pressure is given.'),
        ('*', 'target_date', 'The date the package is planned to be tested by; null when not set.'),
        ('*', 'requires_coating', 'Whether the package needs a Protective Coatings Acceptance stage.'),
        ('*', 'requires_insulation', 'Whether the package needs an Insulation Acceptance stage.'),
        -- Drawings and components
        ('*', 'drawing_no', 'The drawing number as entered (lookups and imports match it by its normalized key, drawing_key).'),
        ('*', 'drawing_key', 'The drawing number normalized (trimmed, uppercased, spaces collapsed, sheet suffix as N OF M): spellings of one drawing share it.'),
        ('*', 'sheet', 'The drawing''s sheet as entered; null when not given.'),
        ('*', 'revision', 'The drawing''s revision as entered; null when not given.'),
        ('*', 'component_type', 'The component type: spool, field_weld, pipe, threaded_pipe, valve, fitting, flange, gasket, bolt, support, instrument, tubing, hose or misc_component.'),
        ('*', 'tag', 'The component''s identifying code, normalized: commodity code, spool id, weld number or instrument tag.'),
        ('*', 'size', 'The nominal size in inches, normalized (2, 1.5, 2X1 for a reducer, NOSIZE when none; text that can''t be read is kept uppercased).'),
        ('*', 'seq', 'Which one of a counted item this is (3 in "3 of 10"): 1 up to the quantity per drawing, code and size; 1 for types identified otherwise.'),
        ('*', 'quantity', 'Linear feet for pipe and threaded pipe (the takeoff''s rows summed); 1 for every other type.'),
        ('*', 'spec', 'The piping spec as given; null when not given.'),
        ('*', 'attributes', 'The takeoff''s other columns for this component, as a JSON object of column → value (corrections merge into it).'),
        ('*', 'milestones', 'The component''s milestone values as a JSON object, milestone name → value 0–100.'),
        -- Milestone templates and events
        ('*', 'names', 'The template''s milestone names, in order.'),
        ('*', 'weights', 'Each milestone''s weight in whole percent of the component, in the same order; they sum to 100.'),
        ('*', 'is_partial', 'Per milestone, in the same order: true when it takes any value 0–100, false when only 0 or 100.'),
        ('*', 'categories', 'Per milestone, in the same order: its report category (receive, install, punch, test, restore).'),
        ('*', 'milestone', 'The milestone changed, by name (e.g. Install).'),
        ('*', 'old_value', 'The milestone''s value before the change, 0–100.'),
        ('*', 'new_value', 'The milestone''s value after the change, 0–100.'),
        ('*', 'work_date', 'The work date the change counts on, in the project''s time zone (by default the day it was made; never in the future).'),
        ('*', 'note', 'The note given with the update; null when none.'),
        ('*', 'out_of_sequence', 'Whether the change broke the milestone sequence (accepted because the project flags rather than enforces); see violations.'),
        ('*', 'violations', 'The sequence rules the change broke, e.g. "Install requires Receive"; empty when none.'),
        ('*', 'client_request_id', 'The id a client gave an offline update, so that replaying it returns the first result; null when none.'),
        ('*', 'sentence', 'The change as a sentence, e.g. "J. Ortiz set Install 100 % on valve VBALU-001 2" 3 of 10, drawing P-26B07".'),
        -- Progress
        ('*', 'percent_complete', 'The average % complete of the live components counted, 0–100 to two decimals (0 when there are none).'),
        ('*', 'component_count', 'How many live (not retired) components the row counts.'),
        ('*', 'completed_count', 'How many of those components are 100 % complete.'),
        ('*', 'received_percent', 'Earned share of the receive credit (Receive) available to these components, % 0–100; null when none is available.'),
        ('*', 'installed_percent', 'Earned share of the install credit (Erect, Connect, Support, Install, Fabricate, Fit-up, Weld Complete) available to these components, % 0–100; null when none is available.'),
        ('*', 'punched_percent', 'Earned share of the punch credit (Punch) available to these components, % 0–100; null when none is available.'),
        ('*', 'tested_percent', 'Earned share of the test credit (Test) available to these components, % 0–100; null when none is available.'),
        ('*', 'restored_percent', 'Earned share of the restore credit (Restore) available to these components, % 0–100; null when none is available.'),
        ('*', 'open_review_items', 'How many of the project''s review items are open.'),
        -- Man-hours and history
        ('*', 'budget_mh', 'The component''s budgeted man-hours (to 0.0001).'),
        ('*', 'earned_mh', 'Earned man-hours: each live component''s budget × its earned credit, summed (two decimals); null when there are no live components.'),
        ('*', 'by_man_hours', 'Whether percent_complete is by earned man-hours (a budget exists) rather than by credit; null when there are no live components.'),
        ('*', 'earned_this_week_percent', 'Credit earned on work dates from Monday of this week (project time zone), net of rollbacks, as % of the project''s total credit.'),
        ('*', 'packages_ready', 'How many live test packages have at least one testable member and every testable member ready.'),
        ('*', 'total_mh', 'The version''s total budget in man-hours (an import version: the sum of the components'' budgets).'),
        ('*', 'effective_date', 'The date the version takes effect from, as given (by default the day it was made, in the project''s time zone).'),
        ('*', 'active', 'Whether this is the project''s active version (one at a time).'),
        ('*', 'guessed_sizes', 'How many components had no readable size and were weighed as 0.5.'),
        ('*', 'week_end', 'The Sunday that ends the frozen week.'),
        ('*', 'taken_at', 'When the week''s progress was frozen.'),
        -- Logs
        ('*', 'before', 'The changed fields'' values before the change, as a JSON object ({} when there were none).'),
        ('*', 'after', 'The changed fields'' values after the change, as a JSON object.'),
        ('*', 'reason', 'Why, as the user gave it; null when none was needed.'),
        ('*', 'fields', 'The names of the fields the change changed.'),
        -- Review items
        ('*', 'kind', 'What the review item is about: out_of_sequence, weld_completed or examination_called.'),
        ('*', 'details', 'The item''s facts as JSON: the milestone and violations (out_of_sequence), welder and date welded (weld_completed), stage and the welds called with their numbers (examination_called).'),
        ('*', 'resolved_at', 'When the item was resolved or dismissed; null while open.'),
        ('*', 'resolved_by', 'Who resolved or dismissed the item (user id); null while open.'),
        ('*', 'resolution_note', 'Why the item closed: the note it was dismissed with, or what resolved it (e.g. NDE recorded: RT PASS); null while open.'),
        -- Welds and welders
        ('*', 'stencil', 'The welder''s stencil: 2 to 12 uppercase letters, digits or dashes, unique in the project.'),
        ('*', 'verified', 'Whether the welder has been verified (by a QC inspector or above); imports create unverified ones.'),
        ('*', 'welder', 'The welder''s stencil; null when there is no welder.'),
        ('*', 'welder_name', 'The welder''s name; null when unknown or when the weld has no welder.'),
        ('*', 'weld_number', 'The weld''s number on its drawing; a repair is numbered <weld>.<n> (e.g. W-12.1).'),
        ('*', 'weld_type', 'The weld type: BW, SW, FW, TW or CW; null when not given.'),
        ('*', 'weld_size', 'The weld''s size as given; null when not given.'),
        ('*', 'schedule', 'The pipe schedule as given (e.g. 40, 80, XS); null when not given.'),
        ('*', 'base_metal', 'The base metal as given; null when not given.'),
        ('*', 'xray_percent', 'The x-ray (RT) examination tier in percent: 0, 5, 10 or 100; null when not given.'),
        ('*', 'pwht_required', 'Whether post-weld heat treatment is required; null when not given.'),
        ('*', 'nde_types', 'The NDE methods the weld requires (RT, UT, PT, MT, VT); an x-ray tier above 0 requires RT as well.'),
        ('*', 'date_welded', 'The date the weld was welded, in the project''s time zone; null until welded.'),
        ('*', 'weld_status', 'The weld''s QC status: accepted, rejected or active; null when the component is not a weld.'),
        ('*', 'nde_result', 'The last NDE result written to the weld, of any method: PASS, FAIL or PENDING (a clear leaves it); each method''s current result is in nde_results.'),
        ('*', 'nde_date', 'The date of the last NDE record written to the weld, of any method (a clear included); null when none.'),
        ('*', 'repair_of', 'The id of the rejected weld this weld repairs; null when it is not a repair.'),
        ('*', 'repair_of_number', 'The number of the weld this weld repairs; null when it is not a repair.'),
        ('*', 'repaired_by', 'The id of this weld''s repair; null when it has none (a repaired weld is retired).'),
        ('*', 'unplanned', 'Whether the weld was added in the field rather than coming from the weld log.'),
        ('*', 'current_nde', 'Each NDE method''s current result as JSON, e.g. {"RT": "PASS"}; null when there is none.'),
        ('*', 'last_examined_on', 'The latest examination date among the weld''s NDE records with a result; null when never examined.'),
        ('*', 'search_text', 'Weld number, drawing number and stencil in lowercase, for an ilike search.'),
        ('*', 'examined_on', 'The date examined, in the project''s time zone (by default the day recorded); never before the weld was welded nor in the future.'),
        ('*', 'report_number', 'The NDE report''s number; null when not given.'),
        ('*', 'notes', 'The inspector''s notes; null when none.'),
        ('*', 'supersedes', 'The id of the same method''s previous record, which this one replaces; null for the first.'),
        ('*', 'recorded_by', 'Who recorded it (user id).'),
        ('*', 'recorded_at', 'When it was recorded.'),
        ('*', 'is_current', 'Whether this is its method''s latest record (a current record without a result means the method was cleared).'),
        -- X-ray sampling
        ('*', 'welded', 'How many welds of the lot are welded.'),
        ('*', 'examined', 'How many welds of the lot have a current RT result of PASS or FAIL.'),
        ('*', 'required', 'How many welds of the lot must be examined: ceil(welded × tier ÷ 100).'),
        ('*', 'shortfall', 'How many more welds must be examined to reach required; 0 when met.'),
        ('*', 'called_for', 'The numbers of the welds called for examination and not yet examined.'),
        ('*', 'repairs_awaiting_reexamination', 'How many of the lot''s repaired rejects have a repair that has not passed yet.'),
        -- Test packages
        ('*', 'members', 'How many live components belong to the package (pinned to it, else through their drawing).'),
        ('*', 'testable', 'How many members are testable (not flagged post-hydro).'),
        ('*', 'ready', 'How many testable members are ready: every milestone through Punch at 100 and NDE clear.'),
        ('*', 'ready_percent', 'ready ÷ testable in %, 0–100 to two decimals; 100 when nothing is testable.'),
        ('*', 'post_hydro', 'How many members are flagged post-hydro (installed after the test: members, not testable).'),
        ('*', 'open_examinations', 'How many member welds are called for examination and not yet examined (no current RT PASS or FAIL).'),
        ('*', 'stage', 'The stage''s key: pre_hydro, test, drain_flush, post_hydro, coatings, insulation or final.'),
        ('*', 'position', 'The stage''s place in its package''s order, from 1.'),
        ('*', 'data', 'The stage''s recorded data as a JSON object (e.g. test date, medium, pressure held for the test stage).'),
        ('*', 'skip_reason', 'Why the stage was skipped; null unless skipped.'),
        ('*', 'started_at', 'When the stage was started; null until then.'),
        ('*', 'started_by', 'Who started the stage (user id); null until then.'),
        ('*', 'completed_at', 'When the stage was completed; null until then.'),
        ('*', 'completed_by', 'Who completed the stage (user id); null until then.'),
        ('*', 'signoffs_needed', 'The sign-offs completing the stage needs: qc, client, manufacturer.'),
        ('*', 'signoffs', 'The sign-offs given, as a JSON array of {signoff, name, company_role, signed_on, entered_by, entered_at}.'),
        ('*', 'client', 'The client''s name as printed on the certificate; null when not given.'),
        ('*', 'client_spec', 'The client''s specification as printed on the certificate; null when not given.'),
        ('*', 'line_numbers', 'The line numbers the test covers, as written; null when not given.'),
        ('*', 'medium', 'The test medium (e.g. water, air); null when not given.'),
        ('*', 'temperature', 'The test temperature in temperature_unit; null when not given.'),
        ('*', 'temperature_unit', 'The unit of temperature: F or C; null when no temperature is given.'),
        -- Imports
        ('*', 'filename', 'The file''s name as uploaded.'),
        ('*', 'size_bytes', 'The uploaded file''s size in bytes (at most 50 MB).'),
        ('*', 'skip_invalid_rows', 'Whether the commit skips rows with errors (chosen when committing); null before.'),
        ('*', 'chunks_total', 'How many chunks of 5,000 rows the commit writes; null until the commit starts.'),
        ('*', 'chunks_done', 'How many of the commit''s chunks are written.'),
        ('*', 'validated_at', 'When validation last ran; null before.'),
        ('*', 'committed_at', 'When the commit finished; null until committed.'),
        ('*', 'severity', 'How bad the issue is: error (the row is not committed), warning or info.'),
        -- Invitations
        ('*', 'invited_by', 'Who made the invitation (user id).'),
        ('*', 'sent_at', 'When the invitation was last sent (made or resent; each send makes a new token).'),
        ('*', 'expires_at', 'When the current token stops working: 7 days after it was sent.'),
        ('*', 'sent_count', 'How many times the invitation has been sent.'),
        ('*', 'accepted_at', 'When the invitation was accepted; null until then.'),
        ('*', 'accepted_by', 'Who accepted the invitation (user id); null until then.'),
        ('*', 'revoked_at', 'When the invitation was revoked; null unless revoked.'),
        ('*', 'revoked_by', 'Who revoked the invitation (user id); null unless revoked.'),

        -- ---- Where a view means something narrower ----
        ('activity_feed', 'actor', 'Who made the change, by display name (else email, else Someone).'),
        ('activity_feed', 'created_at', 'When the change was recorded (its work_date may be earlier).'),
        ('area_progress', 'area_id', 'The area''s id; null on the row that gathers components without an area.'),
        ('baselines', 'baseline_id', 'The baseline version''s id.'),
        ('baselines', 'version', 'The version number, 1 up per project; reports read the one in effect at the week they report unless told another.'),
        ('baselines', 'group_by', 'The kind of group the version plans: area, system, test_package, drawing or project.'),
        ('baselines', 'activities', 'How many activities the version holds.'),
        ('baselines', 'budget_mh', 'The activities'' budget man-hours summed; null when none has any.'),
        ('baselines', 'import_id', 'The schedule import that made the version; null when set through the API.'),
        ('baselines', 'created_by', 'Who made the version (user id).'),
        ('baselines', 'created_at', 'When the version was made.'),
        ('baseline_activities', 'baseline_id', 'The baseline version the activity belongs to.'),
        ('baseline_activities', 'version', 'The baseline version number.'),
        ('baseline_activities', 'activity_code', 'The schedule''s activity id, unique in its version.'),
        ('baseline_activities', 'name', 'The activity''s name (its id when none was given).'),
        ('baseline_activities', 'group_by', 'The kind of group the activity plans (its version''s).'),
        ('baseline_activities', 'group_id', 'The id of the area, system, test package or drawing planned; the project''s id for a plan of the project.'),
        ('baseline_activities', 'group_name', 'The name of the group planned.'),
        ('baseline_activities', 'planned_start', 'The first work date of the activity (inclusive).'),
        ('baseline_activities', 'planned_finish', 'The last work date of the activity (inclusive).'),
        ('baseline_activities', 'budget_mh', 'The activity''s budget man-hours; null when not given.'),
        ('baseline_activities', 'weight', 'The activity''s weight in its group where it has no budget man-hours; null when not given (1).'),
        ('baseline_activities', 'curve', 'How its credit is planned over its dates: linear, s_curve, front_loaded or back_loaded.'),
        ('timesheet_hours', 'hours_id', 'The timesheet row''s id (void_hours takes it).'),
        ('timesheet_hours', 'week_start', 'The Monday of the work date''s week.'),
        ('timesheet_hours', 'week_end', 'The Sunday ending the work date''s week.'),
        ('timesheet_hours', 'person', 'Who worked, as recorded; null for a crew''s row.'),
        ('timesheet_hours', 'crew', 'The crew that worked, as recorded; null for a person''s row without one.'),
        ('timesheet_hours', 'craft', 'The craft the hours are of (pipefitter, welder, …); null when not given.'),
        ('timesheet_hours', 'group_by', 'The kind of group charged: area, system, test_package, drawing or project.'),
        ('timesheet_hours', 'group_id', 'The id of the group charged (the project''s id for the project).'),
        ('timesheet_hours', 'group_name', 'The name of the group charged.'),
        ('timesheet_hours', 'hours', 'The hours worked.'),
        ('timesheet_hours', 'note', 'The note recorded with the hours; null when none.'),
        ('timesheet_hours', 'import_id', 'The timesheet import the row came from; null when recorded through the API.'),
        ('timesheet_hours', 'entered_by', 'Who recorded the row or committed its import (user id).'),
        ('timesheet_hours', 'entered_at', 'When the row was recorded.'),
        ('timesheet_hours', 'voided_at', 'When the row was voided; null while it counts.'),
        ('timesheet_hours', 'voided_by', 'Who voided the row (user id); null while it counts.'),
        ('timesheet_hours', 'void_reason', 'Why the row was voided; null while it counts.'),
        ('budget_versions', 'components', 'How many components the version budgeted.'),
        ('budget_versions', 'created_by', 'Who made the version (user id); for an import version, who committed the import.'),
        ('budget_versions', 'method', 'How the budget was made: spread (a total spread over the components by size) or import (a takeoff''s man-hour column).'),
        ('budget_versions', 'reason', 'Why the version was made, as given; an import version names its import.'),
        ('budget_versions', 'version', 'The version''s number within the project: 1, 2, …'),
        ('component_changes', 'action', 'What was done: correct, retire, restore or assign.'),
        ('components', 'percent_complete', 'The component''s % complete, 0–100: Σ milestone weight × value ÷ 100, current in the same transaction.'),
        ('components', 'test_package_id', 'The test package the component belongs to: its own (pinned), else its drawing''s; null when none.'),
        ('components', 'version', 'The component''s version, raised by every change; send it as expected_version so that a stale update is refused (409).'),
        ('drawings', 'area_id', 'The drawing''s area, which its components follow unless assigned on their own; null when none.'),
        ('drawings', 'system_id', 'The drawing''s system, which its components follow unless assigned on their own; null when none.'),
        ('drawings', 'test_package_id', 'The drawing''s test package, which its components follow unless assigned on their own; null when none.'),
        ('drawings', 'title', 'The drawing''s title; null when not given.'),
        ('import_issues', 'code', 'The issue''s stable key in snake_case (e.g. unknown_component_type); the README lists them.'),
        ('import_issues', 'column', 'The column''s header as in the file; null when the issue is about a row or the whole file.'),
        ('import_issues', 'hint', 'How to fix it.'),
        ('import_issues', 'message', 'What is wrong, in words.'),
        ('import_issues', 'row', 'The row as Excel shows it (the header is row 1); 0 or the header''s row for an issue of the whole file.'),
        ('import_issues', 'value', 'The cell''s text as read from the file; null when the issue is about no one cell.'),
        ('imports', 'created_at', 'When the file was uploaded.'),
        ('imports', 'created_by', 'Who uploaded the file (user id).'),
        ('imports', 'format', 'The file''s format, sniffed from its content: csv, xlsx or xls.'),
        ('imports', 'kind', 'What the file is: takeoff (components), field_welds (a weld log), schedule (a baseline''s activities) or timesheet (actual hours).'),
        ('imports', 'result', 'What the commit has written so far, summed over its chunks (counts such as components_created); {} before committing.'),
        ('imports', 'status', 'Where the job stands: uploaded → validated → committing → committed, or failed (the file can''t be read; the reason is in summary).'),
        ('imports', 'summary', 'What validation found, as JSON: file facts (format, sheet, header), row and issue counts, file-level issues and what a commit would create, update and leave alone; null until validated.'),
        ('invitations', 'created_at', 'When the invitation was made (an expired one invited again is made anew).'),
        ('invitations', 'email', 'The invited address: whoever signs in with it as their JWT email may accept.'),
        ('invitations', 'role', 'The role accepting the invitation gives: owner, admin, project_manager, foreman, qc_inspector, welder or viewer.'),
        ('invitations', 'state', 'pending, expired (7 days after it was last sent), accepted or revoked.'),
        ('memberships', 'created_at', 'When the member joined the organization.'),
        ('memberships', 'user_id', 'The member''s user id (the JWT''s sub claim).'),
        ('milestone_events', 'created_at', 'When the change was recorded (its work_date may be earlier).'),
        ('milestone_templates', 'updated_at', 'When the template was last re-weighted (or created).'),
        ('my_profile', 'created_at', 'When your profile was made (your first signed-in request).'),
        ('my_profile', 'user_id', 'Your user id (your JWT''s sub claim).'),
        ('nde_results', 'method', 'The NDE method: RT, UT, PT, MT or VT.'),
        ('nde_results', 'reason', 'Why the method''s previous record was superseded or its result cleared; null for a first record.'),
        ('nde_results', 'result', 'PASS, FAIL or PENDING; null when this record clears the method''s result.'),
        ('organizations', 'name', 'The organization''s name.'),
        ('package_events', 'action', 'What happened: stage_started, stage_edited, signoff_changed, stage_completed or stage_skipped.'),
        ('package_events', 'reason', 'Why: required to change a completed stage or to skip one; null otherwise.'),
        ('project_dashboard', 'budget_mh', 'The active budget''s man-hours over the project''s live components (two decimals); 0 without a budget, null when there are no live components.'),
        ('project_dashboard', 'completed', 'How many of the project''s live components are 100 % complete.'),
        ('project_dashboard', 'components', 'How many live components the project has.'),
        ('project_dashboard', 'percent_complete', 'The project''s % complete, 0–100: earned ÷ budgeted man-hours where a budget exists (see by_man_hours), else the average component % complete; 0 without components.'),
        ('projects', 'name', 'The project''s name.'),
        ('qc_queue', 'component_id', 'The component the item is about (for an examination call, the weld that failed).'),
        ('qc_queue', 'created_at', 'When the review item was opened.'),
        ('review_items', 'component_id', 'The component the item is about (for an examination call, the weld that failed).'),
        ('review_items', 'event_id', 'The milestone event that raised the item; null for an examination call.'),
        ('review_items', 'status', 'open, resolved (what it asked for happened) or dismissed (by QC, with a note).'),
        ('sampling_lots', 'stage', 'The lot''s progressive examination: 0 none, 1 two tracers called after a reject, 2 two more per failed tracer, 3 every weld of the lot.'),
        ('sampling_lots', 'state', 'sampling (examinations still owed), sampled, progressive (called welds or repairs outstanding), accepted (after a progression) or full_examination.'),
        ('sampling_lots', 'welder', 'The welder''s stencil.'),
        ('sampling_lots', 'welder_id', 'The welder''s id.'),
        ('sampling_lots', 'weld_type', 'The lot''s weld type (BW, SW, FW, TW or CW); null for welds without one.'),
        ('sampling_lots', 'xray_percent', 'The lot''s x-ray tier in percent: 5 or 10.'),
        ('system_progress', 'system_id', 'The system''s id; null on the row that gathers components without a system.'),
        ('test_package_certificates', 'number', 'The certificate number, PKG-NNN per project: given on first save, never reused.'),
        ('test_package_progress', 'test_package_id', 'The test package''s id; null on the row that gathers components without a package.'),
        ('test_package_progress', 'test_package_name', 'The test package''s name; null on the row that gathers components without a package.'),
        ('test_package_readiness', 'open_review_items', 'How many review items on the package''s live members are open.'),
        ('test_package_readiness', 'state', 'The package''s workflow state: draft (no stage started), testing, tested (Test Acceptance completed) or turned_over (every stage completed or skipped).'),
        ('test_package_stages', 'status', 'not_started, in_progress, completed or skipped.'),
        ('test_package_stages', 'title', 'The stage''s name as printed (e.g. Pre-Hydro Acceptance).'),
        ('weld_events', 'action', 'What happened: nde_recorded, nde_cleared, welder_edited, welder_cleared, retired, moved, repaired, created_repair, created_unplanned, examination_repicked or imported.'),
        ('weld_log', 'percent_complete', 'The weld''s % complete, 0–100: Σ milestone weight × value ÷ 100.'),
        ('weld_log', 'retired_at', 'When the weld was retired, or replaced by its repair; null while live.'),
        ('weld_log', 'status', 'The weld''s QC status: accepted (every required method passed), rejected (a current FAIL) or active.'),
        ('weld_log', 'test_package_id', 'The test package the weld belongs to: its own (pinned), else its drawing''s; null when none.'),
        ('welders', 'name', 'The welder''s name; null when only the stencil is known (an import creates welders by stencil).'),
        -- Supabase Storage's files (the view exists only where Storage does)
        ('attachments', 'bucket', 'The Storage bucket: pipetrak-drawings, pipetrak-imports or pipetrak-attachments.'),
        ('attachments', 'content_type', 'The file''s MIME type, from Storage''s metadata; null when unknown.'),
        ('attachments', 'created_at', 'When the file was uploaded.'),
        ('attachments', 'id', 'The Storage object''s id (a uuid).'),
        ('attachments', 'linked_id', 'The id of the drawing, weld or test package the file belongs to (from its path); null for an import file.'),
        ('attachments', 'linked_to', 'What the file belongs to: drawing, import, weld or package.'),
        ('attachments', 'path', 'The file''s path in its bucket; the first segment is the project id.'),
        ('attachments', 'size', 'The file''s size in bytes, from Storage''s metadata; null when unknown.'),
        ('attachments', 'uploaded_by', 'Who uploaded the file: the Storage owner''s user id.')
        ), columns as (
            select c.relname::text as view_name, a.attname::text as column_name
            from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            where c.relnamespace = 'pipetrak_api'::regnamespace and c.relkind = 'v'
        ), optional_views (view_name) as (values
            -- Made by install_platform() only where Supabase Storage exists.
            ('attachments')
        )
        -- Every view column with its words: the view's own entry, else the vocabulary's.
        select 'column' as finding, c.view_name, c.column_name, coalesce(own.description, general.description) as description
        from columns c
        left join described own on own.view_name = c.view_name and own.column_name = c.column_name
        left join described general on general.view_name = '*' and general.column_name = c.column_name
        union all
        -- A view's entry for a column the view doesn't have (an optional view's, only when it exists).
        select 'stray', d.view_name, d.column_name, 'no such view column'
        from described d
        where d.view_name <> '*'
          and not exists (select from columns c where c.view_name = d.view_name and c.column_name = d.column_name)
          and not (d.view_name in (select o.view_name from optional_views o)
                   and not exists (select from columns c where c.view_name = d.view_name))
        union all
        -- A word of the vocabulary that no view column takes (none has the name, or each view overrides it).
        select 'stray', d.view_name, d.column_name, 'no view column takes it'
        from described d
        where d.view_name = '*'
          and not exists (select from columns c where c.column_name = d.column_name
                          and not exists (select from described own
                                          where own.view_name = c.view_name and own.column_name = c.column_name))
        union all
        select 'stray', d.view_name, d.column_name, 'described twice'
        from described d
        group by d.view_name, d.column_name
        having count(*) > 1
        order by 1, 2, 3
    loop
        if v_row.finding = 'stray' then
            v_stray := concat_ws(', ', v_stray, format('%s.%s (%s)', v_row.view_name, v_row.column_name, v_row.description));
        elsif v_row.description is null then
            v_missing := concat_ws(', ', v_missing, format('%s.%s', v_row.view_name, v_row.column_name));
        else
            execute format('comment on column pipetrak_api.%I.%I is %L', v_row.view_name, v_row.column_name, v_row.description);
        end if;
    end loop;
    if v_missing is not null then
        raise exception 'pipetrak_api view columns without a description: %', v_missing
            using hint = 'Describe them in sql/97_column_comments.sql (a ''*'' entry, or the view''s own where the name means something narrower there).';
    end if;
    if v_stray is not null then
        raise exception 'sql/97_column_comments.sql describes what no view column takes: %', v_stray
            using hint = 'Remove or rename the entries (a ''*'' entry that every view overrides is dead too).';
    end if;
end
$column_comments$;

select pipetrak.describe_api_columns();
