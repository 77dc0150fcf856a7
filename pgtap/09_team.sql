-- Team and platform (spec §12): invitations from invite to accept (expiry, revoke, a wrong email,
-- a replayed token, a role above the inviter's), profiles, renaming and deleting organizations and
-- projects, component corrections and their change log, change events queued per transaction,
-- search, plain PostgreSQL without Supabase, and who may do what.
begin;
\ir fixtures/actors.sql
select plan(132);

-- Signs in as a new user with an email claim (the only proof of an address).
create function pg_temp.act_with_email(p_user uuid, p_email text) returns void language plpgsql as $$
begin
    perform set_config('role', 'authenticated', true);
    perform set_config('request.jwt.claims', json_build_object('sub', p_user, 'role', 'authenticated', 'email', p_email)::text, true);
end $$;
-- p_sql as that user: 'ok' or 'SQLSTATE key'.
create function pg_temp.error_with_email(p_user uuid, p_email text, p_sql text) returns text language plpgsql as $$
declare
    v_state text;
    v_detail text;
begin
    perform pg_temp.act_with_email(p_user, p_email);
    begin
        execute p_sql;
        v_state := 'ok';
    exception when others then
        get stacked diagnostics v_state = returned_sqlstate, v_detail = pg_exception_detail;
        v_state := v_state || ' ' || coalesce(v_detail::jsonb ->> 'code', '');
    end;
    perform set_config('role', 'postgres', true);
    return v_state;
end $$;
grant execute on all functions in schema pg_temp to public;
\set newcomer '''c0000000-0000-4000-8000-0000000000aa'''
\set stranger '''c0000000-0000-4000-8000-0000000000bb'''

-- ---- Invitations ----
select pg_temp.act_as(pg_temp.uid('admin'));
select pipetrak_api.invite_member(organization_id => :org_a, email => ' Pat.Lee@Example.com ', role => 'foreman') as invite \gset
reset role;
select ok(:'invite'::jsonb ->> 'token' ~ '^[0-9a-f]{64}$', 'an invitation returns its token, 256 bits as hex');
select is((select email || ' ' || role from pipetrak.invitations where id = (:'invite'::jsonb ->> 'invitation_id')::bigint),
    'pat.lee@example.com foreman', 'the address is kept trimmed and lower-case, with the role');
select is((select token_hash from pipetrak.invitations where id = (:'invite'::jsonb ->> 'invitation_id')::bigint),
    sha256(convert_to(:'invite'::jsonb ->> 'token', 'UTF8')), 'only the token''s SHA-256 is stored');
select is((select count(*) from pipetrak.invitations where token_hash = convert_to(:'invite'::jsonb ->> 'token', 'UTF8')), 0::bigint,
    'never the token itself');
select is((select expires_at - created_at from pipetrak.invitations where id = (:'invite'::jsonb ->> 'invitation_id')::bigint),
    interval '7 days', 'it is valid 7 days');

select is(pg_temp.error_of('admin', format('select pipetrak_api.invite_member(organization_id => %s, email => ''PAT.LEE@example.com'', role => ''viewer'')', :org_a)),
    'PT409 invitation_pending', 'one pending invitation per address and organization (case-insensitive)');
select is(pg_temp.error_of('admin', format('select pipetrak_api.invite_member(organization_id => %s, email => ''boss@example.com'', role => ''owner'')', :org_a)),
    'PT403 owner_only', 'an admin can''t invite an owner: a role above what they may grant');
select is(pg_temp.error_of('owner', format('select pg_temp.undone(%L)', format('select pipetrak_api.invite_member(organization_id => %s, email => ''boss@example.com'', role => ''owner'')', :org_a))),
    'ok', 'an owner can');
select is(pg_temp.error_of('admin', format('select pipetrak_api.invite_member(organization_id => %s, email => ''not-an-address'', role => ''viewer'')', :org_a)),
    'PT422 invalid_email', 'an address must look like one');
select is(pg_temp.error_of('admin', format('select pipetrak_api.invite_member(organization_id => %s, email => ''x@example.com'', role => ''boss'')', :org_a)),
    'PT422 invalid_role', 'a role must be one of the seven');
select is(pg_temp.error_of('admin', format('select pipetrak_api.invite_member(organization_id => %s, email => %L, role => ''viewer'')', :org_a, pg_temp.uid('owner') || '@EXAMPLE.com')),
    'PT409 already_member', 'a member''s address is not invited again');

select is(pg_temp.error_with_email(:newcomer, 'someone.else@example.com', format('select pipetrak_api.accept_invitation(token => %L)', :'invite'::jsonb ->> 'token')),
    'PT403 invitation_email_mismatch', 'a signed-in user with another email can''t accept, even with the token');
select is(pg_temp.error_with_email(:newcomer, null, format('select pipetrak_api.accept_invitation(token => %L)', :'invite'::jsonb ->> 'token')),
    'PT403 invitation_email_mismatch', 'nor one whose JWT has no email');
select is(pg_temp.error_with_email(:newcomer, 'pat.lee@example.com', 'select pipetrak_api.accept_invitation(token => ''00'')'),
    'PT404 invitation_not_found', 'an unknown token is not found');
select is(pg_temp.error_with_email(:newcomer, 'Pat.Lee@EXAMPLE.com', format('select pipetrak_api.accept_invitation(token => %L)', :'invite'::jsonb ->> 'token')),
    'ok', 'the user whose JWT email matches (in any case) accepts');
select is((select role from pipetrak.memberships where organization_id = :org_a and user_id = :newcomer), 'foreman',
    'and is a member with the invited role');
select is((select pipetrak.invitation_state(accepted_at, revoked_at, expires_at) from pipetrak.invitations where id = (:'invite'::jsonb ->> 'invitation_id')::bigint),
    'accepted', 'the invitation is accepted');
select is(pg_temp.error_with_email(:newcomer, 'pat.lee@example.com', format('select pipetrak_api.accept_invitation(token => %L)', :'invite'::jsonb ->> 'token')),
    'PT410 invitation_used', 'a replayed token is refused');
select is(pg_temp.error_with_email(:stranger, 'pat.lee@example.com', format('select pipetrak_api.accept_invitation(token => %L)', :'invite'::jsonb ->> 'token')),
    'PT410 invitation_used', 'by anyone');

-- Revoke.
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.invite_member(organization_id => :org_a, email => 'kim@example.com', role => 'viewer') as revoked \gset
select pipetrak_api.revoke_invitation(invitation_id => (:'revoked'::jsonb ->> 'invitation_id')::bigint);
reset role;
select is(pg_temp.error_with_email(:stranger, 'kim@example.com', format('select pipetrak_api.accept_invitation(token => %L)', :'revoked'::jsonb ->> 'token')),
    'PT410 invitation_revoked', 'a revoked invitation can''t be accepted');
select is(pg_temp.error_of('owner', format('select pipetrak_api.resend_invitation(invitation_id => %s)', :'revoked'::jsonb ->> 'invitation_id')),
    'PT410 invitation_revoked', 'nor resent');

-- Resend rotates the token.
select pg_temp.act_as(pg_temp.uid('admin'));
select pipetrak_api.invite_member(organization_id => :org_a, email => 'kim@example.com', role => 'welder') as first \gset
select pipetrak_api.resend_invitation(invitation_id => (:'first'::jsonb ->> 'invitation_id')::bigint) as second \gset
reset role;
select isnt(:'second'::jsonb ->> 'token', :'first'::jsonb ->> 'token', 'resending gives a new token');
select is(pg_temp.error_with_email(:stranger, 'kim@example.com', format('select pipetrak_api.accept_invitation(token => %L)', :'first'::jsonb ->> 'token')),
    'PT404 invitation_not_found', 'the old token stops working');
select is((select sent_count from pipetrak.invitations where id = (:'first'::jsonb ->> 'invitation_id')::bigint), 2, 'it was sent twice');

-- Expiry, and an expired invitation replaced by a new one.
update pipetrak.invitations set expires_at = now() - interval '1 second' where id = (:'first'::jsonb ->> 'invitation_id')::bigint;
select is(pg_temp.error_with_email(:stranger, 'kim@example.com', format('select pipetrak_api.accept_invitation(token => %L)', :'second'::jsonb ->> 'token')),
    'PT410 invitation_expired', 'an invitation older than 7 days has expired');
select pg_temp.act_as(pg_temp.uid('admin'));
select is((select state from pipetrak_api.invitations where id = (:'first'::jsonb ->> 'invitation_id')::bigint), 'expired',
    'an admin sees it expired');
select pipetrak_api.invite_member(organization_id => :org_a, email => 'kim@example.com', role => 'viewer') as third \gset
reset role;
select is(:'third'::jsonb ->> 'invitation_id', :'first'::jsonb ->> 'invitation_id', 'inviting the address again replaces the expired invitation');
select is(pg_temp.error_with_email(:stranger, 'kim@example.com', format('select pipetrak_api.accept_invitation(token => %L)', :'third'::jsonb ->> 'token')),
    'ok', 'whose new token works');
select is((select role from pipetrak.memberships where organization_id = :org_a and user_id = :stranger), 'viewer', 'with the new role');

-- Who sees and manages invitations; nobody reads a token's hash.
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.invitations where organization_id = %s', :org_a)),
    array['3', '3', '0', '0', '0', '0', '0', '0', '42501'], 'invitations: owners and admins of the organization only');
