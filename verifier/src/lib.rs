//! Offline checks of ticket QR codes: a gate with no network saves the answer of
//! `GET /v1/scan-keys` once, then checks each code's Ed25519 signature and reads what it
//! says, with the same code (`domain::qr`) the platform signs with.
//!
//! An offline check cannot know what only the platform knows (a ticket cancelled or
//! already scanned since the keys were saved): `POST /v1/scans` decides entry.

use chrono::{TimeZone, Utc};
use domain::qr::{PublicKeyInfo, QrError, QrPayload, QrVerifier};
use serde::Deserialize;
use serde_json::{json, Value};

/// Why a keys file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("the keys file is not the JSON of GET /v1/scan-keys: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the keys file has a bad key: {0}")]
    Invalid(#[from] domain::DomainError),
    #[error("the keys file lists no key")]
    Empty,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeysFile {
    /// `{"keys": [...]}`, as `GET /v1/scan-keys` answers.
    Answer { keys: Vec<PublicKeyInfo> },
    /// A bare list of keys.
    List(Vec<PublicKeyInfo>),
}

/// The verifier of a keys file's text.
pub fn verifier_from_json(text: &str) -> Result<QrVerifier, KeysError> {
    let keys = match serde_json::from_str::<KeysFile>(text)? {
        KeysFile::Answer { keys } | KeysFile::List(keys) => keys,
    };
    if keys.is_empty() {
        return Err(KeysError::Empty);
    }
    Ok(QrVerifier::from_public_keys(&keys)?)
}

/// The outcome of checking one code.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The key id the code names, if it has the shape of one of ours.
    pub kid: Option<String>,
    pub outcome: Result<QrPayload, QrError>,
}

impl Report {
    pub fn is_valid(&self) -> bool {
        self.outcome.is_ok()
    }

    /// For people: `valid` and the fields, or `invalid: <why>`.
    pub fn to_text(&self) -> String {
        match &self.outcome {
            Ok(p) => format!(
                "valid\n  key         {}\n  ticket      {}\n  booking     {}\n  user        {}\n  event       {}\n  seat        {}\n  issued at   {} ({})\n",
                self.kid.as_deref().unwrap_or("-"),
                p.ticket_id.to_hex(),
                p.booking_reference,
                p.user_id.to_hex(),
                p.event_id.to_hex(),
                p.seat_id.to_hex(),
                issued(p.issued_at),
                p.issued_at,
            ),
            Err(e) => format!("invalid: {e} ({})\n", e.reason()),
        }
    }

    /// For programs: `{valid, kid, ...fields}` or `{valid: false, reason, message}`.
    pub fn to_json(&self) -> Value {
        match &self.outcome {
            Ok(p) => json!({
                "valid": true,
                "kid": self.kid,
                "ticketId": p.ticket_id.to_hex(),
                "bookingReference": p.booking_reference.as_str(),
                "userId": p.user_id.to_hex(),
                "eventId": p.event_id.to_hex(),
                "seatId": p.seat_id.to_hex(),
                "issuedAt": issued(p.issued_at),
                "issuedAtUnix": p.issued_at,
            }),
            Err(e) => json!({"valid": false, "reason": e.reason(), "message": e.to_string()}),
        }
    }
}

fn issued(secs: i64) -> String {
    Utc.timestamp_opt(secs, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "out of range".into())
}

/// Checks one code.
pub fn check(verifier: &QrVerifier, qr: &str) -> Report {
    let outcome = verifier.verify(qr);
    let kid = qr.trim().split('.').nth(1).map(str::to_string);
    Report { kid, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::entities::reference::booking_reference;
    use domain::qr::{KeyId, QrSigner};
    use domain::ObjectId;

    fn signer() -> QrSigner {
        QrSigner::from_seed(KeyId::parse("k1").unwrap(), [4; 32])
    }

    fn payload() -> QrPayload {
        QrPayload {
            ticket_id: ObjectId::new(),
            booking_reference: booking_reference(1_764_000_000_000, 5),
            user_id: ObjectId::new(),
            event_id: ObjectId::new(),
            seat_id: ObjectId::new(),
            issued_at: 1_764_000_000,
        }
    }

    #[test]
    fn the_scan_keys_answer_and_a_bare_list_are_both_read() {
        let key = serde_json::to_value(signer().public_key()).unwrap();
        let answer = json!({"keys": [key.clone()]}).to_string();
        let list = json!([key]).to_string();
        let qr = signer().sign(&payload());
        for text in [answer, list] {
            let v = verifier_from_json(&text).unwrap();
            assert!(check(&v, &qr).is_valid());
        }
        assert!(matches!(
            verifier_from_json("{\"keys\": []}"),
            Err(KeysError::Empty)
        ));
        assert!(matches!(
            verifier_from_json("nope"),
            Err(KeysError::Json(_))
        ));
    }

    #[test]
    fn reports_name_the_fields_or_the_reason() {
        let v = verifier_from_json(&json!([signer().public_key()]).to_string()).unwrap();
        let p = payload();
        let ok = check(&v, &signer().sign(&p));
        assert_eq!(ok.kid.as_deref(), Some("k1"));
        let text = ok.to_text();
        assert!(
            text.starts_with("valid\n") && text.contains(&p.ticket_id.to_hex()),
            "{text}"
        );
        assert!(text.contains("2025-11-24T16:00:00Z"), "{text}");
        assert_eq!(
            ok.to_json()["bookingReference"],
            p.booking_reference.as_str()
        );

        let other = QrSigner::from_seed(KeyId::parse("k2").unwrap(), [5; 32]).sign(&p);
        let bad = check(&v, &other);
        assert!(!bad.is_valid());
        assert_eq!(bad.to_json()["reason"], "unknown_key");
        assert!(bad.to_text().starts_with("invalid: "), "{}", bad.to_text());
    }
}
