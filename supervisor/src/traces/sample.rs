//! Which traces go on to the sinks, decided per TRACE, not per span: a
//! linked trace is kept or dropped whole. A trace is kept when one of its
//! spans is an error (server 5xx, client 4xx or 5xx) or slow, else by
//! ratio on its trace id (as OpenTelemetry's `TraceIdRatioBased`: an
//! application's own trace id decides the same way in every service), and
//! no more than a cap of spans per second goes on in all.
//!
//! A trace is decided when its first spans leave the linker's hold, with
//! what is known of it then (its spans released now and those still
//! held). A later span follows that decision, except that an error or a
//! slow span turns a trace sampled out into a kept one (its later spans
//! go on; those already dropped stay dropped). Decisions to keep or cap a
//! trace are remembered for the linker's window, bounded in number; one
//! to sample it out is not (its id gives it again).

use std::{
    collections::{VecDeque, hash_map::Entry},
    time::Duration,
};

use rustc_hash::FxHashMap as HashMap;

use super::span::{Side, SpanIn};

/// Why a trace was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kept {
    /// Chosen by the ratio.
    Sampled,
    /// At least one span at least the slow threshold.
    Slow,
    /// At least one span an error.
    Error,
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

/// Why a trace was dropped (a `reason` of `eunomia_http_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skipped {
    /// Not chosen by the ratio (still counted in the metrics and the map).
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

/// How traces are sampled (from `[http]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SampleConfig {
    /// Share of the traces (0 to 1) kept by ratio.
    pub(crate) ratio: f64,
    /// A span at least this slow keeps its trace.
    pub(crate) slow: Duration,
    /// Spans per second at most.
    pub(crate) cap: u32,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            ratio: 1.0,
            slow: Duration::from_secs(1),
            cap: u32::MAX,
        }
    }
}

impl SampleConfig {
    /// What `span` alone says about its trace: an error, slow, sampled by
    /// the kernel, or none of these.
    pub(crate) fn notable(&self, span: &SpanIn) -> Option<Kept> {
        self.alarm(span)
            .or_else(|| span.sampled.then_some(Kept::Sampled))
    }

    /// Whether `span` is an error or slow: what keeps its trace even when
    /// it was decided otherwise. (A span the kernel sampled is not: every
    /// span of its chain carries the kernel's decision.)
    pub(crate) fn alarm(&self, span: &SpanIn) -> Option<Kept> {
        let error = span.status >= 500 || (span.side == Side::Client && span.status >= 400);
        if error {
            Some(Kept::Error)
        } else if span.duration_ns() >= self.slow.as_nanos() as u64 {
            Some(Kept::Slow)
        } else {
            None
        }
    }
}

/// Decisions remembered at most.
const MAX_DECISIONS: usize = 200_000;

/// The sampling state.
#[derive(Debug)]
pub(crate) struct TraceSampler {
    cfg: SampleConfig,
    remember: u64,
    decided: HashMap<u128, Result<Kept, Skipped>>,
    order: VecDeque<(u64, u128)>,
    window_ns: u64,
    in_window: u64,
}

