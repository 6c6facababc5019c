//! Test helpers shared by the unit tests of several modules.

use model::{EventView, ValueRef};

/// A self-contained event with fields under any name (labels included), for
/// the aggregation and sink tests.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OwnedEvent {
    /// Tool name.
    pub(crate) tool: String,
    /// Event kind.
    pub(crate) kind: String,
    /// Receive time in ns since the epoch.
    pub(crate) ts_ns: u64,
    /// Fields by name.
    pub(crate) fields: Vec<(String, OwnedValue)>,
}

/// An owned field value of an [`OwnedEvent`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OwnedValue {
    /// Text.
    Str(String),
    /// Integer.
    Int(i64),
    /// Duration in nanoseconds.
    Duration(u64),
}

impl OwnedValue {
    fn as_ref(&self) -> ValueRef<'_> {
        match self {
            OwnedValue::Str(s) => ValueRef::Str(s),
            OwnedValue::Int(i) => ValueRef::Int(*i),
            OwnedValue::Duration(d) => ValueRef::Duration(*d),
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
    fn get(&self, name: &str) -> Option<ValueRef<'_>> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }
    fn for_each_field(&self, f: &mut dyn FnMut(&str, ValueRef<'_>)) {
        for (n, v) in &self.fields {
            f(n, v.as_ref());
        }
    }
}
