-- Progress history, man-hours and reports (spec §11): delta and as-of reports, weekly snapshots,
-- man-hour budgets and earned man-hours, the dashboard and the activity feed.
--
-- Design notes (decisions where the spec was silent):
-- - Every milestone event keeps the credit it earned (ppm of its component, negative for a
--   rollback) and its man-hours at the component's budget then. `progress_days` sums them per work
--   date and part (drawing, area, system, test package, type), kept by a statement trigger on the
--   events; a component that moves to another drawing, area, system or package takes its history
--   with it, so every report groups by where components are now; one that is retired (a
--   repaired weld too) takes its credit out of the day it is retired, so a report up to today
--   equals the rollups and none goes above 100 %. Delta and as-of reports sum
--   these rows, never the events; each day's row also keeps the ids of the components its events
--   touched, so "components touched" is a distinct count over the window's rows — or, for a
--   window longer than a month, a count of the components whose touched days (`component_touches`)
--   meet the window.
-- - Percentages are of the group's available credit now (its live components × the category
--   weights). Man-hours of a delta are those the events earned at the budget in force when they
--   were recorded: a later budget version restates the man-hour rollups, not past deltas.
-- - Weekly snapshots freeze, per part, the cumulative credit and man-hours at the end of a locked
--   week, with what was available then (so its percentages never change). A week's snapshot is
--   taken by the first write through the API after the week locks that changes components,
--   their history or budgets (milestones, imports, moves, retirements, corrections, package
--   stages: each takes due snapshots before it changes the parts or the days), by
--   `pipetrak.take_due_snapshots()` (which pg_cron runs hourly where that extension is
--   installed), or read live by the weekly report until then: no write has happened since the
--   lock, so the numbers are the same. Snapshots start with the last
--   locked week at a project's first taking: weeks before it are not reconstructed. A correction
--   dated in a frozen week changes the next snapshot, never the frozen one.
-- - Man-hours: budget versions per project, one active. Spreading a total weighs each live
--   component by `domain::manhours` (diameter^1.5; reducers the mean of their sizes; pipe × feet ×
--   0.1; an unreadable size 0.5, counted as a warning); budgets are rounded to 0.0001 MH. Earned
--   MH = budget × credit, kept in the progress parts per category like the credit itself. Owner,
--   admin and project manager set budgets; everyone in the project reads.

alter table pipetrak.budget_versions enable row level security;
alter table pipetrak.component_budgets enable row level security;
create policy budget_versions_select_member on pipetrak.budget_versions for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy component_budgets_select_member on pipetrak.component_budgets for select to authenticated
    using (pipetrak.project_visible(project_id));

-- ---- Credit per day ----

create table pipetrak.progress_days (
    project_id      bigint not null references pipetrak.projects,
    work_date       date not null,
    drawing_id      bigint not null,
    area_id         bigint,
    system_id       bigint,
    test_package_id bigint,
    component_type  text not null,
    events          integer not null default 0,
    credit_receive  bigint not null default 0,
    credit_install  bigint not null default 0,
    credit_punch    bigint not null default 0,
    credit_test     bigint not null default 0,
    credit_restore  bigint not null default 0,
    mh_receive      numeric not null default 0,
    mh_install      numeric not null default 0,
    mh_punch        numeric not null default 0,
    mh_test         numeric not null default 0,
    mh_restore      numeric not null default 0,
    -- The components the day's events touched (a distinct count over a window needs no join).
    components      bigint[] not null default '{}',
    constraint progress_days_key unique nulls not distinct (project_id, work_date, drawing_id, area_id, system_id,
                                                            test_package_id, component_type)
);
alter table pipetrak.progress_days enable row level security;
create policy progress_days_select_member on pipetrak.progress_days for select to authenticated
    using (pipetrak.project_visible(project_id));

-- The days each component was touched, where it is now: a window longer than a month counts its
-- components here (one row each) rather than distinct over every component-day of the window.
-- Derived, like the days (rebuilt, not dumped; delete_project removes a project's): its project is
-- the component's, so it has no foreign key to projects — checking one for each component a write
-- touches cost 17 ms of the 250 ms a 5,000-member package spends earning Test.
create table pipetrak.component_touches (
    component_id    bigint not null,
    project_id      bigint not null,
    drawing_id      bigint not null,
    area_id         bigint,
    system_id       bigint,
    test_package_id bigint,
    component_type  text not null,
    days            datemultirange not null,
    primary key (component_id, project_id)
);
create index component_touches_project_idx on pipetrak.component_touches (project_id);
alter table pipetrak.component_touches enable row level security;
create policy component_touches_select_member on pipetrak.component_touches for select to authenticated
    using (pipetrak.project_visible(project_id));

-- Ids added to a day's set: the set as it is when it holds them all (the common case: one more
-- event of a component already touched that day), else with them appended. A bulk write may
-- append an id twice; the counts are distinct counts. Inlined (no sub-select).
create function pipetrak.id_union(p_ids bigint[], p_more bigint[])
returns bigint[]
language sql immutable parallel safe
as $$
    select case when p_ids @> p_more then p_ids else p_ids || p_more end
$$;

