//! Scans: valid, duplicate and refused, with the grace after the start, on a fixed clock.

use chrono::Duration;

use super::*;
use crate::shared::clock::Clock;
use crate::shared::fixtures::{at, booking, clock, staff, user_actor};
use crate::tickets::decide::qr_payload;

fn state(status: TicketStatus) -> GateTicketState {
    GateTicketState {
        status,
        cancel_reason: None,
        event_date: Some(at(0)),
        qr_matches: true,
    }
}

fn rejected(d: ScanDecision) -> (ScanStatus, String) {
    match d {
        ScanDecision::Reject(r) => (r.status, r.reason),
        ScanDecision::ClaimFirst => panic!("admitted"),
    }
}

#[test]
fn only_staff_with_sane_labels_scan() {
    assert_eq!(
        check_scanner(None, "d", None),
        Err(Refusal::Unauthorized("sign in first"))
    );
    assert_eq!(
        check_scanner(Some(user_actor()), "d", None),
        Err(Refusal::Forbidden("staff only"))
    );
    assert_eq!(
        check_scanner(Some(staff()), " gate-a-1 ", Some(" A ")),
        Ok(Scanner {
            device_id: "gate-a-1".into(),
            gate: Some("A".into())
        })
    );
    assert_eq!(
        check_scanner(Some(staff()), "  ", None).unwrap_err().code(),
        "validation_failed"
    );
    assert_eq!(
        check_scanner(Some(staff()), "d", Some(&"x".repeat(MAX_LABEL + 1)))
            .unwrap_err()
            .code(),
        "validation_failed"
    );
    assert_eq!(label("a\nb"), None);
}

#[test]
fn bad_unknown_replaced_and_cancelled_tickets_are_refused() {
    let p = qr_payload(
        &booking(bson::oid::ObjectId::new()),
        bson::oid::ObjectId::new(),
        1,
    );
    let now = clock().now_stored();
    assert_eq!(
        rejected(decide_scan(Err(&QrError::BadSignature), None, now, 0)),
        (ScanStatus::InvalidQr, "bad_signature".into())
    );
    assert_eq!(
        rejected(decide_scan(Ok(&p), None, now, 0)),
        (ScanStatus::InvalidQr, "unknown_ticket".into())
    );
    let mut s = state(TicketStatus::Active);
    s.qr_matches = false;
    assert_eq!(
        rejected(decide_scan(Ok(&p), Some(&s), now, 0)),
        (ScanStatus::InvalidQr, "qr_mismatch".into())
    );
    let mut c = state(TicketStatus::Cancelled);
    assert_eq!(
        rejected(decide_scan(Ok(&p), Some(&c), now, 0)),
        (ScanStatus::TicketCancelled, "ticket_cancelled".into())
    );
    c.cancel_reason = Some("event_cancelled".into());
    assert_eq!(
        rejected(decide_scan(Ok(&p), Some(&c), now, 0)),
        (ScanStatus::TicketCancelled, "event_cancelled".into())
    );
    assert_eq!(
        rejected(decide_scan(
            Ok(&p),
            Some(&state(TicketStatus::Expired)),
            now,
            0
        )),
        (ScanStatus::TicketExpired, "ticket_expired".into())
    );
}

#[test]
fn late_arrivals_get_in_until_the_grace_ends() {
    let p = qr_payload(
        &booking(bson::oid::ObjectId::new()),
        bson::oid::ObjectId::new(),
        1,
    );
    let c = clock();
    c.advance(Duration::seconds(3600));
    assert_eq!(
        decide_scan(
            Ok(&p),
            Some(&state(TicketStatus::Active)),
            c.now_stored(),
            3600
        ),
        ScanDecision::ClaimFirst
    );
    c.advance(Duration::milliseconds(1));
    assert_eq!(
        rejected(decide_scan(
            Ok(&p),
            Some(&state(TicketStatus::Active)),
            c.now_stored(),
            3600
        )),
        (ScanStatus::TicketExpired, "event_over".into())
    );
    // A scanned ticket goes to the first-scan claim, which answers the duplicate.
    assert_eq!(
        decide_scan(Ok(&p), Some(&state(TicketStatus::Scanned)), at(0), 0),
        ScanDecision::ClaimFirst
    );
}

#[test]
fn the_first_scan_wins_and_every_other_is_a_duplicate() {
    assert_eq!(
        decide_first_scan(TicketStatus::Active, "s1", "s1", at(3)),
        FirstScanDecision::Admit {
            status: TicketStatus::Scanned,
            at: at(3)
        }
    );
    assert_eq!(
        decide_first_scan(TicketStatus::Scanned, "s1", "s1", at(3)),
        FirstScanDecision::Admit {
            status: TicketStatus::Scanned,
            at: at(3)
        }
    );
    let FirstScanDecision::Duplicate(d) =
        decide_first_scan(TicketStatus::Active, "s2", "s1", at(3))
    else {
        panic!()
    };
    assert_eq!(
        (d.status, d.reason.as_str()),
        (ScanStatus::AlreadyScanned, "already_scanned")
    );
}
