//! Tests of the signed QR strings: round trips, tampered and forged strings refused,
//! malformed ones named, key rotation, key specs and the published keys.

use super::*;
use crate::bookings::reference::booking_reference;
use proptest::prelude::*;

fn signer(kid: &str, seed: u8) -> QrSigner {
    QrSigner::from_seed(KeyId::parse(kid).unwrap(), [seed; 32])
}

fn payload() -> QrPayload {
    QrPayload {
        ticket_id: ObjectId::new(),
        booking_reference: booking_reference(1_700_000_000_000, 42),
        user_id: ObjectId::new(),
        event_id: ObjectId::new(),
        seat_id: ObjectId::new(),
        issued_at: 1_700_000_123,
    }
}

fn verifier_of(keys: &[&QrSigner]) -> QrVerifier {
    let public: Vec<_> = keys.iter().map(|k| k.public_key()).collect();
    QrVerifier::from_public_keys(&public).unwrap()
}

#[test]
fn a_signed_string_verifies_back_to_its_payload() {
    let k = signer("k1", 7);
    let p = payload();
    let qr = k.sign(&p);
    assert!(qr.starts_with("T1.k1."), "{qr}");
    assert!(qr.len() < 220, "{} characters", qr.len());
    assert_eq!(qr, k.sign(&p), "signing is deterministic");
    assert_eq!(verifier_of(&[&k]).verify(&qr).unwrap(), p);
    assert_eq!(verifier_of(&[&k]).verify(&format!(" {qr}\n")).unwrap(), p);
}

#[test]
fn any_changed_character_is_refused() {
    let k = signer("k1", 7);
    let v = verifier_of(&[&k]);
    let qr = k.sign(&payload());
    for i in 0..qr.len() {
        let mut b = qr.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(b).unwrap();
        if tampered == qr {
            continue;
        }
        assert!(v.verify(&tampered).is_err(), "position {i}: {tampered}");
    }
}

#[test]
fn a_payload_signed_by_another_key_with_the_same_id_is_a_bad_signature() {
    let good = signer("k1", 7);
    let forger = signer("k1", 8);
    let qr = forger.sign(&payload());
    assert_eq!(
        verifier_of(&[&good]).verify(&qr),
        Err(QrError::BadSignature)
    );
}

#[test]
fn an_unknown_key_id_is_named() {
    let k = signer("k1", 7);
    let qr = signer("other", 9).sign(&payload());
    assert_eq!(
        verifier_of(&[&k]).verify(&qr),
        Err(QrError::UnknownKey("other".into()))
    );
}

#[test]
fn a_swapped_key_id_breaks_the_signature() {
    let (a, b) = (signer("a", 1), signer("b", 2));
    let qr = a.sign(&payload());
    let relabelled = qr.replacen("T1.a.", "T1.b.", 1);
    assert_eq!(
        verifier_of(&[&a, &b]).verify(&relabelled),
        Err(QrError::BadSignature)
    );
}

#[test]
fn garbage_is_malformed_and_other_versions_unsupported() {
    let v = verifier_of(&[&signer("k1", 7)]);
    for bad in [
        "",
        "hello",
        "T1.k1.x",
        "T1.k1.!!!.???",
        "T1..AAAA.AAAA",
        "X1.k1.AAAA.AAAA",
        "T1.k1.AAAA.AAAA.AAAA",
    ] {
        assert!(
            matches!(v.verify(bad), Err(QrError::Malformed(_))),
            "{bad}: {:?}",
            v.verify(bad)
        );
    }
    assert_eq!(
        v.verify("T2.k1.AAAA.AAAA"),
        Err(QrError::UnsupportedFormat("T2".into()))
    );
    assert!(matches!(
        v.verify(&"A".repeat(MAX_QR_LEN + 1)),
        Err(QrError::Malformed(_))
    ));
}

#[test]
fn rotation_the_first_key_signs_and_every_key_verifies() {
    let old = signer("2024", 1);
    let new = signer("2025", 2);
    let spec = format!("{},{}", new.secret_spec(), old.secret_spec());
    let ring = QrKeyRing::parse(&spec).unwrap();
    assert_eq!(ring.signer().kid().as_str(), "2025");
    let p = payload();
    let old_qr = old.sign(&p);
    let new_qr = ring.signer().sign(&p);
    assert!(new_qr.starts_with("T1.2025."));
    assert_eq!(ring.verifier().verify(&old_qr).unwrap(), p);
    assert_eq!(ring.verifier().verify(&new_qr).unwrap(), p);
    // Once the old key is dropped, its tickets no longer scan.
    let dropped = QrKeyRing::parse(&new.secret_spec()).unwrap();
    assert_eq!(
        dropped.verifier().verify(&old_qr),
        Err(QrError::UnknownKey("2024".into()))
    );
    let kids: Vec<_> = ring
        .verifier()
        .public_keys()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["2025", "2024"]);
}

#[test]
fn key_specs_are_checked() {
    for bad in [
        "",
        " , ",
        "nokid",
        "k1:short",
        "bad kid:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        assert!(QrKeyRing::parse(bad).is_err(), "{bad:?}");
    }
    let k = signer("k1", 3);
    let twice = format!("{},{}", k.secret_spec(), k.secret_spec());
    assert!(QrKeyRing::parse(&twice).is_err(), "a repeated id");
    // URL-safe and unpadded seeds are accepted too.
    let url = format!("k1:{}", URL_SAFE_NO_PAD.encode([3u8; 32]));
    assert_eq!(
        QrKeyRing::parse(&url).unwrap().signer().public_key(),
        k.public_key()
    );
    assert!(!format!("{k:?}").contains(&STANDARD.encode([3u8; 32])));
}

#[test]
fn published_keys_round_trip_through_json() {
    let k = signer("k1", 5);
    let json = serde_json::to_value(k.public_key()).unwrap();
    assert_eq!(json["alg"], "Ed25519");
    assert!(json["publicKey"].is_string());
    let back: PublicKeyInfo = serde_json::from_value(json).unwrap();
    let qr = k.sign(&payload());
    assert!(QrVerifier::from_public_keys(std::slice::from_ref(&back))
        .unwrap()
        .verify(&qr)
        .is_ok());
    let wrong_alg = PublicKeyInfo {
        alg: "RS256".into(),
        ..back
    };
    assert!(QrVerifier::from_public_keys(&[wrong_alg]).is_err());
}

proptest! {
    #[test]
    fn every_payload_round_trips(
        millis in 0..=crate::bookings::reference::MAX_REFERENCE_MILLIS,
        unique in any::<u64>(),
        ids in any::<[[u8; 12]; 4]>(),
        issued_at in any::<i64>(),
        seed in any::<[u8; 32]>(),
    ) {
        let p = QrPayload {
            ticket_id: ObjectId::from_bytes(ids[0]),
            booking_reference: booking_reference(millis, unique),
            user_id: ObjectId::from_bytes(ids[1]),
            event_id: ObjectId::from_bytes(ids[2]),
            seat_id: ObjectId::from_bytes(ids[3]),
            issued_at,
        };
        let k = QrSigner::from_seed(KeyId::parse("p").unwrap(), seed);
        let qr = k.sign(&p);
        prop_assert_eq!(verifier_of(&[&k]).verify(&qr).unwrap(), p);
    }
}
