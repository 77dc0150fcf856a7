-- Component corrections (spec §12): a wrong takeoff line is corrected in place, keeping its
-- history, and every such change lands in an append-only change log — who, when, before, after,
-- reason — as milestone changes land in milestone_events.
--
-- Design notes (decisions where the spec was silent):
-- - One call corrects any of description, spec, attributes (merged: a key set to null is removed),
--   identity (tag = commodity code, spool id or weld number; size; drawing) and type; the log row
--   lists the fields that changed with their values before and after. Unchanged fields are not
--   logged; a correction that changes nothing logs nothing.
-- - Identity: the new identity is checked against the project's live components first
--   (`duplicate_component`, naming the other one). A component moved to another drawing follows
--   that drawing's area, system and test package unless it was assigned on its own. A weld moves
--   drawing only while not welded (as move_weld).
-- - Type: only while the component has no progress (every milestone 0), and never to or from a
--   field weld (a weld has weld facts): retire it and create the right one instead.
-- - Corrections, retirements and restorations need a reason (3 characters or more); assignment
--   changes are logged without one. Bulk calls are all-or-nothing and name the failing item.
-- - Retiring a weld keeps the weld rules (retire_weld: reason of 10 or more, never a repaired one).

create table pipetrak.component_changes (
    id           bigserial,
    project_id   bigint not null,
    component_id bigint not null,
    action       text not null check (action in ('correct', 'retire', 'restore', 'assign')),
    fields       text[] not null,
    before       jsonb not null,
    after        jsonb not null,
    reason       text check (length(reason) <= 2000),
    user_id      uuid not null,
    created_at   timestamptz not null default now(),
    foreign key (project_id, component_id) references pipetrak.components (project_id, id),
    primary key (id, project_id)
);
create index component_changes_component_idx on pipetrak.component_changes (component_id, id);
create index component_changes_project_idx on pipetrak.component_changes (project_id, id);
alter table pipetrak.component_changes enable row level security;
create policy component_changes_select_member on pipetrak.component_changes for select to authenticated
    using (pipetrak.project_visible(project_id));

-- Append-only (see refuse_change).
create trigger component_changes_no_update before update or delete on pipetrak.component_changes
    for each row execute function pipetrak.refuse_change('change_log_immutable');
create trigger component_changes_no_truncate before truncate on pipetrak.component_changes
    for each statement execute function pipetrak.refuse_change('change_log_immutable');

-- Logs the fields of `p_before` whose values `p_after` changes (nothing when none did).
create function pipetrak.log_component_change(p_project_id bigint, p_component_id bigint, p_action text,
                                              p_before jsonb, p_after jsonb, p_reason text)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_fields text[] := array(select k from jsonb_object_keys(p_after) k
                             where p_before -> k is distinct from p_after -> k order by k);
begin
    if cardinality(v_fields) > 0 then
        insert into pipetrak.component_changes (project_id, component_id, action, fields, before, after, reason, user_id)
        values (p_project_id, p_component_id, p_action, v_fields,
                (select jsonb_object_agg(k, p_before -> k) from unnest(v_fields) k),
                (select jsonb_object_agg(k, p_after -> k) from unnest(v_fields) k),
                p_reason, pipetrak.current_user_id());
    end if;
end
$$;

