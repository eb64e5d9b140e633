//! Tickets and gate scans: issuance on confirmation, the PNG, the first scan wins once
//! under concurrency, refused QR codes are recorded, and redelivered issuance adds
//! nothing.

use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use domain::qr::{KeyId, PublicKeyInfo, QrPayload, QrSigner, QrVerifier};
use e2e::{spawn_app, wait_until, TestApp, QR_SIGNING_KEYS};
use futures::future::join_all;
use serde_json::{json, Value};

const APPROVED: &str = "4242424242424242";

fn oid(v: &Value) -> ObjectId {
    ObjectId::parse_str(v.as_str().expect("id string")).expect("object id")
}

/// Books `seats` and pays: the booking's id.
async fn paid_booking(app: &TestApp, token: &str, event: &str, seats: &[String]) -> String {
    let booking = app.book(token, event, seats).await;
    let id = booking["id"].as_str().unwrap().to_string();
    let paid = app.pay(token, &id, APPROVED).await;
    assert_eq!(paid.status, 201, "{paid:?}");
    id
}

/// The booking's tickets once the API says they are issued (`status: issued`); there
/// must then be `n`.
async fn tickets_of(app: &TestApp, token: &str, booking: &str, n: usize) -> Vec<Value> {
    let path = format!("/v1/bookings/{booking}/tickets");
    let issued = wait_until(Duration::from_secs(10), || async {
        app.get(&path, Some(token)).await.body["status"] == "issued"
    })
    .await;
    let r = app.get(&path, Some(token)).await;
    assert!(issued, "tickets issued: {r:?}");
    assert_eq!(
        (r.body["total"].clone(), r.body["expected"].clone()),
        (n.into(), n.into()),
        "{r:?}"
    );
    r.body["items"].as_array().unwrap().clone()
}

/// A new buyer's one paid ticket of a new event, and the admin's token.
async fn one_ticket(app: &TestApp) -> (String, Value) {
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 2).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let booking = paid_booking(app, &user, &event, &seats[..1]).await;
    let ticket = tickets_of(app, &user, &booking, 1).await.remove(0);
    (admin, ticket)
}

/// The ticket's successful scans recorded.
async fn successes(app: &TestApp, ticket: ObjectId) -> u64 {
    app.count(
        "ticket_scans",
        doc! {"ticketId": ticket, "scanStatus": "success"},
    )
    .await
}

const SCANNER_AGENT: &str = "gate-scanner/1.0";

async fn scan(app: &TestApp, token: &str, qr: &str, gate: &str) -> e2e::Resp {
    let body = json!({"qrString": qr, "deviceId": format!("scanner-{gate}"), "gate": gate});
    app.call(
        "POST",
        "/v1/scans",
        Some(token),
        Some(body),
        &[("user-agent", SCANNER_AGENT)],
    )
    .await
}

/// The QR code in a PNG, read back as a phone would.
fn decode_png(bytes: &[u8]) -> String {
    let img = image::load_from_memory(bytes).expect("a PNG").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("a readable QR code").1
}

fn test_signer() -> QrSigner {
    QrSigner::parse(QR_SIGNING_KEYS).unwrap()
}

