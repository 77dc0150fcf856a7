-- pipetrak 0.1.0 → 0.2.0. Collects the schema changes made after the 0.1.0 release, in order,
-- until 0.2.0 is released; then this file is frozen like every released script.
\echo Use "ALTER EXTENSION pipetrak UPDATE TO '0.2.0'" to load this file. \quit

-- The size limits of the API's arguments, by name: one vocabulary for every function (a `name`
-- is 200 characters wherever it is sent). Each pipetrak_api function passes its text, JSON and
-- list arguments through `pipetrak.limited` before anything else runs, so an oversized value is
-- refused before any lookup, lock or parse of its content; the functions behind them and the
-- tables' checks keep the same numbers (`argument_limit`). Texts count characters, JSON values
-- bytes as sent, lists items. A file (`content`) has its own limit (file_too_large, 50 MB).
-- (Batches: 10,000 items, each with a note or reason of up to 2,000 characters, fit in 16 MB; no
-- NOTIFY payload reaches 8,000 bytes.) One JSON constant: a limit is found by key, and a constant
-- name is folded into the plan of the statement that asks. No SET clause on these three, so they
-- are inlined (operators named in full).
create function pipetrak.argument_registry()
returns jsonb
language sql immutable parallel safe
as $$
    select '{
        "attributes": [16384, "bytes"], "changes": [65536, "bytes"], "client": [200, "characters"],
        "client_request_id": [200, "characters"], "client_spec": [200, "characters"],
        "company_role": [200, "characters"], "component_ids": [10000, "items"],
        "component_type": [100, "characters"], "confirm_name": [200, "characters"],
        "corrections": [16777216, "bytes"], "data": [65536, "bytes"], "description": [2000, "characters"],
        "display_name": [200, "characters"], "drawing_no": [200, "characters"], "email": [320, "characters"],
        "filename": [255, "characters"], "group_by": [50, "characters"], "job_number": [100, "characters"],
        "kind": [50, "characters"], "line_numbers": [4000, "characters"], "medium": [200, "characters"],
        "method": [20, "characters"], "milestone": [100, "characters"], "name": [200, "characters"],
        "note": [2000, "characters"], "notes": [2000, "characters"], "payload": [7999, "characters"],
        "query": [200, "characters"], "reason": [2000, "characters"], "report_number": [100, "characters"],
        "result": [20, "characters"], "revision": [50, "characters"], "role": [50, "characters"],
        "sequence_mode": [20, "characters"], "sheet": [50, "characters"], "signoff": [50, "characters"],
        "size": [50, "characters"], "spec": [200, "characters"], "stage": [50, "characters"],
        "stencil": [50, "characters"], "tag": [200, "characters"], "temperature_unit": [20, "characters"],
        "test_pressure_unit": [20, "characters"], "test_type": [50, "characters"],
        "time_zone": [100, "characters"], "title": [500, "characters"], "token": [200, "characters"],
        "updates": [16777216, "bytes"], "weights": [16384, "bytes"], "weld_number": [200, "characters"],
        "weld_type": [50, "characters"]
    }'::pg_catalog.jsonb
$$;

-- The registry as rows: argument, limit, unit.
create function pipetrak.argument_limits()
returns table (argument text, max integer, unit text)
language sql immutable parallel safe
as $$
    select r.key, (r.value operator(pg_catalog.->>) 0)::pg_catalog.int4, r.value operator(pg_catalog.->>) 1
    from pg_catalog.jsonb_each(pipetrak.argument_registry()) r
$$;

-- The limit of one argument (null for a name the registry lacks).
create function pipetrak.argument_limit(p_argument text)
returns integer
language sql immutable parallel safe
as $$
    select (pipetrak.argument_registry() operator(pg_catalog.->) p_argument operator(pg_catalog.->>) 0)::pg_catalog.int4
$$;

-- `p_value` when it is within its argument's limit; otherwise a catalogued error naming the
-- argument, its limit and its size (text_too_long, value_too_large, batch_too_large). An argument
-- the registry lacks is a bug of the extension, refused whatever its size. Security definer: the
-- wrappers run as their caller, who may not call the private error function.
create function pipetrak.limited(p_argument text, p_value text)
returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_max integer := pipetrak.argument_limit(p_argument);
begin
    if v_max is null then
        raise exception 'pipetrak: no limit registered for argument %', p_argument;
    end if;
    -- A text of no more bytes than the limit has no more characters: counting them walks the text.
    if octet_length(p_value) > v_max and length(p_value) > v_max then
        perform pipetrak.raise_error('text_too_long', jsonb_build_object('argument', p_argument, 'max_length', v_max, 'length', length(p_value)));
    end if;
    return p_value;
end
$$;

create function pipetrak.limited(p_argument text, p_value jsonb)
returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_max integer := pipetrak.argument_limit(p_argument);
begin
    if v_max is null then
        raise exception 'pipetrak: no limit registered for argument %', p_argument;
    end if;
    perform pipetrak.check_json_size(p_argument, p_value, v_max);
    return p_value;
end
$$;

create function pipetrak.limited(p_argument text, p_value anyarray)
returns anyarray
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_max integer := pipetrak.argument_limit(p_argument);
begin
    if v_max is null then
        raise exception 'pipetrak: no limit registered for argument %', p_argument;
    end if;
    if cardinality(p_value) > v_max then
        perform pipetrak.raise_error('batch_too_large', jsonb_build_object('argument', p_argument, 'items', cardinality(p_value), 'limit', v_max));
    end if;
    return p_value;
end
$$;

