-- pipetrak 0.2.0 → 0.3.0: the state changes, written by hand (tests/scripts/release.sh puts every
-- code object of 0.3.0 after them). State is what `create or replace` can't bring: tables, types,
-- indexes, sequences, data migrations, and the drops of functions and views whose signature or
-- columns change (they are then created again as code). Each change in the order it was made.

-- The snapshot schedule is opt-in (pipetrak.schedule_snapshots): a job 0.2.0 scheduled where
-- pg_cron was installed stays, and DROP EXTENSION now removes it.
insert into pipetrak.error_codes (code, sqlstate, message, hint) values
    ('pg_cron_missing', 'PT424', 'pg_cron is not installed in this database', 'Install pg_cron (CREATE EXTENSION pg_cron, with pg_cron in shared_preload_libraries) first; snapshots freeze on the first write after a week locks without it.');

-- Pages of a project's drawings in number order (drawing_progress reads a page, not them all).
create index drawings_number_idx on pipetrak.drawings (project_id, drawing_no);

-- Review items carry their component's test package (readiness counts them without a lookup each).
-- (Without change events: filling a column is not a change anyone must hear of.)
alter table pipetrak.review_items add column test_package_id bigint;
alter table pipetrak.review_items disable trigger review_items_announce_update;
update pipetrak.review_items r set test_package_id = c.test_package_id
from pipetrak.components c where c.id = r.component_id and c.retired_at is null;
alter table pipetrak.review_items enable trigger review_items_announce_update;
create index review_items_open_package_idx on pipetrak.review_items (project_id, test_package_id) where resolved_at is null;

