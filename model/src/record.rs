//! What the parsers emit: [`Record`] over [`Event`], [`HistogramSnapshot`],
//! [`TableSnapshot`] and [`FoldedStack`], with the typed [`Value`]s of event
//! fields.
//!
//! Every type serializes (serde) to the JSON-lines shape used downstream:
//! an event is one flat object keyed by the names of [`crate::fields`].

use std::fmt;
use std::sync::Arc;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::fields;
use crate::smallstr::SmallStr;
use crate::value::{Value, ValueRef};

/// A process name as the kernel reports it (≤ 15 bytes), stored inline.
pub type Comm = SmallStr;

/// What happened, for an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A process called exec (execsnoop).
    Exec,
    /// A process or thread exited (exitsnoop).
    Exit,
    /// A file was opened (opensnoop).
    Open,
    /// A file was stat'ed (statsnoop).
    Stat,
    /// A signal was generated (sigsnoop).
    Signal,
    /// A kill-family syscall sent a signal (killsnoop).
    Kill,
    /// mount(2) or umount(2) (mountsnoop).
    Mount,
    /// A TCP socket changed state (tcpstates).
    TcpState,
    /// A TCP session ended (tcplife).
    TcpSession,
    /// A getaddrinfo/gethostbyname call (gethostlatency).
    DnsLookup,
    /// A block I/O (generic tools).
    BlockIo,
    /// A task waited long in the run queue (runqslower).
    RunqLatency,
    /// A direct memory reclaim (drsnoop).
    DirectReclaim,
    /// Anything else (generic tools).
    Generic,
    /// An HTTP request this host served (hot-path HTTP capture).
    HttpServer,
    /// An HTTP request this host made.
    HttpClient,
    /// A line a container wrote to stdout or stderr (container logs).
    Log,
}

impl EventKind {
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Exec => "exec",
            EventKind::Exit => "exit",
            EventKind::Open => "open",
            EventKind::Stat => "stat",
            EventKind::Signal => "signal",
            EventKind::Kill => "kill",
            EventKind::Mount => "mount",
            EventKind::TcpState => "tcp_state",
            EventKind::TcpSession => "tcp_session",
            EventKind::DnsLookup => "dns_lookup",
            EventKind::BlockIo => "block_io",
            EventKind::RunqLatency => "runq_latency",
            EventKind::DirectReclaim => "direct_reclaim",
            EventKind::Generic => "generic",
            EventKind::HttpServer => "http_server",
            EventKind::HttpClient => "http_client",
            EventKind::Log => "log",
        }
    }
}

/// The time a tool printed on a line, kept as printed; the caller stamps the
/// wall-clock receive time in `ts_ns`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ToolTime {
    /// Local wall-clock time of day, `HH:MM:SS`.
    Clock {
        /// Hour, 0–23.
        h: u8,
        /// Minute.
        m: u8,
        /// Second.
        s: u8,
    },
    /// Seconds since the tool started (`-t` style).
    Relative(f64),
}

impl fmt::Display for ToolTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolTime::Clock { h, m, s } => write!(f, "{h:02}:{m:02}:{s:02}"),
            ToolTime::Relative(secs) => write!(f, "{secs}"),
        }
    }
}

impl Serialize for ToolTime {
    /// `Clock` as the string `"HH:MM:SS"`, `Relative` as a number of seconds.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ToolTime::Clock { .. } => s.collect_str(self),
            ToolTime::Relative(secs) => s.serialize_f64(*secs),
        }
    }
}

/// The typed fields of an event: a small vector of (stable name, value).
pub type Fields = Vec<(&'static str, Value)>;

/// One thing that happened, as one line of an event tool reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Wall-clock receive time in ns since the Unix epoch; 0 from the parser,
    /// set by the caller ([`Record::set_ts_ns`]).
    pub ts_ns: u64,
    /// The time the tool printed, if any.
    pub tool_time: Option<ToolTime>,
    /// The tool that printed the line.
    pub tool: Arc<str>,
    /// What happened.
    pub kind: EventKind,
    /// `proc.pid`.
    pub pid: Option<u32>,
    /// `proc.tid`.
    pub tid: Option<u32>,
    /// `proc.ppid`.
    pub ppid: Option<u32>,
    /// `proc.uid`.
    pub uid: Option<u32>,
    /// `proc.comm`.
    pub comm: Option<Comm>,
    /// The other fields, by names from [`crate::fields`].
    pub fields: Fields,
}

