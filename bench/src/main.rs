//! `onsale`: the on-sale storm against the system running on 127.0.0.1 (`scripts/up.sh`),
//! then the raw ceilings of the servers underneath, then the peak memory of the product's
//! processes. It stops by itself: every loop is bounded, and `--duration-limit-secs` is a
//! hard stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench::api::Api;
use bench::ceilings::{self, Ceiling, Limits, UpdateFilter};
use bench::plan::EventPlan;
use bench::report::{ms, rate, secs, Report};
use bench::storm::{self, SeatPool, StormResult, StormSettings};
use bench::{note, procmem};
use clap::Parser;
use futures::{stream, StreamExt, TryStreamExt};

/// On-sale storm: many buyers hold seats of one event at once, measured end to end, with
/// the raw NATS KV and MongoDB ceilings of this machine for comparison.
#[derive(Debug, Parser)]
#[command(name = "onsale")]
struct Args {
    #[command(flatten)]
    gw: bench::cli::GatewayArgs,

    /// Seats of the event (rounded up to whole rows).
    #[arg(long, default_value_t = 5000)]
    seats: usize,

    /// Buyers, each its own user, all buying at once.
    #[arg(long, default_value_t = 200)]
    buyers: usize,

    /// A buyer asks for 1 to this many adjacent-ish seats per hold.
    #[arg(long, default_value_t = 4)]
    max_seats_per_request: usize,

    /// Hold requests one buyer may send (successes and failures alike).
    #[arg(long, default_value_t = 100)]
    attempts_per_buyer: usize,

    /// Registrations and logins in flight at once during set-up.
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,

    /// NATS server for the KV ceiling.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,

    /// NATS identity for the KV ceiling (it makes and deletes a scratch bucket).
    #[arg(long, default_value = "operator")]
    nats_user: String,

    /// Its password; when absent, the one scripts/servers.sh made beside the run dir
    /// (`.data/dev/nats-auth/<user>.password`).
    #[arg(long, env = "TICKETING_BENCH_NATS_PASSWORD", hide_env_values = true)]
    nats_password: Option<String>,

    /// MongoDB-wire server for the conditional-update ceiling.
    #[arg(long, default_value = "mongodb://127.0.0.1:27017/")]
    mongodb_uri: String,

    /// Documents the MongoDB ceiling updates (at least one per concurrent task).
    #[arg(long, default_value_t = 1000)]
    mongo_docs: usize,

    /// Most operations of each ceiling loop.
    #[arg(long, default_value_t = 50_000)]
    ceiling_ops: u64,

    /// Most seconds of each ceiling loop (the storm leaves them this time, plus slack for
    /// the operations in flight, out of --duration-limit-secs).
    #[arg(long, default_value_t = 5)]
    ceiling_secs: u64,

    /// Skip the ceilings (storm only).
    #[arg(long, conflicts_with = "ceilings_only")]
    no_ceilings: bool,

    /// Skip the informative `update_one({_id})` loop (not part of the ratio).
    #[arg(long)]
    no_id_only_ceiling: bool,

    /// Measure only the ceilings (no gateway needed).
    #[arg(long)]
    ceilings_only: bool,

    /// The whole purchase: after each successful hold, book it and pay with the approving
    /// test card (the workers must let unverified buyers pay:
    /// TICKETING_REQUIRE_VERIFIED_TO_PAY=false).
    #[arg(long)]
    purchase: bool,

    /// Readers that fetch the whole seat map in a loop while the storm runs (0: none),
    /// as buyers' pages do: reads/s and latency are reported beside the holds.
    #[arg(long, default_value_t = 8)]
    seat_map_readers: usize,

    /// Hard stop of the whole run, in seconds.
    #[arg(long, default_value_t = 120)]
    duration_limit_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let limit = Duration::from_secs(args.duration_limit_secs);
    let deadline = Instant::now() + limit;
    // Every phase watches the deadline; this is the backstop for one that hangs.
    match tokio::time::timeout(limit + Duration::from_secs(15), run(args, deadline)).await {
        Ok(r) => r,
        Err(_) => bail!("hard stop: the run exceeded --duration-limit-secs"),
    }
}

