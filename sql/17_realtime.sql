-- Change events (spec §8, §12): every committed change a screen shows is announced once per
-- transaction on the project's channel (see 11_events.sql for the channel and the signature).
--
-- How: a row trigger on each table a screen reads (pipetrak.announce_change, its arguments the
-- kind and the column of the id) keeps each changed row's id in the backend (src/pg/changes.rs)
-- with the subtransaction that made it. Just before the transaction commits, they become one
-- event per project — {"kind": "changes", "changes": {kind: [ids]}, "part": n, "parts": m} — signed as
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

create trigger milestone_events_announce after insert on pipetrak.milestone_events
    for each row execute function pipetrak.announce_change('milestones', 'component_id');
create trigger field_welds_announce_insert after insert on pipetrak.field_welds
    for each row execute function pipetrak.announce_change('welds', 'component_id');
create trigger field_welds_announce_update after update on pipetrak.field_welds
    for each row execute function pipetrak.announce_change('welds', 'component_id');
create trigger test_packages_announce_insert after insert on pipetrak.test_packages
    for each row execute function pipetrak.announce_change('packages', 'id');
create trigger test_packages_announce_update after update on pipetrak.test_packages
    for each row execute function pipetrak.announce_change('packages', 'id');
create trigger package_events_announce after insert on pipetrak.package_events
    for each row execute function pipetrak.announce_change('packages', 'test_package_id');
create trigger package_stages_announce_insert after insert on pipetrak.package_stages
    for each row execute function pipetrak.announce_change('packages', 'test_package_id');
create trigger package_stages_announce_update after update on pipetrak.package_stages
    for each row execute function pipetrak.announce_change('packages', 'test_package_id');
create trigger stage_signoffs_announce_insert after insert on pipetrak.stage_signoffs
    for each row execute function pipetrak.announce_change('packages', 'stage_id');
create trigger stage_signoffs_announce_update after update on pipetrak.stage_signoffs
    for each row execute function pipetrak.announce_change('packages', 'stage_id');
create trigger package_certificates_announce_insert after insert on pipetrak.package_certificates
    for each row execute function pipetrak.announce_change('packages', 'test_package_id');
create trigger package_certificates_announce_update after update on pipetrak.package_certificates
    for each row execute function pipetrak.announce_change('packages', 'test_package_id');
create trigger import_jobs_announce_insert after insert on pipetrak.import_jobs
    for each row execute function pipetrak.announce_change('imports', 'id');
create trigger import_jobs_announce_update after update on pipetrak.import_jobs
    for each row execute function pipetrak.announce_change('imports', 'id');
create trigger review_items_announce_insert after insert on pipetrak.review_items
    for each row execute function pipetrak.announce_change('review_items', 'id');
create trigger review_items_announce_update after update on pipetrak.review_items
    for each row execute function pipetrak.announce_change('review_items', 'id');
create trigger component_changes_announce after insert on pipetrak.component_changes
    for each row execute function pipetrak.announce_change('components', 'component_id');
