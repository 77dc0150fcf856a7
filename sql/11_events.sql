-- Realtime events (spec: realtime). NOTIFY reaches anyone who LISTENs on a channel's name, member
-- or not, and anyone who knows a name can NOTIFY into it. So each project's channel name is
-- derived from a secret key and handed out only to members (project_channel), and every payload
-- is signed with a second key no SQL user can read: event_is_genuine tells the extension's events
-- from forged ones. Payloads carry kinds, ids and counts, never row data.

-- 32 bytes from the server's strong random source (gen_random_uuid uses it), hashed together.
create function pipetrak.random_key()
returns bytea
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
    select sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8'))
$$;

-- The channel name a channel key stands for (49 characters, below the 63 a name may have).
-- No search_path of its own, so the planner inlines it (built-in functions only): the sender
-- reads it at every commit that queued events, and a SQL function it can't inline is planned
-- again in each transaction.
create function pipetrak.channel_name(p_channel_key bytea)
returns text
language sql immutable parallel safe
as $$
    select 'pipetrak_' || left(encode(sha256(p_channel_key), 'hex'), 40)
$$;

-- The project's channel, for its members only (others: project_not_found).
create function pipetrak.project_channel(p_project_id bigint)
returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.require_project_role(p_project_id, 'read');
    return (select pipetrak.channel_name(s.channel_key) from pipetrak.project_secrets s where s.project_id = p_project_id);
end
$$;

-- Sends `p_event` ({kind, ids, counts}) on the project's channel as {"sig": …, "event": …}; the
-- signature covers the event's text exactly as sent. Delivered when the transaction commits.
create function pipetrak.notify_project(p_project_id bigint, p_event jsonb)
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

-- True when `p_payload` is, byte for byte, an event the extension sent on this project's channel
-- (for members; others: project_not_found): the signature is checked over the event text taken
-- verbatim from the payload (`domain::event`), so keys added, repeated or reordered make it not
-- genuine. No NOTIFY carries 8000 bytes: a longer payload is refused before any work.
create function pipetrak.event_is_genuine(p_project_id bigint, p_payload text)
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

-- New channel and signing keys for every project of an organization (someone left it and knew
-- the old ones). Listeners on the old channel get a last signed event telling them to ask again.
create function pipetrak.rotate_project_secrets(p_organization_id bigint)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project_id bigint;
begin
    for v_project_id in select p.id from pipetrak.projects p where p.organization_id = p_organization_id order by p.id loop
        perform pipetrak.notify_project(v_project_id, '{"kind": "channel_rotated"}');
        update pipetrak.project_secrets
        set channel_key = pipetrak.random_key(), signing_key = pipetrak.random_key(), rotated_at = now()
        where project_id = v_project_id;
    end loop;
end
$$;

create function pipetrak_api.project_channel(project_id bigint)
returns text
language sql stable security invoker
as $$ select pipetrak.project_channel(project_id) $$;
comment on function pipetrak_api.project_channel(bigint) is
    'The project''s NOTIFY channel (members only): LISTEN on it for {"event": {kind, ids, counts}, "sig"} payloads. It changes when someone leaves the organization (a last "channel_rotated" event says so).';

create function pipetrak_api.event_is_genuine(project_id bigint, payload text)
returns boolean
language sql stable security invoker
as $$ select pipetrak.event_is_genuine(project_id, pipetrak.limited('payload', payload)) $$;
comment on function pipetrak_api.event_is_genuine(bigint, text) is
    'True when a payload received on the project''s channel was sent by pipetrak (its signature checks out); anyone who knows a channel can NOTIFY into it.';
