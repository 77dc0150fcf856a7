//! Realtime event signatures (see `sql/11_events.sql`).

use crate::domain::event;
use pgrx::prelude::*;

/// HMAC-SHA256 of `body` under `key`, as hex.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn event_signature(key: &[u8], body: &str) -> String {
    event::signature(key, body)
}

/// The NOTIFY payload of an event: `{"sig": …, "event": …}`, the signature over `event_text` (the
/// event's jsonb text) under `key`. notify_project and the change events both send this shape.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn signed_payload(key: &[u8], event_text: &str) -> String {
    event::signed_payload(key, event_text)
}
