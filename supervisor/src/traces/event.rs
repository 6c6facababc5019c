//! From the HTTP source's span events (and their workload) to the
//! linker's [`SpanIn`]. The event's time is the request's start (the
//! kernel's time, on the wall clock), its end that plus the duration. A
//! `parent_span_id` on the event comes from the request's own
//! `traceparent` (the source gives none otherwise): that is the
//! application's trace, which linking keeps.

use std::{net::SocketAddr, sync::Arc};

use model::{Event, EventKind, Value, Workload, fields as f};

use super::span::{Side, SpanIn, TraceParent};

/// The span of an HTTP request event; None for other events or when an
/// address is missing.
pub(crate) fn span_of(e: &Event, workload: Option<&Workload>) -> Option<SpanIn> {
    let side = match e.kind {
        EventKind::HttpServer => Side::Server,
        EventKind::HttpClient => Side::Client,
        _ => return None,
    };
    let server = addr(e, f::SERVER_ADDRESS, f::SERVER_PORT)?;
    let client = addr(e, f::CLIENT_ADDRESS, f::CLIENT_PORT)?;
    let (local, remote) = match side {
        Side::Server => (server, client),
        Side::Client => (client, server),
    };
    let duration = match e.field(f::DURATION) {
        Some(Value::Duration(ns)) => *ns,
        _ => 0,
    };
    let text = |name| e.field(name).and_then(Value::as_str);
    let traceparent = match (text(f::TRACE_ID), text(f::TRACE_PARENT_ID)) {
        (Some(t), Some(p)) => TraceParent::from_hex(t, p),
        _ => None,
    };
    let pid = e.pid.unwrap_or(0);
    Some(SpanIn {
        side,
        pid,
        tid: e.tid.unwrap_or(pid),
        start_ns: e.ts_ns,
        end_ns: e.ts_ns.saturating_add(duration),
        local,
        remote,
        status: e
            .field(f::HTTP_STATUS)
            .and_then(Value::as_int)
            .map_or(0, |s| s.clamp(0, 999) as u16),
        traceparent,
        node: node_name(workload, e),
    })
}

fn addr(e: &Event, ip: &str, port: &str) -> Option<SocketAddr> {
    let Some(Value::Ip(ip)) = e.field(ip) else {
        return None;
    };
    let port = e.field(port).and_then(Value::as_int)?;
    Some(SocketAddr::new(*ip, u16::try_from(port).ok()?))
}

/// Who a span's end is, most specific first: the pod (`namespace/name`),
/// the container's name, the service, the process name, the pid.
pub(crate) fn node_name(w: Option<&Workload>, e: &Event) -> Arc<str> {
    if let Some(w) = w {
        if let Some(p) = &w.pod
            && let Some(name) = &p.name
        {
            return match &p.namespace {
                Some(ns) => format!("{ns}/{name}").into(),
                None => name.as_str().into(),
            };
        }
        if let Some(name) = w.container.as_ref().and_then(|c| c.name.as_deref()) {
            return name.into();
        }
        if let Some(s) = &w.service {
            return s.as_str().into();
        }
    }
    match (&e.comm, e.pid) {
        (Some(c), _) => c.as_str().into(),
        (None, Some(pid)) => format!("pid {pid}").into(),
        (None, None) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn event(kind: EventKind) -> Event {
        let mut e = Event::new("http".into(), kind);
        e.pid = Some(7);
        e.tid = Some(8);
        e.ts_ns = 1_000_000;
        let ip = |d| Value::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, d)));
        e.push(f::SERVER_ADDRESS, ip(2));
        e.push(f::SERVER_PORT, Value::Int(80));
        e.push(f::CLIENT_ADDRESS, ip(1));
        e.push(f::CLIENT_PORT, Value::Int(40000));
        e.push(f::DURATION, Value::Duration(250_000));
        e.push(f::HTTP_STATUS, Value::Int(503));
        e
    }

    #[test]
    fn server_and_client_events() {
        let s = span_of(&event(EventKind::HttpServer), None).unwrap();
        assert_eq!((s.side, s.pid, s.tid, s.status), (Side::Server, 7, 8, 503));
        assert_eq!((s.start_ns, s.end_ns), (1_000_000, 1_250_000));
        assert_eq!(s.local.to_string(), "10.0.0.2:80");
        assert_eq!(s.remote.to_string(), "10.0.0.1:40000");
        assert_eq!(&*s.node, "pid 7");
        let c = span_of(&event(EventKind::HttpClient), None).unwrap();
        assert_eq!(c.local.to_string(), "10.0.0.1:40000");
        assert_eq!(c.conn(), s.conn());
        assert!(span_of(&Event::new("x".into(), EventKind::Exec), None).is_none());
    }

    #[test]
    fn traceparent_and_names() {
        let mut e = event(EventKind::HttpServer);
        e.push(
            f::TRACE_ID,
            Value::Str("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        );
        e.push(f::TRACE_PARENT_ID, Value::Str("00f067aa0ba902b7".into()));
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
        let s = span_of(&e, Some(&w)).unwrap();
        assert_eq!(s.traceparent.unwrap().parent_id, 0x00f067aa0ba902b7);
        assert_eq!(&*s.node, "api");
    }
}
