-- Bootstrap: the API schema and the one catalog of error keys every raised error comes from.
-- The extension's own schema, `pipetrak`, is created from the control file and never exposed.

-- The only schema PostgREST exposes: security_invoker views for reads, functions for writes.
create schema pipetrak_api;
comment on schema pipetrak_api is 'pipetrak HTTP/SQL API: views for reads, functions for writes and workflows.';

-- Every error the extension raises: a stable key, the SQLSTATE PostgREST turns into an HTTP status
-- (PTxxx = HTTP xxx), a message and a hint. Static catalog shipped with the extension (not user data).
create table pipetrak.error_codes (
    code     text primary key check (code ~ '^[a-z][a-z0-9_]*$'),
    sqlstate text not null check (sqlstate ~ '^[0-9A-Z]{5}$'),
    message  text not null,
    hint     text not null
);

-- The counter of an error code's refusals: a sequence, `pipetrak.error_count_<code>` (quoted).
create function pipetrak.error_counter(p_code text)
returns text
language sql immutable parallel safe
as $$
    select pg_catalog.format('pipetrak.%I', 'error_count_' || p_code)
$$;

-- Each code has a counter of its refusals (count_error; pipetrak.metrics() reads them), made when
-- the code enters the catalog (by this install, by the upgrade that adds it) or is renamed.
create function pipetrak.error_counter_create()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    execute format('create sequence if not exists %s', pipetrak.error_counter(new.code));
    execute format('comment on sequence %s is %L', pipetrak.error_counter(new.code),
                   'Refusals with error ' || new.code || ' since the extension was installed (pipetrak.metrics()).');
    return null;
end
$$;

create trigger error_codes_counter after insert or update of code on pipetrak.error_codes
    for each row execute function pipetrak.error_counter_create();