impl Event {
    /// An empty event of `kind` from `tool`.
    pub fn new(tool: Arc<str>, kind: EventKind) -> Event {
        Event {
            ts_ns: 0,
            tool_time: None,
            tool,
            kind,
            pid: None,
            tid: None,
            ppid: None,
            uid: None,
            comm: None,
            fields: Vec::new(),
        }
    }

    /// Sets field `name`, replacing its value if the event has it.
    pub fn set(&mut self, name: &'static str, value: Value) {
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.fields.push((name, value)),
        }
    }

    /// The typed field `name` (not the process members).
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Any field by its stable name, including `proc.pid`, `proc.tid`,
    /// `proc.ppid`, `proc.uid` and `proc.comm`.
    pub fn get(&self, name: &str) -> Option<ValueRef<'_>> {
        let num = |v: Option<u32>| v.map(|x| ValueRef::Int(i64::from(x)));
        match name {
            fields::PROC_PID => num(self.pid),
            fields::PROC_TID => num(self.tid),
            fields::PROC_PPID => num(self.ppid),
            fields::PROC_UID => num(self.uid),
            fields::PROC_COMM => self.comm.as_ref().map(|c| ValueRef::Str(c.as_str())),
            _ => self.field(name).map(Value::as_ref),
        }
    }

    /// Appends a field.
    #[inline]
    pub fn push(&mut self, name: &'static str, value: Value) {
        self.fields.push((name, value));
    }
}

impl Serialize for Event {
    /// One flat object: `ts_ns`, `tool`, `kind`, `tool_time` (if any), the
    /// process members under their `proc.*` names, then every field.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("ts_ns", &self.ts_ns)?;
        m.serialize_entry("tool", &*self.tool)?;
        m.serialize_entry("kind", &self.kind)?;
        if let Some(t) = &self.tool_time {
            m.serialize_entry("tool_time", t)?;
        }
        let procs = [
            (fields::PROC_PID, self.pid),
            (fields::PROC_TID, self.tid),
            (fields::PROC_PPID, self.ppid),
            (fields::PROC_UID, self.uid),
        ];
        for (name, v) in procs {
            if let Some(v) = v {
                m.serialize_entry(name, &v)?;
            }
        }
        if let Some(c) = &self.comm {
            m.serialize_entry(fields::PROC_COMM, c)?;
        }
        for (name, v) in &self.fields {
            m.serialize_entry(name, v)?;
        }
        m.end()
    }
}

/// The unit of histogram bucket bounds, as the tool's header names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// `nsecs`.
    Nsecs,
    /// `usecs`.
    Usecs,
    /// `msecs`.
    Msecs,
    /// `secs`.
    Secs,
    /// `bytes`.
    Bytes,
    /// `Kbytes` (KiB).
    Kbytes,
    /// Any other header word, verbatim.
    #[serde(untagged)]
    Other(Box<str>),
}

impl Unit {
    /// Parses a histogram header's unit word (`usecs`, `Kbytes`, ...).
    pub fn from_word(w: &str) -> Unit {
        match w {
            "nsecs" => Unit::Nsecs,
            "usecs" => Unit::Usecs,
            "msecs" => Unit::Msecs,
            "secs" => Unit::Secs,
            "bytes" => Unit::Bytes,
            "Kbytes" | "kbytes" => Unit::Kbytes,
            other => Unit::Other(other.into()),
        }
    }
}

/// One bucket of a log2 histogram: `low -> high : count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Inclusive lower bound.
    pub low: u64,
    /// Inclusive upper bound.
    pub high: u64,
    /// Number of samples.
    pub count: u64,
}

/// What a per-key histogram is keyed by (`disk = vda`, `pid = 42 bash`, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Label {
    /// The key: `disk`, `flags`, `pid`, `tid`, `pidns`, `comm`, `irq`, `softirq`.
    pub key: &'static str,
    /// The value as printed (`vda`, `42`, `Sync-Write`, `timer`).
    pub value: Box<str>,
    /// The process name printed after a pid/tid/pidns key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<Comm>,
}

/// One log2 histogram as a histogram tool printed it for one interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramSnapshot {
    /// Receive time (ns since epoch), set by the caller.
    pub ts_ns: u64,
    /// The time-stamp line printed before the block, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_time: Option<ToolTime>,
    /// The tool.
    pub tool: Arc<str>,
    /// Unit of the bucket bounds.
    pub unit: Unit,
    /// The per-key label, for per-disk/pid/flag/irq histograms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    /// Buckets in ascending order, as printed (leading zero buckets included).
    pub buckets: Vec<Bucket>,
}

