//! Signatures of realtime events: HMAC-SHA256 of the event's text under a project's signing key,
//! as lowercase hex. Anyone who knows a channel can NOTIFY into it; only the database knows the key.
//!
//! A payload is `{"sig": "<64 hex>", "event": <event text>}` and the signature covers the event
//! text exactly as sent. Verifying takes that text verbatim from the payload — never a parse of
//! it — so what is verified is byte for byte what every client reads: a payload with keys added,
//! repeated or reordered is not genuine, whatever a client's JSON parser would make of it.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt::Write;

/// The largest payload a NOTIFY carries (PostgreSQL refuses 8000 bytes and more).
pub const MAX_PAYLOAD_BYTES: usize = 7999;

const PREFIX: &str = r#"{"sig": ""#;
const MIDDLE: &str = r#"", "event": "#;
const SIGNATURE_HEX: usize = 64;

fn mac(key: &[u8], body: &str) -> Option<Hmac<Sha256>> {
    // HMAC takes a key of any length, so `new_from_slice` doesn't fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(body.as_bytes());
    Some(mac)
}

/// The signature of `body` under `key`.
pub fn signature(key: &[u8], body: &str) -> String {
    mac(key, body).map_or_else(String::new, |m| hex(&m.finalize().into_bytes()))
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

/// Bytes of lowercase hex (None for anything else).
fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => Some(digit(*high)? << 4 | digit(*low)?),
            _ => None,
        })
        .collect()
}

/// The NOTIFY payload of the event `event_text`: `{"sig": …, "event": …}`, signed over exactly
/// that text.
pub fn signed_payload(signing_key: &[u8], event_text: &str) -> String {
    format!(
        "{PREFIX}{}{MIDDLE}{event_text}}}",
        signature(signing_key, event_text)
    )
}

/// The event text of `payload` when it is exactly what `signed_payload` makes under `key` (its
/// shape, and a signature over those very bytes, compared in constant time); None otherwise.
pub fn signed_event<'a>(key: &[u8], payload: &'a str) -> Option<&'a str> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return None;
    }
    let rest = payload.strip_prefix(PREFIX)?;
    let signature = unhex(rest.get(..SIGNATURE_HEX)?)?;
    let event = rest
        .get(SIGNATURE_HEX..)?
        .strip_prefix(MIDDLE)?
        .strip_suffix('}')?;
    mac(key, event)?.verify_slice(&signature).ok()?;
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_payload_verifies_as_sent_and_only_so() {
        let key = [7; 32];
        let event = r#"{"kind": "changes", "project_id": 7}"#;
        let payload = signed_payload(&key, event);
        assert_eq!(signed_event(&key, &payload), Some(event));
        assert_eq!(signed_event(&[8; 32], &payload), None);
        // A key added in front (a parser keeping the first of two "kind"s would act on it), a
        // space, another order: not genuine, though each parses to an object.
        let forged = payload.replace(
            r#"{"kind": "changes""#,
            r#"{"kind": "project_deleted", "kind": "changes""#,
        );
        assert_eq!(signed_event(&key, &forged), None);
        assert_eq!(signed_event(&key, &payload.replace("\": ", "\":")), None);
        let reordered = format!(
            r#"{{"event": {event}, "sig": "{}"}}"#,
            signature(&key, event)
        );
        assert_eq!(signed_event(&key, &reordered), None);
        assert_eq!(signed_event(&key, &format!("{payload} ")), None);
        assert_eq!(signed_event(&key, "not json"), None);
        assert_eq!(signed_event(&key, &"x".repeat(MAX_PAYLOAD_BYTES + 1)), None);
    }

    #[test]
    fn a_signature_in_other_case_or_length_is_not_one() {
        let key = [7; 32];
        let payload = signed_payload(&key, "{}");
        let upper = payload.replacen(
            &signature(&key, "{}"),
            &signature(&key, "{}").to_uppercase(),
            1,
        );
        assert_eq!(signed_event(&key, &upper), None);
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("00ff"), Some(vec![0, 255]));
    }
}