select is(pg_temp.matrix('select count(token_hash) from pipetrak.invitations'),
    array['42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501'], 'no role reads a token''s hash');
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.invite_member(organization_id => %s, email => ''%%1$s@example.org'', role => ''viewer'')', :org_a))),
    array['ok', 'ok', '42501', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'invite_member: owners and admins');
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.invite_member(organization_id => :org_a, email => 'lee@example.com', role => 'viewer') ->> 'invitation_id' as pending \gset
reset role;
select is(pg_temp.matrix(format('select pg_temp.undone(''select pipetrak_api.resend_invitation(invitation_id => %s)'')', :pending)),
    array['ok', 'ok', '42501', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'resend_invitation: owners and admins');
select is(pg_temp.matrix(format('select pg_temp.undone(''select pipetrak_api.revoke_invitation(invitation_id => %s)'')', :pending)),
    array['ok', 'ok', '42501', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'revoke_invitation: owners and admins');
select is(pg_temp.matrix('select pipetrak_api.accept_invitation(token => ''00'')'),
    array['PT404', 'PT404', 'PT404', 'PT404', 'PT404', 'PT404', 'PT404', 'PT404', '42501'],
    'accept_invitation: any signed-in user may try a token (an unknown one is not found); anon can''t');

-- ---- Profiles ----
select is(pg_temp.error_of('viewer', 'select pipetrak_api.update_profile(display_name => ''  J. Ortiz '')'), 'ok', 'a user names themself');
select pg_temp.act_as(pg_temp.uid('viewer'));
select pipetrak_api.sync_profile() is not null as synced;
select is((select display_name from pipetrak_api.my_profile), 'J. Ortiz', 'trimmed, and kept when the profile syncs from the claims again');
reset role;
select is(pg_temp.error_of('viewer', format('select pipetrak_api.update_profile(display_name => %L)', repeat('x', 201))),
    'PT422 text_too_long', 'a display name has at most 200 characters');

-- ---- Organizations and projects ----
select is(pg_temp.matrix(format('select pg_temp.undone(''select pipetrak_api.rename_organization(organization_id => %s, name => ''''Org A2'''')'')', :org_a)),
    array['ok', 'ok', '42501', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'rename_organization: owners and admins');
select is(pg_temp.matrix(format('select pg_temp.undone(''select pipetrak_api.rename_project(project_id => %s, name => ''''Refinery A2'''')'')', :project_a)),
    array['ok', 'ok', '42501', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'rename_project: owners and admins');
select is(pg_temp.error_of('owner', format('select pipetrak_api.rename_project(project_id => %s, name => '' '')', :project_a)),
    'PT400 invalid_argument', 'a name is not blank');
select is(pg_temp.matrix(format('select pg_temp.undone(''select pipetrak_api.delete_project(project_id => %s, confirm_name => ''''Refinery A'''')'')', :project_a)),
    array['ok', 'ok', '42501', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'delete_project: owners and admins');
select is(pg_temp.error_of('owner', format('select pipetrak_api.delete_project(project_id => %s, confirm_name => ''refinery a'')', :project_a)),
    'PT422 confirmation_mismatch', 'a project is deleted only when named exactly');
select is(pg_temp.matrix(format('select pg_temp.undone(''select pipetrak_api.delete_organization(organization_id => %s, confirm_name => ''''Org A'''')'')', :org_a)),
    array['ok', '42501', '42501', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'delete_organization: owners only');
select is(pg_temp.error_of('owner', format('select pipetrak_api.delete_organization(organization_id => %s, confirm_name => ''Org  A'')', :org_a)),
    'PT422 confirmation_mismatch', 'an organization is deleted only when named exactly');

select is(pg_temp.error_of('owner', format('select pipetrak_api.archive_project(project_id => %s)', :project_a)), 'ok', 'archived');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Receive'', value => 100)', :valve_a)),
    'PT409 project_archived', 'an archived project takes no writes');
select is(pg_temp.matrix(format('select pg_temp.undone(''select pipetrak_api.unarchive_project(project_id => %s)'')', :project_a)),
    array['ok', 'ok', '42501', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'unarchive_project: owners and admins');
select is(pg_temp.error_of('owner', format('select pipetrak_api.unarchive_project(project_id => %s)', :project_a)), 'ok', 'unarchived');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Receive'', value => 100)', :valve_a)),
    'ok', 'and writable again');

-- ---- Component corrections and their change log ----
select pg_temp.act_as(pg_temp.uid('project_manager'));
select pipetrak_api.create_area(project_id => :project_a, name => 'Unit 2') as area_2 \gset
select pipetrak_api.create_drawing(project_id => :project_a, drawing_no => 'P-200', area_id => :area_2) as drawing_2 \gset
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_a, component_type => 'valve', tag => 'V-2', size => '2',
        description => 'Gate valve', attributes => '{"rating": "150#", "paint": "red"}') -> 'created' ->> 0)::bigint as v2 \gset
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_a, component_type => 'valve', tag => 'V-3', size => '2')
        -> 'created' ->> 0)::bigint as v3 \gset
