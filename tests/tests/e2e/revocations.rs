//! Revocation lists for gates that check tickets offline: a cancelled booking's and a
//! cancelled event's tickets reach the event's signed list with their reason and a
//! version, `?since=` sends only what changed, the offline verifier refuses them (and a
//! tampered list), and only staff may read a list.

use std::time::Duration;

use domain::qr::QrVerifier;
use domain::revocation::{RevocationList, SignedRevocations};
use e2e::{wait_until, TestApp};
use serde_json::{json, Value};

const APPROVED: &str = "4242424242424242";

async fn paid_booking(app: &TestApp, token: &str, event: &str, seats: &[String]) -> String {
    let booking = app.book(token, event, seats).await;
    let id = booking["id"].as_str().unwrap().to_string();
    let paid = app.pay(token, &id, APPROVED).await;
    assert_eq!(paid.status, 201, "{paid:?}");
    id
}

async fn tickets_of(app: &TestApp, token: &str, booking: &str, n: usize) -> Vec<Value> {
    let path = format!("/v1/bookings/{booking}/tickets");
    let issued = wait_until(Duration::from_secs(10), || async {
        app.get(&path, Some(token)).await.body["total"] == n
    })
    .await;
    let r = app.get(&path, Some(token)).await;
    assert!(issued, "{n} tickets issued: {r:?}");
    r.body["items"].as_array().unwrap().clone()
}

