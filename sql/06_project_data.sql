-- Reference data, drawings, components and templates: project managers and up.
--
-- Design notes (decisions where the spec was silent):
-- - Re-weighting always keeps % exact: existing components are recomputed in the same transaction;
--   `recompute => false` is accepted only while no component of that type has progress.
-- - Drawings are retired, never deleted; retiring one retires its live components (they keep their
--   history and leave the rollups). Areas/systems/test packages can be retired only when unused.
-- - Assignment: `assign_drawing` sets all three (omitted = none); components follow unless pinned
--   by `assign_component`; `assign_component(..., follow_drawing => true)` unpins.

-- The table behind a reference kind ('area', 'system', 'test_package').
create function pipetrak.reference_table(p_kind text)
returns text
language sql immutable
as $$
    select case p_kind when 'area' then 'areas' when 'system' then 'systems' when 'test_package' then 'test_packages' end
$$;

-- The project of a live area/system/test package the caller may manage, or reference_not_found.
create function pipetrak.reference_project(p_kind text, p_id bigint)
returns bigint
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint;
    v_hint bigint := pipetrak.request_project();
begin
    -- In the request's project alone when it names one (request_project: on Citus, one shard).
    execute format('select project_id from pipetrak.%I where id = $1 and retired_at is null', pipetrak.reference_table(p_kind))
            || case when v_hint is not null then ' and project_id = $2' else '' end
        into v_project_id using p_id, v_hint;
    if v_project_id is null or v_project_id not in (select pipetrak.my_project_ids()) then
        perform pipetrak.raise_error('reference_not_found', jsonb_build_object('kind', p_kind, 'id', p_id));
    end if;
    perform pipetrak.require_project_role(v_project_id, 'manage_project_data');
    return v_project_id;
end
$$;

-- The trimmed name for an area, system or test package of a project, refused when empty, too long or taken by another live one (ignoring case).
create function pipetrak.check_reference_name(p_kind text, p_project_id bigint, p_name text, p_except_id bigint)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_taken boolean;
begin
    if p_name is null or btrim(p_name) = '' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "name", "expected": "a non-empty name"}');
    end if;
    perform pipetrak.check_text_length('name', btrim(p_name), pipetrak.argument_limit('name'));
    execute format('select exists (select from pipetrak.%I where project_id = $1 and lower(name) = lower($2) and retired_at is null and id is distinct from $3)',
                   pipetrak.reference_table(p_kind))
        into v_taken using p_project_id, btrim(p_name), p_except_id;
    if v_taken then
        perform pipetrak.raise_error('name_taken', jsonb_build_object('kind', p_kind, 'name', btrim(p_name)));
    end if;
    return btrim(p_name);
end
$$;

