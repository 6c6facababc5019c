//! What each supervised tool did: its state and counters, one set per tool
//! for the agent's life, exported as `eunomia_tool_*` self-metrics and shown
//! by `eunomia status`.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use serde::Serialize;

use super::verify::Reject;
use crate::selfmetrics::Registry;

/// The counters of every tool: one set per name for the agent's life, so a
/// tool stopped and started again keeps counting (monotonic counters) and
/// is exported once as self-metrics. Cheap to clone.
#[derive(Clone)]
pub struct StatsBook {
    registry: Arc<Registry>,
    all: Arc<Mutex<Vec<Arc<ToolStats>>>>,
}

impl StatsBook {
    /// A book exporting into `registry`.
    pub(crate) fn new(registry: Arc<Registry>) -> StatsBook {
        StatsBook {
            registry,
            all: Arc::default(),
        }
    }

    /// The counters of tool `name`, registered on first use.
    pub(crate) fn for_tool(&self, name: &Arc<str>) -> Arc<ToolStats> {
        let mut all = crate::sync::lock(&self.all);
        if let Some(s) = all.iter().find(|s| s.tool == *name) {
            return s.clone();
        }
        let stats = Arc::new(ToolStats::new(name.clone()));
        stats.register(&self.registry);
        all.push(stats.clone());
        stats
    }
}

/// Where a supervised tool is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum ToolState {
    /// Being spawned.
    Starting,
    /// Running with this pid.
    Running(u32),
    /// Exited; waiting for the backoff before the next start.
    Restarting,
    /// Given up on, with the reason (its last stderr lines).
    Failed(String),
    /// Stopped on request.
    Stopped,
}

/// Per-tool counters, shared with the metrics and the control API.
#[derive(Debug)]
pub struct ToolStats {
    /// The tool's manifest name.
    pub(crate) tool: Arc<str>,
    /// Lines read from stdout.
    pub(crate) lines: AtomicU64,
    /// Records the parser produced.
    pub(crate) records: AtomicU64,
    /// Lines the parser could not parse (skipped).
    pub(crate) parse_errors: AtomicU64,
    /// Parsed records the kernel did not confirm, per [`Reject`] reason.
    pub(crate) rejected: [AtomicU64; Reject::ALL.len()],
    /// Lines that continued a record's text (a newline inside a string).
    pub(crate) continued_lines: AtomicU64,
    /// Lines longer than [`MAX_LINE`] (cut).
    pub(crate) truncated_lines: AtomicU64,
    /// Lines read from stderr.
    pub(crate) stderr_lines: AtomicU64,
    /// Stderr lines longer than [`super::stderr::MAX_STDERR_LINE`] (cut).
    pub(crate) stderr_truncated_lines: AtomicU64,
    /// Records dropped because the pipeline was full.
    pub(crate) dropped: AtomicU64,
    /// Times the tool was started.
    pub(crate) starts: AtomicU64,
    /// Times the tool was restarted after an unexpected exit.
    pub(crate) restarts: AtomicU64,
    /// Events the tool itself reported lost (`Lost N events` or `lost N
    /// events` on stderr: its perf buffer overflowed before it could read
    /// them).
    pub(crate) lost_events: AtomicU64,
    state: Mutex<ToolState>,
}

impl ToolStats {
    pub(crate) fn new(tool: Arc<str>) -> ToolStats {
        ToolStats {
            tool,
            lines: AtomicU64::new(0),
            records: AtomicU64::new(0),
            parse_errors: AtomicU64::new(0),
            rejected: Default::default(),
            continued_lines: AtomicU64::new(0),
            truncated_lines: AtomicU64::new(0),
            stderr_lines: AtomicU64::new(0),
            stderr_truncated_lines: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            starts: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            lost_events: AtomicU64::new(0),
            state: Mutex::new(ToolState::Starting),
        }
    }

