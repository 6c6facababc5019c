//! Container logs: the files the runtimes write for a container's stdout and
//! stderr, and what a line says. Pure functions, no I/O, no panics on any
//! input (fuzzed: `parsers/fuzz/fuzz_targets/logs.rs`).
//!
//! - [`format`]: one line of Docker's `json-file`, the CRI format
//!   (`/var/log/pods/<ns>_<pod>_<uid>/<container>/N.log`) or podman's
//!   `k8s-file` → [`LogLine`] (time, stream, partial flag, text).
//! - [`join`]: joins the partial lines of one stream (CRI `P`, Docker's
//!   16 KiB splits) into whole messages, bounded.
//! - [`severity`]: the level a message states (JSON `level`, logfmt,
//!   `ERROR`/`WARN` prefixes, klog).
//! - [`trace`]: a W3C `traceparent` or a common JSON trace/span key.
//! - [`pattern`]: the message's template with its variable parts masked.
//!
//! ```
//! use parsers::logs::{LogFormat, Stream, parse_line};
//! let l = parse_line(LogFormat::Cri, b"2024-05-01T10:00:00.5Z stderr F boom").unwrap();
//! assert_eq!((l.stream, l.partial, &*l.text), (Stream::Stderr, false, &b"boom"[..]));
//! assert_eq!(l.ts_ns, Some(1_714_557_600_500_000_000));
//! ```

pub mod format;
pub mod join;
pub mod pattern;
pub mod severity;
mod time;
pub mod trace;

pub use format::{LogFormat, LogLine, LogLineError, Stream, parse_line};
pub use join::{JoinedLine, PartialJoiner};
pub use pattern::{Pattern, pattern_of};
pub use severity::{Level, level_of};
pub use time::parse_rfc3339_ns;
pub use trace::{TraceIds, trace_of};

/// What a message says about itself: level, trace ids and pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insight {
    /// Its severity.
    pub level: Level,
    /// The trace and span it names.
    pub trace: TraceIds,
    /// Its pattern (of the `msg`/`message` of a JSON message).
    pub pattern: Pattern,
}

/// Reads a message once for everything [`Insight`] holds (a JSON message
/// is parsed once).
pub fn understand(body: &[u8]) -> Insight {
    match json_object(body) {
        Some(obj) => {
            let message = ["msg", "message", "log", "event"]
                .iter()
                .find_map(|k| obj.get(*k).and_then(|v| v.as_str()));
            Insight {
                level: severity::level_of_json(&obj).unwrap_or(Level::Unknown),
                trace: trace::trace_of_json(&obj),
                pattern: pattern_of(message.map_or(body, str::as_bytes)),
            }
        }
        None => Insight {
            level: severity::level_of_text(body),
            trace: trace::trace_of_text(body),
            pattern: pattern_of(body),
        },
    }
}

/// A JSON object body's message text (`msg`, `message`, `log`), for the
/// pattern; `None` when the body is no JSON object or has none of them.
pub fn json_message(body: &[u8]) -> Option<String> {
    let obj = json_object(body)?;
    ["msg", "message", "log", "event"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
}

/// The body parsed as a JSON object, when it looks like one.
pub(crate) fn json_object(body: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let trimmed = body.trim_ascii();
    if trimmed.first() != Some(&b'{') || trimmed.last() != Some(&b'}') {
        return None;
    }
    match serde_json::from_slice(trimmed) {
        Ok(serde_json::Value::Object(m)) => Some(m),
        _ => None,
    }
}