impl HistogramSnapshot {
    /// Sum of all bucket counts.
    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }
}

/// One periodic top-style table (syscount, hardirqs, softirqs, biopattern).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableSnapshot {
    /// Receive time (ns since epoch), set by the caller.
    pub ts_ns: u64,
    /// The time printed for this interval, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_time: Option<ToolTime>,
    /// The tool.
    pub tool: Arc<str>,
    /// Column names (stable, documented per tool); label columns first.
    pub columns: Vec<&'static str>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
}

impl TableSnapshot {
    /// The value at `row`, column `name`.
    pub fn cell(&self, row: usize, name: &str) -> Option<&Value> {
        let col = self.columns.iter().position(|c| *c == name)?;
        self.rows.get(row)?.get(col)
    }
}

/// One stack with its total (a flame-graph "folded" line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldedStack {
    /// Receive time (ns since epoch), set by the caller.
    pub ts_ns: u64,
    /// The tool.
    pub tool: Arc<str>,
    /// The process the stack belongs to, when printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Its name, when printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<Comm>,
    /// Frames joined by `;`, root first (flame-graph order).
    pub stack: Box<str>,
    /// The value: microseconds for offcputime/wakeuptime, samples otherwise.
    pub count: u64,
}

impl FoldedStack {
    /// The frames, root first.
    pub fn frames(&self) -> impl Iterator<Item = &str> {
        self.stack.split(';')
    }

    /// The folded text line `frame;frame;frame count` (no newline).
    pub fn to_folded_line(&self) -> String {
        format!("{} {}", self.stack, self.count)
    }
}

/// Everything a parser emits.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// One event.
    Event(Event),
    /// One histogram block.
    Histogram(HistogramSnapshot),
    /// One table block.
    Table(TableSnapshot),
    /// One folded stack.
    Stack(FoldedStack),
}

impl Record {
    /// Stamps the wall-clock receive time (ns since the Unix epoch).
    pub fn set_ts_ns(&mut self, ts_ns: u64) {
        match self {
            Record::Event(e) => e.ts_ns = ts_ns,
            Record::Histogram(h) => h.ts_ns = ts_ns,
            Record::Table(t) => t.ts_ns = ts_ns,
            Record::Stack(s) => s.ts_ns = ts_ns,
        }
    }

    /// The event, if this is one.
    pub fn as_event(&self) -> Option<&Event> {
        match self {
            Record::Event(e) => Some(e),
            _ => None,
        }
    }

    /// The histogram, if this is one.
    pub fn as_histogram(&self) -> Option<&HistogramSnapshot> {
        match self {
            Record::Histogram(h) => Some(h),
            _ => None,
        }
    }

    /// The table, if this is one.
    pub fn as_table(&self) -> Option<&TableSnapshot> {
        match self {
            Record::Table(t) => Some(t),
            _ => None,
        }
    }

    /// The stack, if this is one.
    pub fn as_stack(&self) -> Option<&FoldedStack> {
        match self {
            Record::Stack(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_serializes_flat() {
        let mut e = Event::new("execsnoop".into(), EventKind::Exec);
        e.pid = Some(7);
        e.comm = Some("sh".into());
        e.tool_time = Some(ToolTime::Clock { h: 1, m: 2, s: 3 });
        e.push(fields::NET_SADDR, Value::Ip("127.0.0.1".parse().unwrap()));
        e.push(fields::LATENCY, Value::Duration(1500));
        let j = serde_json::to_string(&Record::Event(e)).unwrap();
        assert_eq!(
            j,
            r#"{"record":"event","ts_ns":0,"tool":"execsnoop","kind":"exec","tool_time":"01:02:03","proc.pid":7,"proc.comm":"sh","net.saddr":"127.0.0.1","latency":1500}"#
        );
    }

    #[test]
    fn get_resolves_proc_members() {
        let mut e = Event::new("t".into(), EventKind::Generic);
        e.uid = Some(1000);
        e.push(fields::RET, Value::Int(-2));
        assert_eq!(e.get("proc.uid"), Some(ValueRef::Int(1000)));
        assert_eq!(e.get("ret"), Some(ValueRef::Int(-2)));
        assert_eq!(e.get("proc.pid"), None);
    }

    #[test]
    fn unit_serializes_as_word() {
        assert_eq!(serde_json::to_string(&Unit::Usecs).unwrap(), "\"usecs\"");
        assert_eq!(
            serde_json::to_string(&Unit::from_word("slots")).unwrap(),
            "\"slots\""
        );
    }
}
