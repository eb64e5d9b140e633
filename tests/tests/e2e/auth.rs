//! Who may send commands: nats-server refuses anonymous clients and holds each identity
//! to its subjects; the workers apply a command only when a key they trust signed it,
//! inside that key's grant.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use bson::doc;
use bson::oid::ObjectId;
use domain::user::Role;
use e2e::{envelope, nats_as, nats_password, nats_url, spawn_app, TestApp};
use futures::StreamExt;
use streams::commands::{Command, CommandEnvelope, CreateHold, EventRef, Issuer};
use streams::headers;
use streams::names::Area;
use streams::proof::{CommandSigner, Registry, SignerEntry, Trust, ANY};
use streams::Reply;

/// Publishes `body` to `subject` through `client` under `msg_id`, with `proof` applied to
/// the headers, and waits for the worker's answer on an inbox of that client's.
async fn send(
    client: &async_nats::Client,
    subject: &str,
    msg_id: &str,
    body: &[u8],
    proof: impl FnOnce(&mut HeaderMap),
) -> Option<Reply> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    let mut h = HeaderMap::new();
    h.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
    h.insert(headers::REPLY_TO, inbox.as_str());
    proof(&mut h);
    let js = jetstream::new(client.clone());
    js.publish_with_headers(subject.to_string(), h, body.to_vec().into())
        .await
        .unwrap()
        .await
        .expect("stored by JetStream");
    let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .ok()??;
    serde_json::from_slice(&msg.payload).ok()
}

fn issuer(id: &str, role: Role) -> Issuer {
    Issuer {
        user_id: ObjectId::parse_str(id).unwrap(),
        role,
    }
}

/// A `create_hold` of one seat by `user` (hex ids, as the API gives them).
fn hold_of(id: &str, user: &str, event: &str, seat: &str) -> CommandEnvelope {
    envelope(
        id,
        Some(issuer(user, Role::User)),
        Command::CreateHold(CreateHold {
            event_id: ObjectId::parse_str(event).unwrap(),
            seat_ids: vec![ObjectId::parse_str(seat).unwrap()],
        }),
    )
}

async fn event_status(app: &TestApp, event: &str) -> String {
    let r = app.get(&format!("/v1/events/{event}"), None).await;
    r.body["status"].as_str().unwrap_or_default().to_string()
}

/// The dead letter of the last refused command on `subject`: its reason and message id.
async fn last_dead_letter(app: &TestApp, subject: &str) -> (String, String) {
    let stream = app.js.get_stream(app.ns.deadletter_stream()).await.unwrap();
    let m = stream
        .get_last_raw_message_by_subject(&app.ns.deadletter_for(subject))
        .await
        .expect("a dead letter");
    let h = m.headers;
    let get = |n: &str| h.get(n).map(|v| v.as_str().to_string()).unwrap_or_default();
    (
        get(headers::DEADLETTER_REASON),
        get(async_nats::header::NATS_MESSAGE_ID.as_ref()),
    )
}

#[tokio::test]
async fn an_anonymous_or_wrongly_authenticated_nats_client_is_refused() {
    assert!(
        async_nats::connect(nats_url()).await.is_err(),
        "nats-server must refuse a client without credentials"
    );
    let wrong = async_nats::ConnectOptions::with_user_and_password(
        "operator".into(),
        "not-the-password".into(),
    )
    .connect(nats_url())
    .await;
    assert!(wrong.is_err(), "a wrong password must be refused");
    // And a known identity with its password gets in.
    let ok = nats_as("boxoffice").await;
    assert_eq!(
        ok.connection_state(),
        async_nats::connection::State::Connected
    );
    assert!(!nats_password("gateway").is_empty());
}

