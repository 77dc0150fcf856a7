-- Write side of the API: security_invoker functions with named parameters (they become JSON keys
-- over HTTP). Each hands its arguments to the security-definer function in `pipetrak` that checks
-- the caller's role and does the work.

-- The size limits of the API's arguments are one registry, by argument name, in Rust
-- (`domain::arguments`; `pipetrak.argument_limit(name)`, and `pipetrak.argument_limits()` as
-- rows). Each pipetrak_api function below passes its text, JSON and list arguments through
-- `pipetrak.limited` before anything else runs, so an oversized value is refused before any
-- lookup, lock or parse of its content; the functions behind them keep the same numbers.

-- `p_value` when it is within its argument's limit; otherwise a catalogued error naming the
-- argument, its limit and its size (text_too_long, value_too_large, batch_too_large; see
-- refuse_size). PL/pgSQL, so a caller's argument expression is evaluated once (an inlined check
-- evaluated it at each reference: a 100 MB JSON parsed three times), and security definer with a
-- fixed search_path: as a plain invoker function, a 100 MB value was copied more than once more
-- (peak memory 930 MB against 550). About 7 µs a call. An argument the registry lacks is refused
-- whatever its size: a bug of the extension, loud.
create function pipetrak.limited(p_argument text, p_value text)
returns text
language plpgsql stable security definer parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    v_max integer := pipetrak.argument_limit(p_argument);
begin
    if v_max is null or (pg_catalog.octet_length(p_value) > v_max and pg_catalog.length(p_value) > v_max) then
        perform pipetrak.refuse_size(p_argument, 'characters', pg_catalog.length(p_value));
    end if;
    return p_value;
end
$$;

-- The same for a JSON value: its size in bytes as sent (a compressed value, taken from a table,
-- as its text).
create function pipetrak.limited(p_argument text, p_value jsonb)
returns jsonb
language plpgsql stable security definer parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    v_max integer := pipetrak.argument_limit(p_argument);
begin
    if v_max is null or pg_catalog.pg_column_size(p_value) > v_max then
        perform pipetrak.refuse_size(p_argument, 'bytes', pg_catalog.pg_column_size(p_value));
    elsif pg_catalog.pg_column_compression(p_value) is not null and pg_catalog.octet_length(p_value::pg_catalog.text) > v_max then
        perform pipetrak.refuse_size(p_argument, 'bytes', pg_catalog.octet_length(p_value::pg_catalog.text));
    end if;
    return p_value;
end
$$;

-- The same for a list (its items): no more than the batch limit (pipetrak.max_batch_items) either.
create function pipetrak.limited(p_argument text, p_value anyarray)
returns anyarray
language plpgsql stable security definer parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    v_max integer := pipetrak.argument_limit(p_argument);
begin
    if v_max is null or pg_catalog.cardinality(p_value) > least(v_max, pipetrak.max_batch_items()) then
        perform pipetrak.refuse_size(p_argument, 'items', pg_catalog.cardinality(p_value));
    end if;
    return p_value;
end
$$;

-- Raises the size error of an argument (called only when limited refuses it), from its size:
-- the value itself is never passed on.
create function pipetrak.refuse_size(p_argument text, p_unit text, p_size bigint)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_max integer := pipetrak.argument_limit(p_argument);
begin
    if v_max is null then
        raise exception 'pipetrak: no limit registered for argument %', p_argument;
    end if;
    if p_unit = 'items' then
        v_max := least(v_max, pipetrak.max_batch_items());
    end if;
    perform pipetrak.raise_error(
        case p_unit when 'characters' then 'text_too_long' when 'bytes' then 'value_too_large' else 'batch_too_large' end,
        case p_unit
            when 'characters' then jsonb_build_object('argument', p_argument, 'max_length', v_max, 'length', p_size)
            when 'bytes' then jsonb_build_object('argument', p_argument, 'max_bytes', v_max, 'bytes', p_size)
            else jsonb_build_object('argument', p_argument, 'limit', v_max, 'items', p_size) end);
end
$$;

create function pipetrak_api.sync_profile()
returns jsonb language sql volatile
as $$ select to_jsonb(pipetrak.sync_profile()) $$;
comment on function pipetrak_api.sync_profile() is 'Creates or refreshes your profile (email, name) from your JWT claims; returns it.';

