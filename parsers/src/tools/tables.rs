//! Table syntaxes of the interval tools: hardirqs, softirqs, syscount and
//! biopattern. Their histograms (`-d`, etc.) are handled by
//! [`SummaryTool`](crate::summary::SummaryTool) itself.

use nom::Parser;

use crate::fields as f;
use crate::records::{ToolTime, Value};
use crate::summary::TableSyntax;
use crate::text::{
    self, Res, clock, comm, expect, first_token_is, has_token, id, padded, trim, ws0,
};

/// Nanoseconds per unit named in a header (`usecs`, `(us)`, ...).
fn unit_ns(word: &[u8]) -> Option<f64> {
    Some(match word {
        b"nsecs" | b"ns" => 1.0,
        b"usecs" | b"us" => 1e3,
        b"msecs" | b"ms" => 1e6,
        b"secs" | b"s" => 1e9,
        _ => return None,
    })
}

/// Splits `NAME ... VALUE` at the last blank.
fn last_column(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let t = trim(line);
    let sp = t.iter().rposition(|b| *b == b' ' || *b == b'\t')?;
    Some((trim(&t[..sp]), &t[sp + 1..]))
}

/// hardirqs and softirqs tables (no `-d`).
///
/// hardirqs canonical flags: **`-T INTERVAL`**; also `-N` (ns), `-C`
/// (counts), `-d` (histograms labelled `irq`), no interval (one summary at
/// exit). softirqs canonical flags: **`-T INTERVAL`**; also `-N`, `-d`
/// (histograms labelled `softirq`).
///
/// Output: `HARDIRQ                    TOTAL_usecs` (or `TOTAL_count`,
/// `TOTAL_nsecs`; `SOFTIRQ` for softirqs), then `%-26s %11llu` rows.
///
/// Table columns: `irq` (or `softirq`) str, then `total_time` duration or
/// `count` int.
pub(crate) struct IrqTable {
    /// `HARDIRQ` or `SOFTIRQ`.
    pub(crate) header: &'static [u8],
    /// `irq` or `softirq`.
    pub(crate) key: &'static str,
}

/// ns per unit, or `None` for counts.
pub(crate) type IrqMode = Option<f64>;

impl TableSyntax for IrqTable {
    type Mode = IrqMode;

    fn header(&self, line: &[u8]) -> Option<(Vec<&'static str>, IrqMode)> {
        if !first_token_is(line, self.header) {
            return None;
        }
        let (_, total) = last_column(line)?;
        let unit = total.strip_prefix(b"TOTAL_")?;
        if unit == b"count" {
            return Some((vec![self.key, "count"], None));
        }
        Some((vec![self.key, "total_time"], Some(unit_ns(unit)?)))
    }

    fn row<'a>(&self, line: &'a [u8], mode: &IrqMode) -> Res<'a, (Vec<Value>, Option<ToolTime>)> {
        let Some((name, v)) = last_column(line) else {
            return text::fail("expected NAME VALUE");
        };
        let (rest, n) = expect("expected a total", text::uint).parse(v)?;
        if !rest.is_empty() || name.is_empty() {
            return text::fail("expected NAME VALUE");
        }
        let value = match mode {
            Some(unit) => Value::Duration(text::to_ns(n as f64, *unit)),
            None => Value::Int(n as i64),
        };
        Ok((
            &line[line.len()..],
            (vec![Value::str_lossy(name), value], None),
        ))
    }
}

/// syscount.
///
/// Canonical flags: **`-L -i INTERVAL`** (latency, per-interval tables);
/// also `-P` (per process), `-m` (ms), `-x`, `-e`, `-p`, `-T TOP`.
///
/// Output: `[HH:MM:SS]`, header `SYSCALL COUNT [TIME (us)]` or
/// `PID    COMM COUNT [TIME (ms)]`, rows `%-22s %8llu[ %16.3lf]` where with
/// `-P` the key is `%-6u %-15s`.
///
/// Table columns: `syscall` str (or `proc.pid` int and `proc.comm` str),
/// `count` int, `total_time` duration (with `-L`).
pub(crate) struct SyscountTable;

