//! Signed revocation lists: the tickets of one event that a gate must refuse although
//! their QR signature is good (cancelled tickets, invalidated QR codes), so a gate with
//! no network refuses them too.
//!
//! `GET /v1/events/{id}/revocations?since=<version>` answers a [`SignedRevocations`]:
//!
//! ```json
//! {"format": "TRL1", "kid": "...", "alg": "Ed25519", "payload": "<base64url>", "signature": "<base64url>"}
//! ```
//!
//! - `payload` is base64url (no padding) of the JSON of a [`RevocationList`]: the event,
//!   `since` (the version asked from), `version` (the list's version now: ask with
//!   `since=<version>` next time) and the entries newer than `since`;
//! - `signature` is the Ed25519 signature, by the QR key `kid`, of the text
//!   `TRL1.<kid>.<payload>`: the same construction as a QR string (`T1.<kid>.<payload>`,
//!   see [`crate::tickets::qr`]), verified with the same keys (`GET /v1/scan-keys`). The first part
//!   differs (`TRL1` against `T1`), so a list's signature can never pass as a ticket's,
//!   nor a ticket's as a list's.
//!
//! NOTE: the signature covers the payload's bytes as sent, not a re-encoding, so a gate in
//! any language checks it without reproducing anyone's JSON formatting.
//!
//! A version is the EVENTS stream sequence of the domain event that revoked the entry: it
//! only grows, no two domain events share one, and a list rebuilt by replaying the stream
//! gets the same versions again. A list's `version` says that every entry up to it is in
//! the list (the projection writing the entries has applied every event up to it).

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

use crate::tickets::qr::{QrError, QrSigner, QrVerifier, ALGORITHM};

/// The format tag, the first part of the signed text.
pub const LIST_FORMAT: &str = "TRL1";

/// One revoked ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationEntry {
    /// The EVENTS sequence of the domain event that revoked it.
    pub version: u64,
    /// The ticket (`ticketId` of its QR payload), 24 hex digits.
    pub ticket_id: String,
    /// Its QR code document.
    pub qr_code_id: Option<String>,
    /// SHA-256 (hex) of the QR string invalidated, when the ticket was issued by then.
    pub qr_sha256: Option<String>,
    pub booking_id: Option<String>,
    pub ticket_number: Option<String>,
    /// Why: `user_requested`, `event_cancelled`, ... (the booking's cancellation reason).
    pub reason: String,
    /// When, RFC 3339.
    pub revoked_at: String,
}

/// What a signed list says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationList {
    /// The event, 24 hex digits.
    pub event_id: String,
    /// The entries are those newer than this version (0: the whole list).
    pub since: u64,
    /// Every entry up to this version is in the list (with those of earlier lists).
    pub version: u64,
    /// When the list was signed, RFC 3339.
    pub issued_at: String,
    /// Oldest first.
    pub entries: Vec<RevocationEntry>,
}

/// A list as sent: its payload and signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedRevocations {
    /// Always `TRL1`.
    pub format: String,
    pub kid: String,
    /// Always `Ed25519`.
    pub alg: String,
    /// base64url of the list's JSON.
    pub payload: String,
    /// base64url of the Ed25519 signature of `TRL1.<kid>.<payload>`.
    pub signature: String,
}

/// Why a list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    #[error("revocation list format `{0}` is not supported")]
    UnsupportedFormat(String),
    #[error("the revocation list's signature does not verify: {0}")]
    Signature(QrError),
    #[error("the revocation list is malformed: {0}")]
    Malformed(String),
    #[error("the revocation lists do not chain: {0}")]
    Chain(String),
}

impl RevocationError {
    /// A short, stable name for the refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            RevocationError::UnsupportedFormat(_) => "unsupported_format",
            RevocationError::Signature(e) => e.reason(),
            RevocationError::Malformed(_) => "malformed",
            RevocationError::Chain(_) => "not_chained",
        }
    }
}

