-- Change events (spec §8, §12): every committed change a screen shows is announced once per
-- transaction on the project's channel (see 11_events.sql for the channel and the signature).
--
-- How: statement triggers on the tables a screen reads hand the ids each statement changed to
-- pipetrak.queue_change, which keeps them in the backend (src/pg/changes.rs) with the
-- subtransaction that made them. Just before the transaction commits, they become one event per
-- project — {"kind": "changes", "changes": {kind: [ids]}, "part": n, "parts": m} — signed as
-- notify_project signs an event and put in the event outbox; once the transaction has committed,
-- the database's event sender (a background worker, src/pg/sender.rs) NOTIFYs them, so writers
-- never queue on the lock PostgreSQL holds for a notifying transaction's commit. Where no sender
-- can start, the writer NOTIFYs them itself. A savepoint rolled back takes its changes with it,
-- an aborted transaction all of them (and its outbox rows), so what is announced is what
-- committed.
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

-- Events waiting for the database's event sender (src/pg/sender.rs): a committing writer puts its
-- signed events here instead of NOTIFYing (PostgreSQL lets one notifying transaction commit at a
-- time), and the sender NOTIFYs and deletes them once the writer has committed. Unlogged: an event
-- is news, not a record (a crash may drop the last ones; screens reload on reconnect).
create unlogged table pipetrak.event_outbox (
    id      bigint generated always as identity primary key,
    channel text not null,
    payload text not null
);
-- The database's running sender, for writers to find and wake it.
create unlogged table pipetrak.event_sender (
    pid        integer not null,
    started_at timestamptz not null
);
alter table pipetrak.event_outbox enable row level security;
alter table pipetrak.event_sender enable row level security;

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
