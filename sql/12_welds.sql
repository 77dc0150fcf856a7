-- Field welds and QC (spec §7): welders, NDE results and the weld's status, the weld's history.
--
-- Design notes (decisions where the spec was silent):
-- - Welds — NDE. Results are append-only (`nde_results`): recording a method again supersedes its
--   previous record and needs a reason; clearing a method is a superseding record without a result,
--   with a reason. A method's current result is its latest record (none when that one clears it).
--   NDE is recorded only on a welded weld (welder and date welded set) and on a date no later than
--   today in the project's time zone; it never changes milestone credit.
-- - Welds — status. `rejected` when any current result is FAIL, `accepted` when every required
--   method has a current PASS (no required method: the latest current result decides), else
--   `active`; the required methods are the weld's listed NDE types, plus RT for an x-ray tier above
--   0 (§7: "a given x-ray % implies RT"). The rule is Rust (`domain::weld`), kept on the weld row
--   (`field_welds.status`) whenever a result is recorded, so reports read it without recomputing.
-- - Welds — history. Every change to weld facts made here writes a `weld_events` row (who, when,
--   action, before, after, reason); neither NDE results nor weld events can be changed or deleted.
--   Recording NDE resolves the weld's open `weld_completed` review item. An examination is dated
--   no earlier than the weld was welded.
-- - Welders. Foreman and up create welders (unverified, like an import's unknown stencils); QC
--   inspector and up rename and verify them. Stencils are normalized and unique per project.
-- - Who records NDE: QC inspector, project manager, admin, owner (`quality_control`).
-- - QC queue. Review items are open, resolved or dismissed (QC and up; dismissing needs a note).
--   They resolve themselves when what they ask for happens: recording NDE resolves the weld's
--   "weld completed" item, retiring a component resolves all of its items, and repairing a weld
--   resolves its own items but not a call for tracers, which stays open until they are examined. `qc_queue` lists the open items of your projects with what QC needs to find the joint.
-- - Welds — unplanned and repairs. A foreman and up add an unplanned weld (number, drawing, type,
--   size, spec and a note; x-ray tier 5 % unless given). A rejected weld gets a repair `<n>.<k>`
--   (k counts the whole chain from the original number: the repair of `W-12.1` is `W-12.2`), on
--   the same drawing and assignments, with its facts and tier, Fit-up at 100; a chain stops at 10
--   repairs. The rejected weld then leaves the rollups by being retired (its history, NDE and
--   events stay; the joint counts once, as the repair): a weld with a repair takes no more changes
--   (`weld_has_repair`), so it can't be retired and its FAIL can't be superseded. The repair
--   carries the rejected weld's examination duty: it lists every method the weld required and
--   each that failed it, whatever its tier, so it is accepted — and ready for its package, and
--   its lot's progression closed — only once it passes them itself. A weld log import may add
--   methods to a repair, never take its duty away.
-- - Welds — welder and date. Editing the welder or date of a welded weld keeps its milestones and
--   logs the change with a reason; clearing them (un-welding) needs a reason, lowers Weld Complete
--   to 0 through the milestone engine, and is refused while the weld has a current NDE result.
--   Foreman and up (`manage_welds`).
-- - Welds — retire and move. Retiring a weld needs a reason of at least 10 characters; moving one
--   to another live drawing of its project is refused once it is welded and when that drawing has
--   a weld of the same number. Owner, admin, project manager (`manage_project_data`), like
--   retiring any component.

create table pipetrak.nde_results (
    id            bigserial,
    project_id    bigint not null,
    component_id  bigint not null,
    method        text not null check (method in ('RT', 'UT', 'PT', 'MT', 'VT')),
    -- Null: the record clears the method's result.
    result        text check (result in ('PASS', 'FAIL', 'PENDING')),
    examined_on   date,
    report_number text check (length(report_number) <= 100),
    notes         text check (length(notes) <= 2000),
    -- The record it supersedes (the method's previous one) and why. No foreign key: a table that
    -- references itself can't be ordered for pg_dump's data-only dump of extension tables.
    supersedes    bigint,
    reason        text check (length(reason) <= 2000),
    recorded_by   uuid not null,
    recorded_at   timestamptz not null default now(),
    check (supersedes is null or reason is not null),
    foreign key (project_id, component_id) references pipetrak.components (project_id, id),
    primary key (id, project_id)
);
create index nde_results_component_idx on pipetrak.nde_results (component_id, method, id);
create index nde_results_project_idx on pipetrak.nde_results (project_id, id);

create table pipetrak.weld_events (
    id           bigserial,
    project_id   bigint not null,
    component_id bigint not null,
    action       text not null,
    before       jsonb not null default '{}',
    after        jsonb not null default '{}',
    reason       text,
    actor        uuid not null,
    created_at   timestamptz not null default now(),
    foreign key (project_id, component_id) references pipetrak.components (project_id, id),
    primary key (id, project_id)
);
create index weld_events_component_idx on pipetrak.weld_events (component_id, id);
create index weld_events_project_idx on pipetrak.weld_events (project_id, id);

alter table pipetrak.nde_results enable row level security;
alter table pipetrak.weld_events enable row level security;
create policy nde_results_select_member on pipetrak.nde_results for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy weld_events_select_member on pipetrak.weld_events for select to authenticated
    using (pipetrak.project_visible(project_id));

-- The weld's records are append-only (see refuse_change).
create trigger nde_results_no_update before update or delete on pipetrak.nde_results
    for each row execute function pipetrak.refuse_change('weld_record_immutable');
create trigger nde_results_no_truncate before truncate on pipetrak.nde_results
    for each statement execute function pipetrak.refuse_change('weld_record_immutable');
create trigger weld_events_no_update before update or delete on pipetrak.weld_events
    for each row execute function pipetrak.refuse_change('weld_record_immutable');
create trigger weld_events_no_truncate before truncate on pipetrak.weld_events
    for each statement execute function pipetrak.refuse_change('weld_record_immutable');

-- Resolves a component's open review items (of one kind, or all when `p_kind` is null): what they
-- asked for happened.
create function pipetrak.resolve_items_of(p_component_id bigint, p_kind text, p_note text)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    -- The caller and the component's project first: on Citus the update then runs on the
    -- project's shard, with the caller as a value (it refuses a function of the claims there).
    v_user uuid := pipetrak.current_user_id();
    v_project bigint := pipetrak.component_project(p_component_id);
    v_resolved bigint[];
begin
    with resolved as (
        update pipetrak.review_items set status = 'resolved', resolved_at = now(), resolved_by = v_user,
            resolution_note = p_note
        where component_id = p_component_id and project_id = v_project and status = 'open' and (p_kind is null or kind = p_kind)
        returning id)
    select array_agg(id) into v_resolved from resolved;
    -- On Citus the change is announced from here (the shard's triggers can't).
    perform pipetrak.queue_change(v_project, 'review_items', coalesce(v_resolved, '{}'));
end
$$;

-- The weld's current result for one method (null when it has none), as write_nde keeps it.
create function pipetrak.weld_current_result(p_component_id bigint, p_method text)
returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select f.current_nde ->> p_method from pipetrak.field_welds f where f.component_id = p_component_id
$$;

-- What a weld's NDE records make of it, in one pass over them: its status (see the design notes),
-- its current result per method ({"RT": "PASS", …}) and its first and last examination dates —
-- those of its current results: a superseded record was corrected (its date with it) and a
-- cleared method was not examined, so neither dates the weld's examination. Read by the weld's
-- project too: on Citus, on its shard.
create function pipetrak.weld_nde_state(p_component_id bigint, p_project_id bigint)
returns table (status text, current_nde jsonb, first_examined_on date, last_examined_on date)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    with latest as (
        select distinct on (n.method) n.id, n.method, n.result, n.examined_on
        from pipetrak.nde_results n
        where n.component_id = p_component_id and n.project_id = p_project_id
        order by n.method, n.id desc),
    examined as (
        select min(c.examined_on) as first_on, max(c.examined_on) as last_on
        from latest c
        where c.result is not null)
    select pipetrak.weld_status(w.nde_types, w.xray_percent,
               coalesce((select array_agg(c.method order by c.id) from latest c where c.result is not null), '{}'),
               coalesce((select array_agg(c.result order by c.id) from latest c where c.result is not null), '{}')),
           coalesce((select jsonb_object_agg(c.method, c.result) from latest c where c.result is not null), '{}'),
           e.first_on, e.last_on
    from pipetrak.field_welds w cross join examined e
    where w.component_id = p_component_id and w.project_id = p_project_id;
end
$$;

-- The weld (locked, checked for `p_permission`) and its facts; refuses what is not a field weld,
-- and a weld that has a repair (it takes no more changes).
create function pipetrak.lock_weld(p_component_id bigint, p_permission text)
returns pipetrak.field_welds
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_component pipetrak.components;
    v_weld pipetrak.field_welds;
    v_repaired_by bigint;
    v_project_id bigint;
begin
    -- A repaired weld is retired: say it has a repair (to a member) rather than that it is retired.
    v_project_id := pipetrak.component_project(p_component_id);
    select f.repaired_by into v_repaired_by from pipetrak.field_welds f where f.component_id = p_component_id and f.project_id = v_project_id;
    if v_repaired_by is not null then
        if v_project_id in (select pipetrak.my_project_ids()) then
            perform pipetrak.require_project_role(v_project_id, p_permission);
            perform pipetrak.raise_error('weld_has_repair', jsonb_build_object('component_id', p_component_id, 'repair_id', v_repaired_by));
        end if;
    end if;
    v_component := pipetrak.lock_component(p_component_id, p_permission);
    select * into v_weld from pipetrak.field_welds where component_id = v_component.id and project_id = v_component.project_id;
    if v_component.component_type <> 'field_weld' or v_weld.component_id is null then
        perform pipetrak.raise_error('not_a_field_weld', jsonb_build_object('component_id', p_component_id));
    end if;
    -- On Citus the change is announced from here (queue_change; the shard's triggers can't).
    perform pipetrak.queue_change(v_component.project_id, 'welds', array[p_component_id]);
    return v_weld;
end
$$;

-- Writes an NDE record for one method of a weld, superseding the method's previous record, and
-- keeps the weld's status, history and review items in step. `p_result` null clears the method.
create function pipetrak.write_nde(p_component_id bigint, p_method text, p_result text, p_examined_on date,
                                   p_report_number text, p_notes text, p_reason text)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_weld pipetrak.field_welds := pipetrak.lock_weld(p_component_id, 'quality_control');
    v_method text := upper(btrim(coalesce(p_method, '')));
    v_result text := upper(btrim(p_result));
    v_today date;
    v_previous pipetrak.nde_results;
    v_record_id bigint;
    v_status text;
begin
    if v_method <> all (pipetrak.vocabulary('nde_method')) or v_result <> all (pipetrak.vocabulary('nde_result')) then
        perform pipetrak.raise_error('invalid_nde', jsonb_build_object('method', p_method, 'result', p_result));
    end if;
    if v_weld.welder_id is null or v_weld.date_welded is null then
        perform pipetrak.raise_error('weld_not_welded', jsonb_build_object('component_id', p_component_id));
    end if;
    select (now() at time zone p.time_zone)::date into v_today from pipetrak.projects p where p.id = v_weld.project_id;
    perform pipetrak.check_date('examined_on', p_examined_on);
    if coalesce(p_examined_on, v_today) > v_today then
        perform pipetrak.raise_error('work_date_in_future', jsonb_build_object('examined_on', p_examined_on, 'today', v_today));
    end if;
    if coalesce(p_examined_on, v_today) < v_weld.date_welded then
        perform pipetrak.raise_error('nde_before_welded', jsonb_build_object('examined_on', coalesce(p_examined_on, v_today),
                                                                              'date_welded', v_weld.date_welded));
    end if;
    perform pipetrak.check_text_length('report_number', p_report_number, pipetrak.argument_limit('report_number'));
    perform pipetrak.check_text_length('notes', p_notes, pipetrak.argument_limit('notes'));
    perform pipetrak.check_text_length('reason', p_reason, pipetrak.argument_limit('reason'));
    select * into v_previous from pipetrak.nde_results
    where component_id = p_component_id and project_id = v_weld.project_id and method = v_method order by id desc limit 1;
    if v_result is null and v_previous.result is null then
        perform pipetrak.raise_error('nde_not_recorded', jsonb_build_object('component_id', p_component_id, 'method', v_method));
    end if;
    if v_previous.id is not null or v_result is null then
        perform pipetrak.check_reason(p_reason, 3,
            case when v_result is null then 'clearing a result' else 'superseding the previous result' end);
    end if;
    insert into pipetrak.nde_results (project_id, component_id, method, result, examined_on, report_number, notes,
                                      supersedes, reason, recorded_by)
    values (v_weld.project_id, p_component_id, v_method, v_result, coalesce(p_examined_on, v_today), p_report_number,
            p_notes, v_previous.id, nullif(btrim(coalesce(p_reason, '')), ''), pipetrak.current_user_id())
    returning id into v_record_id;
    update pipetrak.field_welds f
    set status = n.status, nde_result = coalesce(v_result, nde_result), nde_date = coalesce(p_examined_on, v_today),
        current_nde = n.current_nde, first_examined_on = n.first_examined_on, last_examined_on = n.last_examined_on,
        updated_at = now()
    from pipetrak.weld_nde_state(p_component_id, v_weld.project_id) n
    where f.component_id = p_component_id and f.project_id = v_weld.project_id
    returning f.status into v_status;
    insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
    values (v_weld.project_id, p_component_id, case when v_result is null then 'nde_cleared' else 'nde_recorded' end,
            jsonb_build_object('method', v_method, 'result', v_previous.result, 'status', v_weld.status),
            jsonb_build_object('method', v_method, 'result', v_result, 'status', v_status, 'nde_result_id', v_record_id),
            nullif(btrim(coalesce(p_reason, '')), ''), pipetrak.current_user_id());
    if v_result is not null then
        perform pipetrak.resolve_items_of(p_component_id, 'weld_completed', format('NDE recorded: %s %s', v_method, v_result));
    end if;
    -- X-ray sampling: a FAIL calls for tracers; an examination may complete a call.
    if v_method = 'RT' and v_result in ('PASS', 'FAIL') then
        if v_result = 'FAIL' then
            perform pipetrak.call_examinations(p_component_id);
        end if;
        perform pipetrak.resolve_examination_calls(p_component_id);
    end if;
    return jsonb_build_object('component_id', p_component_id, 'method', v_method, 'result', v_result,
                              'status', v_status, 'nde_result_id', v_record_id);
end
$$;

-- Records an NDE result of a weld as a QC inspector (see write_nde); the API's record_nde.
create function pipetrak.record_nde(p_component_id bigint, p_method text, p_result text, p_examined_on date,
                                    p_report_number text, p_notes text, p_reason text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_result is null then
        perform pipetrak.raise_error('invalid_nde', jsonb_build_object('method', p_method, 'result', null));
    end if;
    return pipetrak.write_nde(p_component_id, p_method, p_result, p_examined_on, p_report_number, p_notes, p_reason);
end
$$;

-- Clears a weld's result of one method, with a reason (see write_nde); the API's clear_nde.
create function pipetrak.clear_nde(p_component_id bigint, p_method text, p_reason text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.refuse_distributed('clear_nde');
    return pipetrak.write_nde(p_component_id, p_method, null, null, null, null, p_reason);
end
$$;

-- A reason given for a change to a weld: at least `p_min` characters.
create function pipetrak.check_reason(p_reason text, p_min integer, p_why text)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if length(btrim(coalesce(p_reason, ''))) < p_min then
        perform pipetrak.raise_error('reason_required', jsonb_build_object('argument', 'reason', 'why', p_why, 'min_length', p_min));
    end if;
    perform pipetrak.check_text_length('reason', p_reason, pipetrak.argument_limit('reason'));
    return btrim(p_reason);
end
$$;

-- Changes the welder and/or date welded of a welded weld, keeping its milestones.
create function pipetrak.edit_welder(p_component_id bigint, p_stencil text, p_date_welded date, p_reason text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_weld pipetrak.field_welds;
    v_reason text;
    v_stencil text;
    v_welder_id bigint;
    v_today date;
begin
    perform pipetrak.refuse_distributed('edit_welder');
    v_weld := pipetrak.lock_weld(p_component_id, 'manage_welds');
    v_reason := pipetrak.check_reason(p_reason, 3, 'changing the welder or date of a welded weld');
    v_welder_id := v_weld.welder_id;
    if v_weld.welder_id is null or v_weld.date_welded is null then
        perform pipetrak.raise_error('weld_not_welded', jsonb_build_object('component_id', p_component_id));
    end if;
    if p_stencil is not null then
        v_stencil := pipetrak.normalize_stencil(p_stencil);
        if v_stencil is null then
            perform pipetrak.raise_error('invalid_stencil', jsonb_build_object('stencil', p_stencil));
        end if;
        insert into pipetrak.welders (project_id, stencil) values (v_weld.project_id, v_stencil)
        on conflict (project_id, stencil) do update set stencil = excluded.stencil
        returning id into v_welder_id;
    end if;
    perform pipetrak.check_date('date_welded', p_date_welded);
    select (now() at time zone p.time_zone)::date into v_today from pipetrak.projects p where p.id = v_weld.project_id;
    if p_date_welded > v_today then
        perform pipetrak.raise_error('work_date_in_future', jsonb_build_object('date_welded', p_date_welded, 'today', v_today));
    end if;
    update pipetrak.field_welds
    set welder_id = v_welder_id, date_welded = coalesce(p_date_welded, date_welded), updated_at = now()
    where component_id = p_component_id;
    insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
    values (v_weld.project_id, p_component_id, 'welder_edited',
            jsonb_build_object('welder', (select stencil from pipetrak.welders where id = v_weld.welder_id), 'date_welded', v_weld.date_welded),
            jsonb_build_object('welder', (select stencil from pipetrak.welders where id = v_welder_id),
                               'date_welded', coalesce(p_date_welded, v_weld.date_welded)),
            v_reason, pipetrak.current_user_id());
    return jsonb_build_object('component_id', p_component_id, 'welder_id', v_welder_id,
                              'date_welded', coalesce(p_date_welded, v_weld.date_welded));
end
$$;

-- Un-welds a weld: clears its welder and date and lowers Weld Complete to 0 (refused while it
-- has a current NDE result).
create function pipetrak.clear_welder(p_component_id bigint, p_reason text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_weld pipetrak.field_welds;
    v_reason text;
    v_result jsonb;
begin
    perform pipetrak.refuse_distributed('clear_welder');
    v_weld := pipetrak.lock_weld(p_component_id, 'manage_welds');
    v_reason := pipetrak.check_reason(p_reason, 3, 'un-welding a weld');
    if v_weld.welder_id is null and v_weld.date_welded is null then
        perform pipetrak.raise_error('weld_not_welded', jsonb_build_object('component_id', p_component_id));
    end if;
    if v_weld.current_nde <> '{}' then
        perform pipetrak.raise_error('weld_has_nde', jsonb_build_object('component_id', p_component_id));
    end if;
    v_result := pipetrak.update_milestone(p_component_id, 'Weld Complete', 0, null, v_reason, null, null);
    update pipetrak.field_welds set welder_id = null, date_welded = null, updated_at = now() where component_id = p_component_id;
    insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
    values (v_weld.project_id, p_component_id, 'welder_cleared',
            jsonb_build_object('welder', (select stencil from pipetrak.welders where id = v_weld.welder_id), 'date_welded', v_weld.date_welded),
            '{}', v_reason, pipetrak.current_user_id());
    return v_result;
end
$$;

-- Retires a weld with a reason (at least 10 characters).
create function pipetrak.retire_weld(p_component_id bigint, p_reason text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_weld pipetrak.field_welds;
    v_reason text;
begin
    perform pipetrak.refuse_distributed('retire_weld');
    v_weld := pipetrak.lock_weld(p_component_id, 'manage_project_data');
    v_reason := pipetrak.check_reason(p_reason, 10, 'retiring a weld');
    update pipetrak.components set retired_at = now(), updated_at = now(), version = version + 1 where id = p_component_id;
    perform pipetrak.resolve_items_of(p_component_id, null, 'weld retired');
    insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
    values (v_weld.project_id, p_component_id, 'retired', '{}', '{}', v_reason, pipetrak.current_user_id());
end
$$;

-- Moves a weld not yet welded to another live drawing of its project that has no weld of its number.
create function pipetrak.move_weld(p_component_id bigint, p_drawing_id bigint, p_reason text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_weld pipetrak.field_welds;
    v_component pipetrak.components;
    v_drawing pipetrak.drawings;
begin
    perform pipetrak.refuse_distributed('move_weld');
    v_weld := pipetrak.lock_weld(p_component_id, 'manage_project_data');
    select * into v_component from pipetrak.components where id = p_component_id;
    select * into v_drawing from pipetrak.drawings
    where id = p_drawing_id and project_id = v_component.project_id and retired_at is null;
    if v_drawing.id is null then
        perform pipetrak.raise_error('drawing_not_found', jsonb_build_object('drawing_id', p_drawing_id));
    end if;
    if v_weld.welder_id is not null or v_weld.date_welded is not null then
        perform pipetrak.raise_error('weld_already_welded', jsonb_build_object('component_id', p_component_id));
    end if;
    if exists (select from pipetrak.components c where c.project_id = v_component.project_id and c.retired_at is null
               and c.identity_key = pipetrak.identity_key('field_weld', p_drawing_id, v_component.tag, null, 1)) then
        perform pipetrak.raise_error('duplicate_component', jsonb_build_object('component_type', 'field_weld',
            'tag', v_component.tag, 'drawing_id', p_drawing_id));
    end if;
    update pipetrak.components set drawing_id = v_drawing.id,
        area_id = case when area_pinned then area_id else v_drawing.area_id end,
        system_id = case when system_pinned then system_id else v_drawing.system_id end,
        test_package_id = case when test_package_pinned then test_package_id else v_drawing.test_package_id end,
        updated_at = now(), version = version + 1
    where id = p_component_id;
    insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
    values (v_weld.project_id, p_component_id, 'moved', jsonb_build_object('drawing_id', v_component.drawing_id),
            jsonb_build_object('drawing_id', v_drawing.id), nullif(btrim(coalesce(p_reason, '')), ''), pipetrak.current_user_id());
end
$$;

-- Adds a weld found in the field (not in the weld log): number, drawing, type, size, spec and a
-- note required; x-ray tier 5 % unless given.
create function pipetrak.create_unplanned_weld(p_project_id bigint, p_drawing_id bigint, p_weld_number text, p_weld_type text,
                                               p_size text, p_spec text, p_note text, p_xray_percent integer)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_note text;
    v_type text := upper(btrim(coalesce(p_weld_type, '')));
    v_id bigint;
    v_tag text;
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_welds');
    -- On Citus the weeks due are frozen from here, before the write (the shard's triggers can't).
    perform pipetrak.freeze_due_weeks_here(p_project_id);
    v_note := pipetrak.check_reason(p_note, 3, 'adding an unplanned weld');
    if v_type <> all (pipetrak.vocabulary('weld_type')) then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'weld_type', 'expected', 'one of ' || array_to_string(pipetrak.vocabulary('weld_type'), ', ')));
    end if;
    if btrim(coalesce(p_size, '')) = '' or btrim(coalesce(p_spec, '')) = '' then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', case when btrim(coalesce(p_size, '')) = '' then 'size' else 'spec' end,
            'expected', 'the weld''s size and spec'));
    end if;
    if coalesce(p_xray_percent, 5) not in (0, 5, 10, 100) then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'xray_percent', 'expected', '0, 5, 10 or 100'));
    end if;
    perform pipetrak.check_text_length('spec', p_spec, pipetrak.argument_limit('spec'));
    -- As someone allowed to add welds (foreman and up) rather than components (project manager and up).
    v_id := (pipetrak.insert_weld(p_project_id, p_drawing_id, p_weld_number, p_size, p_spec) ->> 'id')::bigint;
    update pipetrak.field_welds
    set weld_type = v_type, weld_size = btrim(p_size), spec = btrim(p_spec), xray_percent = coalesce(p_xray_percent, 5),
        unplanned = true, unplanned_note = v_note, updated_at = now()
    where component_id = v_id and project_id = p_project_id;
    -- The weld number first: Citus refuses a subquery in an INSERT's values.
    select tag into v_tag from pipetrak.components where id = v_id and project_id = p_project_id;
    insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
    values (p_project_id, v_id, 'created_unplanned', '{}', jsonb_build_object('weld_number', v_tag, 'drawing_id', p_drawing_id),
            v_note, pipetrak.current_user_id());
    return v_id;
end
$$;

-- A new weld component with its facts row, on a live drawing of the project, refusing a number the
-- drawing already has. Returns {"id"}.
create function pipetrak.insert_weld(p_project_id bigint, p_drawing_id bigint, p_weld_number text, p_size text, p_spec text)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_drawing pipetrak.drawings;
    v_tag text := pipetrak.normalize_commodity_code(coalesce(p_weld_number, ''));
    v_names text[];
    v_id bigint;
begin
    if v_tag = '' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "weld_number", "expected": "the weld number"}');
    end if;
    perform pipetrak.check_text_length('weld_number', v_tag, pipetrak.argument_limit('weld_number'));
    select * into v_drawing from pipetrak.drawings where id = p_drawing_id and project_id = p_project_id and retired_at is null;
    if v_drawing.id is null then
        perform pipetrak.raise_error('drawing_not_found', jsonb_build_object('drawing_id', p_drawing_id));
    end if;
    select m.names into v_names from pipetrak.milestone_templates m where m.project_id = p_project_id and m.component_type = 'field_weld';
    insert into pipetrak.components (project_id, drawing_id, component_type, tag, size, spec, area_id, system_id,
                                     test_package_id, milestone_values)
    values (p_project_id, p_drawing_id, 'field_weld', v_tag, pipetrak.normalize_size(coalesce(p_size, '')), nullif(btrim(coalesce(p_spec, '')), ''),
            v_drawing.area_id, v_drawing.system_id, v_drawing.test_package_id, array_fill(0::numeric, array[cardinality(v_names)]))
    on conflict do nothing
    returning id into v_id;
    if v_id is null then
        perform pipetrak.raise_error('duplicate_component', jsonb_build_object('component_type', 'field_weld', 'tag', v_tag,
            'drawing_id', p_drawing_id));
    end if;
    insert into pipetrak.field_welds (component_id, project_id) values (v_id, p_project_id);
    return jsonb_build_object('id', v_id);
end
$$;

-- Repairs a rejected weld: a new weld `<original>.<k>` on the same drawing and assignments with
-- the rejected weld's facts, Fit-up at 100; the rejected weld leaves the rollups (see the notes).
create function pipetrak.create_repair(p_component_id bigint, p_note text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_weld pipetrak.field_welds;
    v_component pipetrak.components;
    v_root bigint := p_component_id;
    v_chain integer := 0;
    v_root_tag text;
    v_repair bigint;
    v_result jsonb;
begin
    perform pipetrak.refuse_distributed('create_repair');
    v_weld := pipetrak.lock_weld(p_component_id, 'manage_welds');
    if v_weld.status <> 'rejected' then
        perform pipetrak.raise_error('weld_not_rejected', jsonb_build_object('component_id', p_component_id, 'status', v_weld.status));
    end if;
    perform pipetrak.check_text_length('note', p_note, pipetrak.argument_limit('note'));
    -- The original weld of the chain, and how many repairs the chain holds.
    with recursive chain(id, repair_of, depth) as (
        select w.component_id, w.repair_of, 0 from pipetrak.field_welds w where w.component_id = p_component_id
        union all
        select w.component_id, w.repair_of, c.depth + 1 from pipetrak.field_welds w join chain c on w.component_id = c.repair_of
        where c.depth < 20)
    select id, depth into v_root, v_chain from chain order by depth desc limit 1;
    if v_chain >= 10 then
        perform pipetrak.raise_error('repair_limit', jsonb_build_object('component_id', p_component_id, 'repairs', v_chain));
    end if;
    select * into v_component from pipetrak.components where id = p_component_id;
    select tag into v_root_tag from pipetrak.components where id = v_root;
    insert into pipetrak.components (project_id, drawing_id, component_type, tag, size, spec, description, attributes,
                                     area_id, system_id, test_package_id, area_pinned, system_pinned, test_package_pinned,
                                     milestone_values)
    select c.project_id, c.drawing_id, 'field_weld', v_root_tag || '.' || (v_chain + 1), c.size, c.spec, c.description, c.attributes,
           c.area_id, c.system_id, c.test_package_id, c.area_pinned, c.system_pinned, c.test_package_pinned,
           array_fill(0::numeric, array[cardinality(c.milestone_values)])
    from pipetrak.components c where c.id = p_component_id
    on conflict do nothing
    returning id into v_repair;
    if v_repair is null then
        perform pipetrak.raise_error('duplicate_component', jsonb_build_object('component_type', 'field_weld',
            'tag', v_root_tag || '.' || (v_chain + 1), 'drawing_id', v_component.drawing_id));
    end if;
    -- The repair carries the weld's examination duty: every method it required and each that
    -- failed it, whatever the tier (`repair_nde_methods`), so it clears NDE only by passing them.
    insert into pipetrak.field_welds (component_id, project_id, weld_type, weld_size, schedule, base_metal, spec, xray_percent,
                                      pwht_required, nde_types, repair_of)
    select v_repair, w.project_id, w.weld_type, w.weld_size, w.schedule, w.base_metal, w.spec, w.xray_percent,
           w.pwht_required,
           pipetrak.repair_nde_methods(w.nde_types, w.xray_percent,
                                       array(select n.key from jsonb_each_text(w.current_nde) n where n.value = 'FAIL' order by n.key)),
           p_component_id
    from pipetrak.field_welds w where w.component_id = p_component_id;
    update pipetrak.field_welds set repaired_by = v_repair, updated_at = now() where component_id = p_component_id;
    v_result := pipetrak.update_milestone(v_repair, 'Fit-up', 100, null, p_note, null, null);
    -- The joint now counts once, as the repair.
    update pipetrak.components set retired_at = now(), updated_at = now(), version = version + 1 where id = p_component_id;
    -- The repair answers for the weld's own items; a call for tracers stays open until they are
    -- examined (resolve_examination_calls).
    perform pipetrak.resolve_items_of(p_component_id, 'weld_completed', format('repaired as %s', v_root_tag || '.' || (v_chain + 1)));
    perform pipetrak.resolve_items_of(p_component_id, 'out_of_sequence', format('repaired as %s', v_root_tag || '.' || (v_chain + 1)));
    insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
    values (v_component.project_id, p_component_id, 'repaired', '{}',
            jsonb_build_object('repair_id', v_repair, 'repair_number', v_root_tag || '.' || (v_chain + 1)),
            nullif(btrim(coalesce(p_note, '')), ''), pipetrak.current_user_id()),
           (v_component.project_id, v_repair, 'created_repair', '{}', jsonb_build_object('repair_of', p_component_id),
            nullif(btrim(coalesce(p_note, '')), ''), pipetrak.current_user_id());
    return jsonb_build_object('repair_id', v_repair, 'weld_number', v_root_tag || '.' || (v_chain + 1), 'repair_of', p_component_id);
end
$$;

-- ---- Welders ----

-- A welder of the caller's project, locked after checking the caller's permission on it.
create function pipetrak.lock_welder(p_welder_id bigint, p_permission text)
returns pipetrak.welders
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_welder pipetrak.welders;
begin
    perform pipetrak.refuse_distributed('lock_welder');
    select * into v_welder from pipetrak.welders
    where id = p_welder_id and project_id in (select pipetrak.my_project_ids())
    for update;
    if v_welder.id is null then
        perform pipetrak.raise_error('welder_not_found', jsonb_build_object('welder_id', p_welder_id));
    end if;
    perform pipetrak.require_project_role(v_welder.project_id, p_permission);
    return v_welder;
end
$$;

-- Creates a welder of a project by stencil (2 to 12 letters, digits or dashes) and name; returns its id.
create function pipetrak.create_welder(p_project_id bigint, p_stencil text, p_name text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_stencil text := pipetrak.normalize_stencil(coalesce(p_stencil, ''));
    v_id bigint;
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_welds');
    if v_stencil is null then
        perform pipetrak.raise_error('invalid_stencil', jsonb_build_object('stencil', p_stencil));
    end if;
    perform pipetrak.check_text_length('name', p_name, pipetrak.argument_limit('name'));
    insert into pipetrak.welders (project_id, stencil, name)
    values (p_project_id, v_stencil, nullif(btrim(coalesce(p_name, '')), ''))
    on conflict (project_id, stencil) do nothing
    returning id into v_id;
    if v_id is null then
        perform pipetrak.raise_error('stencil_taken', jsonb_build_object('stencil', v_stencil,
            'welder_id', (select id from pipetrak.welders where project_id = p_project_id and stencil = v_stencil)));
    end if;
    return v_id;
end
$$;

-- Renames a welder (their stencil stays).
create function pipetrak.rename_welder(p_welder_id bigint, p_name text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_welder pipetrak.welders := pipetrak.lock_welder(p_welder_id, 'quality_control');
begin
    perform pipetrak.check_text_length('name', p_name, pipetrak.argument_limit('name'));
    update pipetrak.welders set name = nullif(btrim(coalesce(p_name, '')), '') where id = v_welder.id;
end
$$;

-- Marks a welder verified, or not, as a QC inspector.
create function pipetrak.verify_welder(p_welder_id bigint, p_verified boolean)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_welder pipetrak.welders := pipetrak.lock_welder(p_welder_id, 'quality_control');
begin
    update pipetrak.welders set verified = coalesce(p_verified, true) where id = v_welder.id;
end
$$;

-- ---- QC queue ----

-- Dismisses an open review item with a note (QC inspector and up).
create function pipetrak.dismiss_review_item(p_review_item_id bigint, p_note text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_item pipetrak.review_items;
    v_note text;
begin
    perform pipetrak.refuse_distributed('dismiss_review_item');
    select * into v_item from pipetrak.review_items
    where id = p_review_item_id and project_id in (select pipetrak.my_project_ids())
    for update;
    if v_item.id is null then
        perform pipetrak.raise_error('review_item_not_found', jsonb_build_object('review_item_id', p_review_item_id));
    end if;
    perform pipetrak.require_project_role(v_item.project_id, 'quality_control');
    v_note := pipetrak.check_reason(p_note, 3, 'dismissing a review item');
    update pipetrak.review_items set status = 'dismissed', resolved_at = now(), resolved_by = pipetrak.current_user_id(),
        resolution_note = v_note
    where id = p_review_item_id and status = 'open';
end
$$;

-- ---- API ----

create view pipetrak_api.nde_results with (security_invoker = true) as
select n.id, n.project_id, n.component_id, n.method, n.result, n.examined_on, n.report_number, n.notes, n.supersedes,
       n.reason, n.recorded_by, n.recorded_at,
       n.id = max(n.id) over (partition by n.project_id, n.component_id, n.method) as is_current
from pipetrak.nde_results n;
comment on view pipetrak_api.nde_results is 'NDE records of your projects'' welds, append-only: is_current marks each method''s latest (a current record without a result means the method was cleared).';

create view pipetrak_api.weld_events with (security_invoker = true) as
select id, project_id, component_id, action, before, after, reason, actor, created_at from pipetrak.weld_events;
comment on view pipetrak_api.weld_events is 'The history of your projects'' welds (NDE recorded or cleared, …): who, when, before, after, reason. Append-only.';

create view pipetrak_api.qc_queue with (security_invoker = true) as
select r.id as review_item_id, r.project_id, r.kind, r.details, r.created_at, r.component_id, c.component_type,
       c.tag, c.size, d.id as drawing_id, d.drawing_no, w.stencil as welder, f.date_welded, f.status as weld_status
from pipetrak.review_items r
join pipetrak.components c on c.id = r.component_id and c.project_id = r.project_id
join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = r.project_id
left join pipetrak.field_welds f on f.component_id = c.id and f.project_id = r.project_id
left join pipetrak.welders w on w.id = f.welder_id and w.project_id = r.project_id
-- Open (resolved_at is null: status open, by the table's check) and oldest first, so that
-- `GET /qc_queue?project_id=eq.N&limit=50` is the head of the queue without the client sorting;
-- the open items' (project, id) index serves both.
where r.resolved_at is null
order by r.id;
comment on view pipetrak_api.qc_queue is 'Open review items of your projects, oldest first by id, with the component, drawing, welder and weld status QC needs.';

create function pipetrak_api.dismiss_review_item(review_item_id bigint, note text)
returns void
language sql volatile security invoker
as $$ select pipetrak.dismiss_review_item(review_item_id, pipetrak.limited('note', note)) $$;
comment on function pipetrak_api.dismiss_review_item(bigint, text) is
    'Dismisses an open review item with a note (it stays in the record as dismissed). QC inspector and up.';

create function pipetrak_api.record_nde(component_id bigint, method text, result text, examined_on date default null,
                                        report_number text default null, notes text default null, reason text default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.record_nde(component_id, pipetrak.limited('method', method), pipetrak.limited('result', result), examined_on, pipetrak.limited('report_number', report_number), pipetrak.limited('notes', notes), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.record_nde(bigint, text, text, date, text, text, text) is
    'Records an NDE result (method RT/UT/PT/MT/VT, result PASS/FAIL/PENDING) on a welded weld; a method recorded before is superseded and needs a reason. Returns the weld''s status. QC inspector and up.';

create function pipetrak_api.clear_nde(component_id bigint, method text, reason text)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.clear_nde(component_id, pipetrak.limited('method', method), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.clear_nde(bigint, text, text) is
    'Clears a weld''s current result for one NDE method with a reason (a superseding record without a result). QC inspector and up.';

create function pipetrak_api.edit_welder(component_id bigint, reason text, stencil text default null, date_welded date default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.edit_welder(component_id, pipetrak.limited('stencil', stencil), date_welded, pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.edit_welder(bigint, text, text, date) is
    'Changes the welder (by stencil) and/or date welded of a welded weld, with a reason; its milestones stay. Foreman and up.';

create function pipetrak_api.clear_welder(component_id bigint, reason text)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.clear_welder(component_id, pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.clear_welder(bigint, text) is
    'Un-welds a weld with a reason: clears welder and date and lowers Weld Complete to 0. Refused while the weld has an NDE result. Foreman and up.';

create function pipetrak_api.retire_weld(component_id bigint, reason text)
returns void
language sql volatile security invoker
as $$ select pipetrak.retire_weld(component_id, pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.retire_weld(bigint, text) is
    'Retires a weld with a reason of at least 10 characters (its history stays). Owner, admin, project manager.';

create function pipetrak_api.move_weld(component_id bigint, drawing_id bigint, reason text default null)
returns void
language sql volatile security invoker
as $$ select pipetrak.move_weld(component_id, drawing_id, pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.move_weld(bigint, bigint, text) is
    'Moves a weld not yet welded to another drawing of its project that has no weld of its number. Owner, admin, project manager.';

create function pipetrak_api.create_unplanned_weld(project_id bigint, drawing_id bigint, weld_number text, weld_type text,
                                                   size text, spec text, note text, xray_percent integer default null)
returns bigint
language sql volatile security invoker
as $$ select pipetrak.create_unplanned_weld(project_id, drawing_id, pipetrak.limited('weld_number', weld_number), pipetrak.limited('weld_type', weld_type), pipetrak.limited('size', size), pipetrak.limited('spec', spec), pipetrak.limited('note', note), xray_percent) $$;
comment on function pipetrak_api.create_unplanned_weld(bigint, bigint, text, text, text, text, text, integer) is
    'Adds a weld found in the field (not in the weld log): number, drawing, type, size, spec and a note are required; x-ray tier 5 % unless given. Foreman and up.';

create function pipetrak_api.create_repair(component_id bigint, note text default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.create_repair(component_id, pipetrak.limited('note', note)) $$;
comment on function pipetrak_api.create_repair(bigint, text) is
    'Repairs a rejected weld: creates <number>.<n> on the same drawing with its facts and Fit-up at 100; the rejected weld leaves the rollups. At most 10 repairs per chain. Foreman and up.';

create function pipetrak_api.create_welder(project_id bigint, stencil text, name text default null)
returns bigint
language sql volatile security invoker
as $$ select pipetrak.create_welder(project_id, pipetrak.limited('stencil', stencil), pipetrak.limited('name', name)) $$;
comment on function pipetrak_api.create_welder(bigint, text, text) is
    'Adds a welder to a project by stencil (2–12 letters, digits or dashes; unique in the project), unverified. Foreman and up.';

create function pipetrak_api.rename_welder(welder_id bigint, name text)
returns void
language sql volatile security invoker
as $$ select pipetrak.rename_welder(welder_id, pipetrak.limited('name', name)) $$;
comment on function pipetrak_api.rename_welder(bigint, text) is 'Sets a welder''s name. QC inspector and up.';

create function pipetrak_api.verify_welder(welder_id bigint, verified boolean default true)
returns void
language sql volatile security invoker
as $$ select pipetrak.verify_welder(welder_id, verified) $$;
comment on function pipetrak_api.verify_welder(bigint, boolean) is 'Marks a welder verified (or not). QC inspector and up.';

-- ---- Weld tallies: the weld reports' figures, pre-aggregated ----
-- Design notes: like the progress rollups, the weld reports sum pre-aggregated rows instead of
-- reading every weld. `weld_tallies` holds one row per (area, system, test package, welder, weld
-- type, x-ray tier) of a project with the counts weld progress and the sampling lots need;
-- `weld_day_tallies` one row per (welder, weld type, tier, date welded) for the welder summary's
-- date windows. Triggers keep both current whoever writes: a statement trigger on `field_welds`
-- (imports write thousands of welds in one statement) and a row trigger on `components` that fires
-- only for a weld whose assignments, retirement or Fit-up changed. A weld counts while live, and a
-- repaired weld keeps counting in the quality figures (its FAIL is the reject the repair answers).
-- A weld template's milestones are fixed (re-weighting keeps names and order): Fit-up is the first.

create type pipetrak.weld_state as (
    sign              integer,
    project_id        bigint,
    area_id           bigint,
    system_id         bigint,
    test_package_id   bigint,
    live              boolean,
    fitted            boolean,
    welder_id         bigint,
    weld_type         text,
    xray_percent      integer,
    date_welded       date,
    status            text,
    nde_types         text[],
    repair_of         bigint,
    repaired_by       bigint,
    current_nde       jsonb,
    first_examined_on date
);

-- What one weld (its component and facts rows) adds to (+1) or takes from (-1) the tallies.
create function pipetrak.weld_state(p_sign integer, c pipetrak.components, f pipetrak.field_welds)
returns pipetrak.weld_state
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    return row(p_sign, c.project_id, c.area_id, c.system_id, c.test_package_id, c.retired_at is null,
               coalesce(c.milestone_values[1], 0) > 0, f.welder_id, f.weld_type, f.xray_percent, f.date_welded, f.status,
               f.nde_types, f.repair_of, f.repaired_by, f.current_nde, f.first_examined_on)::pipetrak.weld_state;
end
$$;

create table pipetrak.weld_tallies (
    project_id          bigint not null references pipetrak.projects,
    area_id             bigint,
    system_id           bigint,
    test_package_id     bigint,
    welder_id           bigint,
    weld_type           text,
    xray_percent        integer,
    -- Live welds: all, fitted up, welded, accepted, needing NDE, repairs, accepted without a repair.
    total               integer not null default 0,
    fitted_up           integer not null default 0,
    welded              integer not null default 0,
    accepted            integer not null default 0,
    nde_required        integer not null default 0,
    repairs             integer not null default 0,
    first_pass_accepted integer not null default 0,
    -- Live or repaired welds: rejected, current results, days from welded to first examination.
    rejected            integer not null default 0,
    nde_pass            integer not null default 0,
    nde_fail            integer not null default 0,
    nde_pending         integer not null default 0,
    examined_welds      integer not null default 0,
    days_to_nde         bigint not null default 0,
    -- Live or repaired welded welds with a welder (an x-ray lot's): examined by RT, RT rejects not repaired.
    lot_welded          integer not null default 0,
    lot_examined        integer not null default 0,
    lot_open_rejects    integer not null default 0,
    constraint weld_tallies_key unique nulls not distinct (project_id, area_id, system_id, test_package_id, welder_id,
                                                           weld_type, xray_percent)
);

create table pipetrak.weld_day_tallies (
    project_id   bigint not null references pipetrak.projects,
    welder_id    bigint not null,
    weld_type    text,
    xray_percent integer,
    date_welded  date not null,
    -- Live or repaired welds welded that day: all, examined by RT (PASS or FAIL), RT rejects.
    welded       integer not null default 0,
    examined     integer not null default 0,
    rejects      integer not null default 0,
    constraint weld_day_tallies_key unique nulls not distinct (project_id, welder_id, weld_type, xray_percent, date_welded)
);
alter table pipetrak.weld_tallies enable row level security;
alter table pipetrak.weld_day_tallies enable row level security;
create policy weld_tallies_select_member on pipetrak.weld_tallies for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy weld_day_tallies_select_member on pipetrak.weld_day_tallies for select to authenticated
    using (pipetrak.project_visible(project_id));

-- Applies weld states to the tallies: one upsert per row touched, in key order so concurrent
-- writers lock alike; rows whose changes cancel out are not written. PL/pgSQL, not SQL: its
-- statements' plans are kept for the session (every weld write runs them).
create function pipetrak.weld_tallies_apply(p_states pipetrak.weld_state[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into pipetrak.weld_tallies as t (project_id, area_id, system_id, test_package_id, welder_id, weld_type, xray_percent,
           total, fitted_up, welded, accepted, nde_required, repairs, first_pass_accepted, rejected, nde_pass, nde_fail,
           nde_pending, examined_welds, days_to_nde, lot_welded, lot_examined, lot_open_rejects)
    select * from (
        select s.project_id, s.area_id, s.system_id, s.test_package_id, s.welder_id, s.weld_type, s.xray_percent,
               sum(s.sign * s.live::integer)::integer as total,
               sum(s.sign * ((s.live and s.fitted) is true)::integer)::integer as fitted_up,
               sum(s.sign * ((s.live and s.date_welded is not null) is true)::integer)::integer as welded,
               sum(s.sign * ((s.live and s.status = 'accepted') is true)::integer)::integer as accepted,
               sum(s.sign * ((s.live and (cardinality(s.nde_types) > 0 or s.xray_percent > 0)) is true)::integer)::integer as nde_required,
               sum(s.sign * ((s.live and s.repair_of is not null) is true)::integer)::integer as repairs,
               sum(s.sign * ((s.live and s.repair_of is null and s.status = 'accepted') is true)::integer)::integer as first_pass_accepted,
               sum(s.sign * ((s.status = 'rejected') is true)::integer)::integer as rejected,
               sum(s.sign * r.passes)::integer as nde_pass, sum(s.sign * r.fails)::integer as nde_fail,
               sum(s.sign * r.pendings)::integer as nde_pending,
               sum(s.sign * ((s.first_examined_on is not null and s.date_welded is not null) is true)::integer)::integer as examined_welds,
               coalesce(sum(s.sign * (s.first_examined_on - s.date_welded)), 0)::bigint as days_to_nde,
               sum(s.sign * l.welded::integer)::integer as lot_welded,
               sum(s.sign * ((l.welded and s.current_nde ->> 'RT' in ('PASS', 'FAIL')) is true)::integer)::integer as lot_examined,
               sum(s.sign * ((l.welded and s.current_nde ->> 'RT' = 'FAIL' and s.repaired_by is null) is true)::integer)::integer as lot_open_rejects
        from unnest(p_states) s
        cross join lateral (select count(*) filter (where v.value = 'PASS') as passes, count(*) filter (where v.value = 'FAIL') as fails,
                                   count(*) filter (where v.value = 'PENDING') as pendings
                            from jsonb_each_text(s.current_nde) v) r
        cross join lateral (select s.welder_id is not null and s.date_welded is not null as welded) l
        where s.live or s.repaired_by is not null
        group by 1, 2, 3, 4, 5, 6, 7) d
    where (d.total, d.fitted_up, d.welded, d.accepted, d.nde_required, d.repairs, d.first_pass_accepted, d.rejected, d.nde_pass,
           d.nde_fail, d.nde_pending, d.examined_welds, d.days_to_nde, d.lot_welded, d.lot_examined, d.lot_open_rejects)
          <> (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    order by 1, 2, 3, 4, 5, 6, 7
    on conflict on constraint weld_tallies_key do update set
        total = t.total + excluded.total, fitted_up = t.fitted_up + excluded.fitted_up, welded = t.welded + excluded.welded,
        accepted = t.accepted + excluded.accepted, nde_required = t.nde_required + excluded.nde_required,
        repairs = t.repairs + excluded.repairs, first_pass_accepted = t.first_pass_accepted + excluded.first_pass_accepted,
        rejected = t.rejected + excluded.rejected, nde_pass = t.nde_pass + excluded.nde_pass,
        nde_fail = t.nde_fail + excluded.nde_fail, nde_pending = t.nde_pending + excluded.nde_pending,
        examined_welds = t.examined_welds + excluded.examined_welds, days_to_nde = t.days_to_nde + excluded.days_to_nde,
        lot_welded = t.lot_welded + excluded.lot_welded, lot_examined = t.lot_examined + excluded.lot_examined,
        lot_open_rejects = t.lot_open_rejects + excluded.lot_open_rejects;
    insert into pipetrak.weld_day_tallies as t (project_id, welder_id, weld_type, xray_percent, date_welded, welded, examined, rejects)
    select * from (
        select s.project_id, s.welder_id, s.weld_type, s.xray_percent, s.date_welded, sum(s.sign)::integer as welded,
               sum(s.sign * ((s.current_nde ->> 'RT' in ('PASS', 'FAIL')) is true)::integer)::integer as examined,
               sum(s.sign * ((s.current_nde ->> 'RT' = 'FAIL') is true)::integer)::integer as rejects
        from unnest(p_states) s
        where (s.live or s.repaired_by is not null) and s.welder_id is not null and s.date_welded is not null
        group by 1, 2, 3, 4, 5) d
    where (d.welded, d.examined, d.rejects) <> (0, 0, 0)
    order by 1, 2, 3, 4, 5
    on conflict on constraint weld_day_tallies_key do update set
        welded = t.welded + excluded.welded, examined = t.examined + excluded.examined, rejects = t.rejects + excluded.rejects;
end
$$;

-- The welds a statement inserted, changed or deleted (`p_old`, `p_new`: its rows as they were and
-- are, handed over by the statement's trigger; see src/pg/captured.rs) move their tallies. Each
-- weld finds its component through the primary key (lateral, limit 1): a join would let a big
-- import's stale statistics pick a merge join that reads every component of the table for a
-- chunk's few hundred welds.
create function pipetrak.weld_tallies_net_welds(p_op text, p_old pipetrak.field_welds[], p_new pipetrak.field_welds[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project bigint;
begin
    -- One project at a time, its components read by (id, project): on Citus each read is then
    -- planned for the project's shard, whose rows are of the shard's own type (hence row(x.*)).
    for v_project in select o.project_id from unnest(p_old) o union select n.project_id from unnest(p_new) n order by 1 loop
        perform pipetrak.weld_tallies_apply(array(
            select pipetrak.weld_state(-1, l.c, o) from unnest(p_old) o
            cross join lateral (select row(x.*)::pipetrak.components as c from pipetrak.components x
                                where x.id = o.component_id and x.project_id = v_project limit 1) l
            where o.project_id = v_project
            union all
            select pipetrak.weld_state(1, l.c, n) from unnest(p_new) n
            cross join lateral (select row(x.*)::pipetrak.components as c from pipetrak.components x
                                where x.id = n.component_id and x.project_id = v_project limit 1) l
            where n.project_id = v_project));
    end loop;
end
$$;

-- Trigger: moves a weld's tallies when its component changes area, system, package, retirement or fit-up.
create function pipetrak.weld_tallies_follow_components()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    -- On a Citus worker the rows are a shard's, of its own row type: passed on as the table's
    -- (row(….*): the same columns in the same order).
    perform pipetrak.weld_tallies_apply(array(
        select pipetrak.weld_state(-1, row(old.*)::pipetrak.components, row(f.*)::pipetrak.field_welds) from pipetrak.field_welds f
        where f.component_id = old.id and f.project_id = old.project_id
        union all
        select pipetrak.weld_state(1, row(new.*)::pipetrak.components, row(f.*)::pipetrak.field_welds) from pipetrak.field_welds f
        where f.component_id = new.id and f.project_id = new.project_id));
    return null;
end
$$;

create trigger field_welds_tallies_rows after insert or update or delete on pipetrak.field_welds
    for each row execute function pipetrak.capture_row('weld_tallies_net_welds');
create trigger field_welds_tallies after insert or update or delete on pipetrak.field_welds
    for each statement execute function pipetrak.flush_rows('weld_tallies_net_welds');
create trigger components_weld_tallies after update on pipetrak.components
    for each row
    when (new.component_type = 'field_weld'
          and (old.area_id, old.system_id, old.test_package_id, old.retired_at is null, coalesce(old.milestone_values[1], 0) > 0)
              is distinct from
              (new.area_id, new.system_id, new.test_package_id, new.retired_at is null, coalesce(new.milestone_values[1], 0) > 0))
    execute function pipetrak.weld_tallies_follow_components();

-- Rebuilds the weld tallies from the welds (for a DBA: after a data-only restore with triggers
-- disabled, or to check them against a recount). Returns the number of tally rows.
create function pipetrak.rebuild_weld_tallies()
returns bigint
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    lock table pipetrak.weld_tallies, pipetrak.weld_day_tallies in exclusive mode;
    delete from pipetrak.weld_tallies;
    delete from pipetrak.weld_day_tallies;
    perform pipetrak.weld_tallies_apply(array(
        select pipetrak.weld_state(1, c, f) from pipetrak.field_welds f join pipetrak.components c on c.id = f.component_id));
    return (select count(*) from pipetrak.weld_tallies);
end
$$;

-- ---- Weld reports (spec §7) ----
-- Design notes: the weld log is a view read through RLS; the grouped reports are functions of one
-- project that check the caller is a member first (others: project_not_found) and then read its
-- tally rows (see the weld tallies above); the weld log reads the weld rows, which keep their
-- current NDE results. A weld that left the rollups because it was repaired still counts in the
-- quality figures of its group (its FAIL is the reject the repair answers); welds retired for any
-- other reason do not.

-- What a weld log search matches: weld number, drawing and stencil, lowercase (the view's
-- search_text and weld_log_page's search).
create function pipetrak.weld_search_text(p_tag text, p_drawing_no text, p_stencil text)
returns text
language sql immutable parallel safe
as $$
    select lower(p_tag || ' ' || p_drawing_no || ' ' || coalesce(p_stencil, ''))
$$;

-- The names a row shows (repair of, area, system, package) are left joins by (id, project), as
-- the drawing and the welder are: Citus then runs a project's weld log on its shard alone (a
-- correlated lookup in the select list is a query it sends to every shard). weld_log_page reads
-- the view for a page's ids, so a screen pays the lookups for its page only.
create view pipetrak_api.weld_log with (security_invoker = true) as
select c.id as component_id, c.project_id, c.tag as weld_number, c.drawing_id, d.drawing_no, f.weld_type, f.weld_size,
       f.schedule, f.base_metal, f.spec, f.xray_percent, f.pwht_required, f.nde_types, f.welder_id, w.stencil as welder,
       w.name as welder_name, f.date_welded, f.status, f.repair_of,
       r.tag as repair_of_number, f.repaired_by, f.unplanned,
       c.percent_complete, c.area_id, a.name as area,
       c.system_id, s.name as system, c.test_package_id, t.name as test_package,
       nullif(f.current_nde, '{}') as current_nde, f.last_examined_on, c.retired_at,
       pipetrak.weld_search_text(c.tag, d.drawing_no, w.stencil) as search_text
from pipetrak.components c
join pipetrak.field_welds f on f.component_id = c.id and f.project_id = c.project_id
join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = c.project_id
left join pipetrak.welders w on w.id = f.welder_id and w.project_id = c.project_id
left join pipetrak.components r on r.id = f.repair_of and r.project_id = c.project_id
left join pipetrak.areas a on a.id = c.area_id and a.project_id = c.project_id
left join pipetrak.systems s on s.id = c.system_id and s.project_id = c.project_id
left join pipetrak.test_packages t on t.id = c.test_package_id and t.project_id = c.project_id
where c.component_type = 'field_weld';
comment on view pipetrak_api.weld_log is 'The weld log: one row per weld of your projects (retired ones with retired_at) with drawing, welder, dates, facts, current NDE per method, status, repair of, % complete and assignments. Filter on any column; search_text (weld number, drawing, stencil, lowercase) takes ilike.';

-- A page of a project's weld log for a screen: the welds matching the filters given (drawing,
-- welder stencil, status, test package, search text; live welds unless p_retired), in weld number
-- order after (p_after_weld_number, p_after_component_id) — keyset paging: pass the last row of
-- the page before — at most 500 to a page. The rows of pipetrak_api.weld_log.
-- Design notes: the view filtered and sorted by weld number reads every weld of the project first
-- (242 ms for 100,000 welds, 5 ms for one welder's 500) whatever the page; here the filter given
-- drives its own index (drawing, welder, test package, else the weld numbers of the project) and
-- reading stops at a page. Members only, checked once: the rows are then read without row-level
-- security on each of the view's eight relations, and names are looked up for the page's rows.
create function pipetrak.weld_log_page(p_project_id bigint, p_drawing_id bigint, p_welder text, p_status text,
                                       p_test_package_id bigint, p_search text, p_after_weld_number text,
                                       p_after_component_id bigint, p_page_size integer, p_retired boolean)
returns setof pipetrak_api.weld_log
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
-- Every read here is by an index, by design; the planner would scan the small name tables (areas,
-- systems, packages: a page or two) once per row of the page instead — a third of a page's cost.
set enable_seqscan = off
as $$
declare
    v_limit integer := coalesce(p_page_size, 50);
    v_pattern text := '%' || replace(replace(replace(lower(p_search), '\', '\\'), '%', '\%'), '_', '\_') || '%';
    v_retired boolean := coalesce(p_retired, false);
    v_after text := coalesce(p_after_weld_number, '');
    v_after_id bigint := coalesce(p_after_component_id, 0);
    v_ids bigint[];
begin
    perform pipetrak.require_project_role(p_project_id, 'read');
    if v_limit not between 1 and 500 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "page_size", "expected": "1 to 500"}');
    end if;
    if p_status is not null and p_status <> all (pipetrak.vocabulary('weld_status')) then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "status", "expected": "active, accepted or rejected"}');
    end if;
    -- One query per driving filter, each a plan of its own kept for the session; the others are
    -- checks on the rows it reads.
    if p_drawing_id is not null then
        v_ids := array(
            select c.id from pipetrak.components c
            join pipetrak.field_welds f on f.component_id = c.id and f.project_id = p_project_id
            join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = p_project_id
            left join pipetrak.welders w on w.id = f.welder_id and w.project_id = p_project_id
            where c.drawing_id = p_drawing_id and c.project_id = p_project_id and c.component_type = 'field_weld'
              and (v_retired or c.retired_at is null) and (c.tag, c.id) > (v_after, v_after_id)
              and (p_welder is null or w.stencil = p_welder) and (p_status is null or f.status = p_status)
              and (p_test_package_id is null or c.test_package_id = p_test_package_id)
              and (p_search is null or pipetrak.weld_search_text(c.tag, d.drawing_no, w.stencil) like v_pattern)
            order by c.tag, c.id limit v_limit);
    elsif p_welder is not null then
        v_ids := array(
            select c.id from pipetrak.welders w
            join pipetrak.field_welds f on f.welder_id = w.id and f.project_id = p_project_id
            join pipetrak.components c on c.id = f.component_id and c.project_id = p_project_id
            join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = p_project_id
            where w.project_id = p_project_id and w.stencil = p_welder
              and (v_retired or c.retired_at is null) and (c.tag, c.id) > (v_after, v_after_id)
              and (p_status is null or f.status = p_status)
              and (p_test_package_id is null or c.test_package_id = p_test_package_id)
              and (p_search is null or pipetrak.weld_search_text(c.tag, d.drawing_no, w.stencil) like v_pattern)
            order by c.tag, c.id limit v_limit);
    elsif p_test_package_id is not null then
        v_ids := array(
            select c.id from pipetrak.components c
            join pipetrak.field_welds f on f.component_id = c.id and f.project_id = p_project_id
            join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = p_project_id
            left join pipetrak.welders w on w.id = f.welder_id and w.project_id = p_project_id
            where c.test_package_id = p_test_package_id and c.project_id = p_project_id and c.component_type = 'field_weld'
              and (v_retired or c.retired_at is null) and (c.tag, c.id) > (v_after, v_after_id)
              and (p_status is null or f.status = p_status)
              and (p_search is null or pipetrak.weld_search_text(c.tag, d.drawing_no, w.stencil) like v_pattern)
            order by c.tag, c.id limit v_limit);
    elsif not v_retired then
        -- The project's live weld numbers in order (components_weld_number_idx), until a page is found.
        v_ids := array(
            select c.id from pipetrak.components c
            join pipetrak.field_welds f on f.component_id = c.id and f.project_id = p_project_id
            join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = p_project_id
            left join pipetrak.welders w on w.id = f.welder_id and w.project_id = p_project_id
            where c.project_id = p_project_id and c.component_type = 'field_weld' and c.retired_at is null
              and (c.tag, c.id) > (v_after, v_after_id)
              and (p_status is null or f.status = p_status)
              and (p_search is null or pipetrak.weld_search_text(c.tag, d.drawing_no, w.stencil) like v_pattern)
            order by c.tag, c.id limit v_limit);
    else
        v_ids := array(
            select c.id from pipetrak.components c
            join pipetrak.field_welds f on f.component_id = c.id and f.project_id = p_project_id
            join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = p_project_id
            left join pipetrak.welders w on w.id = f.welder_id and w.project_id = p_project_id
            where c.project_id = p_project_id and c.component_type = 'field_weld'
              and (c.tag, c.id) > (v_after, v_after_id)
              and (p_status is null or f.status = p_status)
              and (p_search is null or pipetrak.weld_search_text(c.tag, d.drawing_no, w.stencil) like v_pattern)
            order by c.tag, c.id limit v_limit);
    end if;
    return query select v.* from pipetrak_api.weld_log v
                 where v.project_id = p_project_id and v.component_id = any (v_ids) order by v.weld_number, v.component_id;
end
$$;

create function pipetrak_api.weld_log_page(project_id bigint, drawing_id bigint default null, welder text default null,
                                           status text default null, test_package_id bigint default null,
                                           search text default null, after_weld_number text default null,
                                           after_component_id bigint default null, page_size integer default 50,
                                           retired boolean default false)
returns setof pipetrak_api.weld_log
language sql stable
as $$
    select * from pipetrak.weld_log_page(project_id, drawing_id, pipetrak.limited('welder', welder), pipetrak.limited('status', status),
                                         test_package_id, pipetrak.limited('search', search),
                                         pipetrak.limited('after_weld_number', after_weld_number), after_component_id, page_size, retired)
$$;
comment on function pipetrak_api.weld_log_page(bigint, bigint, text, text, bigint, text, text, bigint, integer, boolean) is
    'A page of the weld log for screens: weld_log rows of one project filtered by drawing, welder (stencil), status, test package and search text (weld number, drawing or stencil), live welds unless retired => true, in weld number order; the next page starts after the last row (after_weld_number, after_component_id). page_size 1 to 500 (50). Its cost stays that of a page however large the project.';

-- Weld progress of a project grouped by area, system, test package or welder.
create function pipetrak.weld_progress(p_project_id bigint, p_group_by text)
returns table (group_id bigint, group_name text, total bigint, fitted_up bigint, welded bigint, accepted bigint,
               rejected bigint, nde_required bigint, nde_pass bigint, nde_fail bigint, nde_pending bigint,
               pass_rate numeric, repairs bigint, repair_rate numeric, first_pass_accepted bigint, mean_days_to_nde numeric)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
-- An aggregate over every weld of a project: JIT compilation costs more than it saves.
set jit = off
as $$
begin
    perform pipetrak.require_project_role(p_project_id, 'read');
    if p_group_by is null or p_group_by not in ('area', 'system', 'test_package', 'welder') then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "group_by", "expected": "area, system, test_package or welder"}');
    end if;
    return query
    -- Grouped by the project too (the same groups): Citus then runs it on the project's shard.
    with groups as (
        select t.project_id,
               case p_group_by when 'area' then t.area_id when 'system' then t.system_id
                               when 'test_package' then t.test_package_id else t.welder_id end as key,
               sum(t.total)::bigint as total, sum(t.fitted_up)::bigint as fitted_up, sum(t.welded)::bigint as welded,
               sum(t.accepted)::bigint as accepted, sum(t.rejected)::bigint as rejected, sum(t.nde_required)::bigint as nde_required,
               sum(t.nde_pass)::bigint as nde_pass, sum(t.nde_fail)::bigint as nde_fail, sum(t.nde_pending)::bigint as nde_pending,
               sum(t.repairs)::bigint as repairs, sum(t.first_pass_accepted)::bigint as first_pass_accepted,
               round(sum(t.days_to_nde) / nullif(sum(t.examined_welds), 0), 1) as mean_days
        from pipetrak.weld_tallies t
        where t.project_id = p_project_id
        group by 1, 2
        having sum(t.total) > 0 or sum(t.rejected) > 0 or sum(t.nde_pass + t.nde_fail + t.nde_pending) > 0 or sum(t.lot_welded) > 0)
    select g.key, case p_group_by when 'area' then ar.name when 'system' then sy.name when 'test_package' then tp.name
                               else wd.stencil end, g.total, g.fitted_up, g.welded, g.accepted, g.rejected,
           g.nde_required, g.nde_pass, g.nde_fail, g.nde_pending, pipetrak.ratio(g.nde_pass, g.nde_pass + g.nde_fail),
           g.repairs, pipetrak.ratio(g.repairs, g.welded), g.first_pass_accepted, g.mean_days
    from groups g
    -- Each name table joined by (key, project) whatever the grouping, the name picked above: a join
    -- condition folded to false (the grouping's constant) hides the project from Citus.
    left join pipetrak.areas ar on ar.id = g.key and ar.project_id = g.project_id
    left join pipetrak.systems sy on sy.id = g.key and sy.project_id = g.project_id
    left join pipetrak.test_packages tp on tp.id = g.key and tp.project_id = g.project_id
    left join pipetrak.welders wd on wd.id = g.key and wd.project_id = g.project_id
    order by 2 nulls last;
end
$$;

-- a ÷ b to four decimals; null when b is 0.
create function pipetrak.ratio(p_part bigint, p_whole bigint)
returns numeric
language sql immutable parallel safe
as $$ select case when p_whole > 0 then round(p_part::numeric / p_whole, 4) end $$;

-- Per welder × weld type × x-ray tier, for welds welded in [p_from, p_to]: welded, examined by RT
-- (a current RT PASS or FAIL), rejects, reject rate and examined %.
create function pipetrak.welder_summary(p_project_id bigint, p_from date, p_to date, p_weld_type text, p_xray_percent integer)
returns table (welder_id bigint, welder text, welder_name text, weld_type text, xray_percent integer, welded bigint,
               examined bigint, rejects bigint, reject_rate numeric, examined_percent numeric)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
-- An aggregate over every weld of a project: JIT compilation costs more than it saves.
set jit = off
as $$
begin
    perform pipetrak.refuse_distributed('welder_summary');
    perform pipetrak.require_project_role(p_project_id, 'read');
    perform pipetrak.check_date('from', p_from);
    perform pipetrak.check_date('to', p_to);
    return query
    select w.id, w.stencil, w.name, t.weld_type, t.xray_percent, sum(t.welded)::bigint, sum(t.examined)::bigint,
           sum(t.rejects)::bigint, pipetrak.ratio(sum(t.rejects)::bigint, sum(t.examined)::bigint),
           pipetrak.ratio(sum(t.examined)::bigint, sum(t.welded)::bigint) * 100
    from pipetrak.weld_day_tallies t
    join pipetrak.welders w on w.id = t.welder_id
    where t.project_id = p_project_id and t.date_welded between coalesce(p_from, '-infinity'::date) and coalesce(p_to, 'infinity'::date)
      and (p_weld_type is null or t.weld_type = upper(p_weld_type)) and (p_xray_percent is null or t.xray_percent = p_xray_percent)
    group by w.id, w.stencil, w.name, t.weld_type, t.xray_percent
    having sum(t.welded) > 0
    order by w.stencil, t.weld_type, t.xray_percent;
end
$$;

create function pipetrak_api.weld_progress(project_id bigint, group_by text)
returns table (group_id bigint, group_name text, total bigint, fitted_up bigint, welded bigint, accepted bigint,
               rejected bigint, nde_required bigint, nde_pass bigint, nde_fail bigint, nde_pending bigint,
               pass_rate numeric, repairs bigint, repair_rate numeric, first_pass_accepted bigint, mean_days_to_nde numeric)
language sql stable security invoker
as $$ select * from pipetrak.weld_progress(project_id, pipetrak.limited('group_by', group_by)) $$;
comment on function pipetrak_api.weld_progress(bigint, text) is
    'Weld progress of a project by area, system, test_package or welder: total, fitted up, welded, accepted, rejected, NDE required/pass/fail/pending, pass rate, repairs and repair rate, first-pass acceptance, mean days welded to NDE.';

create function pipetrak_api.welder_summary(project_id bigint, date_from date default null, date_to date default null,
                                            weld_type text default null, xray_percent integer default null)
returns table (date_from date, date_to date, welder_id bigint, welder text, welder_name text, weld_type text,
               xray_percent integer, welded bigint, examined bigint, rejects bigint, reject_rate numeric, examined_percent numeric)
language sql stable security invoker
as $$ select date_from, date_to, s.* from pipetrak.welder_summary(project_id, date_from, date_to, pipetrak.limited('weld_type', weld_type), xray_percent) s $$;
comment on function pipetrak_api.welder_summary(bigint, date, date, text, integer) is
    'Per welder, weld type and x-ray tier for welds welded in a date window (each row says its window; null: open-ended): welded, examined by RT, rejects, reject rate (rejects ÷ examined) and examined %.';

-- ---- X-ray sampling and progressive examination (spec §7) ----
-- Design notes: a lot is one welder's welded welds of one weld type at a tier of 5 or 10 %
-- (a repaired weld stays in its lot: its FAIL is part of the lot's record). A weld is examined when
-- it has a current RT PASS or FAIL. A FAIL in a lot calls for tracers (rules in `domain::sampling`:
-- two; two more per failed tracer — one failed tracer calls 2, both 4; after a failed second
-- round the whole lot), chosen at random among the lot's welded welds not yet examined or called;
-- QC may swap a called weld for another of the lot (`repick_examination`). Each call opens an
-- `examination_called` review item naming the welds, which resolves itself once they are all
-- examined. A lot in progression is accepted once every called weld is examined and every reject is
-- repaired and its repair has passed (the repair carries the methods, see the repairs' notes).
-- A FAIL calls only once (superseding it with another FAIL calls nothing more).

create table pipetrak.examination_calls (
    id           bigserial,
    project_id   bigint not null,
    -- The weld called for, and the failed weld whose examination called it.
    component_id bigint not null,
    failed_weld  bigint not null,
    stage        integer not null check (stage between 1 and 3),
    chosen_by    text not null check (chosen_by in ('random', 'qc')),
    called_by    uuid not null,
    called_at    timestamptz not null default now(),
    foreign key (project_id, component_id) references pipetrak.components (project_id, id),
    primary key (id, project_id),
    unique (component_id, project_id)
);
create index examination_calls_project_idx on pipetrak.examination_calls (project_id, id);
alter table pipetrak.examination_calls enable row level security;
create policy examination_calls_select_member on pipetrak.examination_calls for select to authenticated
    using (pipetrak.project_visible(project_id));

-- The welds of a weld's lot (welded; live, or repaired), the weld itself included.
create function pipetrak.lot_welds(p_component_id bigint)
returns table (component_id bigint, tag text, rt text, called boolean, stage integer, repaired boolean)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select c.id, c.tag, pipetrak.weld_current_result(c.id, 'RT'), e.id is not null, e.stage,
           f.repaired_by is not null
    from pipetrak.field_welds me
    join pipetrak.field_welds f on f.project_id = me.project_id and f.welder_id = me.welder_id
         and f.weld_type is not distinct from me.weld_type and f.xray_percent = me.xray_percent and f.date_welded is not null
    join pipetrak.components c on c.id = f.component_id
    left join pipetrak.examination_calls e on e.component_id = c.id
    where me.component_id = p_component_id and me.welder_id is not null and me.xray_percent in (5, 10)
      and (c.retired_at is null or f.repaired_by is not null)
$$;

-- Calls for examinations after a FAIL of `p_failed` (see the notes); returns the welds called.
create function pipetrak.call_examinations(p_failed bigint)
returns bigint[]
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint := pipetrak.component_project(p_failed);
    v_stage integer;
    v_failed integer;
    v_call record;
    v_called bigint[];
    v_numbers jsonb;
    v_item bigint;
begin
    -- Only a FAIL in a sampled lot (a welder's welds at 5 or 10 % x-ray) calls for more: read on
    -- the weld's shard, so that any other FAIL is recorded on a cluster too.
    if not exists (select from pipetrak.field_welds f
                   where f.component_id = p_failed and f.project_id = v_project_id
                     and f.welder_id is not null and f.xray_percent in (5, 10)) then
        return '{}';
    end if;
    -- The lot's welds are read by their ids alone (lot_welds, weld_current_result).
    perform pipetrak.refuse_distributed('progressive examination after an RT FAIL');
    if exists (select from pipetrak.review_items r where r.component_id = p_failed and r.kind = 'examination_called')
       or not exists (select from pipetrak.lot_welds(p_failed)) then
        return '{}';
    end if;
    v_stage := coalesce((select e.stage from pipetrak.examination_calls e where e.component_id = p_failed), 0);
    -- The failed welds of the lot's progression: this one, the rejects that called tracers, and each
    -- failed called weld.
    v_failed := (select count(*) from pipetrak.lot_welds(p_failed) l
                 where l.rt = 'FAIL' and (l.called or l.component_id = p_failed
                                          or exists (select from pipetrak.examination_calls e where e.failed_weld = l.component_id)));
    select * into v_call from pipetrak.sampling_call_after_failure(v_stage, v_failed);
    if v_call.stage is null or exists (select from pipetrak.lot_welds(p_failed) l where l.stage = 3) then
        return '{}';
    end if;
    with picked as (
        select l.component_id from pipetrak.lot_welds(p_failed) l
        join pipetrak.components c on c.id = l.component_id and c.retired_at is null
        where not l.called and l.rt is distinct from 'PASS' and l.rt is distinct from 'FAIL' and l.component_id <> p_failed
        order by random()
        limit coalesce(v_call.count, 2147483647)),
    inserted as (
        insert into pipetrak.examination_calls (project_id, component_id, failed_weld, stage, chosen_by, called_by)
        select v_project_id, p.component_id, p_failed, v_call.stage, 'random', pipetrak.current_user_id() from picked p
        returning component_id)
    select coalesce(array_agg(component_id order by component_id), '{}') into v_called from inserted;
    if cardinality(v_called) = 0 then
        return v_called;
    end if;
    -- The weld numbers first: Citus refuses a subquery in an INSERT's values.
    v_numbers := (select jsonb_agg(c.tag order by c.id) from pipetrak.components c
                  where c.project_id = v_project_id and c.id = any (v_called));
    insert into pipetrak.review_items (project_id, component_id, kind, details)
    values (v_project_id, p_failed, 'examination_called', jsonb_build_object('stage', v_call.stage, 'welds', to_jsonb(v_called),
            'weld_numbers', v_numbers))
    returning id into v_item;
    perform pipetrak.queue_change(v_project_id, 'review_items', array[v_item]);
    return v_called;
end
$$;

-- Resolves the open examination calls that `p_component_id` completes (every weld they name examined).
-- Every statement by the weld's project (on Citus, its shard); the calls resolved are announced.
create function pipetrak.resolve_examination_calls(p_component_id bigint)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project bigint := pipetrak.component_project(p_component_id);
    v_user uuid := pipetrak.current_user_id();
    v_item record;
    v_done bigint[] := '{}';
begin
    for v_item in
        select r.id, array(select w::bigint from jsonb_array_elements_text(r.details -> 'welds') w) as welds
        from pipetrak.review_items r
        where r.project_id = v_project and r.kind = 'examination_called' and r.status = 'open'
          and r.details -> 'welds' @> to_jsonb(p_component_id)
    loop
        -- Done when each weld it names has a current RT PASS or FAIL.
        if (select count(*) from pipetrak.field_welds f
            where f.project_id = v_project and f.component_id = any (v_item.welds)
              and f.current_nde ->> 'RT' in ('PASS', 'FAIL')) = cardinality(v_item.welds) then
            v_done := v_done || v_item.id;
        end if;
    end loop;
    if cardinality(v_done) > 0 then
        update pipetrak.review_items
        set status = 'resolved', resolved_at = now(), resolved_by = v_user, resolution_note = 'called welds examined'
        where project_id = v_project and id = any (v_done) and status = 'open';
        -- On Citus the change is announced from here (the shard's triggers can't).
        perform pipetrak.queue_change(v_project, 'review_items', v_done);
    end if;
end
$$;

-- QC swaps a called weld not yet examined for another welded weld of its lot, not yet examined or called.
create function pipetrak.repick_examination(p_component_id bigint, p_replacement_id bigint)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_weld pipetrak.field_welds;
    v_call pipetrak.examination_calls;
begin
    perform pipetrak.refuse_distributed('repick_examination');
    v_weld := pipetrak.lock_weld(p_component_id, 'quality_control');
    select * into v_call from pipetrak.examination_calls where component_id = p_component_id;
    if v_call.id is null or pipetrak.weld_current_result(p_component_id, 'RT') in ('PASS', 'FAIL') then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'component_id',
            'expected', 'a weld called for examination and not yet examined'));
    end if;
    if not exists (select from pipetrak.lot_welds(p_component_id) l
                   join pipetrak.components c on c.id = l.component_id and c.retired_at is null
                   where l.component_id = p_replacement_id and not l.called
                     and l.rt is distinct from 'PASS' and l.rt is distinct from 'FAIL') then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'replacement_id',
            'expected', 'a welded weld of the same lot, not yet examined or called'));
    end if;
    update pipetrak.examination_calls set component_id = p_replacement_id, chosen_by = 'qc' where id = v_call.id;
    update pipetrak.review_items
    set details = jsonb_set(jsonb_set(details, '{welds}',
            (select jsonb_agg(case when w.value::bigint = p_component_id then p_replacement_id else w.value::bigint end)
             from jsonb_array_elements_text(details -> 'welds') w)),
        '{weld_numbers}', (select jsonb_agg(c.tag order by c.id) from pipetrak.components c
                           where c.id in (select case when w.value::bigint = p_component_id then p_replacement_id else w.value::bigint end
                                          from jsonb_array_elements_text(details -> 'welds') w)))
    where component_id = v_call.failed_weld and kind = 'examination_called' and status = 'open'
      and details -> 'welds' @> to_jsonb(p_component_id);
    insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
    values (v_weld.project_id, p_component_id, 'examination_repicked', jsonb_build_object('called', p_component_id),
            jsonb_build_object('called', p_replacement_id), null, pipetrak.current_user_id());
end
$$;

-- The repaired welds of a project (few beside its welds): what the lots' repairs awaiting
-- re-examination start from, without reading every weld.
create index field_welds_repaired_idx on pipetrak.field_welds (project_id) where repaired_by is not null;

create view pipetrak_api.sampling_lots with (security_invoker = true) as
with lots as (
    select t.project_id, t.welder_id, t.weld_type, t.xray_percent, sum(t.lot_welded) as welded,
           sum(t.lot_examined) as examined, sum(t.lot_open_rejects) as unrepaired_rejects
    from pipetrak.weld_tallies t
    where t.welder_id is not null and t.xray_percent in (5, 10)
    group by t.project_id, t.welder_id, t.weld_type, t.xray_percent
    having sum(t.lot_welded) > 0),
calls as (
    select f.project_id, f.welder_id, f.weld_type, f.xray_percent, max(e.stage) as stage,
           array_agg(c.tag order by c.tag) filter (where f.current_nde ->> 'RT' is null
                                                   or f.current_nde ->> 'RT' not in ('PASS', 'FAIL')) as called_for
    from pipetrak.examination_calls e
    join pipetrak.field_welds f on f.component_id = e.component_id and f.project_id = e.project_id
    join pipetrak.components c on c.id = e.component_id and c.project_id = e.project_id
    where f.date_welded is not null and (c.retired_at is null or f.repaired_by is not null)
    group by f.project_id, f.welder_id, f.weld_type, f.xray_percent),
-- The lot's repaired rejects whose repair (the live end of the chain) has not passed yet.
awaiting as (
    select f.project_id, f.welder_id, f.weld_type, f.xray_percent, count(distinct e.id) as repairs
    from pipetrak.field_welds f
    cross join lateral (
        with recursive chain(id, depth) as (
            select f.repaired_by, 1
            union all
            select r.repaired_by, k.depth + 1 from chain k join pipetrak.field_welds r on r.component_id = k.id and r.project_id = f.project_id
            where r.repaired_by is not null and k.depth < 20)
        select k.id from chain k order by k.depth desc limit 1) e
    join pipetrak.field_welds x on x.component_id = e.id and x.project_id = f.project_id
    join pipetrak.components c on c.id = e.id and c.project_id = f.project_id and c.retired_at is null
    where f.repaired_by is not null and f.welder_id is not null and f.xray_percent in (5, 10) and f.date_welded is not null
      and x.status <> 'accepted'
    group by f.project_id, f.welder_id, f.weld_type, f.xray_percent)
select l.project_id, l.welder_id, w.stencil as welder, l.weld_type, l.xray_percent, l.welded, l.examined,
       r.required, greatest(r.required - l.examined, 0) as shortfall, coalesce(k.stage, 0) as stage,
       coalesce(k.called_for, '{}') as called_for,
       case when k.stage = 3 then 'full_examination'
            when k.stage > 0 and (cardinality(k.called_for) > 0 or l.unrepaired_rejects > 0 or a.repairs > 0) then 'progressive'
            when k.stage > 0 then 'accepted'
            when r.required > l.examined then 'sampling'
            else 'sampled' end as state,
       coalesce(a.repairs, 0) as repairs_awaiting_reexamination
from lots l
join pipetrak.welders w on w.id = l.welder_id and w.project_id = l.project_id
left join calls k on k.project_id = l.project_id and k.welder_id = l.welder_id and k.weld_type is not distinct from l.weld_type
                 and k.xray_percent = l.xray_percent
left join awaiting a on a.project_id = l.project_id and a.welder_id = l.welder_id and a.weld_type is not distinct from l.weld_type
                    and a.xray_percent = l.xray_percent
cross join lateral (select pipetrak.sampling_required(l.welded::integer, l.xray_percent) as required) r;
comment on view pipetrak_api.sampling_lots is 'X-ray lots of your projects (welder × weld type × tier 5/10 %): welded, examined (current RT PASS/FAIL), required, shortfall, progressive stage (0–3), welds called for and not yet examined, state (sampling, sampled, progressive, accepted, full_examination) and repairs of its rejects awaiting re-examination (a lot in progression is accepted once every called weld is examined and every reject repaired and its repair passed).';

create function pipetrak_api.repick_examination(component_id bigint, replacement_id bigint)
returns void
language sql volatile security invoker
as $$ select pipetrak.repick_examination(component_id, replacement_id) $$;
comment on function pipetrak_api.repick_examination(bigint, bigint) is
    'Swaps a weld called for examination (not yet examined) for another welded weld of its lot: QC''s pick instead of the random one. QC inspector and up.';