-- Corrects one live component: `p_changes` holds any of description, spec, attributes, tag, size,
-- drawing_id, component_type. Returns the changed fields with their new values. No exception
-- block: a batch runs this for each item inside one subtransaction of its own — a subtransaction
-- per item would overflow the backend's cache of them past 64 and make every later row check of
-- the batch slower (10,000 items took 61 s where 1,000 took 4.7 s).
create function pipetrak.correct_component_for(p_component_id bigint, p_changes jsonb, p_reason text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_old pipetrak.components := pipetrak.lock_component(p_component_id, 'manage_project_data');
    v_reason text := pipetrak.check_reason(p_reason, 3, 'correcting a component');
    v_new pipetrak.components := v_old;
    v_drawing pipetrak.drawings;
    v_template pipetrak.milestone_templates;
    v_other bigint;
    v_before jsonb;
    v_after jsonb;
begin
    perform pipetrak.check_json_size('changes', p_changes, pipetrak.argument_limit('changes'));
    if jsonb_typeof(p_changes) is distinct from 'object' or p_changes = '{}'
       or exists (select from jsonb_object_keys(p_changes) k
                  where k not in ('description', 'spec', 'attributes', 'tag', 'size', 'drawing_id', 'component_type')) then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'changes',
            'expected', 'an object of description, spec, attributes, tag, size, drawing_id, component_type'));
    end if;
    if p_changes ? 'description' then
        v_new.description := nullif(btrim(p_changes ->> 'description'), '');
        perform pipetrak.check_text_length('description', v_new.description, pipetrak.argument_limit('description'));
    end if;
    if p_changes ? 'spec' then
        v_new.spec := nullif(btrim(p_changes ->> 'spec'), '');
        perform pipetrak.check_text_length('spec', v_new.spec, pipetrak.argument_limit('spec'));
    end if;
    if p_changes ? 'attributes' then
        if jsonb_typeof(p_changes -> 'attributes') is distinct from 'object' then
            perform pipetrak.raise_error('invalid_argument', '{"argument": "attributes", "expected": "an object; a key set to null is removed"}');
        end if;
        v_new.attributes := jsonb_strip_nulls(v_old.attributes || (p_changes -> 'attributes'));
        perform pipetrak.check_json_size('attributes', v_new.attributes, pipetrak.argument_limit('attributes'));
    end if;
    if p_changes ? 'tag' then
        v_new.tag := pipetrak.normalize_commodity_code(coalesce(p_changes ->> 'tag', ''));
        if v_new.tag = '' then
            perform pipetrak.raise_error('invalid_argument', '{"argument": "tag", "expected": "the commodity code, spool id, weld number or tag"}');
        end if;
        perform pipetrak.check_text_length('tag', v_new.tag, pipetrak.argument_limit('tag'));
    end if;
    if p_changes ? 'size' then
        v_new.size := pipetrak.normalize_size(coalesce(p_changes ->> 'size', ''));
    end if;
    if p_changes ? 'drawing_id' and jsonb_typeof(p_changes -> 'drawing_id') is distinct from 'number' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "drawing_id", "expected": "a drawing id of the project"}');
    end if;
    if p_changes ? 'drawing_id' and (p_changes ->> 'drawing_id')::bigint is distinct from v_old.drawing_id then
        select * into v_drawing from pipetrak.drawings
        where id = (p_changes ->> 'drawing_id')::bigint and project_id = v_old.project_id and retired_at is null;
        if v_drawing.id is null then
            perform pipetrak.raise_error('drawing_not_found', jsonb_build_object('drawing_id', p_changes -> 'drawing_id'));
        end if;
        if v_old.component_type = 'field_weld'
           and exists (select from pipetrak.field_welds w where w.component_id = p_component_id
                       and (w.welder_id is not null or w.date_welded is not null)) then
            perform pipetrak.raise_error('weld_already_welded', jsonb_build_object('component_id', p_component_id));
        end if;
        v_new.drawing_id := v_drawing.id;
        v_new.area_id := case when v_old.area_pinned then v_old.area_id else v_drawing.area_id end;
        v_new.system_id := case when v_old.system_pinned then v_old.system_id else v_drawing.system_id end;
        v_new.test_package_id := case when v_old.test_package_pinned then v_old.test_package_id else v_drawing.test_package_id end;
    end if;
    if p_changes ? 'component_type' then
        v_new.component_type := pipetrak.parse_component_type(coalesce(p_changes ->> 'component_type', ''));
        if v_new.component_type is null then
            perform pipetrak.raise_error('unknown_component_type',
                jsonb_build_object('component_type', p_changes ->> 'component_type', 'accepted', pipetrak.accepted_component_types()));
        end if;
    end if;
    if v_new.component_type <> v_old.component_type then
        if 'field_weld' in (v_new.component_type, v_old.component_type) then
            perform pipetrak.raise_error('weld_type_change', jsonb_build_object('component_id', p_component_id));
        end if;
        if v_old.earned_total <> 0 or 0 <> any (v_old.milestone_values) then
            perform pipetrak.raise_error('component_has_progress', jsonb_build_object('component_id', p_component_id,
                'percent_complete', v_old.percent_complete));
        end if;
        select * into v_template from pipetrak.milestone_templates
        where project_id = v_old.project_id and component_type = v_new.component_type;
        v_new.milestone_values := array_fill(0::numeric, array[cardinality(v_template.names)]);
        if v_new.component_type <> all (pipetrak.component_types('linear_aggregate')) then
            v_new.quantity := 1;
        end if;
    end if;
    if pipetrak.identity_key(v_new.component_type, v_new.drawing_id, v_new.tag, v_new.size, v_new.seq)
       <> pipetrak.identity_key(v_old.component_type, v_old.drawing_id, v_old.tag, v_old.size, v_old.seq) then
        select c.id into v_other from pipetrak.components c
        where c.project_id = v_old.project_id and c.retired_at is null and c.id <> p_component_id
          and c.identity_key = pipetrak.identity_key(v_new.component_type, v_new.drawing_id, v_new.tag, v_new.size, v_new.seq);
        if v_other is not null then
            perform pipetrak.raise_error('duplicate_component', jsonb_build_object('component_type', v_new.component_type,
                'tag', v_new.tag, 'component_id', v_other));
        end if;
    end if;

    v_before := jsonb_build_object('description', v_old.description, 'spec', v_old.spec, 'attributes', v_old.attributes,
        'tag', v_old.tag, 'size', v_old.size, 'drawing_id', v_old.drawing_id, 'component_type', v_old.component_type,
        'area_id', v_old.area_id, 'system_id', v_old.system_id, 'test_package_id', v_old.test_package_id);
    v_after := jsonb_build_object('description', v_new.description, 'spec', v_new.spec, 'attributes', v_new.attributes,
        'tag', v_new.tag, 'size', v_new.size, 'drawing_id', v_new.drawing_id, 'component_type', v_new.component_type,
        'area_id', v_new.area_id, 'system_id', v_new.system_id, 'test_package_id', v_new.test_package_id);
    if v_before = v_after then
        return '{}';
    end if;
    update pipetrak.components set description = v_new.description, spec = v_new.spec, attributes = v_new.attributes,
        tag = v_new.tag, size = v_new.size, drawing_id = v_new.drawing_id, component_type = v_new.component_type,
        milestone_values = v_new.milestone_values, quantity = v_new.quantity, area_id = v_new.area_id,
        system_id = v_new.system_id, test_package_id = v_new.test_package_id, updated_at = now(), version = version + 1
    where id = p_component_id;
    perform pipetrak.log_component_change(v_old.project_id, p_component_id, 'correct', v_before, v_after, v_reason);
    return (select jsonb_object_agg(k, v_after -> k) from jsonb_object_keys(v_after) k where v_before -> k is distinct from v_after -> k);
