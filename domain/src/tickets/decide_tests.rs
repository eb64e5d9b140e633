//! Ticket issue, download, cancellation and QR invalidation, on a fixed clock.

use super::*;
use crate::shared::fixtures::{at, booking, now, ticket, user_actor};

fn confirmed() -> Booking {
    let mut b = booking(ObjectId::new());
    b.status = BookingStatus::Confirmed;
    b.confirmed_at = Some(at(1_500));
    b
}

#[test]
fn only_a_confirmed_booking_gets_tickets_and_a_cancelled_one_cancels_them() {
    let mut b = confirmed();
    assert_eq!(decide_issue(&b), IssueDecision::Issue);
    b.status = BookingStatus::Pending;
    assert_eq!(
        decide_issue(&b),
        IssueDecision::NotYet(BookingStatus::Pending)
    );
    b.status = BookingStatus::Cancelled;
    assert_eq!(
        decide_issue(&b),
        IssueDecision::CancelTickets("booking_cancelled".into())
    );
    b.cancellation_reason = Some("event_cancelled".into());
    assert_eq!(
        decide_issue(&b),
        IssueDecision::CancelTickets("event_cancelled".into())
    );
}

#[test]
fn a_ticket_is_issued_active_with_a_valid_qr_code_in_whole_seconds() {
    let b = confirmed();
    let (t, q) = ticket(&b);
    assert_eq!(
        (t.status, t.id),
        (TicketStatus::Active, ticket_id_for(&b.id, &b.seat_ids[0]))
    );
    assert_eq!(t.issued_at, at(1_000));
    assert_eq!(
        issued_at_secs(&b, now()),
        (crate::shared::fixtures::T0 + 1_000) / 1000
    );
    assert_eq!(
        (q.id, q.validity()),
        (qr_code_id_for(&t.id), QrValidity::Valid)
    );
    let p = qr_payload(&b, b.seat_ids[0], 5);
    assert_eq!((p.ticket_id, p.issued_at), (t.id, 5));
}

#[test]
fn downloads_count_and_keep_the_first_time_and_strangers_get_404() {
    let b = confirmed();
    let (t, _) = ticket(&b);
    let owner = crate::shared::actor::Actor::new(b.user_id, crate::user::Role::User);
    let DownloadDecision::Record(first) = decide_download(Some(owner), Some(&t), at(10)) else {
        panic!()
    };
    assert_eq!(
        (first.download_count, first.downloaded_at),
        (1, Some(at(10)))
    );
    let DownloadDecision::Record(second) = decide_download(Some(owner), Some(&first), at(20))
    else {
        panic!()
    };
    assert_eq!(
        (second.download_count, second.downloaded_at),
        (2, Some(at(10)))
    );
    assert_eq!(
        decide_download(Some(user_actor()), Some(&t), at(10)),
        DownloadDecision::Refuse(Refusal::TicketNotFound)
    );
    assert_eq!(
        decide_download(None, Some(&t), at(10)),
        DownloadDecision::Refuse(Refusal::Unauthorized("sign in first"))
    );
}

#[test]
fn a_cancellation_cancels_the_ticket_and_invalidates_its_qr_once() {
    let (t, q) = ticket(&confirmed());
    let c = cancel_ticket(&t, Some(&q), "user_requested", at(5));
    let (t2, q2) = (c.ticket.unwrap(), c.qr_code.unwrap());
    assert_eq!(t2.status, TicketStatus::Cancelled);
    assert_eq!(
        (
            q2.is_valid,
            q2.invalidated_at,
            q2.invalidation_reason.as_deref()
        ),
        (false, Some(at(5)), Some("user_requested"))
    );
    let again = cancel_ticket(&t2, Some(&q2), "other", at(9));
    assert_eq!(
        again,
        TicketCancellation {
            ticket: None,
            qr_code: None
        }
    );
    assert_eq!(invalidate_qr(&q2, "x", at(9)), None);
}

#[test]
fn a_scanned_or_expired_ticket_is_still_cancelled_with_its_booking() {
    let (mut t, _) = ticket(&confirmed());
    for s in [TicketStatus::Scanned, TicketStatus::Expired] {
        t.status = s;
        assert_eq!(
            cancel_ticket(&t, None, "event_cancelled", at(5))
                .ticket
                .map(|t| t.status),
            Some(TicketStatus::Cancelled)
        );
    }
}