-- The argument limits moved to Rust (argument_limit and argument_limits are now its functions,
-- created as code below, with pgrx's parameter names): the SQL ones and their JSON constant go.
drop function pipetrak.argument_registry();
drop function pipetrak.argument_limit(text);
drop function pipetrak.argument_limits();

-- Validation reads a file's distinct drawings once (import_drawing_keys); the count takes them.
drop function pipetrak.import_drawing_counts(bigint, bigint);

-- Staging takes the job's project (stage_import): its reads and writes go by it. The library
-- keeps the old entry point for databases not yet updated (src/pg/released.rs).
drop function pipetrak.import_stage(bigint, text, date);

-- Limits a DBA may lower (pipetrak.max_upload_mb, pipetrak.max_batch_items): their errors give the
-- limit in the detail instead of a fixed figure.
update pipetrak.error_codes set message = 'The file is larger than the upload limit',
    hint = 'Split the file, or remove pivot sheets and pictures from the workbook (the detail gives the limit: 50 MB unless the administrator set pipetrak.max_upload_mb lower).'
where code = 'file_too_large';
update pipetrak.error_codes set
    hint = 'Split the batch: the detail gives the limit (10,000 items unless the administrator set pipetrak.max_batch_items lower).'
where code = 'batch_too_large';

-- Change events leave the writers' commits: they wait in an outbox for the database's sender.
create unlogged table pipetrak.event_outbox (
    id      bigint generated always as identity primary key,
    channel text not null,
    payload text not null
);
create unlogged table pipetrak.event_sender (
    pid        integer not null,
    started_at timestamptz not null
);
alter table pipetrak.event_outbox enable row level security;
alter table pipetrak.event_sender enable row level security;

-- The weld log's pages walk live weld numbers with the id as tie-breaker.
drop index pipetrak.components_weld_number_idx;
create index components_weld_number_idx on pipetrak.components (project_id, tag, id)
    where component_type = 'field_weld' and retired_at is null;

-- The touched components are derived rows of their components' projects: no foreign key to check
-- for each component a write touches.
alter table pipetrak.component_touches drop constraint component_touches_project_id_fkey;

-- The parts summed per test package, with its open review items, for the dashboard and readiness
-- (triggers on the parts and the items keep them from here on; filled from them as they stand).
create table pipetrak.progress_packages (
    project_id        bigint not null,
    test_package_id   bigint not null,
    component_count   integer not null default 0,
    completed_count   integer not null default 0,
    earned_total      bigint not null default 0,
    post_hydro_count  integer not null default 0,
    ready_count       integer not null default 0,
    budget_mh         numeric not null default 0,
    mh_earned         numeric not null default 0,
    open_review_items integer not null default 0,
    primary key (project_id, test_package_id)
);
alter table pipetrak.progress_packages enable row level security;
insert into pipetrak.progress_packages (project_id, test_package_id, component_count, completed_count, earned_total,
                                        post_hydro_count, ready_count, budget_mh, mh_earned, open_review_items)
select k.project_id, k.test_package_id, coalesce(p.component_count, 0), coalesce(p.completed_count, 0),
       coalesce(p.earned_total, 0), coalesce(p.post_hydro_count, 0), coalesce(p.ready_count, 0), coalesce(p.budget_mh, 0),
       coalesce(p.mh_earned, 0), coalesce(r.open_items, 0)
from (select project_id, test_package_id from pipetrak.progress_parts where test_package_id is not null
      union
      select project_id, test_package_id from pipetrak.review_items where resolved_at is null and test_package_id is not null) k
left join (select project_id, test_package_id, sum(component_count) as component_count, sum(completed_count) as completed_count,
                  sum(earned_total) as earned_total, sum(post_hydro_count) as post_hydro_count, sum(ready_count) as ready_count,
                  sum(budget_mh) as budget_mh, sum(mh_receive + mh_install + mh_punch + mh_test + mh_restore) as mh_earned
           from pipetrak.progress_parts where test_package_id is not null group by 1, 2) p
       on p.project_id = k.project_id and p.test_package_id = k.test_package_id
left join (select project_id, test_package_id, count(*) as open_items from pipetrak.review_items
           where resolved_at is null and test_package_id is not null group by 1, 2) r
       on r.project_id = k.project_id and r.test_package_id = k.test_package_id;

-- Scale-out on Citus: distribute() refuses where Citus is missing or the schema is not ready.
insert into pipetrak.error_codes (code, sqlstate, message, hint) values
    ('citus_missing', 'PT424', 'Citus is not installed in this database', 'Run pipetrak.distribute() on a Citus coordinator: citus in shared_preload_libraries, CREATE EXTENSION citus, the workers added.'),
    ('not_supported_distributed', 'PT501', 'That is not supported on a distributed (Citus) installation yet', 'The detail says what; pipetrak.distribution_obstacles() lists what the schema still lacks.');

-- Project controls (20_controls.sql): baselines, timesheets and each frozen week's figures per group.
insert into pipetrak.error_codes (code, sqlstate, message, hint) values
    ('baseline_not_found',       'PT404', 'The project has no baseline of that version', 'See pipetrak_api.baselines for the project''s versions, or omit baseline_version to read the one in effect.'),
    ('hours_not_found',          'PT404', 'Timesheet row not found', 'Use an hours_id from pipetrak_api.timesheet_hours of a project you belong to.'),
    ('hours_voided',             'PT409', 'The timesheet row is already voided', 'Nothing to void; record the right hours with record_hours.');

-- Every key of a project's rows includes its project (sharding by project on Citus needs it;
-- see 19_distribution.sql). Ids stay global, so the id leads each key: lookups by id read the
-- same index as before. Foreign keys that named a component or an event alone pair it with its
-- project; the staged import rows and the import sources carry their job's project.
alter table pipetrak.field_welds drop constraint field_welds_component_id_fkey;
alter table pipetrak.component_sources drop constraint component_sources_component_id_fkey;
alter table pipetrak.review_items drop constraint review_items_event_id_fkey;
alter table pipetrak.areas drop constraint areas_pkey, add primary key (id, project_id);
alter table pipetrak.systems drop constraint systems_pkey, add primary key (id, project_id);
alter table pipetrak.test_packages drop constraint test_packages_pkey, add primary key (id, project_id);
alter table pipetrak.drawings drop constraint drawings_pkey, add primary key (id, project_id);
alter table pipetrak.welders drop constraint welders_pkey, add primary key (id, project_id);
alter table pipetrak.components drop constraint components_pkey, add primary key (id, project_id);
alter table pipetrak.field_welds drop constraint field_welds_pkey, add primary key (component_id, project_id);
alter table pipetrak.milestone_events drop constraint milestone_events_pkey, add primary key (id, project_id);
alter table pipetrak.review_items drop constraint review_items_pkey, add primary key (id, project_id),
    add foreign key (event_id, project_id) references pipetrak.milestone_events (id, project_id);
