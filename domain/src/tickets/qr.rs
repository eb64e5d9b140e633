//! Signed QR strings: what a ticket's QR code carries, so a gate can check a ticket
//! offline with nothing but the public keys that `GET /v1/scan-keys` lists.
//!
//! The format is `T1.<kid>.<payload>.<signature>`:
//!
//! - `T1`: the format version;
//! - `<kid>`: the id of the signing key (1 to 32 of `A-Z a-z 0-9 _ -`), so keys rotate:
//!   the newest key signs, every listed key verifies;
//! - `<payload>`: base64url (no padding) of 74 bytes: ticket id (12), user id (12),
//!   event id (12), seat id (12), `issuedAt` in Unix seconds (8, big-endian), and the
//!   booking reference without its `BK-` (18 ASCII characters);
//! - `<signature>`: base64url of the Ed25519 signature of the text `T1.<kid>.<payload>`,
//!   so the version and the key id are signed as well as the payload.
//!
//! NOTE: a fixed binary payload rather than JSON keeps the string near 200 characters (QR
//! version 10 at level M), which phone cameras read easily from a screen or paper.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use bson::oid::ObjectId;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::bookings::reference::BookingReference;
use crate::DomainError;

/// The format version, the first part of every QR string.
pub const FORMAT: &str = "T1";
/// The signature algorithm, as `GET /v1/scan-keys` names it.
pub const ALGORITHM: &str = "Ed25519";
/// Longest string [`QrVerifier::verify`] looks at; anything longer is not ours.
pub const MAX_QR_LEN: usize = 512;

const ID_LEN: usize = 12;
const REF_BODY_LEN: usize = 18;
const PAYLOAD_LEN: usize = 4 * ID_LEN + 8 + REF_BODY_LEN;
const MAX_KID_LEN: usize = 32;

/// A key id: 1 to 32 of `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_KID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(KeyId(s.to_string()))
        } else {
            Err(DomainError::invalid(
                "kid",
                "a key id is 1 to 32 letters, digits, _ or -",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a ticket's QR code says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrPayload {
    pub ticket_id: ObjectId,
    pub booking_reference: BookingReference,
    pub user_id: ObjectId,
    pub event_id: ObjectId,
    pub seat_id: ObjectId,
    /// When the ticket was issued, Unix seconds.
    pub issued_at: i64,
}

impl QrPayload {
    fn to_bytes(&self) -> [u8; PAYLOAD_LEN] {
        let mut b = [0u8; PAYLOAD_LEN];
        let ids = [self.ticket_id, self.user_id, self.event_id, self.seat_id];
        for (i, id) in ids.iter().enumerate() {
            b[i * ID_LEN..(i + 1) * ID_LEN].copy_from_slice(&id.bytes());
        }
        let t = 4 * ID_LEN;
        b[t..t + 8].copy_from_slice(&self.issued_at.to_be_bytes());
        // A parsed reference is `BK-` and 18 ASCII characters.
        let body = &self.booking_reference.as_str().as_bytes()[3..];
        b[t + 8..].copy_from_slice(body);
        b
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != PAYLOAD_LEN {
            return None;
        }
        let id = |i: usize| {
            let mut a = [0u8; ID_LEN];
            a.copy_from_slice(&b[i * ID_LEN..(i + 1) * ID_LEN]);
            ObjectId::from_bytes(a)
        };
        let t = 4 * ID_LEN;
        let mut secs = [0u8; 8];
        secs.copy_from_slice(&b[t..t + 8]);
        let body = std::str::from_utf8(&b[t + 8..]).ok()?;
        // Exact: no spaces or lower case, which `parse` would otherwise accept.
        if body.len() != REF_BODY_LEN || !body.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        let reference = BookingReference::parse(&format!("BK-{body}")).ok()?;
        if &reference.as_str()[3..] != body {
            return None;
        }
        Some(QrPayload {
            ticket_id: id(0),
            user_id: id(1),
            event_id: id(2),
            seat_id: id(3),
            issued_at: i64::from_be_bytes(secs),
            booking_reference: reference,
        })
    }
}

/// Why a QR string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    #[error("not a ticket QR code ({0})")]
    Malformed(&'static str),
    #[error("QR format `{0}` is not supported")]
    UnsupportedFormat(String),
    #[error("signed by an unknown key `{0}`")]
    UnknownKey(String),
    #[error("the signature does not match the ticket data")]
    BadSignature,
}

impl QrError {
    /// A short, stable name for the refusal, kept in `ticket_scans.failureReason`.
    pub fn reason(&self) -> &'static str {
        match self {
            QrError::Malformed(_) => "malformed",
            QrError::UnsupportedFormat(_) => "unsupported_format",
            QrError::UnknownKey(_) => "unknown_key",
            QrError::BadSignature => "bad_signature",
        }
    }
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64 in any of its usual spellings (standard or URL-safe, padded or not).
fn decode_any_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// A signing key and its id. Its `Debug` shows the id only.
#[derive(Clone)]
pub struct QrSigner {
    kid: KeyId,
    key: SigningKey,
}

impl fmt::Debug for QrSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QrSigner").field("kid", &self.kid).finish()
    }
}

