//! The one value type of the model: [`Value`] (owned, in parsed events and
//! tables) and [`ValueRef`] (borrowed, what every reader of an event sees:
//! rules, aggregation, sinks).

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;
use serde::ser::Serializer;

/// A typed field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(Box<str>),
    /// Integer.
    Int(i64),
    /// Floating point.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A duration in nanoseconds.
    Duration(u64),
}

impl Value {
    /// Text value from bytes (lossy UTF-8).
    pub fn str_lossy(b: &[u8]) -> Value {
        Value::Str(crate::escape::escape_lossy(b).into())
    }

    /// A borrowed view.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Str(s) => ValueRef::Str(s),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Float(f) => ValueRef::Float(*f),
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Ip(ip) => ValueRef::Ip(*ip),
            Value::Duration(d) => ValueRef::Duration(*d),
        }
    }

    /// The integer, if this is an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text, if this is a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl Serialize for Value {
    /// Strings as strings, IPs as their text form, durations as integer
    /// nanoseconds, numbers as numbers.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_ref().serialize(s)
    }
}

/// A borrowed [`Value`], as returned by [`Event::get`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
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
    /// Duration in nanoseconds.
    Duration(u64),
}

impl ValueRef<'_> {
    /// The value as a number: durations in seconds, booleans as 0/1, text
    /// parsed when it is a number; `None` for an IP address.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ValueRef::Int(i) => Some(i as f64),
            ValueRef::Float(f) => Some(f),
            ValueRef::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            ValueRef::Duration(ns) => Some(ns as f64 / 1e9),
            ValueRef::Str(s) => s.trim().parse().ok(),
            ValueRef::Ip(_) => None,
        }
    }

    /// Displays the value for people: as [`fmt::Display`], but a duration
    /// as `1.5ms` instead of integer nanoseconds (alert texts).
    pub fn human(self) -> impl fmt::Display {
        Human(self)
    }
}

/// The machine form: text as is, numbers as printed by Rust, IPs in their
/// text form, durations as integer nanoseconds (as in the JSON output).
impl fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueRef::Str(s) => f.write_str(s),
            ValueRef::Int(i) => write!(f, "{i}"),
            ValueRef::Float(x) => write!(f, "{x}"),
            ValueRef::Bool(b) => write!(f, "{b}"),
            ValueRef::Ip(ip) => write!(f, "{ip}"),
            ValueRef::Duration(ns) => write!(f, "{ns}"),
        }
    }
}

/// [`ValueRef::human`].
struct Human<'a>(ValueRef<'a>);

impl fmt::Display for Human<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ValueRef::Duration(ns) => write!(f, "{:?}", std::time::Duration::from_nanos(ns)),
            other => other.fmt(f),
        }
    }
}

impl Serialize for ValueRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ValueRef::Str(v) => s.serialize_str(v),
            ValueRef::Int(v) => s.serialize_i64(*v),
            ValueRef::Float(v) => s.serialize_f64(*v),
            ValueRef::Bool(v) => s.serialize_bool(*v),
            ValueRef::Ip(v) => s.collect_str(v),
            ValueRef::Duration(v) => s.serialize_u64(*v),
        }
    }
}