-- Earned credit comes back in named columns (earned_total … earned_restore) instead of one
-- positional array: the Rust functions milestone_credit and plan_milestone replace
-- milestone_earned and plan_milestone_update (whose symbols stay in the library for databases
-- still at 0.1.0), and their two callers are rewritten.
create function pipetrak.milestone_credit(
	"weights" INT[],
	"categories" TEXT[],
	"values" INT[]
) RETURNS TABLE (
	"earned_total" INT,
	"earned_receive" INT,
	"earned_install" INT,
	"earned_punch" INT,
	"earned_test" INT,
	"earned_restore" INT
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'milestone_credit_wrapper';

create function pipetrak.plan_milestone(
	"names" TEXT[],
	"weights" INT[],
	"partial" bool[],
	"categories" TEXT[],
	"current_values" INT[],
	"milestone" TEXT,
	"value" TEXT,
	"has_welder" bool,
	"sequence_mode" TEXT
) RETURNS TABLE (
	"error_code" TEXT,
	"milestone_index" INT,
	"old_value" INT,
	"new_values" INT[],
	"earned_total" INT,
	"earned_receive" INT,
	"earned_install" INT,
	"earned_punch" INT,
	"earned_test" INT,
	"earned_restore" INT,
	"violations" TEXT[]
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'plan_milestone_wrapper';

-- Sets one milestone of one component (spec §5, §9). See pipetrak_api.update_milestone.
create or replace function pipetrak.update_milestone(p_component_id bigint, p_milestone text, p_value numeric, p_work_date date,
                                          p_note text, p_client_request_id text, p_expected_version integer)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user uuid := pipetrak.require_user();
    v_component pipetrak.components;
    v_ctx record;
    v_local_now timestamp;
    v_work_date date;
    v_problem text;
    v_plan record;
    v_event_id bigint;
    v_result jsonb;
begin
    if p_client_request_id is not null then
        select result into v_result from pipetrak.client_requests
        where user_id = v_user and client_request_id = p_client_request_id;
        if found then
            return v_result;
        end if;
    end if;
    if p_milestone is null or p_value is null then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "milestone, value", "expected": "a milestone name and a value"}');
    end if;
    -- Inline rather than through check_text_length/check_date: this is the hot path.
    -- (The limits are constants folded into the cached plans.)
    if length(p_note) > pipetrak.argument_limit('note') then
        perform pipetrak.raise_error('text_too_long', jsonb_build_object('argument', 'note', 'max_length', pipetrak.argument_limit('note'),
                                                                         'length', length(p_note)));
    elsif length(p_client_request_id) > pipetrak.argument_limit('client_request_id') then
        perform pipetrak.raise_error('text_too_long', jsonb_build_object('argument', 'client_request_id',
                                                                         'max_length', pipetrak.argument_limit('client_request_id'),
                                                                         'length', length(p_client_request_id)));
    elsif not isfinite(p_work_date) then
        perform pipetrak.raise_error('invalid_date', jsonb_build_object('argument', 'work_date', 'value', p_work_date::text));
    end if;

    -- One locked read for the component, its project, the caller's role and the template: this is
    -- the hot path, so it does not go through lock_component + require_project_role.
    select c as component, m.role, p.archived_at, p.time_zone, p.week_lock, p.sequence_mode,
           t.names, t.weights, t.is_partial, t.categories, b.budget_mh
    into v_ctx
    from pipetrak.components c
    join pipetrak.projects p on p.id = c.project_id
    join pipetrak.memberships m on m.organization_id = p.organization_id and m.user_id = v_user
    join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
    left join pipetrak.component_budgets b on b.component_id = c.id
    where c.id = p_component_id
    for update of c;
    v_component := v_ctx.component;
    if v_ctx.role is null then
        perform pipetrak.raise_error('component_not_found', jsonb_build_object('component_id', p_component_id));
    elsif not pipetrak.role_can(v_ctx.role, 'update_milestones') then
        perform pipetrak.raise_error('permission_denied', jsonb_build_object('role', v_ctx.role, 'needs', 'update_milestones'));
    elsif v_ctx.archived_at is not null then
        perform pipetrak.raise_error('project_archived', jsonb_build_object('project_id', v_component.project_id));
    elsif v_component.retired_at is not null then
        perform pipetrak.raise_error('component_retired', jsonb_build_object('component_id', p_component_id));
    end if;
    if p_expected_version is not null and p_expected_version <> v_component.version then
        perform pipetrak.raise_error('version_conflict',
            jsonb_build_object('expected_version', p_expected_version, 'current', pipetrak.component_state(v_component, v_ctx.names, null, null)));
    end if;

    v_local_now := now() at time zone v_ctx.time_zone;
    v_work_date := coalesce(p_work_date, v_local_now::date);
    v_problem := pipetrak.work_date_problem(v_work_date - date '1970-01-01', extract(epoch from v_local_now)::bigint,
                                            v_ctx.week_lock, v_ctx.role in ('owner', 'admin'));
    -- A weld log being committed is the historical record: its dates may lie in a locked week.
    -- Only the extension's own import marks its transaction so (a private table).
    if v_problem = 'work_week_locked' and exists (select from pipetrak.historical_writes h where h.txid = txid_current()) then
        v_problem := null;
    end if;
    if v_problem is not null then
        perform pipetrak.raise_error(v_problem, jsonb_build_object('work_date', v_work_date, 'time_zone', v_ctx.time_zone));
    end if;

    -- Un-welding (spec §7): lowering Weld Complete needs a reason, and is refused while the weld has
    -- a current NDE result.
    if v_component.component_type = 'field_weld' and p_milestone = 'Weld Complete' and p_value < 100
       and v_component.milestone_values[array_position(v_ctx.names, 'Weld Complete')] = 100 then
        if length(btrim(coalesce(p_note, ''))) < 3 then
            perform pipetrak.raise_error('reason_required', jsonb_build_object('argument', 'note', 'why', 'un-welding a weld', 'min_length', 3));
        end if;
        if exists (select from pipetrak.field_welds f where f.component_id = v_component.id and f.current_nde <> '{}') then
            perform pipetrak.raise_error('weld_has_nde', jsonb_build_object('component_id', v_component.id));
        end if;
    end if;

    select * into v_plan from pipetrak.plan_milestone(
        v_ctx.names, v_ctx.weights, v_ctx.is_partial, v_ctx.categories,
        array(select (v * 100)::integer from unnest(v_component.milestone_values) v),
        p_milestone, p_value::text,
        v_component.component_type = 'field_weld'
            and exists (select from pipetrak.field_welds w where w.component_id = v_component.id and w.welder_id is not null),
        v_ctx.sequence_mode);
    if v_plan.error_code is not null then
        perform pipetrak.raise_error(v_plan.error_code, jsonb_build_object(
            'milestone', p_milestone, 'value', p_value, 'milestones', to_jsonb(v_ctx.names),
            'violations', to_jsonb(v_plan.violations)));
    end if;

    update pipetrak.components set
        milestone_values = array(select v / 100.0 from unnest(v_plan.new_values) v),
        earned_total = v_plan.earned_total, earned_receive = v_plan.earned_receive, earned_install = v_plan.earned_install,
        earned_punch = v_plan.earned_punch, earned_test = v_plan.earned_test, earned_restore = v_plan.earned_restore,
        version = version + 1, updated_at = now()
    where id = v_component.id
    returning * into v_component;

    -- Weeks that locked since the last write are frozen before this one lands (spec §11).
    perform pipetrak.take_due_snapshots(v_component.project_id,
        date '1970-01-01' + pipetrak.last_locked_sunday(extract(epoch from v_local_now)::bigint)::integer);
    -- The event keeps the credit it earned (a rollback's is negative) and its man-hours at the
    -- component's budget now: history reports sum them.
    insert into pipetrak.milestone_events (project_id, component_id, milestone, old_value, new_value, work_date, user_id,
                                           note, out_of_sequence, violations, client_request_id, category, credit, mh)
    values (v_component.project_id, v_component.id, v_ctx.names[v_plan.milestone_index], v_plan.old_value / 100.0,
            v_plan.new_values[v_plan.milestone_index] / 100.0, v_work_date, v_user, p_note,
            cardinality(v_plan.violations) > 0, v_plan.violations, p_client_request_id,
            v_ctx.categories[v_plan.milestone_index], v_component.earned_total - (v_ctx.component).earned_total,
            v_ctx.budget_mh * (v_component.earned_total - (v_ctx.component).earned_total) / 1000000)
    returning id into v_event_id;

    if cardinality(v_plan.violations) > 0 then
        insert into pipetrak.review_items (project_id, component_id, event_id, kind, details)
        values (v_component.project_id, v_component.id, v_event_id, 'out_of_sequence',
                jsonb_build_object('milestone', v_ctx.names[v_plan.milestone_index], 'violations', to_jsonb(v_plan.violations)));
    end if;

    v_result := pipetrak.component_state(v_component, v_ctx.names, cardinality(v_plan.violations) > 0, v_plan.violations)
                || jsonb_build_object('event_id', v_event_id);
    if p_client_request_id is not null then
        insert into pipetrak.client_requests (user_id, client_request_id, project_id, result)
        values (v_user, p_client_request_id, v_component.project_id, v_result);
    end if;
    return v_result;
end
$$;

-- Recomputes the stored credit of a set of components from their values and current template.
create or replace function pipetrak.recompute_components(p_project_id bigint, p_component_type text)
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
        select c.id, e.*
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
    where e.id = c.id
      and (c.earned_total, c.earned_receive, c.earned_install, c.earned_punch, c.earned_test, c.earned_restore)
          is distinct from (e.earned_total, e.earned_receive, e.earned_install, e.earned_punch, e.earned_test, e.earned_restore);
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

-- Which component types are identified by id, by footage, one per tag or per seq is decided once,
-- in Rust (component_types); the SQL that listed type names asks it instead.
create function pipetrak.component_types(
	"identity" TEXT
) RETURNS TEXT[]
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'component_types_wrapper';

-- What makes a component unique among the live components of its project (spec §4); imports
-- compute the same key for rows they compare with the project. Numbers are cast to text
-- explicitly: `text || bigint` is only stable, and an immutable SQL function whose body isn't
-- immutable is never inlined — it would run as a function call per row (~10 µs each).
create or replace function pipetrak.identity_key(p_type text, p_drawing_id bigint, p_tag text, p_size text, p_seq integer)
returns text
language sql immutable parallel safe
as $$
    select case
        when p_type = any (pipetrak.component_types('by_id')) then p_type || '|' || p_tag
        when p_type = any (pipetrak.component_types('per_drawing')) then p_type || '|' || p_drawing_id::pg_catalog.text || '|' || p_tag
        when p_type = any (pipetrak.component_types('linear_aggregate')) then p_type || '|' || p_drawing_id::pg_catalog.text || '|' || p_size || '|' || p_tag
        when p_type = any (pipetrak.component_types('single')) then p_type || '|' || p_drawing_id::pg_catalog.text || '|' || p_tag || '|' || p_size
        else p_type || '|' || p_drawing_id::pg_catalog.text || '|' || p_tag || '|' || p_size || '|' || p_seq::pg_catalog.text
    end
$$;

-- Creates a component, exploding a quantity into seqs 1..n for per-seq types (only the missing
-- seqs are created). Pipe aggregates take the given footage. Returns {"created": [ids], "existing": [ids]}.
create or replace function pipetrak.create_component(p_project_id bigint, p_drawing_id bigint, p_component_type text, p_tag text,
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

-- The components a job's rows stand for (per-seq rows counted out; one chunk, or all when
-- `p_chunk` is null), each beside the live component of the project with the same identity
-- when `p_compare` (a writer leaves that to ON CONFLICT, which always probes the right index).
-- No SET clause, so the planner inlines it into the statements that use it.
create or replace function pipetrak.import_plan(p_import_id bigint, p_project_id bigint, p_chunk integer, p_compare boolean)
returns table (line integer, chunk integer, component_type text, drawing_key text, tag text, size text, seq integer,
               quantity numeric, description text, spec text, attributes jsonb, area text, system text,
               test_package text, existing_id bigint, existing_quantity numeric, merged boolean)
language sql stable
as $$
    select r.line, r.chunk, r.component_type, r.drawing_key, r.tag, r.size, s.seq, coalesce(r.group_quantity, 1),
           r.description, r.spec, r.attributes, r.area, r.system, r.test_package, c.id, c.quantity,
           r.component_type = any (pipetrak.component_types('linear_aggregate') || pipetrak.component_types('single')) and r.issues @> '[{"code": "rows_merged"}]'
    from pipetrak.import_rows r
    cross join lateral generate_series(r.seq_from, r.seq_to) as s(seq)
    left join lateral (
        select x.id from pipetrak.drawings x
        where p_compare and x.project_id = p_project_id and x.drawing_key = r.drawing_key and x.retired_at is null
        limit 1) d on true
    -- A lateral probe per row. Only spools are identified without their drawing, so a new
    -- drawing's rows probe nothing.
    left join lateral (
        select x.id, x.quantity from pipetrak.components x
        where p_compare and (d.id is not null or r.component_type = any (pipetrak.component_types('by_id')))
          and x.project_id = p_project_id and x.retired_at is null
          and x.identity_key = pipetrak.identity_key(r.component_type, d.id, r.tag, r.size, s.seq)
        limit 1) c on true
    where r.import_id = p_import_id and r.status = 'valid' and (p_chunk is null or r.chunk = p_chunk)
      -- An instance the project retired is not made again (a re-import never brings one back;
      -- a row every instance of which is retired is skipped with its reason before this): the
      -- file's other instances are. A probe of the small index of retired identities.
      and not exists (
          select from pipetrak.drawings x
          join pipetrak.components k on k.project_id = p_project_id and k.retired_at is not null
               and k.identity_key = pipetrak.identity_key(r.component_type, x.id, r.tag, r.size, s.seq)
          where x.project_id = p_project_id and x.drawing_key = r.drawing_key and x.retired_at is null
            and not exists (select from pipetrak.components l
                            where l.project_id = p_project_id and l.retired_at is null and l.identity_key = k.identity_key))
$$;

-- Dry run (spec §6.2): reads the file, stages its rows with their issues, compares them with the
-- project and stores the summary. Writes nothing else.
create or replace function pipetrak.import_validate(p_import_id bigint)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
-- Set-based statements over staged rows: JIT compilation costs more than it saves here, and
-- index probes stay right even while a big import leaves the statistics of components stale.
set jit = off
set enable_seqscan = off
as $$
declare
    v_job pipetrak.import_jobs := pipetrak.lock_import(p_import_id);
    v_project pipetrak.projects;
    v_file jsonb;
    v_repeats jsonb;
    v_duplicates integer;
    v_components jsonb;
    v_would jsonb;
    v_summary jsonb;
    v_has_drawings boolean;
    v_flagged integer;
    v_warnings_added integer := 0;
    v_infos_added integer := 0;
    v_failed boolean;
    v_similar jsonb;
begin
    if v_job.status in ('committing', 'committed') then
        perform pipetrak.raise_error('import_already_committed', jsonb_build_object('import_id', p_import_id, 'status', v_job.status));
    end if;
    select * into v_project from pipetrak.projects where id = v_job.project_id;
    -- The organization's own expired staged rows go first: each tenant pays for its own.
    perform pipetrak.purge_staged_rows(v_project.organization_id);
    delete from pipetrak.import_rows where import_id = p_import_id;
    v_file := pipetrak.import_stage(p_import_id, v_job.kind, (now() at time zone v_project.time_zone)::date);
    -- A file that can't be read, or holds nothing to import, fails with its reason and keeps no
    -- rows: none of them may look valid.
    v_failed := not (v_file ? 'header')
        or exists (select from jsonb_array_elements(coalesce(v_file -> 'file_issues', '[]')) i where i ->> 'severity' = 'error');
    if v_failed then
        delete from pipetrak.import_rows where import_id = p_import_id;
        v_summary := jsonb_build_object(
            'import_id', p_import_id, 'kind', v_job.kind, 'filename', v_job.filename,
            'format', v_file -> 'format', 'sheet', v_file -> 'sheet', 'header_line', v_file -> 'header_line',
            'header', v_file -> 'header',
            'rows', jsonb_build_object('rows_read', 0, 'valid', 0, 'with_errors', 0, 'skipped', 0),
            'issues', (select jsonb_build_object(
                           'error', count(*) filter (where i ->> 'severity' = 'error'),
                           'warning', count(*) filter (where i ->> 'severity' = 'warning'),
                           'info', count(*) filter (where i ->> 'severity' = 'info'))
                       from jsonb_array_elements(coalesce(v_file -> 'file_issues', '[]')) i),
            'file_issues', coalesce(v_file -> 'file_issues', '[]'));
        update pipetrak.import_jobs set status = 'failed', summary = v_summary, validated_at = now(), updated_at = now(),
            staged_until = null, chunks_total = null, chunks_done = 0, result = '{}'
        where id = p_import_id;
        return v_summary || jsonb_build_object('status', 'failed');
    end if;
    -- Fresh statistics, so the statements below and the commit plan for the real number of rows.
    analyze pipetrak.import_rows (import_id, chunk, line, status, component_type, drawing_key, maybe_repeated);

    -- A remediation CSV read back: each row's PIPETRAK REF (staged in its attributes) names the
    -- original row it stands for, which must be a row of an import of this project.
    if exists (select from jsonb_array_elements_text(v_file -> 'header') h where upper(btrim(h)) = 'PIPETRAK REF') then
        with refs as (
            select r.line, split_part(r.attributes ->> 'pipetrak_ref', ':', 1)::bigint as import_id,
                   split_part(r.attributes ->> 'pipetrak_ref', ':', 2)::integer as origin_line
            from pipetrak.import_rows r
            where r.import_id = p_import_id and r.attributes ? 'pipetrak_ref'),
        judged as (
            select x.*, exists (select from pipetrak.import_jobs o where o.id = x.import_id and o.project_id = v_job.project_id
                                and o.id <> p_import_id) as known
            from refs x)
        update pipetrak.import_rows r set
            attributes = r.attributes - 'pipetrak_ref',
            origin_import_id = case when j.known then j.import_id end,
            origin_line = case when j.known then j.origin_line end,
            issues = case when j.known then r.issues else r.issues || jsonb_build_array(pipetrak.import_issue(r.line,
                'unknown_reference', format('%s:%s is not a row of an import of this project', j.import_id, j.origin_line),
                'PIPETRAK REF', format('%s:%s', j.import_id, j.origin_line))) end
        from judged j
        where r.import_id = p_import_id and r.line = j.line;
        v_warnings_added := v_warnings_added + (select count(*) from pipetrak.import_rows r
            where r.import_id = p_import_id and r.issues @> '[{"code": "unknown_reference"}]');
    end if;

    -- A row's man-hour budget, staged in its attributes (the staging statement serves every
    -- installed version), goes to its own column.
    update pipetrak.import_rows r set budget_mh = (r.attributes ->> 'pipetrak_budget_mh')::numeric,
        attributes = r.attributes - 'pipetrak_budget_mh'
    where r.import_id = p_import_id and r.attributes ? 'pipetrak_budget_mh';

    -- Rules across rows, when the reader flagged rows that may repeat earlier ones; the reader's
    -- counts and what it found are corrected by what they changed.
    if coalesce((v_file ->> 'maybe_repeated')::integer, 0) > 0 then
        v_repeats := pipetrak.import_resolve_repeats(p_import_id, v_job.kind);
        v_duplicates := (v_repeats ->> 'duplicates')::integer;
        v_file := jsonb_set(v_file, '{rows}', v_file -> 'rows' || jsonb_build_object(
            'valid', (v_file -> 'rows' ->> 'valid')::integer - v_duplicates,
            'with_errors', (v_file -> 'rows' ->> 'with_errors')::integer + v_duplicates,
            'errors', (v_file -> 'rows' ->> 'errors')::integer + v_duplicates,
            'warnings', (v_file -> 'rows' ->> 'warnings')::integer + (v_repeats ->> 'identical')::integer,
            'infos', (v_file -> 'rows' ->> 'infos')::integer + (v_repeats ->> 'merged')::integer));
        v_file := jsonb_set(v_file, '{found,components}',
            to_jsonb((v_file -> 'found' ->> 'components')::bigint - (v_repeats ->> 'not_components')::bigint));
        -- What only the rows now invalid named is no longer found.
        if v_duplicates > 0 then
            v_file := jsonb_set(v_file, '{found}', v_file -> 'found' || jsonb_build_object(
                'areas', pipetrak.import_still_named(p_import_id, 'area', v_file -> 'found' -> 'areas'),
                'systems', pipetrak.import_still_named(p_import_id, 'system', v_file -> 'found' -> 'systems'),
                'test_packages', pipetrak.import_still_named(p_import_id, 'test_package', v_file -> 'found' -> 'test_packages'),
                'stencils', pipetrak.import_still_named(p_import_id, 'stencil', v_file -> 'found' -> 'stencils')));
        end if;
    end if;

    -- Two spellings of a drawing number in this file that stay different but look alike (the same
    -- letters and digits): a warning on the first row of each spelling after the first. The pairs
    -- are found over the distinct keys; only their few rows are then read and written.
    select coalesce(jsonb_agg(jsonb_build_array(s.line, s.first_line)), '[]') into v_similar
    from (select k.line, first_value(k.line) over (partition by k.lookalike order by k.line) as first_line
          from (select x.drawing_key, min(x.line) as line, pipetrak.drawing_lookalike(x.drawing_key) as lookalike
                from pipetrak.import_rows x
                where x.import_id = p_import_id and x.status = 'valid'
                group by x.drawing_key) k) s
    where s.line <> s.first_line;
    if jsonb_array_length(v_similar) > 0 then
        update pipetrak.import_rows r
        set issues = r.issues || jsonb_build_array(pipetrak.import_issue(r.line, 'similar_drawing_in_file',
            format('Drawing %s looks like %s on row %s of this file', r.drawing_no, f.drawing_no, f.line), 'DRAWING', r.drawing_no))
        from jsonb_array_elements(v_similar) p(pair)
        join pipetrak.import_rows f on f.import_id = p_import_id and f.line = (p.pair ->> 1)::integer
        where r.import_id = p_import_id and r.line = (p.pair ->> 0)::integer;
        v_warnings_added := v_warnings_added + jsonb_array_length(v_similar);
    end if;

    -- Comparisons with what the project holds; a project without drawings holds nothing to compare.
    v_has_drawings := exists (select from pipetrak.drawings d where d.project_id = v_job.project_id and d.retired_at is null);

    -- New drawings that look like existing ones (trigram similarity) get a hint on their first row.
    if v_has_drawings then
        update pipetrak.import_rows r
        set issues = r.issues || jsonb_build_array(pipetrak.import_issue(r.line, 'similar_drawing_exists',
            format('Drawing %s is not in the project; similar: %s', r.drawing_no, s.similar), 'DRAWING', r.drawing_no))
        from (
            select n.drawing_key, min(n.line) as line, string_agg(m.drawing_no, ', ' order by m.score desc) as similar
            from (select x.drawing_key, min(x.line) as line from pipetrak.import_rows x
                  where x.import_id = p_import_id and x.status = 'valid'
                    and not exists (select from pipetrak.drawings d where d.project_id = v_job.project_id
                                    and d.drawing_key = x.drawing_key and d.retired_at is null)
                  group by x.drawing_key) n
            cross join lateral pipetrak.similar_drawings(v_job.project_id, n.drawing_key) m
            group by n.drawing_key
        ) s
        where r.import_id = p_import_id and r.line = s.line;
        get diagnostics v_flagged = row_count;
        v_warnings_added := v_warnings_added + v_flagged;

        -- A lower quantity than the project holds deletes nothing: warn with the surplus components.
        update pipetrak.import_rows r
        set issues = r.issues || jsonb_build_array(pipetrak.import_issue(r.line, 'quantity_below_existing',
            format('The project holds %s of this item, the file %s; surplus component ids: %s',
                   s.planned + s.surplus_count, s.planned, s.surplus_ids), 'QTY', s.planned::text))
        from (
            select g.last_line, g.planned, count(*) as surplus_count, string_agg(c.id::text, ', ' order by c.seq) as surplus_ids
            from (select x.component_type, x.drawing_key, x.tag, x.size, max(x.seq_to) as planned, max(x.line) as last_line
                  from pipetrak.import_rows x
                  where x.import_id = p_import_id and x.status = 'valid'
                    and x.component_type = any (pipetrak.component_types('per_seq'))
                  group by 1, 2, 3, 4) g
            join pipetrak.drawings d on d.project_id = v_job.project_id and d.drawing_key = g.drawing_key and d.retired_at is null
            join pipetrak.components c on c.project_id = v_job.project_id and c.drawing_id = d.id and c.retired_at is null
                and c.component_type = g.component_type and c.tag = g.tag and c.size = g.size and c.seq > g.planned
            group by g.last_line, g.planned
        ) s
        where r.import_id = p_import_id and r.line = s.last_line;
        get diagnostics v_flagged = row_count;
        v_warnings_added := v_warnings_added + v_flagged;
    end if;

    -- A weld number the project holds on another drawing but not on this one makes a new weld
    -- (a weld is its drawing and number, spec §4): noted, with the other drawing.
    if exists (select from pipetrak.components c where c.project_id = v_job.project_id and c.component_type = 'field_weld'
               and c.retired_at is null) then
        update pipetrak.import_rows r
        set issues = r.issues || jsonb_build_array(pipetrak.import_issue(r.line, 'weld_number_elsewhere',
            format('Weld %s is also on drawing %s; this row makes a new weld on %s', r.tag, o.other, r.drawing_no),
            'WELD ID', r.tag))
        from (select v.line,
                     (select d.drawing_no from pipetrak.components c join pipetrak.drawings d on d.id = c.drawing_id
                      where c.project_id = v_job.project_id and c.component_type = 'field_weld' and c.retired_at is null
                        and c.tag = v.tag and d.drawing_key <> v.drawing_key
                      order by d.drawing_no limit 1) as other
              from pipetrak.import_rows v
              where v.import_id = p_import_id and v.status = 'valid' and v.component_type = 'field_weld'
                and not exists (select from pipetrak.live_weld(v_job.project_id, v.drawing_key, v.tag))) o
        where r.import_id = p_import_id and r.line = o.line and o.other is not null;
        get diagnostics v_flagged = row_count;
        v_infos_added := v_infos_added + v_flagged;
    end if;

    -- What a commit would create, update and leave alone. Into a project without components, all
    -- the file's components are new: the reader counted them; otherwise each is compared.
    if not exists (select from pipetrak.components c where c.project_id = v_job.project_id and c.retired_at is null) then
        v_components := jsonb_build_object('create', coalesce((v_file -> 'found' ->> 'components')::bigint, 0),
                                           'update', 0, 'unchanged', 0);
    else
        -- One pass over the planned components. Only a row merged into an earlier pipe or
        -- instrument row repeats an identity (per-seq rows get disjoint seq ranges, repeated ids are
        -- errors), so leaving those out counts each component once.
        with planned as (
            select count(*) filter (where p.existing_id is null) as created,
                   count(*) filter (where p.existing_id is not null) as existing,
                   count(*) filter (where p.existing_id is not null and p.component_type = any (pipetrak.component_types('linear_aggregate'))
                                      and p.quantity is distinct from p.existing_quantity) as footage_changed
            from pipetrak.import_plan(p_import_id, v_job.project_id, null, true) p
            where not p.merged),
        changed_welds as (
            select count(*) as changed
            from pipetrak.import_rows v
            cross join lateral pipetrak.live_weld(v_job.project_id, v.drawing_key, v.tag) c
            join pipetrak.field_welds w on w.component_id = c.id
            left join pipetrak.welders wd on wd.id = w.welder_id
            where v.import_id = p_import_id and v.status = 'valid' and v.component_type = 'field_weld' and v_job.kind = 'field_welds'
              and (v.weld_type, v.weld_size, v.schedule, v.base_metal, v.spec, v.xray_percent, v.pwht_required,
                   coalesce(v.nde_types, '{}'), v.stencil, v.date_welded, v.nde_result)
                  is distinct from (w.weld_type, w.weld_size, w.schedule, w.base_metal, w.spec, w.xray_percent,
                   w.pwht_required, w.nde_types, wd.stencil, w.date_welded, w.nde_result))
        select jsonb_build_object(
            'create', p.created,
            'update', p.footage_changed + w.changed,
            'unchanged', p.existing - p.footage_changed - w.changed)
        from planned p, changed_welds w
        into v_components;
    end if;
    -- Drawings: the distinct keys of the staged rows; reference names and stencils: the distinct
    -- values the reader found. Each looked up.
    select jsonb_build_object(
        'components', v_components,
        'drawings', pipetrak.import_drawing_counts(p_import_id, v_job.project_id),
        'areas', pipetrak.import_name_counts(v_job.project_id, 'areas',
                     array(select distinct lower(n) from jsonb_array_elements_text(v_file -> 'found' -> 'areas') n)),
        'systems', pipetrak.import_name_counts(v_job.project_id, 'systems',
                     array(select distinct lower(n) from jsonb_array_elements_text(v_file -> 'found' -> 'systems') n)),
        'test_packages', pipetrak.import_name_counts(v_job.project_id, 'test_packages',
                     array(select distinct lower(n) from jsonb_array_elements_text(v_file -> 'found' -> 'test_packages') n)),
        'welders', (select jsonb_build_object('create', count(*) filter (where not e.found), 'unchanged', count(*) filter (where e.found))
                    from jsonb_array_elements_text(v_file -> 'found' -> 'stencils') s(stencil)
                    cross join lateral (select exists (select from pipetrak.welders w where w.project_id = v_job.project_id
                                                       and w.stencil = s.stencil) as found) e))
    into v_would;

    v_summary := jsonb_build_object(
        'import_id', p_import_id, 'kind', v_job.kind, 'filename', v_job.filename,
        'format', v_file -> 'format', 'sheet', v_file -> 'sheet', 'header_line', v_file -> 'header_line',
        'header', v_file -> 'header', 'rows', v_file -> 'rows',
        -- Counted while reading, plus the warnings added above by comparing with the project.
        'issues', jsonb_build_object(
            'error', coalesce((v_file -> 'rows' ->> 'errors')::integer, 0),
            'warning', coalesce((v_file -> 'rows' ->> 'warnings')::integer, 0) + v_warnings_added,
            'info', coalesce((v_file -> 'rows' ->> 'infos')::integer, 0) + v_infos_added),
        'file_issues', coalesce(v_file -> 'file_issues', '[]'),
        'would', v_would);
    if (v_summary -> 'issues' ->> 'error')::integer + (v_summary -> 'issues' ->> 'warning')::integer > 0 then
        perform pipetrak.import_mark_reported(p_import_id);
    end if;
    update pipetrak.import_jobs set
        status = 'validated', summary = v_summary, validated_at = now(), updated_at = now(),
        staged_until = now() + interval '7 days', chunks_total = null, chunks_done = 0, result = '{}'
    where id = p_import_id;
    return v_summary || jsonb_build_object('status', 'validated');
end
$$;

-- Where an id must be unique in a file: '' (the whole file) for spool ids, the drawing for weld
-- numbers (spec §4), null for types identified otherwise. No SET clause, so it is inlined.
create function pipetrak.import_id_scope(p_type text, p_drawing_key text)
returns text
language sql immutable parallel safe
as $$
    select case when p_type = any (pipetrak.component_types('by_id')) then ''
                when p_type = any (pipetrak.component_types('per_drawing')) then p_drawing_key end
$$;

-- Rules across rows (spec §6), over the staged rows valid on their own: spool ids and weld numbers
-- are unique in a file (a repeat is an error), rows of one item merge (per-seq quantities number
-- on into one range; a pipe's footage or an instrument is one component), rows repeated cell for
-- cell get a warning. Every row of a pipe spread over several rows takes the pipe's total footage
-- (staging gave each its own). The reader flags every row that may repeat an earlier one; only rows
-- sharing a key with a flagged row are looked at, since any other key is unique in the file.
-- Returns what changed, to correct the reader's counts.
-- The staged rows are read through their (import_id, …) indexes only (the caller turns seq scans
-- off): other jobs' rows, of any tenant, are never scanned, and each way a row can relate to a
-- flagged one is a join of its own (an OR of IN lists can't be one, and became a comparison of
-- every row with every flagged row once the flags outgrew work_mem).
create or replace function pipetrak.import_resolve_repeats(p_import_id bigint, p_kind text)
returns jsonb
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    with staged as not materialized (
        select r.line, r.cells_hash, r.component_type, r.drawing_key, r.tag, r.size, r.seq_to - r.seq_from + 1 as count,
               r.quantity, pipetrak.import_id_scope(r.component_type, r.drawing_key) as id_scope
        from pipetrak.import_rows r
        where r.import_id = p_import_id and r.status = 'valid'),
    flagged as materialized (
        select r.cells_hash, r.component_type, r.drawing_key, r.tag, r.size,
               pipetrak.import_id_scope(r.component_type, r.drawing_key) as id_scope
        from pipetrak.import_rows r
        where r.import_id = p_import_id and r.status = 'valid' and r.maybe_repeated),
    related_lines as (
        select s.line from staged s join (select distinct f.cells_hash from flagged f) f on f.cells_hash = s.cells_hash
        union
        select s.line from staged s
        join (select distinct f.id_scope, f.tag from flagged f where f.id_scope is not null) f on (f.id_scope, f.tag) = (s.id_scope, s.tag)
        union
        select s.line from staged s
        join (select distinct f.component_type, f.drawing_key, f.tag, f.size from flagged f) f
          on (f.component_type, f.drawing_key, f.tag, f.size) = (s.component_type, s.drawing_key, s.tag, s.size)),
    related as (
        select s.* from staged s join related_lines l on l.line = s.line),
    judged as (
        select x.line, x.tag, x.count, x.component_type,
               nullif(min(x.line) over (partition by x.cells_hash), x.line) as same_cells_as,
               case when x.id_scope is not null then nullif(min(x.line) over (partition by x.id_scope, x.tag), x.line) end as same_id_as,
               case when x.id_scope is null
                    then nullif(min(x.line) over item, x.line)
               end as same_item_as,
               case when x.component_type = any (pipetrak.component_types('per_seq'))
                    then 1 + coalesce(sum(x.count) over (item order by x.line rows between unbounded preceding and 1 preceding), 0)
                    else 1
               end as seq_from,
               case when x.component_type = any (pipetrak.component_types('linear_aggregate')) and count(*) over item > 1
                    then sum(x.quantity) over item
               end as pipe_footage
        from related x
        window item as (partition by x.id_scope, x.component_type, x.drawing_key, x.tag, x.size)),
    verdicts as (
        select j.line, j.seq_from, j.seq_from + j.count - 1 as seq_to, j.pipe_footage, j.same_cells_as is not null as identical,
               j.same_id_as is not null as duplicate, j.same_item_as is not null as merged,
               j.component_type = any (pipetrak.component_types('linear_aggregate') || pipetrak.component_types('single')) as merged_into_one,
               jsonb_path_query_array(jsonb_build_array(
                   case when j.same_cells_as is not null then pipetrak.import_issue(j.line, 'identical_rows',
                       format('Row %s has exactly the same cells', j.same_cells_as)) end,
                   case when j.same_id_as is not null then pipetrak.import_issue(j.line, 'duplicate_id',
                       format('%s is already on row %s%s', j.tag, j.same_id_as,
                              case when j.component_type = 'field_weld' then ' (same drawing)' else '' end),
                       case p_kind when 'takeoff' then 'CMDTY CODE' else 'WELD ID' end, j.tag) end,
                   case when j.same_item_as is not null then pipetrak.import_issue(j.line, 'rows_merged',
                       format('This row %s', case
                           when j.component_type = any (pipetrak.component_types('linear_aggregate')) then format('adds its footage to the same pipe as row %s', j.same_item_as)
                           when j.component_type = any (pipetrak.component_types('single')) then format('is the same instrument as row %s', j.same_item_as)
                           else format('adds seqs %s..%s to the same item as row %s', j.seq_from, j.seq_from + j.count - 1, j.same_item_as)
                       end)) end), '$[*] ? (@ != null)') as issues
        from judged j
        where j.same_cells_as is not null or j.same_id_as is not null or j.same_item_as is not null
           or j.pipe_footage is not null),
    changed as (
        update pipetrak.import_rows r set
            status = case when v.duplicate then 'invalid' else r.status end,
            seq_from = v.seq_from, seq_to = v.seq_to,
            group_quantity = coalesce(v.pipe_footage, r.group_quantity),
            issues = r.issues || v.issues
        from verdicts v
        where r.import_id = p_import_id and r.line = v.line
        returning v.identical, v.duplicate, v.merged, v.merged_into_one)
    select jsonb_build_object(
        'identical', count(*) filter (where c.identical),
        'duplicates', count(*) filter (where c.duplicate),
        'merged', count(*) filter (where c.merged),
        -- Rows the reader counted as components of their own.
        'not_components', count(*) filter (where c.duplicate or (c.merged and c.merged_into_one)))
    from changed c
$$;

-- Commits the next chunk of a validated job (spec §6.4) and returns the job's state. Each chunk
-- is recorded on the job in the same transaction as its rows, so a crash loses at most the chunk
-- in flight, and redoing it creates nothing twice (identities are unique; welds are upserts).
create or replace function pipetrak.import_commit_chunk(p_import_id bigint, p_skip_invalid_rows boolean)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
-- Set-based statements over staged rows: JIT compilation costs more than it saves here, and
-- index probes stay right even while a big import leaves the statistics of components stale.
set jit = off
set enable_seqscan = off
as $$
declare
    v_job pipetrak.import_jobs := pipetrak.lock_import(p_import_id);
    v_chunk integer;
    v_references integer;
    v_drawings integer;
    v_welders integer;
    v_created integer;
    v_updated integer;
    v_welds integer;
    v_result jsonb;
    -- Rows the set-based statements leave alone: remediation rows (corrected one by one below) and
    -- rows a remediation import already brought in.
    v_apart integer[];
    v_marked jsonb := '{}';
    v_corrected jsonb;
    v_changed integer;
begin
    if v_job.status = 'failed' then
        perform pipetrak.raise_error('import_failed', jsonb_build_object('import_id', p_import_id,
            'reasons', (select coalesce(jsonb_agg(i ->> 'message'), '[]') from jsonb_array_elements(coalesce(v_job.summary -> 'file_issues', '[]')) i
                        where i ->> 'severity' = 'error')));
    end if;
    if v_job.status = 'uploaded' then
        perform pipetrak.raise_error('import_not_validated', jsonb_build_object('import_id', p_import_id, 'status', v_job.status));
    end if;
    if v_job.status = 'validated' then
        if (v_job.summary -> 'rows' ->> 'with_errors')::integer > 0 and not coalesce(p_skip_invalid_rows, false) then
            perform pipetrak.raise_error('import_has_errors', jsonb_build_object('import_id', p_import_id,
                'rows_with_errors', (v_job.summary -> 'rows' ->> 'with_errors')::integer));
        end if;
        update pipetrak.import_jobs set status = 'committing', skip_invalid_rows = coalesce(p_skip_invalid_rows, false),
            chunks_total = (select coalesce(max(chunk) + 1, 0) from pipetrak.import_rows where import_id = p_import_id),
            chunks_done = 0, result = '{}', updated_at = now()
        where id = p_import_id
        returning * into v_job;
        -- Fixed rows of this file were committed first: its other rows count their items after them.
        if exists (select from pipetrak.component_sources s where s.import_id = p_import_id) then
            perform pipetrak.import_renumber_after_fixes(p_import_id);
        end if;
    end if;

    if v_job.status = 'committing' and v_job.chunks_done < v_job.chunks_total then
        v_chunk := v_job.chunks_done;
        v_references := pipetrak.import_references(p_import_id, v_job.project_id, v_chunk);

        -- Drawings on first sight take the area, system and test package of their first row.
        insert into pipetrak.drawings (project_id, drawing_no, area_id, system_id, test_package_id)
        select v_job.project_id, r.drawing_no, a.id, s.id, t.id
        from (select distinct on (x.drawing_key collate "C") x.drawing_no, x.area, x.system, x.test_package
              from pipetrak.import_rows x
              where x.import_id = p_import_id and x.chunk = v_chunk and x.status = 'valid'
              order by x.drawing_key collate "C", x.line) r
        left join pipetrak.areas a on a.project_id = v_job.project_id and a.retired_at is null and lower(a.name) = lower(r.area)
        left join pipetrak.systems s on s.project_id = v_job.project_id and s.retired_at is null and lower(s.name) = lower(r.system)
        left join pipetrak.test_packages t on t.project_id = v_job.project_id and t.retired_at is null and lower(t.name) = lower(r.test_package)
        on conflict (project_id, drawing_key) where retired_at is null do nothing;
        get diagnostics v_drawings = row_count;

        insert into pipetrak.welders (project_id, stencil)
        select distinct v_job.project_id, r.stencil
        from pipetrak.import_rows r
        where r.import_id = p_import_id and r.chunk = v_chunk and r.status = 'valid' and r.stencil is not null
        on conflict (project_id, stencil) do nothing;
        get diagnostics v_welders = row_count;

        v_apart := array(
            select r.line from pipetrak.import_rows r
            where r.import_id = p_import_id and r.chunk = v_chunk and r.status = 'valid'
              and (r.origin_import_id is not null
                   or (r.reported and exists (select from pipetrak.component_sources s
                                              where s.import_id = p_import_id and s.line = r.line))));

        -- Components: a row's own area/system/package pins it when it differs from its drawing's.
        -- An existing pipe aggregate takes the file's footage. Rows merged into an earlier row of
        -- a pipe or instrument stand for that row's component: they write nothing themselves.
        with written as (
            insert into pipetrak.components as c (project_id, drawing_id, component_type, tag, size, seq, quantity,
                                                  description, spec, attributes, area_id, system_id, test_package_id,
                                                  area_pinned, system_pinned, test_package_pinned, milestone_values)
            select v_job.project_id, d.id, p.component_type, p.tag, p.size, p.seq, p.quantity, p.description, p.spec,
                   p.attributes, coalesce(a.id, d.area_id), coalesce(s.id, d.system_id), coalesce(t.id, d.test_package_id),
                   a.id is distinct from null and a.id is distinct from d.area_id,
                   s.id is distinct from null and s.id is distinct from d.system_id,
                   t.id is distinct from null and t.id is distinct from d.test_package_id,
                   array_fill(0::numeric, array[cardinality(m.names)])
            from pipetrak.import_plan(p_import_id, v_job.project_id, v_chunk, false) p
            -- Lateral, so each staged row probes the drawing index (drawings' statistics may be stale).
            cross join lateral (
                select x.id, x.area_id, x.system_id, x.test_package_id from pipetrak.drawings x
                where x.project_id = v_job.project_id and x.drawing_key = p.drawing_key and x.retired_at is null
                limit 1) d
            join pipetrak.milestone_templates m on m.project_id = v_job.project_id and m.component_type = p.component_type
            -- The same for names, through their (project_id, lower(name)) indexes: a join compared
            -- each row with every area and system of the project, lower() each time.
            left join lateral (
                select x.id from pipetrak.areas x
                where x.project_id = v_job.project_id and x.retired_at is null and lower(x.name) = lower(p.area)
                limit 1) a on true
            left join lateral (
                select x.id from pipetrak.systems x
                where x.project_id = v_job.project_id and x.retired_at is null and lower(x.name) = lower(p.system)
                limit 1) s on true
            left join lateral (
                select x.id from pipetrak.test_packages x
                where x.project_id = v_job.project_id and x.retired_at is null and lower(x.name) = lower(p.test_package)
                limit 1) t on true
            where not p.merged and p.line <> all (v_apart)
            on conflict (project_id, identity_key) where retired_at is null do update
                set quantity = excluded.quantity, updated_at = now()
                where c.component_type = any (pipetrak.component_types('linear_aggregate')) and c.quantity is distinct from excluded.quantity
            -- xmax is 0 on a row this statement inserted, set on one it updated.
            returning c.xmax = 0 as inserted)
        select count(*) filter (where inserted), count(*) filter (where not inserted)
        into v_created, v_updated
        from written;
        -- A big import into a table whose statistics still say it is (nearly) empty: every index led
        -- by project_id then looks as good as the identity index to the probes below, and each
        -- probe would scan the whole project. Counted again (ANALYZE sees this transaction's rows),
        -- once: statistics that have seen one chunk's rows already rank the indexes right for the
        -- chunks that follow (each ANALYZE of a big table costs most of a second: one per chunk was
        -- a fifth of a 100,000-row commit); the last chunk counts again (below).
        if v_created > 1000 and (select c.reltuples from pg_catalog.pg_class c
                                 where c.oid = 'pipetrak.components'::regclass) < v_created then
            analyze pipetrak.components;
        end if;

        -- What the reported rows made, for their fixed rows to find; a pipe they add up to is the
        -- sum of its rows' feet.
        perform pipetrak.import_record_sources(p_import_id, v_job.project_id, v_chunk, v_apart);
        -- Remediation rows, in file order: each corrects what its original row made, or makes it.
        v_corrected := pipetrak.import_apply_remediation(p_import_id, v_job.project_id, v_chunk);
        v_created := v_created + (v_corrected ->> 'created')::integer;
        v_updated := v_updated + (v_corrected ->> 'updated')::integer;

        -- Weld facts: created with the weld; on re-import merged (import_weld_merge), each change a
        -- weld event naming the import, counted as an update.
        insert into pipetrak.field_welds as w (component_id, project_id, weld_type, weld_size, schedule, base_metal, spec,
                                               xray_percent, pwht_required, nde_types, welder_id, date_welded, nde_result)
        select c.id, v_job.project_id, r.weld_type, r.weld_size, r.schedule, r.base_metal, r.spec, r.xray_percent,
               r.pwht_required, coalesce(r.nde_types, '{}'), wd.id, r.date_welded, r.nde_result
        from pipetrak.import_rows r
        cross join lateral pipetrak.live_weld(v_job.project_id, r.drawing_key, r.tag) c
        left join pipetrak.welders wd on wd.project_id = v_job.project_id and wd.stencil = r.stencil
        where r.import_id = p_import_id and r.chunk = v_chunk and r.status = 'valid' and r.component_type = 'field_weld'
        on conflict (component_id) do nothing;
        get diagnostics v_welds = row_count;
        if v_job.kind = 'field_welds' then
            with merged as (
                select w as before, pipetrak.import_weld_merge(w, r, wd.id) as after
                from pipetrak.import_rows r
                cross join lateral pipetrak.live_weld(v_job.project_id, r.drawing_key, r.tag) c
                join pipetrak.field_welds w on w.component_id = c.id
                left join pipetrak.welders wd on wd.project_id = v_job.project_id and wd.stencil = r.stencil
                where r.import_id = p_import_id and r.chunk = v_chunk and r.status = 'valid' and r.component_type = 'field_weld'
                  and pipetrak.import_weld_merge(w, r, wd.id) is distinct from w),
            changed as (
                update pipetrak.field_welds f set
                    weld_type = (m.after).weld_type, weld_size = (m.after).weld_size, schedule = (m.after).schedule,
                    base_metal = (m.after).base_metal, spec = (m.after).spec, xray_percent = (m.after).xray_percent,
                    pwht_required = (m.after).pwht_required, nde_types = (m.after).nde_types, welder_id = (m.after).welder_id,
                    date_welded = (m.after).date_welded, nde_result = (m.after).nde_result, updated_at = now()
                from merged m
                where f.component_id = (m.before).component_id
                returning f.component_id)
            insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
            select v_job.project_id, (m.before).component_id, 'imported', d.before, d.after, format('import %s', p_import_id),
                   coalesce(pipetrak.current_user_id(), v_job.created_by)
            from merged m
            join changed x on x.component_id = (m.before).component_id
            cross join lateral (
                select jsonb_object_agg(b.key, b.value) as before, jsonb_object_agg(b.key, to_jsonb(m.after) -> b.key) as after
                from jsonb_each(to_jsonb(m.before)) b
                where b.key <> 'updated_at' and to_jsonb(m.after) -> b.key is distinct from b.value) d;
            get diagnostics v_changed = row_count;
            v_updated := v_updated + v_changed;
            -- A weld's status follows its methods and tier (spec §7.4): where the log changed
            -- them, it is decided again from the results the weld holds (only a weld with a
            -- result can have another status).
            update pipetrak.field_welds f set status = (select n.status from pipetrak.weld_nde_state(f.component_id) n)
            where f.component_id in (
                    select c.id from pipetrak.import_rows r
                    cross join lateral pipetrak.live_weld(v_job.project_id, r.drawing_key, r.tag) c
                    where r.import_id = p_import_id and r.chunk = v_chunk and r.status = 'valid' and r.component_type = 'field_weld')
              and f.current_nde <> '{}'
              and f.status is distinct from (select n.status from pipetrak.weld_nde_state(f.component_id) n);
        end if;
        -- A weld log marks its welds welded and records their NDE (spec §7).
        if v_job.kind = 'field_welds' then
            v_marked := pipetrak.import_mark_welds(p_import_id, v_job.project_id, v_chunk);
        end if;

        update pipetrak.import_jobs set
            chunks_done = chunks_done + 1,
            status = case when chunks_done + 1 >= chunks_total then 'committed' else status end,
            committed_at = case when chunks_done + 1 >= chunks_total then now() end,
            staged_until = case when chunks_done + 1 >= chunks_total then now() + interval '1 day' else staged_until end,
            result = jsonb_build_object(
                'components_created', coalesce((result ->> 'components_created')::integer, 0) + v_created,
                'components_updated', coalesce((result ->> 'components_updated')::integer, 0) + v_updated,
                'welds_written', coalesce((result ->> 'welds_written')::integer, 0) + v_welds,
                'drawings_created', coalesce((result ->> 'drawings_created')::integer, 0) + v_drawings,
                'references_created', coalesce((result ->> 'references_created')::integer, 0) + v_references,
                'welders_created', coalesce((result ->> 'welders_created')::integer, 0) + v_welders)
                -- A weld log also tells how many welds it welded and results it recorded.
                || case when v_job.kind = 'field_welds' then jsonb_build_object(
                       'welds_welded', coalesce((result ->> 'welds_welded')::integer, 0) + coalesce((v_marked ->> 'welded')::integer, 0),
                       'nde_recorded', coalesce((result ->> 'nde_recorded')::integer, 0) + coalesce((v_marked ->> 'nde')::integer, 0))
                   else '{}' end,
            updated_at = now()
        where id = p_import_id
        returning * into v_job;
        if v_job.status = 'committed' then
            perform pipetrak.import_apply_budgets(p_import_id);
            -- A job that made a tenth of the table or more leaves statistics that have seen only
            -- its first chunk: the set-based statements of the next validation (the file again,
            -- compared with every component) would plan their joins for a table ten times smaller.
            if (v_job.result ->> 'components_created')::integer > 1000
               and (v_job.result ->> 'components_created')::integer * 10 > (
                       select c.reltuples from pg_catalog.pg_class c where c.oid = 'pipetrak.components'::regclass) then
                analyze pipetrak.components;
            end if;
        end if;
        -- Ids and counts only, signed, on the project's secret channel: LISTEN ignores row-level security.
        perform pipetrak.notify_project(v_job.project_id, jsonb_build_object(
            'kind', 'import_progress', 'import_id', p_import_id, 'chunk', v_chunk + 1, 'chunks_total', v_job.chunks_total,
            'status', v_job.status, 'components_created', v_created));
    elsif v_job.status = 'committing' then
        -- A job with no rows to write.
        update pipetrak.import_jobs set status = 'committed', committed_at = now(), updated_at = now(),
            staged_until = now() + interval '1 day'
        where id = p_import_id returning * into v_job;
    end if;
    v_result := jsonb_build_object('import_id', p_import_id, 'status', v_job.status, 'chunks_done', v_job.chunks_done,
                                   'chunks_total', v_job.chunks_total) || v_job.result;
    return v_result;
end
$$;

-- The remediation CSV (spec §6.3): the reported rows (see import_mark_reported) in their original
-- columns, then the row in the original file, the reference to it (`<import id>:<row>`) and the
-- issues. A row of a remediation import points at its original row still.
create or replace function pipetrak.import_report_csv(p_import_id bigint)
returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
-- Set-based statements over staged rows: JIT compilation costs more than it saves here, and
-- index probes stay right even while a big import leaves the statistics of components stale.
set jit = off
set enable_seqscan = off
as $$
declare
    v_job pipetrak.import_jobs;
    v_header text[];
    v_csv text;
begin
    select * into v_job from pipetrak.import_jobs
    where id = p_import_id and project_id in (select pipetrak.my_project_ids('manage_project_data'));
    if v_job.id is null then
        perform pipetrak.raise_error('import_not_found', jsonb_build_object('import_id', p_import_id));
    end if;
    if v_job.summary is null or v_job.summary -> 'header' is null or jsonb_typeof(v_job.summary -> 'header') <> 'array' then
        perform pipetrak.raise_error('import_not_validated', jsonb_build_object('import_id', p_import_id, 'status', v_job.status));
    end if;
    v_header := array(select jsonb_array_elements_text(v_job.summary -> 'header'));
    with report as (
        select r.line, coalesce(r.origin_line, r.line) as original_line,
               format('%s:%s', coalesce(r.origin_import_id, p_import_id), coalesce(r.origin_line, r.line)) as reference,
               coalesce((select string_agg(format('%s: %s', i ->> 'code', i ->> 'message'), '; ')
                         from jsonb_array_elements(r.issues) i where i ->> 'severity' <> 'info'),
                        case when r.component_type = any (pipetrak.component_types('linear_aggregate'))
                             then 'included so the footage of this pipe adds up; already valid'
                             else 'included so the quantities of this item add up; already valid' end) as notes
        from pipetrak.import_rows r
        where r.import_id = p_import_id and r.reported)
    select pipetrak.render_report_csv(v_header, array_agg(to_jsonb(c.cells) order by r.line),
               array_agg(r.original_line order by r.line), array_agg(r.reference order by r.line), array_agg(r.notes order by r.line))
    into v_csv
    from report r
    join pipetrak.import_file_cells(v_job.content, v_job.kind, array(select line from report)) c on c.line = r.line;
    return coalesce(v_csv, pipetrak.render_report_csv(v_header, '{}', '{}', '{}', '{}'));
end
$$;


-- ---- Imports from the field ----
-- Legacy .xls, an empty upload and a file that failed to read get their own catalogued errors.
update pipetrak.error_codes set message = 'The file is neither CSV nor an Excel workbook (.xlsx, .xls)',
    hint = 'Save it from Excel as .xlsx or CSV (comma, semicolon or tab separated); .ods, .xlsb and Word files are not read.'
where code = 'unsupported_file';
insert into pipetrak.error_codes (code, sqlstate, message, hint) values
    ('empty_file',               'PT422', 'The file is empty', 'Export the sheet again: the upload has no bytes.'),
    ('import_failed',            'PT422', 'The import''s file could not be read', 'See the reasons in the detail (and the job''s file_issues); fix the file and upload it again.');

-- Drawing keys now fold look-alike dashes, full-width letters, spaces around hyphens and more
-- sheet spellings. Live drawings that the new key makes one are reported, not merged: the upgrade
-- stops so that someone who knows the job decides which one stays.
do $$
declare
    v_clashes text;
begin
    select string_agg(format('project %s: %s', x.project_id, x.numbers), '; ') into v_clashes
    from (select d.project_id, string_agg(d.drawing_no, ' = ' order by d.id) as numbers
          from pipetrak.drawings d where d.retired_at is null
          group by d.project_id, pipetrak.normalize_drawing_key(d.drawing_no) having count(*) > 1) x;
    if v_clashes is not null then
        raise exception 'pipetrak 0.2.0 reads these drawing numbers as one drawing: %', v_clashes
            using errcode = 'PT409', hint = 'Retire one of each group (pipetrak_api.retire_drawing) or correct its number, then run ALTER EXTENSION pipetrak UPDATE again.';
    end if;
end
$$;
update pipetrak.drawings set drawing_no = drawing_no where drawing_key <> pipetrak.normalize_drawing_key(drawing_no);

alter table pipetrak.import_jobs drop constraint import_jobs_format_check;
alter table pipetrak.import_jobs add constraint import_jobs_format_check check (format in ('csv', 'xlsx', 'xls'));
alter table pipetrak.import_rows
    add column origin_import_id bigint,
    add column origin_line integer,
    add column reported boolean not null default false;

-- What an imported row made: the components a reported row (see import_rows.reported) or a
-- remediation row created or corrected, with the feet it gave a pipe. A fixed row of the
-- remediation CSV finds here what its original row made (by PIPETRAK REF) and corrects it, and an
-- original whose row a remediation import already brought in skips that row: either order ends
-- in the same project. A pipe whose footage came from several such rows is the sum of them.
create table pipetrak.component_sources (
    component_id bigint not null references pipetrak.components,
    -- The original row: its import and its row in that file.
    import_id    bigint not null,
    line         integer not null,
    footage      numeric(14, 2),
    primary key (import_id, line, component_id)
);
create index component_sources_component_idx on pipetrak.component_sources (component_id);
alter table pipetrak.component_sources enable row level security;


-- pipetrak::pg::normalize::drawing_lookalike
CREATE FUNCTION pipetrak."drawing_lookalike"(
	"key" TEXT /* & str */
) RETURNS TEXT /* String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'drawing_lookalike_wrapper';

-- pipetrak::pg::imports::render_report_csv (replaces render_remediation_csv, whose symbol stays in
-- the library for databases still at 0.1.0)
CREATE FUNCTION pipetrak."render_report_csv"(
	"header" TEXT[], /* Vec < Option < String > > */
	"cells" jsonb[], /* Vec < Option < JsonB > > */
	"rows" INT[], /* Vec < Option < i32 > > */
	"references" TEXT[], /* Vec < Option < String > > */
	"notes" TEXT[] /* Vec < Option < String > > */
) RETURNS TEXT /* Option < String > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'render_report_csv_wrapper';

-- Checks an upload (the caller's role, the arguments, the size and sniffed `p_format`) and
-- returns the format. It is given the file's size, never the file: see import_upload.
create or replace function pipetrak.check_import_upload(p_project_id bigint, p_kind text, p_filename text, p_size integer, p_format text)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_project_data');
    if p_kind is null or p_kind not in ('takeoff', 'field_welds') then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "kind", "expected": "takeoff or field_welds"}');
    end if;
    if p_filename is null or btrim(p_filename) = '' or length(p_filename) > 255 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "filename", "expected": "the file''s name, 1 to 255 characters"}');
    end if;
    if p_size is null then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "content", "expected": "the file''s bytes"}');
    end if;
    if p_size = 0 then
        perform pipetrak.raise_error('empty_file', jsonb_build_object('filename', p_filename));
    end if;
    if p_size > 50 * 1024 * 1024 then
        perform pipetrak.raise_error('file_too_large', jsonb_build_object('bytes', p_size, 'limit', 50 * 1024 * 1024));
    end if;
    if p_format is null then
        perform pipetrak.raise_error('unsupported_file', jsonb_build_object('filename', p_filename));
    end if;
    return p_format;
end
$$;

-- Marks the rows the remediation CSV holds: rows with errors or warnings, and the other rows of
-- the same counted item or pipe (so that re-imported quantities and footage add up).
create function pipetrak.import_mark_reported(p_import_id bigint)
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    with flagged as (
        select r.line, r.component_type, r.drawing_key, r.tag, r.size
        from pipetrak.import_rows r
        where r.import_id = p_import_id
          and exists (select from jsonb_array_elements(r.issues) i where i ->> 'severity' <> 'info')),
    mates as (
        select r.line from pipetrak.import_rows r
        join (select distinct f.component_type, f.drawing_key, f.tag, f.size from flagged f
              where f.component_type = any (pipetrak.component_types('per_seq') || pipetrak.component_types('linear_aggregate'))) f
          on (f.component_type, f.drawing_key, f.tag, f.size) = (r.component_type, r.drawing_key, r.tag, r.size)
        where r.import_id = p_import_id and r.status = 'valid')
    update pipetrak.import_rows r set reported = true
    where r.import_id = p_import_id and r.line in (select line from flagged union select line from mates)
$$;

-- Records the components the reported fresh rows of one chunk made (not the rows in `p_apart`).
-- Pipes are the file's truth: footage recorded from other imports' rows is dropped, and a pipe
-- whose rows are recorded is the sum of their feet.
create function pipetrak.import_record_sources(p_import_id bigint, p_project_id bigint, p_chunk integer, p_apart integer[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
    v_pipes bigint[];
begin
    with made as (
        insert into pipetrak.component_sources as s (component_id, import_id, line, footage)
        select c.id, p_import_id, r.line,
               case when r.component_type = any (pipetrak.component_types('linear_aggregate')) then r.quantity end
        from pipetrak.import_rows r
        cross join lateral generate_series(r.seq_from, r.seq_to) as q(seq)
        -- Lateral probes of the drawing and identity indexes, one per component: a join could
        -- hash the project's components (their statistics are stale while an import writes them).
        cross join lateral (
            select x.id from pipetrak.drawings x
            where x.project_id = p_project_id and x.drawing_key = r.drawing_key and x.retired_at is null
            limit 1) d
        cross join lateral (
            select x.id from pipetrak.components x
            where x.project_id = p_project_id and x.retired_at is null
              and x.identity_key = pipetrak.identity_key(r.component_type, d.id, r.tag, r.size, q.seq)
            limit 1) c
        where r.import_id = p_import_id and r.chunk = p_chunk and r.status = 'valid' and r.reported
          and r.line <> all (p_apart)
        on conflict (import_id, line, component_id) do update set footage = excluded.footage
        returning s.component_id, s.footage)
    select array_agg(distinct m.component_id) filter (where m.footage is not null) into v_pipes from made m;
    if v_pipes is null then
        return;
    end if;
    delete from pipetrak.component_sources s
    where s.component_id = any (v_pipes) and s.import_id <> p_import_id
      and not exists (select from pipetrak.import_rows r where r.import_id = p_import_id and r.origin_import_id = s.import_id);
    perform pipetrak.import_sum_footage(v_pipes);
end
$$;

-- Each pipe of `p_pipes` takes the sum of the feet its recorded rows gave it; a pipe left with no
-- recorded rows and no progress is retired (a fixed row moved its footage to another pipe).
create function pipetrak.import_sum_footage(p_pipes bigint[])
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    with sums as (
        select c.id, (select sum(s.footage) from pipetrak.component_sources s where s.component_id = c.id) as footage,
               exists (select from pipetrak.component_sources s where s.component_id = c.id) as recorded, c.earned_total
        from pipetrak.components c
        where c.id = any (p_pipes) and c.retired_at is null)
    update pipetrak.components c set
        quantity = case when x.footage > 0 then x.footage else c.quantity end,
        retired_at = case when not x.recorded and x.earned_total = 0 then now() end,
        updated_at = now(), version = c.version + 1
    from sums x
    where c.id = x.id
      and ((x.footage > 0 and c.quantity <> x.footage) or (not x.recorded and x.earned_total = 0))
$$;

-- Remediation rows of one chunk, in file order. A row whose original row made components
-- corrects them: a pipe's feet move to the pipe the row names; counted items keep their seq while
-- their item stays the same, else take the next free seqs of their new item; an id or instrument
-- whose new identity another live component holds is left as it was; a type changed on a
-- component without progress retires it for a new one (with progress it is left alone). A row
-- whose original made nothing yet makes it (counted items on the next free seqs, so they add to
-- what the original's other rows made). Returns {created, updated, left}.
create function pipetrak.import_apply_remediation(p_import_id bigint, p_project_id bigint, p_chunk integer)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
    r pipetrak.import_rows;
    v_drawing pipetrak.drawings;
    v_linked bigint[];
    v_component pipetrak.components;
    v_target bigint;
    v_count integer;
    v_seq integer;
    v_per_seq boolean;
    v_created integer := 0;
    v_updated integer := 0;
    v_left integer := 0;
    v_names text[];
begin
    for r in
        select * from pipetrak.import_rows x
        where x.import_id = p_import_id and x.chunk = p_chunk and x.status = 'valid' and x.origin_import_id is not null
        order by x.line
    loop
        select * into v_drawing from pipetrak.drawings d
        where d.project_id = p_project_id and d.drawing_key = r.drawing_key and d.retired_at is null;
        select m.names into v_names from pipetrak.milestone_templates m
        where m.project_id = p_project_id and m.component_type = r.component_type;
        v_linked := array(
            select c.id from pipetrak.component_sources s join pipetrak.components c on c.id = s.component_id
            where s.import_id = r.origin_import_id and s.line = r.origin_line and c.retired_at is null
            order by c.seq, c.id);
        v_per_seq := r.component_type = any (pipetrak.component_types('per_seq'));

        if r.component_type = any (pipetrak.component_types('linear_aggregate')) then
            select c.id into v_target from pipetrak.components c
            where c.project_id = p_project_id and c.retired_at is null
              and c.identity_key = pipetrak.identity_key(r.component_type, v_drawing.id, r.tag, r.size, 1);
            if v_target is null then
                insert into pipetrak.components (project_id, drawing_id, component_type, tag, size, seq, quantity, description,
                                                 spec, attributes, area_id, system_id, test_package_id, milestone_values)
                values (p_project_id, v_drawing.id, r.component_type, r.tag, r.size, 1, r.quantity, r.description, r.spec,
                        r.attributes, v_drawing.area_id, v_drawing.system_id, v_drawing.test_package_id,
                        array_fill(0::numeric, array[cardinality(v_names)]))
                returning id into v_target;
                v_created := v_created + 1;
            elsif v_linked is not null and v_target = any (v_linked) then
                v_updated := v_updated + 1;
            end if;
            delete from pipetrak.component_sources s
            where s.import_id = r.origin_import_id and s.line = r.origin_line and s.component_id <> v_target;
            insert into pipetrak.component_sources (component_id, import_id, line, footage)
            values (v_target, r.origin_import_id, r.origin_line, r.quantity)
            on conflict (import_id, line, component_id) do update set footage = excluded.footage;
            perform pipetrak.import_sum_footage(array_append(v_linked, v_target));
            continue;
        end if;

        v_count := r.seq_to - r.seq_from + 1;
        for i in 1 .. greatest(v_count, cardinality(v_linked)) loop
            exit when i > v_count;
            if i <= cardinality(v_linked) then
                select * into v_component from pipetrak.components where id = v_linked[i];
                if v_component.component_type <> r.component_type then
                    if v_component.earned_total > 0 then
                        v_left := v_left + 1;
                        continue;
                    end if;
                    update pipetrak.components set retired_at = now(), updated_at = now(), version = version + 1
                    where id = v_component.id;
                    delete from pipetrak.component_sources s
                    where s.import_id = r.origin_import_id and s.line = r.origin_line and s.component_id = v_component.id;
                elsif (v_component.drawing_id, v_component.tag, v_component.size) = (v_drawing.id, r.tag, r.size) then
                    update pipetrak.components set description = r.description, spec = r.spec,
                        attributes = attributes || r.attributes, updated_at = now(), version = version + 1
                    where id = v_component.id
                      and (description, spec, attributes) is distinct from (r.description, r.spec, attributes || r.attributes);
                    if found then
                        v_updated := v_updated + 1;
                    end if;
                    continue;
                else
                    v_seq := case when v_per_seq then pipetrak.import_next_seq(p_project_id, v_drawing.id, r.component_type, r.tag, r.size) else 1 end;
                    if exists (select from pipetrak.components c where c.project_id = p_project_id and c.retired_at is null
                               and c.identity_key = pipetrak.identity_key(r.component_type, v_drawing.id, r.tag, r.size, v_seq)) then
                        v_left := v_left + 1;
                    else
                        update pipetrak.components set drawing_id = v_drawing.id, tag = r.tag, size = r.size, seq = v_seq,
                            description = r.description, spec = r.spec, attributes = attributes || r.attributes,
                            updated_at = now(), version = version + 1
                        where id = v_component.id;
                        v_updated := v_updated + 1;
                    end if;
                    continue;
                end if;
            end if;
            -- Nothing made yet for this seq of the row: make it.
            v_seq := case when v_per_seq then pipetrak.import_next_seq(p_project_id, v_drawing.id, r.component_type, r.tag, r.size) else 1 end;
            insert into pipetrak.components (project_id, drawing_id, component_type, tag, size, seq, quantity, description,
                                             spec, attributes, area_id, system_id, test_package_id, milestone_values)
            values (p_project_id, v_drawing.id, r.component_type, r.tag, r.size, v_seq, 1, r.description, r.spec,
                    r.attributes, v_drawing.area_id, v_drawing.system_id, v_drawing.test_package_id,
                    array_fill(0::numeric, array[cardinality(v_names)]))
            on conflict (project_id, identity_key) where retired_at is null do nothing
            returning id into v_target;
            if v_target is null then
                select c.id into v_target from pipetrak.components c
                where c.project_id = p_project_id and c.retired_at is null
                  and c.identity_key = pipetrak.identity_key(r.component_type, v_drawing.id, r.tag, r.size, v_seq);
            else
                v_created := v_created + 1;
            end if;
            insert into pipetrak.component_sources (component_id, import_id, line)
            values (v_target, r.origin_import_id, r.origin_line)
            on conflict do nothing;
        end loop;
    end loop;
    return jsonb_build_object('created', v_created, 'updated', v_updated, 'left', v_left);
end
$$;

-- The next seq of a counted item: one past the highest its live components hold.
create function pipetrak.import_next_seq(p_project_id bigint, p_drawing_id bigint, p_type text, p_tag text, p_size text)
returns integer
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select coalesce(max(c.seq), 0) + 1 from pipetrak.components c
    where c.project_id = p_project_id and c.drawing_id = p_drawing_id and c.component_type = p_type
      and c.tag = p_tag and c.size = p_size and c.retired_at is null
$$;

-- Privileges from an allow-list. Nothing is public; `anon` gets nothing at all; `authenticated`
-- reads tables through RLS, runs the API, and runs only the few internal functions named here: the
-- helpers its views and policies call, and the security-definer functions the API's SQL wrappers
-- hand off to (each checks the caller's role first). Every other internal function stays private,
-- so a new one can never slip out. `service_role` (BYPASSRLS) is the back office: it reads everything
-- and runs the API. Roles come from the environment; grants go to those that exist.
create or replace function pipetrak.grant_privileges()
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_role text;
    v_function text;
begin
    revoke all on schema pipetrak, pipetrak_api from public;
    revoke all on all tables in schema pipetrak from public;
    revoke all on all tables in schema pipetrak_api from public;
    revoke all on all sequences in schema pipetrak from public;
    revoke all on all functions in schema pipetrak from public;
    revoke all on all functions in schema pipetrak_api from public;
    revoke all on all procedures in schema pipetrak_api from public;
    foreach v_role in array array['authenticated', 'service_role'] loop
        continue when not exists (select from pg_catalog.pg_roles where rolname = v_role);
        execute format('revoke all on all functions in schema pipetrak from %I', v_role);
        execute format('grant usage on schema pipetrak, pipetrak_api to %I', v_role);
        execute format('grant select on all tables in schema pipetrak, pipetrak_api to %I', v_role);
        execute format('grant execute on all functions in schema pipetrak_api to %I', v_role);
        execute format('grant execute on all procedures in schema pipetrak_api to %I', v_role);
        for v_function in
            select p.oid::regprocedure::text
            from pg_catalog.pg_proc p
            where p.pronamespace = 'pipetrak'::regnamespace
              and p.proname = any (array[
                  -- called by views and policies as the reader
                  'current_claims', 'current_user_id', 'my_organization_ids', 'my_project_ids',
                  'progress_rollup', 'percent_of',
                  -- security-definer targets of pipetrak_api's wrappers
                  'sync_profile', 'create_organization', 'add_member', 'change_member_role', 'remove_member',
                  'create_project', 'update_project_settings', 'archive_project', 'project_channel',
                  'event_is_genuine', 'create_reference', 'rename_reference', 'retire_reference',
                  'update_test_package', 'create_drawing', 'revise_drawing', 'assign_drawing', 'retire_drawing',
                  'create_component', 'assign_component', 'retire_component', 'reweight_template',
                  'update_milestone', 'update_milestones', 'assign_welder', 'resolve_review_item',
                  'import_upload', 'import_validate', 'import_report_csv', 'import_commit', 'import_commit_chunk',
                  'record_nde', 'clear_nde', 'create_welder', 'rename_welder', 'verify_welder', 'edit_welder',
                  'clear_welder', 'retire_weld', 'move_weld', 'create_unplanned_weld', 'create_repair',
                  'dismiss_review_item', 'weld_progress', 'welder_summary',
                  'repick_examination', 'set_post_hydro', 'start_stage', 'save_stage', 'sign_stage', 'complete_stage',
                  'skip_stage', 'save_certificate', 'test_package_blockers', 'turnover_report', 'progress_delta',
                  'progress_as_of', 'weekly_report', 'manhour_progress', 'weld_delta', 'spread_budget',
                  'invite_member', 'resend_invitation', 'revoke_invitation', 'accept_invitation', 'update_profile',
                  'rename_organization', 'delete_organization', 'rename_project', 'unarchive_project', 'delete_project',
                  'correct_component', 'component_batch', 'retire_component_for', 'restore_component',
                  'search_project', 'limited',
                  -- called by policies (Storage, Realtime) and the invitations view as the reader
                  'storage_allows', 'realtime_topic_allows', 'invitation_state',
                  -- called by the sampling and package views as the reader
                  'sampling_required', 'package_state', 'package_stage_rule', 'certificate_label', 'component_types'])
        loop
            execute format('grant execute on function %s to %I', v_function, v_role);
        end loop;
    end loop;
    -- Tables no reader needs at all: secrets and the extension's own bookkeeping.
    foreach v_role in array array['authenticated', 'service_role'] loop
        continue when not exists (select from pg_catalog.pg_roles where rolname = v_role);
        execute format('revoke all on table pipetrak.project_secrets, pipetrak.progress_deferrals, pipetrak.component_sources,
                        pipetrak.historical_writes from %I', v_role);
        -- Invitations are read without the token's hash.
        execute format('revoke all on table pipetrak.invitations from %I', v_role);
        execute format('grant select (id, organization_id, email, role, invited_by, created_at, sent_at, expires_at, sent_count,
                        accepted_at, accepted_by, revoked_at, revoked_by) on pipetrak.invitations to %I', v_role);
    end loop;
end
$$;

-- pg_dump skips extension tables unless they are registered: every data table and its sequence.
-- Not progress_parts, weld_tallies, weld_day_tallies: restoring the components and welds rebuilds
-- them (their COPY fires the triggers), so dumping them too would count everything twice. Not progress_deferrals: it only holds rows
-- inside a transaction. One call per relation: each call rewrites the extension's catalog row.
create or replace function pipetrak.register_dump_tables()
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_relation text;
begin
    foreach v_relation in array array[
        'user_profiles', 'organizations', 'organizations_id_seq', 'memberships', 'projects', 'projects_id_seq',
        'project_secrets', 'areas', 'areas_id_seq', 'systems', 'systems_id_seq', 'test_packages', 'test_packages_id_seq',
        'drawings', 'drawings_id_seq', 'milestone_templates', 'welders', 'welders_id_seq', 'components',
        'components_id_seq', 'field_welds', 'milestone_events', 'milestone_events_id_seq', 'review_items',
        'review_items_id_seq', 'client_requests', 'import_jobs', 'import_jobs_id_seq', 'import_rows', 'component_sources',
        'nde_results', 'nde_results_id_seq', 'weld_events', 'weld_events_id_seq', 'examination_calls',
        'examination_calls_id_seq', 'package_stages', 'package_stages_id_seq', 'stage_signoffs', 'stage_signoffs_id_seq',
        'package_events', 'package_events_id_seq', 'certificate_numbers', 'package_certificates', 'budget_versions',
        'budget_versions_id_seq', 'component_budgets', 'snapshot_weeks', 'weekly_snapshots', 'invitations',
        'invitations_id_seq', 'component_changes', 'component_changes_id_seq']
    loop
        perform pg_catalog.pg_extension_config_dump('pipetrak.' || v_relation, '');
    end loop;
end
$$;

comment on function pipetrak_api.import_upload(bigint, text, text, bytea) is
    'Uploads a takeoff (kind => takeoff) or field-weld log (kind => field_welds) as CSV, .xlsx or .xls (at most 50 MB); returns the import id. Owner, admin or project manager.';

comment on function pipetrak_api.import_report_csv(bigint) is
    'The remediation CSV: rows with errors or warnings (and the other rows of their item or pipe) in their original columns, plus PIPETRAK ROW, PIPETRAK REF and PIPETRAK ISSUES. Fix it and import it again: fixed rows correct what their original rows made.';

-- ---- A field weld is its drawing and number (spec §4) ----
-- Weld numbers restart in each weld log of a job: the identity of a field weld becomes (drawing,
-- number). identity_key (above) has the new rule; the stored keys of existing welds are computed
-- again (a weld unique in its project is unique on its drawing, so nothing can collide).
update pipetrak.components set tag = tag where component_type = 'field_weld';
drop function pipetrak.live_weld(bigint, text, text);
-- The project's live field weld with this number on this drawing (a weld is its drawing and
-- number, spec §4), as lateral probes of the drawing and identity indexes (a join could scan every
-- component of the project). No SET clause, so the planner inlines it.
create function pipetrak.live_weld(p_project_id bigint, p_drawing_key text, p_tag text)
returns table (id bigint)
language sql stable
as $$
    select x.id
    from pipetrak.drawings d
    cross join lateral (
        select c.id from pipetrak.components c
        where c.project_id = p_project_id and c.retired_at is null
          and c.identity_key = pipetrak.identity_key('field_weld', d.id, p_tag, null, 1)
        limit 1) x
    where d.project_id = p_project_id and d.drawing_key = p_drawing_key and d.retired_at is null
    limit 1
$$;

-- Live field welds by number, for the dry run's note that a number also exists on another drawing.
create index components_weld_number_idx on pipetrak.components (project_id, tag)
    where component_type = 'field_weld' and retired_at is null;

-- Organizations where the caller's role grants `p_permission`. These two run in every policy and
-- permission check: PL/pgSQL keeps their plans for the session, where a SQL function that can't be
-- inlined (security definer) is planned again on every call.
create or replace function pipetrak.my_organization_ids(p_permission text default 'read')
returns setof bigint
language plpgsql stable security definer parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    select m.organization_id
    from pipetrak.memberships m
    where m.user_id = pipetrak.current_user_id()
      and pipetrak.role_can(m.role, p_permission);
end
$$;

-- Projects where the caller's role grants `p_permission`.
create or replace function pipetrak.my_project_ids(p_permission text default 'read')
returns setof bigint
language plpgsql stable security definer parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    select p.id
    from pipetrak.projects p
    join pipetrak.memberships m on m.organization_id = p.organization_id
    where m.user_id = pipetrak.current_user_id()
      and pipetrak.role_can(m.role, p_permission);
end
$$;

-- A live component the caller may act on with `p_permission`, locked for update; component_not_found
-- for what the caller can't see.
create or replace function pipetrak.lock_component(p_component_id bigint, p_permission text)
returns pipetrak.components
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ctx record;
begin
    -- One read for the component and the caller's role in its project, locking the row only for a
    -- member (as update_milestone does): every weld and component operation starts here.
    select c as component, m.role, p.archived_at into v_ctx
    from pipetrak.components c
    join pipetrak.projects p on p.id = c.project_id
    join pipetrak.memberships m on m.organization_id = p.organization_id and m.user_id = pipetrak.current_user_id()
    where c.id = p_component_id
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
    return v_ctx.component;
end
$$;

-- ---- Field welds and QC: welders, NDE results, status, history (see sql/12_welds.sql) ----
insert into pipetrak.error_codes (code, sqlstate, message, hint) values
    ('weld_not_welded',          'PT409', 'The weld has no welder and date welded yet', 'Assign the welder and date welded (assign_welder) before recording NDE.'),
    ('reason_required',          'PT422', 'A reason is required', 'Say why (at least the characters the detail gives): it is kept in the history.'),
    ('invalid_nde',              'PT422', 'Not an NDE method or result', 'Use a method of RT, UT, PT, MT, VT and a result of PASS, FAIL or PENDING.'),
    ('nde_not_recorded',         'PT409', 'The weld has no current result for that method', 'Nothing to clear; see pipetrak_api.nde_results.'),
    ('welder_not_found',         'PT404', 'Welder not found', 'Use an id from pipetrak_api.welders of a project you belong to.'),
    ('stencil_taken',            'PT409', 'That stencil is already a welder of this project', 'Use the existing welder (pipetrak_api.welders).'),
    ('weld_record_immutable',    'PT403', 'NDE results and weld events can''t be changed or deleted', 'Record a new result with a reason: it supersedes the last one for its method.'),
    ('weld_has_nde',             'PT409', 'The weld has an NDE result', 'Clear its NDE results first (clear_nde, with a reason), or edit the welder instead (edit_welder).'),
    ('weld_already_welded',      'PT409', 'The weld is already welded', 'Change its welder or date with edit_welder (with a reason); only a weld not yet welded is assigned a welder or moves: clear its welder first (clear_welder) if it was recorded on the wrong weld or drawing.'),
    ('weld_not_rejected',        'PT409', 'Only a rejected weld is repaired', 'Record the failing NDE result first; see the weld''s status.'),
    ('repair_limit',             'PT409', 'The weld has been repaired 10 times: engineering review required', 'Ask engineering how to proceed; the chain takes no more repairs.'),
    ('weld_has_repair',          'PT409', 'The weld has a repair', 'Work on the repair weld instead: a repaired weld keeps its FAIL and can''t be retired.');

-- Review items are open, resolved or dismissed (QC queue).
alter table pipetrak.review_items add column status text not null default 'open' check (status in ('open', 'resolved', 'dismissed'));
update pipetrak.review_items set status = 'resolved' where resolved_at is not null;
alter table pipetrak.review_items add check ((status = 'open') = (resolved_at is null));
create or replace view pipetrak_api.review_items with (security_invoker = true) as
select id, project_id, component_id, event_id, kind, details, created_at, resolved_at, resolved_by, resolution_note, status
from pipetrak.review_items;
comment on view pipetrak_api.review_items is 'Items for QC: out-of-sequence updates and completed welds; status open, resolved or dismissed.';

-- Resolves a review item with a note (QC: owner, admin, project manager, QC inspector).
create or replace function pipetrak.resolve_review_item(p_review_item_id bigint, p_note text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint;
begin
    select project_id into v_project_id from pipetrak.review_items
    where id = p_review_item_id and project_id in (select pipetrak.my_project_ids());
    if v_project_id is null then
        perform pipetrak.raise_error('review_item_not_found', jsonb_build_object('review_item_id', p_review_item_id));
    end if;
    perform pipetrak.require_project_role(v_project_id, 'quality_control');
    perform pipetrak.check_text_length('note', p_note, pipetrak.argument_limit('note'));
    update pipetrak.review_items set resolved_at = now(), resolved_by = pipetrak.current_user_id(), resolution_note = p_note,
        status = 'resolved'
    where id = p_review_item_id and resolved_at is null;
end
$$;

-- Retires a component: it keeps its history and leaves the rollups.
create or replace function pipetrak.retire_component(p_component_id bigint)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint := (pipetrak.lock_component(p_component_id, 'manage_project_data')).project_id;
begin
    update pipetrak.components set retired_at = now(), updated_at = now(), version = version + 1 where id = p_component_id;
    -- Nothing is left to review on a retired component.
    perform pipetrak.resolve_items_of(p_component_id, null, 'component retired');
    perform pipetrak.log_component_change(v_project_id, p_component_id, 'retire', '{"retired": false}', '{"retired": true}', null);
end
$$;

-- QC status from the current NDE results (pipetrak.weld_status).
alter table pipetrak.field_welds
    add column status text not null default 'active' check (status in ('active', 'accepted', 'rejected')),
    add column repair_of bigint,
    add column unplanned boolean not null default false,
    add column unplanned_note text,
    add column current_nde jsonb not null default '{}',
    add column first_examined_on date,
    add column last_examined_on date,
    add column repaired_by bigint;

-- X-ray sampling calls for examinations through review items of their own kind.
alter table pipetrak.review_items drop constraint review_items_kind_check;
alter table pipetrak.review_items add constraint review_items_kind_check
    check (kind in ('out_of_sequence', 'weld_complete', 'examination_called'));

-- pipetrak::pg::welds::sampling_required
CREATE FUNCTION pipetrak."sampling_required"(
	"welded" INT, /* i32 */
	"tier" INT /* i32 */
) RETURNS INT /* i32 */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'sampling_required_wrapper';

-- pipetrak::pg::welds::repair_nde_methods
CREATE FUNCTION pipetrak."repair_nde_methods"(
	"listed" TEXT[], /* Vec < Option < String > > */
	"xray_percent" INT, /* Option < i32 > */
	"failed" TEXT[] /* Vec < Option < String > > */
) RETURNS TEXT[] /* Vec < String > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'repair_nde_methods_wrapper';

-- pipetrak::pg::events::signed_event_text
CREATE FUNCTION pipetrak."signed_event_text"(
	"key" bytea, /* &[u8] */
	"payload" TEXT /* &str */
) RETURNS TEXT /* core::option::Option<alloc::string::String> */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'signed_event_text_wrapper';

-- pipetrak::pg::welds::sampling_call_after_failure
CREATE FUNCTION pipetrak."sampling_call_after_failure"(
	"stage" INT, /* i32 */
	"failed" INT /* i32 */
) RETURNS TABLE (
	"stage" INT,  /* i32 */
	"count" INT  /* Option < i32 > */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'sampling_call_after_failure_wrapper';

-- pipetrak::pg::welds::weld_status
CREATE FUNCTION pipetrak."weld_status"(
	"listed" TEXT[], /* Vec < Option < String > > */
	"xray_percent" INT, /* Option < i32 > */
	"methods" TEXT[], /* Vec < Option < String > > */
	"results" TEXT[] /* Vec < Option < String > > */
) RETURNS TEXT /* & str */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'weld_status_wrapper';

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

-- Every append-only log refuses changes through one trigger function; the audit log's own guard
-- gives way to it.
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
drop trigger milestone_events_no_update on pipetrak.milestone_events;
drop trigger milestone_events_no_truncate on pipetrak.milestone_events;
drop function pipetrak.milestone_events_immutable();
create trigger milestone_events_no_update before update or delete on pipetrak.milestone_events
    for each row execute function pipetrak.refuse_change('audit_log_immutable');
create trigger milestone_events_no_truncate before truncate on pipetrak.milestone_events
    for each statement execute function pipetrak.refuse_change('audit_log_immutable');

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
begin
    update pipetrak.review_items set status = 'resolved', resolved_at = now(), resolved_by = pipetrak.current_user_id(),
        resolution_note = p_note
    where component_id = p_component_id and status = 'open' and (p_kind is null or kind = p_kind);
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
-- its current result per method ({"RT": "PASS", …}) and its first and last examination dates.
create function pipetrak.weld_nde_state(p_component_id bigint)
returns table (status text, current_nde jsonb, first_examined_on date, last_examined_on date)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    with latest as (
        select distinct on (n.method) n.id, n.method, n.result
        from pipetrak.nde_results n
        where n.component_id = p_component_id
        order by n.method, n.id desc),
    examined as (
        select min(n.examined_on) as first_on, max(n.examined_on) as last_on
        from pipetrak.nde_results n
        where n.component_id = p_component_id and n.result is not null)
    select pipetrak.weld_status(w.nde_types, w.xray_percent,
               coalesce((select array_agg(c.method order by c.id) from latest c where c.result is not null), '{}'),
               coalesce((select array_agg(c.result order by c.id) from latest c where c.result is not null), '{}')),
           coalesce((select jsonb_object_agg(c.method, c.result) from latest c where c.result is not null), '{}'),
           e.first_on, e.last_on
    from pipetrak.field_welds w cross join examined e
    where w.component_id = p_component_id;
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
    select f.repaired_by, f.project_id into v_repaired_by, v_project_id from pipetrak.field_welds f where f.component_id = p_component_id;
    if v_repaired_by is not null then
        if v_project_id in (select pipetrak.my_project_ids()) then
            perform pipetrak.require_project_role(v_project_id, p_permission);
            perform pipetrak.raise_error('weld_has_repair', jsonb_build_object('component_id', p_component_id, 'repair_id', v_repaired_by));
        end if;
    end if;
    v_component := pipetrak.lock_component(p_component_id, p_permission);
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
    from pipetrak.weld_nde_state(p_component_id) n
    where f.component_id = p_component_id
    returning f.status into v_status;
    insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
    values (v_weld.project_id, p_component_id, case when v_result is null then 'nde_cleared' else 'nde_recorded' end,
            jsonb_build_object('method', v_method, 'result', v_previous.result, 'status', v_weld.status),
            jsonb_build_object('method', v_method, 'result', v_result, 'status', v_status, 'nde_result_id', v_record_id),
            nullif(btrim(coalesce(p_reason, '')), ''), pipetrak.current_user_id());
    if v_result is not null then
        perform pipetrak.resolve_items_of(p_component_id, 'weld_complete', format('NDE recorded: %s %s', v_method, v_result));
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

-- A reason given for a change to a weld: at least `p_min` characters.
create or replace function pipetrak.check_reason(p_reason text, p_min integer, p_why text)
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
    v_weld pipetrak.field_welds := pipetrak.lock_weld(p_component_id, 'manage_welds');
    v_reason text := pipetrak.check_reason(p_reason, 3, 'changing the welder or date of a welded weld');
    v_stencil text;
    v_welder_id bigint := v_weld.welder_id;
    v_today date;
begin
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
    v_weld pipetrak.field_welds := pipetrak.lock_weld(p_component_id, 'manage_welds');
    v_reason text := pipetrak.check_reason(p_reason, 3, 'un-welding a weld');
    v_result jsonb;
begin
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
    v_weld pipetrak.field_welds := pipetrak.lock_weld(p_component_id, 'manage_project_data');
    v_reason text := pipetrak.check_reason(p_reason, 10, 'retiring a weld');
begin
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
    v_weld pipetrak.field_welds := pipetrak.lock_weld(p_component_id, 'manage_project_data');
    v_component pipetrak.components;
    v_drawing pipetrak.drawings;
begin
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
create or replace function pipetrak.create_unplanned_weld(p_project_id bigint, p_drawing_id bigint, p_weld_number text, p_weld_type text,
                                               p_size text, p_spec text, p_note text, p_xray_percent integer)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_note text;
    v_type text := upper(btrim(coalesce(p_weld_type, '')));
    v_id bigint;
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_welds');
    v_note := pipetrak.check_reason(p_note, 3, 'adding an unplanned weld');
    if v_type <> all (array['BW', 'SW', 'FW', 'TW', 'CW']) then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'weld_type', 'expected', 'BW, SW, FW, TW or CW'));
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
    where component_id = v_id;
    insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
    values (p_project_id, v_id, 'created_unplanned', '{}',
            jsonb_build_object('weld_number', (select tag from pipetrak.components where id = v_id), 'drawing_id', p_drawing_id),
            v_note, pipetrak.current_user_id());
    return v_id;
