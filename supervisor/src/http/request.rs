//! What a request record says: the method, path and `traceparent` from
//! the request's first bytes (untrusted: only what parses is used, text is
//! escaped), the route template, and the compact request
//! ([`model::request::HttpRequest`]) handed to the pipeline. Nothing here
//! allocates: text goes into buffers the caller reuses.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use hotpath_common::http::{HTTP_CLIENT, HTTP_FLAG_SAMPLED, HTTP_RECORD_FIXED, HttpRecord};
pub(crate) use model::request::status_class;
use model::{
    Record, ToolRecord,
    request::{HttpRequest, PathText, TOOL},
    span::{SpanContext, SpanKind, from_hex},
};

/// Longest path kept (bytes); longer ones are cut.
const MAX_PATH: usize = 128;

/// The methods named as they are; any other is `_OTHER` (as the
/// OpenTelemetry HTTP conventions name it).
const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

/// The request line and the headers the capture reads, borrowed from the
/// record (nothing allocated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head<'a> {
    /// The method (`GET`, ..., `_OTHER`).
    pub(crate) method: &'static str,
    /// The path's bytes, without query or fragment, cut at [`MAX_PATH`]
    /// (not escaped yet: [`escape_into`]).
    pub(crate) path: &'a [u8],
    /// `(trace id, parent span id)` of a valid `traceparent` header.
    pub(crate) traceparent: Option<([u8; 16], [u8; 8])>,
}

/// Parses the first bytes of a request; None when they are no request line.
pub(crate) fn parse_head(head: &[u8]) -> Option<Head<'_>> {
    let line_end = memchr::memchr2(b'\r', b'\n', head).unwrap_or(head.len());
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
    Some(Head {
        method: METHODS
            .iter()
            .find(|m| m.as_bytes() == method)
            .copied()
            .unwrap_or("_OTHER"),
        path: &target[..path_end.min(MAX_PATH)],
        traceparent: traceparent(&head[line_end..]),
    })
}

/// `out` becomes the path `b`: printable ASCII kept, everything else as
/// `\xNN`; `/` when empty.
pub(crate) fn escape_into(out: &mut String, b: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.clear();
    for &c in b {
        if c.is_ascii_graphic() {
            out.push(c as char);
        } else {
            out.push_str("\\x");
            out.push(DIGITS[(c >> 4) as usize] as char);
            out.push(DIGITS[(c & 15) as usize] as char);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
}

/// The `traceparent` header (W3C trace context, version 00) among `headers`
/// (its name in any case, blanks around it allowed). Every request's
/// headers are looked through: a line is only read further when it starts
/// with the name.
fn traceparent(headers: &[u8]) -> Option<([u8; 16], [u8; 8])> {
    const NAME: &[u8] = b"traceparent";
    lines(headers).find_map(|line| {
        let (name, rest) = line.trim_ascii_start().split_at_checked(NAME.len())?;
        if !name.eq_ignore_ascii_case(NAME) {
            return None;
        }
        let value = rest.trim_ascii_start().strip_prefix(b":")?;
        let v = std::str::from_utf8(value.trim_ascii()).ok()?;
        let mut it = v.split('-');
        let (version, trace, parent, _flags) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if version != "00" {
            return None;
        }
        Some((from_hex(trace)?, from_hex(parent)?))
    })
}

/// The lines of `b` (split at `\n`).
fn lines(mut b: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', b).unwrap_or(b.len());
        let line = &b[..end];
        b = b.get(end + 1..).unwrap_or_default();
        Some(line)
    })
}

/// `out` becomes the route of `path`: segments that look like identifiers
/// (numbers, UUIDs, long hex or mixed tokens) become `{id}`.
pub(crate) fn route_into(out: &mut String, path: &str) {
    out.clear();
    if path == "*" {
        out.push('*');
        return;
    }
    let mut start = 0;
    loop {
        let end = memchr::memchr(b'/', &path.as_bytes()[start..]).map_or(path.len(), |i| start + i);
        let seg = &path[start..end];
        out.push_str(if is_id(seg) { "{id}" } else { seg });
        if end == path.len() {
            return;
        }
        out.push('/');
        start = end + 1;
    }
}