#[tokio::test]
async fn forged_changed_unknown_expired_and_ungranted_commands_change_nothing_and_are_audited() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 2).await;
    let event_oid = ObjectId::parse_str(&event).unwrap();
    let subject = app.ns.command(Area::Events, "cancel");
    // The claimed issuer: an admin id the forger made up.
    let claimed = issuer("000000000000000000000001", Role::Admin);
    let cancel = |id: &str| {
        envelope(
            id,
            Some(claimed.clone()),
            Command::CancelEvent(EventRef {
                event_id: event_oid,
            }),
        )
    };
    let stranger = CommandSigner::generate("stranger-1").unwrap();
    let body_of = |env: &CommandEnvelope| serde_json::to_vec(env).unwrap();

    struct Case {
        id: &'static str,
        code: &'static str,
        status: u16,
    }
    let cases = [
        Case {
            id: "forged-1",
            code: "command_unsigned",
            status: 401,
        },
        Case {
            id: "forged-changed",
            code: "command_signature_invalid",
            status: 401,
        },
        Case {
            id: "forged-stranger",
            code: "command_signer_unknown",
            status: 401,
        },
        Case {
            id: "boxoffice-forged",
            code: "command_not_granted",
            status: 403,
        },
        Case {
            id: "forged-expired",
            code: "command_expired",
            status: 401,
        },
    ];
    for case in &cases {
        let env = cancel(case.id);
        let body = body_of(&env);
        let reply = match case.id {
            // The issue's forgery: no proof at all.
            "forged-1" => send(&app.nats, &subject, case.id, &body, |_| {}).await,
            // The gateway's valid signature over another body (the payload changed after
            // signing: another event id).
            "forged-changed" => {
                let mut other = env.clone();
                other.command = Command::CancelEvent(EventRef {
                    event_id: ObjectId::new(),
                });
                let signed_body = body_of(&other);
                send(&app.nats, &subject, case.id, &body, |h| {
                    app.signer.sign_into(h, &signed_body);
                })
                .await
            }
            "forged-stranger" => {
                send(&app.nats, &subject, case.id, &body, |h| {
                    stranger.sign_into(h, &body)
                })
                .await
            }
            // A trusted system outside its grant (holds.create as user only).
            "boxoffice-forged" => {
                send(&app.nats, &subject, case.id, &body, |h| {
                    app.boxoffice.sign_into(h, &body)
                })
                .await
            }
            // Validly signed by the gateway, but ten minutes before it was stored (a
            // captured envelope sent again).
            _ => {
                let mut old = env.clone();
                old.issued_at = chrono::Utc::now() - chrono::Duration::minutes(10);
                let body = body_of(&old);
                send(&app.nats, &subject, case.id, &body, |h| {
                    app.signer.sign_into(h, &body)
                })
                .await
            }
        }
        .unwrap_or_else(|| panic!("{}: no reply", case.id));
        assert_eq!(reply.status, case.status, "{}: {reply:?}", case.id);
        assert_eq!(reply.code(), Some(case.code), "{}: {reply:?}", case.id);

        // Dead-lettered with the reason, and terminated (not redelivered).
        let (reason, msg_id) = last_dead_letter(&app, &subject).await;
        assert_eq!(msg_id, case.id);
        assert!(reason.starts_with(case.code), "{}: {reason}", case.id);
        // No result kept under the id: a forged command answers for nobody.
        let results = app.js.get_key_value(app.ns.results_bucket()).await.unwrap();
        assert!(results.get(case.id).await.unwrap().is_none());
        // The audit log has the refusal, with the claimed issuer.
        let entry = app
            .find_when(
                "audit_logs",
                doc! {"commandId": case.id, "action": "command_refused"},
            )
            .await
            .unwrap_or_else(|| panic!("{}: no audit entry", case.id));
        assert_eq!(entry.get_str("status").unwrap(), "failure");
        assert_eq!(
            entry.get_object_id("userId").unwrap(),
            claimed.user_id,
            "the claimed issuer is recorded"
        );
        assert!(entry
            .get_str("failureReason")
            .unwrap()
            .starts_with(case.code));
    }
    // Nothing changed: the event is still on sale, and no refusal is pending redelivery.
    assert_eq!(event_status(&app, &event).await, "published");
    let consumer = app
        .js
        .get_stream(app.ns.commands_stream())
        .await
        .unwrap()
        .consumer_info(app.ns.command_consumer(Area::Events))
        .await
        .unwrap();
    assert_eq!(consumer.num_ack_pending, 0);
    assert_eq!(consumer.num_pending, 0);
    // The same cancellation signed by the gateway key (an admin through the API would) is
    // applied: the refusals above were about the proof, not the command.
    let env = cancel("genuine-cancel");
    let body = body_of(&env);
    let reply = send(&app.nats, &subject, "genuine-cancel", &body, |h| {
        app.signer.sign_into(h, &body)
    })
    .await
    .expect("reply");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(event_status(&app, &event).await, "cancelled");
    app.shutdown().await;
}

