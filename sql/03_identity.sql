-- Identity and membership helpers. The read policies ask through project_visible,
-- organization_visible, member_visible and caller_is (src/pg/visibility.rs), which read the
-- caller's ids once per query and look each row up in them.
--
-- Design notes (decisions where the spec was silent):
-- - Writes only through functions. `pipetrak_api` holds only `security_invoker` views and
--   functions, as the spec asks. Each API function hands its named arguments to a `security
--   definer` function in `pipetrak` (`search_path = pg_catalog, pg_temp`, qualified names) that checks the
--   caller's role from `request.jwt.claims` first. `authenticated` holds `select` on tables
--   (filtered by RLS) and no insert/update/delete anywhere, so a foreman cannot bypass the sequence
--   rules or the audit log by writing a table, and a viewer cannot change progress at all (pgTAP
--   `02_security`).
-- - RLS: enabled on every table; read policies call a function (`pipetrak.project_visible(project_id)`)
--   rather than hold a subquery, which Citus refuses on distributed tables. The function reads the
--   caller's projects (`my_project_ids`, `security definer`) once per query and looks each row up
--   in them, as the subquery's hash did; every filtered column indexed.
--   There are deliberately no write policies: without a write privilege they would never be
--   reached.
-- - Not found vs forbidden: someone outside an organization gets `PT404` for its ids (existence is
--   not revealed); a member whose role lacks the right gets `42501`.
-- - Roles are never created by the extension; grants go to `authenticated`/`service_role` if they
--   exist at `CREATE EXTENSION` (create them first, as Supabase does). `anon` gets nothing.

-- The claims PostgREST (or the SQL client) put into the request; {} when there are none.
create function pipetrak.current_claims()
returns jsonb
language sql stable parallel safe
as $$
    select coalesce(nullif(current_setting('request.jwt.claims', true), '')::pg_catalog.jsonb, '{}'::pg_catalog.jsonb)
$$;

-- The caller's user id: the JWT "sub" claim when it is a uuid, else NULL (anonymous).
create function pipetrak.current_user_id()
returns uuid
language sql stable parallel safe
as $$
    -- No FROM clause, so the planner inlines it: a SQL function it can't inline is parsed and
    -- planned again in every transaction.
    select case when pipetrak.current_claims() ->> 'sub' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                then (pipetrak.current_claims() ->> 'sub')::pg_catalog.uuid end
$$;

-- The project the caller says the request works in, or NULL: the setting pipetrak.project, which
-- PostgREST's pre-request copies from the Pipetrak-Project header (pipetrak.pre_request) and an SQL
-- client sets with SET LOCAL. A call taking an id (a component's, an import's) then looks for it
-- in that project alone: one index read as before, and on Citus one shard instead of every shard.
-- It narrows, never widens: an id of another project is not found (PT404), as an id the caller
-- can't see is. Decided over a project_id argument on each call taking an id: the screens know
-- their project once per request, and the calls, their signatures and the API reference stay as
-- released.
create function pipetrak.request_project()
returns bigint
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_setting text := current_setting('pipetrak.project', true);
begin
    if v_setting is null or v_setting = '' then
        return null;
    elsif v_setting !~ '^[0-9]{1,18}$' then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'pipetrak.project', 'value', left(v_setting, 40),
                                                                            'expected', 'a project id'));
    end if;
    return v_setting::bigint;
end
$$;

-- The seven roles a member holds (spec §2), most powerful first: the one list (the role columns'
-- check constraints restate it; pgTAP compares them).
create function pipetrak.member_roles()
returns text[]
language sql immutable parallel safe
as $$
    select array['owner', 'admin', 'project_manager', 'foreman', 'qc_inspector', 'welder', 'viewer']
$$;

-- What each role may do (the permission matrix of spec §2).
create function pipetrak.role_can(p_role text, p_permission text)
returns boolean
language sql immutable parallel safe
as $$
    select case p_permission
        when 'read' then p_role is not null
        when 'update_milestones' then p_role in ('owner', 'admin', 'project_manager', 'foreman', 'qc_inspector', 'welder')
        when 'record_hours' then p_role in ('owner', 'admin', 'project_manager', 'foreman')
        when 'manage_welds' then p_role in ('owner', 'admin', 'project_manager', 'foreman', 'qc_inspector')
        when 'quality_control' then p_role in ('owner', 'admin', 'project_manager', 'qc_inspector')
        when 'manage_project_data' then p_role in ('owner', 'admin', 'project_manager')
        when 'manage_projects' then p_role in ('owner', 'admin')
        when 'manage_members' then p_role in ('owner', 'admin')
        when 'manage_owners' then p_role = 'owner'
        else false
    end
$$;

-- Organizations where the caller's role grants `p_permission`. These two run in every policy and
-- permission check: PL/pgSQL keeps their plans for the session, where a SQL function that can't be
-- inlined (security definer) is planned again on every call.
create function pipetrak.my_organization_ids(p_permission text default 'read')
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
create function pipetrak.my_project_ids(p_permission text default 'read')
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

