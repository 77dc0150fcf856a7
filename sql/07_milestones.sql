-- The milestone engine: one update = one component row, one event, one progress part; the
-- arithmetic and the rules come from Rust (pipetrak.plan_milestone, pipetrak.work_date_problem).
--
-- Design notes (decisions where the spec was silent):
-- - Milestone values live on the component as `numeric(5,2)[]` in template order; earned credit is
--   stored as integers in ten-thousandths of a percent (`weight × value` is exact, 100 % =
--   1,000,000), per category too, and `percent_complete` is a generated column — so % is exact and
--   always consistent in the same transaction.
-- - Sequence: install milestones need Receive *started* (> 0, so partially received pipe can be
--   erected); Punch needs every install milestone at 100; Test needs Punch; Restore needs Test;
--   Weld Complete needs Fit-up and an assigned welder. Lowering a milestone that a later one with
--   progress depends on is checked by the same mode (`flag` default, `enforce`, `off`).
-- - Work dates: default today in the project's time zone; never in the future; a week (Mon–Sun)
--   locks at Tuesday 09:00 project time after it ends; owners and admins are exempt from the lock
--   (not from the future rule). The database converts `now()` into the project zone; Rust does the
--   rest.
-- - Offline replays: the first result of each `(user, client_request_id)` is stored and returned on
--   replay; `expected_version` mismatches are `PT409` with the current state in the detail.
-- - Bulk updates run in one exception block (one subtransaction per call, not per item) so a
--   failure names its item's index and keeps its SQLSTATE. The batch's components leave the
--   progress parts once at its start and come back once at its end (the progress trigger skips the
--   statements of a transaction registered in `progress_deferrals`, which only the extension
--   writes): a thousand upserts of one part row in one transaction would each walk the row's
--   growing version chain.

-- A component's state as the API returns it; `p_names` are its template's milestone names.
-- PL/pgSQL rather than SQL: a SQL function with a sub-select is never inlined, so it would be
-- parsed and planned again in every transaction; PL/pgSQL keeps its plan for the session.
create function pipetrak.component_state(p_component pipetrak.components, p_names text[], p_out_of_sequence boolean,
                                         p_violations text[])
returns jsonb
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    return jsonb_build_object(
        'component_id', p_component.id,
        'milestones', (select jsonb_object_agg(n, v) from unnest(p_names, p_component.milestone_values) as u(n, v)),
        'percent_complete', p_component.percent_complete,
        'version', p_component.version,
        'out_of_sequence', coalesce(p_out_of_sequence, false),
        'violations', to_jsonb(coalesce(p_violations, '{}'::text[])));
end
$$;