#[tokio::test]
async fn a_paid_booking_gets_a_ticket_per_seat_whose_png_scans_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (user_id, user) = app.new_user().await;
    let (_, other) = app.new_user().await;
    let booking = paid_booking(&app, &user, &event, &seats[..2]).await;

    let tickets = tickets_of(&app, &user, &booking, 2).await;
    let mut numbers = Vec::new();
    for (t, seat) in tickets.iter().zip(&seats[..2]) {
        assert_eq!(t["status"], "active");
        assert_eq!(t["seatId"], seat.as_str());
        assert_eq!(t["userId"], user_id.as_str());
        assert_eq!(t["bookingId"], booking.as_str());
        assert_eq!(t["eventName"], "Test Concert");
        assert_eq!(t["eventTime"], "20:00");
        assert_eq!(t["seatInfo"]["row"], "A");
        assert_eq!(t["seatInfo"]["section"], "Standard");
        assert_eq!(t["seatInfo"]["price"]["amountMinor"], 2500);
        assert!(t["issuedAt"].is_string());
        assert!(t["qrString"].as_str().unwrap().starts_with("T1.test-1."));
        numbers.push(t["ticketNumber"].as_str().unwrap().to_string());
        let qr = app
            .find_one("qr_codes", doc! {"_id": oid(&t["qrCodeId"])})
            .await
            .expect("a qr_codes document");
        assert_eq!(qr.get_object_id("ticketId").unwrap(), oid(&t["id"]));
        assert_eq!(
            qr.get_str("qrString").unwrap(),
            t["qrString"].as_str().unwrap()
        );
        assert!(qr.get_bool("isValid").unwrap());
        assert_eq!(qr.get_i64("scanCount").unwrap(), 0);
        assert_eq!(qr.get_str("errorCorrectionLevel").unwrap(), "M");
        assert!((1..=40).contains(&qr.get_i32("version").unwrap()));
    }
    assert!(numbers.iter().all(|n| n.starts_with("TKT-")));
    assert_ne!(numbers[0], numbers[1]);

    let ticket = &tickets[0];
    let tid = ticket["id"].as_str().unwrap();
    let qr_string = ticket["qrString"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/tickets/{tid}"), Some(&user))
            .await
            .status,
        200
    );
    let peek = app.get(&format!("/v1/tickets/{tid}"), Some(&other)).await;
    assert_eq!((peek.status, peek.code()), (404, "ticket_not_found"));
    let peek = app
        .get(&format!("/v1/bookings/{booking}/tickets"), Some(&other))
        .await;
    assert_eq!((peek.status, peek.code()), (404, "booking_not_found"));
    let peek = app
        .get(&format!("/v1/tickets/{tid}/qr.png"), Some(&other))
        .await;
    assert_eq!((peek.status, peek.code()), (404, "ticket_not_found"));

    // The PNG reads back as the QR string, and the download is counted.
    let png = app
        .http
        .get(app.url(&format!("/v1/tickets/{tid}/qr.png")))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    let bytes = png.bytes().await.unwrap();
    assert_eq!(decode_png(&bytes), qr_string);
    let counted = wait_until(Duration::from_secs(5), || async {
        let t = app
            .find_one("tickets", doc! {"_id": oid(&ticket["id"])})
            .await
            .unwrap();
        t.get_i64("downloadCount").unwrap_or(0) == 1 && t.get_datetime("downloadedAt").is_ok()
    })
    .await;
    assert!(counted, "the download is recorded");

    // A gate checks the string offline with the published keys.
    let keys = app.get("/v1/scan-keys", Some(&user)).await;
    assert_eq!((keys.status, keys.code()), (403, "forbidden"));
    let keys = app.get("/v1/scan-keys", Some(&admin)).await;
    assert_eq!(keys.status, 200, "{keys:?}");
    assert_eq!(keys.body["keys"][0]["kid"], "test-1");
    assert_eq!(keys.body["keys"][0]["alg"], "Ed25519");
    let published: Vec<PublicKeyInfo> = serde_json::from_value(keys.body["keys"].clone()).unwrap();
    let offline = QrVerifier::from_public_keys(&published)
        .unwrap()
        .verify(qr_string)
        .unwrap();
    assert_eq!(offline.ticket_id, oid(&ticket["id"]));
    assert_eq!(offline.seat_id, ObjectId::parse_str(&seats[0]).unwrap());
    assert_eq!(offline.user_id, ObjectId::parse_str(&user_id).unwrap());
    let b = app
        .get(&format!("/v1/bookings/{booking}"), Some(&user))
        .await;
    assert_eq!(
        offline.booking_reference.as_str(),
        b.body["bookingReference"]
    );

    // Only staff scan; the first scan lets in, the second is told when and where.
    let denied = scan(&app, &user, qr_string, "A").await;
    assert_eq!((denied.status, denied.code()), (403, "forbidden"));
    let first = scan(&app, &admin, qr_string, "A").await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body["status"], "success", "{first:?}");
    assert_eq!(first.body["ticket"]["ticketNumber"], ticket["ticketNumber"]);
    let second = scan(&app, &admin, qr_string, "B").await;
    assert_eq!(second.body["status"], "already_scanned", "{second:?}");
    assert_eq!(second.body["firstScan"]["gate"], "A");
    assert!(second.body["firstScan"]["scannedAt"].is_string());

    // The documents follow the answer through the projection.
    let stored = app
        .find_when(
            "tickets",
            doc! {"_id": oid(&ticket["id"]), "status": "scanned"},
        )
        .await
        .expect("the ticket is recorded as scanned");
    assert_eq!(stored.get_str("scanLocation").unwrap(), "A");
    assert!(stored.get_datetime("scannedAt").is_ok());
    assert!(stored.get_object_id("scannedByUserId").is_ok());
    let qr = app
        .find_when(
            "qr_codes",
            doc! {"_id": oid(&ticket["qrCodeId"]), "scanCount": 1_i64},
        )
        .await
        .expect("the QR code counts the scan");
    assert_eq!(qr.get_i64("scanCount").unwrap(), 1);
    assert!(qr.get_datetime("lastScannedAt").is_ok());
    let tid = oid(&ticket["id"]);
    assert_eq!(
        app.settled_count("ticket_scans", doc! {"ticketId": tid}, 2)
            .await,
        2
    );
    assert_eq!(successes(&app, tid).await, 1, "one success per ticket");
    app.shutdown().await;
}

