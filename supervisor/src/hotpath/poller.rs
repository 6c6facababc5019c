//! The hot-path source: a task that owns the loaded programs, reads their maps
//! every poll interval and sends the deltas into the pipeline as samples. On
//! shutdown it polls once more (the last, partial interval), then drops the
//! programs, which detaches them.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    Hotpath, HotpathConfig, HotpathError,
    syscalls::{SyscallCounts, SyscallReader},
};
use crate::pipeline::{Message, PipelineTx, Sample, SampleBatch, SampleValue};

/// Source name of the syscall samples.
pub const SYSCALLS_SOURCE: &str = "hotpath.syscalls";
/// Metric of the per-syscall counts.
pub const SYSCALLS_METRIC: &str = "eunomia_syscalls_total";

/// Loads and attaches the configured probes, then spawns the poller. Returns
/// `None` when every probe is turned off.
pub fn start(
    config: &HotpathConfig,
    interval: Duration,
    tx: PipelineTx,
    shutdown: CancellationToken,
) -> Result<Option<JoinHandle<()>>, HotpathError> {
    if !config.syscalls {
        return Ok(None);
    }
    let hotpath = Hotpath::load()?;
    let first = SyscallReader::new(&hotpath)?.read()?;
    tracing::info!(?interval, "hot path attached; polling");
    Ok(Some(tokio::spawn(poll_loop(
        hotpath, first, interval, tx, shutdown,
    ))))
}

async fn poll_loop(
    hotpath: Hotpath,
    mut previous: SyscallCounts,
    interval: Duration,
    tx: PipelineTx,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await; // the first tick is immediate
    let mut since = Instant::now();
    loop {
        let last = tokio::select! {
            _ = ticker.tick() => false,
            _ = shutdown.cancelled() => true,
        };
        match SyscallReader::new(&hotpath).and_then(|r| r.read()) {
            Ok(now) => {
                let delta = now.delta_since(&previous);
                tx.send(Message::Samples(syscall_batch(&delta, since.elapsed())));
                previous = now;
            }
            Err(err) => tracing::warn!("polling the syscall counters: {err}"),
        }
        since = Instant::now();
        if last {
            break;
        }
    }
    drop(hotpath);
    tracing::info!("hot path detached");
}

/// One sample per syscall that happened in the interval.
fn syscall_batch(delta: &SyscallCounts, elapsed: Duration) -> SampleBatch {
    let samples = delta
        .top(usize::MAX)
        .into_iter()
        .map(|(name, count)| Sample {
            metric: SYSCALLS_METRIC,
            labels: vec![("syscall", name.to_owned())],
            value: SampleValue::Delta(count),
        })
        .collect();
    SampleBatch {
        source: SYSCALLS_SOURCE,
        interval_s: elapsed.as_secs_f64(),
        samples,
    }
}
