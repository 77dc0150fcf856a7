//! Realtime event signatures (see `sql/11_events.sql`).

use crate::domain::event;
use pgrx::prelude::*;

/// HMAC-SHA256 of `body` under `key`, as hex.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn event_signature(key: &[u8], body: &str) -> String {
    event::signature(key, body)
}

/// The NOTIFY payload of an event: `{"sig": …, "event": …}`, the signature over exactly
/// `event_text` under `key`. notify_project and the change events both send this shape.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn signed_payload(key: &[u8], event_text: &str) -> String {
    event::signed_payload(key, event_text)
}

/// The event text of a payload when it is exactly one `signed_payload` made under `key` (shape and
/// signature over those bytes); NULL otherwise.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn signed_event_text(key: &[u8], payload: &str) -> Option<String> {
    event::signed_event(key, payload).map(str::to_string)
}