#[tokio::test]
async fn concurrent_scans_of_one_ticket_at_many_gates_let_exactly_one_in() {
    let app = spawn_app().await;
    let (admin, ticket) = one_ticket(&app).await;
    let qr = ticket["qrString"].as_str().unwrap();

    const SCANS: usize = 24;
    let gates: Vec<String> = (0..SCANS).map(|i| format!("G{i}")).collect();
    let answers = join_all(gates.iter().map(|g| scan(&app, &admin, qr, g))).await;
    assert!(answers.iter().all(|r| r.status == 200), "{answers:?}");
    let winners: Vec<_> = answers
        .iter()
        .filter(|r| r.body["status"] == "success")
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    assert_eq!(winners[0].body["ticket"]["id"], ticket["id"]);
    let won_at = &gates[answers
        .iter()
        .position(|r| r.body["status"] == "success")
        .unwrap()];
    for r in answers.iter().filter(|r| r.body["status"] != "success") {
        assert_eq!(r.body["status"], "already_scanned", "{r:?}");
        assert_eq!(r.body["firstScan"]["gate"], won_at.as_str(), "{r:?}");
    }
    let tid = oid(&ticket["id"]);
    assert_eq!(
        app.settled_count("ticket_scans", doc! {"ticketId": tid}, SCANS as u64)
            .await,
        SCANS as u64
    );
    assert_eq!(successes(&app, tid).await, 1, "one success per ticket");
    let stored = app
        .find_when("tickets", doc! {"_id": tid, "status": "scanned"})
        .await
        .unwrap();
    assert_eq!(stored.get_str("scanLocation").unwrap(), won_at);
    app.shutdown().await;
}

