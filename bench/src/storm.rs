//! The on-sale storm: every buyer at once asks for 1 to 4 adjacent-ish seats, and on a
//! 409 tries other seats, until the event is sold out, its attempt budget is spent, or the
//! deadline passes.
//!
//! Buyers share what they have learned (seats held, seats a 409 named as taken), as a
//! seat map refreshed by the page would tell them; seats picked by requests still in
//! flight are not hidden, so concurrent buyers collide as they would in a real on-sale.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::api::{Api, HoldOutcome, Seat};

/// The seats believed available, in seat-map order (section, row, number), with O(1)
/// random pick and removal.
pub struct SeatPool {
    seats: Vec<Seat>,
    by_id: HashMap<String, usize>,
    inner: Mutex<PoolState>,
}

struct PoolState {
    /// Indices into `seats` still believed available, in no order.
    available: Vec<usize>,
    /// For each seat, its position in `available`, or `usize::MAX` once gone.
    position: Vec<usize>,
}

/// How long past the deadline a request in flight may still finish.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

/// How far from the first pick a buyer looks for the rest of its seats.
const ADJACENT_SPAN: usize = 12;

impl SeatPool {
    pub fn new(mut seats: Vec<Seat>) -> Self {
        seats.sort_by(|a, b| (&a.section, &a.row, a.number).cmp(&(&b.section, &b.row, b.number)));
        seats.dedup_by(|a, b| a.id == b.id);
        let by_id = seats
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let n = seats.len();
        SeatPool {
            seats,
            by_id,
            inner: Mutex::new(PoolState {
                available: (0..n).collect(),
                position: (0..n).collect(),
            }),
        }
    }

    pub fn total(&self) -> usize {
        self.seats.len()
    }

    pub fn remaining(&self) -> usize {
        self.inner.lock().map(|s| s.available.len()).unwrap_or(0)
    }

    /// Up to `want` seats believed available: a random one, then its available
    /// neighbours in seat-map order (same row first, spilling over to the next). `None`
    /// when nothing is left.
    pub fn pick(&self, want: usize, rng: &mut impl Rng) -> Option<Vec<usize>> {
        let state = self.inner.lock().ok()?;
        if state.available.is_empty() {
            return None;
        }
        let first = state.available[rng.gen_range(0..state.available.len())];
        let mut picked = vec![first];
        let free = |i: usize| state.position[i] != usize::MAX;
        let mut step = 1;
        while picked.len() < want && step <= ADJACENT_SPAN {
            if first + step < self.seats.len() && free(first + step) {
                picked.push(first + step);
            }
            if picked.len() < want && step <= first && free(first - step) {
                picked.push(first - step);
            }
            step += 1;
        }
        Some(picked)
    }

    pub fn seat(&self, i: usize) -> &Seat {
        &self.seats[i]
    }

    /// Forgets the seats: they are no longer available.
    pub fn remove(&self, indices: impl IntoIterator<Item = usize>) {
        let Ok(mut s) = self.inner.lock() else { return };
        for i in indices {
            let pos = s.position[i];
            if pos == usize::MAX {
                continue;
            }
            let last = s.available.len() - 1;
            s.available.swap(pos, last);
            let moved = s.available[pos];
            s.position[moved] = pos;
            s.available.pop();
            s.position[i] = usize::MAX;
        }
    }

    pub fn remove_ids<'a>(&self, ids: impl IntoIterator<Item = &'a String>) {
        let idx: Vec<usize> = ids
            .into_iter()
            .filter_map(|id| self.by_id.get(id).copied())
            .collect();
        self.remove(idx);
    }
}

/// What the buyers saw, merged.
pub struct StormResult {
    pub latency_us: Histogram<u64>,
    pub holds: u64,
    pub seats_held: u64,
    pub conflicts: u64,
    /// Other outcomes by label: `HTTP 202`, `no HTTP answer`, `cut off at the deadline`.
    pub other: BTreeMap<String, u64>,
    pub duration: Duration,
    pub sold_out: bool,
    pub deadline_hit: bool,
    /// With `purchase`: each step's latency and the whole purchase's.
    pub book_us: Histogram<u64>,
    pub pay_us: Histogram<u64>,
    pub purchase_us: Histogram<u64>,
    pub purchases: u64,
    /// Purchases that failed after the hold, by step and status.
    pub purchase_failures: BTreeMap<String, u64>,
}

struct BuyerTally {
    latency_us: Histogram<u64>,
    holds: u64,
    seats_held: u64,
    conflicts: u64,
    other: BTreeMap<String, u64>,
    book_us: Histogram<u64>,
    pay_us: Histogram<u64>,
    purchase_us: Histogram<u64>,
    purchases: u64,
    purchase_failures: BTreeMap<String, u64>,
}

pub struct StormSettings {
    pub event_id: String,
    pub attempts_per_buyer: usize,
    pub max_seats_per_buyer_request: usize,
    pub deadline: Instant,
    /// After each hold: book it and pay with the approving card.
    pub purchase: bool,
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs to 5 minutes at 3 significant figures.
    Histogram::new_with_bounds(1, 300_000_000, 3).expect("valid histogram bounds")
}

