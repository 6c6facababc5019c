//! Test helpers shared by the unit tests of several modules.

use model::{
    EventView, ValueRef,
    request::{HttpRequest, PathText},
    span::SpanKind,
};

/// An HTTP request (200, 250 µs from 1 ms after the epoch, pid 7 thread 8,
/// cgroup 1, 10.0.0.1:40000 → 10.0.0.2:80, `GET /`), for the HTTP source's
/// and the traces stage's tests.
pub(crate) fn http_request(kind: SpanKind) -> HttpRequest {
    HttpRequest {
        kind,
        pid: 7,
        tid: 8,
        cgroup_id: 1,
        start_ns: 1_000_000,
        duration_ns: 250_000,
        server: "10.0.0.2:80".parse().unwrap(),
        client: "10.0.0.1:40000".parse().unwrap(),
        status: 200,
        method: "GET",
        path: PathText::Route,
        route: "/".into(),
        request_size: 1,
        response_size: 1,
        traceparent: None,
        workload: None,
        sampled: false,
    }
}

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