select is(pipetrak_api.correct_component(component_id => :v2, changes => '{"description": "Ball valve", "attributes": {"rating": "300#", "paint": null}}',
          reason => 'takeoff typo'),
    '{"attributes": {"rating": "300#"}, "description": "Ball valve"}'::jsonb, 'a correction returns the fields it changed');
reset role;
select is((select row(action, fields, before, after, reason, user_id)::text from pipetrak.component_changes where component_id = :v2),
    row('correct', array['attributes', 'description'], '{"attributes": {"paint": "red", "rating": "150#"}, "description": "Gate valve"}'::jsonb,
        '{"attributes": {"rating": "300#"}, "description": "Ball valve"}'::jsonb, 'takeoff typo', pg_temp.uid('project_manager'))::text,
    'the log keeps who, the fields before and after, and the reason');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => ''{"description": "x"}'', reason => '' '')', :v2)),
    'PT422 reason_required', 'a correction needs a reason');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => ''{"colour": "x"}'', reason => ''why not'')', :v2)),
    'PT400 invalid_argument', 'only known fields are corrected');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => ''{"tag": " v-1 "}'', reason => ''renumbered'')', :v2)),
    'PT409 duplicate_component', 'an identity that collides with a live component is refused');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => ''{"size": "3"}'', reason => ''wrong size'')', :v2)),
    'ok', 'another size is another identity: accepted');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => ''{"tag": "V-1", "drawing_id": %s}'', reason => ''on the other sheet'')', :v3, :drawing_2)),
    'ok', 'a tag and drawing together that collide with nothing are accepted');