end
$$;

-- A new weld component with its facts row, on a live drawing of the project, refusing a number the
-- drawing already has. Returns {"id"}.
create or replace function pipetrak.insert_weld(p_project_id bigint, p_drawing_id bigint, p_weld_number text, p_size text, p_spec text)
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
create or replace function pipetrak.create_repair(p_component_id bigint, p_note text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_weld pipetrak.field_welds := pipetrak.lock_weld(p_component_id, 'manage_welds');
    v_component pipetrak.components;
    v_root bigint := p_component_id;
    v_chain integer := 0;
    v_root_tag text;
    v_repair bigint;
    v_result jsonb;
begin
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

create or replace function pipetrak.create_welder(p_project_id bigint, p_stencil text, p_name text)
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

create or replace function pipetrak.rename_welder(p_welder_id bigint, p_name text)
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
       not exists (select from pipetrak.nde_results later
                   where later.component_id = n.component_id and later.method = n.method and later.id > n.id) as is_current
from pipetrak.nde_results n;
comment on view pipetrak_api.nde_results is 'NDE records of your projects'' welds, append-only: is_current marks each method''s latest (a current record without a result means the method was cleared).';

create view pipetrak_api.weld_events with (security_invoker = true) as
select id, project_id, component_id, action, before, after, reason, actor, created_at from pipetrak.weld_events;
comment on view pipetrak_api.weld_events is 'The history of your projects'' welds (NDE recorded or cleared, …): who, when, before, after, reason. Append-only.';

create view pipetrak_api.qc_queue with (security_invoker = true) as
select r.id as review_item_id, r.project_id, r.kind, r.details, r.created_at, r.component_id, c.component_type,
       c.tag, c.size, d.id as drawing_id, d.drawing_no, w.stencil as welder, f.date_welded, f.status as weld_status
from pipetrak.review_items r
join pipetrak.components c on c.id = r.component_id
join pipetrak.drawings d on d.id = c.drawing_id
left join pipetrak.field_welds f on f.component_id = c.id
left join pipetrak.welders w on w.id = f.welder_id
where r.status = 'open';
comment on view pipetrak_api.qc_queue is 'Open review items of your projects, oldest first by id, with the component, drawing, welder and weld status QC needs.';

create or replace function pipetrak_api.dismiss_review_item(review_item_id bigint, note text)
returns void
language sql volatile security invoker
as $$ select pipetrak.dismiss_review_item(review_item_id, pipetrak.limited('note', note)) $$;
comment on function pipetrak_api.dismiss_review_item(bigint, text) is
    'Dismisses an open review item with a note (it stays in the record as dismissed). QC inspector and up.';

create or replace function pipetrak_api.record_nde(component_id bigint, method text, result text, examined_on date default null,
                                        report_number text default null, notes text default null, reason text default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.record_nde(component_id, pipetrak.limited('method', method), pipetrak.limited('result', result), examined_on, pipetrak.limited('report_number', report_number), pipetrak.limited('notes', notes), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.record_nde(bigint, text, text, date, text, text, text) is
    'Records an NDE result (method RT/UT/PT/MT/VT, result PASS/FAIL/PENDING) on a welded weld; a method recorded before is superseded and needs a reason. Returns the weld''s status. QC inspector and up.';

create or replace function pipetrak_api.clear_nde(component_id bigint, method text, reason text)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.clear_nde(component_id, pipetrak.limited('method', method), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.clear_nde(bigint, text, text) is
    'Clears a weld''s current result for one NDE method with a reason (a superseding record without a result). QC inspector and up.';

create or replace function pipetrak_api.edit_welder(component_id bigint, reason text, stencil text default null, date_welded date default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.edit_welder(component_id, pipetrak.limited('stencil', stencil), date_welded, pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.edit_welder(bigint, text, text, date) is
    'Changes the welder (by stencil) and/or date welded of a welded weld, with a reason; its milestones stay. Foreman and up.';

create or replace function pipetrak_api.clear_welder(component_id bigint, reason text)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.clear_welder(component_id, pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.clear_welder(bigint, text) is
    'Un-welds a weld with a reason: clears welder and date and lowers Weld Complete to 0. Refused while the weld has an NDE result. Foreman and up.';

create or replace function pipetrak_api.retire_weld(component_id bigint, reason text)
returns void
language sql volatile security invoker
as $$ select pipetrak.retire_weld(component_id, pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.retire_weld(bigint, text) is
    'Retires a weld with a reason of at least 10 characters (its history stays). Owner, admin, project manager.';

create or replace function pipetrak_api.move_weld(component_id bigint, drawing_id bigint, reason text default null)
returns void
language sql volatile security invoker
as $$ select pipetrak.move_weld(component_id, drawing_id, pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.move_weld(bigint, bigint, text) is
    'Moves a weld not yet welded to another drawing of its project that has no weld of its number. Owner, admin, project manager.';

create or replace function pipetrak_api.create_unplanned_weld(project_id bigint, drawing_id bigint, weld_number text, weld_type text,
                                                   size text, spec text, note text, xray_percent integer default null)
returns bigint
language sql volatile security invoker
as $$ select pipetrak.create_unplanned_weld(project_id, drawing_id, pipetrak.limited('weld_number', weld_number), pipetrak.limited('weld_type', weld_type), pipetrak.limited('size', size), pipetrak.limited('spec', spec), pipetrak.limited('note', note), xray_percent) $$;
comment on function pipetrak_api.create_unplanned_weld(bigint, bigint, text, text, text, text, text, integer) is
    'Adds a weld found in the field (not in the weld log): number, drawing, type, size, spec and a note are required; x-ray tier 5 % unless given. Foreman and up.';

create or replace function pipetrak_api.create_repair(component_id bigint, note text default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.create_repair(component_id, pipetrak.limited('note', note)) $$;
comment on function pipetrak_api.create_repair(bigint, text) is
    'Repairs a rejected weld: creates <number>.<n> on the same drawing with its facts and Fit-up at 100; the rejected weld leaves the rollups. At most 10 repairs per chain. Foreman and up.';

create or replace function pipetrak_api.create_welder(project_id bigint, stencil text, name text default null)
returns bigint
language sql volatile security invoker
as $$ select pipetrak.create_welder(project_id, pipetrak.limited('stencil', stencil), pipetrak.limited('name', name)) $$;
comment on function pipetrak_api.create_welder(bigint, text, text) is
    'Adds a welder to a project by stencil (2–12 letters, digits or dashes; unique in the project), unverified. Foreman and up.';

create or replace function pipetrak_api.rename_welder(welder_id bigint, name text)
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
    using (project_id in (select pipetrak.my_project_ids()));
create policy weld_day_tallies_select_member on pipetrak.weld_day_tallies for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));

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

create or replace function pipetrak.weld_tallies_follow_welds()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    -- Each weld finds its component through the primary key (lateral, limit 1): a join would
    -- let a big import's stale statistics pick a merge join that reads every component of the
    -- table for a chunk's few hundred welds.
    if tg_op = 'INSERT' then
        perform pipetrak.weld_tallies_apply(array(
            select pipetrak.weld_state(1, l.c, n) from new_rows n cross join lateral (select x as c from pipetrak.components x where x.id = n.component_id limit 1) l));
    elsif tg_op = 'UPDATE' then
        perform pipetrak.weld_tallies_apply(array(
            select pipetrak.weld_state(-1, l.c, o) from old_rows o cross join lateral (select x as c from pipetrak.components x where x.id = o.component_id limit 1) l
            union all
            select pipetrak.weld_state(1, l.c, n) from new_rows n cross join lateral (select x as c from pipetrak.components x where x.id = n.component_id limit 1) l));
    else
        perform pipetrak.weld_tallies_apply(array(
            select pipetrak.weld_state(-1, l.c, o) from old_rows o cross join lateral (select x as c from pipetrak.components x where x.id = o.component_id limit 1) l));
    end if;
    return null;
end
$$;

create function pipetrak.weld_tallies_follow_components()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.weld_tallies_apply(array(
        select pipetrak.weld_state(-1, old, f) from pipetrak.field_welds f where f.component_id = old.id
        union all
        select pipetrak.weld_state(1, new, f) from pipetrak.field_welds f where f.component_id = new.id));
    return null;
end
$$;

create trigger field_welds_tallies_insert after insert on pipetrak.field_welds
    referencing new table as new_rows
    for each statement execute function pipetrak.weld_tallies_follow_welds();
create trigger field_welds_tallies_update after update on pipetrak.field_welds
    referencing old table as old_rows new table as new_rows
    for each statement execute function pipetrak.weld_tallies_follow_welds();
create trigger field_welds_tallies_delete after delete on pipetrak.field_welds
    referencing old table as old_rows
    for each statement execute function pipetrak.weld_tallies_follow_welds();
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

create view pipetrak_api.weld_log with (security_invoker = true) as
select c.id as component_id, c.project_id, c.tag as weld_number, c.drawing_id, d.drawing_no, f.weld_type, f.weld_size,
       f.schedule, f.base_metal, f.spec, f.xray_percent, f.pwht_required, f.nde_types, f.welder_id, w.stencil as welder,
       w.name as welder_name, f.date_welded, f.status, f.repair_of, r.tag as repair_of_number, f.repaired_by, f.unplanned,
       c.percent_complete, c.area_id, a.name as area, c.system_id, s.name as system, c.test_package_id,
       t.name as test_package, nullif(f.current_nde, '{}') as current_nde, f.last_examined_on, c.retired_at,
       lower(c.tag || ' ' || d.drawing_no || ' ' || coalesce(w.stencil, '')) as search_text
from pipetrak.components c
join pipetrak.field_welds f on f.component_id = c.id
join pipetrak.drawings d on d.id = c.drawing_id
left join pipetrak.welders w on w.id = f.welder_id
left join pipetrak.components r on r.id = f.repair_of
left join pipetrak.areas a on a.id = c.area_id
left join pipetrak.systems s on s.id = c.system_id
left join pipetrak.test_packages t on t.id = c.test_package_id
where c.component_type = 'field_weld';
comment on view pipetrak_api.weld_log is 'The weld log: one row per weld of your projects (retired ones with retired_at) with drawing, welder, dates, facts, current NDE per method, status, repair of, % complete and assignments. Filter on any column; search_text (weld number, drawing, stencil, lowercase) takes ilike.';

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
    with groups as (
        select case p_group_by when 'area' then t.area_id when 'system' then t.system_id
                               when 'test_package' then t.test_package_id else t.welder_id end as key,
               sum(t.total)::bigint as total, sum(t.fitted_up)::bigint as fitted_up, sum(t.welded)::bigint as welded,
               sum(t.accepted)::bigint as accepted, sum(t.rejected)::bigint as rejected, sum(t.nde_required)::bigint as nde_required,
               sum(t.nde_pass)::bigint as nde_pass, sum(t.nde_fail)::bigint as nde_fail, sum(t.nde_pending)::bigint as nde_pending,
               sum(t.repairs)::bigint as repairs, sum(t.first_pass_accepted)::bigint as first_pass_accepted,
               round(sum(t.days_to_nde) / nullif(sum(t.examined_welds), 0), 1) as mean_days
        from pipetrak.weld_tallies t
        where t.project_id = p_project_id
        group by 1
        having sum(t.total) > 0 or sum(t.rejected) > 0 or sum(t.nde_pass + t.nde_fail + t.nde_pending) > 0 or sum(t.lot_welded) > 0)
    select g.key, coalesce(ar.name, sy.name, tp.name, wd.stencil), g.total, g.fitted_up, g.welded, g.accepted, g.rejected,
           g.nde_required, g.nde_pass, g.nde_fail, g.nde_pending, pipetrak.ratio(g.nde_pass, g.nde_pass + g.nde_fail),
           g.repairs, pipetrak.ratio(g.repairs, g.welded), g.first_pass_accepted, g.mean_days
    from groups g
    left join pipetrak.areas ar on p_group_by = 'area' and ar.id = g.key
    left join pipetrak.systems sy on p_group_by = 'system' and sy.id = g.key
    left join pipetrak.test_packages tp on p_group_by = 'test_package' and tp.id = g.key
    left join pipetrak.welders wd on p_group_by = 'welder' and wd.id = g.key
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

create or replace function pipetrak_api.weld_progress(project_id bigint, group_by text)
returns table (group_id bigint, group_name text, total bigint, fitted_up bigint, welded bigint, accepted bigint,
               rejected bigint, nde_required bigint, nde_pass bigint, nde_fail bigint, nde_pending bigint,
               pass_rate numeric, repairs bigint, repair_rate numeric, first_pass_accepted bigint, mean_days_to_nde numeric)
language sql stable security invoker
as $$ select * from pipetrak.weld_progress(project_id, pipetrak.limited('group_by', group_by)) $$;
comment on function pipetrak_api.weld_progress(bigint, text) is
    'Weld progress of a project by area, system, test_package or welder: total, fitted up, welded, accepted, rejected, NDE required/pass/fail/pending, pass rate, repairs and repair rate, first-pass acceptance, mean days welded to NDE.';

create or replace function pipetrak_api.welder_summary(project_id bigint, date_from date default null, date_to date default null,
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
-- two; after a failed tracer two more per failed weld of the progression; after a failed second
-- round the whole lot), chosen at random among the lot's welded welds not yet examined or called;
-- QC may swap a called weld for another of the lot (`repick_examination`). Each call opens an
-- `examination_called` review item naming the welds, which resolves itself once they are all
-- examined. A lot in progression is accepted once every called weld is examined and every reject is
-- repaired. A FAIL calls only once (superseding it with another FAIL calls nothing more).

create table pipetrak.examination_calls (
    id           bigserial primary key,
    project_id   bigint not null,
    -- The weld called for, and the failed weld whose examination called it.
    component_id bigint not null unique,
    failed_weld  bigint not null,
    stage        integer not null check (stage between 1 and 3),
    chosen_by    text not null check (chosen_by in ('random', 'qc')),
    called_by    uuid not null,
    called_at    timestamptz not null default now(),
    foreign key (project_id, component_id) references pipetrak.components (project_id, id)
);
create index examination_calls_project_idx on pipetrak.examination_calls (project_id, id);
alter table pipetrak.examination_calls enable row level security;
create policy examination_calls_select_member on pipetrak.examination_calls for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));

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
    v_project_id bigint := (select project_id from pipetrak.components where id = p_failed);
    v_stage integer;
    v_failed integer;
    v_call record;
    v_called bigint[];
begin
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
    insert into pipetrak.review_items (project_id, component_id, kind, details)
    values (v_project_id, p_failed, 'examination_called', jsonb_build_object('stage', v_call.stage, 'welds', to_jsonb(v_called),
            'weld_numbers', (select jsonb_agg(c.tag order by c.id) from pipetrak.components c where c.id = any (v_called))));
    return v_called;
end
$$;

-- Resolves the open examination calls that `p_component_id` completes (every weld they name examined).
create function pipetrak.resolve_examination_calls(p_component_id bigint)
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    update pipetrak.review_items r
    set status = 'resolved', resolved_at = now(), resolved_by = pipetrak.current_user_id(), resolution_note = 'called welds examined'
    where r.project_id = (select project_id from pipetrak.components where id = p_component_id)
      and r.kind = 'examination_called' and r.status = 'open' and r.details -> 'welds' @> to_jsonb(p_component_id)
      and not exists (select from jsonb_array_elements_text(r.details -> 'welds') w(id)
                      where pipetrak.weld_current_result(w.id::bigint, 'RT') is distinct from 'PASS' and pipetrak.weld_current_result(w.id::bigint, 'RT') is distinct from 'FAIL')
$$;

-- QC swaps a called weld not yet examined for another welded weld of its lot, not yet examined or called.
create function pipetrak.repick_examination(p_component_id bigint, p_replacement_id bigint)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_weld pipetrak.field_welds := pipetrak.lock_weld(p_component_id, 'quality_control');
    v_call pipetrak.examination_calls;
begin
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
    join pipetrak.field_welds f on f.component_id = e.component_id
    join pipetrak.components c on c.id = e.component_id
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
            select r.repaired_by, k.depth + 1 from chain k join pipetrak.field_welds r on r.component_id = k.id
            where r.repaired_by is not null and k.depth < 20)
        select k.id from chain k order by k.depth desc limit 1) e
    join pipetrak.field_welds x on x.component_id = e.id
    join pipetrak.components c on c.id = e.id and c.retired_at is null
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
join pipetrak.welders w on w.id = l.welder_id
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

-- ---- A weld log marks its welds welded and records their NDE ----
-- Transactions writing the historical record (a weld log's commit): their work dates may lie in a
-- locked week. Only extension functions write it (nobody else may); a row lives for its transaction.
create table pipetrak.historical_writes (
    txid bigint primary key
);
alter table pipetrak.historical_writes enable row level security;

-- A weld log's welds of one chunk with a welder and a date welded are made welded the way a
-- foreman would (Fit-up and Weld Complete at 100 with the date welded as work date, audited, one
-- "weld completed" review item), and an NDE result is recorded through the NDE records (the method
-- is the weld's one listed NDE type, or RT for an x-ray tier; otherwise the result stays a weld
-- fact). A log is the historical record: its dates may lie in a locked week (never in the future:
-- the reader refuses those). What is already so is left alone, so importing a log again changes
-- nothing. Returns {welded, nde}.
create function pipetrak.import_mark_welds(p_import_id bigint, p_project_id bigint, p_chunk integer)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    r record;
    v_welded integer := 0;
    v_nde integer := 0;
    v_result jsonb;
begin
    insert into pipetrak.historical_writes (txid) values (txid_current()) on conflict do nothing;
    for r in
        select w.id, x.date_welded, x.stencil, x.nde_result, f.nde_types, f.xray_percent, f.current_nde,
               c.milestone_values[array_position(t.names, 'Fit-up')] as fit_up,
               c.milestone_values[array_position(t.names, 'Weld Complete')] as weld_complete
        from pipetrak.import_rows x
        cross join lateral pipetrak.live_weld(p_project_id, x.drawing_key, x.tag) w
        join pipetrak.components c on c.id = w.id
        join pipetrak.field_welds f on f.component_id = w.id
        join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
        where x.import_id = p_import_id and x.chunk = p_chunk and x.status = 'valid' and x.component_type = 'field_weld'
          and ((x.stencil is not null and x.date_welded is not null) or x.nde_result is not null)
        order by x.line
    loop
        if r.stencil is not null and r.date_welded is not null and r.weld_complete < 100 then
            if r.fit_up < 100 then
                perform pipetrak.update_milestone(r.id, 'Fit-up', 100, r.date_welded, 'weld log import', null, null);
            end if;
            v_result := pipetrak.update_milestone(r.id, 'Weld Complete', 100, r.date_welded, 'weld log import', null, null);
            insert into pipetrak.review_items (project_id, component_id, event_id, kind, details)
            values (p_project_id, r.id, (v_result ->> 'event_id')::bigint, 'weld_complete',
                    jsonb_build_object('welder', r.stencil, 'date_welded', r.date_welded, 'import_id', p_import_id));
            v_welded := v_welded + 1;
        end if;
        if r.nde_result is not null and (cardinality(r.nde_types) = 1 or (cardinality(r.nde_types) = 0 and r.xray_percent > 0))
           and exists (select from pipetrak.field_welds f where f.component_id = r.id and f.welder_id is not null and f.date_welded is not null)
           and r.current_nde ->> coalesce(r.nde_types[1], 'RT') is distinct from r.nde_result then
            perform pipetrak.write_nde(r.id, coalesce(r.nde_types[1], 'RT'), r.nde_result, null, null, null, 'weld log import');
            v_nde := v_nde + 1;
        end if;
    end loop;
    delete from pipetrak.historical_writes where txid = txid_current();
    return jsonb_build_object('welded', v_welded, 'nde', v_nde);
end
$$;

-- The weld tallies start from the welds already recorded.
select pipetrak.rebuild_weld_tallies();

-- ---- History and man-hours: what the progress parts and events keep (see sql/14_history.sql) ----
-- Every event keeps its category, the credit it earned and its man-hours; 0.1.0's events get the
-- credit their milestone's weight gives (the audit log is append-only: its guard stands aside for
-- this one backfill).
alter table pipetrak.milestone_events add column category text, add column credit integer not null default 0,
    add column mh numeric;
alter table pipetrak.milestone_events disable trigger milestone_events_no_update;
update pipetrak.milestone_events e
set category = t.categories[array_position(t.names, e.milestone)],
    credit = coalesce(round(t.weights[array_position(t.names, e.milestone)] * (e.new_value - e.old_value) * 100)::integer, 0)
from pipetrak.components c
join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
where c.id = e.component_id;
alter table pipetrak.milestone_events enable trigger milestone_events_no_update;

-- An import's man-hour column (BUDGET MH, MAN HOURS, MH) is staged per row.
alter table pipetrak.import_rows add column budget_mh numeric;

-- Man-hour budgets (spec §11): versions per project, one active; the active version's budget per
-- component.
create table pipetrak.budget_versions (
    id             bigserial primary key,
    project_id     bigint not null references pipetrak.projects,
    version        integer not null,
    method         text not null check (method in ('spread', 'import')),
    total_mh       numeric(14, 2) not null check (total_mh >= 0),
    reason         text not null check (btrim(reason) <> '' and length(reason) <= 2000),
    effective_date date not null,
    active         boolean not null default true,
    components     integer not null default 0,
    guessed_sizes  integer not null default 0,
    created_by     uuid not null,
    created_at     timestamptz not null default now(),
    unique (project_id, version),
    unique (project_id, id)
);
create unique index budget_versions_active_idx on pipetrak.budget_versions (project_id) where active;

-- No foreign keys: only the extension writes these rows, from components and versions it has just
-- read (components are retired, never deleted), and checking two keys per row tripled the time
-- of spreading a budget over a large project.
create table pipetrak.component_budgets (
    component_id bigint primary key,
    project_id   bigint not null,
    version_id   bigint not null,
    budget_mh    numeric(14, 4) not null check (budget_mh >= 0)
);
create index component_budgets_project_idx on pipetrak.component_budgets (project_id);


-- ---- Test packages and turnover (see sql/13_packages.sql) ----
insert into pipetrak.error_codes (code, sqlstate, message, hint) values
    ('test_package_not_found',   'PT404', 'Test package not found', 'Use an id from pipetrak_api.test_package_readiness of a project you belong to.'),
    ('pressure_required',        'PT422', 'A Hydrostatic or Pneumatic test needs its pressure and unit', 'Give test_pressure > 0 with test_pressure_unit PSIG, PSI, BAR or KPA.'),
    ('stages_started',           'PT409', 'The package''s stages have started', 'The test type, coating and insulation needs can change only before the first stage starts.'),
    ('stage_not_found',          'PT404', 'The package has no such stage', 'See pipetrak_api.test_package_stages: stages come from the test type (set it with update_test_package).'),
    ('stage_out_of_order',       'PT409', 'The stage before this one is not completed or skipped', 'Complete or skip the stage named in the detail first.'),
    ('stage_state',              'PT409', 'The stage can''t do that in its state', 'A stage goes not_started → in_progress → completed, or is skipped before it completes; see the detail.'),
    ('stage_incomplete',         'PT422', 'The stage needs more data or sign-offs to complete', 'Save the fields and sign-offs the detail lists (save_stage, sign_stage), then complete it.'),
    ('nde_outstanding',          'PT409', 'A member weld awaits NDE or repair', 'Record the NDE (or repair the rejected weld) of the welds the detail counts, then confirm NDE complete.'),
    ('package_not_ready',        'PT409', 'Not every testable member of the package is ready', 'Finish the members the detail counts by drawing (see test_package_blockers), or flag post-hydro ones.'),
    ('certificate_locked',       'PT409', 'The certificate is locked: Test Acceptance is complete', 'A certificate is edited only until its package''s Test Acceptance completes.'),
    ('package_record_immutable', 'PT403', 'Package events can''t be changed or deleted', 'The package''s history is append-only.'),
    ('invitation_not_found',     'PT404', 'Invitation not found', 'Check the link: it may have been resent (a new token) or mistyped; ask for a new invitation.'),
    ('invitation_expired',       'PT410', 'The invitation has expired', 'Invitations are valid 7 days; ask an owner or admin to resend it.'),
    ('invitation_revoked',       'PT410', 'The invitation was revoked', 'Ask an owner or admin of the organization for a new invitation.'),
    ('invitation_used',          'PT410', 'The invitation has already been accepted', 'Each invitation is accepted once; the member is in the organization''s memberships.'),
    ('invitation_email_mismatch', 'PT403', 'The invitation is for another email address', 'Sign in with the address the invitation was sent to (your JWT''s email claim), or ask for an invitation to yours.'),
    ('invitation_pending',       'PT409', 'An invitation to that address is already pending', 'Resend it (resend_invitation) or revoke it first.'),
    ('invalid_email',            'PT422', 'That is not an email address', 'Send an address such as name@example.com (at most 320 characters).'),
    ('confirmation_mismatch',    'PT422', 'The name you confirmed does not match', 'Type the exact name (case and spaces count) to confirm the deletion.'),
    ('change_log_immutable',     'PT403', 'The component change log can''t be changed or deleted', 'The log is append-only: correct the component again with a reason.'),
    ('component_has_progress',   'PT409', 'The component has progress', 'Its type changes only while every milestone is 0: roll its milestones back first, or retire it and create the right one.'),
    ('weld_type_change',         'PT409', 'A field weld can''t become another type, nor another type a field weld', 'Retire the component (with a reason) and create the right one.'),
        ('component_not_retired',    'PT409', 'The component is not retired', 'Only retired components are restored.');

-- Test pressures take the spec's units; 0.1.0's are converted (MPa to kPa), a pressure of 0 is none.
alter table pipetrak.test_packages drop constraint test_packages_test_pressure_check,
    drop constraint test_packages_test_pressure_unit_check;
update pipetrak.test_packages set test_pressure = test_pressure * 1000, test_pressure_unit = 'kPa' where test_pressure_unit = 'MPa';
update pipetrak.test_packages set test_pressure_unit = case test_pressure_unit when 'psig' then 'PSIG' when 'barg' then 'BAR' else 'KPA' end
where test_pressure_unit is not null;
update pipetrak.test_packages set test_pressure = null, test_pressure_unit = null where test_pressure = 0;
alter table pipetrak.test_packages add constraint test_packages_test_pressure_check check (test_pressure > 0),
    add constraint test_packages_test_pressure_unit_check check (test_pressure_unit in ('PSIG', 'PSI', 'BAR', 'KPA'));

alter table pipetrak.components add column post_hydro boolean not null default false;
alter table pipetrak.progress_parts add column post_hydro_count integer not null default 0,
    add column ready_count integer not null default 0;
-- And man-hours (see sql/14_history.sql).
alter table pipetrak.progress_parts add column budget_mh numeric not null default 0,
    add column mh_receive numeric not null default 0, add column mh_install numeric not null default 0,
    add column mh_punch numeric not null default 0, add column mh_test numeric not null default 0,
    add column mh_restore numeric not null default 0;

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

-- pipetrak::pg::normalize::natural_key
CREATE FUNCTION pipetrak."natural_key"(
	"raw" TEXT /* & str */
) RETURNS TEXT /* String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'natural_key_wrapper';
-- pipetrak::pg::packages::package_stage_keys
CREATE FUNCTION pipetrak."package_stage_keys"(
	"test_type" TEXT, /* & str */
	"coating" bool, /* bool */
	"insulation" bool /* bool */
) RETURNS TEXT[] /* :: std :: option :: Option < Vec < String > > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'package_stage_keys_wrapper';
-- pipetrak::pg::packages::package_stage_rule
CREATE FUNCTION pipetrak."package_stage_rule"(
	"stage" TEXT /* & str */
) RETURNS TABLE (
	"title" TEXT,  /* String */
	"signoffs" TEXT[]  /* Vec < String > */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'package_stage_rule_wrapper';
-- pipetrak::pg::packages::package_stage_check
CREATE FUNCTION pipetrak."package_stage_check"(
	"stage" TEXT, /* & str */
	"data" jsonb /* JsonB */
) RETURNS TABLE (
	"missing" TEXT[],  /* Vec < String > */
	"latest_date" TEXT  /* Option < String > */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'package_stage_check_wrapper';
-- pipetrak::pg::packages::package_state
CREATE FUNCTION pipetrak."package_state"(
	"stages" TEXT[], /* Vec < Option < String > > */
	"statuses" TEXT[] /* Vec < Option < String > > */
) RETURNS TEXT /* & '_ str */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'package_state_wrapper';
-- pipetrak::pg::packages::package_stage_blocker
CREATE FUNCTION pipetrak."package_stage_blocker"(
	"stages" TEXT[], /* Vec < Option < String > > */
	"statuses" TEXT[], /* Vec < Option < String > > */
	"stage" TEXT /* & str */
) RETURNS TEXT /* Option < & '_ str > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'package_stage_blocker_wrapper';

-- Whether the running transaction's bulk write (update_milestones, a package earning its
-- milestone, component_batch) has deferred the rollups to its end: a bulk write nets its changes
-- into them once, where thousands of upserts of one row in one transaction would each walk the
-- row's growing chain of versions. Only the extension writes progress_deferrals, so a user who
-- sets pipetrak.progress_deferred skips nothing.
create function pipetrak.progress_deferred()
returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select current_setting('pipetrak.progress_deferred', true) = 'on'
       and exists (select from pipetrak.progress_deferrals d where d.backend_pid = pg_backend_pid() and d.xact = pg_current_xact_id())
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

-- The progress parts count post-hydro and ready members too.
-- Adds the live components of a transition table to (sign = 1) or removes them from (sign = -1)
-- the progress parts, one upsert per part touched, in key order so concurrent writers lock alike.
create or replace function pipetrak.progress_parts_apply()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    -- A bulk milestone update nets its changes into the parts once, at its end (see
    -- update_milestones): thousands of upserts of one part row in one transaction would each walk
    -- the row's growing chain of versions.
    if pipetrak.progress_deferred() then
        return null;
    end if;
    if tg_op in ('UPDATE', 'DELETE') then
        insert into pipetrak.progress_parts as p (project_id, drawing_id, area_id, system_id, test_package_id, component_type,
               component_count, completed_count, earned_total, earned_receive, earned_install, earned_punch, earned_test, earned_restore,
               post_hydro_count, ready_count, budget_mh, mh_receive, mh_install, mh_punch, mh_test, mh_restore)
        select o.project_id, o.drawing_id, o.area_id, o.system_id, o.test_package_id, o.component_type,
               -count(*), -count(*) filter (where o.earned_total = 1000000), -sum(o.earned_total), -sum(o.earned_receive),
               -sum(o.earned_install), -sum(o.earned_punch), -sum(o.earned_test), -sum(o.earned_restore),
               -count(*) filter (where o.post_hydro),
               -count(*) filter (where not o.post_hydro and pipetrak.ready_for_test(o.milestone_values, t.names,
                                           pipetrak.weld_clears_nde(f.status, f.nde_types, f.xray_percent, f.current_nde))),
               -coalesce(sum(b.budget_mh), 0), -coalesce(sum(b.budget_mh * o.earned_receive), 0),
               -coalesce(sum(b.budget_mh * o.earned_install), 0), -coalesce(sum(b.budget_mh * o.earned_punch), 0),
               -coalesce(sum(b.budget_mh * o.earned_test), 0), -coalesce(sum(b.budget_mh * o.earned_restore), 0)
        from old_rows o
        join pipetrak.milestone_templates t on t.project_id = o.project_id and t.component_type = o.component_type
        left join pipetrak.field_welds f on f.component_id = o.id
        left join pipetrak.component_budgets b on b.component_id = o.id
        where o.retired_at is null
        group by 1, 2, 3, 4, 5, 6 order by 1, 2, 3, 4, 5, 6
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
    end if;
    if tg_op in ('UPDATE', 'INSERT') then
        insert into pipetrak.progress_parts as p (project_id, drawing_id, area_id, system_id, test_package_id, component_type,
               component_count, completed_count, earned_total, earned_receive, earned_install, earned_punch, earned_test, earned_restore,
               post_hydro_count, ready_count, budget_mh, mh_receive, mh_install, mh_punch, mh_test, mh_restore)
        select n.project_id, n.drawing_id, n.area_id, n.system_id, n.test_package_id, n.component_type,
               count(*), count(*) filter (where n.earned_total = 1000000), sum(n.earned_total), sum(n.earned_receive),
               sum(n.earned_install), sum(n.earned_punch), sum(n.earned_test), sum(n.earned_restore),
               count(*) filter (where n.post_hydro),
               count(*) filter (where not n.post_hydro and pipetrak.ready_for_test(n.milestone_values, t.names,
                                          pipetrak.weld_clears_nde(f.status, f.nde_types, f.xray_percent, f.current_nde))),
               coalesce(sum(b.budget_mh), 0), coalesce(sum(b.budget_mh * n.earned_receive), 0),
               coalesce(sum(b.budget_mh * n.earned_install), 0), coalesce(sum(b.budget_mh * n.earned_punch), 0),
               coalesce(sum(b.budget_mh * n.earned_test), 0), coalesce(sum(b.budget_mh * n.earned_restore), 0)
        from new_rows n
        join pipetrak.milestone_templates t on t.project_id = n.project_id and t.component_type = n.component_type
        left join pipetrak.field_welds f on f.component_id = n.id
        left join pipetrak.component_budgets b on b.component_id = n.id
        where n.retired_at is null
        group by 1, 2, 3, 4, 5, 6 order by 1, 2, 3, 4, 5, 6
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
    end if;
    return null;
end
$$;

-- Adds (p_sign = 1) or removes (-1) the live components `p_component_ids` to or from the progress
-- parts, as the trigger does for a statement's rows.
create or replace function pipetrak.progress_parts_add(p_sign integer, p_component_ids bigint[])
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    insert into pipetrak.progress_parts as p (project_id, drawing_id, area_id, system_id, test_package_id, component_type,
           component_count, completed_count, earned_total, earned_receive, earned_install, earned_punch, earned_test, earned_restore,
           post_hydro_count, ready_count, budget_mh, mh_receive, mh_install, mh_punch, mh_test, mh_restore)
    select c.project_id, c.drawing_id, c.area_id, c.system_id, c.test_package_id, c.component_type,
           p_sign * count(*), p_sign * count(*) filter (where c.earned_total = 1000000), p_sign * sum(c.earned_total),
           p_sign * sum(c.earned_receive), p_sign * sum(c.earned_install), p_sign * sum(c.earned_punch), p_sign * sum(c.earned_test),
           p_sign * sum(c.earned_restore), p_sign * count(*) filter (where c.post_hydro),
           p_sign * count(*) filter (where not c.post_hydro and pipetrak.ready_for_test(c.milestone_values, t.names,
                                                pipetrak.weld_clears_nde(f.status, f.nde_types, f.xray_percent, f.current_nde))),
           p_sign * coalesce(sum(b.budget_mh), 0), p_sign * coalesce(sum(b.budget_mh * c.earned_receive), 0),
           p_sign * coalesce(sum(b.budget_mh * c.earned_install), 0), p_sign * coalesce(sum(b.budget_mh * c.earned_punch), 0),
           p_sign * coalesce(sum(b.budget_mh * c.earned_test), 0), p_sign * coalesce(sum(b.budget_mh * c.earned_restore), 0)
    from pipetrak.components c
    join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
    left join pipetrak.field_welds f on f.component_id = c.id
    left join pipetrak.component_budgets b on b.component_id = c.id
    where c.id = any (p_component_ids) and c.retired_at is null
    group by 1, 2, 3, 4, 5, 6 order by 1, 2, 3, 4, 5, 6
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
        mh_test = p.mh_test + excluded.mh_test, mh_restore = p.mh_restore + excluded.mh_restore
$$;

drop view pipetrak_api.test_package_readiness;

-- ---- body of sql/13_packages.sql ----
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
--   no PENDING result). Welds called for examination and not yet examined are reported as the
--   package's open examinations and hold Pre-Hydro's "NDE complete". Counts come from the progress
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
    id              bigserial primary key,
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
    unique (test_package_id, stage),
    unique (project_id, id),
    foreign key (project_id, test_package_id) references pipetrak.test_packages (project_id, id)
);
create index package_stages_project_idx on pipetrak.package_stages (project_id);

create table pipetrak.stage_signoffs (
    id           bigserial primary key,
    project_id   bigint not null,
    stage_id     bigint not null,
    signoff      text not null check (signoff in ('qc', 'client', 'manufacturer')),
    name         text not null check (btrim(name) <> '' and length(name) <= 200),
    company_role text not null check (btrim(company_role) <> '' and length(company_role) <= 200),
    signed_on    date not null,
    entered_by   uuid not null,
    entered_at   timestamptz not null default now(),
    unique (stage_id, signoff),
    foreign key (project_id, stage_id) references pipetrak.package_stages (project_id, id)
);
create index stage_signoffs_project_idx on pipetrak.stage_signoffs (project_id);

create table pipetrak.package_events (
    id              bigserial primary key,
    project_id      bigint not null,
    test_package_id bigint not null,
    stage           text,
    action          text not null,
    before          jsonb not null default '{}',
    after           jsonb not null default '{}',
    reason          text,
    actor           uuid not null,
    created_at      timestamptz not null default now(),
    foreign key (project_id, test_package_id) references pipetrak.test_packages (project_id, id)
);
create index package_events_package_idx on pipetrak.package_events (test_package_id, id);
create index package_events_project_idx on pipetrak.package_events (project_id, id);

create table pipetrak.certificate_numbers (
    project_id  bigint primary key references pipetrak.projects,
    last_number integer not null
);

create table pipetrak.package_certificates (
    test_package_id    bigint primary key,
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
    foreign key (project_id, test_package_id) references pipetrak.test_packages (project_id, id)
);

alter table pipetrak.package_stages enable row level security;
alter table pipetrak.stage_signoffs enable row level security;
alter table pipetrak.package_events enable row level security;
alter table pipetrak.certificate_numbers enable row level security;
alter table pipetrak.package_certificates enable row level security;
create policy package_stages_select_member on pipetrak.package_stages for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));
create policy stage_signoffs_select_member on pipetrak.stage_signoffs for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));
create policy package_events_select_member on pipetrak.package_events for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));
create policy certificate_numbers_select_member on pipetrak.certificate_numbers for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));
create policy package_certificates_select_member on pipetrak.package_certificates for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));

-- A package's history is append-only (see refuse_change).
create trigger package_events_no_update before update or delete on pipetrak.package_events
    for each row execute function pipetrak.refuse_change('package_record_immutable');
create trigger package_events_no_truncate before truncate on pipetrak.package_events
    for each statement execute function pipetrak.refuse_change('package_record_immutable');

-- ---- Readiness kept current by NDE ----

-- Moves the live, testable members `p_component_ids` whose milestones are ready through Punch into
-- (p_sign = 1) or out of (-1) their part's ready count: their weld's NDE now clears them, or no
-- longer does.
create function pipetrak.progress_parts_shift_ready(p_component_ids bigint[], p_sign integer)
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
    where c.id = any (p_component_ids) and c.retired_at is null and not c.post_hydro
      and pipetrak.ready_for_test(c.milestone_values, t.names, true)
    group by 1, 2, 3, 4, 5, 6 order by 1, 2, 3, 4, 5, 6
    on conflict on constraint progress_parts_key do update set ready_count = p.ready_count + excluded.ready_count;
end
$$;

-- A weld row that doesn't exist clears its component (see weld_clears_nde), so an inserted weld
-- can only take its component out of the ready count, and a deleted one only put it back.
create function pipetrak.progress_parts_follow_welds()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if tg_op = 'INSERT' then
        perform pipetrak.progress_parts_shift_ready(array(
            select n.component_id from new_rows n
            where not pipetrak.weld_clears_nde(n.status, n.nde_types, n.xray_percent, n.current_nde)), -1);
    elsif tg_op = 'DELETE' then
        perform pipetrak.progress_parts_shift_ready(array(
            select o.component_id from old_rows o
            where not pipetrak.weld_clears_nde(o.status, o.nde_types, o.xray_percent, o.current_nde)), 1);
    else
        perform pipetrak.progress_parts_shift_ready(array(
            select n.component_id from new_rows n join old_rows o on o.component_id = n.component_id
            where pipetrak.weld_clears_nde(n.status, n.nde_types, n.xray_percent, n.current_nde)
              and not pipetrak.weld_clears_nde(o.status, o.nde_types, o.xray_percent, o.current_nde)), 1);
        perform pipetrak.progress_parts_shift_ready(array(
            select n.component_id from new_rows n join old_rows o on o.component_id = n.component_id
            where not pipetrak.weld_clears_nde(n.status, n.nde_types, n.xray_percent, n.current_nde)
              and pipetrak.weld_clears_nde(o.status, o.nde_types, o.xray_percent, o.current_nde)), -1);
    end if;
    return null;
end
$$;

create trigger field_welds_ready_insert after insert on pipetrak.field_welds
    referencing new table as new_rows
    for each statement execute function pipetrak.progress_parts_follow_welds();
create trigger field_welds_ready_update after update on pipetrak.field_welds
    referencing old table as old_rows new table as new_rows
    for each statement execute function pipetrak.progress_parts_follow_welds();
create trigger field_welds_ready_delete after delete on pipetrak.field_welds
    referencing old table as old_rows
    for each statement execute function pipetrak.progress_parts_follow_welds();

-- ---- Packages and their stages ----

-- The live test package (locked), after checking the caller's role in its project.
create function pipetrak.lock_package(p_test_package_id bigint, p_permission text)
returns pipetrak.test_packages
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ctx record;
begin
    select t as package, m.role, p.archived_at into v_ctx
    from pipetrak.test_packages t
    join pipetrak.projects p on p.id = t.project_id
    join pipetrak.memberships m on m.organization_id = p.organization_id and m.user_id = pipetrak.current_user_id()
    where t.id = p_test_package_id and t.retired_at is null
    for update of t;
    if v_ctx.role is null then
        perform pipetrak.raise_error('test_package_not_found', jsonb_build_object('test_package_id', p_test_package_id));
    elsif not pipetrak.role_can(v_ctx.role, p_permission) then
        perform pipetrak.raise_error('permission_denied', jsonb_build_object('role', v_ctx.role, 'needs', p_permission));
    elsif v_ctx.archived_at is not null and p_permission <> 'read' then
        perform pipetrak.raise_error('project_archived', jsonb_build_object('project_id', (v_ctx.package).project_id));
    end if;
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
    delete from pipetrak.package_stages where test_package_id = p_package.id;
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
create or replace function pipetrak.update_test_package(p_test_package_id bigint, p_test_type text, p_test_pressure numeric,
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
        if exists (select from pipetrak.package_stages s where s.test_package_id = p_test_package_id and s.status <> 'not_started') then
            perform pipetrak.raise_error('stages_started', jsonb_build_object('test_package_id', p_test_package_id));
        end if;
        update pipetrak.test_packages set test_type = p_test_type, requires_coating = coalesce(p_requires_coating, false),
            requires_insulation = coalesce(p_requires_insulation, false)
        where id = p_test_package_id
        returning * into v_package;
        perform pipetrak.create_package_stages(v_package);
    end if;
    update pipetrak.test_packages set test_pressure = p_test_pressure, test_pressure_unit = v_unit, target_date = p_target_date
    where id = p_test_package_id;
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
        if cardinality(p_component_ids) > 10000 then
            perform pipetrak.raise_error('batch_too_large', jsonb_build_object('items', cardinality(p_component_ids), 'limit', 10000));
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

-- Member welds of a package whose NDE is outstanding: not cleared (see the notes), or called for
-- examination and not yet examined.
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
        group by 1, 2, 3, 4, 5, 6 order by 1, 2, 3, 4, 5, 6
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
    where test_package_id = p_package.id and stage = p_stage
    for update;
    if v_stage.id is null then
        perform pipetrak.raise_error('stage_not_found', jsonb_build_object('test_package_id', p_package.id, 'stage', p_stage,
            'stages', (select coalesce(jsonb_agg(s.stage order by s.position), '[]') from pipetrak.package_stages s
                       where s.test_package_id = p_package.id)));
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
    from pipetrak.package_stages s where s.test_package_id = p_stage.test_package_id;
    if v_blocker is not null then
        perform pipetrak.raise_error('stage_out_of_order', jsonb_build_object('stage', p_stage.stage, 'blocked_by', v_blocker));
    end if;
end
$$;

create function pipetrak.log_package_event(p_stage pipetrak.package_stages, p_action text, p_before jsonb, p_after jsonb, p_reason text)
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    insert into pipetrak.package_events (project_id, test_package_id, stage, action, before, after, reason, actor)
    values (p_stage.project_id, p_stage.test_package_id, p_stage.stage, p_action, coalesce(p_before, '{}'), coalesce(p_after, '{}'),
            p_reason, pipetrak.current_user_id())
$$;

create function pipetrak.start_stage(p_test_package_id bigint, p_stage text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_package pipetrak.test_packages := pipetrak.lock_package(p_test_package_id, 'quality_control');
    v_stage pipetrak.package_stages := pipetrak.lock_stage(v_package, p_stage);
begin
    perform pipetrak.check_stage_status(v_stage, array['not_started'], 'start');
    perform pipetrak.check_stage_order(v_stage);
    update pipetrak.package_stages set status = 'in_progress', started_at = now(), started_by = pipetrak.current_user_id()
    where id = v_stage.id;
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
    update pipetrak.package_stages set data = v_data where id = v_stage.id;
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
create or replace function pipetrak.sign_stage(p_test_package_id bigint, p_stage text, p_signoff text, p_name text, p_company_role text,
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
    select * into v_before from pipetrak.stage_signoffs where stage_id = v_stage.id and signoff = p_signoff;
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
    on conflict (stage_id, signoff) do update set name = excluded.name, company_role = excluded.company_role,
        signed_on = excluded.signed_on, entered_by = excluded.entered_by, entered_at = now();
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
    v_package pipetrak.test_packages := pipetrak.lock_package(p_test_package_id, 'quality_control');
    v_stage pipetrak.package_stages := pipetrak.lock_stage(v_package, p_stage);
    v_today date := (select (now() at time zone p.time_zone)::date from pipetrak.projects p where p.id = v_package.project_id);
    v_check record;
    v_missing_signoffs text[];
    v_not_ready jsonb;
    v_earned integer := 0;
begin
    perform pipetrak.check_stage_status(v_stage, array['in_progress'], 'complete');
    if p_data is not null then
        v_stage.data := pipetrak.save_stage(p_test_package_id, p_stage, p_data, null);
    end if;
    select * into v_check from pipetrak.package_stage_check(v_stage.stage, v_stage.data);
    v_missing_signoffs := array(select k from unnest((select r.signoffs from pipetrak.package_stage_rule(v_stage.stage) r)) k
                                where not exists (select from pipetrak.stage_signoffs s where s.stage_id = v_stage.id and s.signoff = k));
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
    -- Every testable member ready (the parts count them): nothing to name. Otherwise, which and where.
    if v_stage.stage = 'final' or (v_stage.stage = 'test' and exists (
           select from pipetrak.progress_parts p where p.test_package_id = v_package.id
           group by p.test_package_id having sum(p.component_count - p.post_hydro_count - p.ready_count) > 0)) then
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
    update pipetrak.package_stages set status = 'completed', completed_at = now(), completed_by = pipetrak.current_user_id()
    where id = v_stage.id;
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
begin
    if v_stage.stage in ('test', 'final') then
        perform pipetrak.raise_error('stage_state', jsonb_build_object('stage', v_stage.stage, 'status', v_stage.status,
            'action', 'skip', 'allowed_from', '[]'::jsonb));
    end if;
    perform pipetrak.check_stage_status(v_stage, array['not_started', 'in_progress'], 'skip');
    perform pipetrak.check_stage_order(v_stage);
    update pipetrak.package_stages set status = 'skipped', skip_reason = v_reason, completed_at = now(),
        completed_by = pipetrak.current_user_id()
    where id = v_stage.id;
    perform pipetrak.log_package_event(v_stage, 'stage_skipped', null, null, v_reason);
end
$$;

-- Saves a package's certificate, numbering it PKG-NNN on first save; refused once Test Acceptance
-- is complete. Returns the certificate number.
create or replace function pipetrak.save_certificate(p_test_package_id bigint, p_client text, p_client_spec text, p_line_numbers text,
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
    if exists (select from pipetrak.package_stages s where s.test_package_id = v_package.id and s.stage = 'test' and s.status = 'completed') then
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
    select number into v_number from pipetrak.package_certificates where test_package_id = v_package.id;
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
    where test_package_id = v_package.id;
    return pipetrak.certificate_label(v_number);
end
$$;

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
    select * into v_package from pipetrak.test_packages t
    where t.id = p_test_package_id and t.project_id in (select pipetrak.my_project_ids());
    if v_package.id is null then
        perform pipetrak.raise_error('test_package_not_found', jsonb_build_object('test_package_id', p_test_package_id));
    end if;
    with members as (
        select c.* from pipetrak.components c where c.test_package_id = v_package.id and c.retired_at is null),
    welds as (
        select c.id, c.drawing_id, c.tag, f.*, w.stencil,
               cardinality(f.nde_types) > 0 or coalesce(f.xray_percent, 0) > 0 as nde_required
        from members c join pipetrak.field_welds f on f.component_id = c.id
        left join pipetrak.welders w on w.id = f.welder_id)
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
                                                         'status', w.status, 'nde', nullif(w.current_nde, '{}'))
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

create view pipetrak_api.test_package_readiness with (security_invoker = true) as
with parts as (
    select p.project_id, p.test_package_id, sum(p.component_count) as members,
           sum(p.component_count - p.post_hydro_count) as testable, sum(p.ready_count) as ready, sum(p.post_hydro_count) as post_hydro
    from pipetrak.progress_parts p
    where p.test_package_id is not null
    group by p.project_id, p.test_package_id),
-- Open items are few beside the members: each looks up its component (a lateral join the planner
-- can't flatten — `limit 1` — so it never walks the components' primary key to match them).
items as (
    select r.project_id, c.test_package_id, count(*) as n
    from pipetrak.review_items r
    cross join lateral (select c.test_package_id from pipetrak.components c
                        where c.id = r.component_id and c.retired_at is null limit 1) c
    where r.resolved_at is null and c.test_package_id is not null
    group by r.project_id, c.test_package_id),
examinations as (
    select e.project_id, c.test_package_id, count(*) as n
    from pipetrak.examination_calls e
    join pipetrak.components c on c.id = e.component_id
    join pipetrak.field_welds f on f.component_id = e.component_id
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
       coalesce(p.post_hydro, 0)::bigint as post_hydro, coalesce(i.n, 0) as open_review_items,
       coalesce(x.n, 0) as open_examinations, coalesce(s.state, 'draft') as state
from pipetrak.test_packages t
left join parts p on p.project_id = t.project_id and p.test_package_id = t.id
left join items i on i.project_id = t.project_id and i.test_package_id = t.id
left join examinations x on x.project_id = t.project_id and x.test_package_id = t.id
left join stages s on s.project_id = t.project_id and s.test_package_id = t.id
where t.retired_at is null;
comment on view pipetrak_api.test_package_readiness is 'Per live test package: members, testable (not post-hydro), ready (through Punch, NDE clear), ready % (100 when nothing is testable), post-hydro, open review items and open examinations on members, target date and state (draft, testing, tested, turned_over). Current as soon as a milestone or NDE commits.';

create view pipetrak_api.test_package_stages with (security_invoker = true) as
select s.id as stage_id, s.project_id, s.test_package_id, s.stage, r.title, s.position, s.status, s.data, s.skip_reason,
       s.started_at, s.started_by, s.completed_at, s.completed_by, r.signoffs as signoffs_needed,
       coalesce((select jsonb_agg(jsonb_build_object('signoff', g.signoff, 'name', g.name, 'company_role', g.company_role,
                                                     'signed_on', g.signed_on, 'entered_by', g.entered_by, 'entered_at', g.entered_at)
                                  order by g.signoff)
                 from pipetrak.stage_signoffs g where g.stage_id = s.id), '[]') as signoffs
from pipetrak.package_stages s
cross join lateral pipetrak.package_stage_rule(s.stage) r;
comment on view pipetrak_api.test_package_stages is 'The workflow stages of your projects'' test packages in order, with status, data, the sign-offs each needs and those given.';

create view pipetrak_api.package_events with (security_invoker = true) as
select id, project_id, test_package_id, stage, action, before, after, reason, actor, created_at from pipetrak.package_events;
comment on view pipetrak_api.package_events is 'The history of test-package stages (append-only): started, edited after completion with a reason, signed off again, completed, skipped.';

create view pipetrak_api.test_package_certificates with (security_invoker = true) as
select k.test_package_id, k.project_id, pipetrak.certificate_label(k.number) as number, k.client, k.client_spec, k.line_numbers,
       k.test_pressure, k.test_pressure_unit, k.medium, k.temperature, k.temperature_unit, k.created_by, k.created_at, k.updated_at
from pipetrak.package_certificates k;
comment on view pipetrak_api.test_package_certificates is 'Test package certificates (PKG-NNN per project).';

create or replace function pipetrak_api.set_post_hydro(component_ids bigint[] default null, drawing_id bigint default null,
                                            post_hydro boolean default true)
returns integer
language sql volatile security invoker
as $$ select pipetrak.set_post_hydro(pipetrak.limited('component_ids', component_ids), drawing_id, post_hydro) $$;
comment on function pipetrak_api.set_post_hydro(bigint[], bigint, boolean) is
    'Flags components post-hydro (installed after their package''s test: members, not testable), or clears the flag: the ids given (up to 10,000) or every live component of a drawing. All-or-nothing; returns how many changed. Owner, admin, project manager.';

create or replace function pipetrak_api.start_stage(test_package_id bigint, stage text)
returns void
language sql volatile security invoker
as $$ select pipetrak.start_stage(test_package_id, pipetrak.limited('stage', stage)) $$;
comment on function pipetrak_api.start_stage(bigint, text) is
    'Starts a package stage (pre_hydro, test, drain_flush, post_hydro, coatings, insulation, final) once the one before it is completed or skipped. QC inspector and up.';

create or replace function pipetrak_api.save_stage(test_package_id bigint, stage text, data jsonb, reason text default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.save_stage(test_package_id, pipetrak.limited('stage', stage), pipetrak.limited('data', data), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.save_stage(bigint, text, jsonb, text) is
    'Merges fields into a started stage''s data (null removes one); a completed stage changes only with a reason, kept in package_events. Returns the data. QC inspector and up.';

create or replace function pipetrak_api.sign_stage(test_package_id bigint, stage text, signoff text, name text, company_role text,
                                        signed_on date default null, reason text default null)
returns void
language sql volatile security invoker
as $$ select pipetrak.sign_stage(test_package_id, pipetrak.limited('stage', stage), pipetrak.limited('signoff', signoff), pipetrak.limited('name', name), pipetrak.limited('company_role', company_role), signed_on, pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.sign_stage(bigint, text, text, text, text, date, text) is
    'Records a stage sign-off (qc, client or manufacturer, as the stage needs): name, company role, date (today unless given). On a completed stage only with a reason. QC inspector and up.';

create or replace function pipetrak_api.complete_stage(test_package_id bigint, stage text, data jsonb default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.complete_stage(test_package_id, pipetrak.limited('stage', stage), pipetrak.limited('data', data)) $$;
comment on function pipetrak_api.complete_stage(bigint, text, jsonb) is
    'Completes a stage in progress once its data and sign-offs are complete. Pre-Hydro needs no member weld awaiting NDE; Test Acceptance needs every testable member ready and earns Test = 100 on each (work date = test date); Final earns Restore = 100. QC inspector and up.';

create or replace function pipetrak_api.skip_stage(test_package_id bigint, stage text, reason text)
returns void
language sql volatile security invoker
as $$ select pipetrak.skip_stage(test_package_id, pipetrak.limited('stage', stage), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.skip_stage(bigint, text, text) is
    'Skips a stage with a reason (never Test Acceptance or Final), in order like starting one. QC inspector and up.';

create or replace function pipetrak_api.save_certificate(test_package_id bigint, client text default null, client_spec text default null,
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
-- ---- end of sql/13_packages.sql ----

-- The parts count readiness from now on.
select pipetrak.rebuild_progress_parts();

-- ---- History and man-hours (body of sql/14_history.sql) ----
-- pipetrak::pg::milestones::last_locked_sunday
CREATE FUNCTION pipetrak."last_locked_sunday"(
	"local_now" bigint /* i64 */
) RETURNS bigint /* i64 */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'last_locked_sunday_wrapper';
-- pipetrak::pg::milestones::manhour_weight
CREATE FUNCTION pipetrak."manhour_weight"(
	"component_type" TEXT, /* & str */
	"size" TEXT, /* & str */
	"quantity" double precision /* f64 */
) RETURNS TABLE (
	"weight" double precision,  /* f64 */
	"guessed" bool  /* bool */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'manhour_weight_wrapper';

-- ---- body of sql/14_history.sql ----
alter table pipetrak.budget_versions enable row level security;
alter table pipetrak.component_budgets enable row level security;
create policy budget_versions_select_member on pipetrak.budget_versions for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));
create policy component_budgets_select_member on pipetrak.component_budgets for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));

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
    using (project_id in (select pipetrak.my_project_ids()));