impl QrSigner {
    /// The key whose 32-byte Ed25519 seed is `seed`.
    pub fn from_seed(kid: KeyId, seed: [u8; 32]) -> Self {
        QrSigner {
            kid,
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Parses `kid:base64(32-byte seed)`.
    pub fn parse(spec: &str) -> Result<Self, DomainError> {
        let (kid, seed) = spec.trim().split_once(':').ok_or_else(|| {
            DomainError::invalid("qrSigningKeys", "each key is kid:base64(32-byte seed)")
        })?;
        let kid = KeyId::parse(kid.trim())?;
        let seed: [u8; 32] = decode_any_base64(seed)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                DomainError::invalid(
                    "qrSigningKeys",
                    format!("the seed of key `{kid}` must be 32 bytes in base64"),
                )
            })?;
        Ok(QrSigner::from_seed(kid, seed))
    }

    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    /// The verification key, as published.
    pub fn public_key(&self) -> PublicKeyInfo {
        PublicKeyInfo {
            kid: self.kid.0.clone(),
            alg: ALGORITHM.to_string(),
            public_key: STANDARD.encode(self.key.verifying_key().as_bytes()),
        }
    }

    /// `kid:base64(seed)`: the secret, in the form the configuration reads back.
    pub fn secret_spec(&self) -> String {
        format!("{}:{}", self.kid, STANDARD.encode(self.key.to_bytes()))
    }

    /// The QR string of `payload`, signed with this key. Deterministic: the same payload
    /// and key always give the same string.
    pub fn sign(&self, payload: &QrPayload) -> String {
        let signed = format!("{FORMAT}.{}.{}", self.kid, b64url(&payload.to_bytes()));
        let sig = self.key.sign(signed.as_bytes());
        format!("{signed}.{}", b64url(&sig.to_bytes()))
    }
}

impl QrSigner {
    /// The base64url Ed25519 signature of `text`, for the other documents these keys sign
    /// (`crate::tickets::revocation`). Each kind of signed text starts with its own format tag
    /// (`T1.` here, `TRL1.` there), so a signature never verifies as another kind.
    pub(crate) fn sign_text(&self, text: &str) -> String {
        b64url(&self.key.sign(text.as_bytes()).to_bytes())
    }
}

/// A published verification key: what `GET /v1/scan-keys` lists and the offline
/// verifier reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyInfo {
    pub kid: String,
    /// Always `Ed25519`.
    pub alg: String,
    /// The 32-byte public key, standard base64.
    pub public_key: String,
}

/// Checks QR strings against a set of public keys.
#[derive(Debug, Clone)]
pub struct QrVerifier {
    keys: Vec<(KeyId, VerifyingKey)>,
}

