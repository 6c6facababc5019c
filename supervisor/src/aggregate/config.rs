//! The `[aggregate]` section: cardinality bounds, series expiry, and the
//! rules that turn event fields into metrics (with defaults per event kind).

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;

/// The four kinds of aggregated metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A monotonic sum (syscalls, bytes).
    Sum,
    /// A count of events.
    Count,
    /// The last value seen (a gauge).
    LastValue,
    /// A distribution over bucket bounds.
    Histogram,
}

impl MetricKind {
    /// Name as written in the configuration.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MetricKind::Sum => "sum",
            MetricKind::Count => "count",
            MetricKind::LastValue => "last_value",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// `[aggregate]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregateConfig {
    /// Series kept per metric; beyond it, new label sets fold into one
    /// overflow series (every label `other`) and are counted.
    pub(crate) max_series: usize,
    /// Per-metric overrides of `max_series`, by metric name.
    pub(crate) series_limits: BTreeMap<String, usize>,
    /// A series not updated for this long is dropped (e.g. a vanished
    /// container's).
    #[serde(with = "humantime_serde")]
    pub(crate) series_ttl: Duration,
    /// Apply the built-in rules ([`default_rules`]) before `rules`.
    pub(crate) default_rules: bool,
    /// Event rules (`[[aggregate.rules]]`).
    pub(crate) rules: Vec<EventRule>,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        Self {
            max_series: 5000,
            series_limits: BTreeMap::new(),
            series_ttl: Duration::from_secs(300),
            default_rules: true,
            rules: Vec::new(),
        }
    }
}

/// One rule: events of `kind` (and `tool`, if given) update `metric`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRule {
    /// Event kind (`exec`, `tcp_session`, ...) or `*` for every event.
    pub(crate) kind: String,
    /// Only events of this tool.
    #[serde(default)]
    pub(crate) tool: Option<String>,
    /// Metric name, `eunomia_<area>_<name>_<unit>`.
    pub(crate) metric: String,
    /// What the metric is.
    #[serde(rename = "type")]
    pub(crate) metric_type: MetricKind,
    /// The numeric field aggregated (not for `count`). Durations are taken
    /// in seconds.
    #[serde(default)]
    pub(crate) field: Option<String>,
    /// Fields that become labels (`proc.comm`, `container.name`, `tool`, `kind`, ...).
    #[serde(default)]
    pub(crate) labels: Vec<String>,
    /// Histogram bucket upper bounds (default by unit suffix of `metric`).
    #[serde(default)]
    pub(crate) buckets: Option<Vec<f64>>,
    /// Factor applied to the field's value (e.g. 1024 for KiB to bytes).
    #[serde(default)]
    pub(crate) scale: Option<f64>,
    /// Help text.
    #[serde(default)]
    pub(crate) help: Option<String>,
}

impl EventRule {
    fn new(
        kind: &str,
        metric: &str,
        t: MetricKind,
        field: Option<&str>,
        labels: &[&str],
        help: &str,
    ) -> Self {
        EventRule {
            kind: kind.into(),
            tool: None,
            metric: metric.into(),
            metric_type: t,
            field: field.map(Into::into),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            buckets: None,
            scale: None,
            help: Some(help.into()),
        }
    }
}

/// The label most rules group by: the container (empty for host processes).
const CONTAINER: &str = "container.name";
/// Kept beside the name so that a container whose name is unknown is never
/// merged with the host (or with another nameless container).
const CONTAINER_ID: &str = "container.id";