-- The days each component was touched, where it is now: a window longer than a month counts its
-- components here (one row each) rather than distinct over every component-day of the window.
create table pipetrak.component_touches (
    component_id    bigint primary key,
    project_id      bigint not null references pipetrak.projects,
    drawing_id      bigint not null,
    area_id         bigint,
    system_id       bigint,
    test_package_id bigint,
    component_type  text not null,
    days            datemultirange not null
);
create index component_touches_project_idx on pipetrak.component_touches (project_id);
alter table pipetrak.component_touches enable row level security;
create policy component_touches_select_member on pipetrak.component_touches for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));

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
-- parts their components are in now. `p_events`: event ids.
create function pipetrak.progress_days_add(p_sign integer, p_events bigint[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
-- Every milestone write runs this statement for one event: planning it anew for each call (a
-- custom plan) cost more than running it. The generic plan joins by the events' ids for any count.
set plan_cache_mode = force_generic_plan
as $$
begin
    insert into pipetrak.progress_days as d (project_id, work_date, drawing_id, area_id, system_id, test_package_id,
           component_type, events, credit_receive, credit_install, credit_punch, credit_test, credit_restore,
           mh_receive, mh_install, mh_punch, mh_test, mh_restore, components)
    select c.project_id, e.work_date, c.drawing_id, c.area_id, c.system_id, c.test_package_id, c.component_type,
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
           case when p_sign > 0 then array_agg(distinct c.id order by c.id) else '{}' end
    from unnest(p_events) as x(id)
    join pipetrak.milestone_events e on e.id = x.id
    join pipetrak.components c on c.id = e.component_id
    group by 1, 2, 3, 4, 5, 6, 7 order by 1, 2, 3, 4, 5, 6, 7
    on conflict on constraint progress_days_key do update set
        events = d.events + excluded.events,
        credit_receive = d.credit_receive + excluded.credit_receive, credit_install = d.credit_install + excluded.credit_install,
        credit_punch = d.credit_punch + excluded.credit_punch, credit_test = d.credit_test + excluded.credit_test,
        credit_restore = d.credit_restore + excluded.credit_restore,
        mh_receive = d.mh_receive + excluded.mh_receive, mh_install = d.mh_install + excluded.mh_install,
        mh_punch = d.mh_punch + excluded.mh_punch, mh_test = d.mh_test + excluded.mh_test,
        mh_restore = d.mh_restore + excluded.mh_restore, components = pipetrak.id_union(d.components, excluded.components);
    if p_sign > 0 then
        insert into pipetrak.component_touches as t (component_id, project_id, drawing_id, area_id, system_id, test_package_id,
                                                     component_type, days)
        select c.id, c.project_id, c.drawing_id, c.area_id, c.system_id, c.test_package_id, c.component_type,
               range_agg(daterange(e.work_date, e.work_date, '[]'))
        from unnest(p_events) as x(id)
        join pipetrak.milestone_events e on e.id = x.id
        join pipetrak.components c on c.id = e.component_id
        group by c.id order by c.id
        on conflict (component_id) do update set days = t.days + excluded.days
        where not t.days @> excluded.days;
    end if;
end
$$;

-- New events count in their days (a restore's COPY too).
create function pipetrak.progress_days_follow_events()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if current_setting('pipetrak.days_deferred', true) = 'on' and pipetrak.progress_deferred() then
        return null;
    end if;
    perform pipetrak.progress_days_add(1, array(select n.id from new_rows n));
    -- Events of a component retired already (only a restore loads them so): its credit leaves on
    -- the day it was retired, as it did when it was.
    perform pipetrak.progress_days_scope(-1, array[c.id], (c.retired_at at time zone p.time_zone)::date)
    from (select distinct n.component_id from new_rows n) n
    join pipetrak.components c on c.id = n.component_id and c.retired_at is not null
    join pipetrak.projects p on p.id = c.project_id;
    return null;
end
$$;

create trigger milestone_events_progress_days after insert on pipetrak.milestone_events
    referencing new table as new_rows
    for each statement execute function pipetrak.progress_days_follow_events();

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
    if (old.retired_at is null) <> (new.retired_at is null) then
        if not pipetrak.progress_deferred() then
            perform pipetrak.progress_days_scope(case when new.retired_at is null then 1 else -1 end, array[new.id], null);
        end if;
    elsif new.retired_at is null then
        perform pipetrak.progress_days_leave(new.id, old);
        perform pipetrak.progress_days_add(1, array(select e.id from pipetrak.milestone_events e where e.component_id = new.id));
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
    perform pipetrak.progress_days_add(1, array(select e.id from pipetrak.milestone_events e));
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
    using (project_id in (select pipetrak.my_project_ids()));
create policy weekly_snapshots_select_member on pipetrak.weekly_snapshots for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));

-- The Sunday ending the project's latest locked week.
create function pipetrak.last_locked_week_end(p_project_id bigint)
returns date
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select date '1970-01-01' + pipetrak.last_locked_sunday(extract(epoch from now() at time zone p.time_zone)::bigint)::integer
    from pipetrak.projects p where p.id = p_project_id
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

-- Freezes every locked week of a project not frozen yet (see the notes). The milestone engine
-- calls it before it writes an event, so a write never lands in a week it freezes. Taking twice
-- changes nothing. Returns the weeks taken.
create function pipetrak.take_due_snapshots(p_project_id bigint, p_last_locked date default null)
returns integer
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    -- The engine passes the last locked week's Sunday it has at hand.
    v_last date := coalesce(p_last_locked, pipetrak.last_locked_week_end(p_project_id));
    v_taken date := (select max(w.week_end) from pipetrak.snapshot_weeks w where w.project_id = p_project_id);
    v_week date;
    v_count integer := 0;
begin
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
    return true;
end
$$;

-- Every project's due snapshots (what pg_cron runs).
create function pipetrak.take_all_due_snapshots()
returns integer
language sql volatile
set search_path = pg_catalog, pg_temp
as $$ select coalesce(sum(pipetrak.take_due_snapshots(p.id, null)), 0)::integer from pipetrak.projects p where p.archived_at is null $$;

-- Where pg_cron is installed, it takes the snapshots every hour; pipetrak does not require it.
do $$
begin
    if exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
        execute $cron$select cron.schedule('pipetrak-weekly-snapshots', '7 * * * *', 'select pipetrak.take_all_due_snapshots()')$cron$;
    end if;
end
$$;

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

-- The name of a group key.
create function pipetrak.group_name(p_group_by text, p_key text)
returns text
language sql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
    select case p_group_by
        when 'area' then (select a.name from pipetrak.areas a where a.id = p_key::bigint)
        when 'system' then (select s.name from pipetrak.systems s where s.id = p_key::bigint)
        when 'test_package' then (select t.name from pipetrak.test_packages t where t.id = p_key::bigint)
        when 'drawing' then (select d.drawing_no from pipetrak.drawings d where d.id = p_key::bigint)
        when 'project' then (select p.name from pipetrak.projects p where p.id = p_key::bigint)
        else p_key end
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
    select e.k, pipetrak.group_name(p_group_by, e.k), coalesce(t.n, 0), e.events,
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
    select g.k, pipetrak.group_name(p_group_by, g.k), g.percent_complete, g.received_percent, g.installed_percent,
           g.punched_percent, g.tested_percent, g.restored_percent, g.earned_mh
    from pipetrak.progress_groups(p_project_id, p_group_by, p_as_of, false) g
    order by 2 nulls last, 1;
end
$$;

-- A locked week's report per group: progress at its end as frozen (or, not yet taken, as it will
-- be frozen), and the change since the week before's report (percentage points). A correction
-- dated in a frozen week shows here as part of the next week's change.
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
    select g.k, pipetrak.group_name(p_group_by, g.k), p_week_end - 6, p_week_end, v_frozen, g.percent_complete,
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
begin
    select * into v_job from pipetrak.import_jobs where id = p_import_id;
    if not exists (select from pipetrak.import_rows r where r.import_id = p_import_id and r.status = 'valid'
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
    join pipetrak.components c on c.drawing_id = d.id and c.component_type = r.component_type and c.tag = r.tag
         and c.size = r.size and c.retired_at is null
         and (c.component_type <> all (pipetrak.component_types('per_seq')) or c.seq between r.seq_from and r.seq_to)
    where r.import_id = p_import_id and r.status = 'valid' and r.budget_mh is not null
    group by c.id
    on conflict (component_id) do update set budget_mh = excluded.budget_mh, version_id = excluded.version_id;
    update pipetrak.budget_versions set
        total_mh = (select coalesce(sum(b.budget_mh), 0) from pipetrak.component_budgets b where b.version_id = v_version.id),
        components = (select count(*) from pipetrak.component_budgets b where b.version_id = v_version.id)
    where id = v_version.id;
    perform pipetrak.refresh_part_budgets(v_job.project_id);
end
$$;

-- Sets the progress parts' budgets and earned man-hours of a project from its components' budgets.
create function pipetrak.refresh_part_budgets(p_project_id bigint)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
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
    select x.k, pipetrak.group_name(p_group_by, x.k), round(x.budget, 2),
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
    select k.k, case when p_group_by = 'welder' then (select w.stencil from pipetrak.welders w where w.id = k.k::bigint)
                     else pipetrak.group_name(p_group_by, k.k) end,
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

create view pipetrak_api.project_dashboard with (security_invoker = true) as
with parts as (
    select p.project_id, sum(p.component_count) as components, sum(p.completed_count) as completed,
           sum(p.earned_total) as earned, sum(p.budget_mh) as budget,
           sum(p.mh_receive + p.mh_install + p.mh_punch + p.mh_test + p.mh_restore) / 1000000 as earned_mh
    from pipetrak.progress_parts p group by p.project_id),
packages as (
    select p.project_id, count(*) as ready
    from (select p.project_id, p.test_package_id from pipetrak.progress_parts p
          join pipetrak.test_packages t on t.id = p.test_package_id and t.retired_at is null
          group by 1, 2
          having sum(p.component_count - p.post_hydro_count) > 0 and sum(p.component_count - p.post_hydro_count - p.ready_count) = 0) p
    group by 1),
items as (select r.project_id, count(*) as open from pipetrak.review_items r where r.resolved_at is null group by 1),
week as (
    select d.project_id, sum(d.credit_receive + d.credit_install + d.credit_punch + d.credit_test + d.credit_restore) as credit
    from pipetrak.progress_days d join pipetrak.projects pr on pr.id = d.project_id
    where d.work_date >= date_trunc('week', now() at time zone pr.time_zone)::date
    group by 1)
select pr.id as project_id, pr.name as project_name,
       coalesce(case when x.budget > 0 then pipetrak.percent_of(x.earned_mh, x.budget)
                     else pipetrak.percent_of(x.earned, x.components * 1000000) end, 0) as percent_complete,
       x.budget > 0 as by_man_hours, coalesce(x.components, 0) as components, coalesce(x.completed, 0) as completed,
       coalesce(k.ready, 0) as packages_ready, coalesce(i.open, 0) as open_review_items,
       coalesce(pipetrak.percent_of(w.credit, x.components * 1000000), 0) as earned_this_week_percent,
       round(x.budget, 2) as budget_mh, round(x.earned_mh, 2) as earned_mh
from pipetrak.projects pr
left join parts x on x.project_id = pr.id
left join packages k on k.project_id = pr.id
left join items i on i.project_id = pr.id
left join week w on w.project_id = pr.id;
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
join pipetrak.components c on c.id = e.component_id
join pipetrak.drawings d on d.id = c.drawing_id
left join pipetrak.user_profiles u on u.user_id = e.user_id
-- "3 of 10": the seqs of a counted item.
cross join lateral (select case when c.component_type = any (pipetrak.component_types('per_seq')) then
                                (select count(*) from pipetrak.components s
                                 where s.drawing_id = c.drawing_id and s.component_type = c.component_type
                                   and s.tag = c.tag and s.size = c.size and s.retired_at is null) end as seqs) n;
comment on view pipetrak_api.activity_feed is 'Milestone changes of your projects as sentences ("J. Ortiz set Install 100 % on valve VBALU-001 2" 3 of 10, drawing P-26B07"), newest first by event_id: order by event_id desc with a limit.';

create or replace function pipetrak_api.progress_delta(project_id bigint, date_from date, date_to date, group_by text default 'area')
returns table (date_from date, date_to date, group_key text, group_name text, components_touched bigint, events bigint,
               percent_complete numeric, received_percent numeric, installed_percent numeric, punched_percent numeric,
               tested_percent numeric, restored_percent numeric, earned_mh numeric, mh_receive numeric, mh_install numeric,
               mh_punch numeric, mh_test numeric, mh_restore numeric)
language sql stable security invoker
as $$ select date_from, date_to, d.* from pipetrak.progress_delta(project_id, date_from, date_to, pipetrak.limited('group_by', group_by)) d $$;
comment on function pipetrak_api.progress_delta(bigint, date, date, text) is
    'What got done in a window of work dates (each row says its window), per area, system, test_package, drawing, component_type or project: components touched, events, credit earned in total and per category as % of the group''s available credit (rollbacks subtract), and earned man-hours where a budget exists.';

create or replace function pipetrak_api.progress_as_of(project_id bigint, as_of date, group_by text default 'area')
returns table (as_of date, group_key text, group_name text, percent_complete numeric, received_percent numeric,
               installed_percent numeric, punched_percent numeric, tested_percent numeric, restored_percent numeric,
               earned_mh numeric)
language sql stable security invoker
as $$ select as_of, a.* from pipetrak.progress_as_of(project_id, as_of, pipetrak.limited('group_by', group_by)) a $$;
comment on function pipetrak_api.progress_as_of(bigint, date, text) is
    'Progress per group as it stood at the end of a work date (each row says it; from the milestone events), % of the group''s available credit now.';

create or replace function pipetrak_api.weekly_report(project_id bigint, week_end date, group_by text default 'area')
returns table (group_key text, group_name text, week_start date, week_end date, frozen boolean, percent_complete numeric,
               change numeric, received_percent numeric, installed_percent numeric, punched_percent numeric,
               tested_percent numeric, restored_percent numeric, earned_mh numeric, earned_mh_change numeric)
language sql stable security invoker
as $$ select * from pipetrak.weekly_report(project_id, week_end, pipetrak.limited('group_by', group_by)) $$;
comment on function pipetrak_api.weekly_report(bigint, date, text) is
    'A locked week''s report (week_end: its Sunday; each row says the week it covers) per group: progress at its end as frozen when the week locked, and the change since the week before (null for the first frozen week). It reads the same forever; a week locked before the project''s snapshots began has none (week_not_frozen). Corrections to a frozen week show in the next week''s change.';

create or replace function pipetrak_api.manhour_progress(project_id bigint, group_by text default 'project')
returns table (group_key text, group_name text, budget_mh numeric, earned_mh numeric, percent_earned numeric,
               remaining_mh numeric, earned_receive_mh numeric, earned_install_mh numeric, earned_punch_mh numeric,
               earned_test_mh numeric, earned_restore_mh numeric)
language sql stable security invoker
as $$ select * from pipetrak.manhour_progress(project_id, pipetrak.limited('group_by', group_by)) $$;
comment on function pipetrak_api.manhour_progress(bigint, text) is
    'Man-hours per area, system, test_package or project: budget, earned (total and per category), % earned and remaining.';

create or replace function pipetrak_api.weld_delta(project_id bigint, date_from date, date_to date, group_by text default 'area')
returns table (date_from date, date_to date, group_key text, group_name text, fitted_up bigint, welded bigint, nde_pass bigint,
               nde_fail bigint, repairs bigint, new_welds bigint)
language sql stable security invoker
as $$ select date_from, date_to, d.* from pipetrak.weld_delta(project_id, date_from, date_to, pipetrak.limited('group_by', group_by)) d $$;
comment on function pipetrak_api.weld_delta(bigint, date, date, text) is
    'Weld work in a window (each row says its window) per area, system, test_package, drawing or welder: fitted up and welded (net of rollbacks), NDE PASS and FAIL recorded, repairs and new welds created.';

create or replace function pipetrak_api.spread_budget(project_id bigint, total_mh numeric, reason text, effective_date date default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.spread_budget(project_id, total_mh, pipetrak.limited('reason', reason), effective_date) $$;
comment on function pipetrak_api.spread_budget(bigint, numeric, text, date) is
    'Makes a new active man-hour budget version: spreads total_mh over the live components by diameter^1.5 (reducers: mean size; pipe: × feet × 0.1; unreadable size: 0.5, counted in guessed_sizes). Returns {version, components, guessed_sizes}. Owner, admin, project manager.';
-- ---- end of sql/14_history.sql ----

-- ---- Team and platform (see sql/15_team.sql to sql/18_platform.sql) ----
-- Members come by invitation now; add_member says so.
comment on function pipetrak_api.add_member(bigint, uuid, text) is 'Adds someone who already shares an organization with you, by user id, with a role (owners and admins; only owners add owners). Anyone else is invited by email: invite_member.';

-- notify_project and the change events sign and shape a payload through one function.
-- pipetrak::pg::events::signed_payload
CREATE FUNCTION pipetrak."signed_payload"(
	"key" bytea, /* & [u8] */
	"event_text" TEXT /* & str */
) RETURNS TEXT /* String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'signed_payload_wrapper';
create or replace function pipetrak.notify_project(p_project_id bigint, p_event jsonb)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_secret pipetrak.project_secrets;
    v_event jsonb := p_event || jsonb_build_object('project_id', p_project_id, 'sent_at', now());
begin
    select * into v_secret from pipetrak.project_secrets where project_id = p_project_id;
    if v_secret.project_id is not null then
        perform pg_notify(pipetrak.channel_name(v_secret.channel_key), pipetrak.signed_payload(v_secret.signing_key, v_event::text));
    end if;
end
$$;

-- Change events are queued in the backend (src/pg/changes.rs).
-- pipetrak::pg::changes::change_events
CREATE FUNCTION pipetrak."change_events"(
	"changes" jsonb /* JsonB */
) RETURNS jsonb[] /* Vec < JsonB > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'change_events_wrapper';
-- pipetrak::pg::changes::queue_change
CREATE FUNCTION pipetrak."queue_change"(
	"project_id" bigint, /* i64 */
	"kind" TEXT, /* & str */
	"ids" bigint[] /* Vec < Option < i64 > > */
) RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'queue_change_wrapper';
-- pipetrak::pg::changes::queued_changes
CREATE FUNCTION pipetrak."queued_changes"() RETURNS jsonb /* JsonB */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'queued_changes_wrapper';
-- A display name its user set stays; assignments and retirements land in the change log.
create or replace function pipetrak.sync_profile()
returns pipetrak.user_profiles
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_claims jsonb := pipetrak.current_claims();
    v_profile pipetrak.user_profiles;
