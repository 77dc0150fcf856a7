//! Signatures of realtime events: HMAC-SHA256 of the event's text under a project's signing key,
//! as lowercase hex. Anyone who knows a channel can NOTIFY into it; only the database knows the key.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::fmt::Write;

/// The signature of `body` under `key`.
pub fn signature(key: &[u8], body: &str) -> String {
    // HMAC takes a key of any length, so `new_from_slice` can't fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

/// `value` as PostgreSQL prints a `jsonb`: object keys shorter first, then in byte order, ", "
/// between items and ": " after keys. A signature covers the event's jsonb text, so an event
/// signed here checks out in `pipetrak.event_is_genuine`.
pub fn jsonb_text(value: &Value) -> String {
    let mut text = String::new();
    write_jsonb(&mut text, value);
    text
}

fn write_jsonb(text: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| {
                a.len()
                    .cmp(&b.len())
                    .then_with(|| a.as_bytes().cmp(b.as_bytes()))
            });
            text.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                write_string(text, key);
                text.push_str(": ");
                write_jsonb(text, &map[key]);
            }
            text.push('}');
        }
        Value::Array(items) => {
            text.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                write_jsonb(text, item);
            }
            text.push(']');
        }
        Value::String(s) => write_string(text, s),
        other => text.push_str(&other.to_string()),
    }
}

/// A JSON string as PostgreSQL escapes it.
fn write_string(text: &mut String, s: &str) {
    text.push('"');
    for c in s.chars() {
        match c {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            '\u{8}' => text.push_str("\\b"),
            '\u{c}' => text.push_str("\\f"),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            '\t' => text.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(text, "\\u{:04x}", c as u32);
            }
            c => text.push(c),
        }
    }
    text.push('"');
}

/// The NOTIFY payload of an event whose jsonb text is `event_text`: `{"sig": …, "event": …}`, as
/// `pipetrak.notify_project` sends it.
pub fn signed_payload(signing_key: &[u8], event_text: &str) -> String {
    format!(
        r#"{{"sig": "{}", "event": {event_text}}}"#,
        signature(signing_key, event_text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_jsonb_as_postgresql_does() {
        // What `select '{…}'::jsonb::text` prints for these values.
        assert_eq!(
            jsonb_text(
                &json!({"sent_at": "2026-11-30T08:51:58.166339+00:00", "kind": "changes", "part": 1,
                               "parts": 1, "changes": {"milestones": [5, 6], "welds": [], "components": [7]},
                               "project_id": 7})
            ),
            r#"{"kind": "changes", "part": 1, "parts": 1, "changes": {"welds": [], "components": [7], "milestones": [5, 6]}, "sent_at": "2026-11-30T08:51:58.166339+00:00", "project_id": 7}"#
        );
        assert_eq!(
            jsonb_text(&json!({"a\"b": "x\\y\n\u{1}", "t": true, "n": null})),
            r#"{"n": null, "t": true, "a\"b": "x\\y\n\u0001"}"#
        );
    }

    #[test]
    fn matches_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn another_key_or_body_gives_another_signature() {
        let genuine = signature(&[7; 32], r#"{"kind": "import_progress"}"#);
        assert_ne!(
            genuine,
            signature(&[8; 32], r#"{"kind": "import_progress"}"#)
        );
        assert_ne!(
            genuine,
            signature(&[7; 32], r#"{"kind": "import_progress "}"#)
        );
        assert_eq!(genuine.len(), 64);
    }
}
