//! The raw ceilings of this machine, to put the end-to-end figure in proportion: how
//! many NATS KV `create`s and how many single-document conditional MongoDB updates the
//! servers take per second at the storm's concurrency, with nothing of ours in between.
//!
//! Each loop is bounded by a number of operations and a time limit, and cleans up its
//! scratch bucket or database afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, kv};
use bson::doc;
use hdrhistogram::Histogram;

use crate::storm::new_histogram;

pub const NATS_BUCKET: &str = "bench-scratch";
pub const MONGO_DB: &str = "bench_scratch";

pub struct Ceiling {
    pub ops: u64,
    pub failed: u64,
    pub duration: Duration,
    pub latency_us: Histogram<u64>,
}

impl Ceiling {
    pub fn per_sec(&self) -> f64 {
        self.ops as f64 / self.duration.as_secs_f64().max(1e-9)
    }
}

pub struct Limits {
    pub concurrency: usize,
    pub max_ops: u64,
    pub max_time: Duration,
}

/// Hands out operation numbers until `max_ops` or the time limit.
struct Budget {
    next: AtomicU64,
    max_ops: u64,
    until: Instant,
}

impl Budget {
    fn take(&self) -> Option<u64> {
        if Instant::now() >= self.until {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (n < self.max_ops).then_some(n)
    }
}

struct Tally {
    ok: u64,
    failed: u64,
    latency_us: Histogram<u64>,
}

fn merge(tallies: Vec<Tally>, duration: Duration) -> Ceiling {
    let mut c = Ceiling {
        ops: 0,
        failed: 0,
        duration,
        latency_us: new_histogram(),
    };
    for t in tallies {
        c.ops += t.ok;
        c.failed += t.failed;
        let _ = c.latency_us.add(&t.latency_us);
    }
    c
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros().clamp(1, 300_000_000) as u64
}

/// (a) KV `create` of fresh keys in a scratch bucket, `concurrency` at a time.
pub async fn nats_kv_creates(
    nats_url: &str,
    user: &str,
    password: &str,
    limits: &Limits,
) -> anyhow::Result<Ceiling> {
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        .name("bench")
        .connect(nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {nats_url}"))?;
    let js = jetstream::new(client.clone());
    let _ = js.delete_key_value(NATS_BUCKET).await;
    let store = js
        .create_key_value(kv::Config {
            bucket: NATS_BUCKET.to_string(),
            history: 1,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("creating the scratch KV bucket")?;
    let budget = Arc::new(Budget {
        next: AtomicU64::new(0),
        max_ops: limits.max_ops,
        until: Instant::now() + limits.max_time,
    });
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..limits.concurrency {
        let (store, budget) = (store.clone(), budget.clone());
        tasks.spawn(async move {
            let mut t = Tally {
                ok: 0,
                failed: 0,
                latency_us: new_histogram(),
            };
            let value = bytes::Bytes::from_static(b"650f1c2e9b1d4a0001a1b2c3");
            while let Some(n) = budget.take() {
                let sent = Instant::now();
                match store.create(format!("k.{n}"), value.clone()).await {
                    Ok(_) => {
                        t.ok += 1;
                        let _ = t.latency_us.record(micros(sent));
                    }
                    Err(_) => t.failed += 1,
                }
            }
            t
        });
    }
    let tallies = tasks.join_all().await;
    let ceiling = merge(tallies, start.elapsed());
    js.delete_key_value(NATS_BUCKET)
        .await
        .context("deleting the scratch KV bucket")?;
    client.flush().await.ok();
    Ok(ceiling)
}

/// The filter of the MongoDB update loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateFilter {
    /// `{_id, version: v}`: the conditional update (on FerretDB/SQLite a full scan).
    IdAndVersion,
    /// `{_id}` alone: the one filter FerretDB's SQLite backend pushes down to SQL.
    IdOnly,
}

/// (b) `update_one({_id, version: v}, {$set, $inc: {version: 1}})` on `docs` documents,
/// `concurrency` at a time (or with `{_id}` alone as the filter). Each task owns its own
/// documents and knows their versions, so every update is expected to match; a miss
/// counts as failed.
pub async fn mongo_updates(
    uri: &str,
    docs: usize,
    filter: UpdateFilter,
    limits: &Limits,
) -> anyhow::Result<Ceiling> {
    let client = mongodb::Client::with_uri_str(uri)
        .await
        .with_context(|| format!("connecting to {uri}"))?;
    let db = client.database(MONGO_DB);
    db.drop().await.context("dropping the scratch database")?;
    let col = db.collection::<bson::Document>("docs");
    let docs = docs.max(limits.concurrency);
    let seed: Vec<bson::Document> = (0..docs as i64)
        .map(|i| doc! {"_id": i, "version": 0_i64, "status": "available", "holder": bson::Bson::Null})
        .collect();
    for chunk in seed.chunks(1000) {
        col.insert_many(chunk)
            .await
            .context("inserting the scratch documents")?;
    }
    let budget = Arc::new(Budget {
        next: AtomicU64::new(0),
        max_ops: limits.max_ops,
        until: Instant::now() + limits.max_time,
    });
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let workers = limits.concurrency.max(1);
    for w in 0..workers {
        let (col, budget) = (col.clone(), budget.clone());
        tasks.spawn(async move {
            let mut t = Tally {
                ok: 0,
                failed: 0,
                latency_us: new_histogram(),
            };
            // This task's documents: w, w + workers, w + 2 * workers, ...
            let mine: Vec<i64> = (w..docs).step_by(workers).map(|i| i as i64).collect();
            let mut versions = vec![0_i64; mine.len()];
            let mut k = 0;
            while let Some(n) = budget.take() {
                let (id, v) = (mine[k], versions[k]);
                let sent = Instant::now();
                let query = match filter {
                    UpdateFilter::IdAndVersion => doc! {"_id": id, "version": v},
                    UpdateFilter::IdOnly => doc! {"_id": id},
                };
                let r = col
                    .update_one(
                        query,
                        doc! {"$set": {"status": "held", "holder": n as i64}, "$inc": {"version": 1_i64}},
                    )
                    .await;
                match r {
                    Ok(u) if u.matched_count == 1 => {
                        t.ok += 1;
                        versions[k] += 1;
                        let _ = t.latency_us.record(micros(sent));
                    }
                    _ => t.failed += 1,
                }
                k = (k + 1) % mine.len();
            }
            t
        });
    }
    let tallies = tasks.join_all().await;
    let ceiling = merge(tallies, start.elapsed());
    db.drop().await.context("dropping the scratch database")?;
    Ok(ceiling)
}
