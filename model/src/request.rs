//! [`HttpRequest`]: one HTTP request the hot path matched, compact, as the
//! HTTP source hands EVERY request to the traces stage (linking, the
//! service map). Only the requests whose trace is kept become span events
//! ([`HttpRequest::to_event`], the shape [`crate::span`] documents), so
//! the requests sampled out cost no event, no field and no id string.

use std::{net::SocketAddr, sync::Arc};

use crate::{
    Event, EventKind, SmallStr, Value, Workload, fields as f,
    span::{SpanContext, SpanKind},
};

/// The tool name of the span events (`event.tool`).
pub const TOOL: &str = "http";

/// One request (see the module docs). Nothing in it is allocated per
/// request in the common case: the method is static, the route shared
/// with the source's bounded set, the path inline up to 22 bytes (and the
/// route itself when the two are equal).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// Server (this host served it) or client (this host made it).
    pub kind: SpanKind,
    /// Process id (host namespace).
    pub pid: u32,
    /// The thread that read (server) or wrote (client) the request.
    pub tid: u32,
    /// cgroup v2 id of the process.
    pub cgroup_id: u64,
    /// Start, wall clock, ns since the Unix epoch.
    pub start_ns: u64,
    /// Start to the response's first bytes, ns.
    pub duration_ns: u64,
    /// The serving end.
    pub server: SocketAddr,
    /// The calling end.
    pub client: SocketAddr,
    /// Response status code.
    pub status: u16,
    /// `GET`, ... (`_OTHER` for a method outside the known set).
    pub method: &'static str,
    /// The path, without query or fragment, escaped.
    pub path: PathText,
    /// The bounded route (`/users/{id}`, or `other`).
    pub route: Arc<str>,
    /// Bytes of the request.
    pub request_size: u64,
    /// Bytes of the response's first write or read.
    pub response_size: u64,
    /// `(trace id, parent span id)` of the request's own `traceparent`.
    pub traceparent: Option<([u8; 16], [u8; 8])>,
    /// Who made or served it: set by the enrichment stage.
    pub workload: Option<Arc<Workload>>,
    /// The kernel sampled its call chain for spans (when it sends only the
    /// requests spans need: `[http] records = "sampled"`).
    pub sampled: bool,
}

/// A request's path: the route itself when equal (no copy), else its own
/// text.
#[derive(Debug, Clone, PartialEq)]
pub enum PathText {
    /// Equal to the request's route.
    Route,
    /// Its own text.
    Own(SmallStr),
}

impl HttpRequest {
    /// The path as text.
    pub fn path(&self) -> &str {
        match &self.path {
            PathText::Route => &self.route,
            PathText::Own(s) => s,
        }
    }

    /// `2xx` for 200, ...
    pub fn status_class(&self) -> &'static str {
        status_class(self.status)
    }

    /// The span event of the request with the linked `ids`.
    pub fn to_event(&self, tool: Arc<str>, ids: &SpanContext) -> Event {
        let kind = match self.kind {
            SpanKind::Client => EventKind::HttpClient,
            SpanKind::Server => EventKind::HttpServer,
        };
        let mut e = Event::new(tool, kind);
        e.ts_ns = self.start_ns;
        e.pid = Some(self.pid);
        e.tid = Some(self.tid);
        e.push(f::HTTP_METHOD, Value::Str(self.method.into()));
        e.push(f::URL_PATH, Value::Str(self.path().into()));
        e.push(f::HTTP_ROUTE, Value::Str((*self.route).into()));
        e.push(f::HTTP_STATUS, Value::Int(i64::from(self.status)));
        e.push(f::HTTP_STATUS_CLASS, Value::Str(self.status_class().into()));
        e.push(f::DURATION, Value::Duration(self.duration_ns));
        e.push(f::HTTP_REQUEST_SIZE, Value::Int(self.request_size as i64));
        e.push(f::HTTP_RESPONSE_SIZE, Value::Int(self.response_size as i64));
        e.push(f::SERVER_ADDRESS, Value::Ip(self.server.ip()));
        e.push(f::SERVER_PORT, Value::Int(i64::from(self.server.port())));
        e.push(f::CLIENT_ADDRESS, Value::Ip(self.client.ip()));
        e.push(f::CLIENT_PORT, Value::Int(i64::from(self.client.port())));
        ids.write(&mut e);
        e
    }
}

/// `2xx` for 200, ... (`5xx` for anything from 500 or out of range).
pub fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ValueRef;

    #[test]
    fn a_request_becomes_its_span_event() {
        let r = HttpRequest {
            kind: SpanKind::Client,
            pid: 7,
            tid: 8,
            cgroup_id: 1,
            start_ns: 1_000,
            duration_ns: 250,
            server: "10.0.0.2:80".parse().unwrap(),
            client: "10.0.0.1:40000".parse().unwrap(),
            status: 404,
            method: "GET",
            path: PathText::Own(SmallStr::new("/users/42")),
            route: "/users/{id}".into(),
            request_size: 100,
            response_size: 20,
            traceparent: None,
            workload: None,
            sampled: false,
        };
        let ids = SpanContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: None,
        };
        let e = r.to_event("http".into(), &ids);
        assert_eq!(e.kind, EventKind::HttpClient);
        assert_eq!((e.ts_ns, e.pid, e.tid), (1_000, Some(7), Some(8)));
        assert_eq!(e.get(f::URL_PATH), Some(ValueRef::Str("/users/42")));
        assert_eq!(e.get(f::HTTP_ROUTE), Some(ValueRef::Str("/users/{id}")));
        assert_eq!(e.get(f::HTTP_STATUS_CLASS), Some(ValueRef::Str("4xx")));
        assert_eq!(e.get(f::SERVER_PORT), Some(ValueRef::Int(80)));
        assert_eq!(SpanContext::read(&e), Some(ids));
        let same = HttpRequest {
            path: PathText::Route,
            ..r
        };
        assert_eq!(same.path(), "/users/{id}");
    }
}