#[tokio::test]
async fn a_second_system_holds_seats_through_nats_once_but_cannot_cancel_an_event() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (user_id, _) = app.new_user().await;
    // The box office's own NATS identity: it may publish holds.create only and hears
    // replies on _INBOX.boxoffice.> only.
    let boxoffice = nats_as("boxoffice").await;
    let env = hold_of("boxoffice-hold-1", &user_id, &event, &seats[0]);
    let body = serde_json::to_vec(&env).unwrap();
    let subject = app.ns.command(Area::Holds, "create");
    let reply = send(&boxoffice, &subject, "boxoffice-hold-1", &body, |h| {
        app.boxoffice.sign_into(h, &body)
    })
    .await
    .expect("the box office hears its reply");
    assert_eq!(reply.status, 201, "{reply:?}");
    let hold_id = reply.body["id"].as_str().expect("hold id").to_string();
    assert_eq!(reply.body["seatIds"][0].as_str(), Some(seats[0].as_str()));
    // The seat is held for everyone.
    let held = app.seat_ids_with(&event, Some("held")).await;
    assert_eq!(held, vec![seats[0].clone()]);

    // Delivered again under a new message id (past JetStream's duplicate window): the
    // first answer, no second hold.
    let again = send(&boxoffice, &subject, "boxoffice-hold-1-again", &body, |h| {
        app.boxoffice.sign_into(h, &body)
    })
    .await
    .expect("reply");
    assert_eq!(again.body["id"].as_str(), Some(hold_id.as_str()));
    assert_eq!(
        app.settled_count(
            "seat_holds",
            doc! {"eventId": ObjectId::parse_str(&event).unwrap()},
            1
        )
        .await,
        1
    );

    // Cancelling the event: nats-server does not even take it from this identity. A
    // connection that reports the server's errors shows the permission violations.
    let (tx, mut violations) = tokio::sync::mpsc::unbounded_channel::<String>();
    let watched = async_nats::ConnectOptions::with_user_and_password(
        "boxoffice".into(),
        nats_password("boxoffice"),
    )
    .custom_inbox_prefix("_INBOX.boxoffice")
    .event_callback(move |event| {
        let tx = tx.clone();
        async move {
            if let async_nats::Event::ServerError(e) = event {
                let _ = tx.send(e.to_string());
            }
        }
    })
    .connect(nats_url())
    .await
    .unwrap();
    let boxoffice = watched;
    let cancel = envelope(
        "boxoffice-cancel",
        Some(issuer(&user_id, Role::Admin)),
        Command::CancelEvent(EventRef {
            event_id: ObjectId::parse_str(&event).unwrap(),
        }),
    );
    let body = serde_json::to_vec(&cancel).unwrap();
    let mut h = HeaderMap::new();
    h.insert(async_nats::header::NATS_MESSAGE_ID, "boxoffice-cancel");
    app.boxoffice.sign_into(&mut h, &body);
    let js = jetstream::new(boxoffice.clone());
    let stored = tokio::time::timeout(Duration::from_secs(3), async {
        js.publish_with_headers(app.ns.command(Area::Events, "cancel"), h, body.into())
            .await
            .ok()?
            .await
            .ok()
    })
    .await
    .ok()
    .flatten();
    assert!(
        stored.is_none(),
        "the box office's publish to events.cancel must not be stored"
    );
    let v = tokio::time::timeout(Duration::from_secs(5), violations.recv())
        .await
        .expect("a permissions violation reported")
        .unwrap();
    assert!(
        v.to_lowercase().contains("permissions violation") && v.contains("events.cancel"),
        "{v}"
    );
    // The operator sees no such message in COMMANDS.
    let commands = app.js.get_stream(app.ns.commands_stream()).await.unwrap();
    assert!(commands
        .get_last_raw_message_by_subject(&app.ns.command(Area::Events, "cancel"))
        .await
        .is_err());
    // Nor may it read another client's replies: the subscription is refused while the
    // gateway answers a request.
    let mut snoop = boxoffice.subscribe("_INBOX.gateway.>").await.unwrap();
    let v = tokio::time::timeout(Duration::from_secs(5), violations.recv())
        .await
        .expect("a permissions violation reported")
        .unwrap();
    assert!(v.contains("_INBOX.gateway"), "{v}");
    let _ = app.get(&format!("/v1/events/{event}"), None).await;
    let heard = tokio::time::timeout(Duration::from_millis(500), snoop.next()).await;
    assert!(
        !matches!(heard, Ok(Some(_))),
        "it heard the gateway's inbox"
    );

    // A reply subject aimed at something the workers may write (a seat's lock key) gets
    // nothing: only a client's inbox is answered.
    let target_seat = &seats[2];
    let lock_key = format!("{event}.{target_seat}");
    let mut h = HeaderMap::new();
    h.insert(async_nats::header::NATS_MESSAGE_ID, "boxoffice-aimed");
    h.insert(
        headers::REPLY_TO,
        format!("$KV.{}.{lock_key}", app.ns.seat_locks_bucket()).as_str(),
    );
    let aimed = hold_of("boxoffice-aimed", &user_id, &event, &seats[1]);
    let body = serde_json::to_vec(&aimed).unwrap();
    // Unsigned: refused, and the refusal is not written into the lock key either.
    js.publish_with_headers(subject.clone(), h, body.into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        e2e::wait_until(Duration::from_secs(5), || async {
            app.find_one("audit_logs", doc! {"commandId": "boxoffice-aimed"})
                .await
                .is_some()
        })
        .await
    );
    let locks = app
        .js
        .get_key_value(app.ns.seat_locks_bucket())
        .await
        .unwrap();
    assert!(locks.get(&lock_key).await.unwrap().is_none());

    // Another sender's id (the gateway's idempotency key of someone's request) is not
    // the box office's to use: refused before the stored result is looked at.
    let theirs = hold_of("idem-0123456789abcdef", &user_id, &event, &seats[1]);
    let body = serde_json::to_vec(&theirs).unwrap();
    let reply = send(&boxoffice, &subject, "idem-0123456789abcdef", &body, |h| {
        app.boxoffice.sign_into(h, &body)
    })
    .await
    .expect("reply");
    assert_eq!(reply.code(), Some("command_not_granted"), "{reply:?}");
    assert_eq!(event_status(&app, &event).await, "published");
    app.shutdown().await;
}

