-- Test packages and turnover (spec §10): attributes, post-hydro members, readiness, workflow
-- stages with sign-offs, Test and Restore earned by the package, certificates, the turnover report.
--
-- Design notes (decisions where the spec was silent):
-- - Who: package attributes, post-hydro flags: owner, admin, project manager
--   (`manage_project_data`). Stages, sign-offs and certificates: QC inspector and up
--   (`quality_control`) — they are QC's paperwork, and completing Test Acceptance earns Test for
--   the members the way a foreman's update would. Everyone in the project reads.
-- - Members and readiness: a member is a live component whose package (pinned, else its drawing's)
--   is the package; post-hydro members are not testable. A testable member is ready when every
--   milestone through Punch is at 100 and its NDE clears it (`weld_clears_nde`: accepted, or active
--   with no listed method, a tier below 100 % — a sampled tier examines the lot, not each weld — and
--   no PENDING result; a repair lists the methods it must pass, so it clears only by passing them).
--   Welds called for examination and not yet examined, and unexamined welds of an x-ray lot that
--   still owes random examinations (a shortfall), are reported as the package's open examinations
--   and hold Pre-Hydro's "NDE complete". Counts come from the progress
--   parts (kept by the triggers), so readiness is current as soon as a milestone or NDE commits.
-- - Stages: a package gets its stages when its test type is set (none before), and they are
--   re-created when the test type, coating or insulation changes before any stage starts; once one
--   has started those three can't change (`stages_started`). Test Acceptance and Final Package
--   Acceptance are never skipped. A stage's data is a JSON object merged on each save (a null
--   removes a field); its fields are checked in Rust (`domain::package`). Sign-offs are one per
--   kind per stage, replaced when given again. Changes to a completed stage (data or sign-offs)
--   need a reason and are kept in `package_events`, which is append-only.
-- - Earning: completing Test Acceptance sets Test = 100 on every testable member below it, dated
--   the test date; completing Final sets Restore = 100, dated the day it completes (refused while a
--   testable member lacks Test). One audited event per member, one statement each for the rows and
--   the events, all in the completing transaction. The test date is the historical record: it may
--   lie in a locked week (never in the future).
-- - Certificates: `PKG-NNN` per project from a counter row (never reused, even if a package is
--   retired), numbered on first save and editable until Test Acceptance completes.

-- ---- Tables ----

create table pipetrak.package_stages (
    id              bigserial,
    project_id      bigint not null,
    test_package_id bigint not null,
    stage           text not null check (stage in ('pre_hydro', 'test', 'drain_flush', 'post_hydro', 'coatings', 'insulation', 'final')),
    position        integer not null,
    status          text not null default 'not_started' check (status in ('not_started', 'in_progress', 'completed', 'skipped')),
    data            jsonb not null default '{}' check (jsonb_typeof(data) = 'object'),
    skip_reason     text check (length(skip_reason) <= 2000),
    started_at      timestamptz,
    started_by      uuid,
    completed_at    timestamptz,
    completed_by    uuid,
    unique (test_package_id, stage, project_id),
    unique (project_id, id),
    foreign key (project_id, test_package_id) references pipetrak.test_packages (project_id, id),
    primary key (id, project_id)
);
create index package_stages_project_idx on pipetrak.package_stages (project_id);

create table pipetrak.stage_signoffs (
    id           bigserial,
    project_id   bigint not null,
    stage_id     bigint not null,
    signoff      text not null check (signoff in ('qc', 'client', 'manufacturer')),
    name         text not null check (btrim(name) <> '' and length(name) <= 200),
    company_role text not null check (btrim(company_role) <> '' and length(company_role) <= 200),
    signed_on    date not null,
    entered_by   uuid not null,
    entered_at   timestamptz not null default now(),
    unique (stage_id, signoff, project_id),
    foreign key (project_id, stage_id) references pipetrak.package_stages (project_id, id),
    primary key (id, project_id)
);
create index stage_signoffs_project_idx on pipetrak.stage_signoffs (project_id);

create table pipetrak.package_events (
    id              bigserial,
    project_id      bigint not null,
    test_package_id bigint not null,
    stage           text,
    action          text not null,
    before          jsonb not null default '{}',
    after           jsonb not null default '{}',
    reason          text,
    actor           uuid not null,
    created_at      timestamptz not null default now(),
    foreign key (project_id, test_package_id) references pipetrak.test_packages (project_id, id),
    primary key (id, project_id)
);
create index package_events_package_idx on pipetrak.package_events (test_package_id, id);
create index package_events_project_idx on pipetrak.package_events (project_id, id);

create table pipetrak.certificate_numbers (
    project_id  bigint primary key references pipetrak.projects,
    last_number integer not null
);

create table pipetrak.package_certificates (
    test_package_id    bigint not null,
    project_id         bigint not null,
    number             integer not null,
    client             text check (length(client) <= 200),
    client_spec        text check (length(client_spec) <= 200),
    line_numbers       text check (length(line_numbers) <= 4000),
    test_pressure      numeric(12, 2) check (test_pressure > 0),
    test_pressure_unit text check (test_pressure_unit in ('PSIG', 'PSI', 'BAR', 'KPA')),
    medium             text check (length(medium) <= 200),
    temperature        numeric(8, 2),
    temperature_unit   text check (temperature_unit in ('F', 'C')),
    created_by         uuid not null,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    unique (project_id, number),
    check ((test_pressure is null) = (test_pressure_unit is null)),
    check ((temperature is null) = (temperature_unit is null)),
    primary key (test_package_id, project_id),
    foreign key (project_id, test_package_id) references pipetrak.test_packages (project_id, id)
);

alter table pipetrak.package_stages enable row level security;
alter table pipetrak.stage_signoffs enable row level security;
alter table pipetrak.package_events enable row level security;
alter table pipetrak.certificate_numbers enable row level security;
alter table pipetrak.package_certificates enable row level security;
create policy package_stages_select_member on pipetrak.package_stages for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy stage_signoffs_select_member on pipetrak.stage_signoffs for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy package_events_select_member on pipetrak.package_events for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy certificate_numbers_select_member on pipetrak.certificate_numbers for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy package_certificates_select_member on pipetrak.package_certificates for select to authenticated
    using (pipetrak.project_visible(project_id));

-- A package's history is append-only (see refuse_change).
create trigger package_events_no_update before update or delete on pipetrak.package_events
    for each row execute function pipetrak.refuse_change('package_record_immutable');
create trigger package_events_no_truncate before truncate on pipetrak.package_events
    for each statement execute function pipetrak.refuse_change('package_record_immutable');

-- ---- Readiness kept current by NDE ----

-- Moves the live, testable members `p_component_ids` of project `p_project_id` whose milestones are
-- ready through Punch into (p_sign = 1) or out of (-1) their part's ready count: their weld's NDE
-- now clears them, or no longer does. By project: on Citus, a statement on its shard.
create function pipetrak.progress_parts_shift_ready(p_project_id bigint, p_component_ids bigint[], p_sign integer)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    if cardinality(p_component_ids) = 0 then
        return;
    end if;
    insert into pipetrak.progress_parts as p (project_id, drawing_id, area_id, system_id, test_package_id, component_type, ready_count)
    select c.project_id, c.drawing_id, c.area_id, c.system_id, c.test_package_id, c.component_type, p_sign * count(*)
    from pipetrak.components c
    join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
    where c.project_id = p_project_id and c.id = any (p_component_ids) and c.retired_at is null and not c.post_hydro
      and pipetrak.ready_for_test(c.milestone_values, t.names, true)
    -- Key order, package first, as every writer of the parts (progress_parts_shift).
    group by 1, 2, 3, 4, 5, 6 order by 1, 5, 2, 3, 4, 6
    on conflict on constraint progress_parts_key do update set ready_count = p.ready_count + excluded.ready_count;
