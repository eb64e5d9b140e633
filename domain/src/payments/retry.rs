//! Retry back-off for payments and notifications: exponential delays with jitter.
//!
//! The random input is a plain `u64` from the caller, so the rule stays pure and tests are
//! deterministic. For attempt `n` (counted from 1) the ceiling is
//! `c = min(cap, base * 2^(n-1))`; equal jitter gives a delay in `[c/2, c]` (never less than
//! half the ceiling, so retries cannot bunch up at zero), full jitter one in `[0, c]`.

use std::time::Duration;

/// `min(cap_ms, base_ms * 2^(attempt-1))`, saturating; attempt 0 counts as 1.
pub fn backoff_ceiling(attempt: u32, base_ms: u64, cap_ms: u64) -> u64 {
    let shift = attempt.max(1) - 1;
    let grown = if shift >= 64 {
        if base_ms == 0 {
            0
        } else {
            u64::MAX
        }
    } else {
        base_ms
            .checked_shl(shift)
            .filter(|v| v >> shift == base_ms)
            .unwrap_or(u64::MAX)
    };
    grown.min(cap_ms)
}

/// Equal jitter: a delay in `[c/2, c]` for the ceiling `c` of [`backoff_ceiling`].
pub fn backoff_delay(attempt: u32, base_ms: u64, cap_ms: u64, random: u64) -> u64 {
    let c = backoff_ceiling(attempt, base_ms, cap_ms);
    let half = c / 2;
    let span = c - half;
    // span <= u64::MAX / 2 + 1, so span + 1 cannot overflow.
    half + random % (span + 1)
}

/// Full jitter: a delay in `[0, c]` for the ceiling `c` of [`backoff_ceiling`].
pub fn full_jitter_delay(attempt: u32, base_ms: u64, cap_ms: u64, random: u64) -> u64 {
    let c = backoff_ceiling(attempt, base_ms, cap_ms);
    match c.checked_add(1) {
        Some(n) => random % n,
        None => random,
    }
}

/// [`backoff_delay`] over `Duration`s (whole milliseconds).
pub fn retry_delay(attempt: u32, base: Duration, max: Duration, random: u64) -> Duration {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(backoff_delay(attempt, ms(base), ms(max), random))
}

/// How often and how patiently to retry a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (a payment's `maxAttempts`).
    pub max_attempts: u32,
    pub base_ms: u64,
    pub cap_ms: u64,
}

impl Default for RetryPolicy {
    /// Three attempts, 1 s then about 2 s apart, never more than 60 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_ms: 1_000,
            cap_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `attempts_made` attempts failed transiently,
    /// or `None` when none are left (the operation then fails for good).
    pub fn delay_after(&self, attempts_made: u32, random: u64) -> Option<u64> {
        (attempts_made < self.max_attempts)
            .then(|| backoff_delay(attempts_made.max(1), self.base_ms, self.cap_ms, random))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_ceiling_doubles_until_the_cap() {
        let c: Vec<u64> = (0..=6).map(|n| backoff_ceiling(n, 100, 1_000)).collect();
        assert_eq!(c, vec![100, 100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(backoff_ceiling(200, 100, u64::MAX), u64::MAX);
        assert_eq!(backoff_ceiling(200, 0, u64::MAX), 0);
        assert_eq!(backoff_ceiling(60, 1 << 10, u64::MAX), u64::MAX);
    }

    #[test]
    fn jitter_spans_the_upper_half_of_the_ceiling() {
        assert_eq!(backoff_delay(3, 100, 10_000, 0), 200);
        assert_eq!(backoff_delay(3, 100, 10_000, 200), 400);
        assert_eq!(full_jitter_delay(3, 100, 10_000, 401), 0);
        assert_eq!(
            retry_delay(1, Duration::from_secs(1), Duration::from_secs(60), 0),
            Duration::from_millis(500)
        );
        assert!(backoff_delay(u32::MAX, u64::MAX, u64::MAX, u64::MAX) >= u64::MAX / 2);
    }

    #[test]
    fn a_policy_stops_after_its_attempts() {
        let p = RetryPolicy::default();
        assert!(p.delay_after(1, 0).is_some() && p.delay_after(2, 0).is_some());
        assert_eq!(p.delay_after(3, 0), None);
    }

    proptest! {
        #[test]
        fn a_delay_lies_between_half_the_ceiling_and_the_cap(
            attempt in 0u32..80, base in 0u64..100_000, cap in 0u64..10_000_000, random in any::<u64>(),
        ) {
            let n = attempt.max(1);
            let ceiling = (u128::from(base) << (n - 1).min(100)).min(u128::from(cap)) as u64;
            let d = backoff_delay(attempt, base, cap, random);
            prop_assert!(d >= ceiling / 2 && d <= ceiling && d <= cap);
            let f = full_jitter_delay(attempt, base, cap, random);
            prop_assert!(f <= ceiling);
        }

        #[test]
        fn ceilings_never_shrink_as_attempts_grow(attempt in 1u32..100, base in any::<u64>(), cap in any::<u64>()) {
            prop_assert!(backoff_ceiling(attempt, base, cap) <= backoff_ceiling(attempt + 1, base, cap));
        }
    }
}