/// Runs one buyer per token, all at once, and merges what they saw.
pub async fn run(
    api: &Api,
    tokens: Vec<String>,
    pool: Arc<SeatPool>,
    settings: StormSettings,
) -> StormResult {
    let settings = Arc::new(settings);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (n, token) in tokens.into_iter().enumerate() {
        let (api, pool, settings) = (api.clone(), pool.clone(), settings.clone());
        tasks.spawn(async move { buyer(n as u64, api, token, pool, settings).await });
    }
    let mut result = StormResult {
        latency_us: new_histogram(),
        holds: 0,
        seats_held: 0,
        conflicts: 0,
        other: BTreeMap::new(),
        duration: Duration::ZERO,
        sold_out: false,
        deadline_hit: false,
        book_us: new_histogram(),
        pay_us: new_histogram(),
        purchase_us: new_histogram(),
        purchases: 0,
        purchase_failures: BTreeMap::new(),
    };
    while let Some(done) = tasks.join_next().await {
        let Ok(t) = done else { continue };
        let _ = result.latency_us.add(&t.latency_us);
        result.holds += t.holds;
        result.seats_held += t.seats_held;
        result.conflicts += t.conflicts;
        for (k, v) in t.other {
            *result.other.entry(k).or_default() += v;
        }
        let _ = result.book_us.add(&t.book_us);
        let _ = result.pay_us.add(&t.pay_us);
        let _ = result.purchase_us.add(&t.purchase_us);
        result.purchases += t.purchases;
        for (k, v) in t.purchase_failures {
            *result.purchase_failures.entry(k).or_default() += v;
        }
    }
    result.duration = start.elapsed();
    result.sold_out = pool.remaining() == 0;
    result.deadline_hit = Instant::now() >= settings.deadline;
    result
}

async fn buyer(
    n: u64,
    api: Api,
    token: String,
    pool: Arc<SeatPool>,
    s: Arc<StormSettings>,
) -> BuyerTally {
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + n);
    let mut t = BuyerTally {
        latency_us: new_histogram(),
        holds: 0,
        seats_held: 0,
        conflicts: 0,
        other: BTreeMap::new(),
        book_us: new_histogram(),
        pay_us: new_histogram(),
        purchase_us: new_histogram(),
        purchases: 0,
        purchase_failures: BTreeMap::new(),
    };
    for _ in 0..s.attempts_per_buyer {
        if Instant::now() >= s.deadline {
            break;
        }
        let want = rng.gen_range(1..=s.max_seats_per_buyer_request.max(1));
        let Some(picked) = pool.pick(want, &mut rng) else {
            break;
        };
        let ids: Vec<&str> = picked.iter().map(|&i| pool.seat(i).id.as_str()).collect();
        let sent = Instant::now();
        // A request still unanswered at the deadline is abandoned, so the run stops on time.
        let cutoff = tokio::time::Instant::from_std(s.deadline + DEADLINE_GRACE);
        let Ok(outcome) =
            tokio::time::timeout_at(cutoff, api.hold(&token, &s.event_id, &ids)).await
        else {
            *t.other.entry("cut off at the deadline".into()).or_default() += 1;
            break;
        };
        let us = sent.elapsed().as_micros().clamp(1, 300_000_000) as u64;
        let _ = t.latency_us.record(us);
        match outcome {
            HoldOutcome::Held { id } => {
                t.holds += 1;
                t.seats_held += picked.len() as u64;
                pool.remove(picked);
                if s.purchase {
                    purchase(&api, &token, &id, sent, &mut t).await;
                }
            }
            HoldOutcome::Conflict { taken } => {
                t.conflicts += 1;
                pool.remove_ids(&taken);
            }
            HoldOutcome::Status(code) => {
                *t.other.entry(format!("HTTP {code}")).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            HoldOutcome::Transport => {
                *t.other.entry("no HTTP answer".into()).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    t
}

/// Books a hold and pays for it, timing each step and the whole purchase (from the hold
/// request's start).
async fn purchase(api: &Api, token: &str, hold_id: &str, started: Instant, t: &mut BuyerTally) {
    let us = |since: Instant| since.elapsed().as_micros().clamp(1, 300_000_000) as u64;
    let step = Instant::now();
    let booking = match api.book(token, hold_id).await {
        Ok(b) => b,
        Err(code) => {
            *t.purchase_failures
                .entry(format!("book: HTTP {code}"))
                .or_default() += 1;
            return;
        }
    };
    let _ = t.book_us.record(us(step));
    let step = Instant::now();
    match api.pay(token, &booking).await {
        Ok(()) => {
            let _ = t.pay_us.record(us(step));
            let _ = t.purchase_us.record(us(started));
            t.purchases += 1;
        }
        Err(code) => {
            *t.purchase_failures
                .entry(format!("pay: HTTP {code}"))
                .or_default() += 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats(n: usize) -> Vec<Seat> {
        (0..n)
            .map(|i| Seat {
                id: format!("s{i}"),
                section: "Standard".into(),
                row: ((b'A' + (i / 10) as u8) as char).to_string(),
                number: (i % 10) as i64 + 1,
            })
            .collect()
    }

    #[test]
    fn picks_are_adjacent_and_distinct_and_the_pool_drains() {
        let pool = SeatPool::new(seats(95));
        let mut rng = StdRng::seed_from_u64(7);
        let mut taken = 0;
        while let Some(p) = pool.pick(4, &mut rng) {
            let mut sorted = p.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), p.len());
            assert!(sorted.last().unwrap() - sorted.first().unwrap() <= 2 * ADJACENT_SPAN);
            taken += p.len();
            pool.remove(p);
        }
        assert_eq!(taken, 95);
        assert_eq!(pool.remaining(), 0);
    }

    #[test]
    fn seats_named_taken_are_forgotten() {
        let pool = SeatPool::new(seats(3));
        pool.remove_ids(&["s1".to_string(), "nope".to_string()]);
        assert_eq!(pool.remaining(), 2);
        pool.remove_ids(&["s1".to_string()]);
        assert_eq!(pool.remaining(), 2);
    }
}