select is((select row(tag, drawing_id, area_id)::text from pipetrak.components where id = :v3), row('V-1', :drawing_2, :area_2)::text,
    'a component moved to another drawing follows its area');
select is((select fields from pipetrak.component_changes where component_id = :v3),
    array['area_id', 'drawing_id', 'system_id', 'tag', 'test_package_id'], 'the move is one log row listing what changed');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => ''{"drawing_id": %s}'', reason => ''back again'')', :v3, :drawing_a)),
    'PT409 duplicate_component', 'moving it back onto the drawing that has a V-1 2" collides');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => ''{"drawing_id": %s}'', reason => ''elsewhere'')', :v3, :drawing_b)),
    'PT404 drawing_not_found', 'another project''s drawing is not found');

select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => ''{"component_type": "fitting"}'', reason => ''not a valve'')', :valve_a)),
    'PT409 component_has_progress', 'the type is not changed once the component has progress');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => ''{"component_type": "Fitting"}'', reason => ''not a valve'')', :v2)),
    'ok', 'without progress it is');
select is((select component_type || ' ' || cardinality(milestone_values) from pipetrak.components where id = :v2),
    'fitting ' || (select cardinality(names) from pipetrak.milestone_templates where project_id = :project_a and component_type = 'fitting'),
    'the component takes the new type''s milestones');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => ''{"component_type": "valve"}'', reason => ''not a weld'')', :weld_a)),
    'PT409 weld_type_change', 'a weld doesn''t become another type');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_component(component_id => %s, changes => ''{"component_type": "gizmo"}'', reason => ''unknown'')', :v2)),
    'PT422 unknown_component_type', 'an unknown type is refused');

