//! `eunomia status`: asks the running agent for its state over the control
//! socket: version, uptime, sources with their rates, pipeline counters, one
//! line per sink (up or down, last success, last error, backlog, drops),
//! tools, what the agent costs (`overhead:`) and its own health counters
//! (drops, parse errors, export outcomes).

use std::io::Write as _;

use anyhow::Context as _;

use super::remote::{self, COUNTERS_HEADER, answer_error, counters_json, counters_row};
use crate::{cli::StatusArgs, control::proto};

/// Reports the running agent's state; fails when none answers.
pub(crate) fn status(args: StatusArgs) -> anyhow::Result<()> {
    let status = remote::block_on(async {
        let mut client = remote::connect(&args.socket).await?;
        let r = client
            .status(proto::StatusRequest {})
            .await
            .map_err(answer_error)?;
        Ok(r.into_inner())
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &to_json(&status))?;
        writeln!(out)?;
    } else {
        print_text(&mut out, &status).context("writing to stdout")?;
    }
    Ok(())
}

fn to_json(s: &proto::StatusResponse) -> serde_json::Value {
    let metrics: Vec<_> = s
        .metrics
        .iter()
        .map(|m| serde_json::json!({"name": m.name, "labels": m.labels, "value": m.value}))
        .collect();
    serde_json::json!({
        "version": s.version,
        "pid": s.pid,
        "uptime_s": s.uptime_seconds,
        "config": (!s.config.is_empty()).then_some(&s.config),
        "sources": s.sources,
        "source_rates": s.source_rates.iter().map(|r| serde_json::json!({
            "source": r.source, "messages": r.messages, "per_second": r.per_second,
        })).collect::<Vec<_>>(),
        "pipeline": {"sent": s.pipeline_sent, "dropped": s.pipeline_dropped},
        "sinks": s.sinks.iter().map(|k| serde_json::json!({
            "name": k.name,
            "target": k.target,
            "up": k.up,
            "last_success_unix": (k.last_success_unix > 0.0).then_some(k.last_success_unix),
            "last_error": (!k.last_error.is_empty()).then_some(&k.last_error),
            "last_error_unix": (k.last_error_unix > 0.0).then_some(k.last_error_unix),
            "backlog": k.backlog,
            "dropped": k.dropped,
        })).collect::<Vec<_>>(),
        "tools": s.tools.iter().map(counters_json).collect::<Vec<_>>(),
        "event_subscribers": s.event_subscribers,
        "self_metrics": metrics,
    })
}

fn print_text(out: &mut impl std::io::Write, s: &proto::StatusResponse) -> std::io::Result<()> {
    let uptime =
        humantime::format_duration(std::time::Duration::from_secs(s.uptime_seconds as u64));
    writeln!(
        out,
        "agent:     running (pid {}, eunomia {}, up {uptime})",
        s.pid, s.version
    )?;
    let config = if s.config.is_empty() {
        "(defaults)"
    } else {
        &s.config
    };
    writeln!(out, "config:    {config}")?;
    writeln!(out, "sources:   {}", sources_line(s))?;
    writeln!(
        out,
        "pipeline:  {} messages, {} dropped because the channel was full",
        s.pipeline_sent, s.pipeline_dropped
    )?;
    if s.sinks.is_empty() {
        writeln!(out, "sinks:     none")?;
    }
    for k in &s.sinks {
        writeln!(out, "{}", sink_line(k, now_unix()))?;
    }
    if s.tools.is_empty() {
        writeln!(out, "tools:     none started")?;
    } else {
        writeln!(out, "\n{COUNTERS_HEADER}")?;
        for t in &s.tools {
            writeln!(out, "{}", counters_row(t))?;
            if t.state == "failed"
                && let Some(why) = t.detail.lines().next()
            {
                writeln!(out, "  {}: {}", t.name, why.escape_debug())?;
            }
        }
    }
    for line in super::status_overhead::lines(&s.metrics) {
        writeln!(out, "{line}")?;
    }
    if let Some(line) = links_line(s) {
        writeln!(out, "\ntrace links: {line}")?;
    }
    let health: Vec<_> = s.metrics.iter().filter(|m| is_health(&m.name)).collect();
    if !health.is_empty() {
        writeln!(out, "\nself-metrics:")?;
        for m in health {
            let mut labels: Vec<_> = m
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            labels.sort();
            writeln!(out, "  {}{{{}}} {}", m.name, labels.join(","), m.value)?;
        }
    }
    Ok(())
}