fn malformed(m: impl Into<String>) -> RevocationError {
    RevocationError::Malformed(m.into())
}

fn signed_text(kid: &str, payload: &str) -> String {
    format!("{LIST_FORMAT}.{kid}.{payload}")
}

impl SignedRevocations {
    /// `list`, signed by `signer`.
    pub fn sign(signer: &QrSigner, list: &RevocationList) -> SignedRevocations {
        let json = serde_json::to_vec(list).expect("a list always serializes");
        let payload = URL_SAFE_NO_PAD.encode(json);
        let kid = signer.kid().as_str().to_string();
        let signature = signer.sign_text(&signed_text(&kid, &payload));
        SignedRevocations {
            format: LIST_FORMAT.into(),
            kid,
            alg: ALGORITHM.into(),
            payload,
            signature,
        }
    }

    /// The list, once its signature verifies with one of `keys` and its content is
    /// well formed; nothing of an unverified list is read.
    pub fn open(&self, keys: &QrVerifier) -> Result<RevocationList, RevocationError> {
        if self.format != LIST_FORMAT {
            return Err(RevocationError::UnsupportedFormat(self.format.clone()));
        }
        if self.alg != ALGORITHM {
            return Err(malformed(format!("alg {} is not {ALGORITHM}", self.alg)));
        }
        keys.verify_text(
            &self.kid,
            &signed_text(&self.kid, &self.payload),
            &self.signature,
        )
        .map_err(RevocationError::Signature)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.payload)
            .map_err(|_| malformed("payload is not base64url"))?;
        let list: RevocationList =
            serde_json::from_slice(&bytes).map_err(|e| malformed(format!("payload: {e}")))?;
        list.check()?;
        Ok(list)
    }
}

impl RevocationList {
    /// The event as an id.
    pub fn event(&self) -> Result<ObjectId, RevocationError> {
        ObjectId::parse_str(&self.event_id).map_err(|_| malformed("eventId is not an id"))
    }

    fn check(&self) -> Result<(), RevocationError> {
        self.event()?;
        if self.since > self.version {
            return Err(malformed(format!(
                "since {} is after version {}",
                self.since, self.version
            )));
        }
        for e in &self.entries {
            ObjectId::parse_str(&e.ticket_id)
                .map_err(|_| malformed(format!("ticketId {:?} is not an id", e.ticket_id)))?;
            if e.version <= self.since || e.version > self.version {
                return Err(malformed(format!(
                    "entry {} has version {}, outside ({}, {}]",
                    e.ticket_id, e.version, self.since, self.version
                )));
            }
        }
        Ok(())
    }
}

/// The revocations of one event a gate holds: a whole list (`since` 0) and the lists
/// since, each starting where the one before ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Revocations {
    event_id: ObjectId,
    version: u64,
    by_ticket: HashMap<ObjectId, RevocationEntry>,
    by_qr: HashMap<String, ObjectId>,
}

impl Revocations {
    /// Joins verified lists, in order. The first must be whole (`since` 0) and each next
    /// one start at the version of the one before: a gate missing a piece would let a
    /// revoked ticket in while saying it checked.
    pub fn from_lists(lists: &[RevocationList]) -> Result<Revocations, RevocationError> {
        let first = lists
            .first()
            .ok_or_else(|| RevocationError::Chain("no list".into()))?;
        if first.since != 0 {
            return Err(RevocationError::Chain(format!(
                "the first list starts at version {}, not 0: download the whole list (since=0)",
                first.since
            )));
        }
        let mut r = Revocations {
            event_id: first.event()?,
            version: 0,
            by_ticket: HashMap::new(),
            by_qr: HashMap::new(),
        };
        for l in lists {
            if l.event()? != r.event_id {
                return Err(RevocationError::Chain(format!(
                    "lists of two events ({} and {})",
                    r.event_id.to_hex(),
                    l.event_id
                )));
            }
            if l.since != r.version {
                return Err(RevocationError::Chain(format!(
                    "a list since version {} follows one ending at {}",
                    l.since, r.version
                )));
            }
            for e in &l.entries {
                let id = ObjectId::parse_str(&e.ticket_id)
                    .map_err(|_| malformed("ticketId is not an id"))?;
                if let Some(h) = &e.qr_sha256 {
                    r.by_qr.insert(h.to_ascii_lowercase(), id);
                }
                r.by_ticket.entry(id).or_insert_with(|| e.clone());
            }
            r.version = l.version;
        }
        Ok(r)
    }