#[tokio::test]
async fn tampered_foreign_unknown_and_cancelled_codes_are_refused_and_recorded() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let kept = paid_booking(&app, &user, &event, &seats[..1]).await;
    let cancelled = paid_booking(&app, &user, &event, &seats[1..2]).await;
    let good = tickets_of(&app, &user, &kept, 1).await.remove(0);
    let doomed = tickets_of(&app, &user, &cancelled, 1).await.remove(0);
    let qr = good["qrString"].as_str().unwrap().to_string();
    let payload = QrVerifier::from_public_keys(&[test_signer().public_key()])
        .unwrap()
        .verify(&qr)
        .unwrap();

    // One byte of the payload changed.
    let mut bytes = qr.clone().into_bytes();
    let i = qr.find('.').unwrap() + "test-1.".len() + 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    // The same data signed by a key the platform never published, under its own id and
    // under ours.
    let rogue = QrSigner::from_seed(KeyId::parse("rogue").unwrap(), [9; 32]).sign(&payload);
    let forged = QrSigner::from_seed(KeyId::parse("test-1").unwrap(), [9; 32]).sign(&payload);
    // Our signature on a ticket that does not exist.
    let ghost = test_signer().sign(&QrPayload {
        ticket_id: ObjectId::new(),
        ..payload.clone()
    });

    let c = app
        .post(
            &format!("/v1/bookings/{cancelled}/cancel"),
            Some(&user),
            json!({}),
        )
        .await;
    assert_eq!(c.status, 200, "{c:?}");

    let cases = [
        (tampered.as_str(), "invalid_qr", "bad_signature"),
        (rogue.as_str(), "invalid_qr", "unknown_key"),
        (forged.as_str(), "invalid_qr", "bad_signature"),
        ("hello, gate", "invalid_qr", "malformed"),
        (ghost.as_str(), "invalid_qr", "unknown_ticket"),
        (
            doomed["qrString"].as_str().unwrap(),
            "ticket_cancelled",
            "user_requested",
        ),
    ];
    for (qr, status, reason) in cases {
        let r = scan(&app, &admin, qr, "A").await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            (r.body["status"].as_str(), r.body["reason"].as_str()),
            (Some(status), Some(reason)),
            "{qr}: {r:?}"
        );
        let rec = app
            .find_when("ticket_scans", doc! {"_id": oid(&r.body["scanId"])})
            .await
            .expect("the scan is recorded");
        assert_eq!(rec.get_str("scanStatus").unwrap(), status);
        assert_eq!(rec.get_str("failureReason").unwrap(), reason);
        assert_eq!(rec.get_str("scannedByDeviceId").unwrap(), "scanner-A");
        assert!(rec.get_object_id("scannedByUserId").is_ok());
        assert_eq!(rec.get_str("ipAddress").unwrap(), "127.0.0.1");
        assert_eq!(rec.get_str("userAgent").unwrap(), SCANNER_AGENT);
    }
    assert_eq!(
        app.settled_count("ticket_scans", doc! {"scanStatus": "invalid_qr"}, 5)
            .await,
        5
    );
    assert_eq!(
        app.settled_count("ticket_scans", doc! {"scanStatus": "ticket_cancelled"}, 1)
            .await,
        1
    );
    let t = app
        .find_one("tickets", doc! {"_id": oid(&doomed["id"])})
        .await
        .unwrap();
    assert_eq!(t.get_str("status").unwrap(), "cancelled");
    let q = app
        .find_one("qr_codes", doc! {"_id": oid(&doomed["qrCodeId"])})
        .await
        .unwrap();
    assert!(!q.get_bool("isValid").unwrap());
    assert_eq!(q.get_str("invalidationReason").unwrap(), "user_requested");
    // The good ticket still gets in.
    assert_eq!(scan(&app, &admin, &qr, "A").await.body["status"], "success");
    app.shutdown().await;
}