end
$$;

-- The welds a statement inserted, changed or deleted (`p_old`, `p_new`: its rows as they were and
-- are, an update's old and new at the same position; see src/pg/captured.rs) move their
-- components in or out of the parts' ready counts. A weld row that doesn't exist clears its
-- component (see weld_clears_nde), so an inserted weld can only take its component out of the
-- ready count, and a deleted one only put it back.
create function pipetrak.progress_parts_net_welds(p_op text, p_old pipetrak.field_welds[], p_new pipetrak.field_welds[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project bigint;
begin
    -- Project by project (the rows' own, old and new: a delete hands over no new rows), each a
    -- statement on its shard on Citus.
    for v_project in
        select o.project_id from unnest(p_old) o union select n.project_id from unnest(p_new) n order by 1
    loop
        if p_op = 'INSERT' then
            perform pipetrak.progress_parts_shift_ready(v_project, array(
                select n.component_id from unnest(p_new) n
                where n.project_id = v_project
                  and not pipetrak.weld_clears_nde(n.status, n.nde_types, n.xray_percent, n.current_nde)), -1);
        elsif p_op = 'DELETE' then
            perform pipetrak.progress_parts_shift_ready(v_project, array(
                select o.component_id from unnest(p_old) o
                where o.project_id = v_project
                  and not pipetrak.weld_clears_nde(o.status, o.nde_types, o.xray_percent, o.current_nde)), 1);
        else
            perform pipetrak.progress_parts_shift_ready(v_project, array(
                select (p_new[i]).component_id from generate_subscripts(p_new, 1) i
                where (p_new[i]).project_id = v_project
                  and pipetrak.weld_clears_nde((p_new[i]).status, (p_new[i]).nde_types, (p_new[i]).xray_percent, (p_new[i]).current_nde)
                  and not pipetrak.weld_clears_nde((p_old[i]).status, (p_old[i]).nde_types, (p_old[i]).xray_percent, (p_old[i]).current_nde)), 1);
            perform pipetrak.progress_parts_shift_ready(v_project, array(
                select (p_new[i]).component_id from generate_subscripts(p_new, 1) i
                where (p_new[i]).project_id = v_project
                  and not pipetrak.weld_clears_nde((p_new[i]).status, (p_new[i]).nde_types, (p_new[i]).xray_percent, (p_new[i]).current_nde)
                  and pipetrak.weld_clears_nde((p_old[i]).status, (p_old[i]).nde_types, (p_old[i]).xray_percent, (p_old[i]).current_nde)), -1);
        end if;
    end loop;
end
$$;

create trigger field_welds_ready_rows after insert or update or delete on pipetrak.field_welds
    for each row execute function pipetrak.capture_row('progress_parts_net_welds');
create trigger field_welds_ready after insert or update or delete on pipetrak.field_welds
    for each statement execute function pipetrak.flush_rows('progress_parts_net_welds');

-- ---- Packages and their stages ----

-- The project of a test package (null for no such id), as component_project finds a component's:
-- in the request's project alone when it names one (request_project: on Citus, one shard).
create function pipetrak.package_project(p_test_package_id bigint)
returns bigint
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project bigint;
    v_hint bigint := pipetrak.request_project();
begin
    if v_hint is null then
        select t.project_id into v_project from pipetrak.test_packages t where t.id = p_test_package_id;
    else
        select t.project_id into v_project from pipetrak.test_packages t where t.id = p_test_package_id and t.project_id = v_hint;
    end if;
    return v_project;
end
$$;

-- The live test package (locked), after checking the caller's role in its project.
create function pipetrak.lock_package(p_test_package_id bigint, p_permission text)
returns pipetrak.test_packages
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ctx record;
    v_project bigint := pipetrak.package_project(p_test_package_id);
begin
    -- The package's project first, then the locked read by (id, project): on Citus, its shard.
    select t as package, m.role, p.archived_at into v_ctx
    from pipetrak.test_packages t
    join pipetrak.projects p on p.id = t.project_id
    join pipetrak.memberships m on m.organization_id = p.organization_id and m.user_id = pipetrak.current_user_id()
    where t.id = p_test_package_id and t.project_id = v_project and t.retired_at is null
    for update of t;
    if v_ctx.role is null then
        perform pipetrak.raise_error('test_package_not_found', jsonb_build_object('test_package_id', p_test_package_id));
    elsif not pipetrak.role_can(v_ctx.role, p_permission) then
        perform pipetrak.raise_error('permission_denied', jsonb_build_object('role', v_ctx.role, 'needs', p_permission));
    elsif v_ctx.archived_at is not null and p_permission <> 'read' then
        perform pipetrak.raise_error('project_archived', jsonb_build_object('project_id', (v_ctx.package).project_id));
    end if;
    -- On Citus the change is announced from here (queue_change; the shard's triggers can't).
    perform pipetrak.queue_change(v_project, 'packages', array[p_test_package_id]);
    return v_ctx.package;
end
$$;

-- Creates a package's stages for its test type, coating and insulation (none without a test type).
create function pipetrak.create_package_stages(p_package pipetrak.test_packages)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    delete from pipetrak.package_stages where test_package_id = p_package.id and project_id = p_package.project_id;
    insert into pipetrak.package_stages (project_id, test_package_id, stage, position)
    select p_package.project_id, p_package.id, s.stage, s.position
    from unnest(pipetrak.package_stage_keys(p_package.test_type, p_package.requires_coating, p_package.requires_insulation))
         with ordinality as s(stage, position);
end
$$;

-- Refuses a test pressure without its unit (or the reverse), not above 0, or in a unit other than
-- PSIG, PSI, BAR or KPA (`p_unit` already trimmed and uppercased).
create function pipetrak.check_pressure(p_pressure numeric, p_unit text)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if (p_pressure is null) <> (p_unit is null) or p_pressure <= 0 or p_pressure >= 10000000000
       or p_unit not in ('PSIG', 'PSI', 'BAR', 'KPA') then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "test_pressure, test_pressure_unit", "expected": "a pressure > 0 with a unit (PSIG, PSI, BAR, KPA), or neither"}');
    end if;
end
$$;

-- Sets a test package's test details (all of them, as given); its stages follow the test type,
-- coating and insulation until one starts.
create function pipetrak.update_test_package(p_test_package_id bigint, p_test_type text, p_test_pressure numeric,
                                             p_test_pressure_unit text, p_target_date date,
                                             p_requires_coating boolean, p_requires_insulation boolean)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_package pipetrak.test_packages := pipetrak.lock_package(p_test_package_id, 'manage_project_data');
    v_unit text := upper(btrim(p_test_pressure_unit));
begin
    if p_test_type is not null and p_test_type not in ('Hydrostatic', 'Pneumatic', 'Sensitive Leak', 'Alternative Leak', 'In-service', 'Other') then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "test_type", "expected": "Hydrostatic, Pneumatic, Sensitive Leak, Alternative Leak, In-service or Other"}');
    end if;
    perform pipetrak.check_pressure(p_test_pressure, v_unit);
    if p_test_type in ('Hydrostatic', 'Pneumatic') and p_test_pressure is null then
        perform pipetrak.raise_error('pressure_required', jsonb_build_object('test_type', p_test_type));
    end if;
    perform pipetrak.check_date('target_date', p_target_date);
    if (p_test_type, coalesce(p_requires_coating, false), coalesce(p_requires_insulation, false))
       is distinct from (v_package.test_type, v_package.requires_coating, v_package.requires_insulation) then
        if exists (select from pipetrak.package_stages s where s.test_package_id = p_test_package_id and s.project_id = v_package.project_id
                   and s.status <> 'not_started') then
            perform pipetrak.raise_error('stages_started', jsonb_build_object('test_package_id', p_test_package_id));
        end if;
        update pipetrak.test_packages set test_type = p_test_type, requires_coating = coalesce(p_requires_coating, false),
            requires_insulation = coalesce(p_requires_insulation, false)
        where id = p_test_package_id and project_id = v_package.project_id
        returning * into v_package;
        perform pipetrak.create_package_stages(v_package);
    end if;
    update pipetrak.test_packages set test_pressure = p_test_pressure, test_pressure_unit = v_unit, target_date = p_target_date
    where id = p_test_package_id and project_id = v_package.project_id;
end
$$;

-- Flags components post-hydro (or not): the ids given, or every live component of a drawing.
-- All-or-nothing; returns how many changed.
create function pipetrak.set_post_hydro(p_component_ids bigint[], p_drawing_id bigint, p_post_hydro boolean)
returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ids bigint[];
    v_missing bigint;
    v_changed integer;
begin
    perform pipetrak.refuse_distributed('set_post_hydro');
    if (p_component_ids is null) = (p_drawing_id is null) then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "component_ids, drawing_id", "expected": "component ids or a drawing id, not both"}');
    end if;
    if p_drawing_id is not null then
        if not exists (select from pipetrak.drawings d where d.id = p_drawing_id and d.retired_at is null
                       and d.project_id in (select pipetrak.my_project_ids())) then
            perform pipetrak.raise_error('drawing_not_found', jsonb_build_object('drawing_id', p_drawing_id));
        end if;
        perform pipetrak.require_project_role((select project_id from pipetrak.drawings where id = p_drawing_id), 'manage_project_data');
        v_ids := array(select c.id from pipetrak.components c where c.drawing_id = p_drawing_id and c.retired_at is null order by c.id);
    else
        if cardinality(p_component_ids) > pipetrak.max_batch_items() then
            perform pipetrak.raise_error('batch_too_large', jsonb_build_object('items', cardinality(p_component_ids), 'limit', pipetrak.max_batch_items()));
        end if;
        v_ids := array(select distinct x from unnest(p_component_ids) x where x is not null order by x);
        select x into v_missing from unnest(v_ids) x
        where not exists (select from pipetrak.components c where c.id = x and c.retired_at is null
                          and c.project_id in (select pipetrak.my_project_ids('manage_project_data')))
        limit 1;
        if v_missing is not null then
            perform pipetrak.lock_component(v_missing, 'manage_project_data');
        end if;
        -- Each project the ids name must take writes (an archived one refuses them, as the
        -- by-drawing path does).
        perform pipetrak.require_project_role(x.project_id, 'manage_project_data')
        from (select distinct c.project_id from pipetrak.components c where c.id = any (v_ids) order by 1) x;
    end if;
    update pipetrak.components c set post_hydro = coalesce(p_post_hydro, true), version = c.version + 1, updated_at = now()
    where c.id = any (v_ids) and c.post_hydro is distinct from coalesce(p_post_hydro, true);
    get diagnostics v_changed = row_count;
    return v_changed;
end
$$;

-- Member welds of a package whose NDE is outstanding: not cleared (see the notes), called for
-- examination and not yet examined, or not yet examined in an x-ray lot that still owes random
-- examinations (a shortfall: any of its unexamined welds may be the one examined, so each holds
-- the package until the lot's sample is taken).
create function pipetrak.package_welds_awaiting_nde(p_test_package_id bigint)
returns table (component_id bigint, drawing_id bigint)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    with members as (
        select c.id, c.drawing_id, f.project_id, f.welder_id, f.weld_type, f.xray_percent, f.date_welded,
               coalesce(f.current_nde ->> 'RT', '') in ('PASS', 'FAIL') as examined,
               not pipetrak.weld_clears_nde(f.status, f.nde_types, f.xray_percent, f.current_nde) as uncleared,
               exists (select from pipetrak.examination_calls e where e.component_id = c.id) as called
        from pipetrak.components c
        join pipetrak.field_welds f on f.component_id = c.id
        where c.test_package_id = p_test_package_id and c.retired_at is null and not c.post_hydro),
    short_lots as (
        select l.welder_id, l.weld_type, l.xray_percent
        from (select distinct m.project_id, m.welder_id, m.weld_type, m.xray_percent from members m
              where m.welder_id is not null and m.xray_percent in (5, 10) and m.date_welded is not null and not m.examined) l
        cross join lateral (
            select coalesce(sum(t.lot_welded), 0)::integer as welded, coalesce(sum(t.lot_examined), 0)::integer as examined
            from pipetrak.weld_tallies t
            where t.project_id = l.project_id and t.welder_id = l.welder_id and t.weld_type is not distinct from l.weld_type
              and t.xray_percent = l.xray_percent) s
        where pipetrak.sampling_required(s.welded, l.xray_percent) > s.examined)
    select m.id, m.drawing_id
    from members m
    where m.uncleared or (m.called and not m.examined)
       or (not m.examined and m.date_welded is not null
           and exists (select from short_lots s where s.welder_id = m.welder_id and s.weld_type is not distinct from m.weld_type
                                                   and s.xray_percent = m.xray_percent));
end
$$;

-- Sets `p_milestone` (Test or Restore) to 100 on every testable member of the package below it, as
-- the package's completion earns it (see the notes). One statement writes the members, their
-- events and their progress parts: the parts take the members' deltas directly (the progress
-- trigger stands aside, as for a bulk update), since only earned credit changes — readiness and
-- membership don't. Returns how many members it earned.
create function pipetrak.earn_package_milestone(p_package pipetrak.test_packages, p_milestone text, p_work_date date,
                                                p_note text)
returns integer
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user uuid := pipetrak.current_user_id();
    v_earned integer;
begin
    perform pipetrak.take_due_snapshots(p_package.project_id, null);
    -- Its events reach the days as they are written (one statement).
    perform pipetrak.progress_defer(false);
    with members as (
        select c.id, c.project_id, c.drawing_id, c.area_id, c.system_id, c.test_package_id, c.component_type,
               array_position(t.names, p_milestone) as i, c.milestone_values[array_position(t.names, p_milestone)] as old_value,
               c.earned_total, c.earned_test, c.earned_restore,
               case when p_milestone = 'Test' then t.test_weight * 10000 else c.earned_test end as new_test,
               case when p_milestone = 'Restore' then t.restore_weight * 10000 else c.earned_restore end as new_restore,
               coalesce(b.budget_mh, 0) as budget_mh, b.budget_mh is not null as budgeted
        from pipetrak.components c
        join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
        left join pipetrak.component_budgets b on b.component_id = c.id
        where c.test_package_id = p_package.id and c.retired_at is null and not c.post_hydro
          and c.milestone_values[array_position(t.names, p_milestone)] < 100),
    earned as (
        update pipetrak.components c set
            milestone_values[m.i] = 100, earned_test = m.new_test, earned_restore = m.new_restore,
            earned_total = c.earned_total + (m.new_test - c.earned_test) + (m.new_restore - c.earned_restore),
            version = c.version + 1, updated_at = now()
        from members m
        where c.id = m.id
        returning m.*, c.earned_total as new_total),
    events as (
        insert into pipetrak.milestone_events (project_id, component_id, milestone, old_value, new_value, work_date, user_id, note,
                                               category, credit, mh)
        select e.project_id, e.id, p_milestone, e.old_value, 100, p_work_date, v_user, p_note, lower(p_milestone),
               e.new_total - e.earned_total, case when e.budgeted then e.budget_mh * (e.new_total - e.earned_total) / 1000000 end
        from earned e
        returning 1),
    parts as (
        insert into pipetrak.progress_parts as p (project_id, drawing_id, area_id, system_id, test_package_id, component_type,
                                                  completed_count, earned_total, earned_test, earned_restore, mh_test, mh_restore)
        select e.project_id, e.drawing_id, e.area_id, e.system_id, e.test_package_id, e.component_type,
               count(*) filter (where e.new_total = 1000000) - count(*) filter (where e.earned_total = 1000000),
               sum(e.new_total - e.earned_total), sum(e.new_test - e.earned_test), sum(e.new_restore - e.earned_restore),
               sum(e.budget_mh * (e.new_test - e.earned_test)), sum(e.budget_mh * (e.new_restore - e.earned_restore))
        from earned e
        group by 1, 2, 3, 4, 5, 6 order by 1, 5, 2, 3, 4, 6
        on conflict on constraint progress_parts_key do update set
            completed_count = p.completed_count + excluded.completed_count,
            earned_total = p.earned_total + excluded.earned_total,
            earned_test = p.earned_test + excluded.earned_test,
            earned_restore = p.earned_restore + excluded.earned_restore,
            mh_test = p.mh_test + excluded.mh_test, mh_restore = p.mh_restore + excluded.mh_restore
        returning 1)
    select count(*) into v_earned from earned;
    perform pipetrak.progress_resume();
    return v_earned;
end
$$;

-- The package's stage (locked) and the order of all its stages, for one stage operation.
create function pipetrak.lock_stage(p_package pipetrak.test_packages, p_stage text)
returns pipetrak.package_stages
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_stage pipetrak.package_stages;
begin
    select * into v_stage from pipetrak.package_stages
    where test_package_id = p_package.id and project_id = p_package.project_id and stage = p_stage
    for update;
    if v_stage.id is null then
        perform pipetrak.raise_error('stage_not_found', jsonb_build_object('test_package_id', p_package.id, 'stage', p_stage,
            'stages', (select coalesce(jsonb_agg(s.stage order by s.position), '[]') from pipetrak.package_stages s
                       where s.test_package_id = p_package.id and s.project_id = p_package.project_id)));
    end if;
    return v_stage;
end
$$;

-- Refuses a stage in a status other than `p_allowed` for `p_action`.
create function pipetrak.check_stage_status(p_stage pipetrak.package_stages, p_allowed text[], p_action text)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_stage.status <> all (p_allowed) then
        perform pipetrak.raise_error('stage_state', jsonb_build_object('stage', p_stage.stage, 'status', p_stage.status,
            'action', p_action, 'allowed_from', to_jsonb(p_allowed)));
    end if;
end
$$;

-- Refuses to start (or skip) a stage while one before it is neither completed nor skipped.
create function pipetrak.check_stage_order(p_stage pipetrak.package_stages)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_blocker text;
begin
    select pipetrak.package_stage_blocker(array_agg(s.stage order by s.position), array_agg(s.status order by s.position), p_stage.stage)
    into v_blocker
    from pipetrak.package_stages s where s.test_package_id = p_stage.test_package_id and s.project_id = p_stage.project_id;
    if v_blocker is not null then
        perform pipetrak.raise_error('stage_out_of_order', jsonb_build_object('stage', p_stage.stage, 'blocked_by', v_blocker));
    end if;
end
$$;

-- Appends an event to a package's history: the stage, what was done, before, after, reason and actor.
create function pipetrak.log_package_event(p_stage pipetrak.package_stages, p_action text, p_before jsonb, p_after jsonb, p_reason text)
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    insert into pipetrak.package_events (project_id, test_package_id, stage, action, before, after, reason, actor)
    values (p_stage.project_id, p_stage.test_package_id, p_stage.stage, p_action, coalesce(p_before, '{}'), coalesce(p_after, '{}'),
            p_reason, pipetrak.current_user_id())
$$;

-- Starts a stage of a test package once the stages before it are done (see package_stage_rule).
create function pipetrak.start_stage(p_test_package_id bigint, p_stage text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_package pipetrak.test_packages := pipetrak.lock_package(p_test_package_id, 'quality_control');
    v_stage pipetrak.package_stages := pipetrak.lock_stage(v_package, p_stage);
    -- The caller as a value: Citus refuses a function of the claims in an UPDATE's SET.
    v_user uuid := pipetrak.current_user_id();
begin
    perform pipetrak.check_stage_status(v_stage, array['not_started'], 'start');
    perform pipetrak.check_stage_order(v_stage);
    update pipetrak.package_stages set status = 'in_progress', started_at = now(), started_by = v_user
    where id = v_stage.id and project_id = v_stage.project_id;
    perform pipetrak.log_package_event(v_stage, 'stage_started', null, null, null);
end
$$;

-- Merges `p_data` into a stage's data (a null removes a field). A completed stage's data changes
-- only with a reason, kept with the before and after.
create function pipetrak.save_stage(p_test_package_id bigint, p_stage text, p_data jsonb, p_reason text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_package pipetrak.test_packages := pipetrak.lock_package(p_test_package_id, 'quality_control');
    v_stage pipetrak.package_stages := pipetrak.lock_stage(v_package, p_stage);
    v_data jsonb;
begin
    perform pipetrak.check_stage_status(v_stage, array['in_progress', 'completed'], 'save');
    if jsonb_typeof(p_data) is distinct from 'object' or pg_column_size(p_data) > 65536 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "data", "expected": "a JSON object of the stage''s fields (at most 64 kB)"}');
    end if;
    v_data := jsonb_strip_nulls(v_stage.data || p_data);
    if v_stage.status = 'completed' then
        perform pipetrak.check_reason(p_reason, 3, 'changing a completed stage');
        if pipetrak.stage_missing(v_stage.stage, v_data) <> '{}' then
            perform pipetrak.raise_error('stage_incomplete', jsonb_build_object('stage', v_stage.stage,
                'missing_data', to_jsonb(pipetrak.stage_missing(v_stage.stage, v_data)), 'missing_signoffs', '[]'::jsonb));
        end if;
        perform pipetrak.log_package_event(v_stage, 'stage_edited', jsonb_build_object('data', v_stage.data),
                                           jsonb_build_object('data', v_data), btrim(p_reason));
    end if;
    update pipetrak.package_stages set data = v_data where id = v_stage.id and project_id = v_stage.project_id;
    return v_data;
end
$$;

-- The data fields a stage still needs to complete.
create function pipetrak.stage_missing(p_stage text, p_data jsonb)
returns text[]
language sql immutable
set search_path = pg_catalog, pg_temp
as $$ select coalesce((select c.missing from pipetrak.package_stage_check(p_stage, p_data) c), '{}') $$;

-- Records a sign-off (qc, client or manufacturer, as the stage needs), replacing an earlier one of
-- the same kind; on a completed stage only with a reason, kept with the before and after.
create function pipetrak.sign_stage(p_test_package_id bigint, p_stage text, p_signoff text, p_name text, p_company_role text,
                                    p_signed_on date, p_reason text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_package pipetrak.test_packages := pipetrak.lock_package(p_test_package_id, 'quality_control');
    v_stage pipetrak.package_stages := pipetrak.lock_stage(v_package, p_stage);
    v_signoffs text[] := (select r.signoffs from pipetrak.package_stage_rule(p_stage) r);
    v_today date := (select (now() at time zone p.time_zone)::date from pipetrak.projects p where p.id = v_package.project_id);
    v_before pipetrak.stage_signoffs;
begin
    perform pipetrak.check_stage_status(v_stage, array['in_progress', 'completed'], 'sign');
    if p_signoff is null or p_signoff <> all (v_signoffs) then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'signoff', 'expected', array_to_string(v_signoffs, ', ')));
    end if;
    if btrim(coalesce(p_name, '')) = '' or btrim(coalesce(p_company_role, '')) = '' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "name, company_role", "expected": "who signs and their role in their company"}');
    end if;
    perform pipetrak.check_text_length('name', p_name, pipetrak.argument_limit('name'));
    perform pipetrak.check_text_length('company_role', p_company_role, pipetrak.argument_limit('company_role'));
    perform pipetrak.check_date('signed_on', p_signed_on);
    if coalesce(p_signed_on, v_today) > v_today then
        perform pipetrak.raise_error('work_date_in_future', jsonb_build_object('signed_on', p_signed_on, 'today', v_today));
    end if;
    select * into v_before from pipetrak.stage_signoffs where stage_id = v_stage.id and project_id = v_stage.project_id and signoff = p_signoff;
    if v_stage.status = 'completed' then
        perform pipetrak.check_reason(p_reason, 3, 'changing a completed stage''s sign-off');
        perform pipetrak.log_package_event(v_stage, 'signoff_changed',
            jsonb_build_object('signoff', p_signoff, 'name', v_before.name, 'company_role', v_before.company_role, 'signed_on', v_before.signed_on),
            jsonb_build_object('signoff', p_signoff, 'name', btrim(p_name), 'company_role', btrim(p_company_role),
                               'signed_on', coalesce(p_signed_on, v_today)),
            btrim(p_reason));
    end if;
    insert into pipetrak.stage_signoffs (project_id, stage_id, signoff, name, company_role, signed_on, entered_by)
    values (v_stage.project_id, v_stage.id, p_signoff, btrim(p_name), btrim(p_company_role), coalesce(p_signed_on, v_today),
            pipetrak.current_user_id())
    on conflict (stage_id, signoff, project_id) do update set name = excluded.name, company_role = excluded.company_role,
        signed_on = excluded.signed_on, entered_by = excluded.entered_by,
        -- now() from the proposed row's default (Citus refuses a function here).
        entered_at = excluded.entered_at;
