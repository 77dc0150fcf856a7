-- Triggers that keep derived data current and protect invariants whoever writes.
--
-- Design notes (decisions where the spec was silent):
-- - Rollups: `progress_parts` holds one row per (drawing, area, system, test package, type) with
--   counts and earned sums, maintained by statement-level triggers on `components` (transition
--   tables, one upsert per touched part, key order). A milestone update touches one part row of its
--   drawing — never a row shared by the whole project — and the rollup views sum a few thousand
--   rows instead of scanning components. Category % = earned credit ÷ available credit in that
--   category (weighted).
-- - Audit log is append-only for everyone: no grants, plus a trigger that refuses update, delete
--   and truncate even for the table owner.

-- Adds the live components of a transition table to (sign = 1) or removes them from (sign = -1)
-- the progress parts, one upsert per part touched, in key order so concurrent writers lock alike.
create function pipetrak.progress_parts_apply()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    -- A bulk milestone update nets its changes into the parts once, at its end (see
    -- update_milestones): thousands of upserts of one part row in one transaction would each walk
    -- the row's growing chain of versions.
    if current_setting('pipetrak.progress_deferred', true) = 'on'
       and exists (select from pipetrak.progress_deferrals d where d.backend_pid = pg_backend_pid() and d.xact = pg_current_xact_id()) then
        return null;
    end if;
    if tg_op in ('UPDATE', 'DELETE') then
        insert into pipetrak.progress_parts as p (project_id, drawing_id, area_id, system_id, test_package_id, component_type,
               component_count, completed_count, earned_total, earned_receive, earned_install, earned_punch, earned_test, earned_restore)
        select project_id, drawing_id, area_id, system_id, test_package_id, component_type,
               -count(*), -count(*) filter (where earned_total = 1000000), -sum(earned_total), -sum(earned_receive),
               -sum(earned_install), -sum(earned_punch), -sum(earned_test), -sum(earned_restore)
        from old_rows where retired_at is null
        group by 1, 2, 3, 4, 5, 6 order by 1, 2, 3, 4, 5, 6
        on conflict on constraint progress_parts_key do update set
            component_count = p.component_count + excluded.component_count,
            completed_count = p.completed_count + excluded.completed_count,
            earned_total = p.earned_total + excluded.earned_total,
            earned_receive = p.earned_receive + excluded.earned_receive,
            earned_install = p.earned_install + excluded.earned_install,
            earned_punch = p.earned_punch + excluded.earned_punch,
            earned_test = p.earned_test + excluded.earned_test,
            earned_restore = p.earned_restore + excluded.earned_restore;
    end if;
    if tg_op in ('UPDATE', 'INSERT') then
        insert into pipetrak.progress_parts as p (project_id, drawing_id, area_id, system_id, test_package_id, component_type,
               component_count, completed_count, earned_total, earned_receive, earned_install, earned_punch, earned_test, earned_restore)
        select project_id, drawing_id, area_id, system_id, test_package_id, component_type,
               count(*), count(*) filter (where earned_total = 1000000), sum(earned_total), sum(earned_receive),
               sum(earned_install), sum(earned_punch), sum(earned_test), sum(earned_restore)
        from new_rows where retired_at is null
        group by 1, 2, 3, 4, 5, 6 order by 1, 2, 3, 4, 5, 6
        on conflict on constraint progress_parts_key do update set
            component_count = p.component_count + excluded.component_count,
            completed_count = p.completed_count + excluded.completed_count,
            earned_total = p.earned_total + excluded.earned_total,
            earned_receive = p.earned_receive + excluded.earned_receive,
            earned_install = p.earned_install + excluded.earned_install,
            earned_punch = p.earned_punch + excluded.earned_punch,
            earned_test = p.earned_test + excluded.earned_test,
            earned_restore = p.earned_restore + excluded.earned_restore;
    end if;
    return null;
end
$$;

-- Adds (p_sign = 1) or removes (-1) the live components `p_component_ids` to or from the progress
-- parts, as the trigger does for a statement's rows.
create function pipetrak.progress_parts_add(p_sign integer, p_component_ids bigint[])
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    insert into pipetrak.progress_parts as p (project_id, drawing_id, area_id, system_id, test_package_id, component_type,
           component_count, completed_count, earned_total, earned_receive, earned_install, earned_punch, earned_test, earned_restore)
    select project_id, drawing_id, area_id, system_id, test_package_id, component_type,
           p_sign * count(*), p_sign * count(*) filter (where earned_total = 1000000), p_sign * sum(earned_total),
           p_sign * sum(earned_receive), p_sign * sum(earned_install), p_sign * sum(earned_punch), p_sign * sum(earned_test),
           p_sign * sum(earned_restore)
    from pipetrak.components where id = any (p_component_ids) and retired_at is null
    group by 1, 2, 3, 4, 5, 6 order by 1, 2, 3, 4, 5, 6
    on conflict on constraint progress_parts_key do update set
        component_count = p.component_count + excluded.component_count,
        completed_count = p.completed_count + excluded.completed_count,
        earned_total = p.earned_total + excluded.earned_total,
        earned_receive = p.earned_receive + excluded.earned_receive,
        earned_install = p.earned_install + excluded.earned_install,
        earned_punch = p.earned_punch + excluded.earned_punch,
        earned_test = p.earned_test + excluded.earned_test,
        earned_restore = p.earned_restore + excluded.earned_restore
$$;

-- Rebuilds every progress part from the components (for a DBA: after a data-only restore with
-- triggers disabled, or to check the parts against a recount). Returns the number of parts.
create function pipetrak.rebuild_progress_parts()
returns bigint
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    lock table pipetrak.progress_parts in exclusive mode;
    delete from pipetrak.progress_parts;
    perform pipetrak.progress_parts_add(1, array(select c.id from pipetrak.components c where c.retired_at is null));
    return (select count(*) from pipetrak.progress_parts);
end
$$;

create trigger components_progress_insert after insert on pipetrak.components
    referencing new table as new_rows
    for each statement execute function pipetrak.progress_parts_apply();
create trigger components_progress_update after update on pipetrak.components
    referencing old table as old_rows new table as new_rows
    for each statement execute function pipetrak.progress_parts_apply();
create trigger components_progress_delete after delete on pipetrak.components
    referencing old table as old_rows
    for each statement execute function pipetrak.progress_parts_apply();

-- The audit log is append-only for everyone, the extension's own functions included.
create function pipetrak.milestone_events_immutable()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.raise_error('audit_log_immutable', jsonb_build_object('operation', lower(tg_op)));
    return null;
end
$$;

create trigger milestone_events_no_update before update or delete on pipetrak.milestone_events
    for each row execute function pipetrak.milestone_events_immutable();
create trigger milestone_events_no_truncate before truncate on pipetrak.milestone_events
    for each statement execute function pipetrak.milestone_events_immutable();

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
