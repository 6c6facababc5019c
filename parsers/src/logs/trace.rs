//! The trace and span a message belongs to, so logs join the spans of the
//! same request: a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`)
//! anywhere in the message, or the common keys of JSON logs (`trace_id`,
//! `traceId`, `traceID`, `trace.id`, `span_id`, `spanId`, `span.id`, ...)
//! and logfmt (`trace_id=...`, `span_id=...`). All-zero ids are invalid
//! (W3C) and ignored.

/// A trace id (16 bytes) and span id (8 bytes), as found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceIds {
    /// The trace id.
    pub trace_id: Option<[u8; 16]>,
    /// The span id.
    pub span_id: Option<[u8; 8]>,
}

impl TraceIds {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.trace_id.is_none() && self.span_id.is_none()
    }
}

const TRACE_KEYS: [&str; 6] = [
    "trace_id", "traceId", "traceID", "traceid", "trace.id", "trace",
];
const SPAN_KEYS: [&str; 5] = ["span_id", "spanId", "spanID", "spanid", "span.id"];

/// The ids a message names.
pub fn trace_of(body: &[u8]) -> TraceIds {
    if let Some(obj) = super::json_object(body) {
        return trace_of_json(&obj);
    }
    trace_of_text(body)
}

/// The ids a JSON object names (its keys, else a `traceparent` value).
pub(crate) fn trace_of_json(obj: &serde_json::Map<String, serde_json::Value>) -> TraceIds {
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| obj.get(*k).and_then(|v| v.as_str()))
    };
    let mut ids = TraceIds {
        trace_id: text(&TRACE_KEYS).and_then(|s| hex_id(s.as_bytes())),
        span_id: text(&SPAN_KEYS).and_then(|s| hex_id(s.as_bytes())),
    };
    if ids.trace_id.is_none()
        && let Some(tp) = text(&["traceparent"])
    {
        ids = traceparent_in(tp.as_bytes()).unwrap_or_default();
    }
    ids
}

/// The ids a text message names: a traceparent, else logfmt keys.
pub(crate) fn trace_of_text(body: &[u8]) -> TraceIds {
    if let Some(ids) = traceparent_in(body) {
        return ids;
    }
    let value_after = |key: &[u8]| {
        memchr::memmem::find_iter(body, key)
            .filter(|&at| at == 0 || !body[at - 1].is_ascii_alphanumeric())
            .map(|at| {
                let rest = &body[at + key.len()..];
                let end = rest
                    .iter()
                    .position(|b| !b.is_ascii_hexdigit())
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .next()
    };
    TraceIds {
        trace_id: value_after(b"trace_id=").and_then(hex_id),
        span_id: value_after(b"span_id=").and_then(hex_id),
    }
}

/// The first `00-<32>-<16>-<2>` in `b`.
fn traceparent_in(b: &[u8]) -> Option<TraceIds> {
    memchr::memmem::find_iter(b, b"00-").find_map(|at| {
        if at > 0 && b[at - 1].is_ascii_hexdigit() {
            return None;
        }
        let tp = b.get(at..at + 55)?;
        if tp[35] != b'-' || tp[52] != b'-' || !tp[53..55].iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        if b.get(at + 55).is_some_and(u8::is_ascii_hexdigit) {
            return None;
        }
        Some(TraceIds {
            trace_id: Some(hex_id(&tp[3..35])?),
            span_id: Some(hex_id(&tp[36..52])?),
        })
    })
}

/// A non-zero id of exactly `N` bytes written as `2N` hex digits.
fn hex_id<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    (out != [0u8; N]).then_some(out)
}

/// Lowercase hex of an id.
pub fn to_hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const S: &str = "00f067aa0ba902b7";

    #[test]
    fn traceparent_json_keys_and_logfmt() {
        let tp = format!("GET /x traceparent=00-{T}-{S}-01 done");
        let ids = trace_of(tp.as_bytes());
        assert_eq!(ids.trace_id.map(|t| to_hex(&t)).as_deref(), Some(T));
        assert_eq!(ids.span_id.map(|s| to_hex(&s)).as_deref(), Some(S));
        let json = format!(r#"{{"msg":"x","traceId":"{T}","spanId":"{S}"}}"#);
        assert_eq!(trace_of(json.as_bytes()), ids);
        let json = format!(r#"{{"traceparent":"00-{T}-{S}-00"}}"#);
        assert_eq!(trace_of(json.as_bytes()), ids);
        let logfmt = format!("level=info trace_id={T} span_id={S} msg=ok");
        assert_eq!(trace_of(logfmt.as_bytes()), ids);
        let only_trace = format!(r#"{{"trace_id":"{T}"}}"#);
        assert!(trace_of(only_trace.as_bytes()).span_id.is_none());
    }

    #[test]
    fn invalid_ids_are_ignored() {
        let zero = "0".repeat(32);
        for body in [
            format!("00-{zero}-{S}-01"),
            format!("00-{T}-{S}-0"),
            format!("100-{T}x-{S}-01"),
            format!(r#"{{"trace_id":"{T}ff"}}"#),
            "trace_id=xyz".to_owned(),
            format!("trace_id={zero}"),
        ] {
            assert!(trace_of(body.as_bytes()).trace_id.is_none(), "{body}");
        }
    }
}
