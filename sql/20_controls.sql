-- Project controls: plan against earned. Baselines (planned progress per scope group), earned
-- against planned per week (SPI, schedule variance), actual hours from timesheets (productivity
-- factor, CPI, estimate at completion), completion forecasts and stalled components.
--
-- Design notes (decisions where the spec was silent):
-- - A baseline version plans one kind of group: areas, systems, test packages, drawings or the
--   project as a whole (`group_by`), as a schedule's activities carry one activity code. Each
--   activity names one group of that kind, its planned start and finish (inclusive work dates),
--   optionally its budget man-hours and a weight, and its curve (`domain::controls` states the
--   formulas). Versions are never edited: a re-baseline is a new version with a reason and an
--   effective date, which must fall after the project's last locked week (the first version may
--   take any date), so a locked week's plan never changes.
-- - Which version a report reads: the one named, else the version in effect at the end of the
--   (last) week it reports — the latest whose effective date is on or before that Sunday. Before
--   the first version takes effect nothing is planned (planned figures are null).
-- - Planned progress. Within a group, each activity's share of the group's credit is its budget
--   man-hours (above 0), else its weight, else 1; the group's planned fraction at a date is the
--   share-weighted mean of its activities' curves, and its planned % is that fraction (whether or
--   not it holds components yet). Its planned credit is that fraction of its available credit
--   (live components × category weights, as the rollups count it; a frozen week's as it was
--   frozen), so SPI = earned credit ÷ planned credit, and the project's planned % is the sum over
--   its groups ÷ the project's available credit: scope outside the baseline's groups is planned at
--   nothing. A report grouped by another kind than the baseline's (say, by area against a baseline
--   by system) has no planned figures but the project's.
-- - Man-hours. A group's budget at completion (BAC) is its man-hour budget (spec §11) where the
--   project has one, else the sum of its activities' budget man-hours. Earned MH are §11's where
--   a budget exists, else BAC × earned fraction; planned MH are BAC × planned fraction. Productivity
--   factor = earned MH ÷ actual hours of the week; CPI = the same to date; EAC = BAC ÷ CPI;
--   ETC = EAC − actual hours to date. Below 1 both mean more hours spent than earned.
-- - Actual hours are timesheet rows: a work date, a person or crew (at least one), a craft, the
--   group they are charged to (of any kind, or the project) and hours. Hours count in the grouping
--   they are charged to and always in the project's total. Foremen and up record them through the
--   API (the week lock applies as it does to milestones: owners and admins may record in a locked
--   week); project managers and up import timesheets (the import pipeline's role). A row is never
--   edited or deleted: a mistake is voided with a reason, which the week lock governs too.
-- - A locked week never moves: when its snapshot is taken (spec §11) the per-group figures of
--   every grouping freeze with it (`weekly_groups`: earned and available credit, man-hours, hours
--   to date), and a report reads a frozen week from there; a correction recorded later shows in
--   the next week. An open week is computed from the days: those up to its end for a week before
--   the project's first snapshot, or the rollups now less the days after its end for a recent one
--   (the same credit, read from the nearer end); available credit and budgets are now's.
-- - Forecasts are as of the end of a week (default: this week, to date). By velocity: the earned
--   % gained per week over the trailing N weeks carried forward; by SPI: the group's planned
--   duration stretched by 1 ÷ SPI from its planned start (`domain::controls`).
-- - Stalled: a live component partly complete (more than 0 %, less than 100 %) whose last
--   milestone event is at least N days before today (7, 14 or 21 are the presets; any 1–365).
-- - SQL owns the rows and the set-based sums; the curves and the forecast arithmetic are Rust
--   (src/domain/controls.rs).

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
create policy baselines_select_member on pipetrak.baselines for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy baseline_activities_select_member on pipetrak.baseline_activities for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy timesheet_hours_select_member on pipetrak.timesheet_hours for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy hours_days_select_member on pipetrak.hours_days for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy weekly_groups_select_member on pipetrak.weekly_groups for select to authenticated
    using (pipetrak.project_visible(project_id));

-- ---- Groups ----

-- The id of a live group of the project by its name (areas, systems and test packages compare
-- case-insensitively; drawings by their normalized number); the project's id for 'project';
-- null when none matches.
create function pipetrak.group_by_name(p_project_id bigint, p_group_by text, p_name text)
returns bigint
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return case p_group_by
        when 'project' then p_project_id
        when 'area' then (select a.id from pipetrak.areas a
                          where a.project_id = p_project_id and lower(a.name) = lower(btrim(p_name)) and a.retired_at is null)
        when 'system' then (select s.id from pipetrak.systems s
                            where s.project_id = p_project_id and lower(s.name) = lower(btrim(p_name)) and s.retired_at is null)
        when 'test_package' then (select t.id from pipetrak.test_packages t
                                  where t.project_id = p_project_id and lower(t.name) = lower(btrim(p_name)) and t.retired_at is null)
        when 'drawing' then (select d.id from pipetrak.drawings d
                             where d.project_id = p_project_id and d.drawing_key = pipetrak.normalize_drawing_key(p_name)
                               and d.retired_at is null)
        end;
end
$$;

-- ---- Hours per day ----

-- Adds (or, with p_sign -1, takes out) timesheet rows' hours to the days.
create function pipetrak.hours_days_add(p_sign integer, p_project_id bigint, p_ids bigint[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into pipetrak.hours_days as d (project_id, work_date, group_by, group_id, hours)
    select h.project_id, h.work_date, h.group_by, h.group_id, p_sign * sum(h.hours)
    from pipetrak.timesheet_hours h
    where h.project_id = p_project_id and h.id = any (p_ids)
    group by 1, 2, 3, 4
    on conflict (project_id, work_date, group_by, group_id) do update set hours = d.hours + excluded.hours;
end
$$;

-- ---- Snapshots ----

-- Freezes a week's figures per grouping (called by take_snapshot after it froze the parts).
create function pipetrak.freeze_week_groups(p_project_id bigint, p_week_end date)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into pipetrak.weekly_groups (project_id, week_end, group_by, group_key, earned, available, earned_mh, budget_mh, hours)
    select p_project_id, p_week_end, x.g, x.k, sum(x.earned)::bigint, sum(x.available)::bigint, sum(x.mh), sum(x.budget), sum(x.hours)
    from (select g.g, pipetrak.group_key(g.g, w.project_id, w.drawing_id, w.area_id, w.system_id, w.test_package_id, w.component_type) as k,
                 w.credit_receive + w.credit_install + w.credit_punch + w.credit_test + w.credit_restore as earned,
                 w.component_count::bigint * 1000000 as available, w.mh_earned as mh, w.budget_mh as budget, 0::numeric as hours
          from pipetrak.weekly_snapshots w
          cross join unnest(array['area', 'system', 'test_package', 'drawing', 'project']) g(g)
          where w.project_id = p_project_id and w.week_end = p_week_end
          union all
          select g.g, case when g.g = 'project' then p_project_id::text else h.group_id::text end, 0, 0, 0, 0, h.hours
          from pipetrak.hours_days h
          cross join unnest(array['area', 'system', 'test_package', 'drawing', 'project']) g(g)
          where h.project_id = p_project_id and h.work_date <= p_week_end and (h.group_by = g.g or g.g = 'project')) x
    group by x.g, x.k;
end
$$;

-- ---- Figures per group and week ----

-- The Sunday ending the week that holds a date.
create function pipetrak.week_end_of(p_date date)
returns date
language sql immutable parallel safe
as $$ select p_date + (7 - extract(isodow from p_date)::integer) $$;

-- Earned and available credit (ppm), man-hours and hours to date per group of `p_group_by` at the
-- end of `p_weeks` consecutive weeks from `p_first` (a Sunday): frozen weeks as frozen, the others
-- computed (open_cells).
create function pipetrak.week_cells(p_project_id bigint, p_group_by text, p_first date, p_weeks integer)
returns table (k text, week_end date, frozen boolean, earned numeric, available numeric, earned_mh numeric, budget_mh numeric,
               hours numeric)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_weeks date[];
    v_open date[];
    v_first_frozen date;
begin
    v_weeks := array(select (p_first + 7 * i)::date from generate_series(0, p_weeks - 1) i);
    v_open := array(select w from unnest(v_weeks) w
                    where not exists (select from pipetrak.snapshot_weeks s where s.project_id = p_project_id and s.week_end = w)
                    order by w);
    return query
    select g.group_key, g.week_end, true, g.earned::numeric, g.available::numeric, g.earned_mh, g.budget_mh, g.hours
    from pipetrak.weekly_groups g
    where g.project_id = p_project_id and g.group_by = p_group_by and g.week_end = any (v_weeks) and g.week_end <> all (v_open);
    if cardinality(v_open) = 0 then
        return;
    end if;
    -- Open weeks come before the project's first frozen one (it began freezing them after they
    -- locked) or after its last: each side summed from the nearer end of the history.
    v_first_frozen := (select min(s.week_end) from pipetrak.snapshot_weeks s where s.project_id = p_project_id);
    return query
    select * from pipetrak.open_cells(p_project_id, p_group_by, array(select w from unnest(v_open) w where w < v_first_frozen order by w), true);
    return query
    select * from pipetrak.open_cells(p_project_id, p_group_by,
                                      array(select w from unnest(v_open) w where v_first_frozen is null or w > v_first_frozen order by w), false);
end
$$;

-- The figures of weeks not frozen (ascending Sundays), from the days: summed from the start of the
-- history (`p_from_start`: cheap for early weeks), or as the rollups now less what the days after
-- each week earned (cheap for recent ones); available credit and budgets are now's.
create function pipetrak.open_cells(p_project_id bigint, p_group_by text, p_open date[], p_from_start boolean)
returns table (k text, week_end date, frozen boolean, earned numeric, available numeric, earned_mh numeric, budget_mh numeric,
               hours numeric)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    -- The days read: up to the last week from the start, else after the first.
    v_after date := case when p_from_start then '-infinity'::date else p_open[1] end;
    v_until date := case when p_from_start then p_open[cardinality(p_open)] else 'infinity'::date end;
begin
    if cardinality(p_open) = 0 then
        return;
    end if;
    return query
    with now_groups as (
        select pipetrak.group_key(p_group_by, p.project_id, p.drawing_id, p.area_id, p.system_id, p.test_package_id, p.component_type) as k,
               sum(p.earned_total)::numeric as earned, sum(p.component_count)::numeric * 1000000 as available,
               sum(p.mh_receive + p.mh_install + p.mh_punch + p.mh_test + p.mh_restore) / 1000000 as mh, sum(p.budget_mh) as budget
        from pipetrak.progress_parts p
        where p.project_id = p_project_id
        group by 1),
    -- What the days read earned per group and week (days before the first week in its bucket).
    days as (
        select pipetrak.group_key(p_group_by, d.project_id, d.drawing_id, d.area_id, d.system_id, d.test_package_id, d.component_type) as k,
               greatest(pipetrak.week_end_of(d.work_date), p_open[1]) as wk,
               sum(d.credit_receive + d.credit_install + d.credit_punch + d.credit_test + d.credit_restore)::numeric as credit,
               sum(d.mh_receive + d.mh_install + d.mh_punch + d.mh_test + d.mh_restore) as mh
        from pipetrak.progress_days d
        where d.project_id = p_project_id and d.work_date > v_after and d.work_date <= v_until
        group by 1, 2),
    -- Hours per group and week up to the last open week (earlier ones in the first open week).
    hours as (
        select case when p_group_by = 'project' then p_project_id::text else h.group_id::text end as k,
               greatest(pipetrak.week_end_of(h.work_date), p_open[1]) as wk, sum(h.hours) as hours
        from pipetrak.hours_days h
        where h.project_id = p_project_id and (h.group_by = p_group_by or p_group_by = 'project')
          and h.work_date <= p_open[cardinality(p_open)]
        group by 1, 2),
    keys as (select n.k from now_groups n union select l.k from days l union select h.k from hours h),
    -- Every group at every week from the first open one to the last, with running sums of what
    -- the days read earned and the hours spent up to each.
    run as (
        select ks.k, w.w::date as w,
               sum(coalesce(l.credit, 0)) over r as credit_upto, sum(coalesce(l.mh, 0)) over r as mh_upto,
               sum(coalesce(h.hours, 0)) over r as hours_upto
        from keys ks
        cross join generate_series(p_open[1], p_open[cardinality(p_open)], interval '7 days') w(w)
        left join days l on coalesce(l.k, '') = coalesce(ks.k, '') and l.wk = w.w::date
        left join hours h on coalesce(h.k, '') = coalesce(ks.k, '') and h.wk = w.w::date
        window r as (partition by ks.k order by w.w)),
    totals as (select coalesce(l.k, '') as k, sum(l.credit) as credit, sum(l.mh) as mh from days l group by 1)
    -- From the start: what the days up to the week earned. Else: the rollups now, less all the
    -- days after the first week, plus those up to the week.
    select r.k, r.w, false,
           case when p_from_start then 0 else coalesce(n.earned, 0) - coalesce(t.credit, 0) end + r.credit_upto,
           coalesce(n.available, 0),
           case when p_from_start then 0 else coalesce(n.mh, 0) - coalesce(t.mh, 0) end + r.mh_upto,
           coalesce(n.budget, 0), r.hours_upto
    from run r
    left join now_groups n on coalesce(n.k, '') = coalesce(r.k, '')
    left join totals t on t.k = coalesce(r.k, '')
    where r.w = any (p_open);
end
$$;

-- The planned fraction (0–1) per group of a baseline at the end of `p_weeks` weeks from `p_first`,
-- with the activities' budget man-hours, the man-hours due, and the group's planned dates.
create function pipetrak.planned_cells(p_project_id bigint, p_baseline_id bigint, p_first date, p_weeks integer)
returns table (k text, week_end date, fraction numeric, activity_mh numeric, planned_activity_mh numeric, planned_start date,
               planned_finish date)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    -- Shares summed in float8 (a week's fraction needs no more than its 15 digits; numeric
    -- arithmetic on every activity-week cost most of an S-curve), the budgets exactly.
    return query
    select a.group_id::text, p_first + 7 * (s.i::integer - 1), (sum(a.w * s.share) / sum(a.w))::numeric, sum(a.budget_mh),
           (sum(a.b * s.share))::numeric, min(a.planned_start), max(a.planned_finish)
    from (select x.group_id, x.planned_start, x.planned_finish, x.budget_mh, x.curve,
                 coalesce(nullif(x.budget_mh, 0), x.weight, 1)::float8 as w, x.budget_mh::float8 as b
          from pipetrak.baseline_activities x
          where x.project_id = p_project_id and x.baseline_id = p_baseline_id) a
    cross join lateral unnest(pipetrak.planned_series(a.curve, a.planned_start - date '1970-01-01', a.planned_finish - date '1970-01-01',
                                                      p_first - date '1970-01-01', p_weeks)) with ordinality s(share, i)
    group by 1, 2;
end
$$;

-- The baseline a report reads: the version named, else the one in effect at `p_at` (null when none
-- is yet).
create function pipetrak.baseline_for(p_project_id bigint, p_version integer, p_at date)
returns pipetrak.baselines
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_baseline pipetrak.baselines;
begin
    if p_version is not null then
        select * into v_baseline from pipetrak.baselines b where b.project_id = p_project_id and b.version = p_version;
        if v_baseline.id is null then
            perform pipetrak.raise_error('baseline_not_found', jsonb_build_object('project_id', p_project_id, 'version', p_version));
        end if;
    else
        select * into v_baseline from pipetrak.baselines b
        where b.project_id = p_project_id and b.effective_date <= p_at
        order by b.effective_date desc, b.version desc limit 1;
    end if;
    return v_baseline;
end
$$;

-- Earned against planned per group and week: the figures every controls report shapes.
create function pipetrak.controls_cells(p_project_id bigint, p_group_by text, p_first date, p_weeks integer, p_baseline pipetrak.baselines)
returns table (k text, week_end date, frozen boolean, earned numeric, available numeric, planned numeric, earned_mh numeric,
               planned_mh numeric, bac numeric, hours numeric, planned_start date, planned_finish date, planned_fraction numeric)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_baseline.id is null or (p_baseline.group_by <> p_group_by and p_group_by <> 'project') then
        -- Nothing planned for this grouping.
        return query
        select e.k, e.week_end, e.frozen, e.earned, e.available, null::numeric, case when e.budget_mh > 0 then e.earned_mh end,
               null::numeric, nullif(e.budget_mh, 0), e.hours, null::date, null::date, null::numeric
        from pipetrak.week_cells(p_project_id, p_group_by, p_first, p_weeks) e;
        return;
    end if;
    return query
    with b as (
        -- Per group of the baseline's kind: the figures at its level.
        select coalesce(e.k, p.k) as k, coalesce(e.week_end, p.week_end) as week_end,
               coalesce(e.frozen, exists (select from pipetrak.snapshot_weeks w where w.project_id = p_project_id and w.week_end = p.week_end))
                   as frozen,
               coalesce(e.earned, 0) as earned,
               coalesce(e.available, 0) as available, e.budget_mh, e.earned_mh, e.hours, coalesce(p.fraction, 0) as fraction,
               case when e.budget_mh > 0 then e.budget_mh else p.activity_mh end as bac, p.planned_start, p.planned_finish
        from pipetrak.week_cells(p_project_id, p_baseline.group_by, p_first, p_weeks) e
        full join pipetrak.planned_cells(p_project_id, p_baseline.id, p_first, p_weeks) p
             on p.k is not distinct from e.k and p.week_end = e.week_end),
    g as (
        select b.k, b.week_end, b.frozen, b.earned, b.available, b.available * b.fraction as planned,
               case when b.budget_mh > 0 then b.earned_mh
                    when b.bac is not null and b.available > 0 then b.bac * b.earned / b.available end as earned_mh,
               b.bac * b.fraction as planned_mh, b.bac, coalesce(b.hours, 0) as hours, b.planned_start, b.planned_finish,
               -- A group's planned share of its credit, whether or not it holds components yet.
               b.fraction as planned_fraction
        from b)
    select g.* from g where p_group_by = p_baseline.group_by
    union all
    -- The project: its own earned figures, with the groups' plan summed.
    select e.k, e.week_end, e.frozen, e.earned, e.available, s.planned,
           case when e.budget_mh > 0 then e.earned_mh else s.earned_mh end,
           s.planned_mh, case when e.budget_mh > 0 then e.budget_mh else s.bac end, e.hours, s.planned_start, s.planned_finish,
           s.planned / nullif(e.available, 0)
    from pipetrak.week_cells(p_project_id, 'project', p_first, p_weeks) e
    left join (select g.week_end, sum(g.planned) as planned, sum(g.earned_mh) as earned_mh, sum(g.planned_mh) as planned_mh,
                      sum(g.bac) as bac, min(g.planned_start) as planned_start, max(g.planned_finish) as planned_finish
               from g group by 1) s on s.week_end = e.week_end
    where p_group_by = 'project' and p_baseline.group_by <> 'project';
end
$$;

-- Checks a report's week (a Sunday, no later than the one ending this week) and returns this
-- week's Sunday.
create function pipetrak.check_report_week(p_project_id bigint, p_argument text, p_week_end date)
returns date
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_this date := (select pipetrak.week_end_of((now() at time zone p.time_zone)::date) from pipetrak.projects p where p.id = p_project_id);
begin
    perform pipetrak.check_date(p_argument, p_week_end);
    if p_week_end is not null and (extract(isodow from p_week_end) <> 7 or p_week_end > v_this or p_week_end < date '1900-01-07') then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', p_argument,
            'expected', 'a Sunday ending a week, from 1900 to this week''s', 'this_week_end', v_this));
    end if;
    return v_this;
