//! The source's own counters, registered as self-metrics (`eunomia_logs_*`,
//! `docs/metrics.md`) and shown by `eunomia status`.

use std::{collections::HashMap, sync::Arc};

use parsers::logs::{LogFormat, LogLineError};

use crate::selfmetrics::{Counter, Gauge, Registry};

/// Lines read, by format.
pub(crate) const LINES: &str = "eunomia_logs_lines_total";
/// Lines not in their file's format, by format and reason.
pub(crate) const MALFORMED: &str = "eunomia_logs_malformed_lines_total";
/// Lines dropped, by reason and container.
pub(crate) const DROPPED: &str = "eunomia_logs_dropped_total";
/// Lines counted under the pattern `other`, by container.
pub(crate) const OVERFLOW: &str = "eunomia_logs_pattern_overflow_total";
/// Lines cut at `max_line_bytes`, and files found truncated.
pub(crate) const TRUNCATED: &str = "eunomia_logs_truncated_total";
/// Rotations by rename followed.
pub(crate) const ROTATIONS: &str = "eunomia_logs_rotations_total";
/// Checkpoint saves that failed.
pub(crate) const CHECKPOINT_ERRORS: &str = "eunomia_logs_checkpoint_errors_total";
/// Files followed.
pub(crate) const FILES: &str = "eunomia_logs_files";
/// Bytes held in memory.
pub(crate) const BUFFERED: &str = "eunomia_logs_buffered_bytes";

/// The counters that do not depend on a container.
#[derive(Debug)]
pub(crate) struct Stats {
    registry: Arc<Registry>,
    lines: HashMap<LogFormat, Counter>,
    malformed: HashMap<(LogFormat, LogLineError), Counter>,
    /// Lines cut.
    pub(crate) cut_lines: Counter,
    /// Files found truncated.
    pub(crate) truncated_files: Counter,
    /// Rotations followed.
    pub(crate) rotations: Counter,
    /// Checkpoint saves that failed.
    pub(crate) checkpoint_errors: Counter,
    /// Files followed.
    pub(crate) files: Gauge,
    /// Bytes buffered.
    pub(crate) buffered: Gauge,
}

impl Stats {
    /// Registers the counters in `registry`.
    pub(crate) fn new(registry: &Arc<Registry>) -> Stats {
        let truncated = |what| {
            registry.counter(
                TRUNCATED,
                "Container log lines cut at logs.max_line_bytes (what=line) and log files found truncated (what=file).",
                &[("what", what)],
            )
        };
        Stats {
            registry: registry.clone(),
            lines: HashMap::new(),
            malformed: HashMap::new(),
            cut_lines: truncated("line"),
            truncated_files: truncated("file"),
            rotations: registry.counter(
                ROTATIONS,
                "Container log files followed through a rotation by rename.",
                &[],
            ),
            checkpoint_errors: registry.counter(
                CHECKPOINT_ERRORS,
                "Saves of the container-log checkpoints that failed.",
                &[],
            ),
            files: registry.gauge(FILES, "Container log files followed.", &[]),
            buffered: registry.gauge(
                BUFFERED,
                "Bytes of container logs held in memory (incomplete and partial lines).",
                &[],
            ),
        }
    }

    /// Counts a line read from a file in `format`.
    pub(crate) fn line(&mut self, format: LogFormat) {
        let registry = &self.registry;
        self.lines
            .entry(format)
            .or_insert_with(|| {
                registry.counter(
                    LINES,
                    "Container log lines read (partial lines joined), by format.",
                    &[("format", format.as_str())],
                )
            })
            .inc();
    }

    /// Counts a malformed line.
    pub(crate) fn malformed(&mut self, format: LogFormat, why: LogLineError) {
        let registry = &self.registry;
        self.malformed
            .entry((format, why))
            .or_insert_with(|| {
                registry.counter(
                    MALFORMED,
                    "Lines of container log files not in their format, skipped.",
                    &[("format", format.as_str()), ("reason", why.as_str())],
                )
            })
            .inc();
    }

    /// The per-container counters of the container named `name`.
    pub(crate) fn container(&self, name: &str) -> ContainerStats {
        let dropped = |reason| {
            self.registry.counter(
                DROPPED,
                "Container log lines dropped, by reason (rate_limit: sampled out above logs.rate_limit; pipeline_full) and container.",
                &[("reason", reason), ("container", name)],
            )
        };
        ContainerStats {
            rate_limited: dropped("rate_limit"),
            pipeline_full: dropped("pipeline_full"),
            overflow: self.registry.counter(
                OVERFLOW,
                "Container log lines counted under the pattern `other` (logs.max_patterns reached), by container.",
                &[("container", name)],
            ),
        }
    }
}

/// One container's drop counters.
#[derive(Debug, Clone)]
pub(crate) struct ContainerStats {
    /// Sampled out above the rate limit.
    pub(crate) rate_limited: Counter,
    /// Refused by the full pipeline.
    pub(crate) pipeline_full: Counter,
    /// Counted under `other`.
    pub(crate) overflow: Counter,
}