-- Adds (p_sign = 1) or takes away (-1) events' credit and man-hours to or from the days of the
-- parts their components are in now. `p_events`: event ids, all of project `p_project_id` (every
-- table read by the project: on Citus, its shard). Every milestone write runs this statement for
-- one event, through the captured rows' flush, which plans it generically on a single node (a
-- custom plan for each call cost more than running it).
create function pipetrak.progress_days_add(p_sign integer, p_project_id bigint, p_events bigint[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    -- Two statements, each reading the events and their components (a statement writing through
    -- a CTE is planned by Citus in steps that ship its rows between nodes).
    insert into pipetrak.progress_days as d (project_id, work_date, drawing_id, area_id, system_id, test_package_id,
               component_type, events, credit_receive, credit_install, credit_punch, credit_test, credit_restore,
               mh_receive, mh_install, mh_punch, mh_test, mh_restore, components)
        select e.project_id, e.work_date, e.drawing_id, e.area_id, e.system_id, e.test_package_id, e.component_type,
               p_sign * count(*),
               p_sign * coalesce(sum(e.credit) filter (where e.category = 'receive'), 0),
               p_sign * coalesce(sum(e.credit) filter (where e.category = 'install'), 0),
               p_sign * coalesce(sum(e.credit) filter (where e.category = 'punch'), 0),
               p_sign * coalesce(sum(e.credit) filter (where e.category = 'test'), 0),
               p_sign * coalesce(sum(e.credit) filter (where e.category = 'restore'), 0),
               p_sign * coalesce(sum(e.mh) filter (where e.category = 'receive'), 0),
               p_sign * coalesce(sum(e.mh) filter (where e.category = 'install'), 0),
               p_sign * coalesce(sum(e.mh) filter (where e.category = 'punch'), 0),
               p_sign * coalesce(sum(e.mh) filter (where e.category = 'test'), 0),
               p_sign * coalesce(sum(e.mh) filter (where e.category = 'restore'), 0),
               case when p_sign > 0 then array_agg(distinct e.component_id order by e.component_id) else '{}' end
        from (select c.id as component_id, c.project_id, e.work_date, c.drawing_id, c.area_id, c.system_id, c.test_package_id,
                     c.component_type, e.category, e.credit, e.mh
              from unnest(p_events) as x(id)
              cross join lateral (select e.* from pipetrak.milestone_events e
                                  where e.id = x.id and e.project_id = p_project_id limit 1) e
              cross join lateral (select c.* from pipetrak.components c
                                  where c.id = e.component_id and c.project_id = p_project_id limit 1) c) e
        group by 1, 2, 3, 4, 5, 6, 7 order by 1, 2, 3, 4, 5, 6, 7
        on conflict on constraint progress_days_key do update set
            events = d.events + excluded.events,
            credit_receive = d.credit_receive + excluded.credit_receive, credit_install = d.credit_install + excluded.credit_install,
            credit_punch = d.credit_punch + excluded.credit_punch, credit_test = d.credit_test + excluded.credit_test,
            credit_restore = d.credit_restore + excluded.credit_restore,
            mh_receive = d.mh_receive + excluded.mh_receive, mh_install = d.mh_install + excluded.mh_install,
            mh_punch = d.mh_punch + excluded.mh_punch, mh_test = d.mh_test + excluded.mh_test,
            mh_restore = d.mh_restore + excluded.mh_restore, components = pipetrak.id_union(d.components, excluded.components);
    -- A day taken away leaves the touches alone (a touch is a day the component had an event).
    if p_sign > 0 then
        insert into pipetrak.component_touches as t (component_id, project_id, drawing_id, area_id, system_id, test_package_id,
                                                     component_type, days)
        select c.id, c.project_id, c.drawing_id, c.area_id, c.system_id, c.test_package_id, c.component_type,
               range_agg(daterange(e.work_date, e.work_date, '[]'))
        from unnest(p_events) as x(id)
        cross join lateral (select e.* from pipetrak.milestone_events e
                            where e.id = x.id and e.project_id = p_project_id limit 1) e
        cross join lateral (select c.* from pipetrak.components c
                            where c.id = e.component_id and c.project_id = p_project_id limit 1) c
        group by 1, 2, 3, 4, 5, 6, 7 order by 1
        on conflict (component_id, project_id) do update set days = t.days + excluded.days
        where not t.days @> excluded.days;
    end if;
end
$$;

-- New events count in their days (a restore's COPY too; `p_new`: the events a statement inserted,
-- handed over by its trigger, see src/pg/captured.rs); update_milestones adds its events once,
-- at its end (see progress_deferred).
create function pipetrak.progress_days_net_events(p_op text, p_old pipetrak.milestone_events[], p_new pipetrak.milestone_events[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project bigint;
begin
    if current_setting('pipetrak.days_deferred', true) = 'on' and pipetrak.progress_deferred() then
        return;
    end if;
    -- Project by project (the events' own), each a statement on its shard on Citus.
    for v_project in select distinct n.project_id from unnest(p_new) n order by 1 loop
        perform pipetrak.progress_days_add(1, v_project, array(select n.id from unnest(p_new) n where n.project_id = v_project));
        -- Events of a component retired already (only a restore loads them so): its credit leaves
        -- on the day it was retired, as it did when it was.
        perform pipetrak.progress_days_scope(-1, array[c.id], (c.retired_at at time zone p.time_zone)::date)
        from pipetrak.components c
        join pipetrak.projects p on p.id = c.project_id
        where c.project_id = v_project and c.retired_at is not null
          and c.id = any (array(select n.component_id from unnest(p_new) n where n.project_id = v_project));
    end loop;
end
$$;

create trigger milestone_events_progress_days_rows after insert on pipetrak.milestone_events
    for each row execute function pipetrak.capture_row('progress_days_net_events');
create trigger milestone_events_progress_days after insert on pipetrak.milestone_events
    for each statement execute function pipetrak.flush_rows('progress_days_net_events');

-- A component's events per work date: how many, and their credit and man-hours per category.
create function pipetrak.component_credit_by_day(p_component_id bigint)
returns table (work_date date, events bigint, credit_receive bigint, credit_install bigint, credit_punch bigint,
               credit_test bigint, credit_restore bigint, mh_receive numeric, mh_install numeric, mh_punch numeric,
               mh_test numeric, mh_restore numeric)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select e.work_date, count(*),
           coalesce(sum(e.credit) filter (where e.category = 'receive'), 0)::bigint,
           coalesce(sum(e.credit) filter (where e.category = 'install'), 0)::bigint,
           coalesce(sum(e.credit) filter (where e.category = 'punch'), 0)::bigint,
           coalesce(sum(e.credit) filter (where e.category = 'test'), 0)::bigint,
           coalesce(sum(e.credit) filter (where e.category = 'restore'), 0)::bigint,
           coalesce(sum(e.mh) filter (where e.category = 'receive'), 0),
           coalesce(sum(e.mh) filter (where e.category = 'install'), 0),
           coalesce(sum(e.mh) filter (where e.category = 'punch'), 0),
           coalesce(sum(e.mh) filter (where e.category = 'test'), 0),
           coalesce(sum(e.mh) filter (where e.category = 'restore'), 0)
    from pipetrak.milestone_events e
    where e.component_id = p_component_id
    group by e.work_date
$$;

-- Takes a component's credit and man-hours per day out of the part `p_part` (where it was): a
-- move, after which progress_days_add puts its events in the part it is in now.
create function pipetrak.progress_days_leave(p_component_id bigint, p_part pipetrak.components)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into pipetrak.progress_days as d (project_id, work_date, drawing_id, area_id, system_id, test_package_id,
           component_type, events, credit_receive, credit_install, credit_punch, credit_test, credit_restore,
           mh_receive, mh_install, mh_punch, mh_test, mh_restore)
    select p_part.project_id, x.work_date, p_part.drawing_id, p_part.area_id, p_part.system_id, p_part.test_package_id,
           p_part.component_type, -x.events, -x.credit_receive, -x.credit_install, -x.credit_punch, -x.credit_test,
           -x.credit_restore, -x.mh_receive, -x.mh_install, -x.mh_punch, -x.mh_test, -x.mh_restore
    from pipetrak.component_credit_by_day(p_component_id) x
    order by x.work_date
    on conflict on constraint progress_days_key do update set
        events = d.events + excluded.events,
        credit_receive = d.credit_receive + excluded.credit_receive, credit_install = d.credit_install + excluded.credit_install,
        credit_punch = d.credit_punch + excluded.credit_punch, credit_test = d.credit_test + excluded.credit_test,
        credit_restore = d.credit_restore + excluded.credit_restore,
        mh_receive = d.mh_receive + excluded.mh_receive, mh_install = d.mh_install + excluded.mh_install,
        mh_punch = d.mh_punch + excluded.mh_punch, mh_test = d.mh_test + excluded.mh_test,
        mh_restore = d.mh_restore + excluded.mh_restore, components = array_remove(d.components, p_component_id);
end
$$;

-- Adds `p_sign` times the whole credit and man-hours of components to one day of the parts they
-- are in now, per part in one statement: what their retirement takes out of the history (-1) and
-- their restoration brings back (1), on `p_day` (null: today in each project's time zone). No
-- event is counted; the day's touched set stays.
create function pipetrak.progress_days_scope(p_sign integer, p_component_ids bigint[], p_day date)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into pipetrak.progress_days as d (project_id, work_date, drawing_id, area_id, system_id, test_package_id,
           component_type, credit_receive, credit_install, credit_punch, credit_test, credit_restore,
           mh_receive, mh_install, mh_punch, mh_test, mh_restore)
    select c.project_id, coalesce(p_day, (now() at time zone p.time_zone)::date), c.drawing_id, c.area_id, c.system_id,
           c.test_package_id, c.component_type,
           p_sign * sum(x.credit_receive), p_sign * sum(x.credit_install), p_sign * sum(x.credit_punch),
           p_sign * sum(x.credit_test), p_sign * sum(x.credit_restore), p_sign * sum(x.mh_receive),
           p_sign * sum(x.mh_install), p_sign * sum(x.mh_punch), p_sign * sum(x.mh_test), p_sign * sum(x.mh_restore)
    from pipetrak.components c
    join pipetrak.projects p on p.id = c.project_id
    cross join lateral pipetrak.component_credit_by_day(c.id) x
    where c.id = any (p_component_ids)
    group by 1, 2, 3, 4, 5, 6, 7
    order by 1, 2, 3, 4, 5, 6, 7
    on conflict on constraint progress_days_key do update set
        credit_receive = d.credit_receive + excluded.credit_receive, credit_install = d.credit_install + excluded.credit_install,
        credit_punch = d.credit_punch + excluded.credit_punch, credit_test = d.credit_test + excluded.credit_test,
        credit_restore = d.credit_restore + excluded.credit_restore,
        mh_receive = d.mh_receive + excluded.mh_receive, mh_install = d.mh_install + excluded.mh_install,
        mh_punch = d.mh_punch + excluded.mh_punch, mh_test = d.mh_test + excluded.mh_test,
        mh_restore = d.mh_restore + excluded.mh_restore;
end
$$;

-- A component that moves takes its history along. One that is retired (a repaired weld too)
-- leaves the history the day it is retired, project time: its credit comes out of that day, so
-- a report up to an earlier day still says what was earned then, and a report up to today says
-- what the live components hold (the rollups). A restore brings the credit back on its day. A
-- batch (component_batch) defers retirements and restorations and nets them once at its end.
create function pipetrak.progress_days_follow_component()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    -- A move or retirement re-dates history: due weeks are frozen first (as
    -- progress_parts_net_components does for every component write, which fires after this row
    -- trigger). Not in a Citus worker's task (citus_task): left to the coordinator.
    if pipetrak.current_user_id() is not null and not pipetrak.citus_task() then
        perform pipetrak.take_due_snapshots(new.project_id, null);
    end if;
    if (old.retired_at is null) <> (new.retired_at is null) then
        if not pipetrak.progress_deferred() then
            perform pipetrak.progress_days_scope(case when new.retired_at is null then 1 else -1 end, array[new.id], null);
        end if;
    elsif new.retired_at is null then
        perform pipetrak.progress_days_leave(new.id, old);
        perform pipetrak.progress_days_add(1, new.project_id, array(select e.id from pipetrak.milestone_events e
                                                                    where e.component_id = new.id and e.project_id = new.project_id));
        update pipetrak.component_touches set drawing_id = new.drawing_id, area_id = new.area_id, system_id = new.system_id,
            test_package_id = new.test_package_id, component_type = new.component_type
        where component_id = new.id;
    end if;
    return null;
end
$$;

create trigger components_progress_days after update on pipetrak.components
    for each row
    when ((old.drawing_id, old.area_id, old.system_id, old.test_package_id, old.component_type)
          is distinct from (new.drawing_id, new.area_id, new.system_id, new.test_package_id, new.component_type)
          or (old.retired_at is null) <> (new.retired_at is null))
    execute function pipetrak.progress_days_follow_component();

-- Rebuilds the days from the events (for a DBA, like rebuild_progress_parts), each retired
-- component's credit taken out on the day it was retired. Returns the rows.
create function pipetrak.rebuild_progress_days()
returns bigint
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    c pipetrak.components;
begin
    lock table pipetrak.progress_days, pipetrak.component_touches in exclusive mode;
    delete from pipetrak.progress_days;
    delete from pipetrak.component_touches;
    perform pipetrak.progress_days_add(1, p.id, array(select e.id from pipetrak.milestone_events e where e.project_id = p.id))
    from pipetrak.projects p;
    for c in select x.* from pipetrak.components x where x.retired_at is not null order by x.id loop
        perform pipetrak.progress_days_scope(-1, array[c.id], (select (c.retired_at at time zone p.time_zone)::date
                                                               from pipetrak.projects p where p.id = c.project_id));
    end loop;
    return (select count(*) from pipetrak.progress_days);
end
$$;

-- ---- Weekly snapshots ----

create table pipetrak.snapshot_weeks (
    project_id bigint not null references pipetrak.projects,
    week_end   date not null,
    taken_at   timestamptz not null default now(),
    primary key (project_id, week_end)
);

create table pipetrak.weekly_snapshots (
    project_id      bigint not null,
    week_end        date not null,
    drawing_id      bigint not null,
    area_id         bigint,
    system_id       bigint,
    test_package_id bigint,
    component_type  text not null,
    credit_receive  bigint not null,
    credit_install  bigint not null,
    credit_punch    bigint not null,
    credit_test     bigint not null,
    credit_restore  bigint not null,
    mh_earned       numeric not null,
    -- What was available then: a frozen week's percentages never change.
    component_count integer not null,
    possible_receive bigint not null,
    possible_install bigint not null,
    possible_punch  bigint not null,
    possible_test   bigint not null,
    possible_restore bigint not null,
    budget_mh       numeric not null,
    foreign key (project_id, week_end) references pipetrak.snapshot_weeks (project_id, week_end)
);
create index weekly_snapshots_week_idx on pipetrak.weekly_snapshots (project_id, week_end);
alter table pipetrak.snapshot_weeks enable row level security;
alter table pipetrak.weekly_snapshots enable row level security;
create policy snapshot_weeks_select_member on pipetrak.snapshot_weeks for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy weekly_snapshots_select_member on pipetrak.weekly_snapshots for select to authenticated
    using (pipetrak.project_visible(project_id));

-- The Sunday ending the latest week locked now in a time zone (the rule is Rust's
-- last_locked_sunday). No FROM clause, so the planner inlines it.
create function pipetrak.locked_week_end(p_time_zone text)
returns date
language sql stable parallel safe
as $$
    select date '1970-01-01' + pipetrak.last_locked_sunday(extract(epoch from now() at time zone p_time_zone)::bigint)::integer
$$;

-- The Sunday ending the project's latest locked week.
create function pipetrak.last_locked_week_end(p_project_id bigint)
returns date
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select pipetrak.locked_week_end(p.time_zone) from pipetrak.projects p where p.id = p_project_id
$$;

-- Credit and man-hours per part at the end of `p_date`, from the days.
create function pipetrak.progress_at(p_project_id bigint, p_date date)
returns table (drawing_id bigint, area_id bigint, system_id bigint, test_package_id bigint, component_type text,
               credit_receive bigint, credit_install bigint, credit_punch bigint, credit_test bigint, credit_restore bigint,
               mh_earned numeric)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    select d.drawing_id, d.area_id, d.system_id, d.test_package_id, d.component_type,
           sum(d.credit_receive)::bigint, sum(d.credit_install)::bigint, sum(d.credit_punch)::bigint,
           sum(d.credit_test)::bigint, sum(d.credit_restore)::bigint,
           sum(d.mh_receive + d.mh_install + d.mh_punch + d.mh_test + d.mh_restore)
    from pipetrak.progress_days d
    where d.project_id = p_project_id and d.work_date <= p_date
    group by 1, 2, 3, 4, 5;
end
$$;

-- Per part: credit and man-hours earned by the end of `p_date` (from the days) beside what is
-- available now (live components × category weights, in ppm, and budget).
create function pipetrak.parts_at(p_project_id bigint, p_date date)
returns table (drawing_id bigint, area_id bigint, system_id bigint, test_package_id bigint, component_type text,
               credit_receive bigint, credit_install bigint, credit_punch bigint, credit_test bigint, credit_restore bigint,
               mh_earned numeric, component_count integer, possible_receive bigint, possible_install bigint,
               possible_punch bigint, possible_test bigint, possible_restore bigint, budget_mh numeric)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    select x.drawing_id, x.area_id, x.system_id, x.test_package_id, x.component_type,
           sum(x.credit_receive)::bigint, sum(x.credit_install)::bigint, sum(x.credit_punch)::bigint,
           sum(x.credit_test)::bigint, sum(x.credit_restore)::bigint, sum(x.mh_earned), sum(x.component_count)::integer,
           sum(x.possible_receive)::bigint, sum(x.possible_install)::bigint, sum(x.possible_punch)::bigint,
           sum(x.possible_test)::bigint, sum(x.possible_restore)::bigint, sum(x.budget_mh)
    from (select a.drawing_id, a.area_id, a.system_id, a.test_package_id, a.component_type, a.credit_receive, a.credit_install,
                 a.credit_punch, a.credit_test, a.credit_restore, a.mh_earned, 0 as component_count, 0::bigint as possible_receive,
                 0::bigint as possible_install, 0::bigint as possible_punch, 0::bigint as possible_test,
                 0::bigint as possible_restore, 0::numeric as budget_mh
          from pipetrak.progress_at(p_project_id, p_date) a
          union all
          select p.drawing_id, p.area_id, p.system_id, p.test_package_id, p.component_type, 0, 0, 0, 0, 0, 0, p.component_count,
                 p.component_count::bigint * t.receive_weight * 10000, p.component_count::bigint * t.install_weight * 10000,
                 p.component_count::bigint * t.punch_weight * 10000, p.component_count::bigint * t.test_weight * 10000,
                 p.component_count::bigint * t.restore_weight * 10000, p.budget_mh
          from pipetrak.progress_parts p
          join pipetrak.milestone_templates t on t.project_id = p.project_id and t.component_type = p.component_type
          where p.project_id = p_project_id and p.component_count > 0) x
    group by 1, 2, 3, 4, 5;
end
$$;

-- Freezes every locked week of a project not frozen yet (see the notes). Every component write
-- through the API calls it before it changes the parts or the days (progress_parts_net_components,
-- progress_days_follow_component), as do package earning, bulk updates and budgets, so a write
-- never lands in a week it freezes. Taking twice changes nothing. Returns the weeks taken.
create function pipetrak.take_due_snapshots(p_project_id bigint, p_last_locked date default null)
returns integer
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_last date := p_last_locked;
    v_taken date;
    v_week date;
    v_count integer := 0;
begin
    -- One statement whose plan the session keeps (every component write runs it): the last locked
    -- week's Sunday (unless the caller has it at hand) and the last week taken.
    -- (The weeks by the argument, not correlated with the project's row: Citus refuses that.)
    select coalesce(v_last, pipetrak.locked_week_end(p.time_zone)),
           (select max(w.week_end) from pipetrak.snapshot_weeks w where w.project_id = p_project_id)
    into v_last, v_taken
    from pipetrak.projects p where p.id = p_project_id;
    if v_last is null or v_taken >= v_last then
        return 0;
    end if;
    -- One taker per project at a time; the second finds the weeks taken. The project's row is the
    -- lock (held to commit): nobody without the extension's privileges can take it, where an
    -- advisory lock any session could hold and stall the project's writes.
    perform from pipetrak.projects p where p.id = p_project_id for no key update;
    v_taken := (select max(w.week_end) from pipetrak.snapshot_weeks w where w.project_id = p_project_id);
    for v_week in select generate_series(coalesce(v_taken + 7, v_last), v_last, interval '7 days')::date loop
        if pipetrak.take_snapshot(p_project_id, v_week) then
            v_count := v_count + 1;
        end if;
    end loop;
    return v_count;
end
$$;

-- The weeks due of a project, frozen by a call on the coordinator of a distributed install before
-- it writes the project's components (lock_component, update_milestone, lock_import): there the
-- component triggers that freeze them on one node run in the workers' tasks, which leave them
-- (citus_task). Nothing elsewhere (the triggers do it). Returns the weeks frozen (null where it
-- does nothing). One expression the planner inlines into its callers (every name qualified, no
-- SET clause): on one node a write pays the Rust check alone, 1 µs, where a PL/pgSQL call cost 3.
create function pipetrak.freeze_due_weeks_here(p_project_id bigint)
returns integer
language sql volatile
as $$
    select case when pipetrak.distributed_coordinator() then pipetrak.take_due_snapshots(p_project_id, null) end
$$;

-- Freezes one week of a project (its Sunday) as the days say now; false when it was frozen already.
create function pipetrak.take_snapshot(p_project_id bigint, p_week_end date)
returns boolean
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into pipetrak.snapshot_weeks (project_id, week_end) values (p_project_id, p_week_end) on conflict do nothing;
    if not found then
        return false;
    end if;
    insert into pipetrak.weekly_snapshots (project_id, week_end, drawing_id, area_id, system_id, test_package_id,
                                           component_type, credit_receive, credit_install, credit_punch, credit_test,
                                           credit_restore, mh_earned, component_count, possible_receive, possible_install,
                                           possible_punch, possible_test, possible_restore, budget_mh)
    select p_project_id, p_week_end, a.* from pipetrak.parts_at(p_project_id, p_week_end) a;
    perform pipetrak.freeze_week_groups(p_project_id, p_week_end);
    return true;
end
$$;

-- Every project's due snapshots (what pg_cron runs).
create function pipetrak.take_all_due_snapshots()
returns integer
language sql volatile
set search_path = pg_catalog, pg_temp
as $$ select coalesce(sum(pipetrak.take_due_snapshots(p.id, null)), 0)::integer from pipetrak.projects p where p.archived_at is null $$;

-- A DBA may have pg_cron take the due snapshots on a schedule (hourly by default; pipetrak does
-- not require pg_cron, and the first write after a week locks freezes it anyway). Opt-in: an
-- install schedules nothing. The job is named, so scheduling again changes only its schedule;
-- returns its id. Neither function is granted to any user role.
create function pipetrak.schedule_snapshots(p_schedule text default '7 * * * *')
returns bigint
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    if not exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
        perform pipetrak.raise_error('pg_cron_missing');
    end if;
    -- The job checks that pipetrak is still installed (a drop the trigger below can't see, such
    -- as DROP EXTENSION pg_trgm CASCADE, leaves a job that removes itself at its next run).
    return cron.schedule('pipetrak-weekly-snapshots', p_schedule, $job$
        do $do$
        begin
            if exists (select from pg_catalog.pg_extension where extname = 'pipetrak') then
                perform pipetrak.take_all_due_snapshots();
            else
                perform cron.unschedule(j.jobid) from cron.job j where j.jobname = 'pipetrak-weekly-snapshots';
            end if;
        end
        $do$
    $job$);
end
$$;

-- Removes the scheduled job; false when there was none.
create function pipetrak.unschedule_snapshots()
returns boolean
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    -- (Nested: cron.job is read only where pg_cron is installed.)
    if exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
        -- By id: unschedule by name finds only the caller's own job.
        if exists (select from cron.job where jobname = 'pipetrak-weekly-snapshots') then
            perform cron.unschedule(j.jobid) from cron.job j where j.jobname = 'pipetrak-weekly-snapshots';
            return true;
        end if;
    end if;
    return false;
end
$$;

-- DROP EXTENSION pipetrak takes the job with it: before the command runs (the objects it drops
-- are not listed before they go), its text says whether pipetrak is among the extensions named.
-- A drop that then fails rolls the unscheduling back with it.
create function pipetrak.drop_extension_unschedules()
returns event_trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if pg_catalog.current_query() ~* '\mdrop\s+extension\s+(if\s+exists\s+)?([^;]*,\s*)?"?pipetrak"?(\s|,|;|$)' then
        perform pipetrak.unschedule_snapshots();
    end if;
end
$$;
create event trigger pipetrak_drop_unschedules on ddl_command_start when tag in ('DROP EXTENSION')
    execute function pipetrak.drop_extension_unschedules();

-- ---- Reports ----

-- The group key of a part for `p_group_by` (area, system, test_package, drawing, component_type,
-- project), as text so one report serves every grouping.
create function pipetrak.group_key(p_group_by text, p_project_id bigint, p_drawing_id bigint, p_area_id bigint,
                                   p_system_id bigint, p_test_package_id bigint, p_component_type text)
returns text
language sql immutable parallel safe
as $$
    select case p_group_by when 'area' then p_area_id::pg_catalog.text when 'system' then p_system_id::pg_catalog.text
                           when 'test_package' then p_test_package_id::pg_catalog.text when 'drawing' then p_drawing_id::pg_catalog.text
                           when 'component_type' then p_component_type else p_project_id::pg_catalog.text end
$$;

-- The name of a group key of project `p_project_id` (looked up by the project too: on Citus, on
-- its shard; PL/pgSQL, since Citus can't plan a SQL function's queries over sharded tables with
-- its parameters).
create function pipetrak.group_name(p_group_by text, p_project_id bigint, p_key text)
returns text
language plpgsql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    return case p_group_by
        when 'area' then (select a.name from pipetrak.areas a where a.id = p_key::bigint and a.project_id = p_project_id)
        when 'system' then (select s.name from pipetrak.systems s where s.id = p_key::bigint and s.project_id = p_project_id)
        when 'test_package' then (select t.name from pipetrak.test_packages t
                                  where t.id = p_key::bigint and t.project_id = p_project_id)
        when 'drawing' then (select d.drawing_no from pipetrak.drawings d where d.id = p_key::bigint and d.project_id = p_project_id)
        when 'project' then (select p.name from pipetrak.projects p where p.id = p_key::bigint)
        else p_key end;
end
$$;

-- Refuses a grouping the reports don't know. The report helpers are parallel safe: a query that
-- calls a parallel-unsafe function never runs in parallel, and a year's delta needs the workers.
create function pipetrak.check_group_by(p_group_by text, p_allowed text[])
returns void
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_group_by is null or p_group_by <> all (p_allowed) then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'group_by', 'expected', array_to_string(p_allowed, ', ')));
    end if;
end
$$;

-- Each group's available credit now (live components × category weights, in ppm) and budget.
create function pipetrak.group_available(p_project_id bigint, p_group_by text)
returns table (k text, total numeric, receive numeric, install numeric, punch numeric, test numeric, restore numeric,
               budget numeric)
language plpgsql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    select pipetrak.group_key(p_group_by, p.project_id, p.drawing_id, p.area_id, p.system_id, p.test_package_id, p.component_type),
           sum(p.component_count)::numeric * 1000000, sum(p.component_count::numeric * t.receive_weight * 10000),
           sum(p.component_count::numeric * t.install_weight * 10000), sum(p.component_count::numeric * t.punch_weight * 10000),
           sum(p.component_count::numeric * t.test_weight * 10000), sum(p.component_count::numeric * t.restore_weight * 10000),
           sum(p.budget_mh)
    from pipetrak.progress_parts p
    join pipetrak.milestone_templates t on t.project_id = p.project_id and t.component_type = p.component_type
    where p.project_id = p_project_id and p.component_count > 0
    group by 1;
end
$$;

-- Credit earned in [p_from, p_to] per group (rollbacks subtract), as % of the group's available
-- credit now, in man-hours where budgets exist, and the components the window's events touched.
create function pipetrak.progress_delta(p_project_id bigint, p_from date, p_to date, p_group_by text)
returns table (group_key text, group_name text, components_touched bigint, events bigint, percent_complete numeric,
               received_percent numeric, installed_percent numeric, punched_percent numeric, tested_percent numeric,
               restored_percent numeric, earned_mh numeric, mh_receive numeric, mh_install numeric, mh_punch numeric,
               mh_test numeric, mh_restore numeric)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set jit = off
-- Planned for the grouping asked (a generic plan keeps every branch of the key's CASE per row).
set plan_cache_mode = force_custom_plan
as $$
begin
    perform pipetrak.require_project_role(p_project_id, 'read');
    perform pipetrak.check_group_by(p_group_by, array['area', 'system', 'test_package', 'drawing', 'component_type', 'project']);
    perform pipetrak.check_date('date_from', p_from);
    perform pipetrak.check_date('date_to', p_to);
    if p_from is null or p_to is null or p_from > p_to then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "date_from, date_to", "expected": "a window of work dates, from <= to"}');
    end if;
    return query
    with earned as (
        select pipetrak.group_key(p_group_by, d.project_id, d.drawing_id, d.area_id, d.system_id, d.test_package_id, d.component_type) as k,
               sum(d.events)::bigint as events, sum(d.credit_receive) as receive, sum(d.credit_install) as install,
               sum(d.credit_punch) as punch, sum(d.credit_test) as test, sum(d.credit_restore) as restore,
               sum(d.mh_receive) as mh_receive, sum(d.mh_install) as mh_install, sum(d.mh_punch) as mh_punch,
               sum(d.mh_test) as mh_test, sum(d.mh_restore) as mh_restore
        from pipetrak.progress_days d
        where d.project_id = p_project_id and d.work_date between p_from and p_to
        group by 1),
    -- Grouped by the id itself (or the type), not its text: a year is two million ids to sort.
    touched as (
        select coalesce(t.type_key, t.id_key::text) as k, t.n
        from (select case p_group_by when 'area' then d.area_id when 'system' then d.system_id
                                     when 'test_package' then d.test_package_id when 'drawing' then d.drawing_id
                                     when 'project' then d.project_id end as id_key,
                     case when p_group_by = 'component_type' then d.component_type end as type_key,
                     count(distinct x.id) as n
              from pipetrak.progress_days d cross join unnest(d.components) as x(id)
              where p_to - p_from <= 31 and d.project_id = p_project_id and d.work_date between p_from and p_to
              group by 1, 2) t
        union all
        select pipetrak.group_key(p_group_by, c.project_id, c.drawing_id, c.area_id, c.system_id, c.test_package_id, c.component_type),
               count(*)
        from pipetrak.component_touches c
        where p_to - p_from > 31 and c.project_id = p_project_id and c.days && datemultirange(daterange(p_from, p_to, '[]'))
        group by 1)
    select e.k, pipetrak.group_name(p_group_by, p_project_id, e.k), coalesce(t.n, 0), e.events,
           pipetrak.percent_of(e.receive + e.install + e.punch + e.test + e.restore, a.total),
           pipetrak.percent_of(e.receive, a.receive), pipetrak.percent_of(e.install, a.install),
           pipetrak.percent_of(e.punch, a.punch), pipetrak.percent_of(e.test, a.test), pipetrak.percent_of(e.restore, a.restore),
           case when a.budget > 0 then round(e.mh_receive + e.mh_install + e.mh_punch + e.mh_test + e.mh_restore, 2) end,
           case when a.budget > 0 then round(e.mh_receive, 2) end, case when a.budget > 0 then round(e.mh_install, 2) end,
           case when a.budget > 0 then round(e.mh_punch, 2) end, case when a.budget > 0 then round(e.mh_test, 2) end,
           case when a.budget > 0 then round(e.mh_restore, 2) end
    from earned e
    left join pipetrak.group_available(p_project_id, p_group_by) a on a.k is not distinct from e.k
    left join touched t on t.k is not distinct from e.k
    -- A group whose only change is credit leaving it (a retirement, a repaired weld) shows too.
    where e.events <> 0 or (e.receive, e.install, e.punch, e.test, e.restore) <> (0, 0, 0, 0, 0)
    order by 2 nulls last, 1;
end
$$;

-- Progress per group from per-part credit and availability: a frozen week's as it was frozen, or
-- the days up to a date beside what is available now. `exact_percent` is unrounded.
create function pipetrak.progress_groups(p_project_id bigint, p_group_by text, p_date date, p_frozen boolean)
returns table (k text, percent_complete numeric, exact_percent numeric, received_percent numeric, installed_percent numeric,
               punched_percent numeric, tested_percent numeric, restored_percent numeric, earned_mh numeric)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    with parts as (
        select w.drawing_id, w.area_id, w.system_id, w.test_package_id, w.component_type, w.credit_receive, w.credit_install,
               w.credit_punch, w.credit_test, w.credit_restore, w.mh_earned, w.component_count, w.possible_receive,
               w.possible_install, w.possible_punch, w.possible_test, w.possible_restore, w.budget_mh
        from pipetrak.weekly_snapshots w where p_frozen and w.project_id = p_project_id and w.week_end = p_date
        union all
        select a.* from pipetrak.parts_at(p_project_id, p_date) a where not p_frozen),
    groups as (
        select pipetrak.group_key(p_group_by, p_project_id, x.drawing_id, x.area_id, x.system_id, x.test_package_id, x.component_type) as k,
               sum(x.credit_receive + x.credit_install + x.credit_punch + x.credit_test + x.credit_restore) as earned,
               sum(x.component_count)::numeric * 1000000 as available,
               sum(x.credit_receive) as receive, sum(x.possible_receive) as possible_receive,
               sum(x.credit_install) as install, sum(x.possible_install) as possible_install,
               sum(x.credit_punch) as punch, sum(x.possible_punch) as possible_punch,
               sum(x.credit_test) as test, sum(x.possible_test) as possible_test,
               sum(x.credit_restore) as restore, sum(x.possible_restore) as possible_restore,
               sum(x.mh_earned) as mh, sum(x.budget_mh) as budget
        from parts x group by 1)
    select g.k, coalesce(pipetrak.percent_of(g.earned, g.available), 0),
           case when g.available > 0 then 100 * g.earned / g.available else 0 end,
           coalesce(pipetrak.percent_of(g.receive, g.possible_receive), 0), coalesce(pipetrak.percent_of(g.install, g.possible_install), 0),
           coalesce(pipetrak.percent_of(g.punch, g.possible_punch), 0), coalesce(pipetrak.percent_of(g.test, g.possible_test), 0),
           coalesce(pipetrak.percent_of(g.restore, g.possible_restore), 0),
           case when g.budget > 0 then round(g.mh, 2) end
    from groups g
    where g.available > 0;
end
$$;

-- Progress per group as it stood at the end of a work date (from the events).
create function pipetrak.progress_as_of(p_project_id bigint, p_as_of date, p_group_by text)
returns table (group_key text, group_name text, percent_complete numeric, received_percent numeric, installed_percent numeric,
               punched_percent numeric, tested_percent numeric, restored_percent numeric, earned_mh numeric)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set jit = off
as $$
begin
    perform pipetrak.require_project_role(p_project_id, 'read');
    perform pipetrak.check_group_by(p_group_by, array['area', 'system', 'test_package', 'drawing', 'component_type', 'project']);
    perform pipetrak.check_date('as_of', p_as_of);
    if p_as_of is null then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "as_of", "expected": "a work date"}');
    end if;
    return query
    select g.k, pipetrak.group_name(p_group_by, p_project_id, g.k), g.percent_complete, g.received_percent, g.installed_percent,
           g.punched_percent, g.tested_percent, g.restored_percent, g.earned_mh
    from pipetrak.progress_groups(p_project_id, p_group_by, p_as_of, false) g
    order by 2 nulls last, 1;
end
$$;

-- A locked week's report per group: progress at its end as frozen (or, locked and not taken yet,
-- as the next taking will freeze it: no write has landed since it locked), and the change since
-- the week before's report (percentage points). A locked week reads the same forever: a week
-- locked before the project's snapshots began was never frozen, so it has no report
-- (`week_not_frozen`; progress_as_of says what the events say now), and the first frozen week has
-- no frozen base, so its change is null. A correction dated in a frozen week shows here as part of
-- the next week's change.
create function pipetrak.weekly_report(p_project_id bigint, p_week_end date, p_group_by text)
returns table (group_key text, group_name text, week_start date, week_end date, frozen boolean, percent_complete numeric,
               change numeric, received_percent numeric, installed_percent numeric, punched_percent numeric,
               tested_percent numeric, restored_percent numeric, earned_mh numeric, earned_mh_change numeric)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_last date;
    v_taken date;
    v_frozen boolean;
    v_before_frozen boolean;
    v_has_base boolean;
begin
    perform pipetrak.require_project_role(p_project_id, 'read');
    perform pipetrak.check_group_by(p_group_by, array['area', 'system', 'test_package', 'drawing', 'component_type', 'project']);
    v_last := pipetrak.last_locked_week_end(p_project_id);
    v_frozen := exists (select from pipetrak.snapshot_weeks w where w.project_id = p_project_id and w.week_end = p_week_end);
    if p_week_end is null or extract(isodow from p_week_end) <> 7 or (p_week_end > v_last and not v_frozen) then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'week_end',
            'expected', 'the Sunday ending a locked week', 'last_locked_week_end', v_last));
    end if;
    -- The weeks the next taking freezes (take_due_snapshots): after the last taken, or only the
    -- last locked one at a project's first taking.
    v_taken := coalesce((select max(w.week_end) from pipetrak.snapshot_weeks w where w.project_id = p_project_id), v_last - 7);
    if not v_frozen and p_week_end <= v_taken then
        perform pipetrak.raise_error('week_not_frozen', jsonb_build_object('week_end', p_week_end,
            'first_frozen_week_end', coalesce((select min(w.week_end) from pipetrak.snapshot_weeks w where w.project_id = p_project_id),
                                              v_last)));
    end if;
    v_before_frozen := exists (select from pipetrak.snapshot_weeks w where w.project_id = p_project_id and w.week_end = p_week_end - 7);
    v_has_base := v_before_frozen or p_week_end - 7 > v_taken;
    return query
    select g.k, pipetrak.group_name(p_group_by, p_project_id, g.k), p_week_end - 6, p_week_end, v_frozen, g.percent_complete,
           case when v_has_base then round(g.exact_percent - coalesce(b.exact_percent, 0), 2) end, g.received_percent,
           g.installed_percent, g.punched_percent, g.tested_percent, g.restored_percent, g.earned_mh,
           case when v_has_base then g.earned_mh - b.earned_mh end
    from pipetrak.progress_groups(p_project_id, p_group_by, p_week_end, v_frozen) g
    left join (select * from pipetrak.progress_groups(p_project_id, p_group_by, p_week_end - 7, v_before_frozen) x
               where v_has_base) b
         on b.k is not distinct from g.k
    order by 2 nulls last, 1;
end
$$;

-- ---- Man-hours ----

-- Spreads a new active budget version of `p_total_mh` over the project's live components by
-- weight (see the notes); the previous version stops being active. Returns {version, components,
-- guessed_sizes}.
create function pipetrak.spread_budget(p_project_id bigint, p_total_mh numeric, p_reason text, p_effective_date date)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_reason text;
    v_version pipetrak.budget_versions;
begin
    perform pipetrak.refuse_distributed('spread_budget');
    perform pipetrak.require_project_role(p_project_id, 'manage_project_data');
    v_reason := pipetrak.check_reason(p_reason, 3, 'a new budget version');
    perform pipetrak.check_date('effective_date', p_effective_date);
    if p_total_mh is null or p_total_mh < 0 or p_total_mh >= 1000000000000 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "total_mh", "expected": "a total of man-hours >= 0"}');
    end if;
    -- One budget change per project at a time.
    perform from pipetrak.projects where id = p_project_id for no key update;
    update pipetrak.budget_versions set active = false where project_id = p_project_id and active;
    insert into pipetrak.budget_versions (project_id, version, method, total_mh, reason, effective_date, created_by)
    values (p_project_id, coalesce((select max(version) from pipetrak.budget_versions where project_id = p_project_id), 0) + 1,
            'spread', p_total_mh, v_reason, coalesce(p_effective_date, (select (now() at time zone time_zone)::date
                                                                        from pipetrak.projects where id = p_project_id)),
            pipetrak.current_user_id())
    returning * into v_version;
    delete from pipetrak.component_budgets where project_id = p_project_id;
    with weights as (
        select c.id, w.weight, w.guessed
        from pipetrak.components c
        cross join lateral pipetrak.manhour_weight(c.component_type, c.size, c.quantity::double precision) w
        where c.project_id = p_project_id and c.retired_at is null),
    total as (select sum(weight) as weight from weights),
    budgets as (
        insert into pipetrak.component_budgets (component_id, project_id, version_id, budget_mh)
        select w.id, p_project_id, v_version.id, round((p_total_mh * w.weight::numeric / t.weight::numeric), 4)
        from weights w cross join total t
        where t.weight > 0
        returning 1)
    update pipetrak.budget_versions set
        components = (select count(*) from budgets),
        guessed_sizes = (select count(*) from weights where guessed)
    where id = v_version.id
    returning * into v_version;
    perform pipetrak.refresh_part_budgets(p_project_id);
    return jsonb_build_object('version', v_version.version, 'budget_version_id', v_version.id, 'components', v_version.components,
                              'guessed_sizes', v_version.guessed_sizes);