end
$$;

-- A performance index (SPI, CPI, productivity factor): the ratio to 3 decimals; null over nothing.
create function pipetrak.index_of(p_numerator numeric, p_denominator numeric)
returns numeric
language sql immutable parallel safe
as $$ select case when p_denominator > 0 then round(p_numerator / p_denominator, 3) end $$;

-- ---- Reports ----

-- One week's plan against earned per group (see the notes for every figure).
create function pipetrak.controls_week(p_project_id bigint, p_week_end date, p_group_by text, p_baseline_version integer)
returns table (group_key text, group_name text, week_start date, week_end date, frozen boolean, baseline_version integer,
               planned_percent numeric, earned_percent numeric, schedule_variance numeric, spi numeric, planned_mh numeric,
               earned_mh numeric, schedule_variance_mh numeric, spi_mh numeric, earned_mh_week numeric, actual_hours_week numeric,
               actual_hours numeric, productivity_factor numeric, cpi numeric, budget_mh numeric, eac_mh numeric, etc_mh numeric)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_baseline pipetrak.baselines;
    v_week date;
begin
    perform pipetrak.require_project_role(p_project_id, 'read');
    perform pipetrak.check_group_by(p_group_by, array['area', 'system', 'test_package', 'drawing', 'project']);
    -- Default: this week (to date).
    v_week := coalesce(p_week_end, pipetrak.check_report_week(p_project_id, 'week_end', p_week_end));
    perform pipetrak.check_report_week(p_project_id, 'week_end', v_week);
    v_baseline := pipetrak.baseline_for(p_project_id, p_baseline_version, v_week);
    return query
    with cells as materialized (select * from pipetrak.controls_cells(p_project_id, p_group_by, v_week - 7, 2, v_baseline))
    select c.k, pipetrak.group_name(p_group_by, p_project_id, c.k), v_week - 6, v_week, c.frozen, v_baseline.version,
           round(100 * c.planned_fraction, 2), coalesce(pipetrak.percent_of(c.earned, c.available), 0.00),
           round(100 * (c.earned - c.planned) / nullif(c.available, 0), 2), pipetrak.index_of(c.earned, c.planned),
           round(c.planned_mh, 2), round(c.earned_mh, 2), round(c.earned_mh - c.planned_mh, 2), pipetrak.index_of(c.earned_mh, c.planned_mh),
           round(c.earned_mh - coalesce(b.earned_mh, 0), 2), round(c.hours - coalesce(b.hours, 0), 2), round(c.hours, 2),
           pipetrak.index_of(c.earned_mh - coalesce(b.earned_mh, 0), c.hours - coalesce(b.hours, 0)), pipetrak.index_of(c.earned_mh, c.hours),
           round(c.bac, 2), case when c.hours > 0 then round(c.bac * c.hours / nullif(c.earned_mh, 0), 2) end,
           case when c.hours > 0 then round(c.bac * c.hours / nullif(c.earned_mh, 0) - c.hours, 2) end
    from cells c
    left join cells b on b.k is not distinct from c.k and b.week_end = v_week - 7
    where c.week_end = v_week and (c.available > 0 or c.planned > 0 or c.hours > 0 or c.bac > 0)
    order by 2 nulls last, 1;
