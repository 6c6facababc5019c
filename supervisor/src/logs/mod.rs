//! Container logs as a source: what containers write to stdout and stderr,
//! read from the files their runtimes keep ([`discover`]), followed through
//! rotations and restarts ([`tail`], [`checkpoint`]), read for level, trace
//! ids and pattern (`parsers::logs`), limited per container ([`limit`]),
//! counted per pattern ([`patterns`]) and sent down the pipeline as events
//! of kind `log` (`log.body`, `log.level`, `log.pattern`, `log.stream`,
//! `trace_id`, `span_id`) that carry their container's workload, so rules,
//! the JSON-lines sink and OTLP logs see them like every other event.
//!
//! Nothing is lost silently: malformed lines, lines over the rate limit,
//! lines the full pipeline refused, cut lines, truncated files and pattern
//! overflow are counted (`eunomia_logs_*`, shown by `eunomia status`). When
//! the pipeline is three-quarters full the source stops reading (the file
//! is the buffer) rather than crowd out the other sources.

pub(crate) mod checkpoint;
pub(crate) mod config;
pub(crate) mod discover;
pub(crate) mod limit;
pub mod patterns;
mod source;
mod stats;
pub mod tail;

use std::time::Duration;

use tokio::task::JoinHandle;

pub(crate) use config::LogsConfig;
pub use source::{LogSource, TOOL, log_event};

use std::path::PathBuf;

use crate::{context::AgentContext, host::containers::RuntimeFiles};

/// Starts the container-log source when `[logs]` enables it (a thread that
/// polls the files); it ends on shutdown, after saving the checkpoints.
pub(crate) fn start(
    config: &LogsConfig,
    files: RuntimeFiles,
    pod_logs_root: Option<PathBuf>,
    metrics_interval: Duration,
    ctx: &AgentContext,
) -> Option<JoinHandle<()>> {
    if !config.enabled {
        return None;
    }
    let mut source = LogSource::new(config, files, pod_logs_root, ctx.tx.clone(), &ctx.registry);
    let shutdown = ctx.shutdown.clone();
    let poll = config.poll_interval;
    Some(tokio::task::spawn_blocking(move || {
        source.run(poll, metrics_interval, &shutdown);
    }))
}