async fn run(args: Args, deadline: Instant) -> anyhow::Result<()> {
    let run_started = Instant::now();
    let storm = if args.ceilings_only {
        None
    } else {
        let (report, result) = storm_phase(&args, deadline).await?;
        print!("{}", report.text());
        Some(result)
    };

    let mut report = Report::default();
    if args.no_ceilings {
        report
            .section("raw ceilings")
            .line("skipped", "--no-ceilings");
    } else {
        eprintln!("measuring the raw ceilings");
        ceilings_report(&mut report, &args, storm.as_ref(), deadline).await;
    }
    report.section("peak memory (VmHWM)");
    for name in ["gateway", "workers"] {
        let v = procmem::peak_memory(&args.gw.run_dir, name).unwrap_or_else(|| "unknown".into());
        report.line(name, v);
    }
    report
        .section("run")
        .line("total duration", secs(run_started.elapsed()));
    print!("{}", report.text());
    Ok(())
}

/// Set-up (admin login, event, buyers, seat map), then the storm; its report.
async fn storm_phase(args: &Args, deadline: Instant) -> anyhow::Result<(Report, StormResult)> {
    let api = Api::new(&args.gw.url, args.buyers + args.setup_concurrency)?;
    let password = args.gw.password()?;

    eprintln!("set-up against {}", args.gw.url);
    let setup_started = Instant::now();
    let admin = api
        .login_with_retry(&args.gw.admin_email, &password, Duration::from_secs(30))
        .await?;
    let plan = EventPlan::with_seats(&format!("On-sale storm {}", run_tag()), args.seats)?;
    let event_id = api.create_published_event(&admin, &plan).await?;
    note(&format!(
        "event {event_id} published with {} seats",
        plan.total_seats()
    ));

    let tokens = buyers(&api, args, deadline).await?;
    note(&format!("{} buyers registered and logged in", tokens.len()));

    let seats = api.available_seats(&event_id).await?;
    if seats.is_empty() {
        bail!("the seat map of event {event_id} lists no available seats");
    }
    let pool = Arc::new(SeatPool::new(seats));
    note(&format!(
        "seat map: {} available seats; storm starts",
        pool.total()
    ));

    let setup = setup_started.elapsed();
    let storm_deadline = deadline
        .checked_sub(ceilings_reserve(args))
        .unwrap_or(deadline);
    if storm_deadline <= Instant::now() {
        bail!("set-up took {setup:?}: no time left for the storm within --duration-limit-secs");
    }
    let readers = SeatMapReaders::start(
        &api,
        &event_id,
        args.seat_map_readers,
        plan.total_seats(),
        storm_deadline,
    );
    let result = storm::run(
        &api,
        tokens,
        pool.clone(),
        StormSettings {
            event_id: event_id.clone(),
            attempts_per_buyer: args.attempts_per_buyer,
            max_seats_per_buyer_request: args.max_seats_per_request,
            deadline: storm_deadline,
            purchase: args.purchase,
        },
    )
    .await;
    let reads = readers.stop().await;
    let mut report = Report::default();
    report
        .section("set-up")
        .line("admin login, event, buyers, seat map", secs(setup));
    storm_report(&mut report, args, &event_id, &pool, &result);
    reads.report(&mut report, args.seat_map_readers, pool.total());
    Ok((report, result))
}

/// Registers and logs in `--buyers` users, `--setup-concurrency` at a time.
async fn buyers(api: &Api, args: &Args, deadline: Instant) -> anyhow::Result<Vec<String>> {
    let tag = run_tag();
    let password = "bench-Passw0rd!";
    let make = |i: usize| {
        let api = api.clone();
        let email = format!("buyer-{tag}-{i}@bench.example.com");
        async move {
            if Instant::now() >= deadline {
                bail!("duration limit reached during set-up");
            }
            api.register(&email, password, &format!("Buyer {i}"))
                .await?;
            api.login(&email, password).await
        }
    };
    stream::iter(0..args.buyers)
        .map(make)
        .buffer_unordered(args.setup_concurrency.max(1))
        .try_collect()
        .await
        .context("registering the buyers")
}

