//! The injectable clock: every decision takes `now` from a [`Clock`], so the workers use
//! [`SystemClock`] and the tests a [`FixedClock`] they set and advance.

use std::sync::Mutex;

use chrono::{Duration, Utc};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> chrono::DateTime<Utc>;

    /// `now` as stored: a millisecond `bson` date-time, the type of the entities' fields.
    fn now_stored(&self) -> bson::DateTime {
        bson::DateTime::from_chrono(self.now())
    }
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until it is set or advanced (for tests).
#[derive(Debug)]
pub struct FixedClock(Mutex<chrono::DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: chrono::DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(at))
    }

    /// A clock at `millis` since the Unix epoch.
    pub fn at_millis(millis: i64) -> Self {
        FixedClock::new(bson::DateTime::from_millis(millis).to_chrono())
    }

    pub fn set(&self, at: chrono::DateTime<Utc>) {
        *self.lock() = at;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, chrono::DateTime<Utc>> {
        // A panic while holding the lock cannot leave a half-written instant.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for FixedClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_moves_only_when_told() {
        let c = FixedClock::at_millis(1_700_000_000_000);
        assert_eq!(c.now_stored().timestamp_millis(), 1_700_000_000_000);
        c.advance(Duration::seconds(90));
        assert_eq!(c.now_stored().timestamp_millis(), 1_700_000_090_000);
        c.set(bson::DateTime::from_millis(5).to_chrono());
        assert_eq!(c.now().timestamp_millis(), 5);
    }

    #[test]
    fn the_system_clock_is_a_clock_behind_a_pointer() {
        let c: Box<dyn Clock> = Box::new(SystemClock);
        assert!(c.now().timestamp() > 1_700_000_000);
    }
}