/// syscount's header-derived mode.
pub(crate) struct SyscountMode {
    per_process: bool,
    /// ns per printed time unit, when a TIME column is present.
    time_unit: Option<f64>,
}

impl TableSyntax for SyscountTable {
    type Mode = SyscountMode;

    fn header(&self, line: &[u8]) -> Option<(Vec<&'static str>, SyscountMode)> {
        let per_process = first_token_is(line, b"PID") && has_token(line, b"COMM");
        if !(first_token_is(line, b"SYSCALL") || per_process) || !has_token(line, b"COUNT") {
            return None;
        }
        let time_unit = if has_token(line, b"TIME") {
            let (_, u) = last_column(line)?;
            Some(unit_ns(u.strip_prefix(b"(")?.strip_suffix(b")")?)?)
        } else {
            None
        };
        let mut cols = if per_process {
            vec![f::PROC_PID, f::PROC_COMM]
        } else {
            vec!["syscall"]
        };
        cols.push("count");
        if time_unit.is_some() {
            cols.push("total_time");
        }
        Some((
            cols,
            SyscountMode {
                per_process,
                time_unit,
            },
        ))
    }

    fn row<'a>(&self, line: &'a [u8], m: &SyscountMode) -> Res<'a, (Vec<Value>, Option<ToolTime>)> {
        let mut row = Vec::with_capacity(4);
        let i = if m.per_process {
            let (i, pid) = padded(6, true, id("expected a pid"))(line)?;
            let (i, c) = comm(15)(i)?;
            row.push(Value::Int(i64::from(pid)));
            row.push(Value::Str(c.as_str().into()));
            i
        } else {
            let (i, name) = text::token(ws0(line))?;
            row.push(Value::str_lossy(name));
            i
        };
        let (i, count) = expect("expected a count", text::uint).parse(ws0(i))?;
        row.push(Value::Int(count as i64));
        let i = match m.time_unit {
            Some(unit) => {
                let (i, t) = expect("expected a time", text::duration(unit)).parse(ws0(i))?;
                row.push(Value::Duration(t));
                i
            }
            None => i,
        };
        if !trim(i).is_empty() {
            return text::fail("unexpected text at the end of the row");
        }
        Ok((i, (row, None)))
    }
}

/// biopattern.
///
/// Canonical flags: **`-T INTERVAL`**; also no flags, `-d DISK`.
///
/// Output: `[%-9s ]%-7s %5ld %5ld %8d %10lld` (time, disk, %random,
/// %sequential, count, KiB). Each row is emitted as its own one-row table.
///
/// Table columns: `disk` str, `random_pct` int, `sequential_pct` int,
/// `count` int, `kbytes` int.
pub(crate) struct BiopatternTable;

impl TableSyntax for BiopatternTable {
    /// Whether rows start with a time.
    type Mode = bool;

    fn header(&self, line: &[u8]) -> Option<(Vec<&'static str>, bool)> {
        if !has_token(line, b"DISK") || !has_token(line, b"%RND") {
            return None;
        }
        let cols = vec!["disk", "random_pct", "sequential_pct", "count", "kbytes"];
        Some((cols, has_token(line, b"TIME")))
    }

    fn row<'a>(&self, line: &'a [u8], time: &bool) -> Res<'a, (Vec<Value>, Option<ToolTime>)> {
        let (i, t) = if *time {
            let (i, t) = clock(line)?;
            (i, Some(t))
        } else {
            (line, None)
        };
        let (mut i, disk) = text::token(ws0(i))?;
        let mut row = Vec::with_capacity(5);
        row.push(Value::str_lossy(disk));
        for what in [
            "expected %RND",
            "expected %SEQ",
            "expected COUNT",
            "expected KBYTES",
        ] {
            let (r, v) = expect(what, text::int).parse(ws0(i))?;
            row.push(Value::Int(v));
            i = r;
        }
        if !trim(i).is_empty() {
            return text::fail("unexpected text at the end of the row");
        }
        Ok((i, (row, t)))
    }

    fn row_per_snapshot(&self) -> bool {
        true
    }
}
