//! Signatures of realtime events: HMAC-SHA256 of the event's text under a project's signing key,
//! as lowercase hex. Anyone who knows a channel can NOTIFY into it; only the database knows the key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature of `body` under `key`.
pub fn signature(key: &[u8], body: &str) -> String {
    // HMAC takes a key of any length, so `new_from_slice` can't fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
}
