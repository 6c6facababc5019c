//! The interval-summary state machine shared by the histogram and table
//! tools (biolatency, runqlat, cpudist, bitesize, hardirqs, softirqs,
//! syscount, biopattern) and by the generic `histogram` and `table` formats.
//!
//! Output of these tools is a sequence of blocks, optionally preceded by a
//! time-stamp line (`HH:MM:SS` or `[HH:MM:SS]`):
//!
//! ```text
//! 16:40:05                                  <- time stamp: ends a block
//! disk = vda                                <- label for the next histogram
//!      usecs               : count    distribution   <- histogram header
//!          0 -> 1          : 0        |          |   <- buckets
//! HARDIRQ                    TOTAL_usecs    <- table header (tool-specific)
//! virtio1-req.0                      109    <- table rows
//! ```
//!
//! A block ends at a blank line, a time stamp, the next label or header, or
//! [`ToolParser::finish`].

use std::sync::Arc;

use nom::Parser;

use crate::ToolParser;
use crate::error::ParseError;
use crate::fields;
use crate::records::{
    Bucket, Comm, HistogramSnapshot, Label, Record, TableSnapshot, ToolTime, Unit, Value,
};
use crate::text::{self, Res, chomp, expect, fail_message, is_noise, timestamp_line, trim, ws0};

/// How a tool's tables look: recognises the header and parses rows.
pub(crate) trait TableSyntax: Send + 'static {
    /// Per-table state learned from the header (e.g. the time unit).
    type Mode: Send + 'static;
    /// `Some((columns, mode))` if `line` is a table header.
    fn header(&self, line: &[u8]) -> Option<(Vec<&'static str>, Self::Mode)>;
    /// Parses one row; returns the tool time if the row carries one.
    fn row<'a>(&self, line: &'a [u8], mode: &Self::Mode)
    -> Res<'a, (Vec<Value>, Option<ToolTime>)>;
    /// Columns and mode of a table started by a row without a header line
    /// (generic tables without a `header`).
    fn implicit(&self) -> Option<(Vec<&'static str>, Self::Mode)> {
        None
    }
    /// Whether each row is a table of its own (biopattern prints one line per
    /// disk per interval with no block boundary).
    fn row_per_snapshot(&self) -> bool {
        false
    }
}

/// No tables: histogram-only tools.
pub(crate) struct NoTable;

impl TableSyntax for NoTable {
    type Mode = ();
    fn header(&self, _line: &[u8]) -> Option<(Vec<&'static str>, ())> {
        None
    }
    fn row<'a>(&self, _line: &'a [u8], _mode: &()) -> Res<'a, (Vec<Value>, Option<ToolTime>)> {
        text::fail("no table expected")
    }
}

/// The summary [`ToolParser`].
pub(crate) struct SummaryTool<T: TableSyntax> {
    tool: Arc<str>,
    syntax: T,
    time: Option<ToolTime>,
    label: Option<Label>,
    hist: Option<HistogramSnapshot>,
    table: Option<(TableSnapshot, T::Mode)>,
}

impl<T: TableSyntax> SummaryTool<T> {
    /// A summary parser for `tool` with tables described by `syntax`.
    pub(crate) fn new(tool: &str, syntax: T) -> Self {
        SummaryTool {
            tool: tool.into(),
            syntax,
            time: None,
            label: None,
            hist: None,
            table: None,
        }
    }

    fn flush(&mut self, out: &mut Vec<Record>) {
        if let Some(h) = self.hist.take() {
            out.push(Record::Histogram(h));
        }
        if let Some((t, _)) = self.table.take()
            && !t.rows.is_empty()
        {
            out.push(Record::Table(t));
        }
    }

    fn err(&self, what: &'static str, line: &[u8]) -> ParseError {
        ParseError::new(&self.tool, what, line)
    }

    fn start_hist(&mut self, unit: Unit) {
        self.hist = Some(HistogramSnapshot {
            ts_ns: 0,
            tool_time: self.time,
            tool: self.tool.clone(),
            unit,
            label: self.label.take(),
            buckets: Vec::with_capacity(16),
        });
    }

    fn start_table(&mut self, columns: Vec<&'static str>, mode: T::Mode) {
        let t = TableSnapshot {
            ts_ns: 0,
            tool_time: self.time,
            tool: self.tool.clone(),
            columns,
            rows: Vec::new(),
        };
        self.table = Some((t, mode));
    }

    fn table_row(&mut self, line: &[u8], out: &mut Vec<Record>) -> Result<(), ParseError> {
        if self.table.is_none()
            && let Some((columns, mode)) = self.syntax.implicit()
        {
            self.start_table(columns, mode);
        }
        let Some((table, mode)) = self.table.as_mut() else {
            return Err(self.err("unrecognised line", line));
        };
        match self.syntax.row(line, mode) {
            Ok((_, (row, time))) => {
                table.rows.push(row);
                if time.is_some() {
                    table.tool_time = time;
                }
                if self.syntax.row_per_snapshot() {
                    let t = TableSnapshot {
                        rows: std::mem::take(&mut table.rows),
                        columns: table.columns.clone(),
                        ..table.clone()
                    };
                    out.push(Record::Table(t));
                }
                Ok(())
            }
            Err(e) => Err(ParseError::new(&self.tool, fail_message(e), line)),
        }
    }
}

