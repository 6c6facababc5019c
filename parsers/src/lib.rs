//! The nom parsers that turn libbpf-tools' text output into the event model
//! (the `model` crate, re-exported here). A pure library: no I/O, no async,
//! no logging, and no panics on any input, so it can be fuzzed and
//! benchmarked alone.
//!
//! # Model
//!
//! A parser emits [`Record`]s (see the `model` crate):
//! - [`Event`]: one thing happened (exec, open, exit, TCP session, ...), with
//!   the process members (`pid`, `tid`, `ppid`, `uid`, `comm`) and typed
//!   [`Value`] fields under the stable names of [`fields`].
//! - [`HistogramSnapshot`]: one log2 histogram block (biolatency, runqlat, ...).
//! - [`TableSnapshot`]: one periodic top-style table (syscount, hardirqs, ...).
//! - [`FoldedStack`]: one stack with its total (offcputime, wakeuptime).
//!
//! Records carry the time the tool printed ([`ToolTime`]) and a `ts_ns`
//! the caller stamps with the wall-clock receive time ([`Record::set_ts_ns`]).
//!
//! # Use
//!
//! ```
//! let mut p = parsers::builtin("execsnoop").unwrap();
//! let mut out = Vec::new();
//! p.feed(b"TIME     UID    PCOMM            PID    PPID   RET ARGS", &mut out).unwrap();
//! p.feed(b"16:37:47 0     true             5907   5733     0 /bin/true x ", &mut out).unwrap();
//! p.finish(&mut out);
//! let ev = out[0].as_event().unwrap();
//! assert_eq!(ev.pid, Some(5907));
//! assert_eq!(ev.field("proc.args").and_then(|v| v.as_str()), Some("/bin/true x"));
//! ```
//!
//! The caller feeds each line as the tool prints it, without the newline,
//! counts and skips lines that return a [`ParseError`], and calls
//! [`ToolParser::finish`] at EOF to flush a pending block. Banners
//! (`Tracing ... Hit Ctrl-C to end.`), headers, blank lines, `Detaching...`
//! and the time-stamp lines between blocks are recognised and skipped.
//!
//! # Built-in parsers and their canonical flags
//!
//! [`builtin`] knows these tools (Debian libbpf-tools 0.26). The manifest
//! should pass the canonical flags; the no-flag variant and common subsets
//! are accepted too (the header line tells which columns are present).
//! INTERVAL, MIN_US and DURATION are the manifest's choice.
//!
//! | tool | canonical flags | records |
//! |---|---|---|
//! | biolatency | `-D -T INTERVAL` | histograms (`usecs`, label `disk`) |
//! | biopattern | `-T INTERVAL` | one-row tables `disk random_pct sequential_pct count kbytes` |
//! | bitesize | `-T INTERVAL` | histograms (`Kbytes`, label `comm`) |
//! | cpudist | `-T INTERVAL` | histograms (`usecs`; label `pid`/`tid` with `-P`/`-L`) |
//! | drsnoop | (none) | events `direct_reclaim` |
//! | execsnoop | `-T -U -x` | events `exec` |
//! | exitsnoop | `-t` | events `exit` |
//! | gethostlatency | (none) | events `dns_lookup` |
//! | hardirqs | `-T INTERVAL` | tables `irq total_time`; with `-d` histograms (label `irq`) |
//! | killsnoop | (none) | events `kill` |
//! | mountsnoop | `-t` | events `mount` |
//! | offcputime | `-m MIN_US DURATION` | folded stacks |
//! | opensnoop | `-T -U -e` | events `open` |
//! | runqlat | `-P -T INTERVAL` | histograms (`usecs`, label `pid` + comm) |
//! | runqslower | `-P MIN_US` | events `runq_latency` |
//! | sigsnoop | (none) | events `signal` |
//! | softirqs | `-T INTERVAL` | tables `softirq total_time`; with `-d` histograms (label `softirq`) |
//! | statsnoop | `-t` | events `stat` |
//! | syscount | `-L -i INTERVAL` | tables `syscall count total_time` (`proc.pid proc.comm ...` with `-P`) |
//! | tcplife | `-T -w` | events `tcp_session` |
//! | tcpstates | `-T -w` | events `tcp_state` |
//! | wakeuptime | `-m MIN_US DURATION` | folded stacks |
//!
//! Every tool fully buffers stdout when it is a pipe: run it under
//! `stdbuf -oL` (or a pty) to receive lines as they happen. The syscall
//! tracepoints these tools use need tracefs mounted at /sys/kernel/tracing.
//!
//! Other tools: describe the output with a [`GenericSpec`].

mod error;
mod generic;
mod line;
pub mod logs;
mod records;
mod stacks;
mod summary;
mod text;
mod tools;

pub use ::model::{
    Bucket, Comm, Event, EventKind, Fields, FoldedStack, HistogramSnapshot, Label, Record,
    SmallStr, TableSnapshot, ToolTime, Unit, Value, ValueRef, escape, fields,
};
pub use error::{MAX_ERROR_LINE, ParseError, SpecError};
pub use generic::{ColumnSpec, Format, GenericSpec};
pub use tools::{builtin, builtin_names};

/// A stateful parser of one tool's stdout.
///
/// Fed one line at a time (without the trailing newline; a trailing `\r` is
/// ignored). Never panics, whatever the bytes.
pub trait ToolParser: Send {
    /// Parses one line, appending any completed records to `out`. Lines that
    /// carry no data (banner, header, blank, time stamp) append nothing and
    /// return `Ok`. A line that cannot be parsed returns a [`ParseError`];
    /// the parser stays usable.
    fn feed(&mut self, line: &[u8], out: &mut Vec<Record>) -> Result<(), ParseError>;

    /// At EOF: appends the pending histogram/table block, if any, and resets.
    fn finish(&mut self, out: &mut Vec<Record>);

    /// The tool name records are tagged with.
    fn tool(&self) -> &str;
}

/// Feeds every line of `text` (split on `\n`) then calls
/// [`ToolParser::finish`]; returns the records and the errors. A helper for
/// tests, fuzzing and batch use.
pub fn parse_all(parser: &mut dyn ToolParser, text: &[u8]) -> (Vec<Record>, Vec<ParseError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    if !text.is_empty() {
        for line in body.split(|b| *b == b'\n') {
            if let Err(e) = parser.feed(line, &mut out) {
                errors.push(e);
            }
        }
    }
    parser.finish(&mut out);
    (out, errors)
}

/// Parses a folded-stack line `frame;frame;frame count` into the stack text
/// and the count; `None` if the line is not one.
pub fn parse_folded_line(line: &[u8]) -> Option<(&[u8], u64)> {
    stacks::parse_folded_line(line)
}
