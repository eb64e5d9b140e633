//! `reads`: the API's filtered reads against a database of realistic size, on 127.0.0.1.
//!
//! Set-up (kept between runs, so a second run starts at once): events through the
//! gateway until the database holds `--seats` seats, and synthetic audit entries written
//! straight into MongoDB (marked `requestId: "bench-seed"`) until it holds
//! `--audit-entries`. Then, for each filtered read of the API (events by city, category
//! and date; the audit log by entity, user, action and time; my bookings; my
//! notifications), `--reads` requests at `--concurrency` at once: p50/p95/p99 and the
//! statuses.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench::api::Api;
use bench::note;
use bench::plan::EventPlan;
use bench::report::{rate, secs, Report};
use bench::storm::new_histogram;
use bson::{doc, oid::ObjectId, Document};
use clap::Parser;
use futures::{stream, StreamExt};
use rand::Rng;

#[derive(Parser)]
#[command(about = "Filtered reads of the API against 100,000 audit entries and 20,000 seats")]
struct Args {
    #[command(flatten)]
    gw: bench::cli::GatewayArgs,

    /// The MongoDB-wire server the workers use, and their database.
    #[arg(long, default_value = "mongodb://127.0.0.1:27017/")]
    mongodb_uri: String,
    #[arg(long, default_value = "ticketing")]
    mongodb_db: String,
    /// Audit entries the database should hold before measuring.
    #[arg(long, default_value_t = 100_000)]
    audit_entries: u64,
    /// Seats the database should hold before measuring.
    #[arg(long, default_value_t = 20_000)]
    seats: u64,
    /// Requests per kind of read.
    #[arg(long, default_value_t = 200)]
    reads: usize,
    /// Requests at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Hard stop of the whole run, in seconds.
    #[arg(long, default_value_t = 600)]
    duration_limit_secs: u64,
}