/// The non-zero `eunomia_trace_links_total` outcomes, e.g.
/// `server_parent_client 40, client_no_parent 2`; None before any span.
fn links_line(s: &proto::StatusResponse) -> Option<String> {
    let parts: Vec<String> = s
        .metrics
        .iter()
        .filter(|m| m.name == crate::traces::stage::LINKS_METRIC && m.value > 0.0)
        .filter_map(|m| Some(format!("{} {}", m.labels.get("outcome")?, m.value)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Each active source with its recent rate, e.g. `hotpath.syscalls 0.2/s`.
fn sources_line(s: &proto::StatusResponse) -> String {
    let rate = |name: &str| {
        let key = if name.starts_with("hotpath.") || name == "cgroups" || name == "logs" {
            name
        } else {
            "tools"
        };
        s.source_rates.iter().find(|r| r.source == key)
    };
    let parts: Vec<String> = s
        .sources
        .iter()
        .map(|name| match rate(name) {
            Some(r) => format!("{name} {:.1}/s ({} messages)", r.per_second, r.messages),
            None => name.clone(),
        })
        .collect();
    parts.join(", ")
}

/// `sink otlp: up, -> http://core:4317, last success 2s ago, backlog 0, 0 dropped`.
fn sink_line(k: &proto::SinkStatus, now: f64) -> String {
    let ago = |t: f64| {
        let secs = (now - t).max(0.0).round() as u64;
        format!(
            "{} ago",
            humantime::format_duration(std::time::Duration::from_secs(secs))
        )
    };
    let mut line = format!(
        "sink {:<13} {}, -> {}, last success {}",
        format!("{}:", k.name),
        match (k.up, k.last_success_unix > 0.0 || !k.last_error.is_empty()) {
            (true, true) => "up",
            (true, false) => "waiting (nothing sent yet)",
            (false, _) => "DOWN",
        },
        k.target,
        match k.last_success_unix > 0.0 {
            true => ago(k.last_success_unix),
            false => "never".into(),
        }
    );
    if !k.last_error.is_empty() {
        line += &format!(", last error {}: {}", ago(k.last_error_unix), k.last_error);
    }
    line + &format!(", backlog {}, {} dropped", k.backlog, k.dropped)
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Self-metrics about trouble: drops, errors, failures, restarts.
fn is_health(name: &str) -> bool {
    [
        "drop",
        "error",
        "fail",
        "restart",
        "overflow",
        "lost",
        "truncated",
        "malformed",
    ]
    .iter()
    .any(|w| name.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> proto::StatusResponse {
        proto::StatusResponse {
            version: "0.1.0".into(),
            pid: 42,
            uptime_seconds: 10.0,
            config: "/etc/eunomia/eunomia.toml".into(),
            sources: vec!["hotpath.syscalls".into(), "tools".into()],
            source_rates: vec![
                proto::SourceRate {
                    source: "hotpath.syscalls".into(),
                    messages: 10,
                    per_second: 1.0,
                },
                proto::SourceRate {
                    source: "tools".into(),
                    messages: 250,
                    per_second: 25.0,
                },
            ],
            sinks: vec![proto::SinkStatus {
                name: "otlp".into(),
                target: "http://core:4317".into(),
                up: false,
                last_success_unix: 0.0,
                last_error: "metrics: connection refused".into(),
                last_error_unix: 100.0,
                backlog: 3,
                dropped: 0,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn text_has_one_line_per_sink_rates_and_plain_words() {
        let mut out = Vec::new();
        print_text(&mut out, &sample()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("0 dropped because the channel was full"),
            "{text}"
        );
        assert!(
            text.contains(
                "sources:   hotpath.syscalls 1.0/s (10 messages), tools 25.0/s (250 messages)"
            ),
            "{text}"
        );
        let line = sink_line(&sample().sinks[0], 102.0);
        assert_eq!(
            line,
            "sink otlp:         DOWN, -> http://core:4317, last success never, last error 2s ago: metrics: connection refused, backlog 3, 0 dropped"
        );
        let fresh = proto::SinkStatus {
            name: "prometheus".into(),
            target: "http://127.0.0.1:9464/metrics".into(),
            up: true,
            ..Default::default()
        };
        assert!(
            sink_line(&fresh, 102.0).contains("waiting (nothing sent yet)"),
            "{}",
            sink_line(&fresh, 102.0)
        );
        let json = to_json(&sample());
        assert_eq!(json["sinks"][0]["backlog"], 3);
        assert_eq!(json["sinks"][0]["up"], false);
        assert_eq!(json["source_rates"][1]["per_second"], 25.0);
    }

    #[test]
    fn trace_links_are_shown() {
        let mut s = sample();
        let link = |outcome: &str, value| proto::SelfMetric {
            name: crate::traces::stage::LINKS_METRIC.into(),
            labels: [("outcome".to_owned(), outcome.to_owned())].into(),
            value,
        };
        s.metrics = vec![link("server_parent_client", 40.0), link("evicted", 0.0)];
        let mut out = Vec::new();
        print_text(&mut out, &s).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("trace links: server_parent_client 40\n"),
            "{text}"
        );
        assert!(!text.contains("evicted"));
    }
}