end
$$;

-- Completes a stage in progress once its data and sign-offs are there; Pre-Hydro needs no member
-- weld awaiting NDE; Test Acceptance needs every testable member ready and earns Test; Final
-- earns Restore. Returns {stage, status, earned}.
create function pipetrak.complete_stage(p_test_package_id bigint, p_stage text, p_data jsonb)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_package pipetrak.test_packages;
    v_stage pipetrak.package_stages;
    v_today date;
    v_check record;
    v_missing_signoffs text[];
    v_not_ready jsonb;
    v_earned integer := 0;
    -- The caller as a value: Citus refuses a function of the claims in an UPDATE's SET.
    v_user uuid := pipetrak.current_user_id();
begin
    -- The package's welds awaiting NDE and the members it earns are read by the package's id
    -- alone (package_welds_awaiting_nde, earn_package_milestone).
    perform pipetrak.refuse_distributed('complete_stage');
    v_package := pipetrak.lock_package(p_test_package_id, 'quality_control');
    v_stage := pipetrak.lock_stage(v_package, p_stage);
    v_today := (select (now() at time zone p.time_zone)::date from pipetrak.projects p where p.id = v_package.project_id);
    perform pipetrak.check_stage_status(v_stage, array['in_progress'], 'complete');
    if p_data is not null then
        v_stage.data := pipetrak.save_stage(p_test_package_id, p_stage, p_data, null);
    end if;
    select * into v_check from pipetrak.package_stage_check(v_stage.stage, v_stage.data);
    v_missing_signoffs := array(select k from unnest((select r.signoffs from pipetrak.package_stage_rule(v_stage.stage) r)) k
                                where not exists (select from pipetrak.stage_signoffs s where s.stage_id = v_stage.id and s.project_id = v_stage.project_id and s.signoff = k));
    if v_check.missing <> '{}' or v_missing_signoffs <> '{}' then
        perform pipetrak.raise_error('stage_incomplete', jsonb_build_object('stage', v_stage.stage,
            'missing_data', to_jsonb(v_check.missing), 'missing_signoffs', to_jsonb(v_missing_signoffs)));
    end if;
    if v_check.latest_date::date > v_today then
        perform pipetrak.raise_error('work_date_in_future', jsonb_build_object('stage', v_stage.stage, 'date', v_check.latest_date, 'today', v_today));
    end if;
    if v_stage.stage = 'pre_hydro' and exists (select from pipetrak.package_welds_awaiting_nde(v_package.id)) then
        perform pipetrak.raise_error('nde_outstanding', jsonb_build_object('test_package_id', v_package.id,
            'welds', (select count(*) from pipetrak.package_welds_awaiting_nde(v_package.id))));
    end if;
    -- The members hold still from here: nobody un-punches one between the check and the earning.
    if v_stage.stage in ('test', 'final') then
        perform from pipetrak.components c where c.test_package_id = v_package.id and c.retired_at is null
        for no key update;
    end if;
    -- Every testable member ready (the package's counts say so): nothing to name. Otherwise, which and where.
    if v_stage.stage = 'final' or (v_stage.stage = 'test' and exists (
           select from pipetrak.progress_packages g where g.project_id = v_package.project_id and g.test_package_id = v_package.id
             and g.component_count - g.post_hydro_count - g.ready_count > 0)) then
        select jsonb_build_object('not_ready', sum(b.n), 'needs', case when v_stage.stage = 'test' then 'ready' else 'Test' end,
                                  'drawings', jsonb_agg(jsonb_build_object('drawing_no', b.drawing_no, 'members', b.n) order by b.n desc, b.drawing_no))
        into v_not_ready
        from (select d.drawing_no, count(*) as n
              from pipetrak.components c
              join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
              join pipetrak.drawings d on d.id = c.drawing_id
              left join pipetrak.field_welds f on f.component_id = c.id
              where c.test_package_id = v_package.id and c.retired_at is null and not c.post_hydro
                and case when v_stage.stage = 'test'
                         then not pipetrak.ready_for_test(c.milestone_values, t.names,
                                                          pipetrak.weld_clears_nde(f.status, f.nde_types, f.xray_percent, f.current_nde))
                         else c.milestone_values[array_position(t.names, 'Test')] < 100 end
              group by d.drawing_no) b;
        if (v_not_ready ->> 'not_ready')::integer > 0 then
            perform pipetrak.raise_error('package_not_ready', v_not_ready || jsonb_build_object('test_package_id', v_package.id));
        end if;
    end if;
    if v_stage.stage in ('test', 'final') then
        if v_stage.stage = 'test' then
            v_earned := pipetrak.earn_package_milestone(v_package, 'Test', (v_stage.data ->> 'test_date')::date,
                                                        format('Test Acceptance of %s', v_package.name));
        else
            v_earned := pipetrak.earn_package_milestone(v_package, 'Restore', v_today,
                                                        format('Final Package Acceptance of %s', v_package.name));
        end if;
    end if;
    update pipetrak.package_stages set status = 'completed', completed_at = now(), completed_by = v_user
    where id = v_stage.id and project_id = v_stage.project_id;
    perform pipetrak.log_package_event(v_stage, 'stage_completed', null, jsonb_build_object('earned', v_earned), null);
    return jsonb_build_object('stage', v_stage.stage, 'status', 'completed', 'earned', v_earned);
end
$$;

-- Skips a stage with a reason (never Test Acceptance or Final).
create function pipetrak.skip_stage(p_test_package_id bigint, p_stage text, p_reason text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_package pipetrak.test_packages := pipetrak.lock_package(p_test_package_id, 'quality_control');
    v_stage pipetrak.package_stages := pipetrak.lock_stage(v_package, p_stage);
    v_reason text := pipetrak.check_reason(p_reason, 3, 'skipping a stage');
    -- The caller as a value: Citus refuses a function of the claims in an UPDATE's SET.
    v_user uuid := pipetrak.current_user_id();
begin
    if v_stage.stage in ('test', 'final') then
        perform pipetrak.raise_error('stage_state', jsonb_build_object('stage', v_stage.stage, 'status', v_stage.status,
            'action', 'skip', 'allowed_from', '[]'::jsonb));
    end if;
    perform pipetrak.check_stage_status(v_stage, array['not_started', 'in_progress'], 'skip');
    perform pipetrak.check_stage_order(v_stage);
    update pipetrak.package_stages set status = 'skipped', skip_reason = v_reason, completed_at = now(),
        completed_by = v_user
    where id = v_stage.id and project_id = v_stage.project_id;
    perform pipetrak.log_package_event(v_stage, 'stage_skipped', null, null, v_reason);
end
$$;

-- Saves a package's certificate, numbering it PKG-NNN on first save; refused once Test Acceptance
-- is complete. Returns the certificate number.
create function pipetrak.save_certificate(p_test_package_id bigint, p_client text, p_client_spec text, p_line_numbers text,
                                          p_test_pressure numeric, p_test_pressure_unit text, p_medium text,
                                          p_temperature numeric, p_temperature_unit text)
returns text
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_package pipetrak.test_packages := pipetrak.lock_package(p_test_package_id, 'quality_control');
    v_unit text := upper(btrim(p_test_pressure_unit));
    v_temperature_unit text := upper(btrim(p_temperature_unit));
    v_number integer;
begin
    if exists (select from pipetrak.package_stages s where s.test_package_id = v_package.id and s.project_id = v_package.project_id
               and s.stage = 'test' and s.status = 'completed') then
        perform pipetrak.raise_error('certificate_locked', jsonb_build_object('test_package_id', v_package.id));
    end if;
    perform pipetrak.check_pressure(p_test_pressure, v_unit);
    if (p_temperature is null) <> (v_temperature_unit is null) or abs(p_temperature) >= 1000000 or v_temperature_unit not in ('F', 'C') then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "temperature, temperature_unit", "expected": "a temperature with its unit (F or C), or neither"}');
    end if;
    perform pipetrak.check_text_length('client', p_client, pipetrak.argument_limit('client'));
    perform pipetrak.check_text_length('client_spec', p_client_spec, pipetrak.argument_limit('client_spec'));
    perform pipetrak.check_text_length('line_numbers', p_line_numbers, pipetrak.argument_limit('line_numbers'));
    perform pipetrak.check_text_length('medium', p_medium, pipetrak.argument_limit('medium'));
    select number into v_number from pipetrak.package_certificates where test_package_id = v_package.id and project_id = v_package.project_id;
    if v_number is null then
        insert into pipetrak.certificate_numbers as n (project_id, last_number) values (v_package.project_id, 1)
        on conflict (project_id) do update set last_number = n.last_number + 1
        returning last_number into v_number;
        insert into pipetrak.package_certificates (test_package_id, project_id, number, created_by)
        values (v_package.id, v_package.project_id, v_number, pipetrak.current_user_id());
    end if;
    update pipetrak.package_certificates set client = nullif(btrim(p_client), ''), client_spec = nullif(btrim(p_client_spec), ''),
        line_numbers = nullif(btrim(p_line_numbers), ''), test_pressure = p_test_pressure, test_pressure_unit = v_unit,
        medium = nullif(btrim(p_medium), ''), temperature = p_temperature, temperature_unit = v_temperature_unit, updated_at = now()
    where test_package_id = v_package.id and project_id = v_package.project_id;
    return pipetrak.certificate_label(v_number);
end
$$;

-- A certificate number as printed: PKG-001.
create function pipetrak.certificate_label(p_number integer)
returns text
language sql immutable parallel safe
as $$ select 'PKG-' || lpad(p_number::text, 3, '0') $$;

-- ---- Reports ----

-- The not-ready testable members of a package, grouped by drawing (natural order), with what each
-- lacks: the milestones through Punch below 100, and "NDE" with the weld's status when its NDE
-- doesn't clear it.
create function pipetrak.test_package_blockers(p_test_package_id bigint)
returns table (drawing_id bigint, drawing_no text, blockers jsonb)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_package pipetrak.test_packages;
begin
    perform pipetrak.refuse_distributed('test_package_blockers');
    select * into v_package from pipetrak.test_packages t
    where t.id = p_test_package_id and t.project_id in (select pipetrak.my_project_ids());
    if v_package.id is null then
        perform pipetrak.raise_error('test_package_not_found', jsonb_build_object('test_package_id', p_test_package_id));
    end if;
    return query
    select d.id, d.drawing_no,
           jsonb_agg(jsonb_build_object('component_id', c.id, 'component_type', c.component_type, 'tag', c.tag, 'size', c.size,
                                        'seq', c.seq, 'lacks', to_jsonb(l.lacks))
                     order by c.component_type, c.tag, c.size, c.seq)
    from pipetrak.components c
    join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
    join pipetrak.drawings d on d.id = c.drawing_id
    left join pipetrak.field_welds f on f.component_id = c.id
    cross join lateral (select pipetrak.weld_clears_nde(f.status, f.nde_types, f.xray_percent, f.current_nde) as clears) w
    cross join lateral (
        select array(select t.names[i] from generate_subscripts(t.names, 1) i
                     where i <= array_position(t.names, 'Punch') and c.milestone_values[i] < 100 order by i)
               || case when w.clears then '{}'::text[] else array['NDE ' || f.status] end as lacks) l
    where c.test_package_id = v_package.id and c.retired_at is null and not c.post_hydro
      and not pipetrak.ready_for_test(c.milestone_values, t.names, w.clears)
    group by d.id, d.drawing_no
    order by pipetrak.natural_key(d.drawing_no);
end
$$;

-- The turnover report of a package as one JSON document (spec §10). Its NDE summary counts welds:
-- needing NDE (listed methods or an x-ray tier), accepted (pass), rejected (fail), and needing NDE
-- but neither yet (pending). Repaired welds have left the package (they are retired).
create function pipetrak.turnover_report(p_test_package_id bigint)
returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_package pipetrak.test_packages;
    v_report jsonb;
begin
    perform pipetrak.refuse_distributed('turnover_report');
    select * into v_package from pipetrak.test_packages t
    where t.id = p_test_package_id and t.project_id in (select pipetrak.my_project_ids());
    if v_package.id is null then
        perform pipetrak.raise_error('test_package_not_found', jsonb_build_object('test_package_id', p_test_package_id));
    end if;
    with members as (
        select c.* from pipetrak.components c where c.test_package_id = v_package.id and c.retired_at is null),
    -- The package's welds, and the rejects its repairs replaced (retired, but a turnover package
    -- shows the reject beside its repair, in its drawing's NDE summary too).
    welds as (
        select c.id, c.drawing_id, c.tag, f.*, w.stencil, rc.tag as repaired_as,
               cardinality(f.nde_types) > 0 or coalesce(f.xray_percent, 0) > 0 as nde_required
        from pipetrak.components c join pipetrak.field_welds f on f.component_id = c.id
        left join pipetrak.welders w on w.id = f.welder_id
        left join pipetrak.components rc on rc.id = f.repaired_by
        where c.test_package_id = v_package.id and (c.retired_at is null or f.repaired_by is not null))
    select jsonb_build_object(
        'package', jsonb_build_object(
            'test_package_id', v_package.id, 'name', v_package.name, 'description', v_package.description,
            'test_type', v_package.test_type, 'test_pressure', v_package.test_pressure,
            'test_pressure_unit', v_package.test_pressure_unit, 'target_date', v_package.target_date,
            'requires_coating', v_package.requires_coating, 'requires_insulation', v_package.requires_insulation,
            'weld_spec', (select mode() within group (order by w.spec) from welds w where w.spec is not null),
            'state', (select pipetrak.package_state(coalesce(array_agg(s.stage order by s.position), '{}'),
                                                    coalesce(array_agg(s.status order by s.position), '{}'))
                      from pipetrak.package_stages s where s.test_package_id = v_package.id)),
        'certificate', (select jsonb_build_object('number', pipetrak.certificate_label(k.number), 'client', k.client,
                                                  'client_spec', k.client_spec, 'line_numbers', k.line_numbers,
                                                  'test_pressure', k.test_pressure, 'test_pressure_unit', k.test_pressure_unit,
                                                  'medium', k.medium, 'temperature', k.temperature, 'temperature_unit', k.temperature_unit)
                        from pipetrak.package_certificates k where k.test_package_id = v_package.id),
        'stages', coalesce((select jsonb_agg(jsonb_build_object(
                                'stage', s.stage, 'title', (select r.title from pipetrak.package_stage_rule(s.stage) r),
                                'status', s.status, 'data', s.data, 'skip_reason', s.skip_reason,
                                'started_at', s.started_at, 'completed_at', s.completed_at,
                                'signoffs', coalesce((select jsonb_agg(jsonb_build_object('signoff', g.signoff, 'name', g.name,
                                                                                          'company_role', g.company_role,
                                                                                          'signed_on', g.signed_on, 'entered_by', g.entered_by)
                                                                       order by g.signoff)
                                                      from pipetrak.stage_signoffs g where g.stage_id = s.id), '[]'))
                                order by s.position)
                            from pipetrak.package_stages s where s.test_package_id = v_package.id), '[]'),
        'components', coalesce((select jsonb_agg(jsonb_build_object('component_type', x.component_type, 'tag', x.tag, 'size', x.size,
                                                                    'count', x.n, 'quantity', x.quantity, 'post_hydro', x.post_hydro)
                                                 order by x.component_type, x.tag, x.size)
                                from (select m.component_type, m.tag, m.size, count(*) as n, sum(m.quantity) as quantity,
                                             count(*) filter (where m.post_hydro) as post_hydro
                                      from members m group by 1, 2, 3) x), '[]'),
        'supports', coalesce((select jsonb_agg(jsonb_build_object('commodity_code', x.tag, 'size', x.size, 'quantity', x.n)
                                               order by x.tag, x.size)
                              from (select m.tag, m.size, count(*) as n from members m where m.component_type = 'support'
                                    group by 1, 2) x), '[]'),
        'drawings', coalesce((select jsonb_agg(jsonb_build_object(
                                  'drawing_id', d.id, 'drawing_no', d.drawing_no, 'components', x.n,
                                  'welds', coalesce((select jsonb_agg(jsonb_build_object(
                                                         'weld_number', w.tag, 'weld_type', w.weld_type, 'size', w.weld_size,
                                                         'spec', w.spec, 'welder', w.stencil, 'date_welded', w.date_welded,
                                                         'status', w.status, 'nde', nullif(w.current_nde, '{}'),
                                                         'repaired_as', w.repaired_as)
                                                         order by pipetrak.natural_key(w.tag))
                                                     from welds w where w.drawing_id = d.id), '[]'),
                                  'nde', (select jsonb_build_object(
                                              'welds', count(*),
                                              'nde_required', count(*) filter (where w.nde_required),
                                              'pass', count(*) filter (where w.status = 'accepted'),
                                              'fail', count(*) filter (where w.status = 'rejected'),
                                              'pending', count(*) filter (where w.nde_required and w.status = 'active'))
                                          from welds w where w.drawing_id = d.id))
                                  order by pipetrak.natural_key(d.drawing_no))
                              from (select m.drawing_id, count(*) as n from members m group by 1) x
                              join pipetrak.drawings d on d.id = x.drawing_id), '[]'))
    into v_report;
    return v_report;
end
$$;

-- ---- API ----

-- Review items follow their component's test package: an item takes it when it is raised (a
-- restored dump keeps the one it had), and open items follow the component when it moves to
-- another package, is retired (none) or restored.
create function pipetrak.review_item_package()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if new.test_package_id is null then
        -- SELECT … INTO by the row's project: on Citus, a statement on its shard.
        select c.test_package_id into new.test_package_id from pipetrak.components c
        where c.id = new.component_id and c.project_id = new.project_id and c.retired_at is null;
    end if;
    return new;