impl<T: TableSyntax> ToolParser for SummaryTool<T> {
    fn feed(&mut self, line: &[u8], out: &mut Vec<Record>) -> Result<(), ParseError> {
        let line = chomp(line);
        if is_noise(line) {
            if trim(line).is_empty() {
                self.flush(out);
            }
            return Ok(());
        }
        if let Some(t) = timestamp_line(line) {
            self.flush(out);
            self.time = Some(t);
            return Ok(());
        }
        if let Ok((_, b)) = bucket(line) {
            return match self.hist.as_mut() {
                Some(h) => {
                    h.buckets.push(b);
                    Ok(())
                }
                None => Err(self.err("histogram bucket outside a histogram", line)),
            };
        }
        if let Some(unit) = hist_header(line) {
            self.flush(out);
            self.start_hist(unit);
            return Ok(());
        }
        if let Some(label) = label_line(line) {
            self.flush(out);
            self.label = Some(label);
            return Ok(());
        }
        if let Some((columns, mode)) = self.syntax.header(line) {
            self.flush(out);
            self.start_table(columns, mode);
            return Ok(());
        }
        self.table_row(line, out)
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        self.flush(out);
        self.label = None;
    }

    fn tool(&self) -> &str {
        &self.tool
    }
}

/// `     usecs               : count    distribution` → the unit.
fn hist_header(line: &[u8]) -> Option<Unit> {
    let colon = memchr::memchr(b':', line)?;
    let (unit, rest) = (trim(&line[..colon]), trim(&line[colon + 1..]));
    if !rest.starts_with(b"count") || !text::has_token(rest, b"distribution") {
        return None;
    }
    if unit.is_empty() || unit.contains(&b' ') {
        return None;
    }
    Some(Unit::from_word(&String::from_utf8_lossy(unit)))
}

/// `        16 -> 31         : 2        |***   |`.
pub(crate) fn bucket(line: &[u8]) -> Res<'_, Bucket> {
    let (i, low) = text::uint(ws0(line))?;
    let (i, _) = expect("expected ->", nom::bytes::complete::tag(&b"->"[..])).parse(ws0(i))?;
    let (i, high) = expect("expected a bucket bound", text::uint).parse(ws0(i))?;
    let (i, _) = expect("expected :", nom::bytes::complete::tag(&b":"[..])).parse(ws0(i))?;
    let (i, count) = expect("expected a count", text::uint).parse(ws0(i))?;
    Ok((i, Bucket { low, high, count }))
}

/// `disk = vda`, `pid = 42 bash`, `Process Name = dd`, `hardirq = x`, ...
fn label_line(line: &[u8]) -> Option<Label> {
    let eq = memchr::memmem::find(line, b" = ")?;
    let key = trim(&line[..eq]);
    let value = trim(&line[eq + 3..]);
    if key.is_empty() || key.len() > 32 || value.is_empty() {
        return None;
    }
    let key = label_key(key)?;
    let (value, comm) = match key {
        "pid" | "tid" | "pidns" => split_comm(value),
        _ => (value, None),
    };
    Some(Label {
        key,
        value: crate::records::lossy_box(value),
        comm,
    })
}

/// The stable label key for a printed one.
fn label_key(key: &[u8]) -> Option<&'static str> {
    Some(match key {
        b"disk" => "disk",
        b"flags" => "flags",
        b"pid" => "pid",
        b"tid" => "tid",
        b"pidns" => "pidns",
        b"Process Name" | b"comm" => "comm",
        b"hardirq" | b"irq" => "irq",
        b"softirq" => "softirq",
        b"cgroup" => "cgroup",
        other => {
            let s = std::str::from_utf8(other).ok()?.to_ascii_lowercase();
            if !fields::is_valid_name(&s) {
                return None;
            }
            fields::intern(&s)
        }
    })
}

/// `42 bash` → (`42`, Some(bash)).
fn split_comm(value: &[u8]) -> (&[u8], Option<Comm>) {
    match memchr::memchr(b' ', value) {
        Some(sp) => {
            let comm = trim(&value[sp + 1..]);
            let comm = (!comm.is_empty()).then(|| Comm::from_utf8_lossy(comm));
            (&value[..sp], comm)
        }
        None => (value, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognisers() {
        assert_eq!(
            hist_header(b"     usecs               : count    distribution"),
            Some(Unit::Usecs)
        );
        assert_eq!(
            bucket(b"      1024 -> 2047       : 11       |****   |")
                .unwrap()
                .1,
            Bucket {
                low: 1024,
                high: 2047,
                count: 11
            }
        );
        let l = label_line(b"pid = 9732 python3").unwrap();
        assert_eq!((l.key, &*l.value), ("pid", "9732"));
        assert_eq!(l.comm.unwrap().as_str(), "python3");
        assert_eq!(label_line(b"disk = vda\t").unwrap().key, "disk");
        assert_eq!(
            &*label_line(b"Process Name = kworker/1:1H").unwrap().value,
            "kworker/1:1H"
        );
    }
}
