//! The console sink of `eunomia run` in the foreground: one summary line per
//! poll interval (top syscalls, total rate, records per tool), as text or as
//! one JSON object per line.

use std::{collections::BTreeMap, io::Write};

use serde::Serialize;

use crate::{
    hotpath::poller::{SYSCALLS_METRIC, SYSCALLS_SOURCE},
    pipeline::{Message, SampleBatch, SampleValue},
};

/// Prints interval summaries to a writer (stdout in the agent).
pub struct Console<W: Write> {
    out: W,
    json: bool,
    top: usize,
    /// Records received per tool since the last summary.
    records: BTreeMap<String, u64>,
}

/// One interval's summary, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct IntervalSummary {
    /// Length of the interval in seconds.
    pub interval_s: f64,
    /// Syscalls made on the host in the interval.
    pub syscalls_total: u64,
    /// `syscalls_total / interval_s`.
    pub syscalls_per_s: f64,
    /// The most frequent syscalls.
    pub top: Vec<TopEntry>,
    /// Records received per supervised tool in the interval.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, u64>,
}

/// One syscall and its count.
#[derive(Debug, Serialize)]
pub struct TopEntry {
    /// Syscall name.
    pub syscall: String,
    /// Calls in the interval.
    pub count: u64,
}

impl<W: Write> Console<W> {
    /// A console printing the `top` most frequent syscalls per interval.
    pub fn new(out: W, json: bool, top: usize) -> Self {
        Self {
            out,
            json,
            top,
            records: BTreeMap::new(),
        }
    }

    /// Takes one pipeline message; prints when it completes an interval.
    pub fn handle(&mut self, msg: &Message) -> std::io::Result<()> {
        match msg {
            Message::Record(r) => {
                *self.records.entry(r.tool.to_string()).or_default() += 1;
                Ok(())
            }
            Message::Samples(batch) if batch.source == SYSCALLS_SOURCE => {
                let summary = self.summarize(batch);
                self.print(&summary)
            }
            Message::Samples(_) => Ok(()),
        }
    }

    fn summarize(&mut self, batch: &SampleBatch) -> IntervalSummary {
        let mut counts: Vec<(&str, u64)> = batch
            .samples
            .iter()
            .filter(|s| s.metric == SYSCALLS_METRIC)
            .filter_map(|s| match s.value {
                SampleValue::Delta(n) => Some((s.label("syscall").unwrap_or("unknown"), n)),
                _ => None,
            })
            .collect();
        let total = counts.iter().map(|(_, n)| n).sum();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
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
            tools: std::mem::take(&mut self.records),
        }
    }

    fn print(&mut self, s: &IntervalSummary) -> std::io::Result<()> {
        if self.json {
            serde_json::to_writer(&mut self.out, s)?;
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
        for (tool, n) in &s.tools {
            write!(self.out, " | {tool}: {n} records")?;
        }
        writeln!(self.out)
    }
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
        assert_eq!(v["syscalls_total"], 7);
        assert_eq!(v["top"][0]["syscall"], "getppid");
    }
}