end
$$;

-- The weekly S-curve: planned and earned (cumulative and per week), man-hours and hours, for the
-- project or each group (or one) over `p_weeks` weeks ending `p_week_end`.
create function pipetrak.s_curve(p_project_id bigint, p_group_by text, p_group_key text, p_weeks integer, p_week_end date,
                                 p_baseline_version integer)
returns table (group_key text, group_name text, week_start date, week_end date, frozen boolean, baseline_version integer,
               planned_percent numeric, planned_percent_week numeric, earned_percent numeric, earned_percent_week numeric,
               planned_mh numeric, earned_mh numeric, actual_hours numeric, actual_hours_week numeric)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_last date;
    v_baseline pipetrak.baselines;
begin
    perform pipetrak.require_project_role(p_project_id, 'read');
    perform pipetrak.check_group_by(p_group_by, array['area', 'system', 'test_package', 'drawing', 'project']);
    v_last := coalesce(p_week_end, pipetrak.check_report_week(p_project_id, 'week_end', p_week_end));
    perform pipetrak.check_report_week(p_project_id, 'week_end', v_last);
    if p_weeks is null or p_weeks < 1 or p_weeks > 260 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "weeks", "expected": "1 to 260 weeks"}');
    end if;
    v_baseline := pipetrak.baseline_for(p_project_id, p_baseline_version, v_last);
    return query
    select y.gk, y.gname, y.we - 6, y.we, y.frozen, v_baseline.version, y.planned_pct, y.planned_week, y.earned_pct, y.earned_week,
           y.planned_mh, y.earned_mh, y.hours, y.hours_week
    from (select x.k as gk, pipetrak.group_name(p_group_by, p_project_id, x.k) as gname, x.week_end as we, x.frozen, x.planned_pct,
                 round(x.planned_pct - lag(x.planned_pct) over w, 2) as planned_week, x.earned_pct,
                 round(x.earned_pct - lag(x.earned_pct) over w, 2) as earned_week, x.planned_mh, x.earned_mh, x.hours,
                 x.hours - lag(x.hours) over w as hours_week
          from (select c.k, c.week_end, c.frozen, round(100 * c.planned_fraction, 2) as planned_pct,
                       coalesce(pipetrak.percent_of(c.earned, c.available), 0.00) as earned_pct, round(c.planned_mh, 2) as planned_mh,
                       round(c.earned_mh, 2) as earned_mh, round(c.hours, 2) as hours
                from pipetrak.controls_cells(p_project_id, p_group_by, v_last - 7 * p_weeks, p_weeks + 1, v_baseline) c
                where p_group_key is null or c.k = p_group_key) x
          window w as (partition by x.k order by x.week_end)) y
    -- The first week read is the base of the first week's changes, not a week of the curve.
    where y.we > v_last - 7 * p_weeks
    order by y.gname nulls last, y.gk, y.we;