create function pipetrak_api.create_organization(name text)
returns bigint language sql volatile
as $$ select pipetrak.create_organization(pipetrak.limited('name', name)) $$;
comment on function pipetrak_api.create_organization(text) is 'Creates an organization with you as its owner; returns its id.';

create function pipetrak_api.add_member(organization_id bigint, user_id uuid, role text)
returns void language sql volatile
as $$ select pipetrak.add_member(organization_id, user_id, pipetrak.limited('role', role)) $$;
comment on function pipetrak_api.add_member(bigint, uuid, text) is 'Adds someone who already shares an organization with you, by user id, with a role (owners and admins; only owners add owners). Anyone else is invited by email: invite_member.';

create function pipetrak_api.change_member_role(organization_id bigint, user_id uuid, role text)
returns void language sql volatile
as $$ select pipetrak.change_member_role(organization_id, user_id, pipetrak.limited('role', role)) $$;
comment on function pipetrak_api.change_member_role(bigint, uuid, text) is 'Changes a member''s role. Nobody changes their own role; only owners change or grant owner.';

create function pipetrak_api.remove_member(organization_id bigint, user_id uuid)
returns void language sql volatile
as $$ select pipetrak.remove_member(organization_id, user_id) $$;
comment on function pipetrak_api.remove_member(bigint, uuid) is 'Removes a member (their history stays). The last owner can''t be removed.';

create function pipetrak_api.create_project(organization_id bigint, name text, job_number text, time_zone text default 'UTC',
                                            sequence_mode text default 'flag', week_lock boolean default true)
returns bigint language sql volatile
as $$ select pipetrak.create_project(organization_id, pipetrak.limited('name', name), pipetrak.limited('job_number', job_number), pipetrak.limited('time_zone', time_zone), pipetrak.limited('sequence_mode', sequence_mode), week_lock) $$;
comment on function pipetrak_api.create_project(bigint, text, text, text, text, boolean) is 'Creates a project (owners and admins) with its own copy of the default milestone templates; returns its id.';

create function pipetrak_api.update_project_settings(project_id bigint, time_zone text default null,
                                                     sequence_mode text default null, week_lock boolean default null)
returns void language sql volatile
as $$ select pipetrak.update_project_settings(project_id, pipetrak.limited('time_zone', time_zone), pipetrak.limited('sequence_mode', sequence_mode), week_lock) $$;
comment on function pipetrak_api.update_project_settings(bigint, text, text, boolean) is 'Changes a project''s time zone, sequence mode (flag, enforce, off) or week lock; omitted settings stay.';

create function pipetrak_api.archive_project(project_id bigint)
returns void language sql volatile
as $$ select pipetrak.archive_project(project_id) $$;
comment on function pipetrak_api.archive_project(bigint) is 'Archives a project: readable, no more writes.';

create function pipetrak_api.create_area(project_id bigint, name text, description text default null)
returns bigint language sql volatile
as $$ select pipetrak.create_reference('area', project_id, pipetrak.limited('name', name), pipetrak.limited('description', description)) $$;
comment on function pipetrak_api.create_area(bigint, text, text) is 'Creates an area; names are unique (ignoring case) in a project.';

create function pipetrak_api.rename_area(area_id bigint, name text)
returns void language sql volatile
as $$ select pipetrak.rename_reference('area', area_id, pipetrak.limited('name', name)) $$;
comment on function pipetrak_api.rename_area(bigint, text) is 'Renames an area.';

create function pipetrak_api.retire_area(area_id bigint)
returns void language sql volatile
as $$ select pipetrak.retire_reference('area', area_id) $$;
comment on function pipetrak_api.retire_area(bigint) is 'Retires an area no live drawing or component uses.';

create function pipetrak_api.create_system(project_id bigint, name text, description text default null)
returns bigint language sql volatile
as $$ select pipetrak.create_reference('system', project_id, pipetrak.limited('name', name), pipetrak.limited('description', description)) $$;
comment on function pipetrak_api.create_system(bigint, text, text) is 'Creates a system; names are unique (ignoring case) in a project.';