end
$$;

-- A committed takeoff with a man-hour column makes a new active budget version (method import):
-- each component the file names takes the file's budget (a counted row's budget split evenly over
-- its seqs; a pipe the sum of its rows'), every other component keeps the budget it had. No-op
-- for a file without budgets.
create function pipetrak.import_apply_budgets(p_import_id bigint)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_job pipetrak.import_jobs;
    v_version pipetrak.budget_versions;
    v_project bigint;
begin
    v_project := pipetrak.import_project(p_import_id);
    select * into v_job from pipetrak.import_jobs where id = p_import_id and project_id = v_project;
    if not exists (select from pipetrak.import_rows r where r.import_id = p_import_id and r.project_id = v_job.project_id and r.status = 'valid'
                   and r.budget_mh is not null) then
        return;
    end if;
    perform from pipetrak.projects where id = v_job.project_id for no key update;
    update pipetrak.budget_versions set active = false where project_id = v_job.project_id and active;
    insert into pipetrak.budget_versions (project_id, version, method, total_mh, reason, effective_date, created_by)
    values (v_job.project_id, coalesce((select max(version) from pipetrak.budget_versions where project_id = v_job.project_id), 0) + 1,
            'import', 0, format('import %s (%s)', p_import_id, v_job.filename),
            (select (now() at time zone time_zone)::date from pipetrak.projects where id = v_job.project_id),
            pipetrak.current_user_id())
    returning * into v_version;
    update pipetrak.component_budgets set version_id = v_version.id where project_id = v_job.project_id;
    insert into pipetrak.component_budgets as b (component_id, project_id, version_id, budget_mh)
    select c.id, v_job.project_id, v_version.id,
           round(sum(r.budget_mh / case when c.component_type = any (pipetrak.component_types('per_seq'))
                                        then r.seq_to - r.seq_from + 1 else 1 end), 4)
    from pipetrak.import_rows r
    join pipetrak.drawings d on d.project_id = v_job.project_id and d.drawing_key = r.drawing_key and d.retired_at is null
    join pipetrak.components c on c.project_id = d.project_id and c.drawing_id = d.id and c.component_type = r.component_type
         and c.tag = r.tag and c.size = r.size and c.retired_at is null
         and (c.component_type <> all (pipetrak.component_types('per_seq')) or c.seq between r.seq_from and r.seq_to)
    where r.import_id = p_import_id and r.project_id = v_job.project_id and r.status = 'valid' and r.budget_mh is not null
    group by c.id
    on conflict (component_id, project_id) do update set budget_mh = excluded.budget_mh, version_id = excluded.version_id;
    update pipetrak.budget_versions set
        total_mh = (select coalesce(sum(b.budget_mh), 0) from pipetrak.component_budgets b
                    where b.project_id = v_job.project_id and b.version_id = v_version.id),
        components = (select count(*) from pipetrak.component_budgets b
                      where b.project_id = v_job.project_id and b.version_id = v_version.id)
    where id = v_version.id and project_id = v_job.project_id;
    perform pipetrak.refresh_part_budgets(v_job.project_id);
