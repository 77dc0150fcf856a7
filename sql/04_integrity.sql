-- Triggers that keep derived data current and protect invariants whoever writes.
--
-- Design notes (decisions where the spec was silent):
-- - Rollups: `progress_parts` holds one row per (drawing, area, system, test package, type) with
--   counts and earned sums, maintained by statement-level triggers on `components` (transition
--   tables, the old rows netted against the new: one upsert per part that changes, key order). A
--   milestone update writes one part row of its drawing, once — never a row shared by the whole
--   project — and the rollup views sum a few thousand rows instead of scanning components.
--   Category % = earned credit ÷ available credit in that category (weighted).
-- - The parts also count post-hydro members and testable members ready for their package's test
--   (`ready_for_test`); a weld's NDE changes its count through the trigger on `field_welds`
--   (13_packages.sql). `progress_packages` sums the parts per test package (a row trigger on the
--   parts) with its open review items, so readiness and the project dashboard read one row per
--   package, not every part.
-- - Audit log is append-only for everyone: no grants, plus a trigger that refuses update, delete
--   and truncate even for the table owner.

-- Whether a field weld's NDE lets it be tested (spec §10: accepted, or needing none): accepted, or
-- active with no listed method, a tier below 100 % (a sampled tier examines the lot, not each
-- weld) and no PENDING result. Null facts (not a weld) let it. Inlined by the planner.
create function pipetrak.weld_clears_nde(p_status text, p_nde_types text[], p_xray_percent integer, p_current_nde jsonb)
returns boolean
language sql immutable parallel safe
as $$
    select p_status is null or p_status = 'accepted'
        or (p_status = 'active' and cardinality(p_nde_types) = 0 and coalesce(p_xray_percent, 0) < 100
            and not coalesce(p_current_nde @? '$.* ? (@ == "PENDING")', false))
$$;

-- Whether a live, testable member is ready for its package's test (spec §10): every milestone up
-- to and including Punch at 100, and its NDE clears it. Inlined by the planner.
create function pipetrak.ready_for_test(p_values numeric[], p_names text[], p_weld_clears boolean)
returns boolean
language sql immutable parallel safe
as $$
    select coalesce(100 = all (p_values[1:array_position(p_names, 'Punch')]), false) and p_weld_clears
$$;

-- Whether the running transaction's bulk write (update_milestones, a package earning its
-- milestone, component_batch) has deferred the rollups to its end: a bulk write nets its changes
-- into them once, where thousands of upserts of one row in one transaction would each walk the
-- row's growing chain of versions. Only the extension writes progress_deferrals, so a user who
-- sets pipetrak.progress_deferred skips nothing.
-- PL/pgSQL without a search_path of its own (every caller is an extension function that fixes
-- one; the body names its table): every component write asks, and a SQL function it can't inline
-- is planned again in each transaction (~30 µs), where PL/pgSQL keeps its plan for the session.
create function pipetrak.progress_deferred()
returns boolean
language plpgsql stable
as $$
begin
    return current_setting('pipetrak.progress_deferred', true) = 'on'
       and exists (select from pipetrak.progress_deferrals d where d.backend_pid = pg_backend_pid() and d.xact = pg_current_xact_id());
end
$$;

-- Defers the rollups to the end of the running transaction's bulk write (see progress_deferred),
-- and the history's days too when `p_days` (the writer then adds its events itself); whatever the
-- session set, the flags say what this writer wants.
create function pipetrak.progress_defer(p_days boolean)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into pipetrak.progress_deferrals (backend_pid, xact) values (pg_backend_pid(), pg_current_xact_id())
    on conflict do nothing;
    perform set_config('pipetrak.progress_deferred', 'on', true);
    perform set_config('pipetrak.days_deferred', case when p_days then 'on' else 'off' end, true);
end
$$;

-- Ends a deferral (progress_defer): the triggers keep the rollups again.
create function pipetrak.progress_resume()
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    perform set_config('pipetrak.progress_deferred', 'off', true);
    perform set_config('pipetrak.days_deferred', 'off', true);
    delete from pipetrak.progress_deferrals where backend_pid = pg_backend_pid() and xact = pg_current_xact_id();
end
$$;

