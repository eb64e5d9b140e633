//! `scans`: gate scanning against the running system on 127.0.0.1, and ticket issuance
//! (signing plus PNG) in isolation.
//!
//! Set-up: the admin (exempt from e-mail verification) buys `--tickets` seats of a new
//! event with the approving card and waits for the tickets. Then `--scanners` staff
//! devices scan them at once for `--secs` seconds (each ticket once with `success`, then
//! `already_scanned`), printing scans/s, p50/p95/p99 and the statuses. Then, without any
//! server, it signs and renders QR codes for `--secs` seconds on one core: tickets
//! issued per second.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench::api::Api;
use bench::plan::EventPlan;
use bench::report::{rate, Report};
use bench::storm::new_histogram;
use clap::Parser;
use domain::qr::{KeyId, QrPayload, QrSigner};
use domain::ObjectId;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Gate scans against the running system, and ticket issuance in isolation")]
struct Args {
    #[command(flatten)]
    gw: bench::cli::GatewayArgs,

    /// Tickets to buy and scan (bought 10 per booking).
    #[arg(long, default_value_t = 100)]
    tickets: usize,
    /// Scanning devices at once.
    #[arg(long, default_value_t = 50)]
    scanners: usize,
    /// Seconds of scanning, and of issuing in isolation.
    #[arg(long, default_value_t = 10)]
    secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let password = args.gw.password()?;
    let api = Api::new(&args.gw.url, args.scanners + 8)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let admin = api
        .login_with_retry(&args.gw.admin_email, &password, Duration::from_secs(30))
        .await?;
    let plan = EventPlan::with_seats("Scan bench", args.tickets.max(1))?;
    let event = api.create_published_event(&admin, &plan).await?;
    let seats: Vec<String> = api
        .available_seats(&event)
        .await?
        .into_iter()
        .map(|s| s.id)
        .take(args.tickets)
        .collect();
    eprintln!("  .. buying {} seats", seats.len());
    let mut bookings = Vec::new();
    for chunk in seats.chunks(10) {
        let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let hold = match api.hold(&admin, &event, &ids).await {
            bench::api::HoldOutcome::Held { id } => id,
            other => bail!("hold failed: {other:?}"),
        };
        let booking = api
            .book(&admin, &hold)
            .await
            .map_err(|c| anyhow::anyhow!("book: HTTP {c}"))?;
        api.pay(&admin, &booking)
            .await
            .map_err(|c| anyhow::anyhow!("pay: HTTP {c}"))?;
        bookings.push(booking);
    }
    let mut qrs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for b in &bookings {
        loop {
            let r: Value = http
                .get(format!("{}/v1/bookings/{b}/tickets", args.gw.url))
                .bearer_auth(&admin)
                .send()
                .await?
                .json()
                .await?;
            let items = r["items"].as_array().cloned().unwrap_or_default();
            if !items.is_empty() {
                qrs.extend(
                    items
                        .iter()
                        .filter_map(|t| t["qrString"].as_str().map(str::to_string)),
                );
                break;
            }
            if Instant::now() > deadline {
                bail!("no tickets for booking {b} after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!("  .. {} tickets issued; scanning", qrs.len());
    let qrs = Arc::new(qrs);
    let stop = Instant::now() + Duration::from_secs(args.secs);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for d in 0..args.scanners {
        let (http, qrs, admin, url) = (
            http.clone(),
            qrs.clone(),
            admin.clone(),
            args.gw.url.clone(),
        );
        tasks.spawn(async move {
            let mut hist = new_histogram();
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            let mut i = d;
            while Instant::now() < stop {
                let qr = &qrs[i % qrs.len()];
                i += 7;
                let sent = Instant::now();
                let r = http
                    .post(format!("{url}/v1/scans"))
                    .bearer_auth(&admin)
                    .json(&json!({"qrString": qr, "deviceId": format!("device-{d}"), "gate": format!("G{}", d % 8)}))
                    .send()
                    .await;
                let status = match r {
                    Ok(r) if r.status().is_success() => {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        v["status"].as_str().unwrap_or("?").to_string()
                    }
                    Ok(r) => format!("HTTP {}", r.status().as_u16()),
                    Err(_) => "no answer".into(),
                };
                let _ = hist.record(sent.elapsed().as_micros().clamp(1, 300_000_000) as u64);
                *statuses.entry(status).or_default() += 1;
            }
            (hist, statuses)
        });
    }
    let mut hist = new_histogram();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (h, s) = done.context("scanner task")?;
        let _ = hist.add(&h);
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed();
    let total: u64 = statuses.values().sum();

    // Issuance in isolation: sign a payload and render its PNG, one core.
    let signer = QrSigner::from_seed(KeyId::parse("bench")?, [7u8; 32]);
    let reference = domain::entities::reference::booking_reference(1_800_000_000_000, 42);
    let issue_stop = Instant::now() + Duration::from_secs(args.secs);
    let issue_started = Instant::now();
    let mut issued = 0u64;
    while Instant::now() < issue_stop {
        let payload = QrPayload {
            ticket_id: ObjectId::new(),
            booking_reference: reference.clone(),
            user_id: ObjectId::new(),
            event_id: ObjectId::new(),
            seat_id: ObjectId::new(),
            issued_at: 1_800_000_000,
        };
        let qr = signer.sign(&payload);
        let png = workers::qr_png(&qr).map_err(|e| anyhow::anyhow!("png: {e}"))?;
        std::hint::black_box(png);
        issued += 1;
    }
    let issue_elapsed = issue_started.elapsed();

    let mut report = Report::default();
    report
        .section("gate scans (POST /v1/scans)")
        .line("tickets", qrs.len())
        .line("scanners (concurrent)", args.scanners)
        .line("scans", format!("{total} ({})", rate(total, elapsed)))
        .latencies("scan", &hist);
    for (k, v) in &statuses {
        report.line(&format!("status {k}"), v);
    }
    report
        .section("ticket issuance in isolation (Ed25519 sign + QR PNG, one core)")
        .line(
            "tickets issued",
            format!("{issued} ({})", rate(issued, issue_elapsed)),
        );
    print!("{}", report.text());
    Ok(())
}