end
$$;

-- Sets the progress parts' budgets and earned man-hours of a project from its components' budgets
-- (due weeks frozen first: a snapshot keeps the budget it had).
create function pipetrak.refresh_part_budgets(p_project_id bigint)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.take_due_snapshots(p_project_id, null);
    -- Every part and package row of the project is about to change: locked first, in key order
    -- (as every writer of the parts locks them), so no concurrent writer waits on us in a circle.
    perform from pipetrak.progress_parts p where p.project_id = p_project_id
    order by p.project_id, p.test_package_id, p.drawing_id, p.area_id, p.system_id, p.component_type
    for update;
    perform from pipetrak.progress_packages g where g.project_id = p_project_id order by g.test_package_id for update;
    update pipetrak.progress_parts set budget_mh = 0, mh_receive = 0, mh_install = 0, mh_punch = 0, mh_test = 0, mh_restore = 0
    where project_id = p_project_id and (budget_mh, mh_receive, mh_install, mh_punch, mh_test, mh_restore) <> (0, 0, 0, 0, 0, 0);
    update pipetrak.progress_parts p set budget_mh = x.budget, mh_receive = x.receive, mh_install = x.install, mh_punch = x.punch,
        mh_test = x.test, mh_restore = x.restore
    from (select c.drawing_id, c.area_id, c.system_id, c.test_package_id, c.component_type, sum(b.budget_mh) as budget,
                 sum(b.budget_mh * c.earned_receive) as receive, sum(b.budget_mh * c.earned_install) as install,
                 sum(b.budget_mh * c.earned_punch) as punch, sum(b.budget_mh * c.earned_test) as test,
                 sum(b.budget_mh * c.earned_restore) as restore
          from pipetrak.components c join pipetrak.component_budgets b on b.component_id = c.id
          where c.project_id = p_project_id and c.retired_at is null
          group by 1, 2, 3, 4, 5) x
    where p.project_id = p_project_id and p.drawing_id = x.drawing_id and p.area_id is not distinct from x.area_id
      and p.system_id is not distinct from x.system_id and p.test_package_id is not distinct from x.test_package_id
      and p.component_type = x.component_type;