-- Moves the parts from the components as they were (`p_old`) to the components as they are
-- (`p_new`): the live ones of `p_old` leave their parts, those of `p_new` join theirs, netted per
-- part — one upsert per part whose counts change (a milestone update writes its part once, not
-- once to take the old state out and again to put the new one in), in key order so concurrent
-- writers lock alike. The one place that says what a component adds to its part. One project at a
-- time, each table read filtered by it: on Citus every statement then runs on that project's
-- shard (joins of sharded tables by id alone can't be planned there).
create function pipetrak.progress_parts_shift(p_old pipetrak.components[], p_new pipetrak.components[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project bigint;
begin
    for v_project in select o.project_id from unnest(p_old) o union select n.project_id from unnest(p_new) n order by 1 loop
    insert into pipetrak.progress_parts as p (project_id, drawing_id, area_id, system_id, test_package_id, component_type,
           component_count, completed_count, earned_total, earned_receive, earned_install, earned_punch, earned_test, earned_restore,
           post_hydro_count, ready_count, budget_mh, mh_receive, mh_install, mh_punch, mh_test, mh_restore)
    select * from (
        select x.project_id, x.drawing_id, x.area_id, x.system_id, x.test_package_id, x.component_type,
               sum(x.sign)::integer as component_count,
               sum(x.sign * (x.earned_total = 1000000)::integer)::integer as completed_count,
               sum(x.sign * x.earned_total)::bigint as earned_total, sum(x.sign * x.earned_receive)::bigint as earned_receive,
               sum(x.sign * x.earned_install)::bigint as earned_install, sum(x.sign * x.earned_punch)::bigint as earned_punch,
               sum(x.sign * x.earned_test)::bigint as earned_test, sum(x.sign * x.earned_restore)::bigint as earned_restore,
               sum(x.sign * x.post_hydro::integer)::integer as post_hydro_count,
               sum(x.sign * coalesce(not x.post_hydro and pipetrak.ready_for_test(x.milestone_values, t.names,
                                         pipetrak.weld_clears_nde(f.status, f.nde_types, f.xray_percent, f.current_nde)), false)::integer
                  )::integer as ready_count,
               coalesce(sum(x.sign * b.budget_mh), 0) as budget_mh, coalesce(sum(x.sign * b.budget_mh * x.earned_receive), 0) as mh_receive,
               coalesce(sum(x.sign * b.budget_mh * x.earned_install), 0) as mh_install,
               coalesce(sum(x.sign * b.budget_mh * x.earned_punch), 0) as mh_punch,
               coalesce(sum(x.sign * b.budget_mh * x.earned_test), 0) as mh_test,
               coalesce(sum(x.sign * b.budget_mh * x.earned_restore), 0) as mh_restore
        from (select -1 as sign, o.* from unnest(p_old) o union all select 1, n.* from unnest(p_new) n) x
        join pipetrak.milestone_templates t on t.project_id = v_project and t.component_type = x.component_type
        -- By key (lateral, limit 1): a generic plan made while a project had no welds or budgets
        -- would otherwise scan all of them for every write once it has.
        left join lateral (select f.* from pipetrak.field_welds f
                           where f.component_id = x.id and f.project_id = v_project limit 1) f on true
        left join lateral (select b.* from pipetrak.component_budgets b
                           where b.component_id = x.id and b.project_id = v_project limit 1) b on true
        where x.project_id = v_project and x.retired_at is null
        group by 1, 2, 3, 4, 5, 6) d
    where (d.component_count, d.completed_count, d.earned_total, d.earned_receive, d.earned_install, d.earned_punch, d.earned_test,
           d.earned_restore, d.post_hydro_count, d.ready_count, d.budget_mh, d.mh_receive, d.mh_install, d.mh_punch, d.mh_test,
           d.mh_restore) <> (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    -- Key order, package first, as every writer of the parts: the package rows (progress_packages,
    -- kept by a row trigger on the parts) are then locked in key order too.
    order by d.project_id, d.test_package_id, d.drawing_id, d.area_id, d.system_id, d.component_type
    on conflict on constraint progress_parts_key do update set
        component_count = p.component_count + excluded.component_count,
        completed_count = p.completed_count + excluded.completed_count,
        earned_total = p.earned_total + excluded.earned_total,
        earned_receive = p.earned_receive + excluded.earned_receive,
        earned_install = p.earned_install + excluded.earned_install,
        earned_punch = p.earned_punch + excluded.earned_punch,
        earned_test = p.earned_test + excluded.earned_test,
        earned_restore = p.earned_restore + excluded.earned_restore,
        post_hydro_count = p.post_hydro_count + excluded.post_hydro_count,
        ready_count = p.ready_count + excluded.ready_count,
        budget_mh = p.budget_mh + excluded.budget_mh, mh_receive = p.mh_receive + excluded.mh_receive,
        mh_install = p.mh_install + excluded.mh_install, mh_punch = p.mh_punch + excluded.mh_punch,
        mh_test = p.mh_test + excluded.mh_test, mh_restore = p.mh_restore + excluded.mh_restore;
    end loop;
end
$$;

-- The components a statement inserted, changed or deleted move their parts (`p_old`, `p_new`:
-- its rows as they were and are, handed over by the statement's trigger in chunks of at most
-- 10,000; see src/pg/captured.rs).
create function pipetrak.progress_parts_net_components(p_op text, p_old pipetrak.components[], p_new pipetrak.components[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    -- A bulk milestone update nets its changes into the parts once, at its end (see
    -- update_milestones): thousands of upserts of one part row in one transaction would each walk
    -- the row's growing chain of versions.
    if pipetrak.progress_deferred() then
        return;
    end if;
    -- Weeks that locked since the last write are frozen before a component write through the API
    -- lands (spec §11), whichever write it is: what a snapshot reads (the parts, the days) is
    -- still as it was. Not for writes without a caller (a restore's COPY, a DBA's SQL): a restore
    -- must not freeze weeks from half-restored tables.
    -- On a Citus worker (a coordinator's task) they are left to the coordinator (citus_task).
    if pipetrak.current_user_id() is not null and not pipetrak.citus_task() then
        perform pipetrak.take_due_snapshots(x.project_id, null)
        from (select distinct r.project_id from unnest(case when p_op = 'DELETE' then p_old else p_new end) r) x;
    end if;
    perform pipetrak.progress_parts_shift(coalesce(p_old, '{}'), coalesce(p_new, '{}'));
end
$$;

-- Adds (p_sign = 1) or removes (-1) the live components `p_component_ids` to or from the progress
-- parts, as the trigger does for a statement's rows.
create function pipetrak.progress_parts_add(p_sign integer, p_component_ids bigint[])
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    select pipetrak.progress_parts_shift(
        case when p_sign < 0 then array(select c from pipetrak.components c where c.id = any (p_component_ids)) else '{}' end,
        case when p_sign > 0 then array(select c from pipetrak.components c where c.id = any (p_component_ids)) else '{}' end)
$$;

-- Rebuilds every progress part from the components (for a DBA: after a data-only restore with
-- triggers disabled, or to check the parts against a recount). Returns the number of parts.
create function pipetrak.rebuild_progress_parts()
returns bigint
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ids bigint[];
begin
    lock table pipetrak.progress_parts, pipetrak.progress_packages in exclusive mode;
    delete from pipetrak.progress_parts;
    -- Emptied too (not left to the parts' deletion): a rebuild also mends packages that drifted.
    delete from pipetrak.progress_packages;
    -- In chunks of 50,000: the components pass as rows (progress_parts_shift), not all at once.
    for v_ids in select array_agg(c.id) from pipetrak.components c where c.retired_at is null group by c.id / 50000 loop
        perform pipetrak.progress_parts_add(1, v_ids);
    end loop;
    -- The packages' open review items, counted again.
    perform pipetrak.progress_packages_add_items(array_agg(x.project_id), array_agg(x.test_package_id), array_agg(x.n))
    from (select r.project_id, r.test_package_id, count(*)::integer as n from pipetrak.review_items r
          where r.resolved_at is null and r.test_package_id is not null group by 1, 2) x;
    return (select count(*) from pipetrak.progress_parts);
end
$$;

create trigger components_progress_rows after insert or update or delete on pipetrak.components
    for each row execute function pipetrak.capture_row('progress_parts_net_components');
create trigger components_progress after insert or update or delete on pipetrak.components
    for each statement execute function pipetrak.flush_rows('progress_parts_net_components');

-- Trigger: a part's change reaches its package's row (progress_packages). A row trigger: a write
-- changes one part (a milestone update) or a few hundred (an import's chunk, a package earning
-- Test), and one upsert of the difference costs less than a statement trigger's transition tables;
-- the parts come in package order, so the package rows are locked in key order too. A part never
-- changes key (writers add to counters), but if one did, it would move.
create function pipetrak.progress_packages_follow_parts()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_same boolean := tg_op = 'UPDATE'
        and (new.project_id, new.test_package_id) is not distinct from (old.project_id, old.test_package_id);
begin
    if tg_op <> 'DELETE' and new.test_package_id is not null then
        insert into pipetrak.progress_packages as g (project_id, test_package_id, component_count, completed_count, earned_total,
                                                     post_hydro_count, ready_count, budget_mh, mh_earned)
        values (new.project_id, new.test_package_id,
                new.component_count - case when v_same then old.component_count else 0 end,
                new.completed_count - case when v_same then old.completed_count else 0 end,
                new.earned_total - case when v_same then old.earned_total else 0 end,
                new.post_hydro_count - case when v_same then old.post_hydro_count else 0 end,
                new.ready_count - case when v_same then old.ready_count else 0 end,
                new.budget_mh - case when v_same then old.budget_mh else 0 end,
                new.mh_receive + new.mh_install + new.mh_punch + new.mh_test + new.mh_restore
                - case when v_same then old.mh_receive + old.mh_install + old.mh_punch + old.mh_test + old.mh_restore else 0 end)
        on conflict (project_id, test_package_id) do update set
            component_count = g.component_count + excluded.component_count,
            completed_count = g.completed_count + excluded.completed_count,
            earned_total = g.earned_total + excluded.earned_total,
            post_hydro_count = g.post_hydro_count + excluded.post_hydro_count,
            ready_count = g.ready_count + excluded.ready_count,
            budget_mh = g.budget_mh + excluded.budget_mh, mh_earned = g.mh_earned + excluded.mh_earned;
    end if;
    if (tg_op = 'DELETE' or (tg_op = 'UPDATE' and not v_same)) and old.test_package_id is not null then
        insert into pipetrak.progress_packages as g (project_id, test_package_id, component_count, completed_count, earned_total,
                                                     post_hydro_count, ready_count, budget_mh, mh_earned)
        values (old.project_id, old.test_package_id, -old.component_count, -old.completed_count, -old.earned_total,
                -old.post_hydro_count, -old.ready_count, -old.budget_mh,
                -(old.mh_receive + old.mh_install + old.mh_punch + old.mh_test + old.mh_restore))
        on conflict (project_id, test_package_id) do update set
            component_count = g.component_count + excluded.component_count,
            completed_count = g.completed_count + excluded.completed_count,
            earned_total = g.earned_total + excluded.earned_total,
            post_hydro_count = g.post_hydro_count + excluded.post_hydro_count,
            ready_count = g.ready_count + excluded.ready_count,
            budget_mh = g.budget_mh + excluded.budget_mh, mh_earned = g.mh_earned + excluded.mh_earned;
    end if;
    return null;
end
$$;

create trigger progress_parts_packages after insert or update or delete on pipetrak.progress_parts
    for each row execute function pipetrak.progress_packages_follow_parts();

-- Append-only logs (milestone events, NDE results and weld events, package events, the component
-- change log) refuse updates, deletes and truncation for everyone, the extension's own functions
-- included: each trigger names the log's error key as its argument.
create function pipetrak.refuse_change()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.raise_error(tg_argv[0], jsonb_build_object('operation', lower(tg_op), 'table', tg_table_name));
    return null;
end
$$;

create trigger milestone_events_no_update before update or delete on pipetrak.milestone_events
    for each row execute function pipetrak.refuse_change('audit_log_immutable');
create trigger milestone_events_no_truncate before truncate on pipetrak.milestone_events
    for each statement execute function pipetrak.refuse_change('audit_log_immutable');

-- An organization never loses its last owner, however its memberships change (checked at commit,
-- so an owner can be swapped inside one transaction).
-- Security definer: the check runs at commit, outside the API function that made the change, as
-- the caller, who may neither lock the organization's row nor see every membership.
create function pipetrak.memberships_keep_an_owner()
returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    -- Take the organization's turn first (see change_member_role): this check then sees every
    -- membership change committed before it.
    perform from pipetrak.organizations o where o.id = old.organization_id for no key update;
    if old.role = 'owner'
       and exists (select from pipetrak.organizations o where o.id = old.organization_id)
       and not exists (select from pipetrak.memberships m where m.organization_id = old.organization_id and m.role = 'owner') then
        perform pipetrak.raise_error('last_owner', jsonb_build_object('organization_id', old.organization_id));
    end if;
    return null;
end
$$;

create constraint trigger memberships_last_owner after update or delete on pipetrak.memberships
    deferrable initially deferred
    for each row execute function pipetrak.memberships_keep_an_owner();