#[tokio::test]
async fn stored_commands_and_events_still_verify_after_the_keys_are_rotated() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 3).await;
    let seats = app.seat_ids(&event).await;
    let (_, token) = app.new_user().await;
    let r = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&token),
            serde_json::json!({"seatIds": [seats[0]]}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    // Made now: after the rotation this stack's gateway still signs with the old key.
    let (user_id, _) = app.new_user().await;

    // Rotation of both keys: the gateway's and the workers' get successors; the old ones
    // stay in the registry, retired.
    app.stop_workers().await;
    let new_gateway = CommandSigner::generate("gateway-test-2").unwrap();
    let new_workers = CommandSigner::generate("workers-test-2").unwrap();
    let old_workers_kid = app
        .registry
        .signers
        .iter()
        .find(|e| e.system == "workers")
        .unwrap()
        .kid
        .clone();
    let mut registry: Registry = app.registry.clone();
    let retired_at = chrono::Utc::now();
    for e in &mut registry.signers {
        if e.kid == app.signer.kid() || e.kid == old_workers_kid {
            e.retired_at = Some(retired_at);
        }
    }
    registry
        .signers
        .push(SignerEntry::new(&new_gateway, "gateway", &[ANY], &[ANY]));
    registry.signers.push(SignerEntry::new(
        &new_workers,
        "workers",
        streams::proof::WORKERS_COMMANDS,
        &[ANY],
    ));
    let path = app.workers_cfg.command_signers.clone().unwrap();
    std::fs::write(&path, serde_json::to_vec(&registry).unwrap()).unwrap();
    let mut cfg = app.workers_cfg.clone();
    cfg.command_signing_key = Some(new_workers.to_spec().into());
    app.start_workers_with(cfg).await;

    // The workers refuse what the retired key signs now, and apply what the new one signs.
    let hold = |id: &str, seat: &str| hold_of(id, &user_id, &event, seat);
    let subject = app.ns.command(Area::Holds, "create");
    let old = hold("rotated-old", &seats[1]);
    let body = serde_json::to_vec(&old).unwrap();
    let reply = send(&app.nats, &subject, "rotated-old", &body, |h| {
        app.signer.sign_into(h, &body)
    })
    .await
    .expect("reply");
    assert_eq!(reply.code(), Some("command_expired"), "{reply:?}");
    let new = hold("rotated-new", &seats[1]);
    let body = serde_json::to_vec(&new).unwrap();
    let reply = send(&app.nats, &subject, "rotated-new", &body, |h| {
        new_gateway.sign_into(h, &body)
    })
    .await
    .expect("reply");
    assert_eq!(reply.status, 201, "{reply:?}");

    // Replayed with the rotated registry, every stored command and event verifies: those
    // from before the rotation by the retired keys, the new ones by their successors.
    let trust = Trust::new(registry).unwrap();
    let mut event_signers = std::collections::BTreeSet::new();
    for (stream_name, is_command) in [
        (app.ns.commands_stream(), true),
        (app.ns.events_stream(), false),
    ] {
        let stream = app.js.get_stream(&stream_name).await.unwrap();
        let last = stream.cached_info().state.last_sequence;
        let mut checked = 0;
        for seq in 1..=last {
            let Ok(m) = stream.get_raw_message(seq).await else {
                continue;
            };
            let stored_at =
                chrono::DateTime::from_timestamp(m.time.unix_timestamp(), m.time.nanosecond())
                    .unwrap();
            if is_command {
                let env: CommandEnvelope = serde_json::from_slice(&m.payload).unwrap();
                let verdict =
                    trust.check_command(Some(&m.headers), &m.payload, &m.subject, &env, stored_at);
                if env.id == "rotated-old" {
                    assert!(verdict.is_err(), "stored after its key's retirement");
                } else {
                    verdict.unwrap_or_else(|e| panic!("{} #{seq}: {e}", m.subject));
                }
            } else {
                let signer = trust
                    .verify(Some(&m.headers), &m.payload)
                    .unwrap_or_else(|e| panic!("{} #{seq}: {e}", m.subject));
                assert_eq!(signer.system, "workers");
                event_signers.insert(signer.kid.clone());
            }
            checked += 1;
        }
        assert!(checked >= 3, "{stream_name}: only {checked} messages");
    }
    assert_eq!(
        event_signers,
        [old_workers_kid, new_workers.kid().to_string()].into(),
        "events from both sides of the rotation"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_stored_result_answers_only_the_sender_and_issuer_that_made_it() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 3).await;
    let seats = app.seat_ids(&event).await;
    let (alice, _) = app.new_user().await;
    let (bob, _) = app.new_user().await;
    let hold = |user: &str| hold_of("shared-id-1", user, &event, &seats[0]);
    let first = app.send_command(&hold(&alice)).await.expect("reply");
    assert_eq!(first.status, 201, "{first:?}");
    // The same id for another issuer, under a fresh Nats-Msg-Id (past the duplicate
    // window): not Alice's hold.
    let body = serde_json::to_vec(&hold(&bob)).unwrap();
    let subject = app.ns.command(Area::Holds, "create");
    let reply = send(&app.nats, &subject, "shared-id-1-bob", &body, |h| {
        app.signer.sign_into(h, &body)
    })
    .await
    .expect("reply");
    assert_eq!(reply.code(), Some("idempotency_key_reused"), "{reply:?}");
    assert!(reply.body.get("id").is_none());
    app.shutdown().await;
}

