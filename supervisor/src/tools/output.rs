//! A tool's stdout, as the runner reads it: split into lines (each bounded),
//! checked against the kernel ([`super::verify`]), parsed, counted and sent
//! into the pipeline, dropping (and counting) what the pipeline cannot take.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use super::{
    manifest::ToolSpec,
    pa,
    runner::MAX_LINE,
    stats::ToolStats,
    verify::{Checker, KernelFacts, Verdict},
};
use crate::{
    context::PidLookup,
    pipeline::{Message, PipelineTx, ToolRecord},
};

/// Splits output into lines, parses them and sends the records.
pub(super) struct Output<'a> {
    parser: Box<dyn pa::ToolParser>,
    tool: Arc<str>,
    tx: &'a PipelineTx,
    stats: &'a ToolStats,
    pending: Vec<u8>,
    /// Inside an over-long line whose head was already passed on.
    skipping: bool,
    records: Vec<pa::Record>,
    checker: Checker,
    logged_errors: u32,
    started: Instant,
    seen_output: bool,
}

impl<'a> Output<'a> {
    pub(super) fn new(
        spec: &ToolSpec,
        tx: &'a PipelineTx,
        stats: &'a ToolStats,
        pids: &PidLookup,
    ) -> Output<'a> {
        Output {
            parser: spec.new_parser(),
            tool: spec.name.clone(),
            tx,
            stats,
            pending: Vec::with_capacity(4096),
            skipping: false,
            records: Vec::new(),
            checker: Checker::new(Arc::new(KernelFacts::new(pids.clone())), spec.event_kind),
            logged_errors: 0,
            started: Instant::now(),
            seen_output: false,
        }
    }

    pub(super) fn bytes(&mut self, mut data: &[u8]) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            let (head, rest) = (&data[..i], &data[i + 1..]);
            data = rest;
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.pending.is_empty() {
                self.line(head);
            } else {
                let mut line = std::mem::take(&mut self.pending);
                line.extend_from_slice(head);
                self.line(&line);
                line.clear();
                self.pending = line;
            }
        }
        if self.skipping {
            return;
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() > MAX_LINE {
            let line = std::mem::take(&mut self.pending);
            self.stats.truncated_lines.fetch_add(1, Ordering::Relaxed);
            self.line(&line[..MAX_LINE]);
            self.skipping = true;
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !self.seen_output {
            // Tools print their banner or header once their programs are
            // attached: from here on, what happens is seen.
            self.seen_output = true;
            tracing::info!(
                tool = %self.tool,
                "first output after {:.2}s",
                self.started.elapsed().as_secs_f64()
            );
        }
        self.stats.lines.fetch_add(1, Ordering::Relaxed);
        let mut notes = Vec::new();
        self.checker
            .line(self.parser.as_mut(), line, &mut self.records, &mut |o| {
                notes.push(o)
            });
        self.count(notes);
        self.flush();
    }

    /// Sends what the checker holds back (no continuation came in time).
    pub(super) fn release(&mut self) {
        let mut notes = Vec::new();
        self.checker
            .release_with(self.parser.as_mut(), &mut self.records, &mut |o| {
                notes.push(o)
            });
        self.count(notes);
        self.flush();
    }

    /// Counts (and logs, a few times) what the checker did not accept.
    fn count(&mut self, notes: Vec<Verdict>) {
        for note in notes {
            match note {
                Verdict::Rejected(r, line) => {
                    self.stats.rejected[r.index()].fetch_add(1, Ordering::Relaxed);
                    self.log(format_args!("record rejected ({}): {line}", r.as_str()));
                }
                Verdict::Continued | Verdict::Joined => {
                    self.stats.continued_lines.fetch_add(1, Ordering::Relaxed);
                }
                Verdict::Unparsable(e) => {
                    self.stats.parse_errors.fetch_add(1, Ordering::Relaxed);
                    self.log(format_args!("unparsable line skipped: {e}"));
                }
            }
        }
    }

    /// Warns about the first ten lines skipped, then only at debug level.
    fn log(&mut self, what: std::fmt::Arguments<'_>) {
        if self.logged_errors < 10 {
            self.logged_errors += 1;
            tracing::warn!(tool = %self.tool, "{what}");
        } else {
            tracing::debug!(tool = %self.tool, "{what}");
        }
    }

    pub(super) fn finish(&mut self) {
        if !self.pending.is_empty() && !self.skipping {
            let line = std::mem::take(&mut self.pending);
            self.line(&line);
        }
        self.release();
        self.parser.finish(&mut self.records);
        self.flush();
    }

    fn flush(&mut self) {
        if self.records.is_empty() {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        for mut record in self.records.drain(..) {
            record.set_ts_ns(now);
            self.stats.records.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .tx
                .send(Message::Record(ToolRecord::new(self.tool.clone(), record)));
            if !sent {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Output<'_> {
    /// Whether a record or line waits for the next line.
    pub(super) fn holding(&self) -> bool {
        self.checker.holding()
    }

    /// How long it waits for the next line.
    pub(super) fn hold_for(&self) -> std::time::Duration {
        self.checker.hold_for()
    }
}
