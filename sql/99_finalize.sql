-- Privileges and pg_dump registration, run last. Both live in functions so every upgrade script can
-- run them again at its end: a table or function an upgrade adds gets the same treatment.
--
-- Design notes (decisions where the spec was silent):
-- - pg_dump: ids are `bigserial` so their sequences can be registered with
--   `pg_extension_config_dump` along with every data table (checked by pgTAP). `error_codes` is a
--   static catalog recreated by `CREATE EXTENSION`; `progress_parts` is not dumped — restoring the
--   components rebuilds it (their `COPY` fires the progress trigger), where dumping it too would
--   count every component twice. After a data-only restore with triggers disabled, `select
--   pipetrak.rebuild_progress_parts()` rebuilds it.

-- Privileges from an allow-list. Nothing is public; `anon` gets nothing at all; `authenticated`
-- reads tables through RLS, runs the API, and runs only the few internal functions named here: the
-- helpers its views and policies call, and the security-definer functions the API's SQL wrappers
-- hand off to (each checks the caller's role first). Every other internal function stays private,
-- so a new one can never slip out. `service_role` (BYPASSRLS) is the back office: it reads everything
-- and runs the API. Roles come from the environment; grants go to those that exist.
create function pipetrak.grant_privileges()
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_role text;
    v_function text;
begin
    revoke all on schema pipetrak, pipetrak_api from public;
    revoke all on all tables in schema pipetrak from public;
    revoke all on all tables in schema pipetrak_api from public;
    revoke all on all sequences in schema pipetrak from public;
    revoke all on all functions in schema pipetrak from public;
    revoke all on all functions in schema pipetrak_api from public;
    revoke all on all procedures in schema pipetrak_api from public;
    foreach v_role in array array['authenticated', 'service_role'] loop
        continue when not exists (select from pg_catalog.pg_roles where rolname = v_role);
        execute format('revoke all on all functions in schema pipetrak from %I', v_role);
        execute format('grant usage on schema pipetrak, pipetrak_api to %I', v_role);
        execute format('grant select on all tables in schema pipetrak, pipetrak_api to %I', v_role);
        execute format('grant execute on all functions in schema pipetrak_api to %I', v_role);
        execute format('grant execute on all procedures in schema pipetrak_api to %I', v_role);
        for v_function in
            select p.oid::regprocedure::text
            from pg_catalog.pg_proc p
            where p.pronamespace = 'pipetrak'::regnamespace
              and p.proname = any (array[
                  -- called by views and policies as the reader
                  'current_claims', 'current_user_id', 'my_organization_ids', 'my_project_ids',
                  'project_visible', 'project_visible_for', 'organization_visible', 'organization_visible_for',
                  'member_visible', 'caller_is',
                  -- PostgREST's db-pre-request on a Citus cluster
                  'pre_request',
                  'percent_of', 'week_start', 'weld_search_text',
                  -- security-definer targets of pipetrak_api's wrappers
                  'sync_profile', 'create_organization', 'add_member', 'change_member_role', 'remove_member',
                  'create_project', 'update_project_settings', 'archive_project', 'project_channel',
                  'event_is_genuine', 'create_reference', 'rename_reference', 'retire_reference',
                  'update_test_package', 'create_drawing', 'revise_drawing', 'assign_drawing', 'retire_drawing',
                  'create_component', 'assign_component', 'retire_component', 'reweight_template',
                  'update_milestone', 'update_milestones', 'assign_welder', 'resolve_review_item',
                  'import_upload', 'import_validate', 'import_report_csv', 'import_commit', 'import_commit_chunk',
                  'record_nde', 'clear_nde', 'create_welder', 'rename_welder', 'verify_welder', 'edit_welder',
                  'clear_welder', 'retire_weld', 'move_weld', 'create_unplanned_weld', 'create_repair',
                  'dismiss_review_item', 'weld_progress', 'welder_summary',
                  'repick_examination', 'set_post_hydro', 'start_stage', 'save_stage', 'sign_stage', 'complete_stage',
                  'skip_stage', 'save_certificate', 'test_package_blockers', 'turnover_report', 'progress_delta',
                  'progress_as_of', 'weekly_report', 'manhour_progress', 'weld_delta', 'spread_budget',
                  'invite_member', 'resend_invitation', 'revoke_invitation', 'accept_invitation', 'update_profile',
                  'rename_organization', 'delete_organization', 'rename_project', 'unarchive_project', 'delete_project',
                  'correct_component', 'component_batch', 'retire_component_for', 'restore_component',
                  'search_project', 'weld_log_page', 'set_baseline', 'record_hours', 'void_hours', 'controls_week',
                  's_curve', 'forecasts', 'stalled_components',
                  -- called by the controls views as the reader
                  'group_name', 'week_end_of',
                  -- the argument limits every wrapper checks first
                  'limited',
                  -- called by policies (Storage, Realtime) and the invitations view as the reader
                  'storage_allows', 'realtime_topic_allows', 'invitation_state',
                  -- called by the sampling and package views as the reader
                  'sampling_required', 'package_state', 'package_stage_rule', 'certificate_label', 'component_types'])
        loop
            execute format('grant execute on function %s to %I', v_function, v_role);
        end loop;
    end loop;
    -- Tables no reader needs at all: secrets, the extension's own bookkeeping, and the views only
    -- its import functions read.
    foreach v_role in array array['authenticated', 'service_role'] loop
        continue when not exists (select from pg_catalog.pg_roles where rolname = v_role);
        execute format('revoke all on table pipetrak.project_secrets, pipetrak.progress_deferrals, pipetrak.component_sources,
                        pipetrak.historical_writes, pipetrak.event_outbox, pipetrak.event_sender,
                        pipetrak.import_plan_rows, pipetrak.live_welds from %I', v_role);
        -- Invitations are read without the token's hash.
        execute format('revoke all on table pipetrak.invitations from %I', v_role);
        execute format('grant select (id, organization_id, email, role, invited_by, created_at, sent_at, expires_at, sent_count,
                        accepted_at, accepted_by, revoked_at, revoked_by) on pipetrak.invitations to %I', v_role);
    end loop;
end
$$;


-- pg_dump skips extension tables unless they are registered: every data table and its sequence.
-- Not progress_parts, progress_packages, weld_tallies, weld_day_tallies, progress_days,
-- component_touches: restoring the components, welds, events and review items
-- rebuilds them (their COPY fires the triggers), so dumping them too would count everything twice. Not progress_deferrals: it only holds rows inside a
-- transaction. One call per relation: each call rewrites the extension's catalog row.
create function pipetrak.register_dump_tables()
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_relation text;
begin
    foreach v_relation in array array[
        'user_profiles', 'organizations', 'organizations_id_seq', 'memberships', 'projects', 'projects_id_seq',
        'project_secrets', 'areas', 'areas_id_seq', 'systems', 'systems_id_seq', 'test_packages', 'test_packages_id_seq',
        'drawings', 'drawings_id_seq', 'milestone_templates', 'welders', 'welders_id_seq', 'components',
        'components_id_seq', 'field_welds', 'milestone_events', 'milestone_events_id_seq', 'review_items',
        'review_items_id_seq', 'client_requests', 'import_jobs', 'import_jobs_id_seq', 'import_rows', 'component_sources',
        'nde_results', 'nde_results_id_seq', 'weld_events', 'weld_events_id_seq', 'examination_calls',
        'examination_calls_id_seq', 'package_stages', 'package_stages_id_seq', 'stage_signoffs', 'stage_signoffs_id_seq',
        'package_events', 'package_events_id_seq', 'certificate_numbers', 'package_certificates', 'budget_versions',
        'budget_versions_id_seq', 'component_budgets', 'snapshot_weeks', 'weekly_snapshots', 'invitations',
        'invitations_id_seq', 'component_changes', 'component_changes_id_seq', 'baselines', 'baselines_id_seq',
        'baseline_activities', 'timesheet_hours', 'timesheet_hours_id_seq', 'hours_days', 'weekly_groups']
    loop
        perform pg_catalog.pg_extension_config_dump('pipetrak.' || v_relation, '');
    end loop;
end
$$;

comment on function pipetrak.grant_privileges() is
    'Grants from the allow-list: authenticated and service_role run the API and the few internal functions it hands off to; nothing is public. Run by every install and upgrade.';
comment on function pipetrak.register_dump_tables() is
    'Registers every data table and sequence for pg_dump (not the derived tables, rebuilt on restore). Run by every install and upgrade.';

-- What each table holds, for a DBA reading `\dt+` (the design notes are beside each table).
comment on table pipetrak.error_codes is 'Catalog of every error the extension raises: key, SQLSTATE, message, hint. Shipped with the extension (not user data; not dumped).';
comment on table pipetrak.user_profiles is 'One row per signed-in user: email and display name from the JWT (sync_profile, update_profile).';
comment on table pipetrak.organizations is 'Tenants: each holds projects and members.';
comment on table pipetrak.memberships is 'Who belongs to an organization, with one role (owner … viewer); row-level security reads it.';
comment on table pipetrak.invitations is 'Invitations to an organization by email: the token''s hash, role, expiry, acceptance or revocation.';
comment on table pipetrak.projects is 'Projects of an organization: time zone, sequence mode, week lock, archive state.';
comment on table pipetrak.project_secrets is 'Per-project keys: the realtime channel name and the event signing key. Readable by no user role.';
comment on table pipetrak.areas is 'Areas of a project (unique names, ignoring case); retired, never deleted while used.';
comment on table pipetrak.systems is 'Systems of a project (unique names, ignoring case); retired, never deleted while used.';
comment on table pipetrak.test_packages is 'Test packages of a project: test type, pressure, target date, coating and insulation duties.';
comment on table pipetrak.drawings is 'Drawings of a project, keyed so look-alike spellings of a number are one drawing; default area, system and package of their components.';
comment on table pipetrak.milestone_templates is 'Per project and component type: the milestones, their weights, categories and kinds (partial or discrete).';
comment on table pipetrak.components is 'The tracked things: one row per component with its identity, milestone values and earned credit (ten-thousandths of a percent).';
comment on table pipetrak.milestone_events is 'Append-only audit of every milestone change: before, after, work date, actor, credit. The history reports read it.';
comment on table pipetrak.client_requests is 'Replays of offline updates: the first result of each client_request_id, returned again when the request is replayed.';
comment on table pipetrak.review_items is 'Items for a person to review (out-of-sequence progress, welds completed, import findings): open, resolved or dismissed.';
comment on table pipetrak.welders is 'Welders of a project: stencil, name, verification.';
comment on table pipetrak.field_welds is 'The weld facts of field-weld components: type, size, welder, date welded, NDE duty and current results, status, repair chain.';
comment on table pipetrak.nde_results is 'Append-only NDE results of welds: method, result, date, report, who recorded it; a correction supersedes.';
comment on table pipetrak.weld_events is 'Append-only history of weld changes (welder, NDE, retirements, moves, imports) with before, after and reason.';
comment on table pipetrak.examination_calls is 'X-ray sampling: welds called for examination (tracers after a reject, the lot sample) and when they were examined.';
comment on table pipetrak.weld_tallies is 'Derived weld counts per area, system, package, welder, type and x-ray tier, kept by triggers. Not dumped: rebuilt on restore (rebuild_weld_tallies).';
comment on table pipetrak.weld_day_tallies is 'Derived per welder and day: welds welded, examined and rejected by RT, kept by triggers. Not dumped: rebuilt on restore.';
comment on table pipetrak.import_jobs is 'Imports: the uploaded file, kind, status (uploaded, validated, committing, committed, failed), summary and result.';
comment on table pipetrak.import_rows is 'Staged rows of an import with their issues, kept a day after commit and a week after validation (purge_staged_rows).';
comment on table pipetrak.component_sources is 'What an imported row made (for the remediation round trip): the components a reported or fixed row created or corrected.';
comment on table pipetrak.package_stages is 'Workflow stages of a test package with their data and state.';
comment on table pipetrak.stage_signoffs is 'Sign-offs of package stages: who signed, as what company role, when.';
comment on table pipetrak.package_events is 'Append-only history of a test package: stages started, saved, signed, completed, skipped.';
comment on table pipetrak.certificate_numbers is 'The next certificate number per project (numbers are never reused).';
comment on table pipetrak.package_certificates is 'Test certificates of packages: number, client, pressure, medium, temperature.';
comment on table pipetrak.budget_versions is 'Man-hour budget spreads of a project: total, reason, effective date.';
comment on table pipetrak.component_budgets is 'Each component''s budgeted man-hours under the current budget version.';
comment on table pipetrak.progress_parts is 'Derived progress per drawing, area, system, package and type, kept by statement triggers; the rollups sum it. Not dumped: rebuilt on restore (rebuild_progress_parts).';
comment on table pipetrak.progress_packages is 'Derived: the progress parts summed per test package, with its open review items, kept by triggers on the parts and the items; the dashboard and package readiness read it. Not dumped: rebuilt with the parts.';
comment on table pipetrak.event_outbox is 'Signed change events of committed transactions waiting for the event sender to NOTIFY them (a few rows for milliseconds). Unlogged; not dumped.';
comment on table pipetrak.event_sender is 'The pid of the database''s running event sender (a background worker started on demand). Unlogged; not dumped.';
comment on table pipetrak.progress_deferrals is 'Per-transaction marks of a bulk update that nets the rollups once at its end. Holds rows only inside a transaction; not dumped.';
comment on table pipetrak.progress_days is 'Derived credit earned per day and part, from the milestone events; the history reports read it. Not dumped: rebuilt on restore.';
comment on table pipetrak.component_touches is 'Derived: the days each component was touched, under its current drawing and groups, for counting components over long windows. Not dumped: rebuilt on restore.';
comment on table pipetrak.historical_writes is 'Per-transaction mark of a write of the historical record (a weld log''s commit), whose work dates may lie in a locked week. Only the extension writes it; a row lives for its transaction. Not dumped.';
comment on table pipetrak.snapshot_weeks is 'The weeks whose progress is frozen, per project.';
comment on table pipetrak.weekly_snapshots is 'Frozen progress of each locked week per part: what was earned and available then. A week''s report never changes.';
comment on table pipetrak.baselines is 'Baseline versions of a project''s plan: the kind of group planned, reason, effective date (never edited; a re-baseline is a new version).';
comment on table pipetrak.baseline_activities is 'A baseline version''s activities: the group each plans, planned start and finish, budget man-hours, weight and curve.';
comment on table pipetrak.timesheet_hours is 'Actual hours: work date, person or crew, craft, the group charged, hours; voided rows stay with their reason.';
comment on table pipetrak.hours_days is 'Live timesheet hours summed per work date and group charged (kept by the functions that write hours).';
comment on table pipetrak.weekly_groups is 'Frozen figures of each locked week per grouping and group: earned and available credit, man-hours, hours to date.';
comment on table pipetrak.component_changes is 'Append-only change log of component corrections, retirements and restorations: before, after, reason, actor.';

select pipetrak.register_dump_tables();
select pipetrak.grant_privileges();
