//! `eunomia status`: asks the running agent for its state over the control
//! socket: version, uptime, sources, pipeline counters, tools and the
//! agent's own health counters (drops, parse errors, export outcomes).

use std::io::Write as _;

use anyhow::Context as _;

use super::remote::{self, COUNTERS_HEADER, answer_error, counters_json, counters_row};
use crate::{cli::StatusArgs, control::proto};

/// Reports the running agent's state; fails when none answers.
pub fn status(args: StatusArgs) -> anyhow::Result<()> {
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
        "pipeline": {"sent": s.pipeline_sent, "dropped": s.pipeline_dropped},
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
    writeln!(out, "sources:   {}", s.sources.join(", "))?;
    writeln!(
        out,
        "pipeline:  {} messages, {} dropped (channel full)",
        s.pipeline_sent, s.pipeline_dropped
    )?;
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
    ]
    .iter()
    .any(|w| name.contains(w))
}