alter table pipetrak.client_requests drop constraint client_requests_pkey,
    add primary key (user_id, client_request_id, project_id);
alter table pipetrak.budget_versions drop constraint budget_versions_pkey, add primary key (id, project_id);
alter table pipetrak.component_budgets drop constraint component_budgets_pkey, add primary key (component_id, project_id);
alter table pipetrak.import_jobs drop constraint import_jobs_pkey, add primary key (id, project_id);
alter table pipetrak.nde_results drop constraint nde_results_pkey, add primary key (id, project_id);
alter table pipetrak.weld_events drop constraint weld_events_pkey, add primary key (id, project_id);
alter table pipetrak.examination_calls drop constraint examination_calls_pkey, add primary key (id, project_id),
    drop constraint examination_calls_component_id_key, add unique (component_id, project_id);
alter table pipetrak.package_stages drop constraint package_stages_pkey, add primary key (id, project_id),
    drop constraint package_stages_test_package_id_stage_key, add unique (test_package_id, stage, project_id);
alter table pipetrak.stage_signoffs drop constraint stage_signoffs_pkey, add primary key (id, project_id),
    drop constraint stage_signoffs_stage_id_signoff_key, add unique (stage_id, signoff, project_id);
alter table pipetrak.package_events drop constraint package_events_pkey, add primary key (id, project_id);
alter table pipetrak.package_certificates drop constraint package_certificates_pkey,
    add primary key (test_package_id, project_id);
alter table pipetrak.component_touches drop constraint component_touches_pkey, add primary key (component_id, project_id);
alter table pipetrak.component_changes drop constraint component_changes_pkey, add primary key (id, project_id);
alter table pipetrak.import_rows add column project_id bigint;
update pipetrak.import_rows r set project_id = j.project_id from pipetrak.import_jobs j where j.id = r.import_id;
delete from pipetrak.import_rows where project_id is null;
alter table pipetrak.import_rows alter column project_id set not null,
    drop constraint import_rows_pkey, add primary key (import_id, line, project_id);
alter table pipetrak.component_sources add column project_id bigint;
update pipetrak.component_sources s set project_id = c.project_id from pipetrak.components c where c.id = s.component_id;
alter table pipetrak.component_sources alter column project_id set not null,
    drop constraint component_sources_pkey, add primary key (import_id, line, component_id, project_id),
    add foreign key (project_id, component_id) references pipetrak.components (project_id, id);

-- Events' days are added by project (progress_days_add takes it): the form without goes before
-- the code, whose comments name the function without its arguments.
drop function pipetrak.progress_days_add(integer, bigint[]);
-- A group's name is looked up in its project (group_name takes it).
drop function pipetrak.group_name(text, text);

-- An import's plan is a view (import_plan_rows, which Citus can plan under an INSERT … SELECT);
-- the dry run compares it with the project itself.
drop function pipetrak.import_plan(bigint, bigint, integer, boolean);
-- The same for a weld by drawing and number (the view live_welds).
drop function pipetrak.live_weld(bigint, text, text);
-- A validation purges its own project's expired staged rows (purge_staged_rows takes the project).
drop function pipetrak.purge_staged_rows(bigint);
-- A pipe's footage is summed within its project (import_sum_footage takes it).
drop function pipetrak.import_sum_footage(bigint[]);
-- Ready counts move within a project (progress_parts_shift_ready takes it).
drop function pipetrak.progress_parts_shift_ready(bigint[], integer);
-- Names still named are looked up in the job's project (import_still_named takes it).
drop function pipetrak.import_still_named(bigint, text, jsonb);
-- A weld's NDE state is read within its project (weld_nde_state takes it).
drop function pipetrak.weld_nde_state(bigint);