    /// Exports the counters as `eunomia_tool_*_total{tool}` self-metrics.
    fn register(self: &Arc<Self>, registry: &Registry) {
        type Field = fn(&ToolStats) -> &AtomicU64;
        const COUNTERS: [(&str, &str, Field); 8] = [
            (
                "eunomia_tool_lines_total",
                "Lines read from a tool's stdout.",
                |s| &s.lines,
            ),
            (
                "eunomia_tool_records_total",
                "Records parsed from a tool's output.",
                |s| &s.records,
            ),
            (
                "eunomia_tool_parse_errors_total",
                "Output lines that did not parse (skipped).",
                |s| &s.parse_errors,
            ),
            (
                "eunomia_tool_dropped_total",
                "Records dropped because the pipeline was full.",
                |s| &s.dropped,
            ),
            (
                "eunomia_tool_lost_events_total",
                "Events a tool reported lost (its perf buffer overflowed).",
                |s| &s.lost_events,
            ),
            (
                "eunomia_tool_stderr_lines_total",
                "Lines read from a tool's stderr.",
                |s| &s.stderr_lines,
            ),
            (
                "eunomia_tool_starts_total",
                "Times a tool was started.",
                |s| &s.starts,
            ),
            (
                "eunomia_tool_restarts_total",
                "Times a tool was restarted after it exited unexpectedly.",
                |s| &s.restarts,
            ),
        ];
        let me = self.clone();
        registry.observe_gauge(
            "eunomia_tool_up",
            "1 while a tool runs, 0 when stopped, restarting or given up on.",
            &[("tool", &self.tool)],
            move || f64::from(u8::from(matches!(me.state(), ToolState::Running(_)))),
        );
        let me = self.clone();
        registry.observe_gauge(
            "eunomia_tool_failed",
            "1 when the agent gave up restarting a tool (it kept dying at start).",
            &[("tool", &self.tool)],
            move || f64::from(u8::from(matches!(me.state(), ToolState::Failed(_)))),
        );
        for reason in Reject::ALL {
            let me = self.clone();
            registry.observe_counter(
                "eunomia_tool_rejected_records_total",
                "Records of a tool the kernel did not confirm (pid, comm, uid or exec), dropped.",
                &[("tool", &self.tool), ("reason", reason.as_str())],
                move || me.rejected[reason.index()].load(Ordering::Relaxed),
            );
        }
        let me = self.clone();
        registry.observe_counter(
            "eunomia_tool_continued_lines_total",
            "Output lines that continued the text of the record before them (a newline in a string).",
            &[("tool", &self.tool)],
            move || me.continued_lines.load(Ordering::Relaxed),
        );
        for (name, help, field) in COUNTERS {
            let me = self.clone();
            registry.observe_counter(name, help, &[("tool", &self.tool)], move || {
                field(&me).load(Ordering::Relaxed)
            });
        }
        let cut: [(&str, Field); 2] = [
            ("stdout", |s| &s.truncated_lines),
            ("stderr", |s| &s.stderr_truncated_lines),
        ];
        for (stream, field) in cut {
            let me = self.clone();
            registry.observe_counter(
                "eunomia_tool_truncated_lines_total",
                "Over-long lines of a tool's stdout or stderr, cut to the limit.",
                &[("tool", &self.tool), ("stream", stream)],
                move || field(&me).load(Ordering::Relaxed),
            );
        }
    }

    /// The current state.
    pub fn state(&self) -> ToolState {
        crate::sync::lock(&self.state).clone()
    }

    /// Whether the tool is starting, running or restarting (not stopped
    /// and not given up on).
    pub(crate) fn is_active(&self) -> bool {
        !matches!(self.state(), ToolState::Stopped | ToolState::Failed(_))
    }

    /// Marks the tool failed with `reason` (it could not be started).
    pub(crate) fn fail(&self, reason: String) {
        self.set_state(ToolState::Failed(reason));
    }

    pub(super) fn set_state(&self, s: ToolState) {
        *crate::sync::lock(&self.state) = s;
    }
}
