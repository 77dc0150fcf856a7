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
    using (pipetrak.organization_visible_for(organization_id, 'manage_members'));

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

-- Whether `p_user` may still invite to `p_role` in the organization (owners and admins; owners
-- only to owner): an invitation holds only while its inviter's standing does.
create function pipetrak.invitation_stands(p_organization_id bigint, p_user uuid, p_role text)
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
create function pipetrak.revoke_lapsed_invitations(p_organization_id bigint)
returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    update pipetrak.invitations i set revoked_at = now(), revoked_by = pipetrak.current_user_id()
    where i.organization_id = p_organization_id and i.accepted_at is null and i.revoked_at is null
      and not pipetrak.invitation_stands(i.organization_id, i.invited_by, i.role)
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
create function pipetrak.update_profile(p_display_name text)
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

-- Renames an organization (owners and admins).
create function pipetrak.rename_organization(p_organization_id bigint, p_name text)
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
    delete from pipetrak.weekly_groups where project_id = any (p_project_ids);
    delete from pipetrak.baseline_activities where project_id = any (p_project_ids);
    delete from pipetrak.baselines where project_id = any (p_project_ids);
    delete from pipetrak.hours_days where project_id = any (p_project_ids);
    delete from pipetrak.timesheet_hours where project_id = any (p_project_ids);
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
    delete from pipetrak.progress_packages where project_id = any (p_project_ids);
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

-- Renames a project (owners and admins).
create function pipetrak.rename_project(p_project_id bigint, p_name text)
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

create function pipetrak_api.invite_member(organization_id bigint, email text, role text)
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

create function pipetrak_api.accept_invitation(token text)
returns jsonb language sql volatile
as $$ select pipetrak.accept_invitation(pipetrak.limited('token', token)) $$;
comment on function pipetrak_api.accept_invitation(text) is
    'Joins the organization an invitation is for, as the signed-in user whose JWT email is the invited address. Returns {organization_id, role}.';

create function pipetrak_api.update_profile(display_name text)
returns jsonb language sql volatile
as $$ select to_jsonb(pipetrak.update_profile(pipetrak.limited('display_name', display_name))) $$;
comment on function pipetrak_api.update_profile(text) is 'Sets your display name (blank clears it); returns your profile.';

create function pipetrak_api.rename_organization(organization_id bigint, name text)
returns void language sql volatile
as $$ select pipetrak.rename_organization(organization_id, pipetrak.limited('name', name)) $$;
comment on function pipetrak_api.rename_organization(bigint, text) is 'Renames an organization (owners and admins).';

create function pipetrak_api.delete_organization(organization_id bigint, confirm_name text)
returns void language sql volatile
as $$ select pipetrak.delete_organization(organization_id, pipetrak.limited('confirm_name', confirm_name)) $$;
comment on function pipetrak_api.delete_organization(bigint, text) is
    'Deletes an organization with all its projects, members and history, in one transaction (owners, naming it exactly).';

create function pipetrak_api.rename_project(project_id bigint, name text)
returns void language sql volatile
as $$ select pipetrak.rename_project(project_id, pipetrak.limited('name', name)) $$;
comment on function pipetrak_api.rename_project(bigint, text) is 'Renames a project (owners and admins).';

create function pipetrak_api.unarchive_project(project_id bigint)
returns void language sql volatile
as $$ select pipetrak.unarchive_project(project_id) $$;
comment on function pipetrak_api.unarchive_project(bigint) is 'Makes an archived project writable again (owners and admins).';

create function pipetrak_api.delete_project(project_id bigint, confirm_name text)
returns void language sql volatile
as $$ select pipetrak.delete_project(project_id, pipetrak.limited('confirm_name', confirm_name)) $$;
comment on function pipetrak_api.delete_project(bigint, text) is
    'Deletes a project with all its components and history, in one transaction (owners and admins, naming it exactly).';