end
$$;

-- Man-hour rollup per group: budget, earned (total and per category), % earned, remaining.
create function pipetrak.manhour_progress(p_project_id bigint, p_group_by text)
returns table (group_key text, group_name text, budget_mh numeric, earned_mh numeric, percent_earned numeric,
               remaining_mh numeric, earned_receive_mh numeric, earned_install_mh numeric, earned_punch_mh numeric,
               earned_test_mh numeric, earned_restore_mh numeric)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.require_project_role(p_project_id, 'read');
    perform pipetrak.check_group_by(p_group_by, array['area', 'system', 'test_package', 'project']);
    return query
    select x.k, pipetrak.group_name(p_group_by, p_project_id, x.k), round(x.budget, 2),
           round((x.r + x.i + x.p + x.t + x.s) / 1000000, 2),
           pipetrak.percent_of((x.r + x.i + x.p + x.t + x.s) / 1000000, x.budget),
           round(x.budget - (x.r + x.i + x.p + x.t + x.s) / 1000000, 2),
           round(x.r / 1000000, 2), round(x.i / 1000000, 2), round(x.p / 1000000, 2), round(x.t / 1000000, 2),
           round(x.s / 1000000, 2)
    from (select pipetrak.group_key(p_group_by, p.project_id, p.drawing_id, p.area_id, p.system_id, p.test_package_id,
                                    p.component_type) as k,
                 sum(p.budget_mh) as budget, sum(p.mh_receive) as r, sum(p.mh_install) as i, sum(p.mh_punch) as p,
                 sum(p.mh_test) as t, sum(p.mh_restore) as s
          from pipetrak.progress_parts p
          where p.project_id = p_project_id and p.component_count > 0
          group by 1) x
    order by 2 nulls last, 1;
