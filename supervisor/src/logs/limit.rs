//! The per-container rate limit: a token bucket of `rate` lines per second
//! holding at most `burst`; beyond it one line in `sample_1_in` is kept (so
//! a flood still shows) and the others are counted, never allowed to crowd
//! out the other containers.

use std::time::Instant;

/// What to do with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Within the rate: send it.
    Keep,
    /// Beyond the rate, but the sampled one: send it.
    Sampled,
    /// Beyond the rate: count it and drop it.
    Drop,
}

/// One container's bucket.
#[derive(Debug, Clone)]
pub(crate) struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
    sample_1_in: u32,
    over: u32,
}

impl RateLimit {
    /// A full bucket.
    pub(crate) fn new(rate: u32, burst: u32, sample_1_in: u32) -> RateLimit {
        let burst = f64::from(burst.max(rate).max(1));
        RateLimit {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            at: Instant::now(),
            sample_1_in: sample_1_in.max(1),
            over: 0,
        }
    }

    /// Decides about one line arriving at `now`.
    pub(crate) fn decide(&mut self, now: Instant) -> Decision {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Decision::Keep;
        }
        self.over = self.over.wrapping_add(1);
        match self.over.is_multiple_of(self.sample_1_in) {
            true => Decision::Sampled,
            false => Decision::Drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_rate_then_samples() {
        let t0 = Instant::now();
        let mut l = RateLimit::new(10, 20, 5);
        let kept = (0..20).filter(|_| l.decide(t0) == Decision::Keep).count();
        assert_eq!(kept, 20);
        let over: Vec<_> = (0..10).map(|_| l.decide(t0)).collect();
        assert_eq!(over.iter().filter(|d| **d == Decision::Sampled).count(), 2);
        assert_eq!(over.iter().filter(|d| **d == Decision::Drop).count(), 8);
        // One second later: ten more tokens.
        let t1 = t0 + Duration::from_secs(1);
        let kept = (0..15).filter(|_| l.decide(t1) == Decision::Keep).count();
        assert_eq!(kept, 10);
    }
}