-- Transactions writing the historical record (a weld log's commit): their work dates may lie in a
-- locked week. Only extension functions write it (nobody else may); a row lives for its transaction.
create table pipetrak.historical_writes (
    txid bigint primary key
);
alter table pipetrak.historical_writes enable row level security;

-- Sets one milestone of one component (spec §5, §9). See pipetrak_api.update_milestone.
create function pipetrak.update_milestone(p_component_id bigint, p_milestone text, p_value numeric, p_work_date date,
                                          p_note text, p_client_request_id text, p_expected_version integer)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user uuid := pipetrak.require_user();
    v_component pipetrak.components;
    v_project bigint;
    v_ctx record;
    v_local_now timestamp;
    v_work_date date;
    v_problem text;
    v_plan record;
    v_event_id bigint;
    v_result jsonb;
    v_values numeric[];
    v_item bigint;
begin
    if p_client_request_id is not null then
        -- The first stored (a request id is keyed with its project: the same id replayed at once
        -- into two projects stores both), before anything about the component is looked up: a
        -- replay says nothing of it. In the request's project alone when it names one (on Citus,
        -- its shard).
        v_project := pipetrak.request_project();
        if v_project is null then
            select result into v_result from pipetrak.client_requests
            where user_id = v_user and client_request_id = p_client_request_id
            order by created_at limit 1;
        else
            select result into v_result from pipetrak.client_requests
            where user_id = v_user and client_request_id = p_client_request_id and project_id = v_project
            order by created_at limit 1;
        end if;
        if v_result is not null then
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

    -- The component's project first (an index read; on Citus a read of every shard unless the
    -- request names its project), then one locked read for the component, its project, the
    -- caller's role and the template, every table by the project (on Citus, the project's
    -- shard): this is the hot path, so it does not go through lock_component +
    -- require_project_role.
    v_project := pipetrak.component_project(p_component_id);
    select c as component, m.role, p.archived_at, p.time_zone, p.week_lock, p.sequence_mode,
           t.names, t.weights, t.is_partial, t.categories, b.budget_mh
    into v_ctx
    from pipetrak.components c
    join pipetrak.projects p on p.id = c.project_id
    join pipetrak.memberships m on m.organization_id = p.organization_id and m.user_id = v_user
    join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
    left join pipetrak.component_budgets b on b.component_id = c.id and b.project_id = c.project_id
    where c.id = p_component_id and c.project_id = v_project
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
        if exists (select from pipetrak.field_welds f
                   where f.component_id = v_component.id and f.project_id = v_project and f.current_nde <> '{}') then
            perform pipetrak.raise_error('weld_has_nde', jsonb_build_object('component_id', v_component.id));
        end if;
    end if;

    select * into v_plan from pipetrak.plan_milestone(
        v_ctx.names, v_ctx.weights, v_ctx.is_partial, v_ctx.categories,
        array(select (v * 100)::integer from unnest(v_component.milestone_values) v),
        p_milestone, p_value::text,
        v_component.component_type = 'field_weld'
            and exists (select from pipetrak.field_welds w
                        where w.component_id = v_component.id and w.project_id = v_project and w.welder_id is not null),
        v_ctx.sequence_mode);
    if v_plan.error_code is not null then
        perform pipetrak.raise_error(v_plan.error_code, jsonb_build_object(
            'milestone', p_milestone, 'value', p_value, 'milestones', to_jsonb(v_ctx.names),
            'violations', to_jsonb(v_plan.violations)));
    end if;

    -- On Citus the weeks due are frozen from here, before the write (the shard's triggers can't).
    perform pipetrak.freeze_due_weeks_here(v_project);
    -- The values worked out first: with a subquery in its SET, Citus would send the update's
    -- generic plan (a session's sixth call on) to every shard.
    v_values := array(select v / 100.0 from unnest(v_plan.new_values) v);
    update pipetrak.components set
        milestone_values = v_values,
        earned_total = v_plan.earned_total, earned_receive = v_plan.earned_receive, earned_install = v_plan.earned_install,
        earned_punch = v_plan.earned_punch, earned_test = v_plan.earned_test, earned_restore = v_plan.earned_restore,
        version = version + 1, updated_at = now()
    where id = v_component.id and project_id = v_project
    returning * into v_component;

    -- Weeks that locked since the last write were frozen before this one landed (spec §11): the
    -- progress trigger the update above fired took them (progress_parts_net_components).
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
    -- On Citus the change is announced from here (queue_change; the shard's triggers can't).
    perform pipetrak.queue_change(v_project, 'milestones', array[v_component.id]);

    if cardinality(v_plan.violations) > 0 then
        insert into pipetrak.review_items (project_id, component_id, event_id, kind, details)
        values (v_component.project_id, v_component.id, v_event_id, 'out_of_sequence',
                jsonb_build_object('milestone', v_ctx.names[v_plan.milestone_index], 'violations', to_jsonb(v_plan.violations)))
        returning id into v_item;
        perform pipetrak.queue_change(v_project, 'review_items', array[v_item]);
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

-- Applies many updates all-or-nothing; an error names the item (its 0-based index) that failed.
create function pipetrak.update_milestones(p_updates jsonb)
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
    -- On a single node the batch nets its rollups once (below); on Citus each item's triggers keep
    -- them on the project's shard, which can't see this node's deferral.
    v_netted boolean := not pipetrak.distributed();
    v_project bigint;
    v_projects bigint[];
    -- The ids the batch names (well-formed ones; any other fails its item).
    v_listed bigint[];
begin
    if jsonb_typeof(p_updates) is distinct from 'array' then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "updates", "expected": "a JSON array of {component_id, milestone, value, work_date?, note?}"}');
    end if;
    if jsonb_array_length(p_updates) > pipetrak.max_batch_items() then
        perform pipetrak.raise_error('batch_too_large', jsonb_build_object('items', jsonb_array_length(p_updates), 'limit', pipetrak.max_batch_items()));
    end if;
    -- The batch's components leave the progress parts now and come back once at the end, instead
    -- of one upsert per item (only components the caller may update; any other fails its item).
    -- Locked while listed (in id order, as every writer locks), so the parts they leave are the
    -- committed ones; a week due to freeze is frozen first, with them in it.
    v_listed := array(select (x ->> 'component_id')::bigint from jsonb_array_elements(p_updates) x
                      where jsonb_typeof(x -> 'component_id') = 'number' and (x ->> 'component_id') ~ '^[0-9]{1,18}$');
    if v_netted then
        -- One statement, every component in id order (as every writer of several components locks:
        -- component_batch too), then the weeks due.
        select coalesce(array_agg(x.id), '{}') into v_ids
        from (select c.id from pipetrak.components c
              where c.id = any (v_listed)
                and c.project_id in (select pipetrak.my_project_ids('update_milestones'))
              order by c.id
              for no key update) x;
        perform pipetrak.take_due_snapshots(p.id, null)
        from (select distinct c.project_id as id from pipetrak.components c where c.id = any (v_ids) order by 1) p;
    else
        -- On Citus, a statement per project (its shard), projects in order, each in id order: the
        -- request's project alone when it names one (request_project), else the listed ids' ones
        -- (a read of every shard).
        v_project := pipetrak.request_project();
        v_projects := case when v_project is null
                           then array(select distinct c.project_id from pipetrak.components c
                                      where c.id = any (v_listed)
                                        and c.project_id in (select pipetrak.my_project_ids('update_milestones'))
                                      order by 1)
                           else array(select v_project where v_project in (select pipetrak.my_project_ids('update_milestones')))
                      end;
        v_ids := '{}';
        foreach v_project in array v_projects
        loop
            v_ids := v_ids || array(
                select x.id
                from (select c.id from pipetrak.components c
                      where c.project_id = v_project
                        and c.id = any (v_listed)
                      order by c.id
                      for no key update) x);
        end loop;
    end if;
    if v_netted then
        perform pipetrak.progress_parts_add(-1, v_ids);
        -- The days too: every event of a batch dated today lands on one row per part.
        v_first_event := (select coalesce(max(e.id), 0) from pipetrak.milestone_events e);
        perform pipetrak.progress_defer(true);
    end if;
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
    if v_netted then
        perform pipetrak.progress_resume();
        perform pipetrak.progress_parts_add(1, v_ids);
        -- This batch's events: after the last one before it, of its components, of this transaction.
        perform pipetrak.progress_days_add(1, x.project_id, array(select e.id from pipetrak.milestone_events e
                                                                  where e.project_id = x.project_id and e.id > v_first_event
                                                                    and e.component_id = any (v_ids) and e.created_at = now()
                                                                  order by e.id))
        from (select distinct c.project_id from pipetrak.components c where c.id = any (v_ids) order by 1) x;
    end if;
    return to_jsonb(v_results);