/// Users and entities the synthetic audit entries are spread over.
const SEED_USERS: usize = 1_000;
const SEED_ENTITIES: usize = 20_000;
const ACTIONS: [&str; 8] = [
    "hold_created",
    "hold_released",
    "hold_expired",
    "booking_created",
    "booking_confirmed",
    "payment_succeeded",
    "ticket_scanned",
    "user_logged_in",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let limit = Duration::from_secs(args.duration_limit_secs);
    match tokio::time::timeout(limit, run(args)).await {
        Ok(r) => r,
        Err(_) => bail!("hard stop: the run exceeded --duration-limit-secs"),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let api = Api::new(&args.gw.url, args.concurrency + 4)?;
    let password = args.gw.password()?;
    let admin = api
        .login_with_retry(&args.gw.admin_email, &password, Duration::from_secs(30))
        .await?;
    let mongo = mongodb::Client::with_uri_str(&args.mongodb_uri)
        .await
        .context("connecting to MongoDB")?;
    let db = mongo.database(&args.mongodb_db);

    eprintln!("set-up against {} and {}", args.gw.url, args.mongodb_db);
    let seats = db.collection::<Document>("seats");
    let mut have = seats.count_documents(doc! {}).await?;
    while have < args.seats {
        let n = (args.seats - have).clamp(1_000, 5_000) as usize;
        let plan = EventPlan::with_seats(&format!("Reads bench {}", have), n)?;
        api.create_published_event(&admin, &plan).await?;
        have = seats.count_documents(doc! {}).await?;
        note(&format!("{have} seats"));
    }
    let audit = db.collection::<Document>("audit_logs");
    let mut entries = audit.count_documents(doc! {}).await?;
    let users: Vec<ObjectId> = (0..SEED_USERS).map(|_| ObjectId::new()).collect();
    let entities: Vec<ObjectId> = (0..SEED_ENTITIES).map(|_| ObjectId::new()).collect();
    let seeding = Instant::now();
    while entries < args.audit_entries {
        let n = (args.audit_entries - entries).min(1_000) as usize;
        let batch: Vec<Document> = {
            let mut rng = rand::thread_rng();
            (0..n)
                .map(|_| synthetic_entry(&mut rng, &users, &entities))
                .collect()
        };
        audit
            .insert_many(batch)
            .ordered(false)
            .await
            .context("seeding audit entries")?;
        entries += n as u64;
        if entries % 10_000 < 1_000 {
            note(&format!("{entries} audit entries"));
        }
    }
    let seeded_for = seeding.elapsed();
    // Real ids to filter by: a seeded entity, user and an hour with entries.
    let sample = audit
        .find_one(doc! {"requestId": "bench-seed"})
        .await?
        .context("no seeded audit entry")?;
    let entity = sample.get_object_id("entityId")?.to_hex();
    let user = sample.get_object_id("userId")?.to_hex();
    let at = sample.get_datetime("timestamp")?.to_chrono();
    let from =
        (at - chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to =
        (at + chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    // A buyer with a booking and a notification, among everyone else's.
    let email = format!("reads-{}@bench.example.com", ObjectId::new().to_hex());
    api.register(&email, "bench-Passw0rd!", "Reads buyer")
        .await?;
    let buyer = api.login(&email, "bench-Passw0rd!").await?;

    let kinds: Vec<(&str, String, &str)> = vec![
        ("events by city", "/v1/events?city=Lisbon".into(), ""),
        (
            "events by category",
            "/v1/events?category=concert".into(),
            "",
        ),
        (
            "events by date",
            "/v1/events?from=2030-01-01&to=2031-12-31".into(),
            "",
        ),
        (
            "audit by entityId",
            format!("/v1/audit-logs?entityId={entity}"),
            "admin",
        ),
        (
            "audit by userId",
            format!("/v1/audit-logs?userId={user}"),
            "admin",
        ),
        (
            "audit by action",
            "/v1/audit-logs?action=hold_created".into(),
            "admin",
        ),
        (
            "audit by time (1 h)",
            format!("/v1/audit-logs?from={from}&to={to}"),
            "admin",
        ),
        ("my bookings", "/v1/me/bookings".into(), "buyer"),
        ("my notifications", "/v1/me/notifications".into(), "buyer"),
    ];
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.concurrency + 4)
        .build()?;
    let mut report = Report::default();
    report
        .section("set-up")
        .line("seats in the database", have)
        .line("audit entries in the database", entries)
        .line("audit entries seeded now", secs(seeded_for));
    report.section(&format!(
        "filtered reads ({} each, {} at once)",
        args.reads, args.concurrency
    ));
    for (label, path, who) in &kinds {
        let token = match *who {
            "admin" => Some(admin.as_str()),
            "buyer" => Some(buyer.as_str()),
            _ => None,
        };
        let url = format!("{}{path}", args.gw.url.trim_end_matches('/'));
        let t0 = Instant::now();
        let outcomes: Vec<(u16, u64)> = stream::iter(0..args.reads)
            .map(|_| {
                let (http, url) = (&http, &url);
                async move {
                    let mut req = http.get(url);
                    if let Some(t) = token {
                        req = req.bearer_auth(t);
                    }
                    let t = Instant::now();
                    let status = match req.send().await {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let _ = r.bytes().await;
                            s
                        }
                        Err(_) => 0,
                    };
                    (status, t.elapsed().as_micros() as u64)
                }
            })
            .buffer_unordered(args.concurrency.max(1))
            .collect()
            .await;
        let took = t0.elapsed();
        let mut h = new_histogram();
        let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
        for (s, us) in &outcomes {
            *statuses.entry(*s).or_default() += 1;
            if *s == 200 {
                let _ = h.record((*us).max(1));
            }
        }
        let ok = statuses.get(&200).copied().unwrap_or(0);
        report.line(label, format!("{ok} answered 200 ({})", rate(ok, took)));
        if !h.is_empty() {
            report.latencies(&format!("  {label}"), &h);
        }
        for (s, n) in statuses.iter().filter(|(s, _)| **s != 200) {
            report.line(&format!("  {label}: HTTP {s}"), n);
        }
    }
    report
        .section("run")
        .line("total duration", secs(started.elapsed()));
    print!("{}", report.text());
    Ok(())
}

/// One audit entry like those the projection writes, spread over users, entities,
/// actions and the last 30 days.
fn synthetic_entry(rng: &mut impl Rng, users: &[ObjectId], entities: &[ObjectId]) -> Document {
    let now = chrono::Utc::now();
    let at = now - chrono::Duration::seconds(rng.gen_range(0..30 * 86_400));
    let at = bson::DateTime::from_chrono(at);
    doc! {
        "_id": ObjectId::new(),
        "userId": users[rng.gen_range(0..users.len())],
        "action": ACTIONS[rng.gen_range(0..ACTIONS.len())],
        "entityType": "hold",
        "entityId": entities[rng.gen_range(0..entities.len())],
        "changes": {"before": null, "after": {"status": "active"}},
        "status": "success",
        "ipAddress": "127.0.0.1",
        "userAgent": "bench",
        "requestId": "bench-seed",
        "commandId": ObjectId::new().to_hex(),
        "timestamp": at,
        "createdAt": at,
    }
}