end
$$;

-- Weld work in [p_from, p_to] per group (area, system, test package, drawing or welder): welds
-- fitted up and welded (net of rollbacks, by work date), NDE results recorded PASS and FAIL (by
-- examination date, superseded ones included: each was a result given that day), repairs and
-- new welds created (by the day they were created, project time).
create function pipetrak.weld_delta(p_project_id bigint, p_from date, p_to date, p_group_by text)
returns table (group_key text, group_name text, fitted_up bigint, welded bigint, nde_pass bigint, nde_fail bigint,
               repairs bigint, new_welds bigint)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_tz text := (select p.time_zone from pipetrak.projects p where p.id = p_project_id);
begin
    perform pipetrak.refuse_distributed('weld_delta');
    perform pipetrak.require_project_role(p_project_id, 'read');
    perform pipetrak.check_group_by(p_group_by, array['area', 'system', 'test_package', 'drawing', 'welder']);
    perform pipetrak.check_date('date_from', p_from);
    perform pipetrak.check_date('date_to', p_to);
    if p_from is null or p_to is null or p_from > p_to then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "date_from, date_to", "expected": "a window of work dates, from <= to"}');
    end if;
    return query
    with facts as (
        select e.component_id,
               case when e.milestone = 'Fit-up' then sign(e.new_value) - sign(e.old_value) else 0 end as fitted,
               case when e.milestone = 'Weld Complete' then (e.new_value = 100)::integer - (e.old_value = 100)::integer else 0 end as welded,
               0 as pass, 0 as fail, 0 as repairs, 0 as new_welds
        from pipetrak.field_welds f
        join pipetrak.milestone_events e on e.component_id = f.component_id
        where f.project_id = p_project_id and e.work_date between p_from and p_to and e.milestone in ('Fit-up', 'Weld Complete')
        union all
        select n.component_id, 0, 0, (n.result = 'PASS')::integer, (n.result = 'FAIL')::integer, 0, 0
        from pipetrak.nde_results n
        where n.project_id = p_project_id and n.examined_on between p_from and p_to and n.result in ('PASS', 'FAIL')
        union all
        select f.component_id, 0, 0, 0, 0, (f.repair_of is not null)::integer, (f.repair_of is null)::integer
        from pipetrak.field_welds f join pipetrak.components c on c.id = f.component_id
        where f.project_id = p_project_id and (c.created_at at time zone v_tz)::date between p_from and p_to),
    keyed as (
        select case p_group_by when 'welder' then f.welder_id::text
                    else pipetrak.group_key(p_group_by, c.project_id, c.drawing_id, c.area_id, c.system_id, c.test_package_id,
                                            c.component_type) end as k,
               x.*
        from facts x join pipetrak.components c on c.id = x.component_id
        join pipetrak.field_welds f on f.component_id = x.component_id)
    select k.k, case when p_group_by = 'welder' then (select w.stencil from pipetrak.welders w
                                                       where w.id = k.k::bigint and w.project_id = p_project_id)
                     else pipetrak.group_name(p_group_by, p_project_id, k.k) end,
           sum(k.fitted)::bigint, sum(k.welded)::bigint, sum(k.pass)::bigint, sum(k.fail)::bigint, sum(k.repairs)::bigint,
           sum(k.new_welds)::bigint
    from keyed k
    group by k.k
    order by 2 nulls last, 1;