end
$$;

-- Completion forecasts per group as of the end of a week: by trailing velocity and by SPI.
create function pipetrak.forecasts(p_project_id bigint, p_group_by text, p_trailing_weeks integer, p_week_end date,
                                   p_baseline_version integer)
returns table (group_key text, group_name text, as_of date, trailing_weeks integer, baseline_version integer, earned_percent numeric,
               earned_percent_before numeric, velocity_percent_per_week numeric, velocity_finish date, planned_percent numeric,
               spi numeric, planned_start date, planned_finish date, spi_finish date)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_as_of date;
    v_baseline pipetrak.baselines;
begin
    perform pipetrak.require_project_role(p_project_id, 'read');
    perform pipetrak.check_group_by(p_group_by, array['area', 'system', 'test_package', 'drawing', 'project']);
    -- Default: this week, to date (as the other controls reports).
    v_as_of := coalesce(p_week_end, pipetrak.check_report_week(p_project_id, 'week_end', p_week_end));
    perform pipetrak.check_report_week(p_project_id, 'week_end', v_as_of);
    if p_trailing_weeks is null or p_trailing_weeks < 1 or p_trailing_weeks > 52 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "trailing_weeks", "expected": "1 to 52 weeks"}');
    end if;
    v_baseline := pipetrak.baseline_for(p_project_id, p_baseline_version, v_as_of);
    return query
    with cells as materialized (
        select x.*, 100 * x.earned / x.available as e, 100 * x.planned_fraction as p
        from pipetrak.controls_cells(p_project_id, p_group_by, v_as_of - 7 * p_trailing_weeks, p_trailing_weeks + 1, v_baseline) x
        where x.available > 0)
    select c.k, pipetrak.group_name(p_group_by, p_project_id, c.k), v_as_of, p_trailing_weeks, v_baseline.version,
           -- No base (the group had no scope then): no velocity.
           round(c.e, 2), round(b.e, 2), round((c.e - b.e) / p_trailing_weeks, 2),
           date '1970-01-01' + pipetrak.velocity_finish(c.e::float8, b.e::float8, p_trailing_weeks, v_as_of - date '1970-01-01'),
           round(c.p, 2), pipetrak.index_of(c.earned, c.planned), c.planned_start, c.planned_finish,
           date '1970-01-01' + pipetrak.spi_finish(c.planned_start - date '1970-01-01', c.planned_finish - date '1970-01-01',
                                                   (c.earned / nullif(c.planned, 0))::float8, c.e::float8, v_as_of - date '1970-01-01')
    from cells c
    left join cells b on b.k is not distinct from c.k and b.week_end = v_as_of - 7 * p_trailing_weeks
    where c.week_end = v_as_of
    order by 2 nulls last, 1;
end
$$;

-- Live components partly complete with no milestone event for at least `p_days` days, most idle
-- first; a page of them (`p_limit` from `p_offset`), optionally of one group.
create function pipetrak.stalled_components(p_project_id bigint, p_days integer, p_group_by text, p_group_key text,
                                            p_limit integer, p_offset integer)
returns table (component_id bigint, component_type text, tag text, size text, drawing_no text, group_key text, group_name text,
               percent_complete numeric, last_event_on date, idle_days integer, as_of date)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set jit = off
-- A page is read in the order of the last day touched (an index): parallel workers only add their
-- start-up to the few rows it takes.
set max_parallel_workers_per_gather = 0
as $$
declare
    v_today date;
begin
    perform pipetrak.require_project_role(p_project_id, 'read');
    perform pipetrak.check_group_by(p_group_by, array['area', 'system', 'test_package', 'drawing', 'project']);
    if p_days is null or p_days < 1 or p_days > 365 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "days", "expected": "1 to 365 days (7, 14 and 21 are the presets)"}');
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 1000 or p_offset is null or p_offset < 0 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "page_size, page_offset", "expected": "1 to 1000 rows from offset >= 0"}');
    end if;
    v_today := (select (now() at time zone p.time_zone)::date from pipetrak.projects p where p.id = p_project_id);
    return query
    with page as (
        -- The touched components, least recently first; the group from where each is now.
        select t.component_id, upper(t.days) - 1 as last_on,
               pipetrak.group_key(p_group_by, t.project_id, t.drawing_id, t.area_id, t.system_id, t.test_package_id, t.component_type) as k
        from pipetrak.component_touches t
        join pipetrak.components c on c.id = t.component_id and c.project_id = t.project_id
        where t.project_id = p_project_id and upper(t.days) <= v_today - p_days + 1
          and (p_group_key is null
               or pipetrak.group_key(p_group_by, t.project_id, t.drawing_id, t.area_id, t.system_id, t.test_package_id, t.component_type) = p_group_key)
          and c.retired_at is null and c.earned_total > 0 and c.earned_total < 1000000
        order by upper(t.days), t.component_id
        limit p_limit offset p_offset),
    names as (select x.k, pipetrak.group_name(p_group_by, p_project_id, x.k) as name from (select distinct p.k from page p) x)
    select c.id, c.component_type, c.tag, c.size, d.drawing_no, p.k, n.name, c.percent_complete, p.last_on, v_today - p.last_on, v_today
    from page p
    join pipetrak.components c on c.id = p.component_id and c.project_id = p_project_id
    join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = p_project_id
    left join names n on n.k is not distinct from p.k
    order by p.last_on, c.id;
end
$$;

-- ---- Writes ----

