//! A token bucket that paces the API requests of the lifecycle commands.
//!
//! The original slept a fixed 0.5 s per PVC and 5 s per deletion, which capped a run at ~700
//! deletions an hour and still let bursts through. Here every request (retries included) takes
//! a token from a bucket refilled at `qps` per second holding one second's worth (at least one),
//! so a run goes as fast as the operator allows and never faster. The bucket is pure: the caller
//! passes "now" and sleeps for the returned wait, which keeps it testable without a clock.

use std::time::{Duration, Instant};

/// A token bucket in its GCRA form: one "theoretical arrival time" instead of a token count.
#[derive(Debug)]
pub struct TokenBucket {
    /// Time between two tokens.
    interval: Duration,
    /// How far ahead of the steady rate a burst may run: `(capacity - 1) * interval`.
    tolerance: Duration,
    /// When the next request would be due at the steady rate; `None` before the first.
    next: Option<Instant>,
}

impl TokenBucket {
    /// A bucket for `qps` requests per second (must be positive and finite) that starts full
    /// with `max(1, floor(qps))` tokens.
    pub fn new(qps: f64) -> TokenBucket {
        let interval = Duration::from_secs_f64(1.0 / qps);
        let capacity = qps.floor().max(1.0) as u32;
        TokenBucket {
            interval,
            tolerance: interval * (capacity - 1),
            next: None,
        }
    }

    /// Takes one token at `now` and returns how long to wait before sending the request.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let due = self.next.map_or(now, |next| next.max(now));
        self.next = Some(due + self.interval);
        due.duration_since(now).saturating_sub(self.tolerance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_full_bucket_lets_one_seconds_worth_through_then_paces() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(4.0);
        let waits: Vec<Duration> = (0..6).map(|_| bucket.reserve(start)).collect();
        assert_eq!(waits, [ms(0), ms(0), ms(0), ms(0), ms(250), ms(500)]);
    }

    #[test]
    fn the_steady_rate_is_qps() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0);
        let mut now = start;
        for _ in 0..100 {
            now += bucket.reserve(now);
        }
        // 10 free tokens, then 90 at 100 ms each.
        assert_eq!(now - start, ms(9_000));
    }

    #[test]
    fn idle_time_refills_the_bucket_but_not_beyond_its_capacity() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0);
        assert_eq!(bucket.reserve(start), ms(0));
        assert_eq!(bucket.reserve(start), ms(0));
        assert_eq!(bucket.reserve(start), ms(500));
        // Ten seconds idle: two tokens again, no more.
        let later = start + Duration::from_secs(10);
        assert_eq!(bucket.reserve(later), ms(0));
        assert_eq!(bucket.reserve(later), ms(0));
        assert_eq!(bucket.reserve(later), ms(500));
    }

    #[test]
    fn less_than_one_per_second_still_sends_the_first_at_once() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(0.5);
        assert_eq!(bucket.reserve(start), ms(0));
        assert_eq!(bucket.reserve(start), ms(2_000));
    }
}
