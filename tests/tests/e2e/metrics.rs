//! The workers' Prometheus metrics, scraped over HTTP from a running stack's own
//! endpoint: commands applied and refused, seat locks taken, handler latency, dead
//! letters and every durable consumer's backlog.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::HeaderMap;
use bson::oid::ObjectId;
use domain::user::Role;
use e2e::{envelope, spawn_app, wait_until, TestApp};
use serde_json::json;
use streams::commands::{Command, CreateHold, Issuer};
use streams::headers;
use streams::names::Area;

/// One scrape: each series under `name{k="v",...}` with its labels sorted.
struct Scrape(BTreeMap<String, f64>);

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<(&str, &str)> = labels.to_vec();
    labels.sort();
    if labels.is_empty() {
        return name.to_string();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut out = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (key, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().expect("a number");
            let (name, labels) = match key.split_once('{') {
                Some((n, rest)) => {
                    let rest = rest.strip_suffix('}').expect("closing brace");
                    let labels: Vec<(&str, &str)> = rest
                        .split("\",")
                        .map(|kv| {
                            let (k, v) = kv.split_once("=\"").expect("k=\"v\"");
                            (k, v.trim_end_matches('"'))
                        })
                        .collect();
                    (n, labels)
                }
                None => (key, Vec::new()),
            };
            out.insert(series(name, &labels), value);
        }
        Scrape(out)
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0.get(&series(name, labels)).copied().unwrap_or(0.0)
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.0.contains_key(&series(name, labels))
    }
}