-- Activities sent as JSON, typed, each with the first problem that makes it unacceptable (null
-- when it is fine): the one reading set_baseline validates and then stores.
create function pipetrak.baseline_rows(p_project_id bigint, p_group_by text, p_activities jsonb)
returns table (n integer, activity_code text, name text, group_id bigint, planned_start date, planned_finish date, budget_mh numeric,
               weight numeric, curve text, problem text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    with typed as (
        select a.n::integer as n, btrim(a.x ->> 'activity_code') as code,
               coalesce(nullif(btrim(a.x ->> 'name'), ''), btrim(a.x ->> 'activity_code')) as name, a.x ->> 'group' as group_name,
               pipetrak.group_by_name(p_project_id, p_group_by, a.x ->> 'group') as group_id,
               pipetrak.json_date(a.x -> 'planned_start') as start, pipetrak.json_date(a.x -> 'planned_finish') as finish,
               a.x -> 'budget_mh' as raw_budget, pipetrak.json_number(a.x -> 'budget_mh') as budget,
               a.x -> 'weight' as raw_weight, pipetrak.json_number(a.x -> 'weight') as weight,
               coalesce(nullif(btrim(a.x ->> 'curve'), ''), 'linear') as curve,
               count(*) over (partition by btrim(a.x ->> 'activity_code') order by a.n) as seen
        from jsonb_array_elements(p_activities) with ordinality a(x, n))
    select t.n, t.code, t.name, t.group_id, t.start, t.finish, t.budget, t.weight, t.curve,
           case
               when coalesce(t.code, '') = '' or length(t.code) > 200 then 'activity_code: 1 to 200 characters'
               when t.seen > 1 then 'activity_code: each activity once'
               when length(t.name) > 500 then 'name: at most 500 characters'
               when t.group_id is null then format('group: the name of a live %s of the project', replace(p_group_by, '_', ' '))
               when t.start is null or t.finish is null then 'planned_start, planned_finish: dates (YYYY-MM-DD)'
               when t.finish < t.start then 'planned_finish: on or after planned_start'
               when (jsonb_typeof(t.raw_budget) <> 'null' and t.budget is null) or t.budget < 0 or round(t.budget, 2) >= 1000000000000 then
                   'budget_mh: a number of man-hours >= 0'
               when (jsonb_typeof(t.raw_weight) <> 'null' and t.weight is null) or round(t.weight, 4) <= 0
                    or round(t.weight, 4) >= 10000000000 then
                   'weight: a number from 0.0001'
               when t.curve <> all (pipetrak.vocabulary('baseline_curve')) then
                   'curve: ' || array_to_string(pipetrak.vocabulary('baseline_curve'), ', ')
           end
    from typed t;
end
$$;

-- A new baseline version from activities (JSON array of objects: activity_code, name, group,
-- planned_start, planned_finish, budget_mh, weight, curve). Returns {baseline_id, version,
-- activities, budget_mh}.
create function pipetrak.set_baseline(p_project_id bigint, p_group_by text, p_reason text, p_effective_date date, p_activities jsonb,
                                      p_import_id bigint default null)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_reason text;
    v_effective date;
    v_previous pipetrak.baselines;
    v_last_locked date;
    v_baseline pipetrak.baselines;
    v_bad record;
    v_budget numeric;
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_project_data');
    perform pipetrak.check_group_by(p_group_by, array['area', 'system', 'test_package', 'drawing', 'project']);
    v_reason := pipetrak.check_reason(p_reason, 3, 'a baseline version');
    perform pipetrak.check_date('effective_date', p_effective_date);
    if p_activities is null or jsonb_typeof(p_activities) <> 'array' or jsonb_array_length(p_activities) = 0
       or exists (select from jsonb_array_elements(p_activities) a where jsonb_typeof(a) <> 'object') then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "activities", "expected": "a non-empty array of activity objects"}');
    end if;
    -- A request's batch is bounded; a schedule import's activities are as many as the file holds.
    if p_import_id is null and jsonb_array_length(p_activities) > pipetrak.max_batch_items() then
        perform pipetrak.raise_error('batch_too_large', jsonb_build_object('argument', 'activities', 'limit', pipetrak.max_batch_items()));
    end if;
    if p_import_id is not null and not exists (select from pipetrak.import_jobs j where j.id = p_import_id and j.project_id = p_project_id
                                                 and j.kind = 'schedule' and j.status = 'committing') then
        perform pipetrak.raise_error('import_not_found', jsonb_build_object('import_id', p_import_id));
    end if;
    -- One baseline change per project at a time.
    perform from pipetrak.projects where id = p_project_id for no key update;
    v_effective := coalesce(p_effective_date, (select (now() at time zone time_zone)::date from pipetrak.projects where id = p_project_id));
    select * into v_previous from pipetrak.baselines where project_id = p_project_id order by version desc limit 1;
    v_last_locked := pipetrak.last_locked_week_end(p_project_id);
    if v_previous.id is not null and (v_effective <= v_last_locked or v_effective < v_previous.effective_date) then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'effective_date',
            'expected', 'a date after the last locked week and on or after the current version''s',
            'last_locked_week_end', v_last_locked, 'current_effective_date', v_previous.effective_date));
    end if;
    -- The first activity that is not acceptable is refused with its position.
    select * into v_bad from pipetrak.baseline_rows(p_project_id, p_group_by, p_activities) r where r.problem is not null order by r.n limit 1;
    if found then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'activities', 'index', v_bad.n - 1,
            'activity_code', v_bad.activity_code, 'expected', v_bad.problem));
    end if;
    -- (Values computed first: Citus takes no subquery in an INSERT.)
    v_budget := (select sum(r.budget_mh) from pipetrak.baseline_rows(p_project_id, p_group_by, p_activities) r);
    insert into pipetrak.baselines (project_id, version, group_by, reason, effective_date, activities, budget_mh, import_id, created_by)
    values (p_project_id, coalesce(v_previous.version, 0) + 1, p_group_by, v_reason, v_effective, jsonb_array_length(p_activities),
            v_budget, p_import_id, pipetrak.current_user_id())
    returning * into v_baseline;
    insert into pipetrak.baseline_activities (baseline_id, project_id, activity_code, name, group_id, planned_start, planned_finish,
                                              budget_mh, weight, curve)
    select v_baseline.id, p_project_id, r.activity_code, r.name, r.group_id, r.planned_start, r.planned_finish, r.budget_mh, r.weight,
           r.curve
    from pipetrak.baseline_rows(p_project_id, p_group_by, p_activities) r;
    return jsonb_build_object('baseline_id', v_baseline.id, 'version', v_baseline.version, 'activities', v_baseline.activities,
                              'budget_mh', v_baseline.budget_mh, 'effective_date', v_baseline.effective_date);
end
$$;

