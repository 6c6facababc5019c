//! The console sink of `eunomia run` in the foreground: one summary line per
//! poll interval (top syscalls, total rate, records per tool), as text or as
//! one JSON object per line.

use std::{collections::BTreeMap, io::Write};

use serde::Serialize;

use model::metrics::{
    BYTES_METRIC, CLOSED_METRIC, CONNECT_FAILURES_METRIC, CONNECTIONS_METRIC, MAP_FULL_METRIC,
    RECURSION_MISSES_METRIC, RESETS_METRIC, SELF_SOURCE, SYSCALL_ERRORS_METRIC, SYSCALLS_METRIC,
    SYSCALLS_SOURCE, TCP_SOURCE,
};

use crate::pipeline::{Message, Sample, SampleBatch, SampleValue};

/// Prints interval summaries to a writer (stdout in the agent).
pub(crate) struct Console<W: Write> {
    out: W,
    json: bool,
    top: usize,
    /// Records received per tool since the last summary.
    records: BTreeMap<String, u64>,
    /// Print every sample batch as a JSON line too.
    samples: bool,
    /// TCP figures received since the last summary.
    tcp: Option<TcpSummary>,
    /// Hot-path losses (map full, recursion misses) since the last summary.
    hotpath_losses: u64,
}

/// TCP figures of one interval.
#[derive(Debug, Default, Serialize)]
pub(crate) struct TcpSummary {
    /// Connections this host opened (connect).
    pub(crate) active: u64,
    /// Connections this host accepted.
    pub(crate) passive: u64,
    /// Connect attempts that failed.
    pub(crate) failed: u64,
    /// Resets sent or received.
    pub(crate) resets: u64,
    /// Sessions closed.
    pub(crate) closed: u64,
    /// Bytes sent by closed sessions.
    pub(crate) tx_bytes: u64,
    /// Bytes received by closed sessions.
    pub(crate) rx_bytes: u64,
}

/// One cgroup's syscalls in an interval.
#[derive(Debug, Serialize)]
pub(crate) struct CgroupEntry {
    /// cgroup v2 id (or `other`).
    pub(crate) cgroup_id: String,
    /// Syscalls.
    pub(crate) syscalls: u64,
    /// Syscalls that failed.
    pub(crate) errors: u64,
}

/// One interval's summary, as printed with `--json`.
#[derive(Debug, Serialize)]
pub(crate) struct IntervalSummary {
    /// Length of the interval in seconds.
    pub(crate) interval_s: f64,
    /// Syscalls made on the host in the interval.
    pub(crate) syscalls_total: u64,
    /// `syscalls_total / interval_s`.
    pub(crate) syscalls_per_s: f64,
    /// The most frequent syscalls.
    pub(crate) top: Vec<TopEntry>,
    /// Syscalls that returned an error.
    pub(crate) syscall_errors_total: u64,
    /// The cgroups that made the most syscalls.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) cgroups: Vec<CgroupEntry>,
    /// TCP sessions (when the TCP probe runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tcp: Option<TcpSummary>,
    /// Counts the hot path lost or diverted (map full, recursion misses).
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) hotpath_losses: u64,
    /// Records received per supervised tool in the interval.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) tools: BTreeMap<String, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One syscall and its count.
#[derive(Debug, Serialize)]
pub(crate) struct TopEntry {
    /// Syscall name.
    pub(crate) syscall: String,
    /// Calls in the interval.
    pub(crate) count: u64,
}

impl<W: Write> Console<W> {
    /// A console printing the `top` most frequent syscalls per interval.
    pub(crate) fn new(out: W, json: bool, top: usize) -> Self {
        Self {
            out,
            json,
            top,
            records: BTreeMap::new(),
            samples: false,
            tcp: None,
            hotpath_losses: 0,
        }
    }

    /// Also print every sample batch as one JSON line (`--samples`).
    pub(crate) fn with_samples(mut self, samples: bool) -> Self {
        self.samples = samples;
        self
    }

