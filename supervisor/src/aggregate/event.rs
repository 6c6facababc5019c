//! The view of an event that aggregation and the log sinks need: its tool,
//! kind, time and typed fields by their stable names (`proc.comm`,
//! `net.dport`, `container.id`, ...). Implemented for the parsers' events and
//! for synthetic events in tests and benchmarks.

use std::{fmt, net::IpAddr};

/// A borrowed field value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// Text.
    Str(&'a str),
    /// Integer.
    Int(i64),
    /// Floating point.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// IP address.
    Ip(IpAddr),
    /// A duration in nanoseconds.
    Duration(u64),
}

impl FieldValue<'_> {
    /// The value as a number: durations in seconds, booleans as 0/1, text
    /// parsed when it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            FieldValue::Int(i) => Some(i as f64),
            FieldValue::Float(f) => Some(f),
            FieldValue::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            FieldValue::Duration(ns) => Some(ns as f64 / 1e9),
            FieldValue::Str(s) => s.trim().parse().ok(),
            FieldValue::Ip(_) => None,
        }
    }
}

impl fmt::Display for FieldValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Str(s) => f.write_str(s),
            FieldValue::Int(i) => write!(f, "{i}"),
            FieldValue::Float(x) => write!(f, "{x}"),
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::Ip(ip) => write!(f, "{ip}"),
            FieldValue::Duration(ns) => write!(f, "{ns}"),
        }
    }
}

/// What aggregation and the log sinks read from an event.
pub trait EventView {
    /// The tool that reported it (manifest name).
    fn tool(&self) -> &str;
    /// What happened (`exec`, `tcp_session`, ...).
    fn kind(&self) -> &str;
    /// Receive time, ns since the Unix epoch (0 when unknown).
    fn ts_ns(&self) -> u64;
    /// The field `name`, including enrichment labels such as `container.id`.
    fn get(&self, name: &str) -> Option<FieldValue<'_>>;
    /// Calls `f` for every field (for logs).
    fn for_each_field(&self, f: &mut dyn FnMut(&str, FieldValue<'_>));
}

/// A self-contained event, for tests, benchmarks and synthetic sources.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedEvent {
    /// Tool name.
    pub tool: String,
    /// Event kind.
    pub kind: String,
    /// Receive time in ns since the epoch.
    pub ts_ns: u64,
    /// Fields by name.
    pub fields: Vec<(String, OwnedValue)>,
}

/// An owned [`FieldValue`].
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    /// Text.
    Str(String),
    /// Integer.
    Int(i64),
    /// Floating point.
    Float(f64),
    /// Duration in nanoseconds.
    Duration(u64),
}

impl OwnedValue {
    fn as_ref(&self) -> FieldValue<'_> {
        match self {
            OwnedValue::Str(s) => FieldValue::Str(s),
            OwnedValue::Int(i) => FieldValue::Int(*i),
            OwnedValue::Float(f) => FieldValue::Float(*f),
            OwnedValue::Duration(d) => FieldValue::Duration(*d),
        }
    }
}

impl EventView for OwnedEvent {
    fn tool(&self) -> &str {
        &self.tool
    }
    fn kind(&self) -> &str {
        &self.kind
    }
    fn ts_ns(&self) -> u64 {
        self.ts_ns
    }
    fn get(&self, name: &str) -> Option<FieldValue<'_>> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }
    fn for_each_field(&self, f: &mut dyn FnMut(&str, FieldValue<'_>)) {
        for (n, v) in &self.fields {
            f(n, v.as_ref());
        }
    }
}

impl<'a> From<parsers::ValueRef<'a>> for FieldValue<'a> {
    fn from(v: parsers::ValueRef<'a>) -> Self {
        use parsers::ValueRef as V;
        match v {
            V::Str(s) => FieldValue::Str(s),
            V::Int(i) => FieldValue::Int(i),
            V::Float(f) => FieldValue::Float(f),
            V::Bool(b) => FieldValue::Bool(b),
            V::Ip(ip) => FieldValue::Ip(ip),
            V::Duration(ns) => FieldValue::Duration(ns),
        }
    }
}

/// A tool's record seen as an event: the parsed event's fields, then the
/// enrichment labels (`container.id`, `k8s.pod.name`, ...). Records that are
/// not events (histograms, tables, stacks) have no fields.
impl EventView for crate::pipeline::ToolRecord {
    fn tool(&self) -> &str {
        &self.tool
    }
    fn kind(&self) -> &str {
        self.record.as_event().map_or("", |e| e.kind.as_str())
    }
    fn ts_ns(&self) -> u64 {
        self.record.as_event().map_or(0, |e| e.ts_ns)
    }
    fn get(&self, name: &str) -> Option<FieldValue<'_>> {
        if let Some(v) = self.record.as_event().and_then(|e| e.get(name)) {
            return Some(v.into());
        }
        self.workload
            .as_deref()
            .and_then(|w| w.label(name))
            .map(FieldValue::Str)
    }
    fn for_each_field(&self, f: &mut dyn FnMut(&str, FieldValue<'_>)) {
        let Some(event) = self.record.as_event() else {
            return;
        };
        use parsers::fields::{PROC_COMM, PROC_PID, PROC_PPID, PROC_TID, PROC_UID};
        for name in [PROC_PID, PROC_TID, PROC_PPID, PROC_UID, PROC_COMM] {
            if let Some(v) = event.get(name) {
                f(name, v.into());
            }
        }
        for (name, v) in &event.fields {
            f(name, v.as_ref().into());
        }
        if let Some(w) = self.workload.as_deref() {
            for (k, v) in w.labels() {
                f(k, FieldValue::Str(v));
            }
        }
    }
}

impl EventView for parsers::Event {
    fn tool(&self) -> &str {
        &self.tool
    }
    fn kind(&self) -> &str {
        self.kind.as_str()
    }
    fn ts_ns(&self) -> u64 {
        self.ts_ns
    }
    fn get(&self, name: &str) -> Option<FieldValue<'_>> {
        parsers::Event::get(self, name).map(Into::into)
    }
    fn for_each_field(&self, f: &mut dyn FnMut(&str, FieldValue<'_>)) {
        use parsers::fields::{PROC_COMM, PROC_PID, PROC_PPID, PROC_TID, PROC_UID};
        for name in [PROC_PID, PROC_TID, PROC_PPID, PROC_UID, PROC_COMM] {
            if let Some(v) = parsers::Event::get(self, name) {
                f(name, v.into());
            }
        }
        for (name, v) in &self.fields {
            f(name, v.as_ref().into());
        }
    }
}