insert into pipetrak.error_codes (code, sqlstate, message, hint) values
    ('not_authenticated',        'PT401', 'No signed-in user in this request', 'Send a JWT whose "sub" claim is the user''s uuid (request.jwt.claims).'),
    ('permission_denied',        '42501', 'Your role does not allow this', 'Ask an owner or admin of the organization for a role that allows it.'),
    ('cannot_change_own_role',   'PT403', 'Nobody can change their own role or membership this way', 'Ask another owner or admin to do it.'),
    ('owner_only',               'PT403', 'Only an owner can manage owners', 'Ask an owner of the organization.'),
    ('work_week_locked',         'PT403', 'That work date is in a locked week', 'Weeks lock on Tuesday 09:00 project time after they end; ask an owner or admin to record it.'),
    ('audit_log_immutable',      'PT403', 'Milestone events can''t be changed or deleted', 'Record a new update instead; the log is append-only.'),
    ('organization_not_found',   'PT404', 'Organization not found', 'Check the id; you only see organizations you belong to.'),
    ('project_not_found',        'PT404', 'Project not found', 'Check the id; you only see projects of your organizations.'),
    ('member_not_found',         'PT404', 'That user is not a member of the organization', 'List the organization''s memberships to find the user id.'),
    ('reference_not_found',      'PT404', 'Area, system or test package not found in this project', 'Use an id from the project''s areas, systems or test_packages.'),
    ('drawing_not_found',        'PT404', 'Drawing not found in this project', 'Use an id from pipetrak_api.drawings of the same project.'),
    ('component_not_found',      'PT404', 'Component not found', 'Check the id; you only see components of your organizations'' projects.'),
    ('review_item_not_found',    'PT404', 'Review item not found', 'Use an id from pipetrak_api.review_items.'),
    ('version_conflict',         'PT409', 'The component changed since you read it', 'Reload the component (its current state is in the detail) and apply your change again.'),
    ('component_retired',        'PT409', 'The component is retired', 'Retired components keep their history but take no more updates.'),
    ('project_archived',         'PT409', 'The project is archived', 'Archived projects are read-only.'),
    ('out_of_sequence',          'PT409', 'The update breaks the milestone sequence', 'Complete the milestones it requires first (listed in the detail), or ask for the project''s sequence mode to be "flag".'),
    ('last_owner',               'PT409', 'An organization must keep at least one owner', 'Make another member an owner first.'),
    ('already_member',           'PT409', 'That user is already a member', 'Use change_member_role to change their role.'),
    ('name_taken',               'PT409', 'That name is already used in this project', 'Choose another name, or use the existing one.'),
    ('job_number_taken',         'PT409', 'That job number is already used in this organization', 'Choose another job number.'),
    ('drawing_exists',           'PT409', 'A drawing with that number already exists in this project', 'Drawing numbers compare after normalization (case, spaces, sheet suffix); use the existing drawing.'),
    ('duplicate_component',      'PT409', 'A component with that identity already exists', 'Spool ids and weld numbers are unique in a project; use the existing component.'),
    ('reference_in_use',         'PT409', 'Drawings or components are still assigned to it', 'Assign them elsewhere first.'),
    ('template_in_use',          'PT409', 'Components of this type already have progress', 'Pass recompute => true so their % complete follows the new weights.'),
    ('invalid_argument',         'PT400', 'An argument is missing or malformed', 'See the detail for the argument and what it accepts.'),
    ('unknown_component_type',   'PT422', 'Unknown component type', 'Use one of the accepted names listed in the detail.'),
    ('unknown_milestone',        'PT422', 'That milestone is not in the component''s template', 'Use a milestone name listed in the detail.'),
    ('invalid_milestone_value',  'PT422', 'A milestone value is a number from 0 to 100 with at most two decimals', 'Send e.g. 0, 50, 33.33 or 100.'),
    ('discrete_milestone_value', 'PT422', 'This milestone is done or not done: its value must be 0 or 100', 'Send 0 or 100.'),
    ('work_date_in_future',      'PT422', 'The work date is in the future', 'Use today''s date (project time) or an earlier one.'),
    ('invalid_template',         'PT422', 'The template is not valid', 'Give every milestone of the template an integer weight; the weights must sum to 100.'),
    ('invalid_role',             'PT422', 'Unknown role', 'Use owner, admin, project_manager, foreman, qc_inspector, welder or viewer.'),
    ('invalid_time_zone',        'PT422', 'Unknown time zone', 'Use an IANA name such as America/Chicago (see pg_timezone_names).'),
    ('invalid_stencil',          'PT422', 'A welder stencil is 2 to 12 letters, digits or dashes', 'Send e.g. K-12 or WLD001.'),
    ('not_a_field_weld',         'PT422', 'The component is not a field weld', 'Welders are assigned to field_weld components only.'),
    ('import_not_found',         'PT404', 'Import not found', 'Check the id; you only see imports of projects you may import into.'),
    ('import_not_validated',     'PT409', 'The import has not been validated', 'Call import_validate first and look at its report.'),
    ('import_already_committed', 'PT409', 'The import is committing or committed', 'Upload the file again to start a new import; commit resumes with import_commit.'),
    ('import_has_errors',        'PT422', 'Rows of the import have errors', 'Fix them (see import_issues or import_report_csv) and upload again, or commit with skip_invalid_rows => true.'),
    ('file_too_large',           'PT413', 'The file is larger than the upload limit', 'Split the file, or remove pivot sheets and pictures from the workbook (the detail gives the limit: 50 MB unless the administrator set pipetrak.max_upload_mb lower).'),
    ('unsupported_file',         'PT415', 'The file is neither CSV nor an Excel workbook (.xlsx, .xls)', 'Save it from Excel as .xlsx or CSV (comma, semicolon or tab separated); .ods, .xlsb and Word files are not read.'),
    ('damaged_file',             'PT415', 'The workbook is damaged or incomplete', 'Open it in Excel (which repairs what it can) and save it again, or upload it again if the upload was cut short.'),
    ('empty_file',               'PT422', 'The file is empty', 'Export the sheet again: the upload has no bytes.'),
    ('import_failed',            'PT422', 'The import''s file could not be read', 'See the reasons in the detail (and the job''s file_issues); fix the file and upload it again.'),
    ('text_too_long',            'PT422', 'A text is longer than allowed', 'Shorten it: the detail names the argument and its maximum length in characters.'),
    ('invalid_date',             'PT422', 'That is not a calendar date', 'Send a finite date such as 2025-03-04 (not infinity or -infinity).'),
    ('user_not_found',           'PT404', 'No such user among the people you work with', 'Only people who already share an organization with you can be added by id; ask the person to share their user id from an organization you both belong to.'),
    ('batch_too_large',          'PT413', 'Too many items in one request', 'Split the batch: the detail gives the limit (10,000 items unless the administrator set pipetrak.max_batch_items lower).'),
    ('weld_not_welded',          'PT409', 'The weld has no welder and date welded yet', 'Assign the welder and date welded (assign_welder) before recording NDE.'),
    ('nde_before_welded',        'PT422', 'The examination is dated before the weld was welded', 'Use the date the weld was examined: on or after its date welded.'),
    ('reason_required',          'PT422', 'A reason is required', 'Say why (at least the characters the detail gives): it is kept in the history.'),
    ('invalid_nde',              'PT422', 'Not an NDE method or result', 'Use a method of RT, UT, PT, MT, VT and a result of PASS, FAIL or PENDING.'),
    ('nde_not_recorded',         'PT409', 'The weld has no current result for that method', 'Nothing to clear; see pipetrak_api.nde_results.'),
    ('welder_not_found',         'PT404', 'Welder not found', 'Use an id from pipetrak_api.welders of a project you belong to.'),
    ('stencil_taken',            'PT409', 'That stencil is already a welder of this project', 'Use the existing welder (pipetrak_api.welders).'),
    ('weld_record_immutable',    'PT403', 'NDE results and weld events can''t be changed or deleted', 'Record a new result with a reason: it supersedes the last one for its method.'),
    ('weld_has_nde',             'PT409', 'The weld has an NDE result', 'Clear its NDE results first (clear_nde, with a reason), or edit the welder instead (edit_welder).'),
    ('weld_already_welded',      'PT409', 'The weld is already welded', 'Change its welder or date with edit_welder (with a reason); only a weld not yet welded is assigned a welder or moves: clear its welder first (clear_welder) if it was recorded on the wrong weld or drawing.'),
    ('weld_not_rejected',        'PT409', 'Only a rejected weld is repaired', 'Record the failing NDE result first; see the weld''s status.'),
    ('repair_limit',             'PT409', 'The weld has been repaired 10 times: engineering review required', 'Ask engineering how to proceed; the chain takes no more repairs.'),
    ('weld_has_repair',          'PT409', 'The weld has a repair', 'Work on the repair weld instead: a repaired weld keeps its FAIL and can''t be retired.'),
    ('test_package_not_found',   'PT404', 'Test package not found', 'Use an id from pipetrak_api.test_package_readiness of a project you belong to.'),
    ('pressure_required',        'PT422', 'A Hydrostatic or Pneumatic test needs its pressure and unit', 'Give test_pressure > 0 with test_pressure_unit PSIG, PSI, BAR or KPA.'),
    ('stages_started',           'PT409', 'The package''s stages have started', 'The test type, coating and insulation needs can change only before the first stage starts.'),
    ('stage_not_found',          'PT404', 'The package has no such stage', 'See pipetrak_api.test_package_stages: stages come from the test type (set it with update_test_package).'),
    ('stage_out_of_order',       'PT409', 'The stage before this one is not completed or skipped', 'Complete or skip the stage named in the detail first.'),
    ('stage_state',              'PT409', 'The stage can''t do that in its state', 'A stage goes not_started → in_progress → completed, or is skipped before it completes; see the detail.'),
    ('stage_incomplete',         'PT422', 'The stage needs more data or sign-offs to complete', 'Save the fields and sign-offs the detail lists (save_stage, sign_stage), then complete it.'),
    ('nde_outstanding',          'PT409', 'A member weld awaits NDE or repair', 'Record the NDE (or repair the rejected weld) of the welds the detail counts, then confirm NDE complete.'),
    ('package_not_ready',        'PT409', 'Not every testable member of the package is ready', 'Finish the members the detail counts by drawing (see test_package_blockers), or flag post-hydro ones.'),
    ('certificate_locked',       'PT409', 'The certificate is locked: Test Acceptance is complete', 'A certificate is edited only until its package''s Test Acceptance completes.'),
    ('package_record_immutable', 'PT403', 'Package events can''t be changed or deleted', 'The package''s history is append-only.'),
    ('invitation_not_found',     'PT404', 'Invitation not found', 'Check the link: it may have been resent (a new token) or mistyped; ask for a new invitation.'),
    ('invitation_expired',       'PT410', 'The invitation has expired', 'Invitations are valid 7 days; ask an owner or admin to resend it.'),
    ('invitation_revoked',       'PT410', 'The invitation was revoked', 'Ask an owner or admin of the organization for a new invitation.'),
    ('invitation_used',          'PT410', 'The invitation has already been accepted', 'Each invitation is accepted once; the member is in the organization''s memberships.'),
    ('invitation_email_mismatch', 'PT403', 'The invitation is for another email address', 'Sign in with the address the invitation was sent to (your JWT''s email claim), or ask for an invitation to yours.'),
    ('invitation_pending',       'PT409', 'An invitation to that address is already pending', 'Resend it (resend_invitation) or revoke it first.'),
    ('invalid_email',            'PT422', 'That is not an email address', 'Send an address such as name@example.com (at most 320 characters).'),
    ('confirmation_mismatch',    'PT422', 'The name you confirmed does not match', 'Type the exact name (case and spaces count) to confirm the deletion.'),
    ('change_log_immutable',     'PT403', 'The component change log can''t be changed or deleted', 'The log is append-only: correct the component again with a reason.'),
    ('component_has_progress',   'PT409', 'The component has progress', 'Its type changes only while every milestone is 0: roll its milestones back first, or retire it and create the right one.'),
    ('weld_type_change',         'PT409', 'A field weld can''t become another type, nor another type a field weld', 'Retire the component (with a reason) and create the right one.'),
    ('component_not_retired',    'PT409', 'The component is not retired', 'Only retired components are restored.'),
    ('value_too_large',          'PT413', 'A value is larger than allowed', 'Send less: the detail names the argument and its limit in bytes.'),
    ('pg_cron_missing',          'PT424', 'pg_cron is not installed in this database', 'Install pg_cron (CREATE EXTENSION pg_cron, with pg_cron in shared_preload_libraries) first; snapshots freeze on the first write after a week locks without it.'),
    ('baseline_not_found',       'PT404', 'The project has no baseline of that version', 'See pipetrak_api.baselines for the project''s versions, or omit baseline_version to read the one in effect.'),
    ('hours_not_found',          'PT404', 'Timesheet row not found', 'Use an hours_id from pipetrak_api.timesheet_hours of a project you belong to.'),
    ('hours_voided',             'PT409', 'The timesheet row is already voided', 'Nothing to void; record the right hours with record_hours.'),
    ('citus_missing',            'PT424', 'Citus is not installed in this database', 'Run pipetrak.distribute() on a Citus coordinator: citus in shared_preload_libraries, CREATE EXTENSION citus, the workers added.'),
    ('not_supported_distributed', 'PT501', 'That is not supported on a distributed (Citus) installation yet', 'The detail says what; pipetrak.distribution_obstacles() lists what the schema still lacks.'),
    ('week_not_frozen',          'PT409', 'That week locked before the project''s weekly snapshots began: it has no frozen report', 'Ask for a week from the first frozen one (in the detail) on, or read progress_as_of for what the events say now.');

