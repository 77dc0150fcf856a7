-- pipetrak 0.1.0 → 0.2.0. Collects the schema changes made after the 0.1.0 release, in order,
-- until 0.2.0 is released; then this file is frozen like every released script.
\echo Use "ALTER EXTENSION pipetrak UPDATE TO '0.2.0'" to load this file. \quit

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
    if length(p_note) > 2000 then
        perform pipetrak.raise_error('text_too_long', jsonb_build_object('argument', 'note', 'max_length', 2000, 'length', length(p_note)));
    elsif length(p_client_request_id) > 200 then
        perform pipetrak.raise_error('text_too_long', jsonb_build_object('argument', 'client_request_id', 'max_length', 200,
                                                                         'length', length(p_client_request_id)));
    elsif not isfinite(p_work_date) then
        perform pipetrak.raise_error('invalid_date', jsonb_build_object('argument', 'work_date', 'value', p_work_date::text));
    end if;

    -- One locked read for the component, its project, the caller's role and the template: this is
    -- the hot path, so it does not go through lock_component + require_project_role.
    select c as component, m.role, p.archived_at, p.time_zone, p.week_lock, p.sequence_mode,
           t.names, t.weights, t.is_partial, t.categories
    into v_ctx
    from pipetrak.components c
    join pipetrak.projects p on p.id = c.project_id
    join pipetrak.memberships m on m.organization_id = p.organization_id and m.user_id = v_user
    join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
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
    if v_problem is not null then
        perform pipetrak.raise_error(v_problem, jsonb_build_object('work_date', v_work_date, 'time_zone', v_ctx.time_zone));
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

    insert into pipetrak.milestone_events (project_id, component_id, milestone, old_value, new_value, work_date, user_id,
                                           note, out_of_sequence, violations, client_request_id)
    values (v_component.project_id, v_component.id, v_ctx.names[v_plan.milestone_index], v_plan.old_value / 100.0,
            v_plan.new_values[v_plan.milestone_index] / 100.0, v_work_date, v_user, p_note,
            cardinality(v_plan.violations) > 0, v_plan.violations, p_client_request_id)
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

drop function pipetrak.milestone_earned(integer[], text[], integer[]);
drop function pipetrak.plan_milestone_update(text[], integer[], boolean[], text[], integer[], text, text, boolean, text);

-- Every upgrade ends here: new tables and sequences registered for pg_dump, privileges from the
-- allow-list granted again (a new internal function stays private unless listed).
select pipetrak.register_dump_tables();
select pipetrak.grant_privileges();