end
$$;

-- ---- API ----

create view pipetrak_api.budget_versions with (security_invoker = true) as
select id, project_id, version, method, total_mh, reason, effective_date, active, components, guessed_sizes, created_by, created_at
from pipetrak.budget_versions;
comment on view pipetrak_api.budget_versions is 'Man-hour budget versions of your projects (one active): total, method, reason, effective date, components budgeted and sizes guessed.';

create view pipetrak_api.component_budgets with (security_invoker = true) as
select component_id, project_id, version_id, budget_mh from pipetrak.component_budgets;
comment on view pipetrak_api.component_budgets is 'The active budget version''s man-hours per component.';

create view pipetrak_api.weekly_snapshots with (security_invoker = true) as
select w.project_id, w.week_end, w.taken_at from pipetrak.snapshot_weeks w;
comment on view pipetrak_api.weekly_snapshots is 'The weeks whose progress is frozen, and when each was taken (read one with weekly_report).';

-- The Monday of this week in a time zone; null for a name that is not a zone. Leakproof, so that
-- row-level security lets the dashboard's `work_date >= week_start(zone)` bound an index scan
-- (a function it can't trust only filters after the scan: every day of a project's history).
-- What makes it leakproof: it never raises (an unknown zone's error would carry the argument;
-- here it is caught and the week is null), writes nothing, and returns only a date of the week.
create function pipetrak.week_start(p_time_zone text)
returns date
language plpgsql stable leakproof parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    return date_trunc('week', now() at time zone p_time_zone)::date;
exception when others then
    return null;
end
$$;

-- One row per project, each figure a lateral subquery of that project: a filter on the project
-- (a client reads its own) reaches every part, so the dashboard reads one project's rows and not
-- every visible project's; its totals, packages ready and open review items are the project's
-- package rows (progress_packages: one per package, not one per part or item) with the parts and
-- open items in no package (index ranges), and this week's credit is a range of
-- the (project, work date) index however long the history (week_start is leakproof).
create view pipetrak_api.project_dashboard with (security_invoker = true) as
select pr.id as project_id, pr.name as project_name,
       coalesce(case when x.budget > 0 then pipetrak.percent_of(x.earned_mh, x.budget)
                     else pipetrak.percent_of(x.earned, x.components * 1000000) end, 0) as percent_complete,
       x.budget > 0 as by_man_hours, coalesce(x.components, 0) as components, coalesce(x.completed, 0) as completed,
       coalesce(k.ready, 0) as packages_ready, coalesce(i.open, 0) as open_review_items,
       coalesce(pipetrak.percent_of(w.credit, x.components * 1000000), 0) as earned_this_week_percent,
       round(x.budget, 2) as budget_mh, round(x.earned_mh, 2) as earned_mh