#[tokio::test]
async fn a_query_is_answered_only_when_a_trusted_key_signed_it_within_its_grant() {
    use streams::queries::{Query, QueryRequest};
    let app = spawn_app().await;
    let (user_id, token) = app.new_user().await;
    let req = QueryRequest {
        issuer: Some(issuer(&user_id, Role::User)),
        query: Query::Me,
    };
    let body = serde_json::to_vec(&req).unwrap();
    let ask = |h: HeaderMap| {
        let body = body.clone();
        let client = app.nats.clone();
        let subject = app.ns.query(req.query.name());
        async move {
            let m = client
                .request_with_headers(subject, h, body.into())
                .await
                .expect("an answer");
            serde_json::from_slice::<Reply>(&m.payload).expect("a reply")
        }
    };
    // Claimed, not proven: the queries worker says who is not proven and reads nothing.
    let unsigned = ask(HeaderMap::new()).await;
    assert_eq!(unsigned.code(), Some("command_unsigned"), "{unsigned:?}");
    let mut h = HeaderMap::new();
    app.boxoffice.sign_into(&mut h, &body);
    let outside = ask(h).await;
    assert_eq!(outside.code(), Some("command_not_granted"), "{outside:?}");
    let mut h = HeaderMap::new();
    app.signer.sign_into(&mut h, &body);
    let ok = ask(h).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body["id"].as_str(), Some(user_id.as_str()));
    // And the gateway's own reads still pass.
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.status, 200, "{me:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_token_minted_with_the_jwt_secret_cannot_invent_an_admin() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 2).await;
    // What a thief of the JWT secret can mint: an admin token for an invented account,
    // and an admin token for a real account that is only a user.
    let keys = gateway::auth::JwtKeys::new(&gateway::config::DEV_JWT_SECRET.to_string().into());
    let ttl = Duration::from_secs(600);
    let invented = keys
        .issue(&ObjectId::new(), Role::Admin, ttl)
        .expect("token");
    let (user_id, _) = app.new_user().await;
    let promoted = keys
        .issue(&ObjectId::parse_str(&user_id).unwrap(), Role::Admin, ttl)
        .expect("token");
    for token in [&invented, &promoted] {
        let r = app
            .post(
                &format!("/v1/events/{event}/cancel"),
                Some(token),
                serde_json::json!({}),
            )
            .await;
        assert_eq!((r.status, r.code()), (401, "invalid_token"), "{r:?}");
    }
    assert_eq!(event_status(&app, &event).await, "published");
    app.shutdown().await;
}

