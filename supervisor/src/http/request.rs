//! What a request record says: the method, path and `traceparent` from
//! the request's first bytes (untrusted: only what parses is used, text is
//! escaped), the route template, and the event handed to the pipeline.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use hotpath_common::http::{HTTP_CLIENT, HTTP_RECORD_FIXED, HttpRecord};
use model::{
    Event, EventKind, Value, fields as f,
    span::{SpanContext, from_hex},
};

/// Longest path kept (bytes); longer ones are cut.
const MAX_PATH: usize = 128;

/// The request line and the headers the capture reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Head {
    /// The method (`GET`, ...).
    pub(crate) method: String,
    /// The path, without query or fragment, control bytes escaped.
    pub(crate) path: String,
    /// `(trace id, parent span id)` of a valid `traceparent` header.
    pub(crate) traceparent: Option<([u8; 16], [u8; 8])>,
}

/// Parses the first bytes of a request; None when they are no request line.
pub(crate) fn parse_head(head: &[u8]) -> Option<Head> {
    let line_end = head
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(head.len());
    let line = &head[..line_end];
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next()?;
    if method.is_empty() || method.len() > 7 || !method.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    let target = parts.next()?;
    let path_end = target
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(target.len());
    let mut path = escape(&target[..path_end.min(MAX_PATH)]);
    if path.is_empty() {
        path.push('/');
    }
    Some(Head {
        method: String::from_utf8_lossy(method).into_owned(),
        path,
        traceparent: traceparent(&head[line_end..]),
    })
}

/// Printable ASCII kept, everything else as `\xNN`.
fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_graphic() {
            s.push(c as char);
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

/// The `traceparent` header (W3C trace context, version 00) among `headers`.
fn traceparent(headers: &[u8]) -> Option<([u8; 16], [u8; 8])> {
    headers.split(|&b| b == b'\n').find_map(|line| {
        let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
        if !name.trim_ascii().eq_ignore_ascii_case(b"traceparent") {
            return None;
        }
        let v = std::str::from_utf8(value[1..].trim_ascii()).ok()?;
        let mut it = v.split('-');
        let (version, trace, parent, _flags) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if version != "00" {
            return None;
        }
        Some((from_hex(trace)?, from_hex(parent)?))
    })
}

/// The route of a path: segments that look like identifiers (numbers,
/// UUIDs, long hex or mixed tokens) become `{id}`.
pub(crate) fn route_of(path: &str) -> String {
    if path == "*" {
        return "*".into();
    }
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if is_id(seg) {
            out.push_str("{id}");
        } else {
            out.push_str(seg);
        }
    }
    out
}

fn is_id(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let hex = b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-');
    digits == b.len()
        || (hex && b.len() >= 8 && digits > 0)
        || (b.len() >= 16 && digits > 0)
        || seg.contains("\\x")
}

/// `2xx` for 200, ...
pub(crate) fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The address in a record's 16 bytes.
pub(crate) fn addr(family: u16, a: &[u8; 16]) -> IpAddr {
    if family == 10 {
        IpAddr::V6(Ipv6Addr::from(*a))
    } else {
        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    }
}

/// A record as the ring buffer holds it: its fixed part and the filled
/// part of its head (the rest of the head zero). None when shorter than
/// the fixed part.
pub(crate) fn record_from_ring(bytes: &[u8]) -> Option<HttpRecord> {
    if bytes.len() < HTTP_RECORD_FIXED {
        return None;
    }
    let len = bytes.len().min(std::mem::size_of::<HttpRecord>());
    // SAFETY: HttpRecord is plain data (integers and byte arrays), for
    // which all zeros and any bytes are valid; `len` bytes fit in it.
    unsafe {
        let mut r: HttpRecord = std::mem::zeroed();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (&raw mut r).cast::<u8>(), len);
        Some(r)
    }
}

/// One request record, decoded: what the metrics, the sampler and the span need.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// Request line and headers read.
    pub(crate) head: Head,
    /// Made by this host (client side) rather than served.
    pub(crate) client: bool,
    /// The serving end.
    pub(crate) server: (IpAddr, u16),
    /// The calling end.
    pub(crate) peer: (IpAddr, u16),
    /// Response status code.
    pub(crate) status: u16,
    /// From the request's first bytes to the response's.
    pub(crate) duration_ns: u64,
}

impl Request {
    /// Decodes a record; None when its head is no request line.
    pub(crate) fn decode(r: &HttpRecord) -> Option<Request> {
        let c = r;
        let len = (c.head_len as usize).min(c.head.len());
        let head = parse_head(&c.head[..len])?;
        let client = c.kind == HTTP_CLIENT;
        let local = (addr(c.family, &c.laddr), c.lport);
        let remote = (addr(c.family, &c.raddr), c.rport);
        let (server, peer) = if client {
            (remote, local)
        } else {
            (local, remote)
        };
        Some(Request {
            head,
            client,
            server,
            peer,
            status: r.status,
            duration_ns: c.end_ns.saturating_sub(c.start_ns),
        })
    }