from pipetrak.projects pr
-- Each figure a lateral query grouped by the project and joined on it (a project without rows
-- has none, hence the coalesces): Citus then runs a project's dashboard on its shard alone.
left join lateral (
    select u.project_id, sum(u.components) as components, sum(u.completed) as completed, sum(u.earned) as earned,
           sum(u.budget) as budget, sum(u.mh) / 1000000 as earned_mh
    from (select g.project_id, g.component_count as components, g.completed_count as completed, g.earned_total as earned,
                 g.budget_mh as budget, g.mh_earned as mh
          from pipetrak.progress_packages g where g.project_id = pr.id
          union all
          select p.project_id, p.component_count, p.completed_count, p.earned_total, p.budget_mh,
                 p.mh_receive + p.mh_install + p.mh_punch + p.mh_test + p.mh_restore
          from pipetrak.progress_parts p where p.project_id = pr.id and p.test_package_id is null) u
    group by u.project_id) x on x.project_id = pr.id
left join lateral (
    select g.project_id, count(*) as ready
    from pipetrak.progress_packages g
    join pipetrak.test_packages t on t.id = g.test_package_id and t.project_id = g.project_id and t.retired_at is null
    where g.project_id = pr.id and g.component_count - g.post_hydro_count > 0
      and g.component_count - g.post_hydro_count - g.ready_count = 0
    group by g.project_id) k on k.project_id = pr.id
left join lateral (
    select o.project_id, sum(o.open)::bigint as open
    from (select g.project_id, g.open_review_items::bigint as open from pipetrak.progress_packages g where g.project_id = pr.id
          union all
          select r.project_id, 1 from pipetrak.review_items r
          where r.project_id = pr.id and r.resolved_at is null and r.test_package_id is null) o
    group by o.project_id) i on i.project_id = pr.id
left join lateral (
    select d.project_id, sum(d.credit_receive + d.credit_install + d.credit_punch + d.credit_test + d.credit_restore) as credit
    from pipetrak.progress_days d
    where d.project_id = pr.id and d.work_date >= pipetrak.week_start(pr.time_zone)
    group by d.project_id) w on w.project_id = pr.id;
comment on view pipetrak_api.project_dashboard is 'One row per project: % complete (by earned man-hours where a budget exists, else by credit), components, completed, test packages ready, open review items, credit earned this week (Monday on, % of the project), budget and earned man-hours.';

create view pipetrak_api.activity_feed with (security_invoker = true) as
select e.id as event_id, e.project_id, e.component_id, e.created_at, e.work_date, e.user_id,
       coalesce(nullif(btrim(u.display_name), ''), u.email, 'Someone') as actor,
       format('%s set %s %s %% on %s %s, drawing %s', coalesce(nullif(btrim(u.display_name), ''), u.email, 'Someone'),
              e.milestone, trim_scale(e.new_value), replace(c.component_type, '_', ' '),
              concat_ws(' ', c.tag,
                        case when c.size <> 'NOSIZE' and c.component_type <> 'field_weld' then c.size || '"' end,
                        case when n.seqs > 1 then c.seq || ' of ' || n.seqs end),
              d.drawing_no) as sentence
from pipetrak.milestone_events e
join pipetrak.components c on c.id = e.component_id and c.project_id = e.project_id
join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = e.project_id
left join pipetrak.user_profiles u on u.user_id = e.user_id
-- "3 of 10": the seqs of a counted item.
-- (Grouped by the project and joined on it: Citus then runs a project's feed on its shard alone.)
left join lateral (select s.project_id, count(*) as seqs from pipetrak.components s
                   where c.component_type = any (pipetrak.component_types('per_seq'))
                     and s.project_id = c.project_id and s.drawing_id = c.drawing_id and s.component_type = c.component_type
                     and s.tag = c.tag and s.size = c.size and s.retired_at is null
                   group by s.project_id) n on n.project_id = c.project_id
-- Newest first, so `GET /activity_feed?limit=20` shows the latest without the client sorting.
order by e.id desc;
comment on view pipetrak_api.activity_feed is 'Milestone changes of your projects as sentences ("J. Ortiz set Install 100 % on valve VBALU-001 2" 3 of 10, drawing P-26B07"), newest first (by event_id).';

create function pipetrak_api.progress_delta(project_id bigint, date_from date, date_to date, group_by text default 'area')
returns table (date_from date, date_to date, group_key text, group_name text, components_touched bigint, events bigint,
               percent_complete numeric, received_percent numeric, installed_percent numeric, punched_percent numeric,
               tested_percent numeric, restored_percent numeric, earned_mh numeric, mh_receive numeric, mh_install numeric,
               mh_punch numeric, mh_test numeric, mh_restore numeric)
language sql stable security invoker
as $$ select date_from, date_to, d.* from pipetrak.progress_delta(project_id, date_from, date_to, pipetrak.limited('group_by', group_by)) d $$;
comment on function pipetrak_api.progress_delta(bigint, date, date, text) is
    'What got done in a window of work dates (each row says its window), per area, system, test_package, drawing, component_type or project: components touched, events, credit earned in total and per category as % of the group''s available credit (rollbacks subtract), and earned man-hours where a budget exists.';

create function pipetrak_api.progress_as_of(project_id bigint, as_of date, group_by text default 'area')
returns table (as_of date, group_key text, group_name text, percent_complete numeric, received_percent numeric,
               installed_percent numeric, punched_percent numeric, tested_percent numeric, restored_percent numeric,
               earned_mh numeric)
language sql stable security invoker
as $$ select as_of, a.* from pipetrak.progress_as_of(project_id, as_of, pipetrak.limited('group_by', group_by)) a $$;
comment on function pipetrak_api.progress_as_of(bigint, date, text) is
    'Progress per group as it stood at the end of a work date (each row says it; from the milestone events), % of the group''s available credit now.';

create function pipetrak_api.weekly_report(project_id bigint, week_end date, group_by text default 'area')
returns table (group_key text, group_name text, week_start date, week_end date, frozen boolean, percent_complete numeric,
               change numeric, received_percent numeric, installed_percent numeric, punched_percent numeric,
               tested_percent numeric, restored_percent numeric, earned_mh numeric, earned_mh_change numeric)
language sql stable security invoker
as $$ select * from pipetrak.weekly_report(project_id, week_end, pipetrak.limited('group_by', group_by)) $$;
comment on function pipetrak_api.weekly_report(bigint, date, text) is
    'A locked week''s report (week_end: its Sunday; each row says the week it covers) per group: progress at its end as frozen when the week locked, and the change since the week before (null for the first frozen week). It reads the same forever; a week locked before the project''s snapshots began has none (week_not_frozen). Corrections to a frozen week show in the next week''s change.';

create function pipetrak_api.manhour_progress(project_id bigint, group_by text default 'project')
returns table (group_key text, group_name text, budget_mh numeric, earned_mh numeric, percent_earned numeric,
               remaining_mh numeric, earned_receive_mh numeric, earned_install_mh numeric, earned_punch_mh numeric,
               earned_test_mh numeric, earned_restore_mh numeric)
language sql stable security invoker
as $$ select * from pipetrak.manhour_progress(project_id, pipetrak.limited('group_by', group_by)) $$;
comment on function pipetrak_api.manhour_progress(bigint, text) is
    'Man-hours per area, system, test_package or project: budget, earned (total and per category), % earned and remaining.';

create function pipetrak_api.weld_delta(project_id bigint, date_from date, date_to date, group_by text default 'area')
returns table (date_from date, date_to date, group_key text, group_name text, fitted_up bigint, welded bigint, nde_pass bigint,
               nde_fail bigint, repairs bigint, new_welds bigint)
language sql stable security invoker
as $$ select date_from, date_to, d.* from pipetrak.weld_delta(project_id, date_from, date_to, pipetrak.limited('group_by', group_by)) d $$;
comment on function pipetrak_api.weld_delta(bigint, date, date, text) is
    'Weld work in a window (each row says its window) per area, system, test_package, drawing or welder: fitted up and welded (net of rollbacks), NDE PASS and FAIL recorded, repairs and new welds created.';

create function pipetrak_api.spread_budget(project_id bigint, total_mh numeric, reason text, effective_date date default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.spread_budget(project_id, total_mh, pipetrak.limited('reason', reason), effective_date) $$;
comment on function pipetrak_api.spread_budget(bigint, numeric, text, date) is
    'Makes a new active man-hour budget version: spreads total_mh over the live components by diameter^1.5 (reducers: mean size; pipe: × feet × 0.1; unreadable size: 0.5, counted in guessed_sizes). Returns {version, components, guessed_sizes}. Owner, admin, project manager.';
