//! From the HTTP source's requests (and their workload) to the linker's
//! [`SpanIn`]. A request's start is the kernel's time on the wall clock,
//! its end that plus the duration. A request's own `traceparent` is the
//! application's trace, which linking keeps.

use std::sync::Arc;

use model::{Workload, request::HttpRequest, span::SpanKind};

use super::span::{Side, SpanIn, TraceParent};

/// The span of a request; `node` names its end ([`node_name`]).
pub(crate) fn span_of(r: &HttpRequest, node: Arc<str>) -> SpanIn {
    let side = match r.kind {
        SpanKind::Server => Side::Server,
        SpanKind::Client => Side::Client,
    };
    let (local, remote) = match side {
        Side::Server => (r.server, r.client),
        Side::Client => (r.client, r.server),
    };
    SpanIn {
        side,
        pid: r.pid,
        tid: r.tid,
        start_ns: r.start_ns,
        end_ns: r.start_ns.saturating_add(r.duration_ns),
        local,
        remote,
        status: r.status.min(999),
        traceparent: r
            .traceparent
            .and_then(|(t, p)| TraceParent::from_bytes(t, p)),
        node,
        sampled: r.sampled,
    }
}

/// Who a span's end is, most specific first: the pod (`namespace/name`),
/// the container's name, the service; None for a process outside any
/// workload (named by the caller: its process name, else its pid).
pub(crate) fn node_name(w: Option<&Workload>) -> Option<Arc<str>> {
    let w = w?;
    if let Some(p) = &w.pod
        && let Some(name) = &p.name
    {
        return Some(match &p.namespace {
            Some(ns) => format!("{ns}/{name}").into(),
            None => name.as_str().into(),
        });
    }
    if let Some(name) = w.container.as_ref().and_then(|c| c.name.as_deref()) {
        return Some(name.into());
    }
    w.service.as_deref().map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared test request, failed (503).
    fn request(kind: SpanKind) -> HttpRequest {
        HttpRequest {
            status: 503,
            ..crate::testing::http_request(kind)
        }
    }

    #[test]
    fn server_and_client_requests() {
        let s = span_of(&request(SpanKind::Server), "a".into());
        assert_eq!((s.side, s.pid, s.tid, s.status), (Side::Server, 7, 8, 503));
        assert_eq!((s.start_ns, s.end_ns), (1_000_000, 1_250_000));
        assert_eq!(s.local.to_string(), "10.0.0.2:80");
        assert_eq!(s.remote.to_string(), "10.0.0.1:40000");
        let c = span_of(&request(SpanKind::Client), "b".into());
        assert_eq!(c.local.to_string(), "10.0.0.1:40000");
        assert_eq!(c.conn(), s.conn());
    }

    #[test]
    fn traceparent_and_names() {
        let mut r = request(SpanKind::Server);
        r.traceparent = Some((
            model::span::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            model::span::from_hex("00f067aa0ba902b7").unwrap(),
        ));
        let s = span_of(&r, "x".into());
        assert_eq!(s.traceparent.unwrap().parent_id, 0x00f067aa0ba902b7);
        let w = Workload {
            container: Some(model::Container {
                id: "abc".into(),
                runtime: model::Runtime::Docker,
                name: Some("api".into()),
                image: None,
                namespace: None,
                sandbox: false,
            }),
            ..Workload::default()
        };
        assert_eq!(node_name(Some(&w)).as_deref(), Some("api"));
        assert_eq!(node_name(None), None);
        assert_eq!(node_name(Some(&Workload::default())), None);
    }
}