    pub fn event_id(&self) -> ObjectId {
        self.event_id
    }

    /// The version of the newest list joined.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn len(&self) -> usize {
        self.by_ticket.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ticket.is_empty()
    }

    /// The entry revoking this ticket, or this QR string (`qr_sha256`: SHA-256 hex of the
    /// string as scanned, trimmed).
    pub fn lookup(&self, ticket_id: &ObjectId, qr_sha256: &str) -> Option<&RevocationEntry> {
        self.by_ticket.get(ticket_id).or_else(|| {
            self.by_qr
                .get(&qr_sha256.to_ascii_lowercase())
                .and_then(|t| self.by_ticket.get(t))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::qr::KeyId;

    fn signer(kid: &str, seed: u8) -> QrSigner {
        QrSigner::from_seed(KeyId::parse(kid).unwrap(), [seed; 32])
    }

    fn keys(s: &[&QrSigner]) -> QrVerifier {
        let p: Vec<_> = s.iter().map(|k| k.public_key()).collect();
        QrVerifier::from_public_keys(&p).unwrap()
    }

    fn entry(version: u64, ticket: ObjectId) -> RevocationEntry {
        RevocationEntry {
            version,
            ticket_id: ticket.to_hex(),
            qr_code_id: None,
            qr_sha256: Some("AB".repeat(32)),
            booking_id: None,
            ticket_number: Some("TKT-1".into()),
            reason: "user_requested".into(),
            revoked_at: "2026-12-02T10:00:00Z".into(),
        }
    }

    fn list(
        event: ObjectId,
        since: u64,
        version: u64,
        entries: Vec<RevocationEntry>,
    ) -> RevocationList {
        RevocationList {
            event_id: event.to_hex(),
            since,
            version,
            issued_at: "2026-12-02T10:00:01Z".into(),
            entries,
        }
    }

    #[test]
    fn a_signed_list_opens_with_the_scan_keys() {
        let k = signer("k1", 3);
        let l = list(ObjectId::new(), 0, 9, vec![entry(7, ObjectId::new())]);
        let s = SignedRevocations::sign(&k, &l);
        assert_eq!((s.format.as_str(), s.kid.as_str()), ("TRL1", "k1"));
        assert_eq!(s.open(&keys(&[&k])).unwrap(), l);
        // Through JSON, as a device saves it.
        let back: SignedRevocations =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back.open(&keys(&[&k])).unwrap(), l);
    }

    #[test]
    fn a_tampered_or_foreign_list_is_refused() {
        let k = signer("k1", 3);
        let v = keys(&[&k]);
        let ticket = ObjectId::new();
        let l = list(ObjectId::new(), 0, 9, vec![entry(7, ticket)]);
        let s = SignedRevocations::sign(&k, &l);

        // An entry removed: the payload changes, the signature no longer matches.
        let mut emptied = l.clone();
        emptied.entries.clear();
        let forged = SignedRevocations {
            payload: SignedRevocations::sign(&k, &emptied).payload,
            ..s.clone()
        };
        assert_eq!(
            forged.open(&v),
            Err(RevocationError::Signature(QrError::BadSignature))
        );
        // Every changed character of the payload or the signature is refused.
        for field in 0..2 {
            let text = if field == 0 { &s.payload } else { &s.signature };
            for i in 0..text.len() {
                let mut b = text.clone().into_bytes();
                b[i] = if b[i] == b'A' { b'B' } else { b'A' };
                let mut t = s.clone();
                let changed = String::from_utf8(b).unwrap();
                if field == 0 {
                    t.payload = changed;
                } else {
                    t.signature = changed;
                }
                assert!(t.open(&v).is_err(), "field {field} position {i}");
            }
        }
        // Signed by a key the gate does not know, or relabelled to a known one.
        let other = SignedRevocations::sign(&signer("k2", 4), &l);
        assert!(matches!(
            other.open(&v),
            Err(RevocationError::Signature(QrError::UnknownKey(_)))
        ));
        let relabelled = SignedRevocations {
            kid: "k1".into(),
            ..SignedRevocations::sign(&signer("k1", 4), &l)
        };
        assert_eq!(
            relabelled.open(&v),
            Err(RevocationError::Signature(QrError::BadSignature))
        );
        let v2 = SignedRevocations {
            format: "TRL2".into(),
            ..s.clone()
        };
        assert!(matches!(
            v2.open(&v),
            Err(RevocationError::UnsupportedFormat(_))
        ));
    }

    #[test]
    fn a_ticket_signature_never_passes_as_a_list_signature() {
        let k = signer("k1", 3);
        let qr = k.sign(&crate::tickets::qr::QrPayload {
            ticket_id: ObjectId::new(),
            booking_reference: crate::bookings::reference::booking_reference(1_764_000_000_000, 1),
            user_id: ObjectId::new(),
            event_id: ObjectId::new(),
            seat_id: ObjectId::new(),
            issued_at: 1_764_000_000,
        });
        let parts: Vec<&str> = qr.split('.').collect();
        let posing = SignedRevocations {
            format: LIST_FORMAT.into(),
            kid: "k1".into(),
            alg: ALGORITHM.into(),
            payload: parts[2].into(),
            signature: parts[3].into(),
        };
        assert_eq!(
            posing.open(&keys(&[&k])),
            Err(RevocationError::Signature(QrError::BadSignature))
        );
    }

    #[test]
    fn entries_outside_the_lists_range_are_malformed() {
        let k = signer("k1", 3);
        for (since, version, at) in [(5, 9, 5), (5, 9, 10), (9, 5, 7)] {
            let l = list(
                ObjectId::new(),
                since,
                version,
                vec![entry(at, ObjectId::new())],
            );
            let s = SignedRevocations::sign(&k, &l);
            assert!(
                matches!(s.open(&keys(&[&k])), Err(RevocationError::Malformed(_))),
                "{since} {version} {at}"
            );
        }
    }

    #[test]
    fn lists_join_only_when_they_chain_from_zero() {
        let event = ObjectId::new();
        let (a, b) = (ObjectId::new(), ObjectId::new());
        let whole = list(event, 0, 10, vec![entry(4, a)]);
        let delta = list(event, 10, 15, vec![entry(12, b)]);
        let r = Revocations::from_lists(&[whole.clone(), delta.clone()]).unwrap();
        assert_eq!((r.version(), r.len(), r.event_id()), (15, 2, event));
        assert_eq!(r.lookup(&b, "").unwrap().version, 12);
        assert!(r.lookup(&ObjectId::new(), "00").is_none());
        // Found by the QR string's hash too.
        assert_eq!(
            r.lookup(&ObjectId::new(), &"ab".repeat(32)).unwrap().reason,
            "user_requested"
        );

        for bad in [
            vec![delta.clone()],
            vec![whole.clone(), list(event, 11, 15, vec![])],
            vec![whole.clone(), list(ObjectId::new(), 10, 15, vec![])],
            vec![],
        ] {
            assert!(matches!(
                Revocations::from_lists(&bad),
                Err(RevocationError::Chain(_))
            ));
        }
    }
}