/// The README's worked example, as written there, with the nats CLI that
/// `scripts/servers.sh build` installs.
#[tokio::test]
async fn the_readme_example_holds_a_seat_with_the_nats_cli() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 2).await;
    let seats = app.seat_ids(&event).await;
    let (user_id, _) = app.new_user().await;
    let nats = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.data/bin/nats");
    assert!(
        nats.exists(),
        "{} (scripts/servers.sh build)",
        nats.display()
    );
    let cli = |args: &[&str]| {
        let mut c = tokio::process::Command::new(&nats);
        c.args(["--server", &nats_url(), "--user", "boxoffice", "--password"])
            .arg(nats_password("boxoffice"))
            .args(["--inbox-prefix", "_INBOX.boxoffice"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        c
    };
    let id = format!("boxoffice-cli-{}", &app.ns.root()[1..]);
    let body = format!(
        r#"{{"id":"{id}","issuer":{{"userId":"{user_id}","role":"user"}},"issuedAt":"{}","type":"create_hold","payload":{{"eventId":"{event}","seatIds":["{}"]}}}}"#,
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        seats[0]
    );
    let sig = app.boxoffice.sign(body.as_bytes());
    let inbox = format!("_INBOX.boxoffice.{id}");
    let sub = cli(&["sub", "--count", "1", &inbox])
        .spawn()
        .expect("nats sub");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let subject = app.ns.command(Area::Holds, "create");
    let pubd = cli(&[
        "pub",
        &subject,
        &body,
        "-H",
        &format!("Nats-Msg-Id:{id}"),
        "-H",
        &format!("Ticketing-Signer:{}", app.boxoffice.kid()),
        "-H",
        &format!("Ticketing-Signature:{sig}"),
        "-H",
        &format!("Ticketing-Reply-To:{inbox}"),
    ])
    .output()
    .await
    .expect("nats pub");
    assert!(
        pubd.status.success(),
        "{}",
        String::from_utf8_lossy(&pubd.stderr)
    );
    let out = tokio::time::timeout(Duration::from_secs(15), sub.wait_with_output())
        .await
        .expect("the reply within 15 s")
        .expect("nats sub output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(r#""status":201"#), "{text}");
    assert_eq!(
        app.seat_ids_with(&event, Some("held")).await,
        vec![seats[0].clone()]
    );
    // The same identity may not publish an event's cancellation at all.
    let refused = cli(&["pub", &app.ns.command(Area::Events, "cancel"), "{}"])
        .output()
        .await
        .expect("nats pub");
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    )
    .to_lowercase();
    assert!(err.contains("permissions violation"), "{err}");
    app.shutdown().await;
}
