//! The queries worker's admission: two lanes (ordinary and heavy reads), each with its
//! permits and a bounded wait, so a burst is refused at once instead of queueing.

use std::sync::Arc;

use streams::queries::Query;
use tokio::sync::Semaphore;

/// Queries waiting for a permit, per lane, beyond which a query is answered 503
/// `overloaded` at once: a queue in front of the store never grows without bound, and
/// a burst is shed in microseconds instead of timing out seconds later.
const WAITING_PER_PERMIT: usize = 4;

/// Where a query waits for its turn. Seat maps, PNG renders and audit scans are heavy
/// (thousands of seats, a render, an unindexed scan); they have their own permits so a
/// burst of them never queues an ordinary read (an event page, a booking) behind it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lane {
    Ordinary,
    Heavy,
}

fn lane(q: &Query) -> Lane {
    match q {
        Query::EventSeats { .. } | Query::TicketQrPng { .. } | Query::AuditLogs(_) => Lane::Heavy,
        _ => Lane::Ordinary,
    }
}

/// Both lanes' gates of one worker.
pub(super) struct Gates {
    ordinary: Gate,
    heavy: Gate,
}

impl Gates {
    pub(super) fn new(concurrency: usize) -> Self {
        let ordinary = Gate::new(concurrency);
        // Heavy reads are CPU-bound here (a seat map is built and serialized in this
        // process): more at once than cores only adds memory.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let heavy = Gate::new((cores * 2).min(concurrency));
        Gates { ordinary, heavy }
    }

    /// The gate of the lane `q` waits in.
    pub(super) fn of(&self, q: &Query) -> &Gate {
        match lane(q) {
            Lane::Ordinary => &self.ordinary,
            Lane::Heavy => &self.heavy,
        }
    }
}

/// One lane's permits and its bounded wait.
pub(super) struct Gate {
    permits: Arc<Semaphore>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    max_waiting: usize,
}

impl Gate {
    fn new(permits: usize) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            waiting: Arc::default(),
            max_waiting: permits.max(1) * WAITING_PER_PERMIT,
        }
    }

    /// A permit now, or a place in the bounded wait; `None` when both are full.
    pub(super) fn admit(&self) -> Option<Admission> {
        use std::sync::atomic::Ordering;
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Some(Admission::Now(p));
        }
        let n = self.waiting.fetch_add(1, Ordering::AcqRel);
        if n >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Admission::Wait(self.permits.clone(), self.waiting.clone()))
    }
}

pub(super) enum Admission {
    Now(tokio::sync::OwnedSemaphorePermit),
    Wait(Arc<Semaphore>, Arc<std::sync::atomic::AtomicUsize>),
}

impl Admission {
    pub(super) async fn permit(self) -> tokio::sync::OwnedSemaphorePermit {
        match self {
            Admission::Now(p) => p,
            Admission::Wait(sem, waiting) => {
                let p = sem.acquire_owned().await.expect("semaphore never closed");
                waiting.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_lane_refuses_at_once_and_admits_again_when_a_permit_frees() {
        let g = Gate::new(2);
        let mut now = Vec::new();
        let mut waiting = Vec::new();
        for _ in 0..2 {
            match g.admit() {
                Some(Admission::Now(p)) => now.push(p),
                _ => panic!("a free permit is taken at once"),
            }
        }
        for _ in 0..2 * WAITING_PER_PERMIT {
            match g.admit() {
                Some(a @ Admission::Wait(..)) => waiting.push(a),
                _ => panic!("the bounded wait has room"),
            }
        }
        assert!(g.admit().is_none(), "permits and wait are full: refused");
        // A permit frees: the first waiter gets it, and the wait has room again.
        drop(now.pop());
        let first = waiting.remove(0).permit().await;
        assert!(g.admit().is_some());
        drop(first);
    }

    #[test]
    fn seat_maps_png_and_audit_reads_take_the_heavy_lane() {
        let e = domain::ObjectId::new();
        let seats = Query::EventSeats {
            event_id: e,
            section: None,
            status: None,
        };
        assert_eq!(lane(&seats), Lane::Heavy);
        assert_eq!(lane(&Query::GetEvent { event_id: e }), Lane::Ordinary);
        assert_eq!(lane(&Query::Me), Lane::Ordinary);
    }
}
