//! Offline checks of ticket QR codes: a gate with no network saves the answer of
//! `GET /v1/scan-keys` once (and, for each event, `GET /v1/events/{id}/revocations`),
//! then checks each code with the same code (`domain::qr`, `domain::revocation`) the
//! platform signs with. A report names every check it made and every check it did not:
//!
//! - `signature`: the Ed25519 signature, by one of the saved keys;
//! - `event`: the code is for the event expected (`--event`, or the revocation list's);
//! - `revocation`: the ticket is not on the saved revocation list (cancelled tickets,
//!   invalidated QR codes), whose own signature is checked before it is trusted.
//!
//! What no offline check can know (a ticket cancelled after the list was saved, or
//! already scanned at another gate): `POST /v1/scans` decides entry.

use chrono::{TimeZone, Utc};
use domain::qr::{PublicKeyInfo, QrError, QrPayload, QrVerifier};
use domain::revocation::{RevocationEntry, RevocationError, Revocations, SignedRevocations};
use domain::ObjectId;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

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

/// Why saved revocation lists cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RevocationsError {
    #[error("a revocation list is not the JSON of GET /v1/events/{{id}}/revocations: {0}")]
    Json(#[from] serde_json::Error),
    /// A bad signature, an unknown key, a malformed list, or lists that do not chain.
    #[error("refused: {0}")]
    Refused(#[from] RevocationError),
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

/// The revocations of saved lists (the texts of `GET /v1/events/{id}/revocations`
/// answers, oldest first: a whole list, then the lists since), each list's signature
/// verified with `keys` before anything in it is read.
pub fn revocations_from_json(
    keys: &QrVerifier,
    texts: &[String],
) -> Result<Revocations, RevocationsError> {
    let mut lists = Vec::with_capacity(texts.len());
    for t in texts {
        let signed: SignedRevocations = serde_json::from_str(t)?;
        lists.push(signed.open(keys)?);
    }
    Ok(Revocations::from_lists(&lists)?)
}

/// What a gate checks beyond the signature.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks<'a> {
    /// The event the code must be for.
    pub event: Option<ObjectId>,
    /// The saved revocations (their event is expected when `event` is unset).
    pub revocations: Option<&'a Revocations>,
}

/// The verdict on one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every check made passed.
    Valid,
    /// Not a good signature by a saved key.
    Invalid,
    /// Well signed, for another event.
    WrongEvent,
    /// Well signed, and on the revocation list.
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::WrongEvent => "wrong_event",
            Status::Revoked => "revoked",
        }
    }

    /// The exit status of `ticket-verify`: 0 valid, 1 invalid, 3 revoked, 4 wrong event
    /// (2 is for unusable input).
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Valid => 0,
            Status::Invalid => 1,
            Status::Revoked => 3,
            Status::WrongEvent => 4,
        }
    }
}

/// One check made: its name, whether it passed, and what it found.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// `signature`, `event` or `revocation`.
    pub name: &'static str,
    pub passed: bool,
    /// `signature valid (key k1)`, `event matches <id>`, `not revoked (...)`...
    pub detail: String,
}

/// The outcome of checking one code.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The key id the code names, if it has the shape of one of ours.
    pub kid: Option<String>,
    pub outcome: Result<QrPayload, QrError>,
    pub status: Status,
    /// The checks made, in order (a failed one ends the list).
    pub checks: Vec<Check>,
    /// The checks not made, and why.
    pub not_checked: Vec<(&'static str, String)>,
    /// The entry that revokes the ticket, when revoked.
    pub revocation: Option<RevocationEntry>,
}

impl Report {
    /// True when every check made passed.
    pub fn is_valid(&self) -> bool {
        self.status == Status::Valid
    }

    fn headline(&self) -> String {
        match (&self.outcome, self.status) {
            (Err(e), _) => format!("invalid: {e} ({})", e.reason()),
            (Ok(_), Status::Revoked) => {
                let r = self.revocation.as_ref();
                format!(
                    "revoked: {} (since {}, list version {})",
                    r.map_or("revoked", |r| r.reason.as_str()),
                    r.map_or("-", |r| r.revoked_at.as_str()),
                    r.map_or(0, |r| r.version),
                )
            }
            (Ok(_), Status::WrongEvent) => format!(
                "wrong event: {}",
                self.checks.last().map_or("", |c| c.detail.as_str())
            ),
            (Ok(_), _) => "valid".into(),
        }
    }