impl TraceSampler {
    /// A sampler remembering decisions for `remember`.
    pub(crate) fn new(cfg: SampleConfig, remember: Duration) -> TraceSampler {
        TraceSampler {
            cfg: SampleConfig {
                ratio: cfg.ratio.clamp(0.0, 1.0),
                ..cfg
            },
            remember: remember.as_nanos() as u64,
            decided: HashMap::default(),
            order: VecDeque::new(),
            window_ns: 0,
            in_window: 0,
        }
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &SampleConfig {
        &self.cfg
    }

    /// Whether the `spans` spans of `trace` released at `now_ns` go on;
    /// `notable` is the strongest reason among the trace's known spans.
    pub(crate) fn decide(
        &mut self,
        trace: u128,
        notable: Option<Kept>,
        spans: u64,
        now_ns: u64,
    ) -> Result<Kept, Skipped> {
        self.expire(now_ns);
        if now_ns.saturating_sub(self.window_ns) >= 1_000_000_000 {
            self.window_ns = now_ns;
            self.in_window = 0;
        }
        let (cfg, in_window) = (&self.cfg, self.in_window);
        let decision = match self.decided.entry(trace) {
            // only decisions to keep or cap are remembered (below)
            Entry::Occupied(known) => *known.get(),
            Entry::Vacant(new) => {
                let first = first(cfg, in_window, trace, notable, spans);
                // A trace sampled out by its id is not remembered: its id
                // decides the same way again, and a notable span then keeps
                // it as remembering would. Most traces are sampled out, so
                // the table holds only the few that are kept or capped.
                if first != Err(Skipped::SampledOut) {
                    new.insert(first);
                    self.order.push_back((now_ns, trace));
                }
                first
            }
        };
        if decision.is_ok() {
            self.in_window += spans;
        }
        decision
    }

    fn expire(&mut self, now_ns: u64) {
        while let Some(&(t, trace)) = self.order.front() {
            if t.saturating_add(self.remember) > now_ns && self.order.len() <= MAX_DECISIONS {
                break;
            }
            self.order.pop_front();
            self.decided.remove(&trace);
        }
    }
}

/// The decision on a trace seen for the first time, `in_window` spans
/// already kept this second.
fn first(
    cfg: &SampleConfig,
    in_window: u64,
    trace: u128,
    notable: Option<Kept>,
    spans: u64,
) -> Result<Kept, Skipped> {
    let kept = match notable {
        Some(k) => k,
        None if by_ratio(cfg, trace) => Kept::Sampled,
        None => return Err(Skipped::SampledOut),
    };
    if in_window.saturating_add(spans) > u64::from(cfg.cap) {
        return Err(Skipped::RateLimited);
    }
    Ok(kept)
}

/// The trace id's low 56 bits against the ratio's share of 2^56.
fn by_ratio(cfg: &SampleConfig, trace: u128) -> bool {
    if cfg.ratio >= 1.0 {
        return true;
    }
    let low = (trace as u64) & ((1u64 << 56) - 1);
    (low as f64) < cfg.ratio * (1u64 << 56) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn sampler(ratio: f64, cap: u32) -> TraceSampler {
        let cfg = SampleConfig {
            ratio,
            slow: Duration::from_secs(1),
            cap,
        };
        TraceSampler::new(cfg, Duration::from_secs(10))
    }

    #[test]
    fn a_trace_is_decided_once_and_by_its_id() {
        let mut s = sampler(0.5, 1000);
        let (low, high) = (1u128, u128::MAX);
        for _ in 0..3 {
            assert_eq!(s.decide(low, None, 2, S), Ok(Kept::Sampled));
            assert_eq!(s.decide(high, None, 2, S), Err(Skipped::SampledOut));
        }
        let kept = (0..1000u128)
            .filter(|i| {
                s.decide(
                    i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
                    None,
                    1,
                    S,
                )
                .is_ok()
            })
            .count();
        assert!((400..600).contains(&kept), "{kept}");
    }

    #[test]
    fn errors_and_slow_spans_keep_the_trace_even_late() {
        let mut s = sampler(0.0, 1000);
        assert_eq!(s.decide(7, Some(Kept::Error), 3, S), Ok(Kept::Error));
        assert_eq!(s.decide(7, None, 1, S), Ok(Kept::Error));
        assert_eq!(s.decide(8, None, 1, S), Err(Skipped::SampledOut));
        assert_eq!(s.decide(8, Some(Kept::Slow), 1, S), Ok(Kept::Slow));
        // forgotten after the window: decided anew
        assert_eq!(s.decide(7, None, 1, 20 * S), Err(Skipped::SampledOut));
    }

    #[test]
    fn traces_sampled_out_by_their_id_take_no_room() {
        let mut s = sampler(0.0, 1000);
        for t in 1..10_000u128 {
            assert_eq!(s.decide(t, None, 1, S), Err(Skipped::SampledOut));
        }
        assert!(s.decided.is_empty() && s.order.is_empty());
        // a notable span still keeps its trace, and that is remembered
        assert_eq!(s.decide(5, Some(Kept::Error), 1, S), Ok(Kept::Error));
        assert_eq!(s.decide(5, None, 1, S), Ok(Kept::Error));
        assert_eq!(s.decided.len(), 1);
    }

    #[test]
    fn the_cap_bounds_every_second_and_keeps_traces_whole() {
        let mut s = sampler(1.0, 5);
        assert!(s.decide(1, None, 4, S).is_ok());
        assert_eq!(s.decide(2, None, 2, S), Err(Skipped::RateLimited));
        // a kept trace's later spans still go on
        assert!(s.decide(1, None, 3, S).is_ok());
        // rate limited stays rate limited, even with an error
        assert_eq!(
            s.decide(2, Some(Kept::Error), 1, S),
            Err(Skipped::RateLimited)
        );
        assert!(s.decide(3, None, 5, 2 * S).is_ok());
    }

    #[test]
    fn notable_spans() {
        let cfg = SampleConfig::default();
        let span = |side, status, dur_ms: u64| SpanIn {
            side,
            pid: 1,
            tid: 1,
            start_ns: 0,
            end_ns: dur_ms * 1_000_000,
            local: "10.0.0.1:80".parse().unwrap(),
            remote: "10.0.0.2:9".parse().unwrap(),
            status,
            traceparent: None,
            node: "a".into(),
            sampled: false,
        };
        assert_eq!(cfg.notable(&span(Side::Server, 503, 1)), Some(Kept::Error));
        assert_eq!(cfg.notable(&span(Side::Server, 404, 1)), None);
        assert_eq!(cfg.notable(&span(Side::Client, 404, 1)), Some(Kept::Error));
        assert_eq!(
            cfg.notable(&span(Side::Client, 200, 1500)),
            Some(Kept::Slow)
        );
        // the kernel's decision keeps the trace, but is no alarm (every
        // span of its chain carries it): only errors and slow spans are
        let sampled = SpanIn {
            sampled: true,
            ..span(Side::Server, 200, 1)
        };
        assert_eq!(cfg.notable(&sampled), Some(Kept::Sampled));
        assert_eq!(cfg.alarm(&sampled), None);
        let failed = SpanIn {
            sampled: true,
            ..span(Side::Server, 500, 1)
        };
        assert_eq!(cfg.notable(&failed), Some(Kept::Error));
        assert_eq!(cfg.alarm(&failed), Some(Kept::Error));
    }
}