-- Bulk: all or nothing, the failing item named.
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_components(corrections => ''[{"component_id": %s, "description": "first"}, {"component_id": %s, "tag": "V-1"}]'', reason => ''bulk fix'')', :v2, :valve_a)),
    'ok', 'a batch whose items collide with nothing is applied');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.correct_components(corrections => ''[{"component_id": %s, "description": "second"}, {"component_id": %s, "drawing_id": %s}]'', reason => ''bulk fix'')', :v2, :v3, :drawing_a)),
    'PT409 duplicate_component', 'a batch with a colliding item fails with that item''s error');
select pg_temp.act_as(pg_temp.uid('project_manager'));
select throws_like(format('select pipetrak_api.correct_components(corrections => ''[{"component_id": %s, "description": "second"}, {"component_id": %s, "drawing_id": %s}]'', reason => ''bulk fix'')', :v2, :v3, :drawing_a),
    'item 1 (component ' || :v3 || ')%', 'and names it (index and component)');
reset role;
select is((select description from pipetrak.components where id = :v2), 'first', 'nothing of the failed batch was applied');

-- Retire and restore, in bulk, with a reason.
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.retire_components(component_ids => array[%s, %s], reason => ''duplicate lines'')', :v2, :v3)),
    'ok', 'components retired in bulk');
select is((select count(*) from pipetrak.components where id in (:v2, :v3) and retired_at is not null), 2::bigint, 'both retired');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.retire_components(component_ids => array[%s, %s], reason => ''duplicate lines'')', :valve_a, :valve_b)),
    'PT404 component_not_found', 'a batch holding another organization''s component fails');
select is((select retired_at is null from pipetrak.components where id = :valve_a), true, 'and retires nothing');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.restore_components(component_ids => array[%s], reason => ''needed'')', :valve_a)),
    'PT409 component_not_retired', 'a live component is not restored');
select pg_temp.act_as(pg_temp.uid('project_manager'));
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_2, component_type => 'valve', tag => 'V-1', size => '2')
        -> 'created' ->> 0)::bigint as v3_again \gset
reset role;
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.restore_components(component_ids => array[%s], reason => ''needed'')', :v3)),
    'PT409 duplicate_component', 'a component whose identity was taken meanwhile is not restored');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.restore_components(component_ids => array[%s], reason => ''needed after all'')', :v2)),
    'ok', 'restored');
select is((select array_agg(action order by id) from pipetrak.component_changes where component_id = :v2),
    array['correct', 'correct', 'correct', 'correct', 'retire', 'restore'], 'every correction, retirement and restoration is in the log');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.assign_component(component_id => %s, area_id => %s)', :v2, :area_2)),
    'ok', 'assigned on its own');
select is((select row(fields, after)::text from pipetrak.component_changes where component_id = :v2 order by id desc limit 1),
    row(array['area_id'], jsonb_build_object('area_id', :area_2))::text, 'assignment changes go in the same log');
select pg_temp.act_as(pg_temp.uid('project_manager'));
select pipetrak_api.assign_drawing(drawing_id => :drawing_a, area_id => :area_2) as moved \gset
reset role;
select is((select count(*) from pipetrak.component_changes where action = 'assign' and component_id in (:valve_a, :weld_a)), 2::bigint,
    'a drawing''s assignment logs each component that follows it');
select is(pg_temp.try_as('owner', 'update pipetrak.component_changes set reason = null'), '42501', 'no user updates the log');
select throws_ok('update pipetrak.component_changes set reason = null', 'PT403', null, 'nor the extension''s owner: it is append-only');
select throws_ok('delete from pipetrak.component_changes', 'PT403', null, 'nor deletes from it');