-- A JSON value as a date (ISO text), null when it is missing or not one.
create function pipetrak.json_date(p_value jsonb)
returns date
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    if jsonb_typeof(p_value) <> 'string' or p_value #>> '{}' !~ '^\d{4}-\d{2}-\d{2}$' then
        return null;
    end if;
    return (p_value #>> '{}')::date;
exception when others then
    return null;
end
$$;

-- A JSON number (or numeric text) as numeric, null when it is missing or not one.
create function pipetrak.json_number(p_value jsonb)
returns numeric
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    if jsonb_typeof(p_value) = 'number' then
        return (p_value #>> '{}')::numeric;
    elsif jsonb_typeof(p_value) = 'string' and btrim(p_value #>> '{}') ~ '^-?[0-9]+(\.[0-9]+)?$' then
        return btrim(p_value #>> '{}')::numeric;
    end if;
    return null;
end
$$;

-- Records a timesheet row (foreman and up; the week lock applies). Returns its id.
create function pipetrak.record_hours(p_project_id bigint, p_work_date date, p_hours numeric, p_person text, p_crew text,
                                      p_craft text, p_group_by text, p_group text, p_note text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_role text;
    v_project pipetrak.projects;
    v_local_now timestamp;
    v_group_id bigint;
    v_problem text;
    v_id bigint;
begin
    v_role := pipetrak.require_project_role(p_project_id, 'record_hours');
    -- (The API checks these first; a direct call is held to the same.)
    perform pipetrak.check_text_length('person', p_person, pipetrak.argument_limit('person'));
    perform pipetrak.check_text_length('crew', p_crew, pipetrak.argument_limit('crew'));
    perform pipetrak.check_text_length('craft', p_craft, pipetrak.argument_limit('craft'));
    perform pipetrak.check_text_length('note', p_note, pipetrak.argument_limit('note'));
    select * into v_project from pipetrak.projects where id = p_project_id;
    perform pipetrak.check_group_by(p_group_by, array['area', 'system', 'test_package', 'drawing', 'project']);
    perform pipetrak.check_date('work_date', p_work_date);
    if p_hours is null or p_hours <= 0 or p_hours > 100000 or scale(p_hours) > 2 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "hours", "expected": "hours > 0 with at most two decimals"}');
    end if;
    if nullif(btrim(p_person), '') is null and nullif(btrim(p_crew), '') is null then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "person, crew", "expected": "a person or a crew"}');
    end if;
    v_group_id := pipetrak.group_by_name(p_project_id, p_group_by, p_group);
    if v_group_id is null then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'group',
            'expected', format('the name of a live %s of the project', replace(p_group_by, '_', ' '))));
    end if;
    v_local_now := now() at time zone v_project.time_zone;
    v_problem := pipetrak.work_date_problem(coalesce(p_work_date, v_local_now::date) - date '1970-01-01',
                                            extract(epoch from v_local_now)::bigint, v_project.week_lock, v_role in ('owner', 'admin'));
    if v_problem is not null then
        perform pipetrak.raise_error(v_problem, jsonb_build_object('work_date', coalesce(p_work_date, v_local_now::date),
                                                                   'time_zone', v_project.time_zone));
    end if;
    -- A week that locked freezes before hours land in it.
    perform pipetrak.take_due_snapshots(p_project_id);
    insert into pipetrak.timesheet_hours (project_id, work_date, person, crew, craft, group_by, group_id, hours, note, entered_by)
    values (p_project_id, coalesce(p_work_date, v_local_now::date), nullif(btrim(p_person), ''), nullif(btrim(p_crew), ''),
            nullif(btrim(p_craft), ''), p_group_by, v_group_id, p_hours, nullif(btrim(p_note), ''), pipetrak.current_user_id())
    returning id into v_id;
    perform pipetrak.hours_days_add(1, p_project_id, array[v_id]);
    return v_id;
end
$$;

-- Voids a timesheet row with a reason (foreman and up; the week lock applies to its date).
create function pipetrak.void_hours(p_hours_id bigint, p_reason text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_row pipetrak.timesheet_hours;
    v_role text;
    v_project pipetrak.projects;
    v_local_now timestamp;
    v_reason text;
    v_problem text;
    v_hint bigint := pipetrak.request_project();
    v_user uuid;
    v_now timestamptz := now();
begin
    -- By the request's project where it names one (on Citus: its shard alone), as ids are found.
    if v_hint is null then
        select h.* into v_row from pipetrak.timesheet_hours h
        where h.id = p_hours_id and h.project_id in (select pipetrak.my_project_ids());
    else
        select h.* into v_row from pipetrak.timesheet_hours h
        where h.id = p_hours_id and h.project_id = v_hint and h.project_id in (select pipetrak.my_project_ids());
    end if;
    if v_row.id is null then
        perform pipetrak.raise_error('hours_not_found', jsonb_build_object('hours_id', p_hours_id));
    end if;
    v_role := pipetrak.require_project_role(v_row.project_id, 'record_hours');
    v_reason := pipetrak.check_reason(p_reason, 3, 'voiding hours');
    select * into v_project from pipetrak.projects where id = v_row.project_id;
    v_local_now := now() at time zone v_project.time_zone;
    v_problem := pipetrak.work_date_problem(v_row.work_date - date '1970-01-01', extract(epoch from v_local_now)::bigint,
                                            v_project.week_lock, v_role in ('owner', 'admin'));
    if v_problem is not null then
        perform pipetrak.raise_error(v_problem, jsonb_build_object('work_date', v_row.work_date, 'time_zone', v_project.time_zone));
    end if;
    perform pipetrak.take_due_snapshots(v_row.project_id);
    -- (The voider as a value: Citus takes no stable function in an UPDATE's SET.)
    v_user := pipetrak.current_user_id();
    update pipetrak.timesheet_hours set voided_at = v_now, voided_by = v_user, void_reason = v_reason
    where id = v_row.id and project_id = v_row.project_id and voided_at is null;
    if not found then
        perform pipetrak.raise_error('hours_voided', jsonb_build_object('hours_id', p_hours_id));
    end if;
    perform pipetrak.hours_days_add(-1, v_row.project_id, array[v_row.id]);
end
$$;

-- ---- API ----

create view pipetrak_api.baselines with (security_invoker = true) as
select b.id as baseline_id, b.project_id, b.version, b.group_by, b.reason, b.effective_date, b.activities, b.budget_mh, b.import_id,
       b.created_by, b.created_at
from pipetrak.baselines b;
comment on view pipetrak_api.baselines is 'Baseline versions of your projects: the kind of group they plan, reason, effective date (reports read the version in effect at the week they report unless told another), activities and budget man-hours.';

create view pipetrak_api.baseline_activities with (security_invoker = true) as
select b.version, a.baseline_id, a.project_id, a.activity_code, a.name, b.group_by, a.group_id,
       pipetrak.group_name(b.group_by, a.project_id, a.group_id::text) as group_name, a.planned_start, a.planned_finish,
       a.budget_mh, a.weight, a.curve
from pipetrak.baseline_activities a
join pipetrak.baselines b on b.id = a.baseline_id and b.project_id = a.project_id;
comment on view pipetrak_api.baseline_activities is 'The activities of each baseline version: the group each plans, planned start and finish (inclusive), budget man-hours, weight and curve.';

create view pipetrak_api.timesheet_hours with (security_invoker = true) as
select h.id as hours_id, h.project_id, h.work_date, pipetrak.week_end_of(h.work_date) - 6 as week_start,
       pipetrak.week_end_of(h.work_date) as week_end, h.person, h.crew, h.craft, h.group_by, h.group_id,
       pipetrak.group_name(h.group_by, h.project_id, h.group_id::text) as group_name, h.hours, h.note, h.import_id, h.entered_by,
       h.entered_at, h.voided_at, h.voided_by, h.void_reason
from pipetrak.timesheet_hours h;
comment on view pipetrak_api.timesheet_hours is 'Timesheet rows of your projects (voided ones included, with who voided them and why): work date and its week, person or crew, craft, the group charged and hours.';

create function pipetrak_api.set_baseline(project_id bigint, group_by text, reason text, activities jsonb, effective_date date default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.set_baseline(project_id, pipetrak.limited('group_by', group_by), pipetrak.limited('reason', reason), effective_date,
                                   pipetrak.limited('activities', activities)) $$;
comment on function pipetrak_api.set_baseline(bigint, text, text, jsonb, date) is
    'Makes a new baseline version of the project (owner, admin, project manager): activities is an array of {activity_code, name, group (the name of an area, system, test package or drawing, by group_by; omitted for project), planned_start, planned_finish, budget_mh, weight, curve (linear, s_curve, front_loaded, back_loaded)}. The effective date (default today) must follow the last locked week. Returns {baseline_id, version, activities, budget_mh, effective_date}.';

create function pipetrak_api.record_hours(project_id bigint, work_date date, hours numeric, person text default null,
                                          crew text default null, craft text default null, group_by text default 'project',
                                          "group" text default null, note text default null)
returns bigint
language sql volatile security invoker
as $$ select pipetrak.record_hours(project_id, work_date, hours, pipetrak.limited('person', person), pipetrak.limited('crew', crew),
                                   pipetrak.limited('craft', craft), pipetrak.limited('group_by', group_by),
                                   pipetrak.limited('group', "group"), pipetrak.limited('note', note)) $$;
comment on function pipetrak_api.record_hours(bigint, date, numeric, text, text, text, text, text, text) is
    'Records actual hours (foreman and up): a work date (the week lock applies), hours, a person or crew, the craft, and the group charged (group_by area, system, test_package or drawing with the group''s name, or the project). Returns the row''s id.';

create function pipetrak_api.void_hours(hours_id bigint, reason text)
returns void
language sql volatile security invoker
as $$ select pipetrak.void_hours(hours_id, pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.void_hours(bigint, text) is
    'Voids a timesheet row with a reason (foreman and up; the week lock applies to its date). The row stays, marked voided.';

create function pipetrak_api.controls_week(project_id bigint, week_end date default null, group_by text default 'area',
                                           baseline_version integer default null)
returns table (group_key text, group_name text, week_start date, week_end date, frozen boolean, baseline_version integer,
               planned_percent numeric, earned_percent numeric, schedule_variance numeric, spi numeric, planned_mh numeric,
               earned_mh numeric, schedule_variance_mh numeric, spi_mh numeric, earned_mh_week numeric, actual_hours_week numeric,
               actual_hours numeric, productivity_factor numeric, cpi numeric, budget_mh numeric, eac_mh numeric, etc_mh numeric)
language sql stable security invoker
as $$ select * from pipetrak.controls_week(project_id, week_end, pipetrak.limited('group_by', group_by), baseline_version) $$;
comment on function pipetrak_api.controls_week(bigint, date, text, integer) is
    'A week''s plan against earned per area, system, test_package, drawing or the project (week_end: its Sunday, default this week; each row says the week): planned and earned % to date, schedule variance (points) and SPI by credit; planned and earned man-hours, their variance and SPI by man-hours; earned man-hours and actual hours of the week, actual hours to date, productivity factor (week) and CPI (to date), budget at completion, estimate at and to complete. A locked week reads as frozen.';

create function pipetrak_api.s_curve(project_id bigint, group_by text default 'project', group_key text default null,
                                     weeks integer default 52, week_end date default null, baseline_version integer default null)
returns table (group_key text, group_name text, week_start date, week_end date, frozen boolean, baseline_version integer,
               planned_percent numeric, planned_percent_week numeric, earned_percent numeric, earned_percent_week numeric,
               planned_mh numeric, earned_mh numeric, actual_hours numeric, actual_hours_week numeric)
language sql stable security invoker
as $$ select * from pipetrak.s_curve(project_id, pipetrak.limited('group_by', group_by), pipetrak.limited('group_key', group_key), weeks,
                                     week_end, baseline_version) $$;
comment on function pipetrak_api.s_curve(bigint, text, text, integer, date, integer) is
    'The weekly S-curve of the project or of each group (or the one group_key names): planned and earned %, cumulative and per week, planned and earned man-hours and actual hours, for the weeks (default 52) ending week_end (default this week). Frozen weeks read as frozen.';

create function pipetrak_api.forecasts(project_id bigint, group_by text default 'project', trailing_weeks integer default 4,
                                       week_end date default null, baseline_version integer default null)
returns table (group_key text, group_name text, as_of date, trailing_weeks integer, baseline_version integer, earned_percent numeric,
               earned_percent_before numeric, velocity_percent_per_week numeric, velocity_finish date, planned_percent numeric,
               spi numeric, planned_start date, planned_finish date, spi_finish date)
language sql stable security invoker
as $$ select * from pipetrak.forecasts(project_id, pipetrak.limited('group_by', group_by), trailing_weeks, week_end, baseline_version) $$;
comment on function pipetrak_api.forecasts(bigint, text, integer, date, integer) is
    'Completion forecasts per group as of the end of a week (default this week, to date): by the earned % gained per week over the trailing weeks, and by stretching the planned dates by 1 ÷ SPI. Null where the work has no forward progress or nothing is planned yet.';

create function pipetrak_api.stalled_components(project_id bigint, days integer default 14, group_by text default 'area',
                                                group_key text default null, page_size integer default 100,
                                                page_offset integer default 0)
returns table (component_id bigint, component_type text, tag text, size text, drawing_no text, group_key text, group_name text,
               percent_complete numeric, last_event_on date, idle_days integer, as_of date)
language sql stable security invoker
as $$ select * from pipetrak.stalled_components(project_id, days, pipetrak.limited('group_by', group_by),
                                                pipetrak.limited('group_key', group_key), page_size, page_offset) $$;
comment on function pipetrak_api.stalled_components(bigint, integer, text, text, integer, integer) is
    'Components partly complete with no milestone event for at least `days` days (7, 14 and 21 are the presets), most idle first, a page at a time, with their group (area, system, test_package, drawing or project; one group with group_key).';

-- ---- Imports: schedules and timesheets ----

-- The dry run's rules across rows and with the project for a schedule or timesheet (after the
-- reader checked each row's cells, staged under attributes 'pipetrak_controls'): each group named
-- must be a live one of the project (`unknown_group`), a schedule's activities all plan groups of
-- one kind (the kind of its first row naming a group; `unknown_group` for a row of another) and
-- name each activity once (`duplicate_id`). A schedule is a whole version: its remediation CSV
-- reports what to fix in the schedule, and a row naming an imported row (PIPETRAK REF) is refused
-- (`schedule_imported_whole`); a timesheet's fixed rows replace the rows they name, and a timesheet
-- committed before is flagged (`same_file_imported`). Returns {would, invalidated, errors_added,
-- file_issue}.
create function pipetrak.import_controls_validate(p_import_id bigint, p_project_id bigint, p_kind text, p_charged jsonb)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_group_by text;
    v_groups jsonb;
    v_invalid integer := 0;
    v_errors integer := 0;
    v_would jsonb;
    v_locked date := pipetrak.last_locked_week_end(p_project_id);
    v_same bigint;
    v_schedule boolean := p_kind = 'schedule';
    v_wrong record;
    v_count integer;
begin
    if p_kind = 'schedule' then
        v_group_by := coalesce((select r.attributes -> 'pipetrak_controls' ->> 'group_by' from pipetrak.import_rows r
                                where r.import_id = p_import_id and r.project_id = p_project_id and r.status = 'valid'
                                  and r.attributes -> 'pipetrak_controls' ->> 'group_by' <> 'project'
                                order by r.line limit 1), 'project');
    end if;
    -- Per group named, its rows and what they would record, each group found once (a timesheet
    -- names a few groups on 100,000 rows): a timesheet's summed by the reader (p_charged), a
    -- schedule's in one pass over its rows.
    if p_kind = 'timesheet' then
        select jsonb_agg(jsonb_build_object('group_by', e ->> 'group_by', 'name', e ->> 'group', 'rows', (e ->> 'rows')::integer,
                                            'hours', round((e ->> 'hundredths')::numeric / 100, 2), 'first', e ->> 'first', 'last', e ->> 'last',
                                            'locked', (select coalesce(sum(w.value::integer), 0) from jsonb_each_text(e -> 'weeks') w
                                                       where w.key::date <= v_locked),
                                            'found', pipetrak.group_by_name(p_project_id, e ->> 'group_by', e ->> 'group') is not null))
        into v_groups
        from jsonb_array_elements(coalesce(p_charged, '[]')) e;
    else
        select jsonb_agg(jsonb_build_object('group_by', g.group_by, 'name', g.name, 'rows', g.n, 'hours', g.hours,
                                            'first', g.first, 'last', g.last, 'locked', g.locked,
                                            'found', pipetrak.group_by_name(p_project_id, g.group_by, g.name) is not null))
        into v_groups
        from (select c ->> 'group_by' as group_by, c ->> 'group' as name, count(*) as n, sum((c ->> 'hours')::numeric) as hours,
                     min(d.day) as first, max(d.day) as last, count(*) filter (where d.day <= v_locked) as locked
              from pipetrak.import_rows r
              cross join lateral (select r.attributes -> 'pipetrak_controls' as c) x
              cross join lateral (select (c ->> 'work_date')::date as day) d
              where r.import_id = p_import_id and r.project_id = p_project_id and r.status = 'valid'
              group by 1, 2) g;
    end if;
    -- The rows with a problem, each with its first one (only they are written; the commit finds
    -- the groups again). One statement a rule, its issue added by an immutable function: Citus
    -- runs each on the project's shard.
    if v_schedule then
        -- An activity id on an earlier row.
        update pipetrak.import_rows r set status = 'invalid',
            issues = pipetrak.import_issue_added(r.issues, r.line, 'duplicate_id', 'Activity %s is on an earlier row of this file',
                                                 array[r.tag], 'ACTIVITY ID', r.tag)
        where r.import_id = p_import_id and r.project_id = p_project_id and r.status = 'valid'
          and exists (select from pipetrak.import_rows o
                      where o.import_id = p_import_id and o.project_id = p_project_id and o.status = 'valid' and o.tag = r.tag
                        and o.line < r.line);
        get diagnostics v_count = row_count;
        v_errors := v_errors + v_count;
        -- A row of a remediation CSV.
        update pipetrak.import_rows r set status = 'invalid',
            issues = pipetrak.import_issue_added(r.issues, r.line, 'schedule_imported_whole', '%s',
                                                 array['A schedule is a whole baseline version, not rows to correct one by one'],
                                                 'PIPETRAK REF', null)
        where r.import_id = p_import_id and r.project_id = p_project_id and r.status = 'valid' and r.origin_import_id is not null;
        get diagnostics v_count = row_count;
        v_errors := v_errors + v_count;
    end if;
    -- A group the project lacks, or (a schedule) of another kind than its first.
    for v_wrong in
        select e ->> 'group_by' as group_by, e ->> 'name' as name,
               case when not (e ->> 'found')::boolean then
                        format('No live %s of the project is named %s', replace(e ->> 'group_by', '_', ' '), e ->> 'name')
                    else format('The schedule plans by %s (its first row naming a group); this row plans %s', replace(v_group_by, '_', ' '),
                                case when e ->> 'group_by' = 'project' then 'the project'
                                     else replace(e ->> 'group_by', '_', ' ') || ' ' || (e ->> 'name') end)
               end as problem,
               case e ->> 'group_by' when 'area' then 'AREA' when 'system' then 'SYSTEM' when 'test_package' then 'TEST PACKAGE'
                                     when 'drawing' then 'DRAWING' end as col
        from jsonb_array_elements(coalesce(v_groups, '[]')) e
        where not (e ->> 'found')::boolean or (v_schedule and e ->> 'group_by' <> v_group_by)
    loop
        update pipetrak.import_rows r set status = 'invalid',
            issues = pipetrak.import_issue_added(r.issues, r.line, 'unknown_group', '%s', array[v_wrong.problem], v_wrong.col, null)
        where r.import_id = p_import_id and r.project_id = p_project_id and r.status = 'valid'
          and r.attributes -> 'pipetrak_controls' ->> 'group_by' = v_wrong.group_by
          and (r.attributes -> 'pipetrak_controls' ->> 'group') is not distinct from v_wrong.name;
        get diagnostics v_count = row_count;
        v_errors := v_errors + v_count;
    end loop;
    -- Each row is refused for one problem at a time: as many rows as issues.
    v_invalid := v_errors;
    if p_kind = 'schedule' then
        select jsonb_build_object('baseline', jsonb_build_object(
                   'version', coalesce((select max(b.version) from pipetrak.baselines b where b.project_id = p_project_id), 0) + 1,
                   'group_by', v_group_by, 'activities', count(*), 'budget_mh', sum(r.budget_mh),
                   'planned_start', min((r.attributes -> 'pipetrak_controls' ->> 'planned_start')::date),
                   'planned_finish', max((r.attributes -> 'pipetrak_controls' ->> 'planned_finish')::date)))
        into v_would
        from pipetrak.import_rows r where r.import_id = p_import_id and r.project_id = p_project_id and r.status = 'valid';
    else
        -- What the groups found would record (a timesheet has no other row-level rule here).
        select jsonb_build_object('hours', jsonb_build_object(
                   'rows', coalesce(sum((e ->> 'rows')::integer), 0), 'hours', coalesce(sum((e ->> 'hours')::numeric), 0),
                   'first_work_date', min((e ->> 'first')::date), 'last_work_date', max((e ->> 'last')::date),
                   -- Rows dated in weeks locked already: recorded as the history they are; the
                   -- frozen weeks' figures stay as frozen.
                   'in_locked_weeks', coalesce(sum((e ->> 'locked')::integer), 0)))
        into v_would
        from jsonb_array_elements(coalesce(v_groups, '[]')) e
        where (e ->> 'found')::boolean;
    end if;
    -- The same timesheet committed before would add its hours again: a warning on the file.
    if p_kind = 'timesheet' then
        v_same := (select o.id from pipetrak.import_jobs o
                   join pipetrak.import_jobs j on j.id = p_import_id and j.project_id = p_project_id
                   where o.project_id = p_project_id and o.kind = 'timesheet' and o.status = 'committed' and o.id <> p_import_id
                     and length(o.content) = length(j.content) and md5(o.content) = md5(j.content)
                   order by o.id desc limit 1);
    end if;
    return jsonb_build_object('would', v_would, 'invalidated', v_invalid, 'errors_added', v_errors)
        || case when v_same is not null then jsonb_build_object('file_issue', pipetrak.import_issue(0, 'same_file_imported',
               format('This file was committed already (import %s): committing it again records its hours again', v_same)))
           else '{}' end;
end
$$;

-- Commits a validated schedule (a new baseline version of its valid rows) or timesheet (its valid
-- rows' hours) at once: a baseline is one version, and hours one set. Returns the job's counts.
create function pipetrak.import_controls_commit(p_import_id bigint, p_project_id bigint, p_kind text, p_filename text)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_result jsonb;
    v_ids bigint[];
    v_user uuid;
    v_now timestamptz := now();
begin
    if p_kind = 'schedule' then
        v_result := pipetrak.set_baseline(p_project_id,
            (select s.summary -> 'would' -> 'baseline' ->> 'group_by' from pipetrak.import_jobs s where s.id = p_import_id and s.project_id = p_project_id),
            format('Imported from %s (import %s)', p_filename, p_import_id),
            -- Today, or with the current version where it takes effect later.
            (select greatest((now() at time zone p.time_zone)::date, max(b.effective_date))
             from pipetrak.projects p left join pipetrak.baselines b on b.project_id = p.id
             where p.id = p_project_id group by p.time_zone),
            (select jsonb_agg(jsonb_build_object('activity_code', r.tag, 'name', c ->> 'name',
                                                 'group', c ->> 'group',
                                                 'planned_start', c ->> 'planned_start', 'planned_finish', c ->> 'planned_finish',
                                                 'budget_mh', r.budget_mh, 'weight', c -> 'weight', 'curve', c ->> 'curve') order by r.line)
             from pipetrak.import_rows r cross join lateral (select r.attributes -> 'pipetrak_controls' as c) x
             where r.import_id = p_import_id and r.project_id = p_project_id and r.status = 'valid'),
            p_import_id);
        return jsonb_build_object('baseline_version', (v_result ->> 'version')::integer, 'baseline_id', (v_result ->> 'baseline_id')::bigint,
                                  'activities_created', (v_result ->> 'activities')::integer);
    end if;
    -- On a Citus cluster the rows' insert reads across shards: refused (the dry run works there).
    perform pipetrak.refuse_distributed('a timesheet commit');
    -- A week that locked freezes before hours land in it.
    perform pipetrak.take_due_snapshots(p_project_id);
    -- A fixed row of a remediation CSV replaces the live row standing for the same original row
    -- (voided, with why): the original's, or an earlier fix's. An import is the record, as a weld
    -- log is: it may correct rows in locked weeks, whose frozen figures stay as they were.
    v_user := pipetrak.current_user_id();
    with replaced as (
        update pipetrak.timesheet_hours h set voided_at = v_now, voided_by = v_user,
            void_reason = 'Corrected by import ' || p_import_id || ', row ' || r.line
        from pipetrak.import_rows r
        where r.import_id = p_import_id and r.project_id = p_project_id and r.status = 'valid' and r.origin_import_id is not null
          and h.project_id = r.project_id and h.source_import_id = r.origin_import_id and h.source_line = r.origin_line
          and h.voided_at is null
        returning h.id)
    select array_agg(x.id) into v_ids from replaced x;
    if v_ids is not null then
        perform pipetrak.hours_days_add(-1, p_project_id, v_ids);
    end if;
    -- Each group named, found once (validated by the dry run; one retired since is refused).
    if exists (select from (select distinct r.attributes -> 'pipetrak_controls' ->> 'group_by' as group_by,
                                            r.attributes -> 'pipetrak_controls' ->> 'group' as name
                            from pipetrak.import_rows r
                            where r.import_id = p_import_id and r.project_id = p_project_id and r.status = 'valid'
                            offset 0) n
               where pipetrak.group_by_name(p_project_id, n.group_by, n.name) is null) then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'import_id',
            'expected', 'groups that still exist: one named by the timesheet was retired since its dry run; validate it again'));
    end if;
    with groups as materialized (
        select n.group_by, n.name, pipetrak.group_by_name(p_project_id, n.group_by, n.name) as group_id
        from (select distinct r.attributes -> 'pipetrak_controls' ->> 'group_by' as group_by,
                              r.attributes -> 'pipetrak_controls' ->> 'group' as name
              from pipetrak.import_rows r
              where r.import_id = p_import_id and r.project_id = p_project_id and r.status = 'valid') n),
    made as (
        insert into pipetrak.timesheet_hours (project_id, work_date, person, crew, craft, group_by, group_id, hours, note, import_id,
                                              source_import_id, source_line, entered_by)
        select p_project_id, (c ->> 'work_date')::date, c ->> 'person', c ->> 'crew', c ->> 'craft', c ->> 'group_by',
               g.group_id, (c ->> 'hours')::numeric, left(r.attributes ->> 'comments', 2000), p_import_id,
               coalesce(r.origin_import_id, p_import_id), coalesce(r.origin_line, r.line), pipetrak.current_user_id()
        from pipetrak.import_rows r
        cross join lateral (select r.attributes -> 'pipetrak_controls' as c) x
        join groups g on g.group_by = c ->> 'group_by' and g.name is not distinct from c ->> 'group'
        where r.import_id = p_import_id and r.project_id = p_project_id and r.status = 'valid'
          -- An original row a remediation import already brought in (fixed) stays as fixed.
          and (r.origin_import_id is not null
               or not exists (select from pipetrak.timesheet_hours o
                              where o.project_id = r.project_id and o.source_import_id = p_import_id and o.source_line = r.line))
        returning id)
    select array_agg(m.id) into v_ids from made m;
    if v_ids is not null then
        perform pipetrak.hours_days_add(1, p_project_id, v_ids);
    end if;
    return jsonb_build_object('hours_rows_created', coalesce(cardinality(v_ids), 0),
                              'hours_rows_replaced', (select count(*) from pipetrak.timesheet_hours h
                                                      where h.project_id = p_project_id and h.void_reason like format('Corrected by import %s,%%', p_import_id)),
                              'hours_recorded', (select coalesce(sum(h.hours), 0) from pipetrak.timesheet_hours h
                                                 where h.project_id = p_project_id and h.import_id = p_import_id));
end
$$;