begin
    insert into pipetrak.user_profiles as p (user_id, email, display_name)
    -- A name from the claims (user metadata its user may edit) on one line: it is shown in
    -- sentences (activity_feed), where a line break would forge another line.
    values (pipetrak.require_user(), v_claims ->> 'email',
            left(nullif(btrim(regexp_replace(coalesce(v_claims -> 'user_metadata' ->> 'full_name', v_claims ->> 'name'),
                                             '[[:cntrl:]]+', ' ', 'g')), ''), 200))
    on conflict (user_id) do update set
        email = coalesce(excluded.email, p.email),
        -- A name its user set stays: the claims only fill it in.
        display_name = coalesce(p.display_name, excluded.display_name),
        updated_at = now()
    returning * into v_profile;
    return v_profile;
end
$$;

create or replace function pipetrak.assign_component(p_component_id bigint, p_area_id bigint, p_system_id bigint,
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
    select * into v_drawing from pipetrak.drawings where id = v_component.drawing_id;
    if coalesce(p_follow_drawing, false) then
        update pipetrak.components set area_id = v_drawing.area_id, system_id = v_drawing.system_id,
            test_package_id = v_drawing.test_package_id, area_pinned = false, system_pinned = false,
            test_package_pinned = false, updated_at = now(), version = version + 1
        where id = p_component_id;
    else
        update pipetrak.components set
            area_id = coalesce(p_area_id, area_id), area_pinned = area_pinned or p_area_id is not null,
            system_id = coalesce(p_system_id, system_id), system_pinned = system_pinned or p_system_id is not null,
            test_package_id = coalesce(p_test_package_id, test_package_id),
            test_package_pinned = test_package_pinned or p_test_package_id is not null,
            updated_at = now(), version = version + 1
        where id = p_component_id;
    end if;
    select * into v_after from pipetrak.components where id = p_component_id;
    perform pipetrak.log_component_change(v_component.project_id, p_component_id, 'assign',
        jsonb_build_object('area_id', v_component.area_id, 'system_id', v_component.system_id, 'test_package_id', v_component.test_package_id),
        jsonb_build_object('area_id', v_after.area_id, 'system_id', v_after.system_id, 'test_package_id', v_after.test_package_id), null);
end
$$;

create or replace function pipetrak.assign_drawing(p_drawing_id bigint, p_area_id bigint, p_system_id bigint, p_test_package_id bigint)
returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint := pipetrak.drawing_project(p_drawing_id, 'manage_project_data');
    v_moved integer;
begin
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

-- ---- body of sql/15_team.sql ----
-- Invitations, profiles, and the life of organizations and projects (spec §2 and §12).
--
-- Design notes (decisions where the spec was silent):
-- - pipetrak sends no email: invite_member returns the token once, for the inviting app to mail as
--   a link. Only the token's SHA-256 is stored; a token is 256 random bits as hex.
-- - The JWT's `email` claim is the only proof of an address, compared case-insensitively — never
--   the profile, which its user may edit. Accepting needs both the token and that email.
-- - An invitation is pending until accepted, revoked or 7 days old. One pending invitation per
--   organization and email: inviting again while one is pending is `invitation_pending` (resend
--   it); an expired one is replaced by the new one. Resending rotates the token and restarts the 7
--   days; the old link dies.
-- - Who may invite to which role follows the matrix: owners and admins invite, only owners invite
--   owners. Accepting as someone who already belongs is `already_member`: roles change only through
--   change_member_role.
-- - Deleting an organization or a project removes every row of it in one transaction, its
--   append-only logs included, after a last signed `project_deleted` event on each project's
--   channel. Files in Supabase Storage stay: delete the project's folders through the Storage API.
-- - A project is deleted by an owner or admin confirming its exact name, as an organization is by an
--   owner confirming its own; archived projects can be restored to writable.

create table pipetrak.invitations (
    id              bigserial primary key,
    organization_id bigint not null references pipetrak.organizations,
    email           text not null check (length(email) <= 320 and email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    role            text not null check (role in ('owner', 'admin', 'project_manager', 'foreman', 'qc_inspector', 'welder', 'viewer')),
    token_hash      bytea not null unique check (length(token_hash) = 32),
    invited_by      uuid not null,
    created_at      timestamptz not null default now(),
    sent_at         timestamptz not null default now(),
    expires_at      timestamptz not null,
    sent_count      integer not null default 1,
    accepted_at     timestamptz,
    accepted_by     uuid,
    revoked_at      timestamptz,
    revoked_by      uuid,
    check (accepted_at is null or revoked_at is null),
    check ((accepted_at is null) = (accepted_by is null)),
    check ((revoked_at is null) = (revoked_by is null))
);
-- One open invitation per organization and address (an expired one is replaced in place).
create unique index invitations_open_idx on pipetrak.invitations (organization_id, lower(email))
    where accepted_at is null and revoked_at is null;
alter table pipetrak.invitations enable row level security;
-- Those who manage the organization's members see its invitations (never the token's hash: see
-- grant_privileges).
create policy invitations_select_manager on pipetrak.invitations for select to authenticated
    using (organization_id in (select pipetrak.my_organization_ids('manage_members')));

-- Where an invitation stands.
create function pipetrak.invitation_state(p_accepted_at timestamptz, p_revoked_at timestamptz, p_expires_at timestamptz)
returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select case
        when p_accepted_at is not null then 'accepted'
        when p_revoked_at is not null then 'revoked'
        when p_expires_at <= now() then 'expired'
        else 'pending'
    end
$$;

-- A fresh token (returned once) and the hash that is stored.
create function pipetrak.new_invitation_token(out token text, out token_hash bytea)
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    token := encode(pipetrak.random_key(), 'hex');
    token_hash := sha256(convert_to(token, 'UTF8'));
end
$$;

-- Invites `p_email` to an organization with a role. Owners and admins; only owners invite owners.
-- Returns {invitation_id, token, expires_at}: the token is shown this once.
create function pipetrak.invite_member(p_organization_id bigint, p_email text, p_role text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller_role text := pipetrak.require_organization_role(p_organization_id, 'manage_members');
    v_email text := lower(btrim(coalesce(p_email, '')));
    v_token record := pipetrak.new_invitation_token();
    v_open pipetrak.invitations;
    v_id bigint;
    v_expires timestamptz := now() + interval '7 days';
begin
    perform pipetrak.check_role_name(p_role);
    if p_role = 'owner' and not pipetrak.role_can(v_caller_role, 'manage_owners') then
        perform pipetrak.raise_error('owner_only');
    end if;
    if length(v_email) > 320 or v_email !~ '^[^@[:space:]]+@[^@[:space:]]+$' then
        perform pipetrak.raise_error('invalid_email', jsonb_build_object('email', left(p_email, 320)));
    end if;
    if exists (select from pipetrak.memberships m join pipetrak.user_profiles p on p.user_id = m.user_id
               where m.organization_id = p_organization_id and lower(p.email) = v_email) then
        perform pipetrak.raise_error('already_member', jsonb_build_object('email', v_email));
    end if;
    select * into v_open from pipetrak.invitations
    where organization_id = p_organization_id and lower(email) = v_email and accepted_at is null and revoked_at is null
    for update;
    if v_open.id is not null and v_open.expires_at > now() then
        perform pipetrak.raise_error('invitation_pending', jsonb_build_object('invitation_id', v_open.id, 'expires_at', v_open.expires_at));
    elsif v_open.id is not null then
        update pipetrak.invitations set role = p_role, token_hash = v_token.token_hash, invited_by = pipetrak.current_user_id(),
            created_at = now(), sent_at = now(), expires_at = v_expires, sent_count = 1
        where id = v_open.id
        returning id into v_id;
    else
        -- Two admins inviting the same address at once: the second finds the first's invitation.
        insert into pipetrak.invitations (organization_id, email, role, token_hash, invited_by, expires_at)
        values (p_organization_id, v_email, p_role, v_token.token_hash, pipetrak.current_user_id(), v_expires)
        on conflict (organization_id, lower(email)) where accepted_at is null and revoked_at is null do nothing
        returning id into v_id;
        if v_id is null then
            perform pipetrak.raise_error('invitation_pending', jsonb_build_object('email', v_email));
        end if;
    end if;
    return jsonb_build_object('invitation_id', v_id, 'token', v_token.token, 'expires_at', v_expires);
end
$$;

-- An open invitation of an organization the caller manages, locked; invitation_not_found otherwise.
create function pipetrak.lock_invitation(p_invitation_id bigint)
returns pipetrak.invitations
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_invitation pipetrak.invitations;
    v_caller_role text;
begin
    select * into v_invitation from pipetrak.invitations where id = p_invitation_id for update;
    if v_invitation.id is null
       or v_invitation.organization_id not in (select pipetrak.my_organization_ids('read')) then
        perform pipetrak.raise_error('invitation_not_found', jsonb_build_object('invitation_id', p_invitation_id));
    end if;
    v_caller_role := pipetrak.require_organization_role(v_invitation.organization_id, 'manage_members');
    if v_invitation.role = 'owner' and not pipetrak.role_can(v_caller_role, 'manage_owners') then
        perform pipetrak.raise_error('owner_only');
    end if;
    if v_invitation.accepted_at is not null then
        perform pipetrak.raise_error('invitation_used', jsonb_build_object('invitation_id', p_invitation_id));
    elsif v_invitation.revoked_at is not null then
        perform pipetrak.raise_error('invitation_revoked', jsonb_build_object('invitation_id', p_invitation_id));
    end if;
    return v_invitation;
end
$$;

-- Revokes an open invitation: its link stops working.
create function pipetrak.revoke_invitation(p_invitation_id bigint)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.lock_invitation(p_invitation_id);
    update pipetrak.invitations set revoked_at = now(), revoked_by = pipetrak.current_user_id() where id = p_invitation_id;
end
$$;

-- Sends an open invitation again (expired or not): a new token, 7 more days; the old link dies.
create function pipetrak.resend_invitation(p_invitation_id bigint)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_token record := pipetrak.new_invitation_token();
    v_expires timestamptz := now() + interval '7 days';
begin
    perform pipetrak.lock_invitation(p_invitation_id);
    update pipetrak.invitations set token_hash = v_token.token_hash, sent_at = now(), expires_at = v_expires,
        sent_count = sent_count + 1
    where id = p_invitation_id;
    return jsonb_build_object('invitation_id', p_invitation_id, 'token', v_token.token, 'expires_at', v_expires);
end
$$;

-- Accepts an invitation as the signed-in user whose JWT email is the invited address. Returns
-- {organization_id, role}.
create function pipetrak.accept_invitation(p_token text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user uuid := pipetrak.require_user();
    v_email text := lower(btrim(pipetrak.current_claims() ->> 'email'));
    v_invitation pipetrak.invitations;
begin
    select * into v_invitation from pipetrak.invitations
    where token_hash = sha256(convert_to(coalesce(p_token, ''), 'UTF8'))
    for update;
    -- The token is the secret: an unknown one says nothing more.
    if v_invitation.id is null then
        perform pipetrak.raise_error('invitation_not_found');
    elsif v_email is distinct from lower(v_invitation.email) then
        perform pipetrak.raise_error('invitation_email_mismatch');
    elsif v_invitation.accepted_at is not null then
        perform pipetrak.raise_error('invitation_used');
    elsif v_invitation.revoked_at is not null then
        perform pipetrak.raise_error('invitation_revoked');
    elsif v_invitation.expires_at <= now() then
        perform pipetrak.raise_error('invitation_expired', jsonb_build_object('expired_at', v_invitation.expires_at));
    elsif not pipetrak.invitation_stands(v_invitation.organization_id, v_invitation.invited_by, v_invitation.role) then
        -- Its inviter was removed or demoted since (revoke_lapsed_invitations revokes it too).
        perform pipetrak.raise_error('invitation_revoked', '{"reason": "the inviter may no longer invite to this role"}');
    end if;
    perform pipetrak.sync_profile();
    insert into pipetrak.memberships (organization_id, user_id, role, created_by)
    values (v_invitation.organization_id, v_user, v_invitation.role, v_invitation.invited_by)
    on conflict do nothing;
    if not found then
        perform pipetrak.raise_error('already_member', jsonb_build_object('organization_id', v_invitation.organization_id));
    end if;
    update pipetrak.invitations set accepted_at = now(), accepted_by = v_user where id = v_invitation.id;
    return jsonb_build_object('organization_id', v_invitation.organization_id, 'role', v_invitation.role);
end
$$;

-- Sets the caller's display name (NULL or blank clears it).
create or replace function pipetrak.update_profile(p_display_name text)
returns pipetrak.user_profiles
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_profile pipetrak.user_profiles := pipetrak.sync_profile();
begin
    perform pipetrak.check_text_length('display_name', btrim(p_display_name), pipetrak.argument_limit('display_name'));
    -- Shown in sentences (activity_feed): a line break or other control character would forge one.
    if p_display_name ~ '[[:cntrl:]]' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "display_name", "expected": "a name on one line, without control characters"}');
    end if;
    update pipetrak.user_profiles set display_name = nullif(btrim(p_display_name), ''), updated_at = now()
    where user_id = v_profile.user_id
    returning * into v_profile;
    return v_profile;
end
$$;

create or replace function pipetrak.rename_organization(p_organization_id bigint, p_name text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.require_organization_role(p_organization_id, 'manage_members');
    if p_name is null or btrim(p_name) = '' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "name", "expected": "a non-empty name"}');
    end if;
    perform pipetrak.check_text_length('name', btrim(p_name), pipetrak.argument_limit('name'));
    update pipetrak.organizations set name = btrim(p_name) where id = p_organization_id;
end
$$;

-- Removes every row of the projects `p_project_ids`, after a last event on each channel. Triggers
-- are off for the deletes (session_replication_role, restored when the function returns): the
-- append-only guards would refuse them, and the rollups they keep go with the projects. So every
-- table that holds project rows is named here; pgTAP checks none is left with a row of them.
create function pipetrak.purge_projects(p_project_ids bigint[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
set session_replication_role = replica
as $$
declare
    v_project_id bigint;
begin
    foreach v_project_id in array p_project_ids loop
        perform pipetrak.notify_project(v_project_id, '{"kind": "project_deleted"}');
    end loop;
    delete from pipetrak.import_rows r using pipetrak.import_jobs j where j.id = r.import_id and j.project_id = any (p_project_ids);
    delete from pipetrak.component_sources s using pipetrak.components c where c.id = s.component_id and c.project_id = any (p_project_ids);
    delete from pipetrak.stage_signoffs where project_id = any (p_project_ids);
    delete from pipetrak.weekly_snapshots where project_id = any (p_project_ids);
    delete from pipetrak.component_changes where project_id = any (p_project_ids);
    delete from pipetrak.review_items where project_id = any (p_project_ids);
    delete from pipetrak.milestone_events where project_id = any (p_project_ids);
    delete from pipetrak.nde_results where project_id = any (p_project_ids);
    delete from pipetrak.weld_events where project_id = any (p_project_ids);
    delete from pipetrak.examination_calls where project_id = any (p_project_ids);
    delete from pipetrak.package_certificates where project_id = any (p_project_ids);
    delete from pipetrak.package_events where project_id = any (p_project_ids);
    delete from pipetrak.package_stages where project_id = any (p_project_ids);
    delete from pipetrak.certificate_numbers where project_id = any (p_project_ids);
    delete from pipetrak.snapshot_weeks where project_id = any (p_project_ids);
    delete from pipetrak.progress_days where project_id = any (p_project_ids);
    delete from pipetrak.component_touches where project_id = any (p_project_ids);
    delete from pipetrak.progress_parts where project_id = any (p_project_ids);
    delete from pipetrak.weld_tallies where project_id = any (p_project_ids);
    delete from pipetrak.weld_day_tallies where project_id = any (p_project_ids);
    delete from pipetrak.component_budgets where project_id = any (p_project_ids);
    delete from pipetrak.budget_versions where project_id = any (p_project_ids);
    delete from pipetrak.client_requests where project_id = any (p_project_ids);
    delete from pipetrak.import_jobs where project_id = any (p_project_ids);
    delete from pipetrak.field_welds where project_id = any (p_project_ids);
    delete from pipetrak.components where project_id = any (p_project_ids);
    delete from pipetrak.welders where project_id = any (p_project_ids);
    delete from pipetrak.drawings where project_id = any (p_project_ids);
    delete from pipetrak.areas where project_id = any (p_project_ids);
    delete from pipetrak.systems where project_id = any (p_project_ids);
    delete from pipetrak.test_packages where project_id = any (p_project_ids);
    delete from pipetrak.milestone_templates where project_id = any (p_project_ids);
    delete from pipetrak.project_secrets where project_id = any (p_project_ids);
    delete from pipetrak.projects where id = any (p_project_ids);
end
$$;

-- Deletes an organization and everything of it, when an owner names it exactly.
create function pipetrak.delete_organization(p_organization_id bigint, p_confirm_name text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name text;
begin
    perform pipetrak.require_organization_role(p_organization_id, 'manage_owners');
    select name into v_name from pipetrak.organizations where id = p_organization_id for update;
    if p_confirm_name is distinct from v_name then
        perform pipetrak.raise_error('confirmation_mismatch', '{"argument": "confirm_name"}');
    end if;
    perform pipetrak.purge_projects(array(select id from pipetrak.projects where organization_id = p_organization_id));
    delete from pipetrak.invitations where organization_id = p_organization_id;
    delete from pipetrak.memberships where organization_id = p_organization_id;
    delete from pipetrak.organizations where id = p_organization_id;
end
$$;

create or replace function pipetrak.rename_project(p_project_id bigint, p_name text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_projects');
    if p_name is null or btrim(p_name) = '' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "name", "expected": "a non-empty name"}');
    end if;
    perform pipetrak.check_text_length('name', btrim(p_name), pipetrak.argument_limit('name'));
    update pipetrak.projects set name = btrim(p_name) where id = p_project_id;
end
$$;

-- Makes an archived project writable again.
create function pipetrak.unarchive_project(p_project_id bigint)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_role text := pipetrak.require_project_role(p_project_id, 'read');
begin
    if not pipetrak.role_can(v_role, 'manage_projects') then
        perform pipetrak.raise_error('permission_denied', jsonb_build_object('role', v_role, 'needs', 'manage_projects'));
    end if;
    update pipetrak.projects set archived_at = null where id = p_project_id;
end
$$;

-- Deletes a project and everything of it, when an owner or admin names it exactly (archived or not).
create function pipetrak.delete_project(p_project_id bigint, p_confirm_name text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_role text := pipetrak.require_project_role(p_project_id, 'read');
    v_name text;
begin
    if not pipetrak.role_can(v_role, 'manage_projects') then
        perform pipetrak.raise_error('permission_denied', jsonb_build_object('role', v_role, 'needs', 'manage_projects'));
    end if;
    select name into v_name from pipetrak.projects where id = p_project_id for update;
    if p_confirm_name is distinct from v_name then
        perform pipetrak.raise_error('confirmation_mismatch', '{"argument": "confirm_name"}');
    end if;
    perform pipetrak.purge_projects(array[p_project_id]);
end
$$;

-- ---- API ----

create view pipetrak_api.invitations with (security_invoker = true) as
select i.id, i.organization_id, i.email, i.role, pipetrak.invitation_state(i.accepted_at, i.revoked_at, i.expires_at) as state, i.invited_by, i.created_at,
       i.sent_at, i.expires_at, i.sent_count, i.accepted_at, i.accepted_by, i.revoked_at, i.revoked_by
from pipetrak.invitations i;
comment on view pipetrak_api.invitations is
    'Invitations of the organizations whose members you manage: address, role, state (pending, expired, accepted, revoked), when sent and until when valid.';

create or replace function pipetrak_api.invite_member(organization_id bigint, email text, role text)
returns jsonb language sql volatile
as $$ select pipetrak.invite_member(organization_id, pipetrak.limited('email', email), pipetrak.limited('role', role)) $$;
comment on function pipetrak_api.invite_member(bigint, text, text) is
    'Invites an email address with a role (owners and admins; only owners invite owners). Returns {invitation_id, token, expires_at}: send the token to the invitee, it is shown only now and valid 7 days.';

create function pipetrak_api.resend_invitation(invitation_id bigint)
returns jsonb language sql volatile
as $$ select pipetrak.resend_invitation(invitation_id) $$;
comment on function pipetrak_api.resend_invitation(bigint) is
    'Sends an open invitation again: a new token valid 7 days (the old one stops working). Returns {invitation_id, token, expires_at}.';

create function pipetrak_api.revoke_invitation(invitation_id bigint)
returns void language sql volatile
as $$ select pipetrak.revoke_invitation(invitation_id) $$;
comment on function pipetrak_api.revoke_invitation(bigint) is 'Revokes an open invitation: its token stops working.';

create or replace function pipetrak_api.accept_invitation(token text)
returns jsonb language sql volatile
as $$ select pipetrak.accept_invitation(pipetrak.limited('token', token)) $$;
comment on function pipetrak_api.accept_invitation(text) is
    'Joins the organization an invitation is for, as the signed-in user whose JWT email is the invited address. Returns {organization_id, role}.';

create or replace function pipetrak_api.update_profile(display_name text)
returns jsonb language sql volatile
as $$ select to_jsonb(pipetrak.update_profile(pipetrak.limited('display_name', display_name))) $$;
comment on function pipetrak_api.update_profile(text) is 'Sets your display name (blank clears it); returns your profile.';

create or replace function pipetrak_api.rename_organization(organization_id bigint, name text)
returns void language sql volatile
as $$ select pipetrak.rename_organization(organization_id, pipetrak.limited('name', name)) $$;
comment on function pipetrak_api.rename_organization(bigint, text) is 'Renames an organization (owners and admins).';

create or replace function pipetrak_api.delete_organization(organization_id bigint, confirm_name text)
returns void language sql volatile
as $$ select pipetrak.delete_organization(organization_id, pipetrak.limited('confirm_name', confirm_name)) $$;
comment on function pipetrak_api.delete_organization(bigint, text) is
    'Deletes an organization with all its projects, members and history, in one transaction (owners, naming it exactly).';

create or replace function pipetrak_api.rename_project(project_id bigint, name text)
returns void language sql volatile
as $$ select pipetrak.rename_project(project_id, pipetrak.limited('name', name)) $$;
comment on function pipetrak_api.rename_project(bigint, text) is 'Renames a project (owners and admins).';

create function pipetrak_api.unarchive_project(project_id bigint)
returns void language sql volatile
as $$ select pipetrak.unarchive_project(project_id) $$;
comment on function pipetrak_api.unarchive_project(bigint) is 'Makes an archived project writable again (owners and admins).';

create or replace function pipetrak_api.delete_project(project_id bigint, confirm_name text)
returns void language sql volatile
as $$ select pipetrak.delete_project(project_id, pipetrak.limited('confirm_name', confirm_name)) $$;
comment on function pipetrak_api.delete_project(bigint, text) is
    'Deletes a project with all its components and history, in one transaction (owners and admins, naming it exactly).';
-- ---- end of sql/15_team.sql ----

-- ---- body of sql/16_corrections.sql ----
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
    id           bigserial primary key,
    project_id   bigint not null,
    component_id bigint not null,
    action       text not null check (action in ('correct', 'retire', 'restore', 'assign')),
    fields       text[] not null,
    before       jsonb not null,
    after        jsonb not null,
    reason       text check (length(reason) <= 2000),
    user_id      uuid not null,
    created_at   timestamptz not null default now(),
    foreign key (project_id, component_id) references pipetrak.components (project_id, id)
);
create index component_changes_component_idx on pipetrak.component_changes (component_id, id);
create index component_changes_project_idx on pipetrak.component_changes (project_id, id);
alter table pipetrak.component_changes enable row level security;
create policy component_changes_select_member on pipetrak.component_changes for select to authenticated
    using (project_id in (select pipetrak.my_project_ids()));

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
create or replace function pipetrak.correct_component_for(p_component_id bigint, p_changes jsonb, p_reason text)
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
    v_component pipetrak.components := pipetrak.lock_component(p_component_id, 'manage_project_data');
    v_reason text := pipetrak.check_reason(p_reason, 3, 'retiring a component');
begin
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
-- taken its identity meanwhile or its drawing is retired.
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
-- SQLSTATE and names the item's index and component id. Runs as the caller: each item's function
-- checks the caller's role.
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
    -- A signed-in caller first; each item's function checks their role in its project.
    perform pipetrak.require_user();
    if jsonb_typeof(p_items) is distinct from 'array' then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'items', 'expected', 'an array'));
    elsif jsonb_array_length(p_items) > 10000 then
        perform pipetrak.raise_error('batch_too_large', jsonb_build_object('items', jsonb_array_length(p_items), 'limit', 10000));
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

create or replace function pipetrak_api.correct_component(component_id bigint, changes jsonb, reason text)
returns jsonb language sql volatile
as $$ select pipetrak.correct_component(component_id, pipetrak.limited('changes', changes), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.correct_component(bigint, jsonb, text) is
    'Corrects a component in place, keeping its history: changes is {description?, spec?, attributes? (merged; null removes a key), tag?, size?, drawing_id?, component_type? (only without progress)}. Returns the fields changed; logged with the reason.';

create or replace function pipetrak_api.correct_components(corrections jsonb, reason text)
returns integer language sql volatile
as $$ select pipetrak.component_batch('correct', pipetrak.limited('corrections', corrections), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.correct_components(jsonb, text) is
    'Corrects many components at once, all or nothing: an array of {component_id, …changes, reason?}; a failure names the item. Returns how many.';

create or replace function pipetrak_api.retire_components(component_ids bigint[], reason text)
returns integer language sql volatile
as $$ select pipetrak.component_batch('retire', to_jsonb(pipetrak.limited('component_ids', component_ids)), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.retire_components(bigint[], text) is
    'Retires components with a reason, all or nothing (welds by the weld rules): they keep their history and leave the rollups. Returns how many.';

create or replace function pipetrak_api.restore_components(component_ids bigint[], reason text)
returns integer language sql volatile
as $$ select pipetrak.component_batch('restore', to_jsonb(pipetrak.limited('component_ids', component_ids)), pipetrak.limited('reason', reason)) $$;
comment on function pipetrak_api.restore_components(bigint[], text) is
    'Brings retired components back, with a reason, all or nothing; refused when a live component has taken the identity. Returns how many.';
-- ---- end of sql/16_corrections.sql ----

-- ---- body of sql/17_realtime.sql ----
-- Change events (spec §8, §12): every committed change a screen shows is announced once per
-- transaction on the project's channel (see 11_events.sql for the channel and the signature).
--
-- How: statement triggers on the tables a screen reads hand the ids each statement changed to
-- pipetrak.queue_change, which keeps them in the backend (src/pg/changes.rs) with the
-- subtransaction that made them. Just before the transaction commits, they become one event per
-- project — {"kind": "changes", "changes": {kind: [ids]}, "part": n, "parts": m} — signed and
-- sent as notify_project sends an event (in Rust: a commit-time trigger on a queue table cost more
-- than the NOTIFY itself). A savepoint rolled back takes its changes with it, an aborted
-- transaction all of them, so what is announced is what committed.
--
-- Design notes (decisions where the spec was silent):
-- - Kinds: milestones (component ids), welds (component ids: weld facts, welder, NDE), packages
--   (test package ids: attributes, stages, sign-offs, certificates), imports (import ids),
--   review_items (ids), components (component ids of corrections, retirements, restorations and
--   assignments).
-- - An event is split into parts of at most about 7,000 bytes of ids (NOTIFY's payload limit is
--   8,000). A transaction that changes more than 5,000 ids of one project (an import's chunk) sends
--   one event with counts instead of ids — {"counts": {kind: n}, "reload": true} — and a screen
--   reloads: a few parts are worth splitting, hundreds are not.
-- - Where Supabase Realtime's `realtime.send` exists, each part also goes to the private topic
--   `project:<id>` (event "changes", unsigned: Realtime's own authorization guards the topic);
--   a failure there never fails the writer's transaction (realtime.send only warns).

-- Queues what a statement changed on one of the watched tables (transition table `changed`).
create function pipetrak.queue_changes()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    -- One static statement per table, so each keeps its plan for the session.
    if tg_table_name = 'milestone_events' then
        perform pipetrak.queue_change(project_id, 'milestones', array_agg(component_id)) from changed group by project_id;
    elsif tg_table_name = 'field_welds' then
        perform pipetrak.queue_change(project_id, 'welds', array_agg(component_id)) from changed group by project_id;
    elsif tg_table_name = 'test_packages' then
        perform pipetrak.queue_change(project_id, 'packages', array_agg(id)) from changed group by project_id;
    elsif tg_table_name in ('package_events', 'package_stages', 'package_certificates') then
        perform pipetrak.queue_change(project_id, 'packages', array_agg(test_package_id)) from changed group by project_id;
    elsif tg_table_name = 'stage_signoffs' then
        perform pipetrak.queue_change(c.project_id, 'packages', array_agg(s.test_package_id))
        from changed c join pipetrak.package_stages s on s.id = c.stage_id group by c.project_id;
    elsif tg_table_name = 'import_jobs' then
        perform pipetrak.queue_change(project_id, 'imports', array_agg(id)) from changed group by project_id;
    elsif tg_table_name = 'review_items' then
        perform pipetrak.queue_change(project_id, 'review_items', array_agg(id)) from changed group by project_id;
    elsif tg_table_name = 'component_changes' then
        perform pipetrak.queue_change(project_id, 'components', array_agg(component_id)) from changed group by project_id;
    end if;
    return null;
end
$$;

create trigger milestone_events_announce after insert on pipetrak.milestone_events
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger field_welds_announce_insert after insert on pipetrak.field_welds
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger field_welds_announce_update after update on pipetrak.field_welds
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger test_packages_announce_insert after insert on pipetrak.test_packages
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger test_packages_announce_update after update on pipetrak.test_packages
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger package_events_announce after insert on pipetrak.package_events
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger package_stages_announce_insert after insert on pipetrak.package_stages
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger package_stages_announce_update after update on pipetrak.package_stages
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger stage_signoffs_announce_insert after insert on pipetrak.stage_signoffs
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger stage_signoffs_announce_update after update on pipetrak.stage_signoffs
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger package_certificates_announce_insert after insert on pipetrak.package_certificates
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger package_certificates_announce_update after update on pipetrak.package_certificates
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger import_jobs_announce_insert after insert on pipetrak.import_jobs
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger import_jobs_announce_update after update on pipetrak.import_jobs
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger review_items_announce_insert after insert on pipetrak.review_items
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger review_items_announce_update after update on pipetrak.review_items
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
create trigger component_changes_announce after insert on pipetrak.component_changes
    referencing new table as changed for each statement execute function pipetrak.queue_changes();
-- ---- end of sql/17_realtime.sql ----

-- ---- body of sql/18_platform.sql ----
-- Supabase Storage and Realtime where they exist, and search (spec §12).
--
-- Design notes (decisions where the spec was silent):
-- - Storage paths: the first segment is always the project id.
--     pipetrak-drawings/<project>/<drawing id>/<file>           drawing PDFs (project managers and up)
--     pipetrak-imports/<project>/<file>                          import files (project managers and up)
--     pipetrak-attachments/<project>/welds/<weld id>/<file>      NDE reports (QC inspectors and up)
--     pipetrak-attachments/<project>/packages/<package id>/<file> certificates (QC inspectors and up)
--   Members of the project read; writing needs the role above, a live target of that project and a
--   project not archived. `pipetrak_api.attachments` lists the files with what they are linked to.
-- - Realtime: the policy on `realtime.messages` lets a member of the project receive on the private
--   topic `project:<id>` and nobody send into it (no insert policy of pipetrak's).
-- - Both are installed by `pipetrak.install_platform()`, run at CREATE EXTENSION and by the upgrade;
--   a database that gets Supabase's schemas later runs it once (as their owner or a superuser).
--   Without them it does nothing; without the privilege to create policies it warns and does nothing.
-- - Search ranks an exact match first, then prefixes (shortest first), then near codes, then
--   trigram similarity (see search_project). It shows what row-level security shows: the
--   project's rows, to its members only.

-- Whether the caller may read (or write) the object `p_name` of bucket `p_bucket`.
create function pipetrak.storage_allows(p_bucket text, p_name text, p_write boolean)
returns boolean
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_path text[] := string_to_array(p_name, '/');
    v_project_id bigint;
    v_target bigint;
    v_permission text;
begin
    -- A path is its segments as written: one that another reader would resolve elsewhere (`..`,
    -- `.`, an empty segment, a backslash, a control character) belongs to no project.
    if p_name is null or v_path[1] is null or v_path[1] !~ '^[0-9]{1,18}$' or length(p_name) > 1024
       or exists (select from unnest(v_path) s where s in ('', '.', '..'))
       or p_name ~ '[\\[:cntrl:]]' then
        return false;
    end if;
    v_project_id := v_path[1]::bigint;
    if not p_write then
        return v_project_id in (select pipetrak.my_project_ids('read'));
    end if;
    v_permission := case
        when p_bucket in ('pipetrak-drawings', 'pipetrak-imports') then 'manage_project_data'
        when p_bucket = 'pipetrak-attachments' and v_path[2] in ('welds', 'packages') then 'quality_control'
    end;
    if v_permission is null or cardinality(v_path) < (case when p_bucket = 'pipetrak-imports' then 2 else 3 end)
       or v_project_id not in (select pipetrak.my_project_ids(v_permission))
       or exists (select from pipetrak.projects p where p.id = v_project_id and p.archived_at is not null) then
        return false;
    end if;
    if p_bucket = 'pipetrak-imports' then
        return true;
    end if;
    v_target := case when p_bucket = 'pipetrak-drawings' and v_path[2] ~ '^[0-9]{1,18}$' then v_path[2]::bigint
                     when v_path[3] ~ '^[0-9]{1,18}$' then v_path[3]::bigint end;
    return cardinality(v_path) >= case when p_bucket = 'pipetrak-drawings' then 3 else 4 end
       and case
        when p_bucket = 'pipetrak-drawings' then
            exists (select from pipetrak.drawings d where d.id = v_target and d.project_id = v_project_id and d.retired_at is null)
        when v_path[2] = 'welds' then
            exists (select from pipetrak.field_welds w where w.component_id = v_target and w.project_id = v_project_id)
        else
            exists (select from pipetrak.test_packages t where t.id = v_target and t.project_id = v_project_id and t.retired_at is null)
       end;
end
$$;

-- Whether the caller may receive on the Realtime topic `p_topic` (project:<id> of theirs).
create function pipetrak.realtime_topic_allows(p_topic text)
returns boolean
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    return p_topic ~ '^project:[0-9]{1,18}$'
       and substr(p_topic, 9)::bigint in (select pipetrak.my_project_ids('read'));
end
$$;

-- Installs the buckets, the storage.objects policies, the attachments view and the Realtime policy
-- where Supabase's schemas exist. Safe to run again.
create function pipetrak.install_platform()
returns text[]
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_installed text[] := '{}';
    v_buckets constant text := $b$bucket_id in ('pipetrak-drawings', 'pipetrak-imports', 'pipetrak-attachments')$b$;
begin
    if to_regclass('storage.objects') is not null and to_regclass('storage.buckets') is not null then
        begin
            insert into storage.buckets (id, name, public)
            values ('pipetrak-drawings', 'pipetrak-drawings', false), ('pipetrak-imports', 'pipetrak-imports', false),
                   ('pipetrak-attachments', 'pipetrak-attachments', false)
            on conflict (id) do nothing;
            drop policy if exists pipetrak_read on storage.objects;
            drop policy if exists pipetrak_insert on storage.objects;
            drop policy if exists pipetrak_update on storage.objects;
            drop policy if exists pipetrak_delete on storage.objects;
            execute format('create policy pipetrak_read on storage.objects for select to authenticated
                using (%s and pipetrak.storage_allows(bucket_id, name, false))', v_buckets);
            execute format('create policy pipetrak_insert on storage.objects for insert to authenticated
                with check (%s and pipetrak.storage_allows(bucket_id, name, true))', v_buckets);
            execute format('create policy pipetrak_update on storage.objects for update to authenticated
                using (%1$s and pipetrak.storage_allows(bucket_id, name, true))
                with check (%1$s and pipetrak.storage_allows(bucket_id, name, true))', v_buckets);
            execute format('create policy pipetrak_delete on storage.objects for delete to authenticated
                using (%s and pipetrak.storage_allows(bucket_id, name, true))', v_buckets);
            execute $v$
                create or replace view pipetrak_api.attachments with (security_invoker = true) as
                select o.id, o.bucket_id as bucket, o.name as path, split_part(o.name, '/', 1)::bigint as project_id,
                       case when o.bucket_id = 'pipetrak-drawings' then 'drawing'
                            when o.bucket_id = 'pipetrak-imports' then 'import'
                            when split_part(o.name, '/', 2) = 'welds' then 'weld'
                            when split_part(o.name, '/', 2) = 'packages' then 'package' end as linked_to,
                       case when o.bucket_id = 'pipetrak-drawings' then nullif(split_part(o.name, '/', 2), '')::bigint
                            when o.bucket_id = 'pipetrak-attachments' then nullif(split_part(o.name, '/', 3), '')::bigint end as linked_id,
                       o.metadata ->> 'mimetype' as content_type, (o.metadata ->> 'size')::bigint as size,
                       o.owner as uploaded_by, o.created_at
                from storage.objects o
                where o.bucket_id in ('pipetrak-drawings', 'pipetrak-imports', 'pipetrak-attachments')
                  and split_part(o.name, '/', 1) ~ '^[0-9]{1,18}$'
                  and (o.bucket_id = 'pipetrak-imports' or split_part(o.name, '/', case when o.bucket_id = 'pipetrak-drawings' then 2 else 3 end) ~ '^[0-9]{1,18}$')$v$;
            comment on view pipetrak_api.attachments is
                'Files of your projects in Supabase Storage and what each is linked to: drawing PDFs (pipetrak-drawings/<project>/<drawing>/…), import files, NDE reports (pipetrak-attachments/<project>/welds/<weld>/…) and certificates (…/packages/<package>/…).';
            if exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
                grant select on pipetrak_api.attachments to authenticated;
            end if;
            if exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
                grant select on pipetrak_api.attachments to service_role;
            end if;
            v_installed := v_installed || 'storage'::text;
        exception when insufficient_privilege then
            raise warning 'pipetrak: no privilege to install the Storage buckets and policies; run select pipetrak.install_platform() as their owner';
        end;
    end if;
    if to_regclass('realtime.messages') is not null and to_regprocedure('realtime.topic()') is not null then
        begin
            drop policy if exists pipetrak_receive on realtime.messages;
            -- The row's own topic decides, and only on the topic the session subscribed to: setting
            -- realtime.topic to one's own project reads that project's messages, no other's.
            create policy pipetrak_receive on realtime.messages for select to authenticated
                using (topic = (select realtime.topic()) and pipetrak.realtime_topic_allows(topic));
            v_installed := v_installed || 'realtime'::text;
        exception when insufficient_privilege then
            raise warning 'pipetrak: no privilege to install the Realtime policy; run select pipetrak.install_platform() as its owner';
        end;
    end if;
    return v_installed;
end
$$;

-- `p_text` as a LIKE pattern matching what starts with it (its wildcards taken literally).
create function pipetrak.like_prefix(p_text text)
returns text
language sql immutable parallel safe
as $$
    select replace(replace(replace(p_text, '\', '\\'), '%', '\%'), '_', '\_') || '%'
$$;

-- `p_text` as a LIKE pattern matching what contains it.
create function pipetrak.like_infix(p_text text)
returns text
language sql immutable parallel safe
as $$
    select '%' || pipetrak.like_prefix(p_text)
$$;

-- Search: one call per project over drawings, components (tag, spool id), welds (number), welders
-- (stencil, name) and test packages, in tiers, each read only when the ones before left room:
--   3      an exact match (case-insensitive),
--   2 - …  a prefix (shorter first),
--   1 + …  a near code: the query's longest leading part (at least 60 % of it) that some tag starts
--          with, so VGATE-012345 finds VGATE-01234x beside itself,
--   0 … 1  trigram similarity, for typos (0.3 and up among codes that keep half of the query; for
--          drawings, welders and packages pg_trgm's % at 0.6).
-- Codes of a takeoff share most of their trigrams, so pg_trgm's % operator would meet a large part
-- of the database's components (its index can't tell VBALU-012345 from VBALU-999999 by the
-- trigrams of VBALU); the tiers use btree prefixes and trigram LIKE, which need all of a text.
-- pg_trgm may live in any schema, so the function is written against the schema it was installed
-- in (as similar_drawings).
create type pipetrak.search_result as (kind text, id bigint, label text, detail text, score real);
create index components_tag_prefix_idx on pipetrak.components (project_id, upper(tag) text_pattern_ops)
    where retired_at is null;
do $$
declare
    v_schema text;
begin
    select n.nspname into v_schema
    from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
    where e.extname = 'pg_trgm';
    execute format('create index components_tag_trgm_idx on pipetrak.components using gin (tag %I.gin_trgm_ops) where retired_at is null', v_schema);
    execute format($f$
        create function pipetrak.search_project(p_project_id bigint, p_query text, p_limit integer)
        returns setof pipetrak.search_result
        language plpgsql stable security definer
        set search_path = pg_catalog, pg_temp
        set pg_trgm.similarity_threshold = 0.6
        -- The prefix tiers need the pattern at planning time to use the btree index.
        set plan_cache_mode = force_custom_plan
        as $body$
        declare
            v_query text := upper(btrim(coalesce(p_query, '')));
            v_limit integer := least(greatest(coalesce(p_limit, 20), 1), 100);
            v_found pipetrak.search_result[];
            v_length integer;
            v_half integer;
        begin
            if v_query = '' then
                perform pipetrak.raise_error('invalid_argument', '{"argument": "query", "expected": "some text to look for"}');
            end if;
            perform pipetrak.check_text_length('query', v_query, pipetrak.argument_limit('query'));
            -- The policies' rule, checked once: a member of the project reads it, anyone else finds no
            -- project. Row-level security itself would keep the indexes out: its filter must run
            -- before any operator that isn't leakproof, and LIKE and pg_trgm's are not.
            perform pipetrak.require_project_role(p_project_id, 'read');
            v_found := array(
                (select row(case when c.component_type = 'field_weld' then 'weld' else 'component' end, c.id, c.tag,
                            case when c.component_type = 'field_weld' then 'weld ' || c.tag else c.component_type || ' ' || c.size end
                            || ' on ' || d.drawing_no,
                            case when upper(c.tag) = v_query then 3 else 2 - length(c.tag) / 1000.0 end)::pipetrak.search_result
                 from pipetrak.components c join pipetrak.drawings d on d.id = c.drawing_id
                 where c.project_id = p_project_id and c.retired_at is null
                   and upper(c.tag) like pipetrak.like_prefix(v_query)
                 order by length(c.tag), c.tag, c.id limit v_limit)
                union all
                (select row('drawing', d.id, d.drawing_no, d.title,
                            case when d.drawing_key = pipetrak.normalize_drawing_key(v_query) then 3
                                 when upper(d.drawing_no) like pipetrak.like_prefix(v_query) then 2 - length(d.drawing_no) / 1000.0
                                 else %1$I.similarity(d.drawing_key, pipetrak.normalize_drawing_key(v_query)) end)::pipetrak.search_result
                 from pipetrak.drawings d
                 where d.project_id = p_project_id and d.retired_at is null
                   and (upper(d.drawing_no) like pipetrak.like_prefix(v_query)
                        or d.drawing_key operator(%1$I.%%) pipetrak.normalize_drawing_key(v_query))
                 order by length(d.drawing_no), d.drawing_no limit v_limit)
                union all
                (select row('welder', w.id, w.stencil, w.name,
                            case when w.stencil = v_query then 3
                                 when w.stencil like pipetrak.like_prefix(v_query) or upper(w.name) like pipetrak.like_prefix(v_query)
                                     then 2 - length(w.stencil) / 1000.0
                                 else greatest(%1$I.similarity(w.stencil, v_query), %1$I.similarity(upper(coalesce(w.name, '')), v_query)) end)::pipetrak.search_result
                 from pipetrak.welders w
                 where w.project_id = p_project_id
                   and (w.stencil like pipetrak.like_prefix(v_query) or upper(w.name) like pipetrak.like_prefix(v_query)
                        or w.stencil operator(%1$I.%%) v_query or upper(w.name) operator(%1$I.%%) v_query)
                 limit v_limit)
                union all
                (select row('package', t.id, t.name, t.test_type,
                            case when upper(t.name) = v_query then 3
                                 when upper(t.name) like pipetrak.like_prefix(v_query) then 2 - length(t.name) / 1000.0
                                 else %1$I.similarity(upper(t.name), v_query) end)::pipetrak.search_result
                 from pipetrak.test_packages t
                 where t.project_id = p_project_id and t.retired_at is null
                   and (upper(t.name) like pipetrak.like_prefix(v_query) or upper(t.name) operator(%1$I.%%) v_query)
                 limit v_limit));
            -- Near codes: the longest leading part of the query some tag starts with.
            v_length := length(v_query) - 1;
            while (select count(*) from unnest(v_found) f where f.score >= 1) < v_limit
                  and v_length >= greatest(3, ceil(length(v_query) * 0.6)) loop
                v_found := v_found || array(
                    select row(case when c.component_type = 'field_weld' then 'weld' else 'component' end, c.id, c.tag,
                               case when c.component_type = 'field_weld' then 'weld ' || c.tag else c.component_type || ' ' || c.size end
                               || ' on ' || d.drawing_no,
                               1 + v_length::real / length(v_query) - abs(length(c.tag) - length(v_query)) / 1000.0)::pipetrak.search_result
                    from pipetrak.components c join pipetrak.drawings d on d.id = c.drawing_id
                    where c.project_id = p_project_id and c.retired_at is null
                      and upper(c.tag) like pipetrak.like_prefix(left(v_query, v_length))
                      and upper(c.tag) not like pipetrak.like_prefix(left(v_query, v_length + 1))
                    order by abs(length(c.tag) - length(v_query)), c.tag, c.id limit v_limit);
                v_length := v_length - 1;
            end loop;
            -- Typos: a code with one slip keeps one of its halves. Candidates start with the query's
            -- first half (btree) or contain its second half (a trigram LIKE, which needs every
            -- trigram of it: selective), at most 1,000 of each (a half as common as VBALU- tells
            -- nothing); they rank by trigram similarity, 0.3 and up.
            if (select count(*) from unnest(v_found) f where f.score >= 1) < v_limit and length(v_query) >= 4 then
                v_half := length(v_query) / 2;
                v_found := v_found || array(
                    select row(case when c.component_type = 'field_weld' then 'weld' else 'component' end, c.id, c.tag,
                               case when c.component_type = 'field_weld' then 'weld ' || c.tag else c.component_type || ' ' || c.size end
                               || ' on ' || d.drawing_no, %1$I.similarity(c.tag, v_query))::pipetrak.search_result
                    from ((select k.id from pipetrak.components k
                           where k.project_id = p_project_id and k.retired_at is null
                             and upper(k.tag) like pipetrak.like_prefix(left(v_query, v_half)) limit 1000)
                          union
                          (select k.id from pipetrak.components k
                           where k.project_id = p_project_id and k.retired_at is null
                             and k.tag ilike pipetrak.like_infix(right(v_query, -v_half)) limit 1000)) candidate
                    join pipetrak.components c on c.id = candidate.id
                    join pipetrak.drawings d on d.id = c.drawing_id
                    where upper(c.tag) not like pipetrak.like_prefix(left(v_query, greatest(3, ceil(length(v_query) * 0.6))::integer))
                      and %1$I.similarity(c.tag, v_query) >= 0.3
                    order by %1$I.similarity(c.tag, v_query) desc, c.tag limit v_limit);
            end if;
            return query select * from unnest(v_found) f order by f.score desc, f.label, f.id limit v_limit;
        end
        $body$
    $f$, v_schema);
end
$$;

create or replace function pipetrak_api.search(project_id bigint, query text, max_results integer default 20)
returns table (kind text, id bigint, label text, detail text, score real)
language sql stable
as $$ select * from pipetrak.search_project(project_id, pipetrak.limited('query', query), max_results) $$;
comment on function pipetrak_api.search(bigint, text, integer) is
    'Finds in a project drawings, components (commodity code, tag, spool id), welds (number), welders (stencil, name) and test packages by prefix or similarity: ranked (exact 3, prefix ~2, near code 1–2, similar 0–1), 20 results by default (at most 100); members only.';

select pipetrak.install_platform();
-- ---- end of sql/18_platform.sql ----

-- The days count every event recorded so far.
select pipetrak.rebuild_progress_days();

drop function pipetrak.render_remediation_csv(text[], jsonb[], text[]);

drop function pipetrak.milestone_earned(integer[], text[], integer[]);
drop function pipetrak.plan_milestone_update(text[], integer[], boolean[], text[], integer[], text, text, boolean, text);

-- An upload that is no workbook is named by its signature (a PDF, a PNG, a Word document…), a
-- damaged one said to be damaged: import_refusal says why, check_import_upload raises it.
create function pipetrak.import_refusal(
	"content" bytea /* & [u8] */
) RETURNS TABLE (
	"code" TEXT,  /* & '_ str */
	"message" TEXT  /* String */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'import_refusal_wrapper';

insert into pipetrak.error_codes (code, sqlstate, message, hint) values
    ('damaged_file',             'PT415', 'The workbook is damaged or incomplete', 'Open it in Excel (which repairs what it can) and save it again, or upload it again if the upload was cut short.');

drop function pipetrak.check_import_upload(bigint, text, text, integer, text);
-- Checks an upload (the caller's role, the arguments, the size and sniffed `p_format`) and
-- returns the format; a file of no format is refused with `p_refusal` ({code, message}: what the
-- file is, named by its signature, or that it is damaged). It is given the file's size, never the
-- file: see import_upload.
create function pipetrak.check_import_upload(p_project_id bigint, p_kind text, p_filename text, p_size integer,
                                             p_format text, p_refusal jsonb)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_project_data');
    if p_kind is null or p_kind not in ('takeoff', 'field_welds') then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "kind", "expected": "takeoff or field_welds"}');
    end if;
    if p_filename is null or btrim(p_filename) = '' or length(p_filename) > 255 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "filename", "expected": "the file''s name, 1 to 255 characters"}');
    end if;
    if p_size is null then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "content", "expected": "the file''s bytes"}');
    end if;
    if p_size = 0 then
        perform pipetrak.raise_error('empty_file', jsonb_build_object('filename', p_filename));
    end if;
    if p_size > 50 * 1024 * 1024 then
        perform pipetrak.raise_error('file_too_large', jsonb_build_object('bytes', p_size, 'limit', 50 * 1024 * 1024));
    end if;
    if p_format is null and p_refusal ->> 'code' = 'damaged_file' then
        perform pipetrak.raise_error('damaged_file', jsonb_build_object('filename', p_filename), p_refusal ->> 'message');
    elsif p_format is null then
        perform pipetrak.raise_error('unsupported_file', jsonb_build_object('filename', p_filename), p_refusal ->> 'message');
    end if;
    return p_format;
end
$$;

-- Stores an uploaded file as a new job (spec §9). The type is sniffed from the content. A SQL
-- function, so the file reaches the table without the extra copy a PL/pgSQL variable costs: a
-- 50 MB upload already takes about 150 MB of the backend's memory in PostgreSQL's own protocol
-- buffers, and every import function stays below 256 MB.
create or replace function pipetrak.import_upload(p_project_id bigint, p_kind text, p_filename text, p_content bytea)
returns bigint
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
    insert into pipetrak.import_jobs (project_id, kind, filename, format, content, created_by)
    select p_project_id, p_kind, btrim(p_filename), c.format, p_content, pipetrak.require_user()
    from pipetrak.check_import_upload(p_project_id, p_kind, p_filename, octet_length(p_content),
                                      pipetrak.import_sniff(coalesce(p_content, ''::bytea)),
                                      (select to_jsonb(r) from pipetrak.import_refusal(coalesce(p_content, ''::bytea)) r)) as c(format)
    returning id
$$;

-- The dry run of a file that corrects earlier imports is a rehearsal of its commit (rolled
-- back); a pipe row's feet are recorded for every pipe row of a file with reported rows; fixed
-- counted items take the seq the corrected file gives them, and an original committed after its
-- fixed rows numbers its items around theirs.
-- What committing a validated job would create and update, found by committing it (its valid
-- rows) in a subtransaction that is then rolled back. Remediation rows correct what their
-- original rows made one by one, each seeing the corrections before it, so a second, read-only
-- model of them would drift from the commit; the rehearsal is the commit itself. Everything it
-- wrote is undone (notifications too); only sequences keep the ids it drew.
create function pipetrak.import_rehearse(p_import_id bigint, p_project_id bigint)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_state jsonb;
    v_planned bigint;
begin
    select count(*) into v_planned
    from pipetrak.import_plan(p_import_id, p_project_id, null, false) p
    where not p.merged;
    begin
        loop
            v_state := pipetrak.import_commit_chunk(p_import_id, true);
            exit when v_state ->> 'status' = 'committed';
        end loop;
        raise exception using errcode = 'PTRBK', message = 'import rehearsal rolled back';
    exception
        when sqlstate 'PTRBK' then
            null;
        -- A commit that would fail says so when it is run; the dry run keeps its estimate.
        when others then
            return null;
    end;
    return jsonb_build_object(
        'create', coalesce((v_state ->> 'components_created')::bigint, 0),
        'update', coalesce((v_state ->> 'components_updated')::bigint, 0),
        'unchanged', greatest(v_planned - coalesce((v_state ->> 'components_created')::bigint, 0)
                                        - coalesce((v_state ->> 'components_updated')::bigint, 0), 0));
end
$$;


-- A file whose fixed rows a remediation import committed before it: the seqs of its counted items'
-- rows still to commit are numbered again, in file order, counting the items each fixed row made
-- (what the corrected file would have numbered), so they come before or after those as the rows
-- do instead of colliding with them.
create function pipetrak.import_renumber_after_fixes(p_import_id bigint)
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    with fixed as (
        select s.line, c.component_type, d.drawing_key, c.tag, c.size, count(*)::integer as n
        from pipetrak.component_sources s
        join pipetrak.components c on c.id = s.component_id and c.retired_at is null
        join pipetrak.drawings d on d.id = c.drawing_id
        where s.import_id = p_import_id and c.component_type = any (pipetrak.component_types('per_seq'))
        group by 1, 2, 3, 4, 5),
    waiting as (
        select r.line, r.component_type, r.drawing_key, r.tag, r.size, r.seq_to - r.seq_from + 1 as n
        from pipetrak.import_rows r
        where r.import_id = p_import_id and r.status = 'valid' and r.component_type = any (pipetrak.component_types('per_seq'))
          and not exists (select from pipetrak.component_sources s where s.import_id = p_import_id and s.line = r.line)),
    numbered as (
        select x.line, x.n, x.waits,
               1 + coalesce(sum(x.n) over (partition by x.component_type, x.drawing_key, x.tag, x.size order by x.line
                                           rows between unbounded preceding and 1 preceding), 0)::integer as seq_from
        from (select f.*, false as waits from fixed f union all select w.*, true from waiting w) x)
    update pipetrak.import_rows r set seq_from = x.seq_from, seq_to = x.seq_from + x.n - 1
    from numbered x
    where r.import_id = p_import_id and r.line = x.line and x.waits
      and (r.seq_from, r.seq_to) is distinct from (x.seq_from, x.seq_from + x.n - 1)
$$;


-- The first seq a counted item's row takes in the corrected file: one after the items of the
-- rows before it in the original (each as a remediation import `p_import_id` fixed it, or as the
-- original read it when valid and not fixed).
create function pipetrak.import_seq_in_file(p_import_id bigint, p_origin_import_id bigint, p_origin_line integer,
                                            p_component_type text, p_drawing_key text, p_tag text, p_size text)
returns integer
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select 1 + coalesce(sum(x.seq_to - x.seq_from + 1), 0)::integer
    from (
        select o.component_type, o.drawing_key, o.tag, o.size, o.seq_from, o.seq_to
        from pipetrak.import_rows o
        where o.import_id = p_origin_import_id and o.status = 'valid' and o.line < p_origin_line
          and not exists (select from pipetrak.import_rows f
                          where f.import_id = p_import_id and f.origin_import_id = p_origin_import_id and f.origin_line = o.line)
        union all
        select f.component_type, f.drawing_key, f.tag, f.size, f.seq_from, f.seq_to
        from pipetrak.import_rows f
        where f.import_id = p_import_id and f.status = 'valid' and f.origin_import_id = p_origin_import_id
          and f.origin_line < p_origin_line) x
    where (x.component_type, x.drawing_key, x.tag, x.size) = (p_component_type, p_drawing_key, p_tag, p_size)
$$;


-- Records the components the reported fresh rows of one chunk made (not the rows in `p_apart`),
-- and, in a file with reported rows, every pipe row's feet: a fixed row may move its feet onto a
-- pipe other rows of the file make (a size fixed from `2 SCH` to `2`), which then sums them all.
-- Pipes are the file's truth: footage recorded from other imports' rows is dropped, and a pipe
-- whose rows are recorded is the sum of their feet.
create or replace function pipetrak.import_record_sources(p_import_id bigint, p_project_id bigint, p_chunk integer, p_apart integer[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
    v_pipes bigint[];
    v_reported boolean;
begin
    select coalesce((j.summary -> 'issues' ->> 'error')::integer, 0) + coalesce((j.summary -> 'issues' ->> 'warning')::integer, 0) > 0
    into v_reported
    from pipetrak.import_jobs j where j.id = p_import_id;
    if not v_reported then
        return;
    end if;
    with made as (
        insert into pipetrak.component_sources as s (component_id, import_id, line, footage)
        select c.id, p_import_id, r.line,
               case when r.component_type = any (pipetrak.component_types('linear_aggregate')) then r.quantity end
        from pipetrak.import_rows r
        cross join lateral generate_series(r.seq_from, r.seq_to) as q(seq)
        -- Lateral probes of the drawing and identity indexes, one per component: a join could
        -- hash the project's components (their statistics are stale while an import writes them).
        cross join lateral (
            select x.id from pipetrak.drawings x
            where x.project_id = p_project_id and x.drawing_key = r.drawing_key and x.retired_at is null
            limit 1) d
        cross join lateral (
            select x.id from pipetrak.components x
            where x.project_id = p_project_id and x.retired_at is null
              and x.identity_key = pipetrak.identity_key(r.component_type, d.id, r.tag, r.size, q.seq)
            limit 1) c
        where r.import_id = p_import_id and r.chunk = p_chunk and r.status = 'valid'
          and (r.reported or r.component_type = any (pipetrak.component_types('linear_aggregate')))
          and r.line <> all (p_apart)
        on conflict (import_id, line, component_id) do update set footage = excluded.footage
        returning s.component_id, s.footage)
    select array_agg(distinct m.component_id) filter (where m.footage is not null) into v_pipes from made m;
    if v_pipes is null then
        return;
    end if;
    delete from pipetrak.component_sources s
    where s.component_id = any (v_pipes) and s.import_id <> p_import_id
      and not exists (select from pipetrak.import_rows r where r.import_id = p_import_id and r.origin_import_id = s.import_id);
    perform pipetrak.import_sum_footage(v_pipes);
end
$$;


-- Remediation rows of one chunk, in file order. A row whose original row made components
-- corrects them: a pipe's feet move to the pipe the row names; counted items keep their seq while
-- their item stays the same, else take the next free seqs of their new item; an id or instrument
-- whose new identity another live component holds is left as it was; a type changed on a
-- component without progress retires it for a new one (with progress it is left alone). A row
-- whose original made nothing yet makes it (counted items on the next free seqs, so they add to
-- what the original's other rows made). Returns {created, updated, left}.
create or replace function pipetrak.import_apply_remediation(p_import_id bigint, p_project_id bigint, p_chunk integer)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
    r pipetrak.import_rows;
    v_drawing pipetrak.drawings;
    v_linked bigint[];
    v_component pipetrak.components;
    v_target bigint;
    v_count integer;
    v_seq integer;
    v_per_seq boolean;
    v_created integer := 0;
    v_updated integer := 0;
    v_left integer := 0;
    v_names text[];
begin
    for r in
        select * from pipetrak.import_rows x
        where x.import_id = p_import_id and x.chunk = p_chunk and x.status = 'valid' and x.origin_import_id is not null
        order by x.line
    loop
        select * into v_drawing from pipetrak.drawings d
        where d.project_id = p_project_id and d.drawing_key = r.drawing_key and d.retired_at is null;
        select m.names into v_names from pipetrak.milestone_templates m
        where m.project_id = p_project_id and m.component_type = r.component_type;
        v_linked := array(
            select c.id from pipetrak.component_sources s join pipetrak.components c on c.id = s.component_id
            where s.import_id = r.origin_import_id and s.line = r.origin_line and c.retired_at is null
            order by c.seq, c.id);
        v_per_seq := r.component_type = any (pipetrak.component_types('per_seq'));

        if r.component_type = any (pipetrak.component_types('linear_aggregate')) then
            select c.id into v_target from pipetrak.components c
            where c.project_id = p_project_id and c.retired_at is null
              and c.identity_key = pipetrak.identity_key(r.component_type, v_drawing.id, r.tag, r.size, 1);
            if v_target is null then
                insert into pipetrak.components (project_id, drawing_id, component_type, tag, size, seq, quantity, description,
                                                 spec, attributes, area_id, system_id, test_package_id, milestone_values)
                values (p_project_id, v_drawing.id, r.component_type, r.tag, r.size, 1, r.quantity, r.description, r.spec,
                        r.attributes, v_drawing.area_id, v_drawing.system_id, v_drawing.test_package_id,
                        array_fill(0::numeric, array[cardinality(v_names)]))
                returning id into v_target;
                v_created := v_created + 1;
            elsif v_linked is not null and v_target = any (v_linked) then
                v_updated := v_updated + 1;
            end if;
            delete from pipetrak.component_sources s
            where s.import_id = r.origin_import_id and s.line = r.origin_line and s.component_id <> v_target;
            insert into pipetrak.component_sources (component_id, import_id, line, footage)
            values (v_target, r.origin_import_id, r.origin_line, r.quantity)
            on conflict (import_id, line, component_id) do update set footage = excluded.footage;
            perform pipetrak.import_sum_footage(array_append(v_linked, v_target));
            continue;
        end if;

        v_count := r.seq_to - r.seq_from + 1;
        for i in 1 .. greatest(v_count, cardinality(v_linked)) loop
            exit when i > v_count;
            if i <= cardinality(v_linked) then
                select * into v_component from pipetrak.components where id = v_linked[i];
                if v_component.component_type <> r.component_type then
                    if v_component.earned_total > 0 then
                        v_left := v_left + 1;
                        continue;
                    end if;
                    update pipetrak.components set retired_at = now(), updated_at = now(), version = version + 1
                    where id = v_component.id;
                    delete from pipetrak.component_sources s
                    where s.import_id = r.origin_import_id and s.line = r.origin_line and s.component_id = v_component.id;
                elsif (v_component.drawing_id, v_component.tag, v_component.size) = (v_drawing.id, r.tag, r.size) then
                    update pipetrak.components set description = r.description, spec = r.spec,
                        attributes = attributes || r.attributes, updated_at = now(), version = version + 1
                    where id = v_component.id
                      and (description, spec, attributes) is distinct from (r.description, r.spec, attributes || r.attributes);
                    if found then
                        v_updated := v_updated + 1;
                    end if;
                    continue;
                else
                    v_seq := case when v_per_seq then pipetrak.import_next_seq(p_project_id, v_drawing.id, r.component_type, r.tag, r.size) else 1 end;
                    if exists (select from pipetrak.components c where c.project_id = p_project_id and c.retired_at is null
                               and c.identity_key = pipetrak.identity_key(r.component_type, v_drawing.id, r.tag, r.size, v_seq)) then
                        v_left := v_left + 1;
                    else
                        update pipetrak.components set drawing_id = v_drawing.id, tag = r.tag, size = r.size, seq = v_seq,
                            description = r.description, spec = r.spec, attributes = attributes || r.attributes,
                            updated_at = now(), version = version + 1
                        where id = v_component.id;
                        v_updated := v_updated + 1;
                    end if;
                    continue;
                end if;
            end if;
            -- Nothing made yet for this seq of the row: make it, on the seq the corrected file gives it
            -- when that is free (its original, committed later, then makes the seqs before it), else
            -- on the next free one.
            v_seq := 1;
            if v_per_seq then
                v_seq := pipetrak.import_seq_in_file(p_import_id, r.origin_import_id, r.origin_line, r.component_type,
                                                     r.drawing_key, r.tag, r.size) + i - 1;
                if exists (select from pipetrak.components c where c.project_id = p_project_id and c.retired_at is null
                           and c.identity_key = pipetrak.identity_key(r.component_type, v_drawing.id, r.tag, r.size, v_seq)) then
                    v_seq := pipetrak.import_next_seq(p_project_id, v_drawing.id, r.component_type, r.tag, r.size);
                end if;
            end if;
            insert into pipetrak.components (project_id, drawing_id, component_type, tag, size, seq, quantity, description,
                                             spec, attributes, area_id, system_id, test_package_id, milestone_values)
            values (p_project_id, v_drawing.id, r.component_type, r.tag, r.size, v_seq, 1, r.description, r.spec,
                    r.attributes, v_drawing.area_id, v_drawing.system_id, v_drawing.test_package_id,
                    array_fill(0::numeric, array[cardinality(v_names)]))
            on conflict (project_id, identity_key) where retired_at is null do nothing
            returning id into v_target;
            if v_target is null then
                select c.id into v_target from pipetrak.components c
                where c.project_id = p_project_id and c.retired_at is null
                  and c.identity_key = pipetrak.identity_key(r.component_type, v_drawing.id, r.tag, r.size, v_seq);
            else
                v_created := v_created + 1;
            end if;
            insert into pipetrak.component_sources (component_id, import_id, line)
            values (v_target, r.origin_import_id, r.origin_line)
            on conflict do nothing;
        end loop;
    end loop;
    return jsonb_build_object('created', v_created, 'updated', v_updated, 'left', v_left);
end
$$;


-- Field truth: an import merges weld facts and never erases or replaces what the field recorded
-- (welder, date welded, NDE), each change a weld event; rows naming a weld repaired, retired or
-- moved, or a component retired, are skipped; welding by hand sets Fit-up too and always dates the
-- weld; an examination can't be dated before the weld; the review item is `weld_completed`.
alter table pipetrak.review_items drop constraint review_items_kind_check;
update pipetrak.review_items set kind = 'weld_completed' where kind = 'weld_complete';
alter table pipetrak.review_items add constraint review_items_kind_check
    check (kind in ('out_of_sequence', 'weld_completed', 'examination_called'));

insert into pipetrak.error_codes (code, sqlstate, message, hint) values
    ('nde_before_welded',        'PT422', 'The examination is dated before the weld was welded', 'Use the date the weld was examined: on or after its date welded.');

-- A weld's facts after importing row `r` onto it (`p_welder_id`: the welder of the row's stencil;
-- -1 for one the commit will create). Imports merge, never erase: a blank cell leaves the stored
-- fact alone; the weld's engineering facts (type, size, schedule, base metal, spec, x-ray tier,
-- PWHT, NDE methods) take the file's value; what the field records — welder, date welded, NDE
-- result — is only filled in where it is blank, never replaced (corrections are edit_welder and
-- record_nde, with a reason). The dry run and the commit both compare a weld with this.
create function pipetrak.import_weld_merge(w pipetrak.field_welds, r pipetrak.import_rows, p_welder_id bigint)
returns pipetrak.field_welds
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    m pipetrak.field_welds := w;
begin
    m.weld_type := coalesce(r.weld_type, w.weld_type);
    m.weld_size := coalesce(r.weld_size, w.weld_size);
    m.schedule := coalesce(r.schedule, w.schedule);
    m.base_metal := coalesce(r.base_metal, w.base_metal);
    m.spec := coalesce(r.spec, w.spec);
    m.xray_percent := coalesce(r.xray_percent, w.xray_percent);
    m.pwht_required := coalesce(r.pwht_required, w.pwht_required);
    m.nde_types := case when cardinality(r.nde_types) = 0 then w.nde_types
                        -- A repair keeps the examination duty it carries (see 12_welds' notes).
                        when w.repair_of is not null then w.nde_types || array(select t from unnest(r.nde_types) t where t <> all (w.nde_types))
                        else r.nde_types end;
    m.welder_id := coalesce(w.welder_id, p_welder_id);
    m.date_welded := coalesce(w.date_welded, r.date_welded);
    m.nde_result := coalesce(w.nde_result, r.nde_result);
    return m;
end
$$;


-- Why a staged row names nothing to import, when the project retired what it names: a weld on
-- this drawing repaired ("was repaired as W-1.1") or retired, or moved away ("was moved to
-- drawing P-2"), with no live weld of that number here; a component every seq of the row names
-- retired, none live. Null otherwise.
create function pipetrak.import_row_gone(p_project_id bigint, p_component_type text, p_drawing_key text, p_tag text,
                                         p_size text, p_seq_from integer, p_seq_to integer)
returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    with d as (
        select x.id from pipetrak.drawings x
        where x.project_id = p_project_id and x.drawing_key = p_drawing_key and x.retired_at is null
        limit 1)
    select case
        when p_component_type = 'field_weld' then (
            select coalesce(
                (select case when f.repaired_by is not null then format('was repaired as %s', rc.tag) else 'was retired' end
                 from d
                 join pipetrak.components c on c.project_id = p_project_id and c.retired_at is not null
                      and c.identity_key = pipetrak.identity_key('field_weld', d.id, p_tag, null, 1)
                 join pipetrak.field_welds f on f.component_id = c.id
                 left join pipetrak.components rc on rc.id = f.repaired_by
                 order by c.id desc limit 1),
                (select format('was moved to drawing %s', nd.drawing_no)
                 from d
                 join pipetrak.weld_events e on e.project_id = p_project_id and e.action = 'moved'
                      and e.before ->> 'drawing_id' = d.id::text
                 join pipetrak.components c on c.id = e.component_id and c.tag = p_tag and c.retired_at is null
                      and c.drawing_id <> d.id
                 join pipetrak.drawings nd on nd.id = c.drawing_id
                 order by e.id desc limit 1))
            where not exists (select from pipetrak.live_weld(p_project_id, p_drawing_key, p_tag)))
        else (
            select 'was retired'
            from d
            where not exists (
                select from generate_series(p_seq_from, p_seq_to) s(seq)
                where exists (select from pipetrak.components c
                              where c.project_id = p_project_id and c.retired_at is null
                                and c.identity_key = pipetrak.identity_key(p_component_type, d.id, p_tag, p_size, s.seq))
                   or not exists (select from pipetrak.components c
                                  where c.project_id = p_project_id and c.retired_at is not null
                                    and c.identity_key = pipetrak.identity_key(p_component_type, d.id, p_tag, p_size, s.seq))))
    end
$$;


-- Retired components by identity, for a re-import to find what the project retired.
create index components_retired_identity_idx on pipetrak.components (project_id, identity_key)
    where retired_at is not null;

-- Dry run (spec §6.2): reads the file, stages its rows with their issues, compares them with the
-- project and stores the summary. Writes nothing else.
create or replace function pipetrak.import_validate(p_import_id bigint)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
-- Set-based statements over staged rows: JIT compilation costs more than it saves here, and
-- index probes stay right even while a big import leaves the statistics of components stale.
set jit = off
set enable_seqscan = off
as $$
declare
    v_job pipetrak.import_jobs := pipetrak.lock_import(p_import_id);
    v_project pipetrak.projects;
    v_file jsonb;
    v_repeats jsonb;
    v_duplicates integer;
    v_components jsonb;
    v_would jsonb;
    v_summary jsonb;
    v_has_drawings boolean;
    v_flagged integer;
    v_warnings_added integer := 0;
    v_infos_added integer := 0;
    v_failed boolean;
    v_similar jsonb;
begin
    if v_job.status in ('committing', 'committed') then
        perform pipetrak.raise_error('import_already_committed', jsonb_build_object('import_id', p_import_id, 'status', v_job.status));
    end if;
    select * into v_project from pipetrak.projects where id = v_job.project_id;
    -- The organization's own expired staged rows go first: each tenant pays for its own.
    perform pipetrak.purge_staged_rows(v_project.organization_id);
    delete from pipetrak.import_rows where import_id = p_import_id;
    v_file := pipetrak.import_stage(p_import_id, v_job.kind, (now() at time zone v_project.time_zone)::date);
    -- A file that can't be read, or holds nothing to import, fails with its reason and keeps no
    -- rows: none of them may look valid.
    v_failed := not (v_file ? 'header')
        or exists (select from jsonb_array_elements(coalesce(v_file -> 'file_issues', '[]')) i where i ->> 'severity' = 'error');
    if v_failed then
        delete from pipetrak.import_rows where import_id = p_import_id;
        v_summary := jsonb_build_object(
            'import_id', p_import_id, 'kind', v_job.kind, 'filename', v_job.filename,
            'format', v_file -> 'format', 'sheet', v_file -> 'sheet', 'header_line', v_file -> 'header_line',
            'header', v_file -> 'header',
            'rows', jsonb_build_object('rows_read', 0, 'valid', 0, 'with_errors', 0, 'skipped', 0),
            'issues', (select jsonb_build_object(
                           'error', count(*) filter (where i ->> 'severity' = 'error'),
                           'warning', count(*) filter (where i ->> 'severity' = 'warning'),
                           'info', count(*) filter (where i ->> 'severity' = 'info'))
                       from jsonb_array_elements(coalesce(v_file -> 'file_issues', '[]')) i),
            'file_issues', coalesce(v_file -> 'file_issues', '[]'));
        update pipetrak.import_jobs set status = 'failed', summary = v_summary, validated_at = now(), updated_at = now(),
            staged_until = null, chunks_total = null, chunks_done = 0, result = '{}'
        where id = p_import_id;
        return v_summary || jsonb_build_object('status', 'failed');
    end if;
    -- Fresh statistics, so the statements below and the commit plan for the real number of rows.
    analyze pipetrak.import_rows (import_id, chunk, line, status, component_type, drawing_key, maybe_repeated);

    -- A remediation CSV read back: each row's PIPETRAK REF (staged in its attributes) names the
    -- original row it stands for, which must be a row of an import of this project.
    if exists (select from jsonb_array_elements_text(v_file -> 'header') h where upper(btrim(h)) = 'PIPETRAK REF') then
        with refs as (
            select r.line, split_part(r.attributes ->> 'pipetrak_ref', ':', 1)::bigint as import_id,
                   split_part(r.attributes ->> 'pipetrak_ref', ':', 2)::integer as origin_line
            from pipetrak.import_rows r
            where r.import_id = p_import_id and r.attributes ? 'pipetrak_ref'),
        judged as (
            select x.*, exists (select from pipetrak.import_jobs o where o.id = x.import_id and o.project_id = v_job.project_id
                                and o.id <> p_import_id) as known
            from refs x)
        update pipetrak.import_rows r set
            attributes = r.attributes - 'pipetrak_ref',
            origin_import_id = case when j.known then j.import_id end,
            origin_line = case when j.known then j.origin_line end,
            issues = case when j.known then r.issues else r.issues || jsonb_build_array(pipetrak.import_issue(r.line,
                'unknown_reference', format('%s:%s is not a row of an import of this project', j.import_id, j.origin_line),
                'PIPETRAK REF', format('%s:%s', j.import_id, j.origin_line))) end
        from judged j
        where r.import_id = p_import_id and r.line = j.line;
        v_warnings_added := v_warnings_added + (select count(*) from pipetrak.import_rows r
            where r.import_id = p_import_id and r.issues @> '[{"code": "unknown_reference"}]');
    end if;

    -- A row's man-hour budget, staged in its attributes (the staging statement serves every
    -- installed version), goes to its own column.
    update pipetrak.import_rows r set budget_mh = (r.attributes ->> 'pipetrak_budget_mh')::numeric,
        attributes = r.attributes - 'pipetrak_budget_mh'
    where r.import_id = p_import_id and r.attributes ? 'pipetrak_budget_mh';

    -- Rules across rows, when the reader flagged rows that may repeat earlier ones; the reader's
    -- counts and what it found are corrected by what they changed.
    if coalesce((v_file ->> 'maybe_repeated')::integer, 0) > 0 then
        v_repeats := pipetrak.import_resolve_repeats(p_import_id, v_job.kind);
        v_duplicates := (v_repeats ->> 'duplicates')::integer;
        v_file := jsonb_set(v_file, '{rows}', v_file -> 'rows' || jsonb_build_object(
            'valid', (v_file -> 'rows' ->> 'valid')::integer - v_duplicates,
            'with_errors', (v_file -> 'rows' ->> 'with_errors')::integer + v_duplicates,
            'errors', (v_file -> 'rows' ->> 'errors')::integer + v_duplicates,
            'warnings', (v_file -> 'rows' ->> 'warnings')::integer + (v_repeats ->> 'identical')::integer,
            'infos', (v_file -> 'rows' ->> 'infos')::integer + (v_repeats ->> 'merged')::integer));
        v_file := jsonb_set(v_file, '{found,components}',
            to_jsonb((v_file -> 'found' ->> 'components')::bigint - (v_repeats ->> 'not_components')::bigint));
        -- What only the rows now invalid named is no longer found.
        if v_duplicates > 0 then
            v_file := jsonb_set(v_file, '{found}', v_file -> 'found' || jsonb_build_object(
                'areas', pipetrak.import_still_named(p_import_id, 'area', v_file -> 'found' -> 'areas'),
                'systems', pipetrak.import_still_named(p_import_id, 'system', v_file -> 'found' -> 'systems'),
                'test_packages', pipetrak.import_still_named(p_import_id, 'test_package', v_file -> 'found' -> 'test_packages'),
                'stencils', pipetrak.import_still_named(p_import_id, 'stencil', v_file -> 'found' -> 'stencils')));
        end if;
    end if;

    -- Two spellings of a drawing number in this file that stay different but look alike (the same
    -- letters and digits): a warning on the first row of each spelling after the first. The pairs
    -- are found over the distinct keys; only their few rows are then read and written.
    select coalesce(jsonb_agg(jsonb_build_array(s.line, s.first_line)), '[]') into v_similar
    from (select k.line, first_value(k.line) over (partition by k.lookalike order by k.line) as first_line
          from (select x.drawing_key, min(x.line) as line, pipetrak.drawing_lookalike(x.drawing_key) as lookalike
                from pipetrak.import_rows x
                where x.import_id = p_import_id and x.status = 'valid'
                group by x.drawing_key) k) s
    where s.line <> s.first_line;
    if jsonb_array_length(v_similar) > 0 then
        update pipetrak.import_rows r
        set issues = r.issues || jsonb_build_array(pipetrak.import_issue(r.line, 'similar_drawing_in_file',
            format('Drawing %s looks like %s on row %s of this file', r.drawing_no, f.drawing_no, f.line), 'DRAWING', r.drawing_no))
        from jsonb_array_elements(v_similar) p(pair)
        join pipetrak.import_rows f on f.import_id = p_import_id and f.line = (p.pair ->> 1)::integer
        where r.import_id = p_import_id and r.line = (p.pair ->> 0)::integer;
        v_warnings_added := v_warnings_added + jsonb_array_length(v_similar);
    end if;

    -- Comparisons with what the project holds; a project without drawings holds nothing to compare.
    v_has_drawings := exists (select from pipetrak.drawings d where d.project_id = v_job.project_id and d.retired_at is null);

    -- New drawings that look like existing ones (trigram similarity) get a hint on their first row.
    if v_has_drawings then
        update pipetrak.import_rows r
        set issues = r.issues || jsonb_build_array(pipetrak.import_issue(r.line, 'similar_drawing_exists',
            format('Drawing %s is not in the project; similar: %s', r.drawing_no, s.similar), 'DRAWING', r.drawing_no))
        from (
            select n.drawing_key, min(n.line) as line, string_agg(m.drawing_no, ', ' order by m.score desc) as similar
            from (select x.drawing_key, min(x.line) as line from pipetrak.import_rows x
                  where x.import_id = p_import_id and x.status = 'valid'
                    and not exists (select from pipetrak.drawings d where d.project_id = v_job.project_id
                                    and d.drawing_key = x.drawing_key and d.retired_at is null)
                  group by x.drawing_key) n
            cross join lateral pipetrak.similar_drawings(v_job.project_id, n.drawing_key) m
            group by n.drawing_key
        ) s
        where r.import_id = p_import_id and r.line = s.line;
        get diagnostics v_flagged = row_count;
        v_warnings_added := v_warnings_added + v_flagged;

        -- A lower quantity than the project holds deletes nothing: warn with the surplus components.
        update pipetrak.import_rows r
        set issues = r.issues || jsonb_build_array(pipetrak.import_issue(r.line, 'quantity_below_existing',
            format('The project holds %s of this item, the file %s; surplus component ids: %s',
                   s.planned + s.surplus_count, s.planned, s.surplus_ids), 'QTY', s.planned::text))
        from (
            select g.last_line, g.planned, count(*) as surplus_count, string_agg(c.id::text, ', ' order by c.seq) as surplus_ids
            from (select x.component_type, x.drawing_key, x.tag, x.size, max(x.seq_to) as planned, max(x.line) as last_line
                  from pipetrak.import_rows x
                  where x.import_id = p_import_id and x.status = 'valid'
                    and x.component_type = any (pipetrak.component_types('per_seq'))
                  group by 1, 2, 3, 4) g
            join pipetrak.drawings d on d.project_id = v_job.project_id and d.drawing_key = g.drawing_key and d.retired_at is null
            join pipetrak.components c on c.project_id = v_job.project_id and c.drawing_id = d.id and c.retired_at is null
                and c.component_type = g.component_type and c.tag = g.tag and c.size = g.size and c.seq > g.planned
            group by g.last_line, g.planned
        ) s
        where r.import_id = p_import_id and r.line = s.last_line;
        get diagnostics v_flagged = row_count;
        v_warnings_added := v_warnings_added + v_flagged;
    end if;

    -- A row naming what the project retired — a weld repaired or retired, a component retired
    -- (every seq of the row) — or a weld moved to another drawing is skipped: a re-import never
    -- brings one back (restore it first if it is back). Said on the row.
    if exists (select from pipetrak.components c where c.project_id = v_job.project_id and c.retired_at is not null)
       or exists (select from pipetrak.weld_events e where e.project_id = v_job.project_id and e.action = 'moved') then
        update pipetrak.import_rows r
        set status = 'skipped',
            issues = r.issues || jsonb_build_array(pipetrak.import_issue(r.line, 'retired_not_restored',
                format('%s %s on drawing %s %s: the row is not imported', initcap(replace(r.component_type, '_', ' ')),
                       r.tag, r.drawing_no, g.why), null, null))
        from (select v.line, pipetrak.import_row_gone(v_job.project_id, v.component_type, v.drawing_key, v.tag, v.size,
                                                      v.seq_from, v.seq_to) as why
              from pipetrak.import_rows v
              where v.import_id = p_import_id and v.status = 'valid') g
        where r.import_id = p_import_id and r.line = g.line and g.why is not null;
        get diagnostics v_flagged = row_count;
        if v_flagged > 0 then
            v_warnings_added := v_warnings_added + v_flagged;
            v_file := jsonb_set(jsonb_set(v_file, '{rows,valid}', to_jsonb((v_file -> 'rows' ->> 'valid')::integer - v_flagged)),
                                '{rows,skipped}', to_jsonb((v_file -> 'rows' ->> 'skipped')::integer + v_flagged));
        end if;
    end if;

    -- A welder, date welded or NDE result the project holds that the file gives otherwise is kept
    -- (import_weld_merge): said on the row.
    if v_job.kind = 'field_welds' then
        update pipetrak.import_rows r
        set issues = r.issues || jsonb_build_array(pipetrak.import_issue(r.line, 'field_value_kept',
            format('Weld %s keeps what the field recorded: %s', r.tag, k.kept), 'WELD ID', r.tag))
        from (select v.line, string_agg(format('%s %s (the file says %s)', f.label, f.stored, f.given), '; ') as kept
              from pipetrak.import_rows v
              cross join lateral pipetrak.live_weld(v_job.project_id, v.drawing_key, v.tag) c
              join pipetrak.field_welds w on w.component_id = c.id
              left join pipetrak.welders wd on wd.id = w.welder_id
              cross join lateral (values ('welder', wd.stencil, v.stencil),
                                         ('date welded', w.date_welded::text, v.date_welded::text),
                                         ('NDE result', w.nde_result, v.nde_result)) f(label, stored, given)
              where v.import_id = p_import_id and v.status = 'valid' and v.component_type = 'field_weld'
                and f.stored <> f.given
              group by v.line) k
        where r.import_id = p_import_id and r.line = k.line;
        get diagnostics v_flagged = row_count;
        v_warnings_added := v_warnings_added + v_flagged;
    end if;

    -- A weld number the project holds on another drawing but not on this one makes a new weld
    -- (a weld is its drawing and number, spec §4): noted, with the other drawing.
    if exists (select from pipetrak.components c where c.project_id = v_job.project_id and c.component_type = 'field_weld'
               and c.retired_at is null) then
        update pipetrak.import_rows r
        set issues = r.issues || jsonb_build_array(pipetrak.import_issue(r.line, 'weld_number_elsewhere',
            format('Weld %s is also on drawing %s; this row makes a new weld on %s', r.tag, o.other, r.drawing_no),
            'WELD ID', r.tag))
        from (select v.line,
                     (select d.drawing_no from pipetrak.components c join pipetrak.drawings d on d.id = c.drawing_id
                      where c.project_id = v_job.project_id and c.component_type = 'field_weld' and c.retired_at is null
                        and c.tag = v.tag and d.drawing_key <> v.drawing_key
                      order by d.drawing_no limit 1) as other
              from pipetrak.import_rows v
              where v.import_id = p_import_id and v.status = 'valid' and v.component_type = 'field_weld'
                and not exists (select from pipetrak.live_weld(v_job.project_id, v.drawing_key, v.tag))) o
        where r.import_id = p_import_id and r.line = o.line and o.other is not null;
        get diagnostics v_flagged = row_count;
        v_infos_added := v_infos_added + v_flagged;
    end if;

    -- What a commit would create, update and leave alone. Into a project without components, all
    -- the file's components are new: the reader counted them; otherwise each is compared.
    if not exists (select from pipetrak.components c where c.project_id = v_job.project_id and c.retired_at is null) then
        v_components := jsonb_build_object('create', coalesce((v_file -> 'found' ->> 'components')::bigint, 0),
                                           'update', 0, 'unchanged', 0);
    else
        -- One pass over the planned components. Only a row merged into an earlier pipe or
        -- instrument row repeats an identity (per-seq rows get disjoint seq ranges, repeated ids are
        -- errors), so leaving those out counts each component once.
        with planned as (
            select count(*) filter (where p.existing_id is null) as created,
                   count(*) filter (where p.existing_id is not null) as existing,
                   count(*) filter (where p.existing_id is not null and p.component_type = any (pipetrak.component_types('linear_aggregate'))
                                      and p.quantity is distinct from p.existing_quantity) as footage_changed
            from pipetrak.import_plan(p_import_id, v_job.project_id, null, true) p
            where not p.merged),
        changed_welds as (
            select count(*) as changed
            from pipetrak.import_rows v
            cross join lateral pipetrak.live_weld(v_job.project_id, v.drawing_key, v.tag) c
            join pipetrak.field_welds w on w.component_id = c.id
            left join pipetrak.welders wd on wd.project_id = v_job.project_id and wd.stencil = v.stencil
            where v.import_id = p_import_id and v.status = 'valid' and v.component_type = 'field_weld' and v_job.kind = 'field_welds'
              and pipetrak.import_weld_merge(w, v, coalesce(wd.id, case when v.stencil is not null then -1 end)) is distinct from w)
        select jsonb_build_object(
            'create', p.created,
            'update', p.footage_changed + w.changed,
            'unchanged', p.existing - p.footage_changed - w.changed)
        from planned p, changed_welds w
        into v_components;
    end if;
    -- Drawings: the distinct keys of the staged rows; reference names and stencils: the distinct
    -- values the reader found. Each looked up.
    select jsonb_build_object(
        'components', v_components,
        'drawings', pipetrak.import_drawing_counts(p_import_id, v_job.project_id),
        'areas', pipetrak.import_name_counts(v_job.project_id, 'areas',
                     array(select distinct lower(n) from jsonb_array_elements_text(v_file -> 'found' -> 'areas') n)),
        'systems', pipetrak.import_name_counts(v_job.project_id, 'systems',
                     array(select distinct lower(n) from jsonb_array_elements_text(v_file -> 'found' -> 'systems') n)),
        'test_packages', pipetrak.import_name_counts(v_job.project_id, 'test_packages',
                     array(select distinct lower(n) from jsonb_array_elements_text(v_file -> 'found' -> 'test_packages') n)),
        'welders', (select jsonb_build_object('create', count(*) filter (where not e.found), 'unchanged', count(*) filter (where e.found))
                    from jsonb_array_elements_text(v_file -> 'found' -> 'stencils') s(stencil)
                    cross join lateral (select exists (select from pipetrak.welders w where w.project_id = v_job.project_id
                                                       and w.stencil = s.stencil) as found) e))
    into v_would;

    v_summary := jsonb_build_object(
        'import_id', p_import_id, 'kind', v_job.kind, 'filename', v_job.filename,
        'format', v_file -> 'format', 'sheet', v_file -> 'sheet', 'header_line', v_file -> 'header_line',
        'header', v_file -> 'header', 'rows', v_file -> 'rows',
        -- Counted while reading, plus the warnings added above by comparing with the project.
        'issues', jsonb_build_object(
            'error', coalesce((v_file -> 'rows' ->> 'errors')::integer, 0),
            'warning', coalesce((v_file -> 'rows' ->> 'warnings')::integer, 0) + v_warnings_added,
            'info', coalesce((v_file -> 'rows' ->> 'infos')::integer, 0) + v_infos_added),
        'file_issues', coalesce(v_file -> 'file_issues', '[]'),
        'would', v_would);
    if (v_summary -> 'issues' ->> 'error')::integer + (v_summary -> 'issues' ->> 'warning')::integer > 0 then
        perform pipetrak.import_mark_reported(p_import_id);
    end if;
    update pipetrak.import_jobs set
        status = 'validated', summary = v_summary, validated_at = now(), updated_at = now(),
        staged_until = now() + interval '7 days', chunks_total = null, chunks_done = 0, result = '{}'
    where id = p_import_id;
    -- A file that corrects earlier imports (a remediation CSV, or an original some of whose rows
    -- a remediation import already brought in) is rehearsed: its `would` is what the commit does.
    if exists (select from pipetrak.import_rows r where r.import_id = p_import_id and r.origin_import_id is not null)
       or exists (select from pipetrak.component_sources s where s.import_id = p_import_id) then
        v_summary := jsonb_set(v_summary, '{would,components}',
                               coalesce(pipetrak.import_rehearse(p_import_id, v_job.project_id), v_summary -> 'would' -> 'components'));
        update pipetrak.import_jobs set summary = v_summary where id = p_import_id;
    end if;
    return v_summary || jsonb_build_object('status', 'validated');
end
$$;




-- A weld log's welds of one chunk with a welder and a date welded are made welded the way a
-- foreman would (Fit-up and Weld Complete at 100 with the date welded as work date, audited, one
-- "weld completed" review item), and an NDE result is recorded through the NDE records (the method
-- is the weld's one listed NDE type, or RT for an x-ray tier; otherwise the result stays a weld
-- fact). A log is the historical record: its dates may lie in a locked week (never in the future:
-- the reader refuses those). What is already so is left alone, so importing a log again changes
-- nothing. Returns {welded, nde}.
create or replace function pipetrak.import_mark_welds(p_import_id bigint, p_project_id bigint, p_chunk integer)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    r record;
    v_welded integer := 0;
    v_nde integer := 0;
    v_result jsonb;
begin
    insert into pipetrak.historical_writes (txid) values (txid_current()) on conflict do nothing;
    for r in
        -- The weld's welder and date as merged (a date the field recorded wins over the file's).
        select w.id, f.date_welded, wd.stencil, x.nde_result, f.nde_types, f.xray_percent, f.current_nde,
               c.milestone_values[array_position(t.names, 'Fit-up')] as fit_up,
               c.milestone_values[array_position(t.names, 'Weld Complete')] as weld_complete
        from pipetrak.import_rows x
        cross join lateral pipetrak.live_weld(p_project_id, x.drawing_key, x.tag) w
        join pipetrak.components c on c.id = w.id
        join pipetrak.field_welds f on f.component_id = w.id
        left join pipetrak.welders wd on wd.id = f.welder_id
        join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
        where x.import_id = p_import_id and x.chunk = p_chunk and x.status = 'valid' and x.component_type = 'field_weld'
          and ((x.stencil is not null and x.date_welded is not null) or x.nde_result is not null)
        order by x.line
    loop
        if r.stencil is not null and r.date_welded is not null and r.weld_complete < 100 then
            if r.fit_up < 100 then
                perform pipetrak.update_milestone(r.id, 'Fit-up', 100, r.date_welded, 'weld log import', null, null);
            end if;
            v_result := pipetrak.update_milestone(r.id, 'Weld Complete', 100, r.date_welded, 'weld log import', null, null);
            insert into pipetrak.review_items (project_id, component_id, event_id, kind, details)
            values (p_project_id, r.id, (v_result ->> 'event_id')::bigint, 'weld_completed',
                    jsonb_build_object('welder', r.stencil, 'date_welded', r.date_welded, 'import_id', p_import_id));
            v_welded := v_welded + 1;
        end if;
        if r.nde_result is not null and (cardinality(r.nde_types) = 1 or (cardinality(r.nde_types) = 0 and r.xray_percent > 0))
           and exists (select from pipetrak.field_welds f where f.component_id = r.id and f.welder_id is not null and f.date_welded is not null)
           -- A result recorded for the method (in the field or by an earlier import) is never
           -- superseded by a file: only a method without one takes the file's.
           and r.current_nde ->> coalesce(r.nde_types[1], 'RT') is null then
            perform pipetrak.write_nde(r.id, coalesce(r.nde_types[1], 'RT'), r.nde_result, null, null, null, 'weld log import');
            v_nde := v_nde + 1;
        end if;
    end loop;
    delete from pipetrak.historical_writes where txid = txid_current();
    return jsonb_build_object('welded', v_welded, 'nde', v_nde);
end
$$;


-- Assigns a welder (by stencil; unknown stencils become unverified welders) to a field weld, which
-- completes its Weld Complete milestone on the date welded (spec §7).
create or replace function pipetrak.assign_welder(p_component_id bigint, p_stencil text, p_date_welded date, p_note text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_component pipetrak.components := pipetrak.lock_component(p_component_id, 'manage_welds');
    v_stencil text := pipetrak.normalize_stencil(coalesce(p_stencil, ''));
    v_welder_id bigint;
    v_result jsonb;
    v_date date;
    v_names text[];
begin
    if v_component.component_type <> 'field_weld' then
        perform pipetrak.raise_error('not_a_field_weld', jsonb_build_object('component_id', p_component_id));
    end if;
    -- A welded weld keeps its welder and date: changing them is edit_welder's, with a reason
    -- kept in the weld's history (spec §7.3).
    if exists (select from pipetrak.field_welds f where f.component_id = p_component_id
               and f.welder_id is not null and f.date_welded is not null) then
        perform pipetrak.raise_error('weld_already_welded', jsonb_build_object('component_id', p_component_id));
    end if;
    if v_stencil is null then
        perform pipetrak.raise_error('invalid_stencil', jsonb_build_object('stencil', p_stencil));
    end if;
    select m.names into v_names from pipetrak.milestone_templates m
    where m.project_id = v_component.project_id and m.component_type = v_component.component_type;
    perform pipetrak.check_date('date_welded', p_date_welded);
    -- Welded without a date: today, in the project's time zone (a weld always has its date).
    select coalesce(p_date_welded, (now() at time zone p.time_zone)::date) into v_date
    from pipetrak.projects p where p.id = v_component.project_id;
    insert into pipetrak.welders (project_id, stencil) values (v_component.project_id, v_stencil)
    on conflict (project_id, stencil) do update set stencil = excluded.stencil
    returning id into v_welder_id;
    update pipetrak.field_welds set welder_id = v_welder_id, date_welded = v_date, updated_at = now()
    where component_id = p_component_id;
    -- Welded: Fit-up and Weld Complete at 100 on the date welded (spec §7.3).
    if v_component.milestone_values[array_position(v_names, 'Fit-up')] < 100 then
        perform pipetrak.update_milestone(p_component_id, 'Fit-up', 100, v_date, p_note, null, null);
    end if;
    v_result := pipetrak.update_milestone(p_component_id, 'Weld Complete', 100, v_date, p_note, null, null);
    insert into pipetrak.review_items (project_id, component_id, event_id, kind, details)
    values (v_component.project_id, p_component_id, (v_result ->> 'event_id')::bigint, 'weld_completed',
            jsonb_build_object('welder', v_stencil, 'date_welded', v_date));
    return v_result;
end
$$;


-- Writes an NDE record for one method of a weld, superseding the method's previous record, and
-- keeps the weld's status, history and review items in step. `p_result` null clears the method.
create or replace function pipetrak.write_nde(p_component_id bigint, p_method text, p_result text, p_examined_on date,
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
    if coalesce(p_examined_on, v_today) < v_weld.date_welded then
        perform pipetrak.raise_error('nde_before_welded', jsonb_build_object('examined_on', coalesce(p_examined_on, v_today),
                                                                              'date_welded', v_weld.date_welded));
    end if;
    perform pipetrak.check_text_length('report_number', p_report_number, pipetrak.argument_limit('report_number'));
    perform pipetrak.check_text_length('notes', p_notes, pipetrak.argument_limit('notes'));
    perform pipetrak.check_text_length('reason', p_reason, pipetrak.argument_limit('reason'));
    select * into v_previous from pipetrak.nde_results
    where component_id = p_component_id and method = v_method order by id desc limit 1;
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
    from pipetrak.weld_nde_state(p_component_id) n
    where f.component_id = p_component_id
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




-- The activity feed comes newest first.
create or replace view pipetrak_api.activity_feed with (security_invoker = true) as
select e.id as event_id, e.project_id, e.component_id, e.created_at, e.work_date, e.user_id,
       coalesce(nullif(btrim(u.display_name), ''), u.email, 'Someone') as actor,
       format('%s set %s %s %% on %s %s, drawing %s', coalesce(nullif(btrim(u.display_name), ''), u.email, 'Someone'),
              e.milestone, trim_scale(e.new_value), replace(c.component_type, '_', ' '),
              concat_ws(' ', c.tag,
                        case when c.size <> 'NOSIZE' and c.component_type <> 'field_weld' then c.size || '"' end,
                        case when n.seqs > 1 then c.seq || ' of ' || n.seqs end),
              d.drawing_no) as sentence
from pipetrak.milestone_events e
join pipetrak.components c on c.id = e.component_id
join pipetrak.drawings d on d.id = c.drawing_id
left join pipetrak.user_profiles u on u.user_id = e.user_id
-- "3 of 10": the seqs of a counted item.
cross join lateral (select case when c.component_type = any (pipetrak.component_types('per_seq')) then
                                (select count(*) from pipetrak.components s
                                 where s.drawing_id = c.drawing_id and s.component_type = c.component_type
                                   and s.tag = c.tag and s.size = c.size and s.retired_at is null) end as seqs) n
-- Newest first, so `GET /activity_feed?limit=20` shows the latest without the client sorting.
order by e.id desc;
comment on view pipetrak_api.activity_feed is 'Milestone changes of your projects as sentences ("J. Ortiz set Install 100 % on valve VBALU-001 2" 3 of 10, drawing P-26B07"), newest first (by event_id).';

-- A turnover report shows a repaired reject beside its repair.
-- The turnover report of a package as one JSON document (spec §10). Its NDE summary counts welds:
-- needing NDE (listed methods or an x-ray tier), accepted (pass), rejected (fail), and needing NDE
-- but neither yet (pending). Repaired welds have left the package (they are retired).
create or replace function pipetrak.turnover_report(p_test_package_id bigint)
returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_package pipetrak.test_packages;
    v_report jsonb;
begin
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


-- A repair carries the examination duty of the weld it replaces: repairs made before this version
-- take the methods they owe (every method the rejected weld required and each that failed it),
-- and their status follows (a 5 % repair never radiographed is no longer accepted). A week locked
-- before a project's snapshots began has no weekly report.
-- Down each chain (at most 10 repairs): a repair of a repair inherits what its weld took on.
do $$
begin
    for i in 1..10 loop
        update pipetrak.field_welds r
        set nde_types = d.methods || array(select t from unnest(r.nde_types) t where t <> all (d.methods)), updated_at = now()
        from (select o.repaired_by as id,
                     pipetrak.repair_nde_methods(o.nde_types, o.xray_percent,
                                                 array(select n.key from jsonb_each_text(o.current_nde) n where n.value = 'FAIL' order by n.key))
                     as methods
              from pipetrak.field_welds o where o.repaired_by is not null) d
        where r.component_id = d.id and not r.nde_types @> d.methods;
        exit when not found;
    end loop;
end
$$;
update pipetrak.field_welds f set status = (select n.status from pipetrak.weld_nde_state(f.component_id) n)
where f.repair_of is not null and f.status is distinct from (select n.status from pipetrak.weld_nde_state(f.component_id) n);

insert into pipetrak.error_codes (code, sqlstate, message, hint) values
    ('week_not_frozen',          'PT409', 'That week locked before the project''s weekly snapshots began: it has no frozen report', 'Ask for a week from the first frozen one (in the detail) on, or read progress_as_of for what the events say now.');


-- Refuses a JSON value larger than `p_max_bytes` as sent (its text), with a catalogued error naming
-- the argument: what a request stores or aggregates is bounded before any work is done on it.
create or replace function pipetrak.check_json_size(p_argument text, p_value jsonb, p_max_bytes integer)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    -- pg_column_size is the datum's size, read without walking it; a compressed datum (a value
    -- taken from a table) is measured as its text.
    if pg_column_size(p_value) > p_max_bytes
       or (pg_column_compression(p_value) is not null and octet_length(p_value::text) > p_max_bytes) then
        perform pipetrak.raise_error('value_too_large', jsonb_build_object('argument', p_argument, 'max_bytes', p_max_bytes,
                                                                           'bytes', pg_column_size(p_value)));
    end if;
end
$$;

insert into pipetrak.error_codes (code, sqlstate, message, hint) values
    ('value_too_large',          'PT413', 'A value is larger than allowed', 'Send less: the detail names the argument and its limit in bytes.');

-- A bulk milestone update adds its events to the days once, at its end.
-- Applies many updates all-or-nothing; an error names the item (its 0-based index) that failed.
create or replace function pipetrak.update_milestones(p_updates jsonb)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    -- Results collected in an array (appended in place) and turned into JSON once: appending to a
    -- jsonb value copies it, which made a batch quadratic in its size.
    v_results jsonb[] := '{}';
    v_ids bigint[];
    v_first_event bigint;
    v_item jsonb;
    v_index integer := 0;
    v_state text;
    v_message text;
    v_detail text;
    v_hint text;
begin
    if jsonb_typeof(p_updates) is distinct from 'array' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "updates", "expected": "a JSON array of {component_id, milestone, value, work_date?, note?}"}');
    end if;
    if jsonb_array_length(p_updates) > 10000 then
        perform pipetrak.raise_error('batch_too_large', jsonb_build_object('items', jsonb_array_length(p_updates), 'limit', 10000));
    end if;
    -- The batch's components leave the progress parts now and come back once at the end, instead
    -- of one upsert per item (only components the caller may update; any other fails its item).
    -- Locked while listed (in id order, as every writer locks), so the parts they leave are the
    -- committed ones; a week due to freeze is frozen first, with them in it.
    select coalesce(array_agg(x.id), '{}') into v_ids
    from (select c.id from pipetrak.components c
          where c.id in (select (x ->> 'component_id')::bigint from jsonb_array_elements(p_updates) x
                         where jsonb_typeof(x -> 'component_id') = 'number' and (x ->> 'component_id') ~ '^[0-9]{1,18}$')
            and c.project_id in (select pipetrak.my_project_ids('update_milestones'))
          order by c.id
          for no key update) x;
    perform pipetrak.take_due_snapshots(p.id, null)
    from (select distinct c.project_id as id from pipetrak.components c where c.id = any (v_ids) order by 1) p;
    perform pipetrak.progress_parts_add(-1, v_ids);
    -- The days too: every event of a batch dated today lands on one row per part.
    v_first_event := (select coalesce(max(e.id), 0) from pipetrak.milestone_events e);
    perform pipetrak.progress_defer(true);
    -- One exception block for the whole batch (one subtransaction), so a failure can name its item.
    begin
        for v_item in select value from jsonb_array_elements(p_updates) loop
            if jsonb_typeof(v_item) is distinct from 'object' or jsonb_typeof(v_item -> 'component_id') is distinct from 'number'
               or jsonb_typeof(v_item -> 'value') is distinct from 'number' or jsonb_typeof(v_item -> 'milestone') is distinct from 'string' then
                perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'updates',
                    'expected', '{component_id: number, milestone: string, value: number, work_date?: date, note?: string}'));
            end if;
            v_results := array_append(v_results, pipetrak.update_milestone(
                (v_item ->> 'component_id')::bigint, v_item ->> 'milestone', (v_item ->> 'value')::numeric,
                (v_item ->> 'work_date')::date, v_item ->> 'note', v_item ->> 'client_request_id', null));
            v_index := v_index + 1;
        end loop;
    exception when others then
        -- Re-raised with the same SQLSTATE and the failing item's index added to the detail.
        get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail, v_hint = pg_exception_hint;
        raise exception using errcode = v_state, message = format('update %s: %s', v_index, v_message),
            detail = (case when v_detail ~ '^\{' then v_detail::jsonb else jsonb_build_object('code', 'invalid_argument', 'error', v_message) end
                      || jsonb_build_object('index', v_index))::text,
            hint = coalesce(nullif(v_hint, ''), 'Fix the update at that index and send the batch again.');
    end;
    perform pipetrak.progress_resume();
    perform pipetrak.progress_parts_add(1, v_ids);
    -- This batch's events: after the last one before it, of its components, of this transaction.
    perform pipetrak.progress_days_add(1, array(select e.id from pipetrak.milestone_events e
                                                where e.id > v_first_event and e.component_id = any (v_ids) and e.created_at = now()
                                                order by e.id));
    return to_jsonb(v_results);
end
$$;

-- Security, second round: an invitation holds only while its inviter may still send it; the
-- snapshot lock is the project's row, not an advisory lock anyone can hold; events verify over the
-- exact text sent; batch refusals are the catalogued errors; a Realtime message is read by its own
-- topic; names shown in sentences are on one line; storage paths resolve as written.
-- Whether `p_user` may still invite to `p_role` in the organization (owners and admins; owners
-- only to owner): an invitation holds only while its inviter's standing does.
create or replace function pipetrak.invitation_stands(p_organization_id bigint, p_user uuid, p_role text)
returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select coalesce((select pipetrak.role_can(m.role, 'manage_members')
                            and (p_role <> 'owner' or pipetrak.role_can(m.role, 'manage_owners'))
                     from pipetrak.memberships m where m.organization_id = p_organization_id and m.user_id = p_user), false)
$$;

-- Revokes the pending invitations of the organization whose inviter may no longer send them (a
-- member removed or demoted): a removed admin's invitation must not let them back in.
create or replace function pipetrak.revoke_lapsed_invitations(p_organization_id bigint)
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    update pipetrak.invitations i set revoked_at = now(), revoked_by = pipetrak.current_user_id()
    where i.organization_id = p_organization_id and i.accepted_at is null and i.revoked_at is null
      and not pipetrak.invitation_stands(i.organization_id, i.invited_by, i.role)
$$;

-- Changes a member's role. Nobody changes their own; only owners touch owners.
create or replace function pipetrak.change_member_role(p_organization_id bigint, p_user_id uuid, p_role text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller_role text := pipetrak.require_organization_role(p_organization_id, 'manage_members');
    v_current text;
begin
    -- Membership changes of one organization take turns (the row lock), and the caller's role is
    -- read again after the lock: two owners demoting each other at once can't both pass the
    -- last-owner rule, each having seen the other still an owner.
    perform from pipetrak.organizations where id = p_organization_id for no key update;
    v_caller_role := pipetrak.require_organization_role(p_organization_id, 'manage_members');
    perform pipetrak.check_role_name(p_role);
    perform pipetrak.check_member_change(v_caller_role, p_user_id, p_role);
    select role into v_current from pipetrak.memberships
    where organization_id = p_organization_id and user_id = p_user_id for update;
    if v_current is null then
        perform pipetrak.raise_error('member_not_found', jsonb_build_object('user_id', p_user_id));
    end if;
    perform pipetrak.check_member_change(v_caller_role, p_user_id, v_current);
    update pipetrak.memberships set role = p_role, updated_at = now()
    where organization_id = p_organization_id and user_id = p_user_id;
    perform pipetrak.revoke_lapsed_invitations(p_organization_id);
end
$$;

-- Removes a member; their events stay attributed to them.
create or replace function pipetrak.remove_member(p_organization_id bigint, p_user_id uuid)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller_role text := pipetrak.require_organization_role(p_organization_id, 'manage_members');
    v_current text;
begin
    -- Membership changes of one organization take turns (the row lock), and the caller's role is
    -- read again after the lock: two owners demoting each other at once can't both pass the
    -- last-owner rule, each having seen the other still an owner.
    perform from pipetrak.organizations where id = p_organization_id for no key update;
    v_caller_role := pipetrak.require_organization_role(p_organization_id, 'manage_members');
    select role into v_current from pipetrak.memberships
    where organization_id = p_organization_id and user_id = p_user_id for update;
    if v_current is null then
        perform pipetrak.raise_error('member_not_found', jsonb_build_object('user_id', p_user_id));
    end if;
    perform pipetrak.check_member_change(v_caller_role, p_user_id, v_current);
    delete from pipetrak.memberships where organization_id = p_organization_id and user_id = p_user_id;
    -- They knew the channels of the organization's projects: new ones from now on. Their pending
    -- invitations go with them.
    perform pipetrak.rotate_project_secrets(p_organization_id);
    perform pipetrak.revoke_lapsed_invitations(p_organization_id);
end
$$;

-- True when `p_payload` is, byte for byte, an event the extension sent on this project's channel
-- (for members; others: project_not_found): the signature is checked over the event text taken
-- verbatim from the payload (`domain::event`), so keys added, repeated or reordered make it not
-- genuine. No NOTIFY carries 8000 bytes: a longer payload is refused before any work.
create or replace function pipetrak.event_is_genuine(p_project_id bigint, p_payload text)
returns boolean
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_event text;
begin
    perform pipetrak.check_text_length('payload', p_payload, pipetrak.argument_limit('payload'));
    perform pipetrak.require_project_role(p_project_id, 'read');
    v_event := pipetrak.signed_event_text((select s.signing_key from pipetrak.project_secrets s where s.project_id = p_project_id),
                                          p_payload);
    if v_event is null then
        return false;
    end if;
    begin
        return jsonb_typeof(v_event::jsonb) = 'object' and v_event::jsonb ->> 'project_id' = p_project_id::text;
    exception when invalid_text_representation then
        return false;
    end;
end
$$;

update pipetrak.user_profiles set display_name = left(nullif(btrim(regexp_replace(display_name, '[[:cntrl:]]+', ' ', 'g')), ''), 200)
where display_name ~ '[[:cntrl:]]';

-- A component's and a progress part's project is their drawing's: one key checks both.
alter table pipetrak.components drop constraint components_project_id_fkey;
alter table pipetrak.progress_parts drop constraint progress_parts_project_id_fkey,
    drop constraint progress_parts_drawing_id_fkey,
    add foreign key (project_id, drawing_id) references pipetrak.drawings (project_id, id);

-- Creates an organization with the caller as its owner.
create or replace function pipetrak.create_organization(p_name text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user uuid := (pipetrak.sync_profile()).user_id;
    v_id bigint;
begin
    if p_name is null or btrim(p_name) = '' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "name", "expected": "a non-empty name"}');
    end if;
    perform pipetrak.check_text_length('name', btrim(p_name), pipetrak.argument_limit('name'));
    insert into pipetrak.organizations (name, created_by) values (btrim(p_name), v_user) returning id into v_id;
    insert into pipetrak.memberships (organization_id, user_id, role, created_by) values (v_id, v_user, 'owner', v_user);
    return v_id;
end
$$;

-- Creates a project and gives it its own copy of the default milestone templates.
create or replace function pipetrak.create_project(p_organization_id bigint, p_name text, p_job_number text,
                                        p_time_zone text, p_sequence_mode text, p_week_lock boolean)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_id bigint;
begin
    perform pipetrak.require_organization_role(p_organization_id, 'manage_projects');
    perform pipetrak.check_project_settings(coalesce(p_time_zone, 'UTC'), coalesce(p_sequence_mode, 'flag'));
    if p_name is null or btrim(p_name) = '' or p_job_number is null or btrim(p_job_number) = '' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "name, job_number", "expected": "non-empty text"}');
    end if;
    perform pipetrak.check_text_length('name', btrim(p_name), pipetrak.argument_limit('name'));
    perform pipetrak.check_text_length('job_number', btrim(p_job_number), pipetrak.argument_limit('job_number'));
    if exists (select from pipetrak.projects where organization_id = p_organization_id and job_number = btrim(p_job_number)) then
        perform pipetrak.raise_error('job_number_taken', jsonb_build_object('job_number', btrim(p_job_number)));
    end if;
    insert into pipetrak.projects (organization_id, name, job_number, time_zone, sequence_mode, week_lock, created_by)
    values (p_organization_id, btrim(p_name), btrim(p_job_number), coalesce(p_time_zone, 'UTC'),
            coalesce(p_sequence_mode, 'flag'), coalesce(p_week_lock, true), pipetrak.current_user_id())
    returning id into v_id;
    insert into pipetrak.project_secrets (project_id, channel_key, signing_key)
    values (v_id, pipetrak.random_key(), pipetrak.random_key());
    insert into pipetrak.milestone_templates (project_id, component_type, names, weights, is_partial, categories)
    select v_id, d.component_type, array_agg(d.name order by d.position), array_agg(d.weight order by d.position),
           array_agg(d.is_partial order by d.position), array_agg(d.category order by d.position)
    from pipetrak.default_milestones() d
    group by d.component_type;
    return v_id;
end
$$;

create or replace function pipetrak.check_reference_name(p_kind text, p_project_id bigint, p_name text, p_except_id bigint)
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

-- Creates a drawing; its number is compared after normalization.
create or replace function pipetrak.create_drawing(p_project_id bigint, p_drawing_no text, p_sheet text, p_revision text, p_title text,
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

create or replace function pipetrak_api.create_organization(name text)
returns bigint language sql volatile
as $$ select pipetrak.create_organization(pipetrak.limited('name', name)) $$;

create or replace function pipetrak_api.add_member(organization_id bigint, user_id uuid, role text)
returns void language sql volatile
as $$ select pipetrak.add_member(organization_id, user_id, pipetrak.limited('role', role)) $$;

create or replace function pipetrak_api.change_member_role(organization_id bigint, user_id uuid, role text)
returns void language sql volatile
as $$ select pipetrak.change_member_role(organization_id, user_id, pipetrak.limited('role', role)) $$;

create or replace function pipetrak_api.create_project(organization_id bigint, name text, job_number text, time_zone text default 'UTC',
                                            sequence_mode text default 'flag', week_lock boolean default true)
returns bigint language sql volatile
as $$ select pipetrak.create_project(organization_id, pipetrak.limited('name', name), pipetrak.limited('job_number', job_number), pipetrak.limited('time_zone', time_zone), pipetrak.limited('sequence_mode', sequence_mode), week_lock) $$;

create or replace function pipetrak_api.update_project_settings(project_id bigint, time_zone text default null,
                                                     sequence_mode text default null, week_lock boolean default null)
returns void language sql volatile
as $$ select pipetrak.update_project_settings(project_id, pipetrak.limited('time_zone', time_zone), pipetrak.limited('sequence_mode', sequence_mode), week_lock) $$;

create or replace function pipetrak_api.create_area(project_id bigint, name text, description text default null)
returns bigint language sql volatile
as $$ select pipetrak.create_reference('area', project_id, pipetrak.limited('name', name), pipetrak.limited('description', description)) $$;

create or replace function pipetrak_api.rename_area(area_id bigint, name text)
returns void language sql volatile
as $$ select pipetrak.rename_reference('area', area_id, pipetrak.limited('name', name)) $$;

create or replace function pipetrak_api.create_system(project_id bigint, name text, description text default null)
returns bigint language sql volatile
as $$ select pipetrak.create_reference('system', project_id, pipetrak.limited('name', name), pipetrak.limited('description', description)) $$;

create or replace function pipetrak_api.rename_system(system_id bigint, name text)
returns void language sql volatile
as $$ select pipetrak.rename_reference('system', system_id, pipetrak.limited('name', name)) $$;

create or replace function pipetrak_api.create_test_package(project_id bigint, name text, description text default null)
returns bigint language sql volatile
as $$ select pipetrak.create_reference('test_package', project_id, pipetrak.limited('name', name), pipetrak.limited('description', description)) $$;

create or replace function pipetrak_api.rename_test_package(test_package_id bigint, name text)
returns void language sql volatile
as $$ select pipetrak.rename_reference('test_package', test_package_id, pipetrak.limited('name', name)) $$;

create or replace function pipetrak_api.update_test_package(test_package_id bigint, test_type text default null,
                                                 test_pressure numeric default null, test_pressure_unit text default null,
                                                 target_date date default null, requires_coating boolean default false,
                                                 requires_insulation boolean default false)
returns void language sql volatile
as $$ select pipetrak.update_test_package(test_package_id, pipetrak.limited('test_type', test_type), test_pressure, pipetrak.limited('test_pressure_unit', test_pressure_unit), target_date,
                                          requires_coating, requires_insulation) $$;

create or replace function pipetrak_api.create_drawing(project_id bigint, drawing_no text, sheet text default null, revision text default null,
                                            title text default null, area_id bigint default null, system_id bigint default null,
                                            test_package_id bigint default null)
returns bigint language sql volatile
as $$ select pipetrak.create_drawing(project_id, pipetrak.limited('drawing_no', drawing_no), pipetrak.limited('sheet', sheet), pipetrak.limited('revision', revision), pipetrak.limited('title', title), area_id, system_id, test_package_id) $$;

create or replace function pipetrak_api.revise_drawing(drawing_id bigint, revision text default null, title text default null)
returns void language sql volatile
as $$ select pipetrak.revise_drawing(drawing_id, pipetrak.limited('revision', revision), pipetrak.limited('title', title)) $$;

create or replace function pipetrak_api.create_component(project_id bigint, drawing_id bigint, component_type text, tag text,
                                              size text default null, quantity numeric default 1, description text default null,
                                              spec text default null, attributes jsonb default '{}')
returns jsonb language sql volatile
as $$ select pipetrak.create_component(project_id, drawing_id, pipetrak.limited('component_type', component_type), pipetrak.limited('tag', tag), pipetrak.limited('size', size), quantity, pipetrak.limited('description', description), pipetrak.limited('spec', spec), pipetrak.limited('attributes', attributes)) $$;

create or replace function pipetrak_api.reweight_template(project_id bigint, component_type text, weights jsonb, recompute boolean default true)
returns integer language sql volatile
as $$ select pipetrak.reweight_template(project_id, pipetrak.limited('component_type', component_type), pipetrak.limited('weights', weights), recompute) $$;

create or replace function pipetrak_api.update_milestone(component_id bigint, milestone text, value numeric, work_date date default null,
                                              note text default null, client_request_id text default null,
                                              expected_version integer default null)
returns jsonb language sql volatile
as $$ select pipetrak.update_milestone(component_id, pipetrak.limited('milestone', milestone), value, work_date, pipetrak.limited('note', note), pipetrak.limited('client_request_id', client_request_id), expected_version) $$;

create or replace function pipetrak_api.update_milestones(updates jsonb)
returns jsonb language sql volatile
as $$ select pipetrak.update_milestones(pipetrak.limited('updates', updates)) $$;

create or replace function pipetrak_api.assign_welder(component_id bigint, stencil text, date_welded date default null, note text default null)
returns jsonb language sql volatile
as $$ select pipetrak.assign_welder(component_id, pipetrak.limited('stencil', stencil), date_welded, pipetrak.limited('note', note)) $$;

create or replace function pipetrak_api.resolve_review_item(review_item_id bigint, note text default null)
returns void language sql volatile
as $$ select pipetrak.resolve_review_item(review_item_id, pipetrak.limited('note', note)) $$;

-- The SET clause keeps it a function call, which hands the file on by reference: inlined into
-- the caller's query, the file would be copied once more (50 MB for a 50 MB upload).
create or replace function pipetrak_api.import_upload(project_id bigint, kind text, filename text, content bytea)
returns bigint
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$ select pipetrak.import_upload(project_id, pipetrak.limited('kind', kind), pipetrak.limited('filename', filename), content) $$;

create or replace function pipetrak_api.event_is_genuine(project_id bigint, payload text)
returns boolean
language sql stable security invoker
as $$ select pipetrak.event_is_genuine(project_id, pipetrak.limited('payload', payload)) $$;

-- Every upgrade ends here: new tables and sequences registered for pg_dump, privileges from the
-- allow-list granted again (a new internal function stays private unless listed).
select pipetrak.register_dump_tables();
select pipetrak.grant_privileges();
