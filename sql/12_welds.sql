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
--   Recording NDE resolves the weld's open `weld_complete` review item.
-- - Welders. Foreman and up create welders (unverified, like an import's unknown stencils); QC
--   inspector and up rename and verify them. Stencils are normalized and unique per project.
-- - Who records NDE: QC inspector, project manager, admin, owner (`quality_control`).

create table pipetrak.nde_results (
    id            bigserial primary key,
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
    foreign key (project_id, component_id) references pipetrak.components (project_id, id)
);
create index nde_results_component_idx on pipetrak.nde_results (component_id, method, id);
create index nde_results_project_idx on pipetrak.nde_results (project_id, id);

create table pipetrak.weld_events (
    id           bigserial primary key,
    project_id   bigint not null,
    component_id bigint not null,
    action       text not null,
    before       jsonb not null default '{}',
    after        jsonb not null default '{}',
    reason       text,
    actor        uuid not null,
    created_at   timestamptz not null default now(),
    foreign key (project_id, component_id) references pipetrak.components (project_id, id)
);
create index weld_events_component_idx on pipetrak.weld_events (component_id, id);
create index weld_events_project_idx on pipetrak.weld_events (project_id, id);

alter table pipetrak.nde_results enable row level security;
alter table pipetrak.weld_events enable row level security;
create policy nde_results_select_member on pipetrak.nde_results for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));
create policy weld_events_select_member on pipetrak.weld_events for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));

-- The weld's records are append-only for everyone, the extension's own functions included.
create function pipetrak.weld_record_immutable()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.raise_error('weld_record_immutable', jsonb_build_object('operation', lower(tg_op), 'table', tg_table_name));
    return null;
end
$$;
create trigger nde_results_no_update before update or delete on pipetrak.nde_results
    for each row execute function pipetrak.weld_record_immutable();
create trigger nde_results_no_truncate before truncate on pipetrak.nde_results
    for each statement execute function pipetrak.weld_record_immutable();
create trigger weld_events_no_update before update or delete on pipetrak.weld_events
    for each row execute function pipetrak.weld_record_immutable();
create trigger weld_events_no_truncate before truncate on pipetrak.weld_events
    for each statement execute function pipetrak.weld_record_immutable();

-- The weld's status from its current results (see the design notes).
create function pipetrak.weld_current_status(p_component_id bigint)
returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select pipetrak.weld_status(w.nde_types, w.xray_percent,
                                coalesce(array_agg(c.method order by c.id), '{}'), coalesce(array_agg(c.result order by c.id), '{}'))
    from pipetrak.field_welds w
    left join lateral (
        select distinct on (n.method) n.id, n.method, n.result
        from pipetrak.nde_results n
        where n.component_id = w.component_id
        order by n.method, n.id desc) c on c.result is not null
    where w.component_id = p_component_id
    group by w.nde_types, w.xray_percent
$$;

-- The weld (locked, checked for `p_permission`) and its facts; refuses what is not a field weld.
create function pipetrak.lock_weld(p_component_id bigint, p_permission text)
returns pipetrak.field_welds
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_component pipetrak.components := pipetrak.lock_component(p_component_id, p_permission);
    v_weld pipetrak.field_welds;
begin
    select * into v_weld from pipetrak.field_welds where component_id = v_component.id;
    if v_component.component_type <> 'field_weld' or v_weld.component_id is null then
        perform pipetrak.raise_error('not_a_field_weld', jsonb_build_object('component_id', p_component_id));
    end if;
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
    if v_method <> all (array['RT', 'UT', 'PT', 'MT', 'VT']) or v_result <> all (array['PASS', 'FAIL', 'PENDING']) then
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
    perform pipetrak.check_text_length('report_number', p_report_number, 100);
    perform pipetrak.check_text_length('notes', p_notes, 2000);
    perform pipetrak.check_text_length('reason', p_reason, 2000);
    select * into v_previous from pipetrak.nde_results
    where component_id = p_component_id and method = v_method order by id desc limit 1;
    if v_result is null and v_previous.result is null then
        perform pipetrak.raise_error('nde_not_recorded', jsonb_build_object('component_id', p_component_id, 'method', v_method));
    end if;
    if (v_previous.id is not null or v_result is null) and length(btrim(coalesce(p_reason, ''))) < 3 then
        perform pipetrak.raise_error('reason_required', jsonb_build_object('argument', 'reason',
            'why', case when v_result is null then 'clearing a result' else 'superseding the previous result' end));
    end if;
    insert into pipetrak.nde_results (project_id, component_id, method, result, examined_on, report_number, notes,
                                      supersedes, reason, recorded_by)
    values (v_weld.project_id, p_component_id, v_method, v_result, coalesce(p_examined_on, v_today), p_report_number,
            p_notes, v_previous.id, nullif(btrim(coalesce(p_reason, '')), ''), pipetrak.current_user_id())
    returning id into v_record_id;
    v_status := pipetrak.weld_current_status(p_component_id);
    update pipetrak.field_welds
    set status = v_status, nde_result = coalesce(v_result, nde_result), nde_date = coalesce(p_examined_on, v_today), updated_at = now()
    where component_id = p_component_id;
    insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
    values (v_weld.project_id, p_component_id, case when v_result is null then 'nde_cleared' else 'nde_recorded' end,
            jsonb_build_object('method', v_method, 'result', v_previous.result, 'status', v_weld.status),
            jsonb_build_object('method', v_method, 'result', v_result, 'status', v_status, 'nde_result_id', v_record_id),
            nullif(btrim(coalesce(p_reason, '')), ''), pipetrak.current_user_id());
    if v_result is not null then
        update pipetrak.review_items
        set resolved_at = now(), resolved_by = pipetrak.current_user_id(), resolution_note = format('NDE recorded: %s %s', v_method, v_result)
        where component_id = p_component_id and kind = 'weld_complete' and resolved_at is null;
    end if;
    return jsonb_build_object('component_id', p_component_id, 'method', v_method, 'result', v_result,
                              'status', v_status, 'nde_result_id', v_record_id);