-- The welds' project index leads to the component too: a plan that picks it for a weld by
-- (project, component) reads one entry, not the project's welds.
drop index pipetrak.field_welds_project_id_idx;
create index field_welds_project_id_idx on pipetrak.field_welds (project_id, component_id);

-- The drawings' trigram index is of lower(drawing_key): of the column itself it also answered
-- `drawing_key = …`, and plans took it over the key for an import's lookups (similar_drawings and
-- search, as code below, read lower(drawing_key)).
drop index pipetrak.drawings_key_trgm_idx;
do $$
begin
    execute format('create index drawings_key_trgm_idx on pipetrak.drawings using gin ((lower(drawing_key)) %I.gin_trgm_ops) where retired_at is null',
                   (select n.nspname from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
                    where e.extname = 'pg_trgm'));
end
$$;

-- Schedules and timesheets are imported like takeoffs.
alter table pipetrak.import_jobs drop constraint import_jobs_kind_check,
    add constraint import_jobs_kind_check check (kind in ('takeoff', 'field_welds', 'schedule', 'timesheet'));

-- Project controls: the tables of 20_controls.sql.
create table pipetrak.baselines (
    id             bigserial,
    project_id     bigint not null references pipetrak.projects,
    version        integer not null,
    group_by       text not null check (group_by in ('area', 'system', 'test_package', 'drawing', 'project')),
    reason         text not null check (btrim(reason) <> '' and length(reason) <= 2000),
    effective_date date not null,
    activities     integer not null default 0,
    budget_mh      numeric,
    import_id      bigint,
    created_by     uuid not null,
    created_at     timestamptz not null default now(),
    primary key (id, project_id),
    unique (project_id, version)
);

