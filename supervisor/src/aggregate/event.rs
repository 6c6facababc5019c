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