    /// The span event ([`model::span`]): `start_ns` the wall-clock start,
    /// `route` the bounded route, `ids` its trace and span ids.
    pub(crate) fn to_event(
        &self,
        tool: &Arc<str>,
        r: &HttpRecord,
        route: &str,
        ids: &SpanContext,
        start_ns: u64,
    ) -> Event {
        let kind = match self.client {
            true => EventKind::HttpClient,
            false => EventKind::HttpServer,
        };
        let mut e = Event::new(tool.clone(), kind);
        e.ts_ns = start_ns;
        e.pid = Some(r.pid);
        e.tid = Some(r.tid);
        let h = &self.head;
        e.push(f::HTTP_METHOD, Value::Str(h.method.as_str().into()));
        e.push(f::URL_PATH, Value::Str(h.path.as_str().into()));
        e.push(f::HTTP_ROUTE, Value::Str(route.into()));
        e.push(f::HTTP_STATUS, Value::Int(i64::from(self.status)));
        e.push(
            f::HTTP_STATUS_CLASS,
            Value::Str(status_class(self.status).into()),
        );
        e.push(f::DURATION, Value::Duration(self.duration_ns));
        e.push(f::HTTP_REQUEST_SIZE, Value::Int(r.req_bytes as i64));
        e.push(f::HTTP_RESPONSE_SIZE, Value::Int(r.resp_bytes as i64));
        e.push(f::SERVER_ADDRESS, Value::Ip(self.server.0));
        e.push(f::SERVER_PORT, Value::Int(i64::from(self.server.1)));
        e.push(f::CLIENT_ADDRESS, Value::Ip(self.peer.0));
        e.push(f::CLIENT_PORT, Value::Int(i64::from(self.peer.1)));
        ids.write(&mut e);
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let h = parse_head(b"GET /users/42?x=1 HTTP/1.1\r\nHost: a\r\n").unwrap();
        assert_eq!((h.method.as_str(), h.path.as_str()), ("GET", "/users/42"));
        assert_eq!(h.traceparent, None);
        let h = parse_head(b"POST /a\x1b[2J HTTP/1.1\r\n").unwrap();
        assert_eq!(h.path, "/a\\x1b[2J");
        assert!(parse_head(b"\x16\x03\x01\x02").is_none());
        assert!(parse_head(b"get / HTTP/1.1").is_none());
        // cut in the middle of the path (the head is 256 bytes at most)
        assert_eq!(parse_head(b"GET /abc").unwrap().path, "/abc");
    }

    #[test]
    fn traceparent_header() {
        let h = parse_head(
            b"GET / HTTP/1.1\r\nHost: x\r\nTraceParent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            h.traceparent,
            Some((
                from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
                from_hex("00f067aa0ba902b7").unwrap()
            ))
        );
        let bad =
            parse_head(b"GET / HTTP/1.1\r\ntraceparent: 00-zz-00f067aa0ba902b7-01\r\n").unwrap();
        assert_eq!(bad.traceparent, None);
    }

    #[test]
    fn records_from_the_ring() {
        assert!(record_from_ring(&[0; HTTP_RECORD_FIXED - 1]).is_none());
        let mut bytes = vec![0u8; HTTP_RECORD_FIXED];
        bytes.extend_from_slice(b"GET /x HTTP/1.1\r\n");
        let n = (bytes.len() - HTTP_RECORD_FIXED) as u32;
        let at = std::mem::offset_of!(HttpRecord, head_len);
        bytes[at..at + 4].copy_from_slice(&n.to_ne_bytes());
        let r = record_from_ring(&bytes).unwrap();
        assert_eq!(r.head_len, n);
        assert_eq!(&r.head[..n as usize], b"GET /x HTTP/1.1\r\n");
        assert!(r.head[n as usize..].iter().all(|&b| b == 0));
        assert_eq!(Request::decode(&r).unwrap().head.path, "/x");
    }

    #[test]
    fn routes() {
        assert_eq!(route_of("/users/42"), "/users/{id}");
        assert_eq!(
            route_of("/o/3f2a1c9e-1b2c-4d5e-8f90-0123456789ab/items"),
            "/o/{id}/items"
        );
        assert_eq!(route_of("/static/app.js"), "/static/app.js");
        assert_eq!(route_of("/"), "/");
        assert_eq!(route_of("/a/deadbeef12"), "/a/{id}");
        assert_eq!(status_class(404), "4xx");
    }
}