create table pipetrak.baseline_activities (
    baseline_id    bigint not null,
    project_id     bigint not null,
    activity_code  text not null check (btrim(activity_code) <> '' and length(activity_code) <= 200),
    name           text not null check (length(name) <= 500),
    -- The area, system, test package or drawing (by the baseline's group_by); the project's id for
    -- a baseline of the whole project.
    group_id       bigint not null,
    planned_start  date not null,
    planned_finish date not null,
    budget_mh      numeric(14, 2) check (budget_mh >= 0),
    weight         numeric(14, 4) check (weight > 0),
    curve          text not null default 'linear' check (curve in ('linear', 's_curve', 'front_loaded', 'back_loaded')),
    primary key (baseline_id, project_id, activity_code),
    check (planned_finish >= planned_start),
    foreign key (baseline_id, project_id) references pipetrak.baselines (id, project_id)
);
create index baseline_activities_project_idx on pipetrak.baseline_activities (project_id);

create table pipetrak.timesheet_hours (
    id          bigserial,
    project_id  bigint not null references pipetrak.projects,
    work_date   date not null,
    person      text check (btrim(person) <> '' and length(person) <= 200),
    crew        text check (btrim(crew) <> '' and length(crew) <= 200),
    craft       text check (btrim(craft) <> '' and length(craft) <= 200),
    group_by    text not null check (group_by in ('area', 'system', 'test_package', 'drawing', 'project')),
    -- The group charged (by group_by); the project's id for hours charged to the project.
    group_id    bigint not null,
    hours       numeric(10, 2) not null check (hours > 0 and hours <= 100000),
    note        text check (length(note) <= 2000),
    import_id   bigint,
    -- The row of a timesheet it stands for (import and row): its own, or for a fixed row of a
    -- remediation CSV the original's. A later row standing for the same one replaces it.
    source_import_id bigint,
    source_line integer,
    entered_by  uuid not null,
    entered_at  timestamptz not null default now(),
    voided_at   timestamptz,
    voided_by   uuid,
    void_reason text check (length(void_reason) <= 2000),
    primary key (id, project_id),
    check (person is not null or crew is not null)
);
create index timesheet_hours_project_idx on pipetrak.timesheet_hours (project_id, work_date);

-- Hours per day and charged group (live rows), kept by the functions that write timesheet rows:
-- a week's hours to date sum these, not 100,000 timesheet rows.
create table pipetrak.hours_days (
    project_id bigint not null,
    work_date  date not null,
    group_by   text not null,
    group_id   bigint not null,
    hours      numeric not null,
    primary key (project_id, work_date, group_by, group_id)
);

-- A frozen week per grouping and group: what the controls reports read for a locked week.
create table pipetrak.weekly_groups (
    project_id bigint not null,
    week_end   date not null,
    group_by   text not null,
    group_key  text,
    earned     bigint not null,
    available  bigint not null,
    earned_mh  numeric not null,
    budget_mh  numeric not null,
    hours      numeric not null,
    constraint weekly_groups_key unique nulls not distinct (project_id, week_end, group_by, group_key),
    foreign key (project_id, week_end) references pipetrak.snapshot_weeks (project_id, week_end)
);

-- The last day each component was touched, for the stalled-components page.
create index component_touches_last_idx on pipetrak.component_touches (project_id, upper(days));

alter table pipetrak.baselines enable row level security;
alter table pipetrak.baseline_activities enable row level security;
alter table pipetrak.timesheet_hours enable row level security;
alter table pipetrak.hours_days enable row level security;
alter table pipetrak.weekly_groups enable row level security;

-- ==== after the code ====

-- The components' parts and the events' history days follow the captured rows of each
-- statement too: their statement triggers reading transition tables go — first, before any
-- data below is changed, or both kinds of trigger would count a change.
drop trigger components_progress_insert on pipetrak.components;
drop trigger components_progress_update on pipetrak.components;
drop trigger components_progress_delete on pipetrak.components;
drop function pipetrak.progress_parts_apply();
drop function pipetrak.progress_days_follow_events();

-- A weld's tallies and its component's readiness follow the captured rows of each statement
-- (capture_row, flush_rows): the statement triggers reading transition tables go.
drop trigger field_welds_tallies_insert on pipetrak.field_welds;
drop trigger field_welds_tallies_update on pipetrak.field_welds;
drop trigger field_welds_tallies_delete on pipetrak.field_welds;
drop function pipetrak.weld_tallies_follow_welds();
drop trigger field_welds_ready_insert on pipetrak.field_welds;
drop trigger field_welds_ready_update on pipetrak.field_welds;
drop trigger field_welds_ready_delete on pipetrak.field_welds;
drop function pipetrak.progress_parts_follow_welds();

-- A refusal counter for every catalogued error (the trigger that makes them is new code).
update pipetrak.error_codes set code = code;

create event trigger pipetrak_drop_unschedules on ddl_command_start when tag in ('DROP EXTENSION')
    execute function pipetrak.drop_extension_unschedules();

-- A weld's first and last examination dates are those of its current results (weld_nde_state):
-- welds with a corrected or cleared record are dated again (their tallies follow; without change
-- events, as above).
alter table pipetrak.field_welds disable trigger field_welds_announce_update;
update pipetrak.field_welds f set first_examined_on = n.first_examined_on, last_examined_on = n.last_examined_on
from (select w.component_id, s.first_examined_on, s.last_examined_on
      from pipetrak.field_welds w
      cross join lateral pipetrak.weld_nde_state(w.component_id, w.project_id) s
      where exists (select from pipetrak.nde_results r
                    where r.component_id = w.component_id and (r.supersedes is not null or r.result is null))) n
where n.component_id = f.component_id
  and (f.first_examined_on, f.last_examined_on) is distinct from (n.first_examined_on, n.last_examined_on);
alter table pipetrak.field_welds enable trigger field_welds_announce_update;

-- Change events are queued by a row trigger in Rust (announce_change): the statement triggers'
-- function goes (the triggers were replaced above).
drop function pipetrak.queue_changes();

-- The progress rollup is a view (progress_rollups, by level), which Citus can plan: the function
-- taking the level goes (the views that called it were replaced above).
drop function pipetrak.progress_rollup(text);

-- The weeks frozen before project controls, per grouping and group (no hours were recorded then).
select pipetrak.freeze_week_groups(w.project_id, w.week_end) from pipetrak.snapshot_weeks w order by w.project_id, w.week_end;
