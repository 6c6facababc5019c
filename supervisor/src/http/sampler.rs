//! Which requests become spans: head sampling by ratio (the W3C trace id
//! decides when the request carries one, so every service of a trace
//! agrees, as OpenTelemetry's `TraceIdRatioBased` does), errors and slow
//! requests always, and no more than a cap per second in all.

use std::time::{Duration, Instant};

/// Why a request was kept as a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Chosen by the ratio.
    Sampled,
    /// An error (server 5xx, client 4xx or 5xx).
    Error,
    /// At least the slow threshold.
    Slow,
}

impl Kept {
    /// The `reason` label of `eunomia_http_spans_total`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kept::Sampled => "sampled",
            Kept::Error => "error",
            Kept::Slow => "slow",
        }
    }
}

/// Why a request was not kept (a `reason` of `eunomia_http_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skipped {
    /// Not chosen by the ratio (still counted in the metrics).
    SampledOut,
    /// Over the cap of spans per second.
    RateLimited,
}

impl Skipped {
    /// The `reason` label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Skipped::SampledOut => "sampled_out",
            Skipped::RateLimited => "span_rate_limited",
        }
    }
}

/// What the sampler is asked about one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<'a> {
    /// The response counts as an error.
    pub(crate) error: bool,
    /// Request duration.
    pub(crate) duration: Duration,
    /// The incoming trace id, if the request had a `traceparent`.
    pub(crate) trace_id: Option<&'a [u8; 16]>,
}

/// The sampling state.
#[derive(Debug)]
pub(crate) struct Sampler {
    ratio: f64,
    slow: Duration,
    cap: u32,
    /// Ratio credit for requests without a trace id: one span per whole unit.
    credit: f64,
    window: Instant,
    in_window: u32,
}

impl Sampler {
    /// A sampler keeping `ratio` of the requests, every one at least
    /// `slow`, and at most `cap` per second.
    pub(crate) fn new(ratio: f64, slow: Duration, cap: u32) -> Sampler {
        Sampler {
            ratio: ratio.clamp(0.0, 1.0),
            slow,
            cap,
            credit: 0.0,
            window: Instant::now(),
            in_window: 0,
        }
    }

    /// Whether `c` becomes a span, decided at `now`.
    pub(crate) fn decide(&mut self, c: Candidate<'_>, now: Instant) -> Result<Kept, Skipped> {
        let kept = if c.error {
            Kept::Error
        } else if c.duration >= self.slow {
            Kept::Slow
        } else if self.by_ratio(c.trace_id) {
            Kept::Sampled
        } else {
            return Err(Skipped::SampledOut);
        };
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.in_window = 0;
        }
        if self.in_window >= self.cap {
            return Err(Skipped::RateLimited);
        }
        self.in_window += 1;
        Ok(kept)
    }

    fn by_ratio(&mut self, trace_id: Option<&[u8; 16]>) -> bool {
        if self.ratio >= 1.0 {
            return true;
        }
        match trace_id {
            // the trace id's last 7 bytes against the ratio's share of 2^56
            Some(t) => {
                let mut low = [0u8; 8];
                low[1..].copy_from_slice(&t[9..]);
                (u64::from_be_bytes(low) as f64) < self.ratio * (1u64 << 56) as f64
            }
            None => {
                self.credit += self.ratio;
                if self.credit >= 1.0 {
                    self.credit -= 1.0;
                    true
                } else {
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(ms: u64) -> Candidate<'static> {
        Candidate {
            error: false,
            duration: Duration::from_millis(ms),
            trace_id: None,
        }
    }

    #[test]
    fn ratio_keeps_its_share_errors_and_slow_ones_always() {
        let mut s = Sampler::new(0.25, Duration::from_millis(500), 1000);
        let now = Instant::now();
        let kept = (0..100).filter(|_| s.decide(ok(1), now).is_ok()).count();
        assert_eq!(kept, 25);
        let error = Candidate {
            error: true,
            ..ok(1)
        };
        assert_eq!(s.decide(error, now), Ok(Kept::Error));
        assert_eq!(s.decide(ok(600), now), Ok(Kept::Slow));
        let mut none = Sampler::new(0.0, Duration::from_secs(1), 10);
        assert_eq!(none.decide(ok(1), now), Err(Skipped::SampledOut));
    }

    #[test]
    fn trace_ids_decide_the_same_way_everywhere() {
        let mut s = Sampler::new(0.5, Duration::from_secs(1), 1000);
        let now = Instant::now();
        let low = [0u8; 16];
        let high = [0xffu8; 16];
        let with = |t| Candidate {
            trace_id: Some(t),
            ..ok(1)
        };
        for _ in 0..3 {
            assert_eq!(s.decide(with(&low), now), Ok(Kept::Sampled));
            assert_eq!(s.decide(with(&high), now), Err(Skipped::SampledOut));
        }
    }

    #[test]
    fn the_cap_bounds_every_second() {
        let mut s = Sampler::new(1.0, Duration::from_secs(1), 3);
        let t0 = Instant::now();
        let kept = (0..10).filter(|_| s.decide(ok(1), t0).is_ok()).count();
        assert_eq!(kept, 3);
        let error = Candidate {
            error: true,
            ..ok(1)
        };
        assert_eq!(s.decide(error, t0), Err(Skipped::RateLimited));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(s.decide(ok(1), t1), Ok(Kept::Sampled));
    }
}