end
$$;
create trigger review_items_package before insert on pipetrak.review_items
    for each row execute function pipetrak.review_item_package();

-- Trigger: open review items of a component follow it to its new package (none while retired).
create function pipetrak.review_items_follow_component()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    update pipetrak.review_items r set test_package_id = case when new.retired_at is null then new.test_package_id end
    where r.component_id = new.id and r.resolved_at is null
      and r.test_package_id is distinct from case when new.retired_at is null then new.test_package_id end;
    return null;
end
$$;
create trigger components_review_items after update on pipetrak.components
    for each row
    when (old.test_package_id is distinct from new.test_package_id or (old.retired_at is null) <> (new.retired_at is null))
    execute function pipetrak.review_items_follow_component();

-- Adds open review items to their packages' rows (progress_packages), in key order; counts that
-- net to zero are not written.
create function pipetrak.progress_packages_add_items(p_project_ids bigint[], p_package_ids bigint[], p_counts integer[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into pipetrak.progress_packages as g (project_id, test_package_id, open_review_items)
    select u.project_id, u.test_package_id, u.n
    from unnest(p_project_ids, p_package_ids, p_counts) as u(project_id, test_package_id, n)
    where u.n <> 0
    order by 1, 2
    on conflict (project_id, test_package_id) do update set open_review_items = g.open_review_items + excluded.open_review_items;
end
$$;

-- The open items a statement raised, resolved, moved or deleted (`p_old`, `p_new`: its rows as
-- they were and are, handed over by the statement's trigger; see src/pg/captured.rs), netted per
-- package, reach their packages' rows (items in no package have none: readers count those).
create function pipetrak.progress_packages_net_items(p_op text, p_old pipetrak.review_items[], p_new pipetrak.review_items[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.progress_packages_add_items(array_agg(x.project_id), array_agg(x.test_package_id), array_agg(x.n))
    from (select r.project_id, r.test_package_id, sum(r.sign)::integer as n
          from (select -1 as sign, o.project_id, o.test_package_id from unnest(p_old) o
                where o.resolved_at is null and o.test_package_id is not null
                union all
                select 1, n.project_id, n.test_package_id from unnest(p_new) n
                where n.resolved_at is null and n.test_package_id is not null) r
          group by 1, 2) x;
end
$$;
create trigger review_items_packages_rows after insert or update or delete on pipetrak.review_items
    for each row execute function pipetrak.capture_row('progress_packages_net_items');
create trigger review_items_packages after insert or update or delete on pipetrak.review_items
    for each statement execute function pipetrak.flush_rows('progress_packages_net_items');

create view pipetrak_api.test_package_readiness with (security_invoker = true) as
-- The members' counts and open review items are the package's row of progress_packages (kept
-- from the parts and the items by the triggers above).
with parts as (
    select g.project_id, g.test_package_id, g.component_count as members, g.component_count - g.post_hydro_count as testable,
           g.ready_count as ready, g.post_hydro_count as post_hydro, g.open_review_items::bigint as open_items
    from pipetrak.progress_packages g),
examinations as (
    select e.project_id, c.test_package_id, count(*) as n
    from pipetrak.examination_calls e
    join pipetrak.components c on c.id = e.component_id and c.project_id = e.project_id
    join pipetrak.field_welds f on f.component_id = e.component_id and f.project_id = e.project_id
    where c.test_package_id is not null and c.retired_at is null and coalesce(f.current_nde ->> 'RT', '') not in ('PASS', 'FAIL')
    group by e.project_id, c.test_package_id),
stages as (
    select s.project_id, s.test_package_id,
           pipetrak.package_state(array_agg(s.stage order by s.position), array_agg(s.status order by s.position)) as state
    from pipetrak.package_stages s
    group by s.project_id, s.test_package_id)
select t.id as test_package_id, t.project_id, t.name as test_package_name, t.test_type, t.target_date,
       coalesce(p.members, 0)::bigint as members, coalesce(p.testable, 0)::bigint as testable, coalesce(p.ready, 0)::bigint as ready,
       case when coalesce(p.testable, 0) = 0 then 100.00 else round(100.0 * p.ready / p.testable, 2) end as ready_percent,
       coalesce(p.post_hydro, 0)::bigint as post_hydro, coalesce(p.open_items, 0) as open_review_items,
       coalesce(x.n, 0) as open_examinations, coalesce(s.state, 'draft') as state
from pipetrak.test_packages t
left join parts p on p.project_id = t.project_id and p.test_package_id = t.id
left join examinations x on x.project_id = t.project_id and x.test_package_id = t.id
left join stages s on s.project_id = t.project_id and s.test_package_id = t.id
where t.retired_at is null;
comment on view pipetrak_api.test_package_readiness is 'Per live test package: members, testable (not post-hydro), ready (through Punch, NDE clear), ready % (100 when nothing is testable), post-hydro, open review items and open examinations on members, target date and state (draft, testing, tested, turned_over). Current as soon as a milestone or NDE commits.';

create view pipetrak_api.test_package_stages with (security_invoker = true) as
select s.id as stage_id, s.project_id, s.test_package_id, s.stage, r.title, s.position, s.status, s.data, s.skip_reason,
       s.started_at, s.started_by, s.completed_at, s.completed_by, r.signoffs as signoffs_needed,
       coalesce(g.signoffs, '[]') as signoffs
from pipetrak.package_stages s
cross join lateral pipetrak.package_stage_rule(s.stage) r
-- Grouped by project and joined on it (the same rows): Citus then runs a project's stages on its
-- shard alone.
left join lateral (
    select g.project_id,
           jsonb_agg(jsonb_build_object('signoff', g.signoff, 'name', g.name, 'company_role', g.company_role,
                                        'signed_on', g.signed_on, 'entered_by', g.entered_by, 'entered_at', g.entered_at)
                     order by g.signoff) as signoffs
    from pipetrak.stage_signoffs g
    where g.project_id = s.project_id and g.stage_id = s.id
    group by g.project_id) g on g.project_id = s.project_id;
comment on view pipetrak_api.test_package_stages is 'The workflow stages of your projects'' test packages in order, with status, data, the sign-offs each needs and those given.';

create view pipetrak_api.package_events with (security_invoker = true) as
select id, project_id, test_package_id, stage, action, before, after, reason, actor, created_at from pipetrak.package_events;
comment on view pipetrak_api.package_events is 'The history of test-package stages (append-only): started, edited after completion with a reason, signed off again, completed, skipped.';

create view pipetrak_api.test_package_certificates with (security_invoker = true) as
select k.test_package_id, k.project_id, pipetrak.certificate_label(k.number) as number, k.client, k.client_spec, k.line_numbers,
       k.test_pressure, k.test_pressure_unit, k.medium, k.temperature, k.temperature_unit, k.created_by, k.created_at, k.updated_at
from pipetrak.package_certificates k;
comment on view pipetrak_api.test_package_certificates is 'Test package certificates (PKG-NNN per project).';

create function pipetrak_api.set_post_hydro(component_ids bigint[] default null, drawing_id bigint default null,
                                            post_hydro boolean default true)
returns integer
language sql volatile security invoker
as $$ select pipetrak.set_post_hydro(pipetrak.limited('component_ids', component_ids), drawing_id, post_hydro) $$;
comment on function pipetrak_api.set_post_hydro(bigint[], bigint, boolean) is
    'Flags components post-hydro (installed after their package''s test: members, not testable), or clears the flag: the ids given (up to 10,000) or every live component of a drawing. All-or-nothing; returns how many changed. Owner, admin, project manager.';

create function pipetrak_api.start_stage(test_package_id bigint, stage text)
returns void
language sql volatile security invoker
as $$ select pipetrak.start_stage(test_package_id, pipetrak.limited('stage', stage)) $$;
comment on function pipetrak_api.start_stage(bigint, text) is
    'Starts a package stage (pre_hydro, test, drain_flush, post_hydro, coatings, insulation, final) once the one before it is completed or skipped. QC inspector and up.';

create function pipetrak_api.save_stage(test_package_id bigint, stage text, data jsonb, reason text default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.save_stage(test_package_id, pipetrak.limited('stage', stage), pipetrak.limited('data', data), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.save_stage(bigint, text, jsonb, text) is
    'Merges fields into a started stage''s data (null removes one); a completed stage changes only with a reason, kept in package_events. Returns the data. QC inspector and up.';

create function pipetrak_api.sign_stage(test_package_id bigint, stage text, signoff text, name text, company_role text,
                                        signed_on date default null, reason text default null)
returns void
language sql volatile security invoker
as $$ select pipetrak.sign_stage(test_package_id, pipetrak.limited('stage', stage), pipetrak.limited('signoff', signoff), pipetrak.limited('name', name), pipetrak.limited('company_role', company_role), signed_on, pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.sign_stage(bigint, text, text, text, text, date, text) is
    'Records a stage sign-off (qc, client or manufacturer, as the stage needs): name, company role, date (today unless given). On a completed stage only with a reason. QC inspector and up.';

create function pipetrak_api.complete_stage(test_package_id bigint, stage text, data jsonb default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.complete_stage(test_package_id, pipetrak.limited('stage', stage), pipetrak.limited('data', data)) $$;
comment on function pipetrak_api.complete_stage(bigint, text, jsonb) is
    'Completes a stage in progress once its data and sign-offs are complete. Pre-Hydro needs no member weld awaiting NDE; Test Acceptance needs every testable member ready and earns Test = 100 on each (work date = test date); Final earns Restore = 100. QC inspector and up.';

create function pipetrak_api.skip_stage(test_package_id bigint, stage text, reason text)
returns void
language sql volatile security invoker
as $$ select pipetrak.skip_stage(test_package_id, pipetrak.limited('stage', stage), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.skip_stage(bigint, text, text) is
    'Skips a stage with a reason (never Test Acceptance or Final), in order like starting one. QC inspector and up.';

create function pipetrak_api.save_certificate(test_package_id bigint, client text default null, client_spec text default null,
                                              line_numbers text default null, test_pressure numeric default null,
                                              test_pressure_unit text default null, medium text default null,
                                              temperature numeric default null, temperature_unit text default null)
returns text
language sql volatile security invoker
as $$ select pipetrak.save_certificate(test_package_id, pipetrak.limited('client', client), pipetrak.limited('client_spec', client_spec), pipetrak.limited('line_numbers', line_numbers), test_pressure, pipetrak.limited('test_pressure_unit', test_pressure_unit),
                                       pipetrak.limited('medium', medium), temperature, pipetrak.limited('temperature_unit', temperature_unit)) $$;
comment on function pipetrak_api.save_certificate(bigint, text, text, text, numeric, text, text, numeric, text) is
    'Saves a package''s certificate (numbered PKG-NNN per project on first save, never reused); editable until Test Acceptance completes. Returns the number. QC inspector and up.';

create function pipetrak_api.test_package_blockers(test_package_id bigint)
returns table (drawing_id bigint, drawing_no text, blockers jsonb)
language sql stable security invoker
as $$ select * from pipetrak.test_package_blockers(test_package_id) $$;
comment on function pipetrak_api.test_package_blockers(bigint) is
    'The testable members of a package that are not ready, grouped by drawing (natural order), each with what it lacks: milestones through Punch below 100, and NDE with the weld''s status.';

create function pipetrak_api.turnover_report(test_package_id bigint)
returns jsonb
language sql stable security invoker
as $$ select pipetrak.turnover_report(test_package_id) $$;
comment on function pipetrak_api.turnover_report(bigint) is
    'The turnover report of a package as JSON: package header (with the most common weld spec and state), certificate, stages with sign-offs, component summary by type and identity, support summary, and per drawing (natural order) its component count, weld log and NDE summary.';