/// The route of a path (see [`route_into`]).
#[cfg(test)]
pub(crate) fn route_of(path: &str) -> String {
    let mut out = String::new();
    route_into(&mut out, path);
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
        || b.windows(2).any(|w| matches!(w, [b'\\', b'x']))
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

/// A record's fixed part as a request: everything but the method, path,
/// route and trace context (which come from its head, [`parse_head`]),
/// and its workload. `start_ns` is the request's start on the wall clock.
pub(crate) fn request_of(
    r: &HttpRecord,
    head: &Head<'_>,
    path: PathText,
    route: Arc<str>,
    start_ns: u64,
) -> HttpRequest {
    let client = r.kind == HTTP_CLIENT;
    let local = SocketAddr::new(addr(r.family, &r.laddr), r.lport);
    let remote = SocketAddr::new(addr(r.family, &r.raddr), r.rport);
    let (server, peer) = if client {
        (remote, local)
    } else {
        (local, remote)
    };
    HttpRequest {
        kind: if client {
            SpanKind::Client
        } else {
            SpanKind::Server
        },
        pid: r.pid,
        tid: r.tid,
        cgroup_id: r.cgroup_id,
        start_ns,
        duration_ns: r.end_ns.saturating_sub(r.start_ns),
        server,
        client: peer,
        status: r.status,
        method: head.method,
        path,
        route,
        request_size: r.req_bytes,
        response_size: r.resp_bytes,
        traceparent: head.traceparent,
        workload: None,
        sampled: r.flags & HTTP_FLAG_SAMPLED != 0,
    }
}

/// The span event of a request that is not linked (`eunomia http` without
/// an agent): the trace id and parent of its own `traceparent`, else a new
/// trace; a new span id.
pub(crate) fn unlinked_event(r: HttpRequest) -> ToolRecord {
    let nonzero = |v: u128| v.max(1);
    let ids = SpanContext {
        trace_id: r
            .traceparent
            .map_or_else(|| nonzero(fastrand::u128(..)).to_be_bytes(), |(t, _)| t),
        span_id: (nonzero(u128::from(fastrand::u64(..))) as u64).to_be_bytes(),
        parent_span_id: r.traceparent.map(|(_, p)| p),
    };
    let tool: Arc<str> = TOOL.into();
    ToolRecord {
        record: Record::Event(r.to_event(tool.clone(), &ids)),
        tool,
        workload: r.workload,
    }
}

/// The filled part of a record's head.
pub(crate) fn head_bytes(r: &HttpRecord) -> &[u8] {
    &r.head[..(r.head_len as usize).min(r.head.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(head: &[u8]) -> String {
        let mut s = String::new();
        escape_into(&mut s, parse_head(head).unwrap().path);
        s
    }

    #[test]
    fn request_lines() {
        let h = parse_head(b"GET /users/42?x=1 HTTP/1.1\r\nHost: a\r\n").unwrap();
        assert_eq!((h.method, h.path), ("GET", &b"/users/42"[..]));
        assert_eq!(h.traceparent, None);
        assert_eq!(path_of(b"POST /a\x1b[2J HTTP/1.1\r\n"), "/a\\x1b[2J");
        assert!(parse_head(b"\x16\x03\x01\x02").is_none());
        assert!(parse_head(b"get / HTTP/1.1").is_none());
        assert_eq!(parse_head(b"BREW / HTTP/1.1").unwrap().method, "_OTHER");
        // cut in the middle of the path (the head is 256 bytes at most)
        assert_eq!(path_of(b"GET /abc"), "/abc");
        assert_eq!(path_of(b"GET ?x HTTP/1.1"), "/");
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
        // blanks around the name, and names that only start like it
        let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        for (line, found) in [
            (&b"  TRACEPARENT :"[..], true),
            (b"traceparent:", true),
            (b"traceparentx:", false),
            (b"x-traceparent:", false),
            (b"traceparent", false),
        ] {
            let head = [&b"GET / HTTP/1.1\r\n"[..], line, tp, b"\r\n"].concat();
            let h = parse_head(&head).unwrap();
            assert_eq!(
                h.traceparent.is_some(),
                found,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
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
        assert_eq!(head_bytes(&r), b"GET /x HTTP/1.1\r\n");
        assert!(r.head[n as usize..].iter().all(|&b| b == 0));
        let head = parse_head(head_bytes(&r)).unwrap();
        assert_eq!(head.path, b"/x");
        let req = request_of(&r, &head, PathText::Route, "/x".into(), 5);
        assert_eq!(
            (req.kind, req.method, req.path()),
            (SpanKind::Server, "GET", "/x")
        );
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
        assert_eq!(route_of("*"), "*");
        assert_eq!(route_of("/a/deadbeef12"), "/a/{id}");
        assert_eq!(status_class(404), "4xx");
    }
}