end
$$;

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

create function pipetrak.clear_nde(p_component_id bigint, p_method text, p_reason text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    return pipetrak.write_nde(p_component_id, p_method, null, null, null, null, p_reason);
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
    perform pipetrak.check_text_length('name', p_name, 200);
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

create function pipetrak.rename_welder(p_welder_id bigint, p_name text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_welder pipetrak.welders := pipetrak.lock_welder(p_welder_id, 'quality_control');
begin
    perform pipetrak.check_text_length('name', p_name, 200);
    update pipetrak.welders set name = nullif(btrim(coalesce(p_name, '')), '') where id = v_welder.id;
end
$$;

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

-- ---- API ----

create view pipetrak_api.nde_results with (security_invoker = true) as
select n.id, n.project_id, n.component_id, n.method, n.result, n.examined_on, n.report_number, n.notes, n.supersedes,
       n.reason, n.recorded_by, n.recorded_at,
       not exists (select from pipetrak.nde_results later
                   where later.component_id = n.component_id and later.method = n.method and later.id > n.id) as is_current
from pipetrak.nde_results n;
comment on view pipetrak_api.nde_results is 'NDE records of your projects'' welds, append-only: is_current marks each method''s latest (a current record without a result means the method was cleared).';

create view pipetrak_api.weld_events with (security_invoker = true) as
select id, project_id, component_id, action, before, after, reason, actor, created_at from pipetrak.weld_events;
comment on view pipetrak_api.weld_events is 'The history of your projects'' welds (NDE recorded or cleared, …): who, when, before, after, reason. Append-only.';

create function pipetrak_api.record_nde(component_id bigint, method text, result text, examined_on date default null,
                                        report_number text default null, notes text default null, reason text default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.record_nde(component_id, method, result, examined_on, report_number, notes, reason) $$;
comment on function pipetrak_api.record_nde(bigint, text, text, date, text, text, text) is
    'Records an NDE result (method RT/UT/PT/MT/VT, result PASS/FAIL/PENDING) on a welded weld; a method recorded before is superseded and needs a reason. Returns the weld''s status. QC inspector and up.';

create function pipetrak_api.clear_nde(component_id bigint, method text, reason text)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.clear_nde(component_id, method, reason) $$;
comment on function pipetrak_api.clear_nde(bigint, text, text) is
    'Clears a weld''s current result for one NDE method with a reason (a superseding record without a result). QC inspector and up.';

create function pipetrak_api.create_welder(project_id bigint, stencil text, name text default null)
returns bigint
language sql volatile security invoker
as $$ select pipetrak.create_welder(project_id, stencil, name) $$;
comment on function pipetrak_api.create_welder(bigint, text, text) is
    'Adds a welder to a project by stencil (2–12 letters, digits or dashes; unique in the project), unverified. Foreman and up.';

create function pipetrak_api.rename_welder(welder_id bigint, name text)
returns void
language sql volatile security invoker
as $$ select pipetrak.rename_welder(welder_id, name) $$;
comment on function pipetrak_api.rename_welder(bigint, text) is 'Sets a welder''s name. QC inspector and up.';

create function pipetrak_api.verify_welder(welder_id bigint, verified boolean default true)
returns void
language sql volatile security invoker
as $$ select pipetrak.verify_welder(welder_id, verified) $$;
comment on function pipetrak_api.verify_welder(bigint, boolean) is 'Marks a welder verified (or not). QC inspector and up.';