select is(pg_temp.matrix(format('select pg_temp.undone(''select pipetrak_api.correct_component(component_id => %s, changes => ''''{"description": "by %%1$s"}'''', reason => ''''a matrix'''')'')', :v2)),
    array['ok', 'ok', 'ok', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'correct_component: owners, admins, project managers');
select is(pg_temp.matrix(format('select pg_temp.undone(''select pipetrak_api.retire_components(component_ids => array[%s], reason => ''''a matrix'''')'')', :v2)),
    array['ok', 'ok', 'ok', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'retire_components: owners, admins, project managers');
select is(pg_temp.matrix(format('select pg_temp.undone(''select pipetrak_api.correct_components(corrections => ''''[{"component_id": %s, "spec": "by %%1$s"}]'''', reason => ''''a matrix'''')'')', :v2)),
    array['ok', 'ok', 'ok', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'correct_components: owners, admins, project managers');
select pg_temp.act_as(pg_temp.uid('project_manager'));
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_2, component_type => 'valve', tag => 'V-4', size => '2')
        -> 'created' ->> 0)::bigint as v4 \gset
select pipetrak_api.retire_components(component_ids => array[:v4], reason => 'for the matrix') as retired;
reset role;
select is(pg_temp.matrix(format('select pg_temp.undone(''select pipetrak_api.restore_components(component_ids => array[%s], reason => ''''a matrix'''')'')', :v4)),
    array['ok', 'ok', 'ok', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'restore_components: owners, admins, project managers');
select is(pg_temp.matrix('select pg_temp.undone(''select pipetrak_api.update_profile(display_name => ''''%1$s'''')'')'),
    array['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', '42501'], 'update_profile: every signed-in user, their own');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.component_changes where component_id = %s', :v2)),
    array['8', '8', '8', '8', '8', '8', '8', '0', '42501'], 'the change log: members only');

-- ---- Change events are queued per transaction ----
select is(pg_temp.error_of('foreman', format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Install'', value => 100)', :valve_a)),
    'ok', 'a milestone changes');
select ok(pipetrak.queued_changes() -> :'project_a' -> 'milestones' @> to_jsonb(:valve_a),
    'its component waits in this transaction''s queue, sent at commit');
select is(pg_temp.matrix('select pipetrak.queued_changes()'),
    array['42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501'], 'nobody reads the queue');
select is(pg_temp.matrix(format('select pipetrak.queue_change(%s, ''milestones'', array[1])', :project_a)),
    array['42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501'], 'nor adds to it');
select is(pg_temp.matrix(format('select pipetrak.notify_project(%s, ''{"kind": "changes"}'')', :project_a)),
    array['42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501'], 'nor signs one itself');
savepoint before_rollback;
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.update_milestone(component_id => :weld_a, milestone => 'Fit-up', value => 100) is not null as fitted;
reset role;
select ok(pipetrak.queued_changes() -> :'project_a' -> 'milestones' @> to_jsonb(:weld_a), 'a change inside a savepoint is queued');
rollback to savepoint before_rollback;
select ok(not (pipetrak.queued_changes() -> :'project_a' -> 'milestones' @> to_jsonb(:weld_a)), 'and forgotten when the savepoint rolls back');

select is(pg_temp.try_as('owner', 'select set_config(''pipetrak.change_events'', ''off'', true)'), '42501',
    'no user turns change events off');
savepoint events_off;
set local pipetrak.change_events = off;
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.update_milestone(component_id => :weld_a, milestone => 'Fit-up', value => 100) is not null as fitted;
reset role;
select ok(not (pipetrak.queued_changes() -> :'project_a' -> 'milestones' @> to_jsonb(:weld_a)),
    'a superuser can, for a database or role: then nothing is queued');
rollback to savepoint events_off;
select is(current_setting('pipetrak.change_events'), 'on', 'on by default');

-- Events split under NOTIFY's payload limit; a flood becomes one event of counts.
create temporary table events as
select e as event from unnest(pipetrak.change_events(jsonb_build_object(
    'milestones', (select jsonb_agg(1000000 + i) from generate_series(1, 2500) i),
    'welds', (select jsonb_agg(2000000 + i) from generate_series(1, 500) i)))) e;
select ok((select count(*) > 1 and max(length(jsonb_build_object('event', event || '{"project_id": 1234567890, "sent_at": "2026-11-30T08:30:00.123456+00:00"}', 'sig', repeat('f', 64))::text)) < 8000
           from events),
    'a project''s 3,000 ids go in several events, each under 8,000 bytes signed');
select is((select array_agg((event ->> 'part')::int order by (event ->> 'part')::int) from events),
    (select array_agg(n::int) from generate_series(1, (select count(*) from events)) n), 'numbered 1..parts');
select ok((select bool_and((event ->> 'parts')::int = (select count(*) from events)) from events), 'each saying how many parts there are');
select is((select count(*) from events e, jsonb_each(e.event -> 'changes') k, jsonb_array_elements(k.value) i), 3000::bigint, 'every id once');
select is(pipetrak.change_events(jsonb_build_object('imports', '[1]'::jsonb, 'milestones', (select jsonb_agg(i) from generate_series(1, 6000) i))),
    array['{"kind": "changes", "counts": {"imports": 1, "milestones": 6000}, "reload": true}'::jsonb],
    'more than 5,000 ids of a project become one event of counts: reload');

-- ---- Search ----
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.create_welder(project_id => :project_a, stencil => 'K-12', name => 'Kim Park') is not null as welder;
reset role;
select pg_temp.act_as(pg_temp.uid('project_manager'));
select count(pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_2, component_type => 'valve', tag => 'VBALU-' || i, size => '2'))
from generate_series(100, 130) i;
reset role;
select is(pg_temp.try_as('viewer', format('select string_agg(kind || '':'' || label, '','' order by score desc, label) from (select * from pipetrak_api.search(project_id => %s, query => ''vbalu-101'', max_results => 3)) s', :project_a)),
    'component:VBALU-101,component:VBALU-100,component:VBALU-102', 'an exact match first, then the closest (prefix or similar)');
