-- Change events (spec §8, §12): every committed change a screen shows is announced once per
-- transaction on the project's channel (see 11_events.sql for the channel and the signature).
--
-- How: statement triggers on the tables a screen reads queue the ids each statement changed in
-- `pending_changes`; a deferred constraint trigger on that table runs at commit, gathers the
-- transaction's rows into one event per project — {"kind": "changes", "changes": {kind: [ids]},
-- "part": n, "parts": m} — sends it and clears the rows. Its later firings in the same transaction
-- find nothing left. A savepoint rolled back takes its queued rows with it, so what is announced
-- is what committed.
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

create unlogged table pipetrak.pending_changes (
    txid       xid8 not null default pg_current_xact_id(),
    project_id bigint not null,
    kind       text not null,
    ids        bigint[] not null
);
create index pending_changes_txid_idx on pipetrak.pending_changes (txid);
alter table pipetrak.pending_changes enable row level security;

-- Queues what a statement changed on one of the watched tables (transition table `changed`).
create function pipetrak.queue_changes()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    -- One static statement per table, so each keeps its plan for the session.
    if tg_table_name = 'milestone_events' then
        insert into pipetrak.pending_changes (project_id, kind, ids)
        select project_id, 'milestones', array_agg(component_id) from changed group by project_id;
    elsif tg_table_name = 'field_welds' then
        insert into pipetrak.pending_changes (project_id, kind, ids)
        select project_id, 'welds', array_agg(component_id) from changed group by project_id;
    elsif tg_table_name = 'test_packages' then
        insert into pipetrak.pending_changes (project_id, kind, ids)
        select project_id, 'packages', array_agg(id) from changed group by project_id;
    elsif tg_table_name = 'package_events' then
        insert into pipetrak.pending_changes (project_id, kind, ids)
        select project_id, 'packages', array_agg(test_package_id) from changed group by project_id;
    elsif tg_table_name in ('package_stages', 'package_certificates') then
        insert into pipetrak.pending_changes (project_id, kind, ids)
        select project_id, 'packages', array_agg(test_package_id) from changed group by project_id;
    elsif tg_table_name = 'stage_signoffs' then
        insert into pipetrak.pending_changes (project_id, kind, ids)
        select c.project_id, 'packages', array_agg(s.test_package_id)
        from changed c join pipetrak.package_stages s on s.id = c.stage_id group by c.project_id;
    elsif tg_table_name = 'import_jobs' then
        insert into pipetrak.pending_changes (project_id, kind, ids)
        select project_id, 'imports', array_agg(id) from changed group by project_id;
    elsif tg_table_name = 'review_items' then
        insert into pipetrak.pending_changes (project_id, kind, ids)
        select project_id, 'review_items', array_agg(id) from changed group by project_id;
    elsif tg_table_name = 'component_changes' then
        insert into pipetrak.pending_changes (project_id, kind, ids)
        select project_id, 'components', array_agg(component_id) from changed group by project_id;
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

-- The events of transaction `p_txid`'s queued changes, per project: parts of at most about 7,000
-- bytes of ids (an id takes its digits and ", " in the JSON array), or one event of counts when the
-- project has more than 5,000 ids.
create function pipetrak.change_events(p_txid xid8)
returns table (project_id bigint, event jsonb)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    with changed as (
        select distinct p.project_id, p.kind, u.id
        from pipetrak.pending_changes p cross join lateral unnest(p.ids) as u(id)
        where p.txid = p_txid
    ), counted as (
        select c.*, count(*) over (partition by c.project_id) as total,
               sum(length(c.id::text) + 2) over (partition by c.project_id order by c.kind, c.id) / 7000 as part
        from changed c
    ), small as (
        select project_id, part, kind, array_agg(id order by id) as ids
        from counted where total <= 5000 group by project_id, part, kind
    ), parts as (
        select project_id, part, jsonb_object_agg(kind, to_jsonb(ids)) as changes
        from small group by project_id, part
    )
    select project_id, event from (
        select project_id, part, jsonb_build_object('kind', 'changes', 'changes', changes,
                   'part', row_number() over (partition by project_id order by part),
                   'parts', count(*) over (partition by project_id)) as event
        from parts
        union all
        select project_id, 0, jsonb_build_object('kind', 'changes', 'reload', true, 'counts', jsonb_object_agg(kind, n))
        from (select project_id, kind, count(*) as n from counted where total > 5000 group by project_id, kind) big
        group by project_id
    ) e
    order by project_id, part
$$;

-- Sends a transaction's queued changes, at its commit. Security definer: it runs at commit as the
-- caller, outside the API function that queued them, and reads what no caller may.
create function pipetrak.announce_changes()
returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_change record;
    v_send boolean;
begin
    if not exists (select from pipetrak.pending_changes where txid = new.txid) then
        return null;
    end if;
    v_send := to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null;
    for v_change in select * from pipetrak.change_events(new.txid) loop
        perform pipetrak.notify_project(v_change.project_id, v_change.event);
        if v_send then
            execute 'select realtime.send($1, $2, $3, true)'
            using v_change.event || jsonb_build_object('project_id', v_change.project_id), 'changes', 'project:' || v_change.project_id;
        end if;
    end loop;
    delete from pipetrak.pending_changes where txid = new.txid;
    return null;
end
$$;

create constraint trigger pending_changes_announce after insert on pipetrak.pending_changes
    deferrable initially deferred
    for each row execute function pipetrak.announce_changes();