end
$$;

-- One correction (the API's): as correct_component_for, a concurrent correction or import that
-- took the identity between the check and the update said as duplicate_component.
create function pipetrak.correct_component(p_component_id bigint, p_changes jsonb, p_reason text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.refuse_distributed('correct_component');
    perform pipetrak.require_user();
    return pipetrak.correct_component_for(p_component_id, p_changes, p_reason);
exception when unique_violation then
    perform pipetrak.raise_error('duplicate_component', jsonb_build_object('component_id', p_component_id));
end
$$;

-- Retires a live component with a reason (a weld by the weld rules).
create function pipetrak.retire_component_for(p_component_id bigint, p_reason text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_component pipetrak.components;
    v_reason text;
begin
    perform pipetrak.refuse_distributed('retire_component_for');
    v_component := pipetrak.lock_component(p_component_id, 'manage_project_data');
    v_reason := pipetrak.check_reason(p_reason, 3, 'retiring a component');
    if v_component.component_type = 'field_weld' then
        perform pipetrak.retire_weld(p_component_id, p_reason);
    else
        update pipetrak.components set retired_at = now(), updated_at = now(), version = version + 1 where id = p_component_id;
        perform pipetrak.resolve_items_of(p_component_id, null, 'component retired');
    end if;
    perform pipetrak.log_component_change(v_component.project_id, p_component_id, 'retire',
        '{"retired": false}', '{"retired": true}', v_reason);
end
$$;

-- Brings a retired component back into its project (and the rollups), unless a live component has
-- taken its identity meanwhile, its drawing is retired, or it is a repaired weld.
create function pipetrak.restore_component(p_component_id bigint, p_reason text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint;
    v_component pipetrak.components;
    v_reason text;
    v_other bigint;
begin
    perform pipetrak.refuse_distributed('restore_component');
    select c.project_id into v_project_id from pipetrak.components c where c.id = p_component_id;
    if v_project_id is null or v_project_id not in (select pipetrak.my_project_ids()) then
        perform pipetrak.raise_error('component_not_found', jsonb_build_object('component_id', p_component_id));
    end if;
    perform pipetrak.require_project_role(v_project_id, 'manage_project_data');
    select * into v_component from pipetrak.components where id = p_component_id for update;
    if v_component.retired_at is null then
        perform pipetrak.raise_error('component_not_retired', jsonb_build_object('component_id', p_component_id));
    end if;
    v_reason := pipetrak.check_reason(p_reason, 3, 'restoring a component');
    -- A repaired weld stays retired: the joint counts once, as its repair (spec §7.5).
    if exists (select from pipetrak.field_welds f where f.component_id = p_component_id and f.repaired_by is not null) then
        perform pipetrak.raise_error('weld_has_repair', jsonb_build_object('component_id', p_component_id,
            'repair_id', (select f.repaired_by from pipetrak.field_welds f where f.component_id = p_component_id)));
    end if;
    if exists (select from pipetrak.drawings d where d.id = v_component.drawing_id and d.retired_at is not null) then
        perform pipetrak.raise_error('drawing_not_found', jsonb_build_object('drawing_id', v_component.drawing_id, 'retired', true));
    end if;
    select c.id into v_other from pipetrak.components c
    where c.project_id = v_component.project_id and c.retired_at is null and c.identity_key = v_component.identity_key;
    if v_other is not null then
        perform pipetrak.raise_error('duplicate_component', jsonb_build_object('component_type', v_component.component_type,
            'tag', v_component.tag, 'component_id', v_other));
    end if;
    update pipetrak.components set retired_at = null, updated_at = now(), version = version + 1 where id = p_component_id;
    perform pipetrak.log_component_change(v_component.project_id, p_component_id, 'restore',
        '{"retired": true}', '{"retired": false}', v_reason);
end
$$;

-- Runs `p_action` (correct, retire, restore) over a batch, all-or-nothing: a failure keeps its
-- SQLSTATE and names the item's index and component id. Each item's function checks the caller's
-- role (from the request's claims); it runs as the extension so that its own refusals (a batch too
-- large, an item without an id) are the catalogued errors, not a permission error on raise_error.
create function pipetrak.component_batch(p_action text, p_items jsonb, p_reason text)
returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_item jsonb;
    v_index integer := 0;
    v_id bigint;
    v_state text;
    v_message text;
    v_detail text;
    v_hint text;
    v_ids bigint[];
    v_retired bigint[];
begin
    perform pipetrak.refuse_distributed('component_batch');
    -- A signed-in caller first; each item's function checks their role in its project.
    perform pipetrak.require_user();
    if jsonb_typeof(p_items) is distinct from 'array' then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'items', 'expected', 'an array'));
    elsif jsonb_array_length(p_items) > pipetrak.max_batch_items() then
        perform pipetrak.raise_error('batch_too_large', jsonb_build_object('items', jsonb_array_length(p_items), 'limit', pipetrak.max_batch_items()));
    end if;
    -- The batch's components leave the progress parts now and come back once at the end, and the
    -- history takes its retirements and restorations once too (see progress_deferred): one upsert
    -- of a part's row per item made a batch quadratic in its size. Only components the caller may
    -- change; any other fails its item.
    select coalesce(array_agg(x.id), '{}') into v_ids
    from (select c.id from pipetrak.components c
          where c.id in (select case when jsonb_typeof(x) = 'number' and x::text ~ '^[0-9]{1,18}$' then x::text::bigint
                                     when jsonb_typeof(x -> 'component_id') = 'number' and (x ->> 'component_id') ~ '^[0-9]{1,18}$'
                                     then (x ->> 'component_id')::bigint end
                         from jsonb_array_elements(p_items) x)
            and c.project_id in (select pipetrak.my_project_ids('manage_project_data'))
          order by c.id
          for no key update) x;
    perform pipetrak.take_due_snapshots(p.id, null)
    from (select distinct c.project_id as id from pipetrak.components c where c.id = any (v_ids) order by 1) p;
    v_retired := array(select c.id from pipetrak.components c where c.id = any (v_ids) and c.retired_at is not null order by c.id);
    perform pipetrak.progress_parts_add(-1, v_ids);
    perform pipetrak.progress_defer(false);
    begin
        for v_item in select value from jsonb_array_elements(p_items) loop
            v_id := case when jsonb_typeof(v_item) = 'number' and v_item::text ~ '^[0-9]{1,18}$' then v_item::text::bigint
                         when jsonb_typeof(v_item -> 'component_id') = 'number' and (v_item ->> 'component_id') ~ '^[0-9]{1,18}$'
                         then (v_item ->> 'component_id')::bigint end;
            if v_id is null then
                perform pipetrak.raise_error('invalid_argument', '{"argument": "items", "expected": "component ids, or objects with a component_id"}');
            end if;
            case p_action
                when 'correct' then perform pipetrak.correct_component_for(v_id, v_item - 'component_id' - 'reason',
                                                                           coalesce(v_item ->> 'reason', p_reason));
                when 'retire' then perform pipetrak.retire_component_for(v_id, p_reason);
                when 'restore' then perform pipetrak.restore_component(v_id, p_reason);
            end case;
            v_index := v_index + 1;
        end loop;
    exception when others then
        get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail, v_hint = pg_exception_hint;
        -- A concurrent writer took an identity between an item's check and its update.
        if v_state = '23505' then
            select e.sqlstate, e.message, '{"code": "duplicate_component"}', e.hint into v_state, v_message, v_detail, v_hint
            from pipetrak.error_codes e where e.code = 'duplicate_component';
        end if;
        raise exception using errcode = v_state, message = format('item %s (component %s): %s', v_index, v_id, v_message),
            detail = (case when v_detail ~ '^\{' then v_detail::jsonb else jsonb_build_object('code', 'invalid_argument', 'error', v_message) end
                      || jsonb_build_object('index', v_index, 'component_id', v_id))::text,
            hint = coalesce(nullif(v_hint, ''), 'Fix the item at that index and send the batch again.');
    end;
    perform pipetrak.progress_resume();
    perform pipetrak.progress_parts_add(1, v_ids);
    perform pipetrak.progress_days_scope(-1, array(select c.id from pipetrak.components c
                                                   where c.id = any (v_ids) and c.retired_at is not null and c.id <> all (v_retired)), null);
    perform pipetrak.progress_days_scope(1, array(select c.id from pipetrak.components c
                                                  where c.id = any (v_retired) and c.retired_at is null), null);
    return v_index;
end
$$;

-- ---- API ----

create view pipetrak_api.component_changes with (security_invoker = true) as
select ch.id, ch.project_id, ch.component_id, ch.action, ch.fields, ch.before, ch.after, ch.reason, ch.user_id,
       p.display_name as user_name, ch.created_at
from pipetrak.component_changes ch
left join pipetrak.user_profiles p on p.user_id = ch.user_id;
comment on view pipetrak_api.component_changes is
    'The append-only change log of components beside their milestones: corrections, retirements, restorations and assignments, with who, when, the fields before and after, and the reason.';

create function pipetrak_api.correct_component(component_id bigint, changes jsonb, reason text)
returns jsonb language sql volatile
as $$ select pipetrak.correct_component(component_id, pipetrak.limited('changes', changes), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.correct_component(bigint, jsonb, text) is
    'Corrects a component in place, keeping its history: changes is {description?, spec?, attributes? (merged; null removes a key), tag?, size?, drawing_id?, component_type? (only without progress)}. Returns the fields changed; logged with the reason.';

create function pipetrak_api.correct_components(corrections jsonb, reason text)
returns integer language sql volatile
as $$ select pipetrak.component_batch('correct', pipetrak.limited('corrections', corrections), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.correct_components(jsonb, text) is
    'Corrects many components at once, all or nothing: an array of {component_id, …changes, reason?}; a failure names the item. Returns how many.';

create function pipetrak_api.retire_components(component_ids bigint[], reason text)
returns integer language sql volatile
as $$ select pipetrak.component_batch('retire', to_jsonb(pipetrak.limited('component_ids', component_ids)), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.retire_components(bigint[], text) is
    'Retires components with a reason, all or nothing (welds by the weld rules): they keep their history and leave the rollups. Returns how many.';

create function pipetrak_api.restore_components(component_ids bigint[], reason text)
returns integer language sql volatile
as $$ select pipetrak.component_batch('restore', to_jsonb(pipetrak.limited('component_ids', component_ids)), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.restore_components(bigint[], text) is
    'Brings retired components back, with a reason, all or nothing; refused when a live component has taken the identity. Returns how many.';
