//! The naming rule of `docs/metrics.md`, as code: `eunomia_<area>_<name>_<unit>`
//! with a base unit (`seconds`, `bytes`, `ratio`, or none for counts), never
//! a scaled one (`us`, `ms`, `kbytes`, `pct`, ...) nor a bare `time`;
//! counters end in `_total` and nothing else does; histograms are in
//! `seconds` or `bytes`.

use super::MetricKind;

/// Unit words that are not base units.
const SCALED_UNITS: &[&str] = &[
    "us",
    "ms",
    "ns",
    "usecs",
    "msecs",
    "nsecs",
    "microseconds",
    "milliseconds",
    "nanoseconds",
    "kb",
    "kbytes",
    "kib",
    "kibibytes",
    "mb",
    "mib",
    "pct",
    "percent",
    "minutes",
    "hours",
];

/// Metrics named by the OpenTelemetry semantic conventions (in their
/// Prometheus form), which dashboards of every HTTP instrumentation share:
/// kept as the conventions name them, without the `eunomia_` prefix.
pub(crate) const SEMCONV: &[&str] = &[
    "http_server_request_duration_seconds",
    "http_client_request_duration_seconds",
    // the service-graph metrics of Tempo's and the collector's servicegraph connector
    "traces_service_graph_request_total",
    "traces_service_graph_request_failed_total",
    "traces_service_graph_request_server_seconds",
    "traces_service_graph_request_client_seconds",
];

/// Checks `name` against the rule; `kind` (when known) adds the counter
/// and histogram parts. The error says what is wrong.
pub fn check_metric_name(name: &str, kind: Option<MetricKind>) -> Result<(), String> {
    if SEMCONV.contains(&name) {
        return Ok(());
    }
    let Some(rest) = name.strip_prefix("eunomia_") else {
        return Err(format!("{name}: does not start with eunomia_"));
    };
    if rest.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!("{name}: not lower-case [a-z0-9_]"));
    }
    let words: Vec<&str> = rest.split('_').collect();
    if let Some(w) = words.iter().find(|w| SCALED_UNITS.contains(w)) {
        return Err(format!("{name}: `{w}` is not a base unit (seconds, bytes)"));
    }
    let unit = words
        .iter()
        .rev()
        .find(|w| **w != "total")
        .copied()
        .unwrap_or("");
    if unit == "time" {
        return Err(format!(
            "{name}: a duration needs its unit (`_time_seconds`)"
        ));
    }
    let is_total = name.ends_with("_total");
    match kind {
        Some(MetricKind::Sum | MetricKind::Count) if !is_total => {
            Err(format!("{name}: a counter ends in _total"))
        }
        Some(MetricKind::LastValue | MetricKind::Histogram) if is_total => {
            Err(format!("{name}: only counters end in _total"))
        }
        Some(MetricKind::Histogram) if !matches!(unit, "seconds" | "bytes") => {
            Err(format!("{name}: a histogram is in seconds or bytes"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::{path::Path, sync::Arc};

    use super::*;
    use crate::{
        aggregate::{AggregateConfig, Aggregator},
        pipeline::{Message, ToolRecord},
    };

    /// Every `"eunomia_..."` string literal in the non-test code of `dir`.
    fn literals_in(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                literals_in(&path, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs")
                || path.file_name().is_some_and(|n| n == "tests.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (i, _) in code.match_indices("\"eunomia_") {
                let tail = &code[i + 1..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                if tail[end..].starts_with('"') {
                    out.push((tail[..end].to_owned(), path.display().to_string()));
                }
            }
        }
    }

    #[test]
    fn the_rule_catches_what_docs_metrics_md_forbids() {
        for bad in [
            "eunomia_tcp_session_duration_us",
            "eunomia_tool_syscount_total_time",
            "eunomia_tool_biolatency_microseconds",
            "eunomia_tool_biopattern_random_pct",
            "eunomia_tool_biopattern_kbytes",
            "Eunomia_x_total",
        ] {
            assert!(check_metric_name(bad, None).is_err(), "{bad} passed");
        }
        assert!(check_metric_name("eunomia_x_seconds", Some(MetricKind::Sum)).is_err());
        assert!(check_metric_name("eunomia_x_total", Some(MetricKind::LastValue)).is_err());
        assert!(check_metric_name("eunomia_x_count", Some(MetricKind::Histogram)).is_err());
        assert!(check_metric_name("eunomia_x_seconds_total", Some(MetricKind::Sum)).is_ok());
        assert!(check_metric_name("eunomia_tool_up", Some(MetricKind::LastValue)).is_ok());
    }

    #[test]
    fn metric_names_follow_the_rule() {
        // Every name written in the code (samples, self-metrics, rules).
        let mut names = Vec::new();
        literals_in(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut names,
        );
        assert!(names.len() > 30, "found only {names:?}");
        let mut bad: Vec<String> = names
            .iter()
            // A BPF program name and a prefix.
            .filter(|(n, _)| n != "eunomia_probe" && n != "eunomia_")
            .filter_map(|(n, file)| {
                check_metric_name(n, None)
                    .err()
                    .map(|e| format!("{file}: {e}"))
            })
            .collect();
        // The built-in event rules, with their kinds.
        for r in crate::aggregate::config::default_rules() {
            if let Err(e) = check_metric_name(&r.metric, Some(r.metric_type)) {
                bad.push(format!("default rule: {e}"));
            }
        }
        // Names made from tools' output: the real output of every built-in
        // tool (parsers/fixtures, captured from libbpf-tools) through the
        // aggregator.
        let mut agg = Aggregator::new(&AggregateConfig::default(), Vec::new());
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../parsers/fixtures");
        let mut records = 0;
        for tool in parsers::builtin_names() {
            let Ok(dir) = std::fs::read_dir(fixtures.join(tool)) else {
                continue;
            };
            for file in dir.flatten() {
                let text = std::fs::read(file.path()).unwrap();
                let mut parser = parsers::builtin(tool).unwrap();
                let (parsed, _) = parsers::parse_all(parser.as_mut(), &text);
                for r in parsed {
                    records += 1;
                    let msg = Message::Record(ToolRecord::new(Arc::from(*tool), r));
                    agg.ingest(&msg);
                }
            }
        }
        assert!(records > 1000, "only {records} records from the fixtures");
        let made = agg.collect().metrics;
        assert!(
            made.iter()
                .any(|m| m.name.starts_with("eunomia_tool_syscount_")),
            "no syscount metric from the fixtures"
        );
        for m in made {
            if let Err(e) = check_metric_name(m.name, Some(m.kind)) {
                bad.push(format!("from tool output: {e}"));
            }
        }
        assert!(
            bad.is_empty(),
            "names breaking docs/metrics.md's rule:\n{}",
            bad.join("\n")
        );
    }
}
