//! The `ticket-verify` binary: exit status 0 for a valid code, 1 for an invalid one, 2
//! when the keys cannot be read.

use std::process::Command;

use domain::entities::reference::booking_reference;
use domain::qr::{KeyId, QrPayload, QrSigner};
use domain::ObjectId;

fn signer(kid: &str, seed: u8) -> QrSigner {
    QrSigner::from_seed(KeyId::parse(kid).unwrap(), [seed; 32])
}

fn qr(s: &QrSigner) -> String {
    s.sign(&QrPayload {
        ticket_id: ObjectId::new(),
        booking_reference: booking_reference(1_764_000_000_000, 77),
        user_id: ObjectId::new(),
        event_id: ObjectId::new(),
        seat_id: ObjectId::new(),
        issued_at: 1_764_000_000,
    })
}

fn verify(keys: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ticket-verify"))
        .arg("--keys")
        .arg(keys)
        .args(args)
        .output()
        .expect("ticket-verify runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn valid_and_invalid_codes_have_their_exit_status() {
    let dir = std::env::temp_dir().join(format!("ticket-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.json");
    let k = signer("k1", 1);
    let answer = serde_json::json!({"keys": [k.public_key()]});
    std::fs::write(&keys, answer.to_string()).unwrap();

    let good = qr(&k);
    let (code, out) = verify(&keys, &[&good]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("valid") && out.contains("BK-"), "{out}");

    let (code, out) = verify(&keys, &["--json", &good]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["kid"], "k1");

    let (code, out) = verify(&keys, &[&qr(&signer("k9", 2))]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("invalid: ") && out.contains("unknown_key"),
        "{out}"
    );

    let mut tampered = good.clone().into_bytes();
    tampered[12] = if tampered[12] == b'A' { b'B' } else { b'A' };
    let (code, _) = verify(&keys, &[&String::from_utf8(tampered).unwrap()]);
    assert_eq!(code, 1);

    let (code, _) = verify(&dir.join("missing.json"), &[&good]);
    assert_eq!(code, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn signed_list(k: &QrSigner, event: ObjectId, revoked: Option<ObjectId>) -> String {
    let entries = revoked
        .into_iter()
        .map(|t| domain::revocation::RevocationEntry {
            version: 7,
            ticket_id: t.to_hex(),
            qr_code_id: None,
            qr_sha256: None,
            booking_id: None,
            ticket_number: None,
            reason: "event_cancelled".into(),
            revoked_at: "2026-12-02T10:00:00.000Z".into(),
        })
        .collect();
    let list = domain::revocation::RevocationList {
        event_id: event.to_hex(),
        since: 0,
        version: 9,
        issued_at: "2026-12-02T10:00:05Z".into(),
        entries,
    };
    serde_json::to_string(&domain::revocation::SignedRevocations::sign(k, &list)).unwrap()
}

#[test]
fn a_revoked_ticket_a_wrong_event_and_a_tampered_list_have_their_own_exit_status() {
    let dir = std::env::temp_dir().join(format!("ticket-verify-rl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.json");
    let k = signer("k1", 1);
    std::fs::write(
        &keys,
        serde_json::json!({"keys": [k.public_key()]}).to_string(),
    )
    .unwrap();
    let p = QrPayload {
        ticket_id: ObjectId::new(),
        booking_reference: booking_reference(1_764_000_000_000, 78),
        user_id: ObjectId::new(),
        event_id: ObjectId::new(),
        seat_id: ObjectId::new(),
        issued_at: 1_764_000_000,
    };
    let code = k.sign(&p);
    let event = p.event_id.to_hex();

    let clean = dir.join("clean.json");
    std::fs::write(&clean, signed_list(&k, p.event_id, None)).unwrap();
    let (status, out) = verify(&keys, &["--revocations", clean.to_str().unwrap(), &code]);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("checked     signature: signature valid"),
        "{out}"
    );
    assert!(out.contains("checked     event: event matches"), "{out}");
    assert!(
        out.contains("checked     revocation: not revoked (list version 9"),
        "{out}"
    );

    let listed = dir.join("listed.json");
    std::fs::write(&listed, signed_list(&k, p.event_id, Some(p.ticket_id))).unwrap();
    let (status, out) = verify(
        &keys,
        &[
            "--event",
            &event,
            "--revocations",
            listed.to_str().unwrap(),
            &code,
        ],
    );
    assert_eq!(status, 3, "{out}");
    assert!(out.starts_with("revoked: event_cancelled"), "{out}");
    let (status, out) = verify(
        &keys,
        &["--json", "--revocations", listed.to_str().unwrap(), &code],
    );
    assert_eq!(status, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["revocation"]["reason"], "event_cancelled");

    // Another event's ticket against this event.
    let (status, out) = verify(&keys, &["--event", &ObjectId::new().to_hex(), &code]);
    assert_eq!(status, 4, "{out}");
    assert!(out.starts_with("wrong event: "), "{out}");

    // The revoked entry cut out of the payload: the list's signature fails, it is refused.
    let mut signed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&listed).unwrap()).unwrap();
    let clean_payload: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&clean).unwrap()).unwrap();
    signed["payload"] = clean_payload["payload"].clone();
    let tampered = dir.join("tampered.json");
    std::fs::write(&tampered, signed.to_string()).unwrap();
    let (status, _) = verify(&keys, &["--revocations", tampered.to_str().unwrap(), &code]);
    assert_eq!(status, 2, "a tampered list is refused");
    std::fs::remove_dir_all(&dir).unwrap();
}