end
$$;

-- Assigns a welder (by stencil; unknown stencils become unverified welders) to a field weld not yet
-- welded, which completes its Fit-up and Weld Complete milestones on the date welded (spec §7).
create function pipetrak.assign_welder(p_component_id bigint, p_stencil text, p_date_welded date, p_note text)
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
    v_item bigint;
begin
    if v_component.component_type <> 'field_weld' then
        perform pipetrak.raise_error('not_a_field_weld', jsonb_build_object('component_id', p_component_id));
    end if;
    -- A welded weld keeps its welder and date: changing them is edit_welder's, with a reason
    -- kept in the weld's history (spec §7.3).
    if exists (select 1 from pipetrak.field_welds f where f.component_id = p_component_id and f.project_id = v_component.project_id
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
    where component_id = p_component_id and project_id = v_component.project_id;
    perform pipetrak.queue_change(v_component.project_id, 'welds', array[p_component_id]);
    -- Welded: Fit-up and Weld Complete at 100 on the date welded (spec §7.3).
    if v_component.milestone_values[array_position(v_names, 'Fit-up')] < 100 then
        perform pipetrak.update_milestone(p_component_id, 'Fit-up', 100, v_date, p_note, null, null);
    end if;
    v_result := pipetrak.update_milestone(p_component_id, 'Weld Complete', 100, v_date, p_note, null, null);
    insert into pipetrak.review_items (project_id, component_id, event_id, kind, details)
    values (v_component.project_id, p_component_id, (v_result ->> 'event_id')::bigint, 'weld_completed',
            jsonb_build_object('welder', v_stencil, 'date_welded', v_date))
    returning id into v_item;
    perform pipetrak.queue_change(v_component.project_id, 'review_items', array[v_item]);
    return v_result;
end
$$;

-- Resolves a review item with a note (QC: owner, admin, project manager, QC inspector).
create function pipetrak.resolve_review_item(p_review_item_id bigint, p_note text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint;
begin
    perform pipetrak.refuse_distributed('resolve_review_item');
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