create function pipetrak_api.rename_system(system_id bigint, name text)
returns void language sql volatile
as $$ select pipetrak.rename_reference('system', system_id, pipetrak.limited('name', name)) $$;
comment on function pipetrak_api.rename_system(bigint, text) is 'Renames a system.';

create function pipetrak_api.retire_system(system_id bigint)
returns void language sql volatile
as $$ select pipetrak.retire_reference('system', system_id) $$;
comment on function pipetrak_api.retire_system(bigint) is 'Retires a system no live drawing or component uses.';

create function pipetrak_api.create_test_package(project_id bigint, name text, description text default null)
returns bigint language sql volatile
as $$ select pipetrak.create_reference('test_package', project_id, pipetrak.limited('name', name), pipetrak.limited('description', description)) $$;
comment on function pipetrak_api.create_test_package(bigint, text, text) is 'Creates a test package; set its test details with update_test_package.';

create function pipetrak_api.rename_test_package(test_package_id bigint, name text)
returns void language sql volatile
as $$ select pipetrak.rename_reference('test_package', test_package_id, pipetrak.limited('name', name)) $$;
comment on function pipetrak_api.rename_test_package(bigint, text) is 'Renames a test package.';

create function pipetrak_api.retire_test_package(test_package_id bigint)
returns void language sql volatile
as $$ select pipetrak.retire_reference('test_package', test_package_id) $$;
comment on function pipetrak_api.retire_test_package(bigint) is 'Retires a test package no live drawing or component uses.';

create function pipetrak_api.update_test_package(test_package_id bigint, test_type text default null,
                                                 test_pressure numeric default null, test_pressure_unit text default null,
                                                 target_date date default null, requires_coating boolean default false,
                                                 requires_insulation boolean default false)
returns void language sql volatile
as $$ select pipetrak.update_test_package(test_package_id, pipetrak.limited('test_type', test_type), test_pressure, pipetrak.limited('test_pressure_unit', test_pressure_unit), target_date,
                                          requires_coating, requires_insulation) $$;
comment on function pipetrak_api.update_test_package(bigint, text, numeric, text, date, boolean, boolean) is 'Sets a test package''s test type (Hydrostatic, Pneumatic, Sensitive Leak, Alternative Leak, In-service, Other), pressure + unit, target date, coating and insulation needs.';

create function pipetrak_api.create_drawing(project_id bigint, drawing_no text, sheet text default null, revision text default null,
                                            title text default null, area_id bigint default null, system_id bigint default null,
                                            test_package_id bigint default null)
returns bigint language sql volatile
as $$ select pipetrak.create_drawing(project_id, pipetrak.limited('drawing_no', drawing_no), pipetrak.limited('sheet', sheet), pipetrak.limited('revision', revision), pipetrak.limited('title', title), area_id, system_id, test_package_id) $$;
comment on function pipetrak_api.create_drawing(bigint, text, text, text, text, bigint, bigint, bigint) is 'Creates a drawing; numbers are compared after normalization (case, spaces, sheet suffix). Returns its id.';

create function pipetrak_api.revise_drawing(drawing_id bigint, revision text default null, title text default null)
returns void language sql volatile
as $$ select pipetrak.revise_drawing(drawing_id, pipetrak.limited('revision', revision), pipetrak.limited('title', title)) $$;
comment on function pipetrak_api.revise_drawing(bigint, text, text) is 'Records a drawing''s new revision and/or title.';

create function pipetrak_api.assign_drawing(drawing_id bigint, area_id bigint default null, system_id bigint default null,
                                            test_package_id bigint default null)
returns integer language sql volatile
as $$ select pipetrak.assign_drawing(drawing_id, area_id, system_id, test_package_id) $$;
comment on function pipetrak_api.assign_drawing(bigint, bigint, bigint, bigint) is 'Sets a drawing''s area, system and test package (omitted = none); its components follow unless assigned on their own. Returns how many components moved.';

create function pipetrak_api.retire_drawing(drawing_id bigint)
returns integer language sql volatile
as $$ select pipetrak.retire_drawing(drawing_id) $$;
comment on function pipetrak_api.retire_drawing(bigint) is 'Retires a drawing and its live components (history stays); returns how many components were retired.';

