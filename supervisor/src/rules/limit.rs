//! Alert flood control: per-rule rate limits (token buckets) and
//! deduplication of the same finding (same fingerprint) within a window.
//! Everything suppressed is counted; a finding's next delivered alert says
//! how many duplicates it stood for.

use std::{
    collections::HashMap,
    str::FromStr,
    time::{Duration, Instant},
};

/// At most `count` alerts per `per`, e.g. `"10/1m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimit {
    /// Alerts allowed per period (also the burst).
    pub(crate) count: u32,
    /// The period.
    pub(crate) per: Duration,
}

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid rate limit `{s}`: expected COUNT/DURATION, e.g. \"10/1m\"");
        let (n, d) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let per = humantime::parse_duration(d.trim()).map_err(|_| bad())?;
        if count == 0 || per.is_zero() {
            return Err(format!(
                "invalid rate limit `{s}`: count and duration must be positive"
            ));
        }
        Ok(RateLimit { count, per })
    }
}

/// A token bucket for one rule.
#[derive(Debug, Clone)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(limit: RateLimit, now: Instant) -> Self {
        Bucket {
            limit,
            tokens: f64::from(limit.count),
            last: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let rate = f64::from(self.limit.count) / self.limit.per.as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.limit.count));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What to do with an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Deliver it; `suppressed` duplicates of it were dropped before.
    Deliver {
        /// Duplicates dropped since the finding was last delivered.
        suppressed: u64,
    },
    /// A duplicate within the window: dropped and counted.
    Duplicate,
    /// Over the rule's rate limit: dropped and counted.
    RateLimited,
}

/// Counters of suppressed alerts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LimitStats {
    /// Duplicates dropped.
    pub(crate) duplicates: u64,
    /// Alerts dropped by rate limits.
    pub(crate) rate_limited: u64,
    /// Times the fingerprint table was full and had to be cleared.
    pub(crate) table_resets: u64,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    at: Instant,
    suppressed: u64,
}

/// Rate limits and deduplication for one rule set.
#[derive(Debug)]
pub(crate) struct Limiter {
    window: Duration,
    capacity: usize,
    seen: HashMap<u64, Seen>,
    /// When expired findings were last forgotten.
    swept: Instant,
    buckets: Vec<Option<Bucket>>,
    /// What was suppressed so far.
    pub(crate) stats: LimitStats,
}

impl Limiter {
    /// A limiter deduplicating within `window`, tracking at most `capacity`
    /// findings, with each rule's rate limit (by rule index).
    pub(crate) fn new(
        window: Duration,
        capacity: usize,
        limits: impl IntoIterator<Item = Option<RateLimit>>,
        now: Instant,
    ) -> Self {
        Limiter {
            window,
            capacity: capacity.max(1),
            seen: HashMap::new(),
            swept: now,
            buckets: limits
                .into_iter()
                .map(|l| l.map(|l| Bucket::new(l, now)))
                .collect(),
            stats: LimitStats::default(),
        }
    }

    /// Decides about an alert of rule `rule` with `fingerprint` at `now`.
    pub(crate) fn admit(&mut self, rule: usize, fingerprint: u64, now: Instant) -> Decision {
        let mut suppressed = 0;
        if let Some(seen) = self.seen.get_mut(&fingerprint) {
            if now.saturating_duration_since(seen.at) < self.window {
                seen.suppressed += 1;
                self.stats.duplicates += 1;
                return Decision::Duplicate;
            }
            suppressed = seen.suppressed;
        }
        if let Some(Some(bucket)) = self.buckets.get_mut(rule)
            && !bucket.take(now)
        {
            self.stats.rate_limited += 1;
            return Decision::RateLimited;
        }
        self.remember(fingerprint, now);
        Decision::Deliver { suppressed }
    }

    fn remember(&mut self, fingerprint: u64, now: Instant) {
        // Findings older than the window are forgotten once per window, so
        // the table holds about one window of findings, not `capacity`.
        if now.saturating_duration_since(self.swept) >= self.window {
            let window = self.window;
            self.seen
                .retain(|_, s| now.saturating_duration_since(s.at) < window);
            self.swept = now;
        }
        if self.seen.len() >= self.capacity && !self.seen.contains_key(&fingerprint) {
            let window = self.window;
            self.seen
                .retain(|_, s| now.saturating_duration_since(s.at) < window);
            if self.seen.len() >= self.capacity {
                self.seen.clear();
                self.stats.table_resets += 1;
            }
        }
        self.seen.insert(
            fingerprint,
            Seen {
                at: now,
                suppressed: 0,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rate_limits() {
        assert_eq!(
            "10/1m".parse::<RateLimit>(),
            Ok(RateLimit {
                count: 10,
                per: Duration::from_secs(60)
            })
        );
        assert!("10".parse::<RateLimit>().is_err());
        assert!("0/1s".parse::<RateLimit>().is_err());
        assert!("x/1s".parse::<RateLimit>().is_err());
        assert!("1/forever".parse::<RateLimit>().is_err());
    }

    #[test]
    fn duplicates_within_the_window_are_counted_then_reported() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Duration::from_secs(10), 100, [None], t0);
        assert_eq!(l.admit(0, 7, t0), Decision::Deliver { suppressed: 0 });
        assert_eq!(
            l.admit(0, 7, t0 + Duration::from_secs(1)),
            Decision::Duplicate
        );
        assert_eq!(
            l.admit(0, 7, t0 + Duration::from_secs(2)),
            Decision::Duplicate
        );
        assert_eq!(
            l.admit(0, 8, t0 + Duration::from_secs(2)),
            Decision::Deliver { suppressed: 0 }
        );
        assert_eq!(
            l.admit(0, 7, t0 + Duration::from_secs(11)),
            Decision::Deliver { suppressed: 2 }
        );
        assert_eq!(l.stats.duplicates, 2);
    }

    #[test]
    fn rate_limit_refills() {
        let t0 = Instant::now();
        let limit = RateLimit {
            count: 2,
            per: Duration::from_secs(10),
        };
        let mut l = Limiter::new(Duration::ZERO, 100, [Some(limit)], t0);
        assert!(matches!(l.admit(0, 1, t0), Decision::Deliver { .. }));
        assert!(matches!(l.admit(0, 2, t0), Decision::Deliver { .. }));
        assert_eq!(l.admit(0, 3, t0), Decision::RateLimited);
        assert!(matches!(
            l.admit(0, 4, t0 + Duration::from_secs(5)),
            Decision::Deliver { .. }
        ));
        assert_eq!(l.stats.rate_limited, 1);
    }

    #[test]
    fn table_is_bounded() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Duration::from_secs(60), 4, [None], t0);
        for fp in 0..10 {
            assert!(matches!(l.admit(0, fp, t0), Decision::Deliver { .. }));
        }
        assert!(l.seen.len() <= 4);
        assert!(l.stats.table_resets >= 1);
    }

    #[test]
    fn findings_older_than_the_window_are_forgotten_before_the_table_fills() {
        let t0 = Instant::now();
        let window = Duration::from_secs(10);
        let mut l = Limiter::new(window, 1_000, [None], t0);
        for f in 0..100 {
            l.admit(0, f, t0);
        }
        l.admit(0, 1_000, t0 + window);
        assert_eq!(
            l.seen.len(),
            1,
            "only the finding of the new window is kept"
        );
        assert_eq!(l.stats.table_resets, 0);
    }
}
