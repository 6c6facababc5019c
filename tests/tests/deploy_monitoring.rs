//! The monitoring files under deploy/: the Prometheus alerting rules pass
//! `promtool check rules` and fire on the series they are about (`promtool
//! test rules`); the Grafana dashboard is valid JSON whose queries use only
//! documented metrics and Prometheus label names.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// promtool, or `None` (printing why) outside CI when it is missing.
fn promtool() -> Option<&'static str> {
    if Path::new("/usr/bin/promtool").exists() {
        return Some("/usr/bin/promtool");
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "promtool is missing (Debian package prometheus, scripts/setup.sh)"
    );
    eprintln!("SKIP: promtool is missing (Debian package prometheus)");
    None
}

/// Every `eunomia_*` metric name in `text`, without histogram suffixes.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("eunomia_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(base.to_owned());
        rest = &tail[end..];
    }
    names
}

/// Metric names documented in docs/metrics.md.
fn documented() -> BTreeSet<String> {
    metric_names(&std::fs::read_to_string(repo().join("docs/metrics.md")).unwrap())
}

#[test]
fn alert_rules_pass_promtool_and_fire() {
    let Some(promtool) = promtool() else { return };
    let rules = repo().join("deploy/prometheus/eunomia-alerts.yml");
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&rules).unwrap();
    let docs = documented();
    for name in metric_names(&text) {
        assert!(docs.contains(&name), "{name} is not in docs/metrics.md");
    }

    // Unit tests of the rules: a failed tool and a full pipeline alert.
    let dir = tempfile::tempdir().unwrap();
    let test = dir.path().join("eunomia-alerts.test.yml");
    std::fs::write(
        &test,
        format!(
            r#"rule_files: ["{}"]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'eunomia_tool_failed{{instance="n1", tool="tcplife"}}'
        values: '0 0 1 1 1 1'
      - series: 'eunomia_pipeline_dropped_total{{instance="n1", reason="channel_full"}}'
        values: '0+100x30'
      - series: 'eunomia_pipeline_messages_total{{instance="n1"}}'
        values: '0+1000x30'
    alert_rule_test:
      - eval_time: 5m
        alertname: EunomiaToolFailed
        exp_alerts:
          - exp_labels: {{severity: warning, instance: n1, tool: tcplife}}
            exp_annotations:
              summary: "tool tcplife failed on n1"
              description: "The agent gave up restarting tcplife: it kept exiting right after start. `eunomia status` shows its last stderr lines."
      - eval_time: 20m
        alertname: EunomiaPipelineStalled
        exp_alerts: []
      - eval_time: 20m
        alertname: EunomiaNoData
        exp_alerts: []
"#,
            rules.display()
        ),
    )
    .unwrap();
    let out = Command::new(promtool)
        .args(["test", "rules"])
        .arg(&test)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn grafana_dashboard_uses_documented_metrics_and_prometheus_labels() {
    let text = std::fs::read_to_string(repo().join("deploy/grafana/eunomia.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    assert!(dash["title"].is_string() && dash["uid"].is_string());
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate id: {p}");
        assert!(p["gridPos"]["w"].as_u64().is_some(), "no gridPos: {p}");
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel without queries: {}", p["title"]);
        exprs.extend(
            targets
                .iter()
                .map(|t| t["expr"].as_str().unwrap().to_owned()),
        );
    }
    let docs = documented();
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for name in &used {
        assert!(docs.contains(name), "{name} is not in docs/metrics.md");
    }
    // The areas the dashboard is for.
    for needed in [
        "eunomia_syscalls_total",
        "eunomia_tcp_connections_total",
        "eunomia_events_total",
        "eunomia_rules_alerts_total",
        "eunomia_pipeline_dropped_total",
        "eunomia_tool_parse_errors_total",
        "eunomia_tool_restarts_total",
        "eunomia_sink_exports_total",
    ] {
        assert!(used.contains(needed), "no panel shows {needed}");
    }
    for e in &exprs {
        // Prometheus label names: `container_name`, never `container.name`.
        assert!(
            !e.contains("container.") && !e.contains("proc.") && !e.contains("net."),
            "OTLP label name in a PromQL query: {e}"
        );
    }
}
