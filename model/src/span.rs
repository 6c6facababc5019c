//! Spans: one HTTP request the hot path saw, as it flows through the
//! pipeline. A span is an [`Event`] of kind [`EventKind::HttpServer`] or
//! [`EventKind::HttpClient`] (so rules, the live view and the JSON-lines
//! sink read it like any event), with this shape:
//!
//! | member / field | value |
//! |---|---|
//! | `ts_ns` | the request's start, wall clock, ns since the Unix epoch |
//! | `pid`, `tid` | the process and the thread that read (server) or wrote (client) the request |
//! | [`fields::DURATION`] | start to the response's first bytes (ns) |
//! | [`fields::TRACE_ID`] | 32 hex digits: the incoming `traceparent`'s, else a new one |
//! | [`fields::SPAN_ID`] | 16 hex digits, new for every request |
//! | [`fields::TRACE_PARENT_ID`] | 16 hex digits, the `traceparent`'s parent (absent for a root) |
//! | `http.*`, `url.path`, `server.*`, `client.*` | see [`crate::fields`] |
//!
//! [`SpanContext`] reads and writes the three ids; [`SpanKind`] is the
//! OpenTelemetry kind of an event kind. Linking spans (a parent inferred
//! from the thread or the connection) rewrites the ids with
//! [`SpanContext::write`].

use crate::{
    Event, EventKind, Value,
    fields::{self, SPAN_ID, TRACE_ID, TRACE_PARENT_ID},
    value::ValueRef,
    view::EventView,
};

/// The OpenTelemetry span kind of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// A request this host served.
    Server,
    /// A request this host made.
    Client,
}

impl SpanKind {
    /// The span kind of events of `kind`, None when they are no spans.
    pub fn of(kind: EventKind) -> Option<SpanKind> {
        match kind {
            EventKind::HttpServer => Some(SpanKind::Server),
            EventKind::HttpClient => Some(SpanKind::Client),
            _ => None,
        }
    }

    /// The span kind of an event read by its kind's name.
    pub fn of_name(kind: &str) -> Option<SpanKind> {
        match kind {
            "http_server" => Some(SpanKind::Server),
            "http_client" => Some(SpanKind::Client),
            _ => None,
        }
    }
}

/// A span's identity and its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanContext {
    /// W3C trace id (not all zero).
    pub trace_id: [u8; 16],
    /// This span's id (not all zero).
    pub span_id: [u8; 8],
    /// The parent span's id; None for a root span.
    pub parent_span_id: Option<[u8; 8]>,
}

impl SpanContext {
    /// The ids of a span event; None when it carries no valid trace and span id.
    pub fn read(ev: &dyn EventView) -> Option<SpanContext> {
        let hex = |name| match ev.get(name) {
            Some(ValueRef::Str(s)) => Some(s),
            _ => None,
        };
        Some(SpanContext {
            trace_id: from_hex(hex(TRACE_ID)?)?,
            span_id: from_hex(hex(SPAN_ID)?)?,
            parent_span_id: hex(TRACE_PARENT_ID).and_then(from_hex),
        })
    }

    /// Writes the ids into `ev`, replacing those it had (a parent of None
    /// removes the parent field).
    pub fn write(&self, ev: &mut Event) {
        ev.set(TRACE_ID, Value::Str(to_hex(&self.trace_id).into()));
        ev.set(SPAN_ID, Value::Str(to_hex(&self.span_id).into()));
        match self.parent_span_id {
            Some(p) => ev.set(TRACE_PARENT_ID, Value::Str(to_hex(&p).into())),
            None => ev.fields.retain(|(n, _)| *n != TRACE_PARENT_ID),
        }
    }
}

/// The duration of a span event in ns (0 when absent).
pub fn duration_ns(ev: &dyn EventView) -> u64 {
    match ev.get(fields::DURATION) {
        Some(ValueRef::Duration(d)) => d,
        Some(ValueRef::Int(i)) => i.max(0) as u64,
        _ => 0,
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// `N` bytes from exactly `2 N` hex digits, not all zero; None otherwise.
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    out.iter().any(|&x| x != 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_an_event() {
        let mut ev = Event::new("http".into(), EventKind::HttpServer);
        assert_eq!(SpanContext::read(&ev), None);
        let ctx = SpanContext {
            trace_id: [0xab; 16],
            span_id: [1, 2, 3, 4, 5, 6, 7, 8],
            parent_span_id: Some([9; 8]),
        };
        ctx.write(&mut ev);
        assert_eq!(SpanContext::read(&ev), Some(ctx));
        assert_eq!(ev.get(SPAN_ID), Some(ValueRef::Str("0102030405060708")));
        let root = SpanContext {
            parent_span_id: None,
            ..ctx
        };
        root.write(&mut ev);
        assert_eq!(SpanContext::read(&ev), Some(root));
        assert_eq!(ev.fields.len(), 2);
        assert_eq!(SpanKind::of(ev.kind), Some(SpanKind::Server));
        assert_eq!(SpanKind::of(EventKind::Exec), None);
    }

    #[test]
    fn hex_is_checked() {
        assert_eq!(from_hex::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(from_hex::<2>("0000"), None);
        assert_eq!(from_hex::<2>("0a"), None);
        assert_eq!(from_hex::<2>("0g00"), None);
        assert_eq!(from_hex::<2>("é0"), None);
    }
}