async fn scrape(app: &TestApp, url: &str) -> Scrape {
    let r = app.http.get(url).send().await.expect("metrics answer");
    assert_eq!(r.status(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.starts_with("text/plain"), "content type {ct}");
    Scrape::parse(&r.text().await.expect("a body"))
}

/// Scrapes until `f` holds (10 s at most); the last scrape either way.
async fn scrape_until(app: &TestApp, url: &str, f: impl Fn(&Scrape) -> bool) -> Scrape {
    let ok = wait_until(Duration::from_secs(10), || async {
        f(&scrape(app, url).await)
    })
    .await;
    let last = scrape(app, url).await;
    assert!(
        ok,
        "metrics never reached the expected values: {:#?}",
        last.0
    );
    last
}

const APPLIED: &str = "workers_commands_applied_total";
const REFUSED: &str = "workers_commands_refused_total";
const TAKEN: &str = "workers_seat_locks_taken_total";
const RELEASED: &str = "workers_seat_locks_released_total";
const LATENCY_COUNT: &str = "workers_handler_duration_seconds_count";
const PENDING: &str = "workers_consumer_pending";
const DEAD: &str = "workers_dead_lettered_total";

#[tokio::test]
async fn the_workers_metrics_count_a_hold_its_booking_its_locks_and_a_forged_command() {
    let app = spawn_app().await;
    let url = app
        .workers_metrics_url()
        .await
        .expect("the test stack serves its metrics");

    // Every durable consumer of the stack has its backlog gauge from the start.
    let first = scrape(&app, &url).await;
    for consumer in [
        "users",
        "events",
        "holds",
        "bookings",
        "payments",
        "tickets",
        "scans",
        "proj-audit",
        "proj-counters",
        "proj-analytics",
        "proj-notifications",
        "proj-ticketing",
        "proj-revocations",
    ] {
        assert!(
            first.has(PENDING, &[("consumer", consumer)]),
            "no pending gauge for {consumer}: {:#?}",
            first.0
        );
    }

    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let (other_id, other) = app.new_user().await;
    // Settled: the set-up's commands are all counted before the baseline is taken.
    let before = scrape_until(&app, &url, |s| {
        s.get(APPLIED, &[("command", "events.publish")]) >= 1.0
            && s.get(PENDING, &[("consumer", "users")]) == 0.0
    })
    .await;
    let holds = [("consumer", "holds")];
    let hold_cmd = [("command", "holds.create")];
    let base = |name: &str, labels: &[(&str, &str)]| before.get(name, labels);

    // A hold of two seats, then its booking.
    let h = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&user),
            json!({"seatIds": [seats[0], seats[1]]}),
        )
        .await;
    assert_eq!(h.status, 201, "{h:?}");
    let b = app
        .post("/v1/bookings", Some(&user), json!({"holdId": h.body["id"]}))
        .await;
    assert_eq!(b.status, 201, "{b:?}");
    let after = scrape_until(&app, &url, |s| {
        s.get(APPLIED, &[("command", "bookings.create")])
            >= base(APPLIED, &[("command", "bookings.create")]) + 1.0
            && s.get(LATENCY_COUNT, &[("consumer", "bookings")])
                >= base(LATENCY_COUNT, &[("consumer", "bookings")]) + 1.0
    })
    .await;
    assert_eq!(
        after.get(APPLIED, &hold_cmd),
        base(APPLIED, &hold_cmd) + 1.0
    );
    assert_eq!(
        after.get(APPLIED, &[("command", "bookings.create")]),
        base(APPLIED, &[("command", "bookings.create")]) + 1.0
    );
    assert_eq!(
        after.get(TAKEN, &[]),
        base(TAKEN, &[]) + 2.0,
        "two seats locked"
    );
    // The booking takes the hold's locks over: nothing is released.
    for reason in ["release", "rollback"] {
        assert_eq!(
            after.get(RELEASED, &[("reason", reason)]),
            base(RELEASED, &[("reason", reason)])
        );
    }
    assert_eq!(
        after.get(LATENCY_COUNT, &holds),
        base(LATENCY_COUNT, &holds) + 1.0
    );

    // A business refusal: the other user asks for a seat that is taken.
    let taken = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&other),
            json!({"seatIds": [seats[0]]}),
        )
        .await;
    assert_eq!(taken.status, 409, "{taken:?}");
    let business = [
        ("command", "holds.create"),
        ("code", "seats_unavailable"),
        ("kind", "business"),
    ];
    scrape_until(&app, &url, |s| {
        s.get(REFUSED, &business) == base(REFUSED, &business) + 1.0
    })
    .await;

    // A forged command: a hold published straight to JetStream with no signature.
    let forged = envelope(
        "forged-metrics-1",
        Some(Issuer {
            user_id: ObjectId::parse_str(&other_id).unwrap(),
            role: Role::User,
        }),
        Command::CreateHold(CreateHold {
            event_id: ObjectId::parse_str(&event).unwrap(),
            seat_ids: vec![ObjectId::parse_str(&seats[3]).unwrap()],
        }),
    );
    let mut hdrs = HeaderMap::new();
    hdrs.insert(async_nats::header::NATS_MESSAGE_ID, "forged-metrics-1");
    hdrs.insert(headers::REQUEST_ID, "forged-metrics-1");
    app.js
        .publish_with_headers(
            app.ns.command(Area::Holds, "create"),
            hdrs,
            serde_json::to_vec(&forged).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .expect("stored by JetStream");
    let unsigned = [
        ("command", "holds.create"),
        ("code", "command_unsigned"),
        ("kind", "sender"),
    ];
    let last = scrape_until(&app, &url, |s| {
        s.get(REFUSED, &unsigned) == 1.0
            && s.get(LATENCY_COUNT, &holds) == base(LATENCY_COUNT, &holds) + 3.0
    })
    .await;
    assert_eq!(
        last.get(DEAD, &holds),
        base(DEAD, &holds) + 1.0,
        "dead-lettered"
    );
    // Neither refusal applied anything or took a lock.
    assert_eq!(last.get(APPLIED, &hold_cmd), base(APPLIED, &hold_cmd) + 1.0);
    assert_eq!(last.get(TAKEN, &[]), base(TAKEN, &[]) + 2.0);
    assert_eq!(
        last.get("workers_messages_redelivered_total", &holds),
        0.0,
        "nothing was redelivered"
    );

    // The holds consumer's backlog drains to zero on the next polls.
    scrape_until(&app, &url, |s| {
        s.get(PENDING, &holds) == 0.0 && s.get("workers_consumer_ack_pending", &holds) == 0.0
    })
    .await;
    app.shutdown().await;
}

#[tokio::test]
async fn the_workers_metrics_endpoint_can_be_switched_off() {
    let app = spawn_app().await;
    app.stop_workers().await;
    let mut cfg = app.workers_cfg.clone();
    cfg.metrics_addr = "off".into();
    app.start_workers_with(cfg).await;
    assert_eq!(app.workers_metrics_url().await, None);
    app.shutdown().await;
}
