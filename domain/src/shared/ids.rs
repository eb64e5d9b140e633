//! Deterministic ids derived from command ids, so a redelivered command produces the same
//! hold, booking or audit entry and the unique `_id` index rejects the second insert.

use bson::oid::ObjectId;
use sha2::{Digest, Sha256};

/// An ObjectId whose first four bytes are `unix_secs` (so ids still sort by time, as
/// ObjectIds do) and whose last eight are a hash of `kind` and `key`.
pub fn derive_object_id(kind: &str, key: &str, unix_secs: i64) -> ObjectId {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0u8]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 12];
    // ObjectId timestamps are u32 seconds; clamp instead of wrapping.
    let secs = unix_secs.clamp(0, u32::MAX as i64) as u32;
    bytes[..4].copy_from_slice(&secs.to_be_bytes());
    bytes[4..].copy_from_slice(&digest[..8]);
    ObjectId::from_bytes(bytes)
}

/// Parses a 24-hex-digit ObjectId, the only id form the API accepts.
pub fn parse_object_id(s: &str) -> Option<ObjectId> {
    if s.len() != 24 {
        return None;
    }
    ObjectId::parse_str(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_gives_the_same_id_and_another_key_another() {
        let a = derive_object_id("hold", "cmd-1", 1_700_000_000);
        assert_eq!(a, derive_object_id("hold", "cmd-1", 1_700_000_000));
        assert_ne!(a, derive_object_id("hold", "cmd-2", 1_700_000_000));
        assert_ne!(a, derive_object_id("booking", "cmd-1", 1_700_000_000));
        assert_eq!(a.timestamp().timestamp_millis(), 1_700_000_000_000);
    }

    #[test]
    fn only_24_hex_digits_parse() {
        assert!(parse_object_id("65f0a0a0a0a0a0a0a0a0a0a0").is_some());
        assert!(parse_object_id("65f0a0a0a0a0a0a0a0a0a0a").is_none());
        assert!(parse_object_id("zzzzzzzzzzzzzzzzzzzzzzzz").is_none());
        assert!(parse_object_id("").is_none());
    }
}