    /// For people: the verdict, each check made and not made, and what the code says.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.headline());
        for c in &self.checks {
            let mark = if c.passed { "checked" } else { "FAILED" };
            out.push_str(&format!("  {mark:<12}{}: {}\n", c.name, c.detail));
        }
        for (name, why) in &self.not_checked {
            out.push_str(&format!("  {:<12}{name}: {why}\n", "not checked"));
        }
        if let Ok(p) = &self.outcome {
            out.push_str(&format!(
                "  key         {}\n  ticket      {}\n  booking     {}\n  user        {}\n  event       {}\n  seat        {}\n  issued at   {} ({})\n",
                self.kid.as_deref().unwrap_or("-"),
                p.ticket_id.to_hex(),
                p.booking_reference,
                p.user_id.to_hex(),
                p.event_id.to_hex(),
                p.seat_id.to_hex(),
                issued(p.issued_at),
                p.issued_at,
            ));
        }
        out
    }

    /// For programs: `{valid, status, checks, notChecked, ...fields}`, with `reason` and
    /// `message` when invalid and `revocation` when revoked.
    pub fn to_json(&self) -> Value {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| json!({"name": c.name, "passed": c.passed, "detail": c.detail}))
            .collect();
        let not_checked: Vec<Value> = self
            .not_checked
            .iter()
            .map(|(n, why)| json!({"name": n, "why": why}))
            .collect();
        let mut v = match &self.outcome {
            Ok(p) => json!({
                "kid": self.kid,
                "ticketId": p.ticket_id.to_hex(),
                "bookingReference": p.booking_reference.as_str(),
                "userId": p.user_id.to_hex(),
                "eventId": p.event_id.to_hex(),
                "seatId": p.seat_id.to_hex(),
                "issuedAt": issued(p.issued_at),
                "issuedAtUnix": p.issued_at,
            }),
            Err(e) => json!({"reason": e.reason(), "message": e.to_string()}),
        };
        v["valid"] = json!(self.is_valid());
        v["status"] = json!(self.status.as_str());
        v["checks"] = Value::Array(checks);
        v["notChecked"] = Value::Array(not_checked);
        if let Some(r) = &self.revocation {
            v["reason"] = json!("revoked");
            v["revocation"] = serde_json::to_value(r).unwrap_or(Value::Null);
        }
        v
    }
}

fn issued(secs: i64) -> String {
    Utc.timestamp_opt(secs, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "out of range".into())
}

/// Checks one code's signature only.
pub fn check(verifier: &QrVerifier, qr: &str) -> Report {
    check_with(verifier, qr, Checks::default())
}

/// Checks one code: its signature, then each further check asked for.
pub fn check_with(verifier: &QrVerifier, qr: &str, with: Checks<'_>) -> Report {
    let outcome = verifier.verify(qr);
    let kid = qr.trim().split('.').nth(1).map(str::to_string);
    let mut r = Report {
        kid,
        outcome,
        status: Status::Valid,
        checks: Vec::new(),
        not_checked: Vec::new(),
        revocation: None,
    };
    let payload = match &r.outcome {
        Ok(p) => p.clone(),
        Err(e) => {
            r.status = Status::Invalid;
            r.checks.push(Check {
                name: "signature",
                passed: false,
                detail: format!("{e} ({})", e.reason()),
            });
            return r;
        }
    };
    r.checks.push(Check {
        name: "signature",
        passed: true,
        detail: format!("signature valid (key {})", r.kid.as_deref().unwrap_or("-")),
    });

    let expected = with.event.map(|e| (e, "--event")).or_else(|| {
        with.revocations
            .map(|l| (l.event_id(), "the revocation list's event"))
    });
    match expected {
        Some((e, from)) if e == payload.event_id => r.checks.push(Check {
            name: "event",
            passed: true,
            detail: format!("event matches {} ({from})", e.to_hex()),
        }),
        Some((e, from)) => {
            r.status = Status::WrongEvent;
            r.checks.push(Check {
                name: "event",
                passed: false,
                detail: format!(
                    "the code is for event {}, not {} ({from})",
                    payload.event_id.to_hex(),
                    e.to_hex()
                ),
            });
            return r;
        }
        None => r.not_checked.push((
            "event",
            "no --event given: a ticket of any event passes".into(),
        )),
    }

    match with.revocations {
        Some(list) => {
            let hash = hex_sha256(qr.trim());
            match list.lookup(&payload.ticket_id, &hash) {
                Some(entry) => {
                    r.status = Status::Revoked;
                    r.checks.push(Check {
                        name: "revocation",
                        passed: false,
                        detail: format!(
                            "revoked: {} at {} (entry version {}, list version {})",
                            entry.reason,
                            entry.revoked_at,
                            entry.version,
                            list.version()
                        ),
                    });
                    r.revocation = Some(entry.clone());
                }
                None => r.checks.push(Check {
                    name: "revocation",
                    passed: true,
                    detail: format!(
                        "not revoked (list version {}, {} entries)",
                        list.version(),
                        list.len()
                    ),
                }),
            }
        }
        None => r.not_checked.push((
            "revocation",
            "no --revocations list given: a cancelled ticket still reads valid here; POST /v1/scans decides entry".into(),
        )),
    }
    r
}

fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

    fn list_of(event: ObjectId, since: u64, version: u64, revoked: &[(ObjectId, u64)]) -> String {
        let l = domain::revocation::RevocationList {
            event_id: event.to_hex(),
            since,
            version,
            issued_at: "2026-12-02T10:00:00Z".into(),
            entries: revoked
                .iter()
                .map(|(t, v)| RevocationEntry {
                    version: *v,
                    ticket_id: t.to_hex(),
                    qr_code_id: None,
                    qr_sha256: None,
                    booking_id: None,
                    ticket_number: None,
                    reason: "user_requested".into(),
                    revoked_at: "2026-12-02T09:59:00Z".into(),
                })
                .collect(),
        };
        serde_json::to_string(&SignedRevocations::sign(&signer(), &l)).unwrap()
    }

    #[test]
    fn every_check_is_named_and_a_listed_ticket_is_revoked_with_its_reason() {
        let v = verifier_from_json(&json!([signer().public_key()]).to_string()).unwrap();
        let p = payload();
        let qr = signer().sign(&p);

        let plain = check(&v, &qr);
        assert!(plain.is_valid());
        let text = plain.to_text();
        assert!(
            text.contains("checked     signature: signature valid (key k1)"),
            "{text}"
        );
        assert!(text.contains("not checked revocation: "), "{text}");
        assert!(text.contains("not checked event: "), "{text}");

        let other = ObjectId::new();
        let whole = list_of(p.event_id, 0, 5, &[(other, 3)]);
        let delta = list_of(p.event_id, 5, 9, &[(p.ticket_id, 8)]);
        let before = revocations_from_json(&v, std::slice::from_ref(&whole)).unwrap();
        let ok = check_with(
            &v,
            &qr,
            Checks {
                event: Some(p.event_id),
                revocations: Some(&before),
            },
        );
        assert_eq!(ok.status, Status::Valid);
        let names: Vec<_> = ok.checks.iter().map(|c| (c.name, c.passed)).collect();
        assert_eq!(
            names,
            [("signature", true), ("event", true), ("revocation", true)]
        );
        assert!(ok.not_checked.is_empty());

        let after = revocations_from_json(&v, &[whole.clone(), delta.clone()]).unwrap();
        let revoked = check_with(
            &v,
            &qr,
            Checks {
                event: None,
                revocations: Some(&after),
            },
        );
        assert_eq!(revoked.status, Status::Revoked);
        assert_eq!(revoked.status.exit_code(), 3);
        assert!(
            revoked.to_text().starts_with("revoked: user_requested"),
            "{}",
            revoked.to_text()
        );
        let j = revoked.to_json();
        assert_eq!(
            (j["valid"].as_bool(), j["status"].as_str()),
            (Some(false), Some("revoked"))
        );
        assert_eq!(j["revocation"]["version"], 8);

        // The list's event is expected when no --event is given.
        let foreign = revocations_from_json(&v, &[list_of(ObjectId::new(), 0, 1, &[])]).unwrap();
        let wrong = check_with(
            &v,
            &qr,
            Checks {
                event: None,
                revocations: Some(&foreign),
            },
        );
        assert_eq!(
            (wrong.status, wrong.status.exit_code()),
            (Status::WrongEvent, 4)
        );
        assert!(
            wrong.to_text().starts_with("wrong event: "),
            "{}",
            wrong.to_text()
        );
        let wrong = check_with(
            &v,
            &qr,
            Checks {
                event: Some(ObjectId::new()),
                revocations: None,
            },
        );
        assert_eq!(wrong.status, Status::WrongEvent);
    }

    #[test]
    fn a_tampered_or_incomplete_revocation_list_is_refused() {
        let v = verifier_from_json(&json!([signer().public_key()]).to_string()).unwrap();
        let p = payload();
        let whole = list_of(p.event_id, 0, 5, &[(p.ticket_id, 3)]);
        let mut signed: SignedRevocations = serde_json::from_str(&whole).unwrap();
        let emptied = list_of(p.event_id, 0, 5, &[]);
        signed.payload = serde_json::from_str::<SignedRevocations>(&emptied)
            .unwrap()
            .payload;
        let tampered = serde_json::to_string(&signed).unwrap();
        assert!(matches!(
            revocations_from_json(&v, &[tampered]),
            Err(RevocationsError::Refused(RevocationError::Signature(
                QrError::BadSignature
            )))
        ));
        let delta_only = list_of(p.event_id, 5, 9, &[]);
        assert!(matches!(
            revocations_from_json(&v, &[delta_only]),
            Err(RevocationsError::Refused(RevocationError::Chain(_)))
        ));
        assert!(matches!(
            revocations_from_json(&v, &["{}".to_string()]),
            Err(RevocationsError::Json(_))
        ));
    }
}