#[tokio::test]
async fn redelivered_issuance_still_gives_one_ticket_per_seat() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let booking = paid_booking(&app, &user, &event, &seats[..3]).await;
    let first = tickets_of(&app, &user, &booking, 3).await;

    // The confirmation again, under a new message id, as a replay would publish it.
    let subject = app.ns.event("booking", "confirmed");
    let stream = app.js.get_stream(app.ns.events_stream()).await.unwrap();
    let original = stream
        .get_last_raw_message_by_subject(&subject)
        .await
        .unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, "replayed-confirmation");
    app.js
        .publish_with_headers(subject, headers, original.payload.clone())
        .await
        .unwrap()
        .await
        .unwrap();
    // And the issuing function run by hand, several times at once.
    let ctx = app.workers.lock().await.as_ref().unwrap().ctx.clone();
    let ctx = &ctx;
    let bid = ObjectId::parse_str(&booking).unwrap();
    for r in join_all((0..4).map(|_| workers::issue_tickets(ctx, bid))).await {
        assert_eq!(r.expect("issue again").len(), 3);
    }
    let consumer = app.ns.projection_consumer("ticketing");
    let drained = wait_until(Duration::from_secs(10), || async {
        let mut c: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(&consumer).await.unwrap();
        let info = c.info().await.unwrap();
        info.num_pending == 0 && info.num_ack_pending == 0
    })
    .await;
    assert!(drained, "the replayed confirmation was handled");

    assert_eq!(app.count("tickets", doc! {"bookingId": bid}).await, 3);
    let again = tickets_of(&app, &user, &booking, 3).await;
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(a["id"], b["id"]);
        assert_eq!(a["qrString"], b["qrString"]);
        assert_eq!(a["ticketNumber"], b["ticketNumber"]);
        assert_eq!(
            app.count("qr_codes", doc! {"ticketId": oid(&a["id"])})
                .await,
            1
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_ticket_is_refused_as_expired_once_its_event_is_over() {
    let mut app = spawn_app().await;
    let (admin, ticket) = one_ticket(&app).await;
    // Events are created in the future; a gate window that closed years before the
    // start makes this one over.
    app.stop_workers().await;
    app.workers_cfg.scan_grace_secs = -20 * 365 * 86_400;
    app.start_workers().await;
    let r = scan(&app, &admin, ticket["qrString"].as_str().unwrap(), "A").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["status"].as_str(), r.body["reason"].as_str()),
        (Some("ticket_expired"), Some("event_over")),
        "{r:?}"
    );
    let rec = app
        .find_when("ticket_scans", doc! {"_id": oid(&r.body["scanId"])})
        .await
        .expect("the scan is recorded");
    assert_eq!(rec.get_str("scanStatus").unwrap(), "ticket_expired");
    let t = app
        .find_one("tickets", doc! {"_id": oid(&ticket["id"])})
        .await
        .unwrap();
    assert_eq!(
        t.get_str("status").unwrap(),
        "active",
        "an expired scan changes nothing"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_redelivered_scan_lets_in_once_and_is_recorded_once() {
    use streams::commands::{Command, Issuer, ScanTicket};
    let app = spawn_app().await;
    let (_, ticket) = one_ticket(&app).await;
    let staff = Some(Issuer {
        user_id: ObjectId::new(),
        role: domain::user::Role::Admin,
    });
    let scan_of = |id: &str| {
        e2e::envelope(
            id,
            staff.clone(),
            Command::ScanTicket(ScanTicket {
                qr_string: ticket["qrString"].as_str().unwrap().to_string(),
                device_id: "scanner-R".into(),
                gate: Some("R".into()),
            }),
        )
    };
    let env = scan_of("redelivered-scan-1");
    let first = app.send_command(&env).await.expect("first reply");
    assert_eq!(first.body["status"], "success", "{first:?}");
    // The result is lost, the effect kept: the redelivered scan is still the winner,
    // with the same record, and nothing is recorded twice.
    crate::redelivery::forget_result(&app, &env.id).await;
    let again = crate::redelivery::publish_again(&app, &env).await;
    assert_eq!(again.body["status"], "success", "{again:?}");
    assert_eq!(again.body["scanId"], first.body["scanId"]);
    let other = app.send_command(&scan_of("another-scan-2")).await.unwrap();
    assert_eq!(other.body["status"], "already_scanned", "{other:?}");
    let tid = oid(&ticket["id"]);
    assert_eq!(
        app.settled_count("ticket_scans", doc! {"ticketId": tid}, 2)
            .await,
        2,
        "one success, one already_scanned"
    );
    assert_eq!(successes(&app, tid).await, 1, "one success per ticket");
    let qr = app
        .find_when(
            "qr_codes",
            doc! {"_id": oid(&ticket["qrCodeId"]), "scanCount": 1_i64},
        )
        .await;
    assert!(qr.is_some(), "the QR code counts one scan");
    app.shutdown().await;
}