create function pipetrak_api.create_component(project_id bigint, drawing_id bigint, component_type text, tag text,
                                              size text default null, quantity numeric default 1, description text default null,
                                              spec text default null, attributes jsonb default '{}')
returns jsonb language sql volatile
as $$ select pipetrak.create_component(project_id, drawing_id, pipetrak.limited('component_type', component_type), pipetrak.limited('tag', tag), pipetrak.limited('size', size), quantity, pipetrak.limited('description', description), pipetrak.limited('spec', spec), pipetrak.limited('attributes', attributes)) $$;
comment on function pipetrak_api.create_component(bigint, bigint, text, text, text, numeric, text, text, jsonb) is 'Creates components: quantity n of a per-seq type makes seqs 1..n (only the missing ones); pipe takes the footage. Returns {"created": [ids], "existing": [ids]}.';

create function pipetrak_api.assign_component(component_id bigint, area_id bigint default null, system_id bigint default null,
                                              test_package_id bigint default null, follow_drawing boolean default false)
returns void language sql volatile
as $$ select pipetrak.assign_component(component_id, area_id, system_id, test_package_id, follow_drawing) $$;
comment on function pipetrak_api.assign_component(bigint, bigint, bigint, bigint, boolean) is 'Assigns one component on its own (it stops following its drawing for what is given), or with follow_drawing puts it back on its drawing''s assignment.';

create function pipetrak_api.retire_component(component_id bigint)
returns void language sql volatile
as $$ select pipetrak.retire_component(component_id) $$;
comment on function pipetrak_api.retire_component(bigint) is 'Retires a component: its history stays, it leaves the rollups. A field weld is retired with a reason: retire_weld.';

create function pipetrak_api.reweight_template(project_id bigint, component_type text, weights jsonb, recompute boolean default true)
returns integer language sql volatile
as $$ select pipetrak.reweight_template(project_id, pipetrak.limited('component_type', component_type), pipetrak.limited('weights', weights), recompute) $$;
comment on function pipetrak_api.reweight_template(bigint, text, jsonb, boolean) is 'Re-weights a project''s template: weights is {"Milestone": integer, …} for every milestone, summing to 100. Existing components are recomputed at once; returns how many changed.';

create function pipetrak_api.update_milestone(component_id bigint, milestone text, value numeric, work_date date default null,
                                              note text default null, client_request_id text default null,
                                              expected_version integer default null)
returns jsonb language sql volatile
as $$ select pipetrak.update_milestone(component_id, pipetrak.limited('milestone', milestone), value, work_date, pipetrak.limited('note', note), pipetrak.limited('client_request_id', client_request_id), expected_version) $$;
comment on function pipetrak_api.update_milestone(bigint, text, numeric, date, text, text, integer) is 'Sets one milestone (0 or 100; 0-100 for partial ones) with a work date (default today, project time). Replaying a client_request_id returns the first result; a stale expected_version is a 409. Returns the component''s milestones, % complete, version and out-of-sequence flag.';

create function pipetrak_api.update_milestones(updates jsonb)
returns jsonb language sql volatile
as $$ select pipetrak.update_milestones(pipetrak.limited('updates', updates)) $$;
comment on function pipetrak_api.update_milestones(jsonb) is 'Bulk update_milestone: an array of {component_id, milestone, value, work_date?, note?}; all or nothing; one result per item.';

create function pipetrak_api.assign_welder(component_id bigint, stencil text, date_welded date default null, note text default null)
returns jsonb language sql volatile
as $$ select pipetrak.assign_welder(component_id, pipetrak.limited('stencil', stencil), date_welded, pipetrak.limited('note', note)) $$;
comment on function pipetrak_api.assign_welder(bigint, text, date, text) is 'Assigns a welder (by stencil; unknown ones are created unverified) to a field weld, completing Weld Complete on the date welded and opening a QC review item.';

create function pipetrak_api.resolve_review_item(review_item_id bigint, note text default null)
returns void language sql volatile
as $$ select pipetrak.resolve_review_item(review_item_id, pipetrak.limited('note', note)) $$;
comment on function pipetrak_api.resolve_review_item(bigint, text) is 'Resolves a review item with a note (owner, admin, project manager, QC inspector).';