fn storm_report(r: &mut Report, args: &Args, event_id: &str, pool: &SeatPool, s: &StormResult) {
    let attempts = s.holds + s.conflicts + s.other.values().sum::<u64>();
    r.section("on-sale storm (POST /v1/events/{id}/holds)")
        .line("event", event_id)
        .line("seats on sale", pool.total())
        .line("buyers (concurrent)", args.buyers)
        .line(
            "seats per request",
            format!("1 to {}", args.max_seats_per_request),
        )
        .line("duration", secs(s.duration))
        .line(
            "ended by",
            if s.sold_out {
                "sold out (no seat left in the buyers' view)"
            } else if s.deadline_hit {
                "duration limit"
            } else {
                "attempt budgets spent"
            },
        )
        .line(
            "hold requests",
            format!("{attempts} ({})", rate(attempts, s.duration)),
        )
        .line(
            "successful holds",
            format!("{} ({})", s.holds, rate(s.holds, s.duration)),
        )
        .line(
            "seats held",
            format!("{} ({})", s.seats_held, rate(s.seats_held, s.duration)),
        )
        .line("conflicts (409)", s.conflicts)
        .latencies("hold", &s.latency_us);
    if s.other.is_empty() {
        r.line("other answers", 0);
    }
    for (what, n) in &s.other {
        r.line(&format!("other: {what}"), n);
    }
    if args.purchase {
        r.section("whole purchase (hold, book, pay with 4242...)")
            .line(
                "completed purchases",
                format!("{} ({})", s.purchases, rate(s.purchases, s.duration)),
            )
            .latencies("hold", &s.latency_us)
            .latencies("book", &s.book_us)
            .latencies("pay", &s.pay_us)
            .latencies("purchase (all three)", &s.purchase_us);
        for (what, n) in &s.purchase_failures {
            r.line(&format!("failed after the hold: {what}"), n);
        }
    }
}

async fn ceilings_report(
    r: &mut Report,
    args: &Args,
    storm: Option<&StormResult>,
    deadline: Instant,
) {
    r.section(&format!("raw ceilings ({} concurrent)", args.buyers));
    let kv = match ceiling_limits(args, deadline) {
        Some(l) => Some(
            async {
                let password = bench::nats_password(
                    args.nats_password.clone(),
                    &args.nats_user,
                    &args.gw.run_dir,
                )?;
                ceilings::nats_kv_creates(&args.nats_url, &args.nats_user, &password, &l).await
            }
            .await,
        ),
        None => None,
    };
    let kv_rate = show(r, "NATS KV create", kv);
    let mongo = match ceiling_limits(args, deadline) {
        Some(l) => Some(mongo_loop(args, UpdateFilter::IdAndVersion, &l).await),
        None => None,
    };
    let mongo_rate = show(r, "MongoDB conditional update_one", mongo);
    // For comparison only: the same update filtered by `_id` alone.
    if !args.no_id_only_ceiling {
        let by_id = match ceiling_limits(args, deadline) {
            Some(l) => Some(mongo_loop(args, UpdateFilter::IdOnly, &l).await),
            None => None,
        };
        show(r, "MongoDB update_one by _id alone", by_id);
    }
    let Some(storm) = storm else {
        r.line("holds/s : NATS KV create ceiling", "no storm in this run");
        return;
    };
    let holds = storm.holds as f64 / storm.duration.as_secs_f64().max(1e-9);
    // The headline: the hold path against the lock guard it rests on.
    let ratio = |c: Option<f64>| match c {
        Some(c) if c > 0.0 => format!("{:.3} ({:.1}% of {c:.1}/s)", holds / c, 100.0 * holds / c),
        _ => "unknown (no ceiling measured)".to_string(),
    };
    r.line("holds/s : NATS KV create ceiling", ratio(kv_rate));
    r.line("holds/s : MongoDB update ceiling", ratio(mongo_rate));
    // The command proof's CPU on the hold path, beside the storm it was part of.
    let proof = bench::proofcost::measure(20_000);
    r.line(
        "command proof: sign / check (1 core)",
        format!("{:.1} us / {:.1} us", proof.sign_us, proof.check_us),
    );
    r.line(
        "command proof per hold (2 signs + 1 check)",
        format!(
            "{:.1} us: {:.2}% of one core at {holds:.1} holds/s",
            proof.per_hold_us(),
            proof.per_hold_us() * holds / 1e4
        ),
    );
}

async fn mongo_loop(args: &Args, filter: UpdateFilter, limits: &Limits) -> anyhow::Result<Ceiling> {
    ceilings::mongo_updates(&args.mongodb_uri, args.mongo_docs, filter, limits).await
}

/// The time the storm leaves for the ceilings: each loop's time plus slack for the
/// operations still in flight when it ends.
fn ceilings_reserve(args: &Args) -> Duration {
    if args.no_ceilings {
        return Duration::ZERO;
    }
    let loops = if args.no_id_only_ceiling { 2 } else { 3 };
    Duration::from_secs(loops * (args.ceiling_secs + CEILING_SLACK_SECS))
}

const CEILING_SLACK_SECS: u64 = 8;