    /// Takes one pipeline message; prints when it completes an interval.
    pub(crate) fn handle(&mut self, msg: &Message) -> std::io::Result<()> {
        match msg {
            Message::Record(r) => {
                *self.records.entry(r.tool.to_string()).or_default() += 1;
                Ok(())
            }
            Message::Samples(batch) => {
                if self.samples {
                    serde_json::to_writer(&mut self.out, &batch_json(batch))?;
                    writeln!(self.out)?;
                }
                match batch.source {
                    SYSCALLS_SOURCE => {
                        let summary = self.summarize(batch);
                        self.print(&summary)
                    }
                    TCP_SOURCE => {
                        self.add_tcp(&batch.samples);
                        Ok(())
                    }
                    SELF_SOURCE => {
                        self.hotpath_losses += batch
                            .samples
                            .iter()
                            .filter(|s| {
                                s.metric == MAP_FULL_METRIC || s.metric == RECURSION_MISSES_METRIC
                            })
                            .map(delta_of)
                            .sum::<u64>();
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
            // the traces stage takes them: they never reach the sinks
            Message::Requests(_) => Ok(()),
        }
    }

    fn add_tcp(&mut self, samples: &[Sample]) {
        let t = self.tcp.get_or_insert_with(TcpSummary::default);
        for s in samples {
            let n = delta_of(s);
            match (s.metric, s.label("direction")) {
                (CONNECTIONS_METRIC, Some("active")) => t.active += n,
                (CONNECTIONS_METRIC, Some("passive")) => t.passive += n,
                (CONNECT_FAILURES_METRIC, _) => t.failed += n,
                (RESETS_METRIC, _) => t.resets += n,
                (CLOSED_METRIC, _) => t.closed += n,
                (BYTES_METRIC, Some("tx")) => t.tx_bytes += n,
                (BYTES_METRIC, Some("rx")) => t.rx_bytes += n,
                _ => {}
            }
        }
    }

    fn summarize(&mut self, batch: &SampleBatch) -> IntervalSummary {
        let mut by_syscall: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_cgroup: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut errors_total = 0;
        for s in &batch.samples {
            let n = delta_of(s);
            match s.metric {
                SYSCALLS_METRIC => {
                    *by_syscall
                        .entry(s.label("syscall").unwrap_or("unknown"))
                        .or_default() += n;
                    if let Some(c) = s.label("cgroup.id") {
                        by_cgroup.entry(c).or_default().0 += n;
                    }
                }
                SYSCALL_ERRORS_METRIC => {
                    errors_total += n;
                    if let Some(c) = s.label("cgroup.id") {
                        by_cgroup.entry(c).or_default().1 += n;
                    }
                }
                _ => {}
            }
        }
        let mut counts: Vec<(&str, u64)> = by_syscall.into_iter().collect();
        let total = counts.iter().map(|(_, n)| n).sum();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut cgroups: Vec<(&str, (u64, u64))> = by_cgroup.into_iter().collect();
        cgroups.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
        let secs = batch.interval_s.max(1e-3);
        IntervalSummary {
            interval_s: secs,
            syscalls_total: total,
            syscalls_per_s: total as f64 / secs,
            top: counts
                .into_iter()
                .take(self.top)
                .map(|(name, count)| TopEntry {
                    syscall: name.to_owned(),
                    count,
                })
                .collect(),
            syscall_errors_total: errors_total,
            cgroups: cgroups
                .into_iter()
                .take(self.top)
                .map(|(id, (syscalls, errors))| CgroupEntry {
                    cgroup_id: id.to_owned(),
                    syscalls,
                    errors,
                })
                .collect(),
            tcp: self.tcp.take(),
            hotpath_losses: std::mem::take(&mut self.hotpath_losses),
            tools: std::mem::take(&mut self.records),
        }
    }

    fn print(&mut self, s: &IntervalSummary) -> std::io::Result<()> {
        if self.json {
            let v = serde_json::to_value(s)?;
            let v = crate::schema::tagged(v, "summary", crate::host::now_ns());
            serde_json::to_writer(&mut self.out, &v)?;
            return writeln!(self.out);
        }
        let top: Vec<String> = s
            .top
            .iter()
            .map(|t| format!("{} {}", t.syscall, t.count))
            .collect();
        write!(
            self.out,
            "syscalls: {} in {:.1}s ({:.0}/s) | top: {}",
            s.syscalls_total,
            s.interval_s,
            s.syscalls_per_s,
            top.join(", ")
        )?;
        if !s.cgroups.is_empty() {
            let cg: Vec<String> = s
                .cgroups
                .iter()
                .map(|c| format!("{} {} ({} err)", c.cgroup_id, c.syscalls, c.errors))
                .collect();
            write!(self.out, " | cgroups: {}", cg.join(", "))?;
        }
        if let Some(t) = &s.tcp {
            write!(
                self.out,
                " | tcp: {} connect, {} accept, {} failed, {} resets, {} closed, tx {} B, rx {} B",
                t.active, t.passive, t.failed, t.resets, t.closed, t.tx_bytes, t.rx_bytes
            )?;
        }
        if s.hotpath_losses > 0 {
            write!(self.out, " | hot-path losses: {}", s.hotpath_losses)?;
        }
        for (tool, n) in &s.tools {
            write!(self.out, " | {tool}: {n} records")?;
        }
        writeln!(self.out)
    }
}

/// A counter sample's increase (0 for other kinds).
fn delta_of(s: &Sample) -> u64 {
    match s.value {
        SampleValue::Delta(n) => n,
        _ => 0,
    }
}

/// A sample batch as one JSON object (`--samples`).
pub(crate) fn batch_json(batch: &SampleBatch) -> serde_json::Value {
    let samples: Vec<serde_json::Value> = batch
        .samples
        .iter()
        .map(|s| {
            let labels: serde_json::Map<String, serde_json::Value> = s
                .labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(v.as_str())))
                .collect();
            let mut o = serde_json::json!({ "metric": s.metric, "labels": labels });
            match &s.value {
                SampleValue::Delta(n) => o["delta"] = (*n).into(),
                SampleValue::DeltaF64(d) => o["delta"] = (*d).into(),
                SampleValue::Gauge(g) => o["gauge"] = (*g).into(),
                SampleValue::Log2Histogram { unit, counts } => {
                    o["histogram"] = serde_json::json!({ "unit": unit, "log2_counts": counts })
                }
                SampleValue::Histogram {
                    bounds,
                    counts,
                    sum,
                } => {
                    o["histogram"] =
                        serde_json::json!({ "bounds": bounds, "counts": counts, "sum": sum })
                }
            }
            o
        })
        .collect();
    serde_json::json!({
        "type": "samples",
        "ts_ns": crate::host::now_ns(),
        "source": batch.source,
        "interval_s": batch.interval_s,
        "samples": samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Sample;

    fn syscalls(pairs: &[(&str, u64)]) -> Message {
        Message::Samples(SampleBatch {
            source: SYSCALLS_SOURCE,
            interval_s: 2.0,
            samples: pairs
                .iter()
                .map(|(name, n)| Sample {
                    metric: SYSCALLS_METRIC,
                    labels: vec![("syscall", (*name).to_owned())],
                    value: SampleValue::Delta(*n),
                })
                .collect(),
        })
    }

    #[test]
    fn text_summary_lists_top_syscalls_by_count() {
        let mut out = Vec::new();
        let mut c = Console::new(&mut out, false, 2);
        c.handle(&syscalls(&[("read", 10), ("write", 30), ("openat", 20)]))
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "syscalls: 60 in 2.0s (30/s) | top: write 30, openat 20\n"
        );
    }

    #[test]
    fn json_summary_is_one_object_per_line() {
        let mut out = Vec::new();
        let mut c = Console::new(&mut out, true, 5);
        c.handle(&syscalls(&[("getppid", 7)])).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "summary");
        assert!(v["ts_ns"].as_u64().unwrap() > 0);
        assert_eq!(v["syscalls_total"], 7);
        assert_eq!(v["top"][0]["syscall"], "getppid");
    }
}