select is(pg_temp.try_as('viewer', format('select label from pipetrak_api.search(project_id => %s, query => ''vbal-101'') limit 1', :project_a)),
    'VBALU-101', 'a code with a slip finds the code');
select is(pg_temp.try_as('viewer', format('select count(*) from pipetrak_api.search(project_id => %s, query => ''VBALU'')', :project_a)),
    '20', 'twenty results by default');
select is(pg_temp.try_as('viewer', format('select kind || '':'' || label from pipetrak_api.search(project_id => %s, query => ''w-1'') limit 1', :project_a)),
    'weld:W-1', 'a weld by its number');
select is(pg_temp.try_as('viewer', format('select kind || '':'' || label || '' '' || detail from pipetrak_api.search(project_id => %s, query => ''kim'') limit 1', :project_a)),
    'welder:K-12 Kim Park', 'a welder by name');
select is(pg_temp.try_as('viewer', format('select kind || '':'' || label from pipetrak_api.search(project_id => %s, query => ''p-100'') limit 1', :project_a)),
    'drawing:P-100 01of02', 'a drawing by its number');
select is(pg_temp.try_as('viewer', format('select kind || '':'' || label from pipetrak_api.search(project_id => %s, query => ''tp-1'') limit 1', :project_a)),
    'package:TP-1', 'a test package by name');
select is(pg_temp.try_as('viewer', format('select count(*) from pipetrak_api.search(project_id => %s, query => ''VBALU_10'') where score >= 2', :project_a)),
    '0', 'LIKE wildcards in a query are plain characters: VBALU_10 is no prefix of VBALU-101');
select is(pg_temp.matrix(format('select count(*) > 0 from pipetrak_api.search(project_id => %s, query => ''V-1'')', :project_a)),
    array['true', 'true', 'true', 'true', 'true', 'true', 'true', 'PT404', '42501'], 'search: members; an outsider finds no project');