/// The limits of one ceiling loop, or `None` when the run's deadline leaves no time.
fn ceiling_limits(args: &Args, deadline: Instant) -> Option<Limits> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < Duration::from_secs(1) {
        return None;
    }
    Some(Limits {
        concurrency: args.buyers.max(1),
        max_ops: args.ceiling_ops,
        max_time: left.min(Duration::from_secs(args.ceiling_secs)),
    })
}

/// Prints one ceiling; its rate when it was measured.
fn show(r: &mut Report, name: &str, c: Option<anyhow::Result<Ceiling>>) -> Option<f64> {
    match c {
        None => {
            r.line(name, "skipped (duration limit reached)");
            None
        }
        Some(Err(e)) => {
            r.line(name, format!("failed: {e:#}"));
            None
        }
        Some(Ok(c)) => {
            let mut text = format!("{:.1}/s ({} in {})", c.per_sec(), c.ops, secs(c.duration));
            if c.failed > 0 {
                text.push_str(&format!(", {} failed", c.failed));
            }
            r.line(name, text);
            if !c.latency_us.is_empty() {
                r.line(
                    &format!("{name} p50/p99"),
                    format!(
                        "{} / {}",
                        ms(c.latency_us.value_at_quantile(0.5)),
                        ms(c.latency_us.value_at_quantile(0.99))
                    ),
                );
            }
            Some(c.per_sec())
        }
    }
}

/// A tag unique to this run (milliseconds since the epoch), for names and e-mails.
fn run_tag() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis().to_string())
        .unwrap_or_else(|_| std::process::id().to_string())
}

/// Seat-map reads made while the storm runs.
struct SeatMapReaders {
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<SeatMapReads>>,
}

#[derive(Default)]
struct SeatMapReads {
    latency_us: Option<hdrhistogram::Histogram<u64>>,
    ok: u64,
    statuses: std::collections::BTreeMap<u16, u64>,
    /// Reads that did not list every seat of the event.
    short: u64,
    duration: Duration,
}

impl SeatMapReaders {
    fn start(api: &Api, event_id: &str, readers: usize, seats: usize, deadline: Instant) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = (0..readers)
            .map(|_| {
                let (api, event_id, stop) = (api.clone(), event_id.to_string(), stop.clone());
                tokio::spawn(async move {
                    let mut r = SeatMapReads {
                        latency_us: Some(bench::storm::new_histogram()),
                        ..Default::default()
                    };
                    let started = Instant::now();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed)
                        && Instant::now() < deadline
                    {
                        let t = Instant::now();
                        let (status, n) = api.seat_map(&event_id).await;
                        let us = t.elapsed().as_micros() as u64;
                        *r.statuses.entry(status).or_default() += 1;
                        if status == 200 {
                            r.ok += 1;
                            if let Some(h) = r.latency_us.as_mut() {
                                let _ = h.record(us.max(1));
                            }
                            if n != seats {
                                r.short += 1;
                            }
                        }
                    }
                    r.duration = started.elapsed();
                    r
                })
            })
            .collect();
        SeatMapReaders { stop, tasks }
    }

    async fn stop(self) -> SeatMapReads {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all = SeatMapReads {
            latency_us: Some(bench::storm::new_histogram()),
            ..Default::default()
        };
        for t in self.tasks {
            let Ok(r) = t.await else { continue };
            all.ok += r.ok;
            all.short += r.short;
            all.duration = all.duration.max(r.duration);
            for (s, n) in r.statuses {
                *all.statuses.entry(s).or_default() += n;
            }
            if let (Some(a), Some(b)) = (all.latency_us.as_mut(), r.latency_us.as_ref()) {
                let _ = a.add(b);
            }
        }
        all
    }
}

impl SeatMapReads {
    fn report(&self, r: &mut Report, readers: usize, seats: usize) {
        r.section("seat-map reads during the storm (GET /v1/events/{id}/seats)");
        if readers == 0 {
            r.line("skipped", "--seat-map-readers 0");
            return;
        }
        r.line("readers (closed loop)", readers)
            .line("seats per map", seats)
            .line(
                "answered 200",
                format!("{} ({})", self.ok, rate(self.ok, self.duration)),
            );
        if let Some(h) = &self.latency_us {
            r.latencies("seat map", h);
        }
        for (s, n) in self.statuses.iter().filter(|(s, _)| **s != 200) {
            let label = if *s == 0 {
                "no HTTP answer".to_string()
            } else {
                format!("HTTP {s}")
            };
            r.line(&format!("other: {label}"), n);
        }
        if self.short > 0 {
            r.line("maps not listing every seat", self.short);
        }
    }
}