impl QrVerifier {
    /// From published keys; an unknown algorithm, a repeated id or a key that is not 32
    /// bytes is refused.
    pub fn from_public_keys(keys: &[PublicKeyInfo]) -> Result<Self, DomainError> {
        let mut out: Vec<(KeyId, VerifyingKey)> = Vec::with_capacity(keys.len());
        for k in keys {
            let kid = KeyId::parse(&k.kid)?;
            if k.alg != ALGORITHM {
                return Err(DomainError::invalid(
                    "alg",
                    format!("key `{kid}` is {}, not {ALGORITHM}", k.alg),
                ));
            }
            let bytes: [u8; 32] = decode_any_base64(&k.public_key)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    DomainError::invalid("publicKey", format!("key `{kid}` is not 32 bytes"))
                })?;
            let vk = VerifyingKey::from_bytes(&bytes).map_err(|_| {
                DomainError::invalid("publicKey", format!("key `{kid}` is not an Ed25519 key"))
            })?;
            if out.iter().any(|(k, _)| *k == kid) {
                return Err(DomainError::invalid(
                    "kid",
                    format!("key `{kid}` is listed twice"),
                ));
            }
            out.push((kid, vk));
        }
        Ok(QrVerifier { keys: out })
    }

    /// The keys, as published.
    pub fn public_keys(&self) -> Vec<PublicKeyInfo> {
        self.keys
            .iter()
            .map(|(kid, vk)| PublicKeyInfo {
                kid: kid.0.clone(),
                alg: ALGORITHM.to_string(),
                public_key: STANDARD.encode(vk.as_bytes()),
            })
            .collect()
    }

    /// Checks a base64url signature of `text` by the key `kid` (see
    /// [`QrSigner::sign_text`]).
    pub(crate) fn verify_text(&self, kid: &str, text: &str, sig: &str) -> Result<(), QrError> {
        let sig_bytes: [u8; 64] = URL_SAFE_NO_PAD
            .decode(sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(QrError::Malformed("signature is not 64 bytes of base64url"))?;
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| k.0 == kid)
            .ok_or_else(|| QrError::UnknownKey(kid.to_string()))?;
        key.verify_strict(text.as_bytes(), &Signature::from_bytes(&sig_bytes))
            .map_err(|_| QrError::BadSignature)
    }

    /// Checks the signature of a QR string and decodes what it says. Surrounding
    /// whitespace (a scanner's line end) is ignored; anything else must be exact.
    pub fn verify(&self, qr: &str) -> Result<QrPayload, QrError> {
        let qr = qr.trim();
        if qr.len() > MAX_QR_LEN {
            return Err(QrError::Malformed("too long"));
        }
        let parts: Vec<&str> = qr.split('.').collect();
        let [format, kid, payload, sig] = parts[..] else {
            return Err(QrError::Malformed("not four dot-separated parts"));
        };
        if format != FORMAT {
            let looks_versioned = format.len() > 1
                && format.starts_with('T')
                && format[1..].bytes().all(|b| b.is_ascii_digit());
            return Err(if looks_versioned {
                QrError::UnsupportedFormat(format.to_string())
            } else {
                QrError::Malformed("unknown prefix")
            });
        }
        let kid = KeyId::parse(kid).map_err(|_| QrError::Malformed("bad key id"))?;
        let payload_bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| QrError::Malformed("payload is not base64url"))?;
        let sig_bytes: [u8; 64] = URL_SAFE_NO_PAD
            .decode(sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(QrError::Malformed("signature is not 64 bytes of base64url"))?;
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| *k == kid)
            .ok_or_else(|| QrError::UnknownKey(kid.0.clone()))?;
        let signed = &qr[..format.len() + kid.0.len() + payload.len() + 2];
        key.verify_strict(signed.as_bytes(), &Signature::from_bytes(&sig_bytes))
            .map_err(|_| QrError::BadSignature)?;
        QrPayload::from_bytes(&payload_bytes).ok_or(QrError::Malformed("payload layout"))
    }
}

/// The configured keys: the first signs, all verify (so a new key can take over signing
/// while tickets signed by the old one still scan).
#[derive(Debug, Clone)]
pub struct QrKeyRing {
    signer: QrSigner,
    verifier: QrVerifier,
}

impl QrKeyRing {
    /// `signer` signs; it and `others` verify.
    pub fn new(signer: QrSigner, others: Vec<QrSigner>) -> Result<Self, DomainError> {
        let public: Vec<PublicKeyInfo> = std::iter::once(&signer)
            .chain(others.iter())
            .map(QrSigner::public_key)
            .collect();
        let verifier = QrVerifier::from_public_keys(&public)?;
        Ok(QrKeyRing { signer, verifier })
    }

    /// Parses `kid:base64(seed),kid:base64(seed),...` (the first signs).
    pub fn parse(spec: &str) -> Result<Self, DomainError> {
        let mut keys = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(QrSigner::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(DomainError::invalid(
                "qrSigningKeys",
                "at least one key is needed",
            ));
        }
        let signer = keys.remove(0);
        QrKeyRing::new(signer, keys)
    }

    pub fn signer(&self) -> &QrSigner {
        &self.signer
    }

    pub fn verifier(&self) -> &QrVerifier {
        &self.verifier
    }
}

#[cfg(test)]
#[path = "qr_tests.rs"]
mod tests;