/// The built-in rules (documented in `docs/metrics.md`).
pub(crate) fn default_rules() -> Vec<EventRule> {
    use MetricKind::*;
    vec![
        EventRule::new(
            "*",
            "eunomia_events_total",
            Count,
            None,
            &["tool", "kind"],
            "Events received, by tool and kind.",
        ),
        EventRule::new(
            "exec",
            "eunomia_process_execs_total",
            Count,
            None,
            &[CONTAINER_ID, CONTAINER, "proc.comm"],
            "Processes executed (the hot path's exec events, or execsnoop).",
        ),
        EventRule::new(
            "exit",
            "eunomia_process_exits_total",
            Count,
            None,
            &[CONTAINER_ID, CONTAINER, "proc.comm"],
            "Processes exited (exitsnoop).",
        ),
        EventRule::new(
            "exit",
            "eunomia_process_lifetime_seconds",
            Histogram,
            Some("proc.age"),
            &[CONTAINER_ID, CONTAINER],
            "Lifetime of exited processes.",
        ),
        EventRule::new(
            "open",
            "eunomia_file_opens_total",
            Count,
            None,
            &[CONTAINER_ID, CONTAINER, "proc.comm"],
            "Files opened (opensnoop).",
        ),
        EventRule::new(
            "tcp_session",
            "eunomia_tcp_sessions_total",
            Count,
            None,
            &[CONTAINER_ID, CONTAINER, "net.dport"],
            "TCP sessions ended (tcplife).",
        ),
        EventRule::new(
            "tcp_session",
            "eunomia_tcp_session_duration_seconds",
            Histogram,
            Some("duration"),
            &[CONTAINER_ID, CONTAINER, "net.dport"],
            "Duration of TCP sessions.",
        ),
        EventRule::new(
            "tcp_session",
            "eunomia_tcp_sent_bytes_total",
            Sum,
            Some("net.tx_bytes"),
            &[CONTAINER_ID, CONTAINER, "net.dport"],
            "Bytes sent by ended TCP sessions.",
        ),
        EventRule::new(
            "tcp_session",
            "eunomia_tcp_received_bytes_total",
            Sum,
            Some("net.rx_bytes"),
            &[CONTAINER_ID, CONTAINER, "net.dport"],
            "Bytes received by ended TCP sessions.",
        ),
        EventRule::new(
            "tcp_state",
            "eunomia_tcp_state_changes_total",
            Count,
            None,
            &[CONTAINER_ID, CONTAINER, "net.new_state"],
            "TCP state transitions (tcpstates).",
        ),
        EventRule::new(
            "block_io",
            "eunomia_disk_io_latency_seconds",
            Histogram,
            Some("latency"),
            &["disk"],
            "Block I/O latency by disk.",
        ),
        EventRule::new(
            "dns_lookup",
            "eunomia_dns_lookup_latency_seconds",
            Histogram,
            Some("latency"),
            &[CONTAINER_ID, CONTAINER],
            "Name lookup latency (gethostlatency).",
        ),
        EventRule::new(
            "runq_latency",
            "eunomia_sched_runq_latency_seconds",
            Histogram,
            Some("latency"),
            &[CONTAINER_ID, CONTAINER],
            "Run-queue latency of slow wake-ups (runqslower).",
        ),
        EventRule::new(
            "direct_reclaim",
            "eunomia_memory_direct_reclaim_latency_seconds",
            Histogram,
            Some("latency"),
            &[CONTAINER_ID, CONTAINER],
            "Direct reclaim stalls (drsnoop).",
        ),
        EventRule {
            scale: Some(1024.0),
            ..EventRule::new(
                "direct_reclaim",
                "eunomia_memory_free_bytes",
                LastValue,
                Some("mem.free_kb"),
                &[],
                "Free memory at the last direct reclaim.",
            )
        },
        EventRule::new(
            "kill",
            "eunomia_process_kills_total",
            Count,
            None,
            &[CONTAINER_ID, CONTAINER, "signal.num"],
            "kill-family syscalls (killsnoop, when enabled).",
        ),
        EventRule::new(
            "signal",
            "eunomia_process_signals_total",
            Count,
            None,
            &[CONTAINER_ID, CONTAINER, "signal.num"],
            "Signals generated (sigsnoop).",
        ),
        EventRule::new(
            "mount",
            "eunomia_fs_mounts_total",
            Count,
            None,
            &["mount.op", "mount.fs"],
            "mount, umount and move_mount calls (the hot path, or mountsnoop).",
        ),
    ]
}

/// Whether `name` is a valid Prometheus metric name.
pub(crate) fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl AggregateConfig {
    /// The default rules (if on) followed by the configured ones.
    pub(crate) fn effective_rules(&self) -> Vec<EventRule> {
        let mut rules = if self.default_rules {
            default_rules()
        } else {
            Vec::new()
        };
        rules.extend(self.rules.iter().cloned());
        rules
    }

    /// The series bound of `metric`.
    pub(crate) fn limit_of(&self, metric: &str) -> usize {
        self.series_limits
            .get(metric)
            .copied()
            .unwrap_or(self.max_series)
    }

    /// Checks ranges and rule consistency; the message names the offending key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_series == 0 {
            return Err("aggregate.max_series must be at least 1".into());
        }
        if let Some((m, _)) = self.series_limits.iter().find(|(_, n)| **n == 0) {
            return Err(format!("aggregate.series_limits.{m} must be at least 1"));
        }
        if self.series_ttl < Duration::from_secs(1) {
            return Err("aggregate.series_ttl must be at least 1s".into());
        }
        let mut kinds: BTreeMap<&str, (MetricKind, &[String])> = BTreeMap::new();
        for (i, r) in self.rules.iter().enumerate() {
            validate_rule(r).map_err(|e| format!("aggregate.rules[{i}] ({}): {e}", r.metric))?;
        }
        for r in &self.effective_rules() {
            let prev = kinds.insert(&r.metric, (r.metric_type, &r.labels));
            if let Some((k, labels)) = prev
                && (k != r.metric_type || labels != r.labels.as_slice())
            {
                return Err(format!(
                    "aggregate.rules: metric {} is defined twice with different type or labels",
                    r.metric
                ));
            }
        }
        Ok(())
    }
}

fn validate_rule(r: &EventRule) -> Result<(), String> {
    if !is_metric_name(&r.metric) {
        return Err("metric is not a valid metric name".into());
    }
    if r.kind.is_empty() {
        return Err("kind is empty".into());
    }
    match (r.metric_type, &r.field) {
        (MetricKind::Count, Some(_)) => return Err("a count takes no field".into()),
        (MetricKind::Count, None) => {}
        (_, None) => return Err(format!("type {} needs a field", r.metric_type.as_str())),
        _ => {}
    }
    if let Some(b) = &r.buckets {
        if r.metric_type != MetricKind::Histogram {
            return Err("buckets only apply to histograms".into());
        }
        if b.is_empty() || b.windows(2).any(|w| w[0] >= w[1]) || b.iter().any(|x| !x.is_finite()) {
            return Err("buckets must be finite and strictly increasing".into());
        }
    }
    if r.scale.is_some_and(|s| !s.is_finite() || s == 0.0) {
        return Err("scale must be finite and non-zero".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        AggregateConfig::default().validate().unwrap();
    }

    #[test]
    fn histogram_without_field_is_invalid() {
        let c = AggregateConfig {
            rules: vec![EventRule::new(
                "exec",
                "eunomia_x_seconds",
                MetricKind::Histogram,
                None,
                &[],
                "",
            )],
            ..Default::default()
        };
        let err = c.validate().unwrap_err();
        assert!(err.contains("aggregate.rules[0]"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<AggregateConfig>(
            "[[rules]]\nkind='exec'\nmetric='m'\ntype='count'\nbogus=1\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("bogus"));
    }
}
