//! The severity a log message states, from the common ways of stating it:
//!
//! - JSON objects: `level`, `lvl`, `severity`, `log.level`, `loglevel`
//!   (words, or pino/bunyan numbers: 10 trace … 60 fatal);
//! - logfmt: `level=warn`, `lvl=error`, `severity=info`;
//! - klog/glog: `E0102 15:04:05.123456 ...` (`I`, `W`, `E`, `F`);
//! - a level word among the first words: `ERROR ...`, `[WARN] ...`,
//!   `2024-05-01 10:00:00 INFO ...`, `error: ...`, Go's `panic: ...`.
//!
//! Anything else is [`Level::Unknown`].

/// A log message's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// No level stated.
    Unknown,
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warning.
    Warn,
    /// Error.
    Error,
    /// Fatal, panic, critical.
    Fatal,
}

impl Level {
    /// The lowercase name (`unknown`, `trace`, ..., `fatal`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// A level word (`warning`, `ERR`, `crit`, ...), any case.
    pub fn from_word(w: &str) -> Option<Level> {
        let w = w.trim();
        if w.len() > 9 {
            return None;
        }
        let lower = w.to_ascii_lowercase();
        let level = match lower.as_str() {
            "trace" | "trc" => Level::Trace,
            "debug" | "dbg" => Level::Debug,
            "info" | "inf" | "information" | "notice" => Level::Info,
            "warn" | "wrn" | "warning" => Level::Warn,
            "error" | "err" | "eror" => Level::Error,
            "fatal" | "ftl" | "panic" | "crit" | "critical" | "emerg" | "alert" => Level::Fatal,
            _ => return None,
        };
        Some(level)
    }

    /// A pino/bunyan numeric level.
    pub fn from_number(n: i64) -> Option<Level> {
        let level = match n {
            ..=10 => Level::Trace,
            11..=20 => Level::Debug,
            21..=30 => Level::Info,
            31..=40 => Level::Warn,
            41..=50 => Level::Error,
            _ => Level::Fatal,
        };
        Some(level)
    }

    /// The OpenTelemetry severity number (1 trace … 21 fatal; 0 unknown).
    pub fn otel_number(self) -> i32 {
        match self {
            Level::Unknown => 0,
            Level::Trace => 1,
            Level::Debug => 5,
            Level::Info => 9,
            Level::Warn => 13,
            Level::Error => 17,
            Level::Fatal => 21,
        }
    }
}

/// JSON keys that hold a level.
pub(crate) const JSON_KEYS: [&str; 6] = ["level", "lvl", "severity", "log.level", "loglevel", "@l"];

/// The level of a message.
pub fn level_of(body: &[u8]) -> Level {
    if let Some(obj) = super::json_object(body) {
        return level_of_json(&obj).unwrap_or(Level::Unknown);
    }
    level_of_text(body)
}

/// The level a JSON object states.
pub(crate) fn level_of_json(obj: &serde_json::Map<String, serde_json::Value>) -> Option<Level> {
    JSON_KEYS.iter().find_map(|k| match obj.get(*k)? {
        serde_json::Value::String(s) => Level::from_word(s),
        serde_json::Value::Number(n) => Level::from_number(n.as_i64()?),
        _ => None,
    })
}

/// The level a text (non-JSON) message states.
pub(crate) fn level_of_text(body: &[u8]) -> Level {
    let head = &body[..body.len().min(160)];
    if let Some(l) = klog(head) {
        return l;
    }
    let text = String::from_utf8_lossy(head);
    if let Some(l) = logfmt(&text) {
        return l;
    }
    if text.starts_with("panic: ") || text.starts_with("fatal error: ") {
        return Level::Fatal;
    }
    text.split_ascii_whitespace()
        .take(4)
        .find_map(|w| {
            let w = w.trim_matches(|c: char| "[]()<>:|,;".contains(c));
            Level::from_word(w)
        })
        .unwrap_or(Level::Unknown)
}

/// `Lmmdd hh:mm:ss` (klog/glog).
fn klog(b: &[u8]) -> Option<Level> {
    let level = match b.first()? {
        b'I' => Level::Info,
        b'W' => Level::Warn,
        b'E' => Level::Error,
        b'F' => Level::Fatal,
        _ => return None,
    };
    let digits = b.get(1..5)?.iter().all(u8::is_ascii_digit);
    let clock = b.get(5..14)?;
    let is_clock = clock[0] == b' '
        && clock[3] == b':'
        && clock[6] == b':'
        && [1, 2, 4, 5, 7, 8]
            .iter()
            .all(|i| clock[*i].is_ascii_digit());
    (digits && is_clock).then_some(level)
}

/// `level=...` (also `lvl=`, `severity=`) anywhere, quoted or not.
fn logfmt(text: &str) -> Option<Level> {
    for key in ["level=", "lvl=", "severity="] {
        let mut from = 0;
        while let Some(i) = text[from..].find(key) {
            let at = from + i;
            let starts_word = at == 0 || text.as_bytes()[at - 1] == b' ';
            if starts_word {
                let rest = &text[at + key.len()..];
                let value = rest.split(' ').next().unwrap_or_default().trim_matches('"');
                if let Some(l) = Level::from_word(value) {
                    return Some(l);
                }
            }
            from = at + key.len();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_of_common_formats() {
        let cases: &[(&str, Level)] = &[
            (r#"{"level":"warn","msg":"x"}"#, Level::Warn),
            (r#"{"lvl":"ERROR"}"#, Level::Error),
            (r#"{"level":50,"msg":"pino"}"#, Level::Error),
            (r#"{"severity":"Critical"}"#, Level::Fatal),
            (r#"{"msg":"no level"}"#, Level::Unknown),
            ("ts=1 level=info msg=\"started\"", Level::Info),
            ("time=x lvl=\"debug\" a=b", Level::Debug),
            ("xlevel=error y", Level::Unknown),
            ("E0102 15:04:05.123456   12 server.go:1] boom", Level::Error),
            ("W0102 15:04:05.123456 x", Level::Warn),
            ("I01 not klog", Level::Unknown),
            ("ERROR something broke", Level::Error),
            ("[WARN] disk almost full", Level::Warn),
            ("2024-05-01 10:00:00 INFO started", Level::Info),
            ("error: cannot open", Level::Error),
            ("panic: runtime error: index out of range", Level::Fatal),
            ("just text", Level::Unknown),
            ("", Level::Unknown),
        ];
        for (body, want) in cases {
            assert_eq!(level_of(body.as_bytes()), *want, "{body}");
        }
    }
}