-- Creates an area, system or test package; returns its id.
create function pipetrak.create_reference(p_kind text, p_project_id bigint, p_name text, p_description text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_id bigint;
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_project_data');
    execute format('insert into pipetrak.%I (project_id, name, description) values ($1, $2, $3) returning id', pipetrak.reference_table(p_kind))
        into v_id using p_project_id, pipetrak.check_reference_name(p_kind, p_project_id, p_name, null), p_description;
    -- On Citus a package's change is announced from here (the shard's triggers can't).
    if p_kind = 'test_package' then
        perform pipetrak.queue_change(p_project_id, 'packages', array[v_id]);
    end if;
    return v_id;
end
$$;

-- Renames an area, system or test package (project managers and up); names stay unique in the project.
create function pipetrak.rename_reference(p_kind text, p_id bigint, p_name text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint := pipetrak.reference_project(p_kind, p_id);
begin
    execute format('update pipetrak.%I set name = $2 where id = $1 and project_id = $3', pipetrak.reference_table(p_kind))
        using p_id, pipetrak.check_reference_name(p_kind, v_project_id, p_name, p_id), v_project_id;
    -- On Citus a package's change is announced from here (the shard's triggers can't).
    if p_kind = 'test_package' then
        perform pipetrak.queue_change(v_project_id, 'packages', array[p_id]);
    end if;
end
$$;

-- Retires an area, system or test package that no live drawing or component uses.
create function pipetrak.retire_reference(p_kind text, p_id bigint)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_in_use bigint;
begin
    perform pipetrak.refuse_distributed('retire_reference');
    perform pipetrak.reference_project(p_kind, p_id);
    execute format('select (select count(*) from pipetrak.drawings where %1$I = $1 and retired_at is null)
                         + (select count(*) from pipetrak.components where %1$I = $1 and retired_at is null)', p_kind || '_id')
        into v_in_use using p_id;
    if v_in_use > 0 then
        perform pipetrak.raise_error('reference_in_use', jsonb_build_object('kind', p_kind, 'id', p_id, 'count', v_in_use));
    end if;
    execute format('update pipetrak.%I set retired_at = now() where id = $1', pipetrak.reference_table(p_kind)) using p_id;
end
$$;

-- Checks that the given area/system/test package ids are live rows of the project.
create function pipetrak.check_assignment(p_project_id bigint, p_area_id bigint, p_system_id bigint, p_test_package_id bigint)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if (p_area_id is not null and not exists (select from pipetrak.areas where id = p_area_id and project_id = p_project_id and retired_at is null))
       or (p_system_id is not null and not exists (select from pipetrak.systems where id = p_system_id and project_id = p_project_id and retired_at is null))
       or (p_test_package_id is not null and not exists (select from pipetrak.test_packages where id = p_test_package_id and project_id = p_project_id and retired_at is null)) then
        perform pipetrak.raise_error('reference_not_found',
            jsonb_build_object('area_id', p_area_id, 'system_id', p_system_id, 'test_package_id', p_test_package_id));
    end if;
end
$$;

-- The project of a live drawing the caller may act on with `p_permission`, or drawing_not_found.
create function pipetrak.drawing_project(p_drawing_id bigint, p_permission text)
returns bigint
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint;
    v_hint bigint := pipetrak.request_project();
begin
    -- In the request's project alone when it names one (request_project: on Citus, one shard).
    if v_hint is null then
        select project_id into v_project_id from pipetrak.drawings
        where id = p_drawing_id and retired_at is null and project_id in (select pipetrak.my_project_ids());
    else
        select project_id into v_project_id from pipetrak.drawings
        where id = p_drawing_id and project_id = v_hint and retired_at is null and project_id in (select pipetrak.my_project_ids());
    end if;
    if v_project_id is null then
        perform pipetrak.raise_error('drawing_not_found', jsonb_build_object('drawing_id', p_drawing_id));
    end if;
    perform pipetrak.require_project_role(v_project_id, p_permission);
    return v_project_id;
end
$$;

-- Creates a drawing; its number is compared after normalization.
create function pipetrak.create_drawing(p_project_id bigint, p_drawing_no text, p_sheet text, p_revision text, p_title text,
                                        p_area_id bigint, p_system_id bigint, p_test_package_id bigint)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_id bigint;
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_project_data');
    if p_drawing_no is null or btrim(p_drawing_no) = '' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "drawing_no", "expected": "a drawing number"}');
    end if;
    perform pipetrak.check_text_length('drawing_no', btrim(p_drawing_no), pipetrak.argument_limit('drawing_no'));
    perform pipetrak.check_assignment(p_project_id, p_area_id, p_system_id, p_test_package_id);
    select id into v_id from pipetrak.drawings
    where project_id = p_project_id and drawing_key = pipetrak.normalize_drawing_key(p_drawing_no) and retired_at is null;
    if v_id is not null then
        perform pipetrak.raise_error('drawing_exists', jsonb_build_object('drawing_id', v_id, 'drawing_key', pipetrak.normalize_drawing_key(p_drawing_no)));
    end if;
    insert into pipetrak.drawings (project_id, drawing_no, sheet, revision, title, area_id, system_id, test_package_id)
    values (p_project_id, btrim(p_drawing_no), p_sheet, p_revision, p_title, p_area_id, p_system_id, p_test_package_id)
    returning id into v_id;
    return v_id;
end
$$;

-- Records a new revision or title of a drawing.
create function pipetrak.revise_drawing(p_drawing_id bigint, p_revision text, p_title text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint := pipetrak.drawing_project(p_drawing_id, 'manage_project_data');
begin
    update pipetrak.drawings set revision = coalesce(p_revision, revision), title = coalesce(p_title, title), updated_at = now()
    where id = p_drawing_id and project_id = v_project_id;
end
$$;

-- Assigns a drawing to an area, system and test package (NULL clears one); its components follow,
-- except where a component was assigned on its own.
create function pipetrak.assign_drawing(p_drawing_id bigint, p_area_id bigint, p_system_id bigint, p_test_package_id bigint)
returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint;
    v_moved integer;
begin
    perform pipetrak.refuse_distributed('assign_drawing');
    v_project_id := pipetrak.drawing_project(p_drawing_id, 'manage_project_data');
    perform pipetrak.check_assignment(v_project_id, p_area_id, p_system_id, p_test_package_id);
    update pipetrak.drawings set area_id = p_area_id, system_id = p_system_id, test_package_id = p_test_package_id, updated_at = now()
    where id = p_drawing_id;
    -- Each component that follows lands in the change log with its assignment before and after.
    with moved as (
        update pipetrak.components c set
            area_id = case when c.area_pinned then c.area_id else p_area_id end,
            system_id = case when c.system_pinned then c.system_id else p_system_id end,
            test_package_id = case when c.test_package_pinned then c.test_package_id else p_test_package_id end,
            updated_at = now()
        from pipetrak.components o
        where o.id = c.id and c.drawing_id = p_drawing_id and c.retired_at is null
          and ((not c.area_pinned and c.area_id is distinct from p_area_id)
            or (not c.system_pinned and c.system_id is distinct from p_system_id)
            or (not c.test_package_pinned and c.test_package_id is distinct from p_test_package_id))
        returning c.id, c.project_id, jsonb_build_object('area_id', o.area_id, 'system_id', o.system_id, 'test_package_id', o.test_package_id) as before,
                  jsonb_build_object('area_id', c.area_id, 'system_id', c.system_id, 'test_package_id', c.test_package_id) as after
    ), logged as (
        insert into pipetrak.component_changes (project_id, component_id, action, fields, before, after, user_id)
        select m.project_id, m.id, 'assign', f.fields,
               (select jsonb_object_agg(k, m.before -> k) from unnest(f.fields) k),
               (select jsonb_object_agg(k, m.after -> k) from unnest(f.fields) k), pipetrak.current_user_id()
        from moved m
        cross join lateral (select array(select k from jsonb_object_keys(m.after) k where m.before -> k is distinct from m.after -> k order by k) as fields) f
        returning 1
    )
    select count(*) into v_moved from logged;
    return v_moved;
end
$$;

-- Retires a drawing and its live components (history stays; they leave the rollups).
create function pipetrak.retire_drawing(p_drawing_id bigint)
returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_retired integer;
begin
    perform pipetrak.refuse_distributed('retire_drawing');
    perform pipetrak.drawing_project(p_drawing_id, 'manage_project_data');
    update pipetrak.components set retired_at = now(), updated_at = now(), version = version + 1
    where drawing_id = p_drawing_id and retired_at is null;
    get diagnostics v_retired = row_count;
    update pipetrak.drawings set retired_at = now(), updated_at = now() where id = p_drawing_id;
    return v_retired;
end
$$;

-- The project of a component (null for no such id), found by its id: on Citus a read of every
-- shard, answered by the one holding it, unless the request names its project
-- (request_project): then a read of that project's shard. The calls then work on that project's
-- shard. A plain
-- SELECT … INTO: a scalar subquery would be planned by Citus as a result sent to every node,
-- which makes each writing transaction a two-phase commit of all of them.
create function pipetrak.component_project(p_component_id bigint)
returns bigint
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project bigint;
    v_hint bigint;
begin
    v_hint := pipetrak.request_project();
    if v_hint is null then
        select c.project_id into v_project from pipetrak.components c where c.id = p_component_id;
    else
        select c.project_id into v_project from pipetrak.components c where c.id = p_component_id and c.project_id = v_hint;
    end if;
    return v_project;
end
$$;

-- A live component the caller may act on with `p_permission`, locked for update; component_not_found
-- for what the caller can't see.
create function pipetrak.lock_component(p_component_id bigint, p_permission text)
returns pipetrak.components
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ctx record;
    v_project bigint;
begin
    -- One read for the component and the caller's role in its project, locking the row only for a
    -- member (as update_milestone does): every weld and component operation starts here. The
    -- component's project first, then the locked read by (id, project): on Citus, its shard.
    v_project := pipetrak.component_project(p_component_id);
    select c as component, m.role, p.archived_at into v_ctx
    from pipetrak.components c
    join pipetrak.projects p on p.id = c.project_id
    join pipetrak.memberships m on m.organization_id = p.organization_id and m.user_id = pipetrak.current_user_id()
    where c.id = p_component_id and c.project_id = v_project
    for update of c;
    if v_ctx.role is null then
        perform pipetrak.raise_error('component_not_found', jsonb_build_object('component_id', p_component_id));
    elsif not pipetrak.role_can(v_ctx.role, p_permission) then
        perform pipetrak.raise_error('permission_denied', jsonb_build_object('role', v_ctx.role, 'needs', p_permission));
    elsif v_ctx.archived_at is not null and p_permission <> 'read' then
        perform pipetrak.raise_error('project_archived', jsonb_build_object('project_id', (v_ctx.component).project_id));
    elsif (v_ctx.component).retired_at is not null then
        perform pipetrak.raise_error('component_retired', jsonb_build_object('component_id', p_component_id));
    end if;
    -- On Citus the change is announced and the weeks due are frozen from here (the shard's
    -- triggers can't).
    perform pipetrak.queue_change(v_project, 'components', array[p_component_id]);
    perform pipetrak.freeze_due_weeks_here(v_project);
    return v_ctx.component;
end
$$;

-- Creates a component, exploding a quantity into seqs 1..n for per-seq types (only the missing
-- seqs are created). Pipe aggregates take the given footage. Returns {"created": [ids], "existing": [ids]}.
create function pipetrak.create_component(p_project_id bigint, p_drawing_id bigint, p_component_type text, p_tag text,
                                          p_size text, p_quantity numeric, p_description text, p_spec text, p_attributes jsonb)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_type text := pipetrak.parse_component_type(coalesce(p_component_type, ''));
    v_tag text := pipetrak.normalize_commodity_code(coalesce(p_tag, ''));
    v_size text := pipetrak.normalize_size(coalesce(p_size, ''));
    v_quantity numeric := coalesce(p_quantity, 1);
    v_drawing pipetrak.drawings;
    v_template pipetrak.milestone_templates;
    v_count integer;
    v_created bigint[];
    v_existing bigint[];
begin
    perform pipetrak.check_json_size('attributes', p_attributes, pipetrak.argument_limit('attributes'));
    perform pipetrak.check_text_length('description', p_description, pipetrak.argument_limit('description'));
    perform pipetrak.check_text_length('spec', p_spec, pipetrak.argument_limit('spec'));
    perform pipetrak.require_project_role(p_project_id, 'manage_project_data');
    -- On Citus the weeks due are frozen from here, before the write (the shard's triggers can't).
    perform pipetrak.freeze_due_weeks_here(p_project_id);
    if v_type is null then
        perform pipetrak.raise_error('unknown_component_type',
            jsonb_build_object('component_type', p_component_type, 'accepted', pipetrak.accepted_component_types()));
    end if;
    if v_tag = '' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "tag", "expected": "the commodity code, spool id, weld number or tag"}');
    end if;
    perform pipetrak.check_text_length('tag', v_tag, pipetrak.argument_limit('tag'));
    if v_quantity <= 0 or (v_type <> all (pipetrak.component_types('linear_aggregate')) and v_quantity <> trunc(v_quantity)) or v_quantity > 100000 then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'quantity',
            'expected', 'a whole number from 1 (linear feet > 0 for pipe)'));
    end if;
    select * into v_drawing from pipetrak.drawings where id = p_drawing_id and project_id = p_project_id and retired_at is null;
    if v_drawing.id is null then
        perform pipetrak.raise_error('drawing_not_found', jsonb_build_object('drawing_id', p_drawing_id));
    end if;
    select * into v_template from pipetrak.milestone_templates where project_id = p_project_id and component_type = v_type;
    -- How many components the row stands for: seqs for per-seq types, one otherwise.
    v_count := case when v_type <> all (pipetrak.component_types('per_seq')) then 1 else v_quantity::integer end;

    if v_type = any (pipetrak.component_types('linear_aggregate')) then
        update pipetrak.components set quantity = v_quantity, updated_at = now()
        where project_id = p_project_id and retired_at is null
          and identity_key = pipetrak.identity_key(v_type, p_drawing_id, v_tag, v_size, 1)
        returning array[id] into v_existing;
    end if;
    if v_existing is null then
        select array_agg(c.id order by c.seq) into v_existing from pipetrak.components c
        where c.project_id = p_project_id and c.retired_at is null and c.component_type = v_type and c.tag = v_tag
          and (v_type = any (pipetrak.component_types('by_id'))
               or (v_type = any (pipetrak.component_types('per_drawing')) and c.drawing_id = p_drawing_id)
               or (c.drawing_id = p_drawing_id and c.size = v_size and c.seq <= v_count));
    end if;
    if v_type = any (pipetrak.component_types('by_id') || pipetrak.component_types('per_drawing')) and v_existing is not null then
        perform pipetrak.raise_error('duplicate_component', jsonb_build_object('component_type', v_type, 'tag', v_tag, 'component_id', v_existing[1]));
    end if;

    with inserted as (
        insert into pipetrak.components (project_id, drawing_id, component_type, tag, size, seq, quantity, description, spec,
                                         attributes, area_id, system_id, test_package_id, milestone_values)
        select p_project_id, p_drawing_id, v_type, v_tag, v_size, s.seq,
               case when v_type = any (pipetrak.component_types('linear_aggregate')) then v_quantity else 1 end,
               p_description, p_spec, coalesce(p_attributes, '{}'),
               v_drawing.area_id, v_drawing.system_id, v_drawing.test_package_id,
               array_fill(0::numeric, array[cardinality(v_template.names)])
        from generate_series(1, v_count) as s(seq)
        where coalesce(cardinality(v_existing), 0) < v_count
        on conflict do nothing
        returning id
    )
    select array_agg(id order by id) into v_created from inserted;
    if v_type = 'field_weld' and v_created is not null then
        insert into pipetrak.field_welds (component_id, project_id) values (v_created[1], p_project_id);
    end if;
    return jsonb_build_object('created', coalesce(to_jsonb(v_created), '[]'), 'existing', coalesce(to_jsonb(v_existing), '[]'));
end
$$;

-- Assigns one component to an area/system/test package of its own (non-NULL arguments pin it), or
-- with p_follow_drawing puts it back on its drawing's assignment.
create function pipetrak.assign_component(p_component_id bigint, p_area_id bigint, p_system_id bigint,
                                          p_test_package_id bigint, p_follow_drawing boolean)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_component pipetrak.components := pipetrak.lock_component(p_component_id, 'manage_project_data');
    v_drawing pipetrak.drawings;
    v_after pipetrak.components;
begin
    perform pipetrak.check_assignment(v_component.project_id, p_area_id, p_system_id, p_test_package_id);
    select * into v_drawing from pipetrak.drawings where id = v_component.drawing_id and project_id = v_component.project_id;
    if coalesce(p_follow_drawing, false) then
        update pipetrak.components set area_id = v_drawing.area_id, system_id = v_drawing.system_id,
            test_package_id = v_drawing.test_package_id, area_pinned = false, system_pinned = false,
            test_package_pinned = false, updated_at = now(), version = version + 1
        where id = p_component_id and project_id = v_component.project_id;
    else
        update pipetrak.components set
            area_id = coalesce(p_area_id, area_id), area_pinned = area_pinned or p_area_id is not null,
            system_id = coalesce(p_system_id, system_id), system_pinned = system_pinned or p_system_id is not null,
            test_package_id = coalesce(p_test_package_id, test_package_id),
            test_package_pinned = test_package_pinned or p_test_package_id is not null,
            updated_at = now(), version = version + 1
        where id = p_component_id and project_id = v_component.project_id;
    end if;
    select * into v_after from pipetrak.components where id = p_component_id and project_id = v_component.project_id;
    perform pipetrak.log_component_change(v_component.project_id, p_component_id, 'assign',
        jsonb_build_object('area_id', v_component.area_id, 'system_id', v_component.system_id, 'test_package_id', v_component.test_package_id),
        jsonb_build_object('area_id', v_after.area_id, 'system_id', v_after.system_id, 'test_package_id', v_after.test_package_id), null);
end
$$;

-- Retires a component: it keeps its history and leaves the rollups.
create function pipetrak.retire_component(p_component_id bigint)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_component pipetrak.components;
    v_project_id bigint;
begin
    perform pipetrak.refuse_distributed('retire_component');
    v_component := pipetrak.lock_component(p_component_id, 'manage_project_data');
    v_project_id := v_component.project_id;
    -- A weld leaves the log only with a reason and a weld event (retire_weld, or retire_components
    -- with a reason): this call has no reason to give.
    if v_component.component_type = 'field_weld' then
        perform pipetrak.raise_error('reason_required',
            jsonb_build_object('argument', 'reason', 'why', 'retiring a weld', 'min_length', 10,
                               'use', 'retire_weld(component_id, reason)'));
    end if;
    update pipetrak.components set retired_at = now(), updated_at = now(), version = version + 1 where id = p_component_id;
    -- Nothing is left to review on a retired component.
    perform pipetrak.resolve_items_of(p_component_id, null, 'component retired');
    perform pipetrak.log_component_change(v_project_id, p_component_id, 'retire', '{"retired": false}', '{"retired": true}', null);
end
$$;

-- Recomputes the stored credit of a set of components from their values and current template.
create function pipetrak.recompute_components(p_project_id bigint, p_component_type text)
returns integer
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_count integer;
begin
    with template as (
        select weights, categories from pipetrak.milestone_templates where project_id = p_project_id and component_type = p_component_type
    ), credit as (
        select c.id, c.project_id, e.*
        from pipetrak.components c
        cross join template t
        cross join lateral pipetrak.milestone_credit(t.weights, t.categories,
                   array(select (v * 100)::integer from unnest(c.milestone_values) v)) e
        where c.project_id = p_project_id and c.component_type = p_component_type
    )
    update pipetrak.components c set earned_total = e.earned_total, earned_receive = e.earned_receive,
        earned_install = e.earned_install, earned_punch = e.earned_punch, earned_test = e.earned_test,
        earned_restore = e.earned_restore, version = version + 1, updated_at = now()
    from credit e
    where e.id = c.id and e.project_id = c.project_id and c.project_id = p_project_id
      and (c.earned_total, c.earned_receive, c.earned_install, c.earned_punch, c.earned_test, c.earned_restore)
          is distinct from (e.earned_total, e.earned_receive, e.earned_install, e.earned_punch, e.earned_test, e.earned_restore);
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

-- Re-weights a project's template of one type: p_weights is {"Milestone": weight, …} for every
-- milestone; the sum must stay 100. Existing components are recomputed in the same transaction
-- (with p_recompute false, only allowed while none of them has progress).
create function pipetrak.reweight_template(p_project_id bigint, p_component_type text, p_weights jsonb, p_recompute boolean)
returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_type text := pipetrak.parse_component_type(coalesce(p_component_type, ''));
    v_template pipetrak.milestone_templates;
    v_weights integer[];
    v_problem text;
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_project_data');
    select * into v_template from pipetrak.milestone_templates where project_id = p_project_id and component_type = v_type for update;
    if v_template.project_id is null then
        perform pipetrak.raise_error('unknown_component_type',
            jsonb_build_object('component_type', p_component_type, 'accepted', pipetrak.accepted_component_types()));
    end if;
    if jsonb_typeof(p_weights) is distinct from 'object'
       or exists (select from jsonb_object_keys(p_weights) k where k <> all (v_template.names))
       or exists (select from unnest(v_template.names) n where jsonb_typeof(p_weights -> n) is distinct from 'number'
                                                           or (p_weights ->> n)::numeric <> trunc((p_weights ->> n)::numeric)
                                                           or (p_weights ->> n)::numeric not between 0 and 100) then
        perform pipetrak.raise_error('invalid_template', jsonb_build_object('milestones', to_jsonb(v_template.names),
            'expected', 'an object with an integer weight 0-100 for every milestone'));
    end if;
    v_weights := array(select (p_weights ->> n)::integer from unnest(v_template.names) with ordinality as u(n, i) order by i);
    v_problem := pipetrak.template_problem(v_template.names, v_weights, v_template.is_partial, v_template.categories);
    if v_problem is not null then
        perform pipetrak.raise_error('invalid_template', jsonb_build_object('problem', v_problem));
    end if;
    if not coalesce(p_recompute, true) and exists (
        select from pipetrak.components where project_id = p_project_id and component_type = v_type and earned_total > 0) then
        perform pipetrak.raise_error('template_in_use', jsonb_build_object('component_type', v_type));
    end if;
    update pipetrak.milestone_templates set weights = v_weights, updated_at = now()
    where project_id = p_project_id and component_type = v_type;
    return pipetrak.recompute_components(p_project_id, v_type);
end
$$;