async fn scan_keys(app: &TestApp, staff: &str) -> (String, QrVerifier) {
    let r = app.get("/v1/scan-keys", Some(staff)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let text = r.body.to_string();
    (text.clone(), verifier::verifier_from_json(&text).unwrap())
}

/// The event's list since `since`, as saved (JSON text) and as opened with the keys.
async fn download(
    app: &TestApp,
    staff: &str,
    event: &str,
    since: u64,
    keys: &QrVerifier,
) -> (String, RevocationList) {
    let r = app
        .get(
            &format!("/v1/events/{event}/revocations?since={since}"),
            Some(staff),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["format"], "TRL1", "{r:?}");
    let signed: SignedRevocations = serde_json::from_value(r.body.clone()).unwrap();
    let list = signed.open(keys).expect("the list's signature verifies");
    assert_eq!((list.event_id.as_str(), list.since), (event, since));
    (r.body.to_string(), list)
}

/// Downloads since `since` until the list has an entry (the projection trails the
/// cancellation by moments).
async fn download_entries(
    app: &TestApp,
    staff: &str,
    event: &str,
    since: u64,
    keys: &QrVerifier,
    n: usize,
) -> (String, RevocationList) {
    let arrived = wait_until(Duration::from_secs(20), || async {
        download(app, staff, event, since, keys)
            .await
            .1
            .entries
            .len()
            >= n
    })
    .await;
    let got = download(app, staff, event, since, keys).await;
    assert!(arrived, "{n} entries since {since}: {:?}", got.1);
    got
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

#[tokio::test]
async fn a_cancelled_booking_s_ticket_reaches_the_signed_list_and_the_offline_verifier_refuses_it()
{
    let app = e2e::spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 3).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let doomed = paid_booking(&app, &user, &event, &seats[..1]).await;
    let kept = paid_booking(&app, &user, &event, &seats[1..2]).await;
    let ticket = tickets_of(&app, &user, &doomed, 1).await.remove(0);
    let good = tickets_of(&app, &user, &kept, 1).await.remove(0);
    let qr = ticket["qrString"].as_str().unwrap().to_string();
    let good_qr = good["qrString"].as_str().unwrap().to_string();
    let (_, keys) = scan_keys(&app, &admin).await;

    // The whole list before any cancellation: empty, at version v1.
    let (whole_text, whole) = download(&app, &admin, &event, 0, &keys).await;
    assert!(whole.entries.is_empty(), "{whole:?}");
    let v1 = whole.version;
    let before = verifier::revocations_from_json(&keys, std::slice::from_ref(&whole_text)).unwrap();
    let r = verifier::check_with(
        &keys,
        &qr,
        verifier::Checks {
            event: None,
            revocations: Some(&before),
        },
    );
    assert_eq!(r.status, verifier::Status::Valid, "{}", r.to_text());

    let c = app
        .post(
            &format!("/v1/bookings/{doomed}/cancel"),
            Some(&user),
            json!({}),
        )
        .await;
    assert_eq!(c.status, 200, "{c:?}");

    // Since v1: the cancelled ticket, with its reason, and nothing else.
    let (delta_text, delta) = download_entries(&app, &admin, &event, v1, &keys, 1).await;
    assert_eq!(delta.entries.len(), 1, "{delta:?}");
    let e = &delta.entries[0];
    assert_eq!(e.ticket_id, ticket["id"].as_str().unwrap());
    assert_eq!(e.reason, "user_requested");
    assert_eq!(e.booking_id.as_deref(), Some(doomed.as_str()));
    assert_eq!(e.ticket_number.as_deref(), ticket["ticketNumber"].as_str());
    assert_eq!(e.qr_code_id.as_deref(), ticket["qrCodeId"].as_str());
    assert_eq!(e.qr_sha256.as_deref(), Some(sha256_hex(&qr).as_str()));
    assert!(e.version > v1 && e.version <= delta.version, "{delta:?}");

    // The offline verifier, with the whole list and the one since: revoked, with why.
    let lists = [whole_text.clone(), delta_text.clone()];
    let held = verifier::revocations_from_json(&keys, &lists).unwrap();
    let r = verifier::check_with(
        &keys,
        &qr,
        verifier::Checks {
            event: Some(domain::ObjectId::parse_str(&event).unwrap()),
            revocations: Some(&held),
        },
    );
    assert_eq!(r.status, verifier::Status::Revoked, "{}", r.to_text());
    assert_ne!(r.status.exit_code(), verifier::Status::Invalid.exit_code());
    assert!(
        r.to_text().starts_with("revoked: user_requested"),
        "{}",
        r.to_text()
    );
    let ok = verifier::check_with(
        &keys,
        &good_qr,
        verifier::Checks {
            event: None,
            revocations: Some(&held),
        },
    );
    assert_eq!(ok.status, verifier::Status::Valid, "{}", ok.to_text());

    // A fresh whole list has it too; asking from the newest version sends nothing new.
    let (_, again) = download(&app, &admin, &event, 0, &keys).await;
    assert!(again.entries.iter().any(|x| x.ticket_id == e.ticket_id));
    let (_, none) = download(&app, &admin, &event, delta.version, &keys).await;
    assert!(none.entries.is_empty(), "{none:?}");
    assert!(none.version >= delta.version);

    // The entry cut out (the payload of the empty list under the delta's signature): the
    // list is refused, not read as "nothing revoked".
    let mut tampered: Value = serde_json::from_str(&delta_text).unwrap();
    let empty: Value = serde_json::from_str(&whole_text).unwrap();
    tampered["payload"] = empty["payload"].clone();
    let refused = verifier::revocations_from_json(&keys, &[whole_text, tampered.to_string()]);
    assert!(
        matches!(refused, Err(verifier::RevocationsError::Refused(_))),
        "{refused:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn an_event_cancellation_revokes_every_ticket_and_lists_are_for_staff_with_a_checked_since() {
    let app = e2e::spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 3).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let booking = paid_booking(&app, &user, &event, &seats[..2]).await;
    let tickets = tickets_of(&app, &user, &booking, 2).await;
    let (_, keys) = scan_keys(&app, &admin).await;
    let path = format!("/v1/events/{event}/revocations");

    // Only staff (an admin is staff); the rest is refused before anything is read.
    let r = app.get(&path, Some(&user)).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{r:?}");
    let r = app.get(&path, None).await;
    assert_eq!(r.status, 401, "{r:?}");
    for bad in ["v1", "-1", "1.5", "abc", "99999999999999999999999"] {
        let r = app.get(&format!("{path}?since={bad}"), Some(&admin)).await;
        assert_eq!((r.status, r.code()), (400, "invalid_since"), "{bad}: {r:?}");
    }
    // A version the list has not reached: the device's copy is not of this list, so
    // it gets the whole list, which says so (`since` 0).
    let r = app
        .get(&format!("{path}?since=999999999999"), Some(&admin))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let payload = r.body["payload"].as_str().unwrap();
    let list: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(list["since"], 0, "{list}");
    let r = app
        .get(
            &format!(
                "/v1/events/{}/revocations",
                domain::ObjectId::new().to_hex()
            ),
            Some(&admin),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "event_not_found"), "{r:?}");
    let r = app.get("/v1/events/nope/revocations", Some(&admin)).await;
    assert_eq!((r.status, r.code()), (400, "invalid_id"), "{r:?}");

    let (_, whole) = download(&app, &admin, &event, 0, &keys).await;
    let c = app
        .post(
            &format!("/v1/events/{event}/cancel"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(c.status, 200, "{c:?}");
    let (_, delta) = download_entries(&app, &admin, &event, whole.version, &keys, 2).await;
    let mut listed: Vec<&str> = delta.entries.iter().map(|e| e.ticket_id.as_str()).collect();
    let mut issued: Vec<&str> = tickets.iter().map(|t| t["id"].as_str().unwrap()).collect();
    listed.sort();
    issued.sort();
    assert_eq!(listed, issued);
    assert!(delta.entries.iter().all(|e| e.reason == "event_cancelled"));
    // One domain event, one version, for both tickets of the booking.
    assert_eq!(delta.entries[0].version, delta.entries[1].version);
    app.shutdown().await;
}
