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