-- Counts one refusal with the catalogued error `p_code` in its counter (`error_count_<code>`, a
-- sequence: nextval is the one write PostgreSQL keeps when the transaction then rolls back, as a
-- refused request's does). Nothing is counted where nothing may be written (a standby, a read-only
-- transaction) or for a code the catalog lacks. Read by pipetrak.metrics().
create function pipetrak.count_error(p_code text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_counter regclass := to_regclass(pipetrak.error_counter(p_code));
begin
    if v_counter is not null and not pg_is_in_recovery() and current_setting('transaction_read_only') = 'off' then
        perform nextval(v_counter);
    end if;
end
$$;

-- Raises the catalogued error `p_code`: detail is {"code": p_code, ...p_context}. Unknown keys
-- become an internal error that still reveals nothing but the key. Each refusal is counted
-- (count_error) and, with pipetrak.log_refusals on, logged as one JSON line.
create function pipetrak.raise_error(p_code text, p_context jsonb default '{}', p_message text default null)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_error pipetrak.error_codes;
begin
    select * into v_error from pipetrak.error_codes where code = p_code;
    if not found then
        v_error := row(p_code, 'XX000', 'internal error', 'Report this to your administrator.');
    end if;
    perform pipetrak.count_error(p_code);
    if pipetrak.logging('refusals') then
        begin
            raise log 'pipetrak: %', jsonb_build_object(
                'event', 'refused', 'code', p_code, 'sqlstate', v_error.sqlstate,
                'user', pipetrak.current_user_id(), 'session_user', session_user, 'detail', coalesce(p_context, '{}'));
        exception when others then
            null;  -- claims that are not JSON: the refusal itself still reaches the caller
        end;
    end if;
    raise exception using
        errcode = v_error.sqlstate,
        message = coalesce(p_message, v_error.message),
        detail = (jsonb_build_object('code', p_code) || coalesce(p_context, '{}'))::text,
        hint = v_error.hint;
end
$$;

-- Refuses a text longer than `p_max` characters with a catalogued error naming the argument (the
-- table's check constraint would say only 23514).
create function pipetrak.check_text_length(p_argument text, p_value text, p_max integer)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if length(p_value) > p_max then
        perform pipetrak.raise_error('text_too_long', jsonb_build_object('argument', p_argument, 'max_length', p_max, 'length', length(p_value)));
    end if;
end
$$;

-- Refuses a JSON value larger than `p_max_bytes` as sent (its text), with a catalogued error naming
-- the argument: what a request stores or aggregates is bounded before any work is done on it.
create function pipetrak.check_json_size(p_argument text, p_value jsonb, p_max_bytes integer)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    -- pg_column_size is the datum's size, read without walking it; a compressed datum (a value
    -- taken from a table) is measured as its text.
    if pg_column_size(p_value) > p_max_bytes
       or (pg_column_compression(p_value) is not null and octet_length(p_value::text) > p_max_bytes) then
        perform pipetrak.raise_error('value_too_large', jsonb_build_object('argument', p_argument, 'max_bytes', p_max_bytes,
                                                                           'bytes', pg_column_size(p_value)));
    end if;
end
$$;

-- Refuses infinity and -infinity, which date arithmetic can't use (it would say only 22008).
create function pipetrak.check_date(p_argument text, p_value date)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if not isfinite(p_value) then
        perform pipetrak.raise_error('invalid_date', jsonb_build_object('argument', p_argument, 'value', p_value::text));
    end if;
end
$$;
