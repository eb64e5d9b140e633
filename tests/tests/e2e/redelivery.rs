use async_nats::HeaderMap;
use bson::doc;
use bson::oid::ObjectId;
use domain::user::Role;
use e2e::{envelope, spawn_app};
use streams::commands::{Command, CreateHold, Issuer};
use streams::Reply;

async fn setup(app: &e2e::TestApp) -> (ObjectId, Vec<ObjectId>, Issuer) {
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app
        .seat_ids(&event)
        .await
        .iter()
        .map(|s| ObjectId::parse_str(s).unwrap())
        .collect();
    let (user_id, _) = app.new_user().await;
    (
        ObjectId::parse_str(&event).unwrap(),
        seats,
        Issuer {
            user_id: ObjectId::parse_str(&user_id).unwrap(),
            role: Role::User,
        },
    )
}

/// Deletes a command's stored result, as if the worker had died after the effect and
/// before storing it.
pub(crate) async fn forget_result(app: &e2e::TestApp, command_id: &str) {
    app.js
        .get_key_value(app.ns.results_bucket())
        .await
        .unwrap()
        .delete(command_id)
        .await
        .unwrap();
}

/// Publishes the envelope under a fresh `Nats-Msg-Id`, so JetStream's duplicate window
/// does not catch it: the worker itself must see the same command id twice.
pub(crate) async fn publish_again(
    app: &e2e::TestApp,
    env: &streams::commands::CommandEnvelope,
) -> Reply {
    let (area, verb) = env.command.route();
    let payload = serde_json::to_vec(env).unwrap();
    publish_raw(
        app,
        &app.ns.command(area, verb),
        payload,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
}

/// Publishes `payload` to `subject` under `msg_id`, signed by the gateway's key, with a
/// reply inbox of ours, and waits for the worker's answer there.
async fn publish_raw(app: &e2e::TestApp, subject: &str, payload: Vec<u8>, msg_id: &str) -> Reply {
    let inbox = app.nats.new_inbox();
    let mut sub = app.nats.subscribe(inbox.clone()).await.unwrap();
    let mut h = HeaderMap::new();
    h.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
    h.insert(streams::headers::REPLY_TO, inbox.as_str());
    app.signer.sign_into(&mut h, &payload);
    app.js
        .publish_with_headers(subject.to_string(), h, payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
    let msg = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        futures::StreamExt::next(&mut sub),
    )
    .await
    .unwrap()
    .unwrap();
    serde_json::from_slice(&msg.payload).unwrap()
}

#[tokio::test]
async fn a_hold_command_delivered_twice_has_one_effect() {
    let app = spawn_app().await;
    let (event, seats, issuer) = setup(&app).await;
    let env = envelope(
        "redelivered-hold-1",
        Some(issuer),
        Command::CreateHold(CreateHold {
            event_id: event,
            seat_ids: vec![seats[0], seats[1]],
        }),
    );

    // Straight to NATS, as another system would: the worker answers on our inbox.
    let first = app.send_command(&env).await.expect("first reply");
    assert_eq!(first.status, 201, "{first:?}");
    let second = publish_again(&app, &env).await;
    assert_eq!(
        second, first,
        "the redelivery answers with the first result"
    );

    // The result was lost but the effect stored: the worker finds the hold, takes nothing twice.
    forget_result(&app, &env.id).await;
    let third = publish_again(&app, &env).await;
    assert_eq!(third.status, 201);
    assert_eq!(third.body["id"], first.body["id"]);

    assert_eq!(
        app.settled_count("seat_holds", doc! {"eventId": event}, 1)
            .await,
        1
    );
    assert!(
        app.wait_seats(doc! {"eventId": event, "status": "held"}, 2)
            .await
    );
    let seat = app.find_one("seats", doc! {"_id": seats[0]}).await.unwrap();
    assert_eq!(
        seat.get_i64("version").unwrap(),
        1,
        "the seat was written once"
    );
    assert_eq!(
        app.count("seats", doc! {"eventId": event, "status": "held"})
            .await,
        2
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_command_sent_twice_through_jetstream_dedup_is_applied_once() {
    let app = spawn_app().await;
    let (event, seats, issuer) = setup(&app).await;
    let env = envelope(
        "dup-hold-2",
        Some(issuer),
        Command::CreateHold(CreateHold {
            event_id: event,
            seat_ids: vec![seats[2]],
        }),
    );
    let first = app.send_command(&env).await.expect("reply");
    assert_eq!(first.status, 201);
    let p = streams::publish::publish_command(&app.js, &app.ns, &app.signer, &env, None, None)
        .await
        .unwrap();
    assert!(
        p.duplicate,
        "JetStream drops the same Nats-Msg-Id inside the window"
    );
    assert_eq!(
        app.settled_count("seat_holds", doc! {"eventId": event}, 1)
            .await,
        1
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_payment_command_redelivered_after_its_effect_charges_once() {
    use streams::commands::PayBooking;
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (user_id, token) = app.new_user().await;
    let booking = app.book(&token, &event, &seats[..2]).await;
    let booking_id = ObjectId::parse_str(booking["id"].as_str().unwrap()).unwrap();
    let vault = app
        .js
        .get_key_value(app.ns.card_vault_bucket())
        .await
        .unwrap();
    vault
        .put("tok-redelivery", "4242424242424242".into())
        .await
        .unwrap();
    let issuer = Issuer {
        user_id: ObjectId::parse_str(&user_id).unwrap(),
        role: Role::User,
    };
    let env = envelope(
        "redelivered-pay-1",
        Some(issuer),
        Command::PayBooking(PayBooking {
            booking_id,
            method: domain::entities::payment::PaymentMethod::Card,
            card_token: "tok-redelivery".into(),
            card_last4: "4242".into(),
            card_brand: domain::entities::card::CardBrand::Visa,
            currency: None,
        }),
    );
    let first = app.send_command(&env).await.expect("reply");
    assert_eq!(first.status, 201, "{first:?}");
    // The result is lost; the command comes again (the card token is gone by now too).
    forget_result(&app, &env.id).await;
    let second = publish_again(&app, &env).await;
    assert_eq!(second.status, 201, "{second:?}");
    assert_eq!(second.body["payment"]["id"], first.body["payment"]["id"]);
    assert_eq!(
        app.count("payment_gateway_ledger", doc! {"type": "charge"})
            .await,
        1,
        "charged once"
    );
    assert_eq!(
        app.count("payments", doc! {"bookingId": booking_id}).await,
        1
    );
    assert!(app.wait_seats(doc! {"status": "booked"}, 2).await);
    app.shutdown().await;
}

/// A declined attempt's command comes again after another card paid the booking: it
/// answers its own attempt's decline again, charges nothing and starts no new attempt.
#[tokio::test]
async fn a_declined_payment_command_redelivered_after_another_card_paid_charges_nothing() {
    use streams::commands::PayBooking;
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (user_id, token) = app.new_user().await;
    let booking = app.book(&token, &event, &seats[..1]).await;
    let booking_id = ObjectId::parse_str(booking["id"].as_str().unwrap()).unwrap();
    let vault = app
        .js
        .get_key_value(app.ns.card_vault_bucket())
        .await
        .unwrap();
    vault
        .put("tok-declined", "4000000000000002".into())
        .await
        .unwrap();
    let env = envelope(
        "redelivered-pay-declined",
        Some(Issuer {
            user_id: ObjectId::parse_str(&user_id).unwrap(),
            role: Role::User,
        }),
        Command::PayBooking(PayBooking {
            booking_id,
            method: domain::entities::payment::PaymentMethod::Card,
            card_token: "tok-declined".into(),
            card_last4: "0002".into(),
            card_brand: domain::entities::card::CardBrand::Visa,
            currency: None,
        }),
    );
    let first = app.send_command(&env).await.expect("reply");
    assert_eq!(first.status, 402, "{first:?}");
    assert!(
        vault.get("tok-declined").await.unwrap().is_none(),
        "the declined card left the vault"
    );
    let paid = app
        .pay(&token, booking["id"].as_str().unwrap(), "4242424242424242")
        .await;
    assert_eq!(paid.status, 201, "{paid:?}");
    forget_result(&app, &env.id).await;
    let second = publish_again(&app, &env).await;
    assert_eq!(second.status, 402, "{second:?}");
    let (a, b) = (
        &first.body["error"]["details"],
        &second.body["error"]["details"],
    );
    assert_eq!(a["payment"]["id"], b["payment"]["id"], "its own attempt");
    assert_eq!(b["booking"]["status"], "confirmed", "{second:?}");
    assert_eq!(b["bookingPayable"], false);
    assert_eq!(
        app.count("payment_gateway_ledger", doc! {"type": "charge"})
            .await,
        2,
        "one decline, one approval"
    );
    assert_eq!(
        app.count("payments", doc! {"bookingId": booking_id}).await,
        2
    );
    app.shutdown().await;
}

#[tokio::test]
async fn an_undecodable_command_is_dead_lettered_with_its_reason() {
    let app = spawn_app().await;
    let subject = app.ns.command(streams::names::Area::Holds, "create");
    let reply = publish_raw(&app, &subject, b"{not json".to_vec(), "garbage-1").await;
    assert_eq!(reply.status, 400, "the sender is told: {reply:?}");
    assert_eq!(reply.code(), Some("invalid_json"), "{reply:?}");
    let mut dlq = app.js.get_stream(app.ns.deadletter_stream()).await.unwrap();
    assert_eq!(dlq.info().await.unwrap().state.messages, 1);
    let dead = dlq
        .get_last_raw_message_by_subject(
            &app.ns
                .deadletter_for(&app.ns.command(streams::names::Area::Holds, "create")),
        )
        .await
        .unwrap();
    let reason = dead
        .headers
        .get(streams::headers::DEADLETTER_REASON)
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(reason.contains("undecodable"), "{reason}");
    app.shutdown().await;
}

/// A pay command with a method no one accepts is refused as it decodes (400
/// `validation_failed`, the reason kept in DEADLETTERS), never paid by card.
#[tokio::test]
async fn a_pay_command_with_an_unknown_method_is_refused_not_taken_for_a_card() {
    let app = spawn_app().await;
    let booking_id = ObjectId::new();
    let env = envelope(
        "pay-bitcoin-1",
        Some(Issuer {
            user_id: ObjectId::new(),
            role: Role::User,
        }),
        Command::PayBooking(streams::commands::PayBooking {
            booking_id,
            method: domain::entities::payment::PaymentMethod::Card,
            card_token: "tok-bitcoin".into(),
            card_last4: "4242".into(),
            card_brand: domain::entities::card::CardBrand::Visa,
            currency: None,
        }),
    );
    let mut body = serde_json::to_value(&env).unwrap();
    body["payload"]["method"] = "bitcoin".into();
    let subject = app.ns.command(streams::names::Area::Payments, "create");
    let reply = publish_raw(&app, &subject, serde_json::to_vec(&body).unwrap(), &env.id).await;
    assert_eq!(reply.status, 400, "the sender is told: {reply:?}");
    assert_eq!(reply.code(), Some("validation_failed"), "{reply:?}");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("bitcoin")),
        "the message says what was wrong: {reply:?}"
    );
    let dlq = app.js.get_stream(app.ns.deadletter_stream()).await.unwrap();
    let dead = dlq
        .get_last_raw_message_by_subject(&app.ns.deadletter_for(&subject))
        .await
        .unwrap();
    let reason = dead
        .headers
        .get(streams::headers::DEADLETTER_REASON)
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(reason.contains("bitcoin"), "{reason}");
    assert_eq!(
        app.count("payments", doc! {"bookingId": booking_id}).await,
        0
    );
    app.shutdown().await;
}

#[tokio::test]
async fn an_undecodable_event_is_dead_lettered_by_each_consumer_over_it() {
    let app = spawn_app().await;
    let subject = app.ns.event("booking", "confirmed");
    app.js
        .publish(subject.clone(), b"{not json".to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
    // audit, counters, analytics and notifications read every event; tickets reads
    // booking.*; none may ack it silently.
    let expected = 5;
    let dlq_subject = app.ns.deadletter_for(&subject);
    let arrived = e2e::wait_until(std::time::Duration::from_secs(20), || async {
        let mut dlq = app.js.get_stream(app.ns.deadletter_stream()).await.unwrap();
        dlq.info().await.unwrap().state.messages >= expected
    })
    .await;
    let dlq = app.js.get_stream(app.ns.deadletter_stream()).await.unwrap();
    let mut dlq = dlq;
    assert!(
        arrived,
        "dead letters: {}",
        dlq.info().await.unwrap().state.messages
    );
    assert_eq!(dlq.info().await.unwrap().state.messages, expected);
    let dead = dlq
        .get_last_raw_message_by_subject(&dlq_subject)
        .await
        .unwrap();
    let reason = dead
        .headers
        .get(streams::headers::DEADLETTER_REASON)
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(reason.contains("undecodable"), "{reason}");
    app.shutdown().await;
}