-- The caller's id, or the not_authenticated error.
create function pipetrak.require_user()
returns uuid
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user uuid := pipetrak.current_user_id();
begin
    if v_user is null then
        perform pipetrak.raise_error('not_authenticated');
    end if;
    return v_user;
end
$$;

-- The caller's role in an organization, after checking it grants `p_permission`. Someone outside
-- the organization learns nothing (not found); a member without the right is refused.
create function pipetrak.require_organization_role(p_organization_id bigint, p_permission text)
returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_role text;
begin
    select m.role into v_role
    from pipetrak.memberships m
    where m.organization_id = p_organization_id and m.user_id = pipetrak.require_user();
    if v_role is null then
        perform pipetrak.raise_error('organization_not_found', jsonb_build_object('organization_id', p_organization_id));
    elsif not pipetrak.role_can(v_role, p_permission) then
        perform pipetrak.raise_error('permission_denied', jsonb_build_object('role', v_role, 'needs', p_permission));
    end if;
    return v_role;
end
$$;

-- The caller's role in a project's organization, after checking it grants `p_permission`; writes
-- to an archived project are refused.
create function pipetrak.require_project_role(p_project_id bigint, p_permission text)
returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_role text;
    v_archived timestamptz;
begin
    select m.role, p.archived_at into v_role, v_archived
    from pipetrak.projects p
    join pipetrak.memberships m on m.organization_id = p.organization_id and m.user_id = pipetrak.require_user()
    where p.id = p_project_id;
    if v_role is null then
        perform pipetrak.raise_error('project_not_found', jsonb_build_object('project_id', p_project_id));
    elsif not pipetrak.role_can(v_role, p_permission) then
        perform pipetrak.raise_error('permission_denied', jsonb_build_object('role', v_role, 'needs', p_permission));
    elsif v_archived is not null and p_permission <> 'read' then
        perform pipetrak.raise_error('project_archived', jsonb_build_object('project_id', p_project_id));
    end if;
    return v_role;
end
$$;

-- Row-level security: every table on; reads by membership; no write policies, because writes go
-- only through the API's functions (and no role but the owner holds write privileges).
alter table pipetrak.error_codes enable row level security;
alter table pipetrak.user_profiles enable row level security;
alter table pipetrak.organizations enable row level security;
alter table pipetrak.memberships enable row level security;
alter table pipetrak.projects enable row level security;
alter table pipetrak.areas enable row level security;
alter table pipetrak.systems enable row level security;
alter table pipetrak.test_packages enable row level security;
alter table pipetrak.drawings enable row level security;
alter table pipetrak.milestone_templates enable row level security;
alter table pipetrak.welders enable row level security;
alter table pipetrak.components enable row level security;
alter table pipetrak.field_welds enable row level security;
alter table pipetrak.milestone_events enable row level security;
alter table pipetrak.review_items enable row level security;
alter table pipetrak.client_requests enable row level security;
alter table pipetrak.progress_parts enable row level security;
alter table pipetrak.progress_packages enable row level security;
-- No policy: nobody but the extension's own functions reads a project's event keys.
alter table pipetrak.project_secrets enable row level security;
alter table pipetrak.progress_deferrals enable row level security;

-- The error catalog is public reference data for signed-in users.
create policy error_codes_select_authenticated on pipetrak.error_codes for select to authenticated
    using (true);

-- Your own profile, and the profiles of people who share an organization with you.
create policy user_profiles_select_member on pipetrak.user_profiles for select to authenticated
    using (pipetrak.member_visible(user_id));

create policy organizations_select_member on pipetrak.organizations for select to authenticated
    using (pipetrak.organization_visible(id));

create policy memberships_select_member on pipetrak.memberships for select to authenticated
    using (pipetrak.organization_visible(organization_id));

create policy projects_select_member on pipetrak.projects for select to authenticated
    using (pipetrak.organization_visible(organization_id));

create policy areas_select_member on pipetrak.areas for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy systems_select_member on pipetrak.systems for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy test_packages_select_member on pipetrak.test_packages for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy drawings_select_member on pipetrak.drawings for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy milestone_templates_select_member on pipetrak.milestone_templates for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy welders_select_member on pipetrak.welders for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy components_select_member on pipetrak.components for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy field_welds_select_member on pipetrak.field_welds for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy milestone_events_select_member on pipetrak.milestone_events for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy review_items_select_member on pipetrak.review_items for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy progress_parts_select_member on pipetrak.progress_parts for select to authenticated
    using (pipetrak.project_visible(project_id));
create policy progress_packages_select_member on pipetrak.progress_packages for select to authenticated
    using (pipetrak.project_visible(project_id));

-- Replay records are private to the user who sent them.
create policy client_requests_select_own on pipetrak.client_requests for select to authenticated
    using (pipetrak.caller_is(user_id));