select is((select string_agg(a, ', ') from unnest(array['owner', 'foreman', 'viewer']) a
           where pg_temp.try_as(a, format('select count(*) from pipetrak_api.search(project_id => %s, query => ''V'', max_results => 100) s
                                           where s.kind in (''component'', ''weld'') and s.id not in (select id from pipetrak_api.components)', :project_a)) <> '0'),
    null, 'what search finds is what row-level security lets the reader see');
select is(pg_temp.error_of('outsider', format('select * from pipetrak_api.search(project_id => %s, query => ''V-1'')', :project_a)),
    'PT404 project_not_found', 'the outsider learns nothing of another organization''s project');
select is(pg_temp.error_of('viewer', format('select * from pipetrak_api.search(project_id => %s, query => '' '')', :project_a)),
    'PT400 invalid_argument', 'an empty query is refused');

-- Each kind a screen shows is queued by what changes it.
select pg_temp.act_as(pg_temp.uid('project_manager'));
select count(*) from (select pipetrak_api.update_test_package(test_package_id => :package_a, test_type => 'In-service')) x;
select pipetrak_api.import_upload(project_id => :project_a, kind => 'takeoff', filename => 'one.csv',
       content => convert_to(E'DRAWING,TYPE,QTY,CMDTY CODE,SIZE\nP-100,Valve,1,V-9,2\n', 'UTF8')) as upload \gset
reset role;
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select count(*) from (select pipetrak_api.start_stage(test_package_id => :package_a, stage => (
    select stage from pipetrak.package_stages where test_package_id = :package_a order by position limit 1))) x;
select pipetrak_api.assign_welder(component_id => :weld_a, stencil => 'K-12', date_welded => current_date - 1) is not null as welded;
reset role;
select is((select array_agg(k order by k) from jsonb_object_keys(pipetrak.queued_changes() -> :'project_a') k),
    array['components', 'imports', 'milestones', 'packages', 'review_items', 'welds'], 'every kind of change is queued');
select ok(pipetrak.queued_changes() -> :'project_a' -> 'packages' @> to_jsonb(:package_a), 'a package''s attributes and stages by its id');
select ok(pipetrak.queued_changes() -> :'project_a' -> 'imports' @> to_jsonb(:upload), 'an import by its id');
select ok(pipetrak.queued_changes() -> :'project_a' -> 'welds' @> to_jsonb(:weld_a), 'a weld by its component id');

-- ---- Plain PostgreSQL: no Supabase, nothing installed, nothing fails ----
select is(pipetrak.install_platform(), '{}'::text[], 'without Supabase''s schemas install_platform installs nothing');
select is(to_regclass('pipetrak_api.attachments'), null, 'and there is no attachments view');

-- ---- Deleting an organization removes everything of it, and nothing else ----
-- Rows per table holding a project_id, of one project.
create function pg_temp.rows_of(p_project_id bigint) returns table (relname text, n bigint) language plpgsql as $$
declare
    v_table text;
begin
    for v_table in select c.relname from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attname = 'project_id' and not a.attisdropped
                   where c.relnamespace = 'pipetrak'::regnamespace and c.relkind = 'r' order by 1 loop
        relname := v_table;
        execute format('select count(*) from pipetrak.%I where project_id = $1', v_table) into n using p_project_id;
        return next;
    end loop;
end $$;
create temporary table project_b_rows as select * from pg_temp.rows_of(:project_b);
select is(pg_temp.error_of('owner', format('select pipetrak_api.delete_organization(organization_id => %s, confirm_name => ''Org A'')', :org_a)),
    'ok', 'the owner deletes the organization, naming it exactly');
select is((select string_agg(relname, ', ') from pg_temp.rows_of(:project_a) where n > 0), null, 'no table keeps a row of its project');
select is((select count(*) from pipetrak.memberships where organization_id = :org_a) + (select count(*) from pipetrak.invitations where organization_id = :org_a)
          + (select count(*) from pipetrak.organizations where id = :org_a), 0::bigint, 'nor of its members, invitations or itself');
select is((select string_agg(b.relname, ', ') from project_b_rows b join pg_temp.rows_of(:project_b) now using (relname) where now.n <> b.n),
    null, 'another organization''s project keeps every row');
select ok((select sum(n) from project_b_rows) > 0, 'which has rows to keep');

-- Metrics for a DBA: what they count is what the tables hold; no user role runs them.
select is((pipetrak.metrics() -> 'overall' ->> 'components')::bigint,
          (select count(*) from pipetrak.components where retired_at is null),
          'metrics count the live components of every project');
select is((select (p ->> 'components')::bigint from jsonb_array_elements(pipetrak.metrics() -> 'projects') p
           where (p ->> 'project_id')::bigint = (select min(id) from pipetrak.projects)),
          (select count(*) from pipetrak.components where retired_at is null and project_id = (select min(id) from pipetrak.projects)),
          'and of each project');
select is(array[pg_temp.try_as('owner', 'select pipetrak.metrics()::text'), pg_temp.try_as('anon', 'select pipetrak.metrics()::text')],
          array['42501', '42501'], 'no user role reads the metrics of every tenant');
-- The snapshot schedule is opt-in and needs pg_cron (tests/scripts/cron_test.sh runs it with one).
select throws_ok('select pipetrak.schedule_snapshots()', 'PT424', 'pg_cron is not installed in this database',
                 'scheduling snapshots without pg_cron says what is missing');

select * from finish();
rollback;
