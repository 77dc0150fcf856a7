-- Organizations, members and projects. Security-definer functions: each checks the caller's role
-- itself before writing (the API role holds no write privilege on any table).

-- Creates or refreshes the caller's profile from the JWT claims (email, name).
create function pipetrak.sync_profile()
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
        -- The row proposed carries now() from its default (Citus refuses a function here).
        updated_at = excluded.updated_at
    returning * into v_profile;
    return v_profile;
end
$$;

-- Creates an organization with the caller as its owner.
create function pipetrak.create_organization(p_name text)
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

-- Checks that the caller (with role p_caller_role) may give or take away role p_role, and that the
-- change is not about themself.
create function pipetrak.check_member_change(p_caller_role text, p_user_id uuid, p_role text)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_user_id is null then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "user_id", "expected": "a user uuid"}');
    end if;
    if p_user_id = pipetrak.current_user_id() then
        perform pipetrak.raise_error('cannot_change_own_role');
    end if;
    if p_role = 'owner' and not pipetrak.role_can(p_caller_role, 'manage_owners') then
        perform pipetrak.raise_error('owner_only');
    end if;
end
$$;

-- Refuses a name that is not one of the seven roles (invalid_role).
create function pipetrak.check_role_name(p_role text)
returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_role is null or p_role <> all (pipetrak.member_roles()) then
        perform pipetrak.raise_error('invalid_role', jsonb_build_object('role', p_role));
    end if;
end
$$;

-- Adds a user to an organization with a role. Owners and admins; only owners add owners.
create function pipetrak.add_member(p_organization_id bigint, p_user_id uuid, p_role text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller_role text := pipetrak.require_organization_role(p_organization_id, 'manage_members');
begin
    perform pipetrak.check_role_name(p_role);
    perform pipetrak.check_member_change(v_caller_role, p_user_id, p_role);
    -- Without invitations, membership needs some consent: only people who already share an
    -- organization with the caller can be added. Anyone else is "not found", so an owner can't
    -- pull a stranger in and read their email from the member list.
    if not exists (select from pipetrak.memberships mine
                   join pipetrak.memberships theirs on theirs.organization_id = mine.organization_id
                   where mine.user_id = pipetrak.current_user_id() and theirs.user_id = p_user_id) then
        perform pipetrak.raise_error('user_not_found', jsonb_build_object('user_id', p_user_id));
    end if;
    insert into pipetrak.memberships (organization_id, user_id, role, created_by)
    values (p_organization_id, p_user_id, p_role, pipetrak.current_user_id())
    on conflict do nothing;
    if not found then
        perform pipetrak.raise_error('already_member', jsonb_build_object('user_id', p_user_id));
    end if;
end
$$;

-- Changes a member's role. Nobody changes their own; only owners touch owners.
create function pipetrak.change_member_role(p_organization_id bigint, p_user_id uuid, p_role text)
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
create function pipetrak.remove_member(p_organization_id bigint, p_user_id uuid)
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

-- Refuses an unknown time zone (invalid_time_zone) or sequence mode (flag, enforce, off); null means unchanged.
create function pipetrak.check_project_settings(p_time_zone text, p_sequence_mode text)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_time_zone is not null and not exists (select from pg_catalog.pg_timezone_names where name = p_time_zone) then
        perform pipetrak.raise_error('invalid_time_zone', jsonb_build_object('time_zone', p_time_zone));
    end if;
    if p_sequence_mode is not null and p_sequence_mode not in ('flag', 'enforce', 'off') then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'sequence_mode', 'expected', 'flag, enforce or off'));
    end if;
end
$$;

-- Creates a project and gives it its own copy of the default milestone templates.
create function pipetrak.create_project(p_organization_id bigint, p_name text, p_job_number text,
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

-- Changes a project's time zone, sequence mode or week lock (NULL leaves a setting as it is).
create function pipetrak.update_project_settings(p_project_id bigint, p_time_zone text, p_sequence_mode text, p_week_lock boolean)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_projects');
    perform pipetrak.check_project_settings(p_time_zone, p_sequence_mode);
    update pipetrak.projects set
        time_zone = coalesce(p_time_zone, time_zone),
        sequence_mode = coalesce(p_sequence_mode, sequence_mode),
        week_lock = coalesce(p_week_lock, week_lock)
    where id = p_project_id;
end
$$;

-- Archives a project: it stays readable and takes no more writes.
create function pipetrak.archive_project(p_project_id bigint)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_projects');
    update pipetrak.projects set archived_at = now() where id = p_project_id;
end
$$;
