//! Realtime event signatures (see `sql/11_events.sql`).

use crate::domain::event;
use pgrx::prelude::*;

/// HMAC-SHA256 of `body` under `key`, as hex.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn event_signature(key: &[u8], body: &str) -> String {
    event::signature(key, body)
}
