//! Recent message rates per source for `eunomia status`: a sampler reads
//! the pipeline's per-source counters every [`WINDOW`] and keeps the last
//! two readings; the rate is their difference over the time between them
//! (the average since start until the first window has passed).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use crate::pipeline::PipelineStats;

/// How often the counters are read.
pub(crate) const WINDOW: Duration = Duration::from_secs(5);

type Reading = (Instant, Vec<(&'static str, u64)>);

/// The last two readings of the per-source counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct RateWindow {
    readings: Arc<Mutex<(Option<Reading>, Option<Reading>)>>,
}

impl RateWindow {
    /// Takes a reading now.
    pub(crate) fn sample(&self, stats: &PipelineStats) {
        let now = (Instant::now(), stats.per_source());
        let mut r = crate::sync::lock(&self.readings);
        r.0 = r.1.take();
        r.1 = Some(now);
    }

    /// Samples every [`WINDOW`] until `stop`.
    pub(crate) fn spawn_sampler(&self, stats: Arc<PipelineStats>, stop: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WINDOW);
            loop {
                tokio::select! {
                    _ = tick.tick() => me.sample(&stats),
                    _ = stop.cancelled() => return,
                }
            }
        });
    }

    /// `(source, messages, per second)` for every source; `started` is the
    /// agent's start, used before two readings exist.
    pub(crate) fn rates(
        &self,
        stats: &PipelineStats,
        started: Instant,
    ) -> Vec<(&'static str, u64, f64)> {
        let now = stats.per_source();
        let r = crate::sync::lock(&self.readings);
        let base = match &*r {
            (Some((t0, old)), Some((t1, new))) => Some((t1.duration_since(*t0), old, new)),
            _ => None,
        };
        now.into_iter()
            .enumerate()
            .map(|(i, (source, n))| {
                let rate = match &base {
                    Some((dt, old, new)) if !dt.is_zero() => {
                        new[i].1.saturating_sub(old[i].1) as f64 / dt.as_secs_f64()
                    }
                    _ => n as f64 / started.elapsed().as_secs_f64().max(1e-3),
                };
                (source, n, rate)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn rate_is_the_difference_of_the_last_two_readings() {
        let stats = PipelineStats::default();
        let w = RateWindow::default();
        let started = Instant::now();
        stats.by_source[0].store(10, Ordering::Relaxed);
        w.sample(&stats);
        std::thread::sleep(Duration::from_millis(100));
        stats.by_source[0].store(30, Ordering::Relaxed);
        w.sample(&stats);
        let r = w.rates(&stats, started);
        assert_eq!(r[0].0, "hotpath.syscalls");
        assert_eq!(r[0].1, 30);
        assert!(r[0].2 > 100.0 && r[0].2 <= 200.0, "{}", r[0].2);
        assert_eq!(r[1].2, 0.0);
    }
}
