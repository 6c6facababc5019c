//! One line of a container log file, in the format its runtime writes:
//!
//! - Docker `json-file`: `{"log":"text\n","stream":"stdout","time":"RFC3339"}`;
//!   a `log` without the final newline is a partial line (Docker splits
//!   lines longer than 16 KiB).
//! - CRI (containerd, CRI-O: `/var/log/pods/.../N.log`):
//!   `RFC3339 stdout F text`, tag `P` for a partial line (`P:...` and
//!   `F:...` tags with more flags are accepted).
//! - podman `k8s-file`: the CRI layout with a `+hh:mm` offset.

use std::borrow::Cow;

use serde::Deserialize;
use thiserror::Error;

use super::time::parse_rfc3339_ns;

/// The file formats of container logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// Docker's `json-file` driver.
    DockerJson,
    /// The CRI log format (kubelet pods through containerd or CRI-O).
    Cri,
    /// podman's `k8s-file` driver (the CRI layout).
    K8sFile,
}

impl LogFormat {
    /// The name used in metrics and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::DockerJson => "docker",
            LogFormat::Cri => "cri",
            LogFormat::K8sFile => "k8s-file",
        }
    }
}

/// The stream a line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn parse(b: &[u8]) -> Option<Stream> {
        match b {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// One parsed line of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// The runtime's time stamp, ns since the epoch.
    pub ts_ns: Option<u64>,
    /// stdout or stderr.
    pub stream: Stream,
    /// The runtime split the line: more of it follows in the next line of
    /// the same stream.
    pub partial: bool,
    /// What the container wrote, without the newline (raw bytes: JSON
    /// unescaped for Docker).
    pub text: Cow<'a, [u8]>,
}

/// Why a line of a log file is not a log line (counted, then skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum LogLineError {
    /// Docker: not a JSON object with `log` and `stream`.
    #[error("not a json-file record")]
    NotJson,
    /// CRI/k8s-file: fewer than the time, stream and tag fields.
    #[error("missing fields")]
    MissingFields,
    /// The time stamp is not RFC 3339.
    #[error("bad time stamp")]
    BadTime,
    /// The stream is neither stdout nor stderr.
    #[error("bad stream")]
    BadStream,
    /// The CRI tag is neither `F` nor `P`.
    #[error("bad tag")]
    BadTag,
}

impl LogLineError {
    /// A short name for the metric's `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLineError::NotJson => "not_json",
            LogLineError::MissingFields => "missing_fields",
            LogLineError::BadTime => "bad_time",
            LogLineError::BadStream => "bad_stream",
            LogLineError::BadTag => "bad_tag",
        }
    }
}

/// Parses one line of a file in `format` (without its newline).
pub fn parse_line(format: LogFormat, line: &[u8]) -> Result<LogLine<'_>, LogLineError> {
    match format {
        LogFormat::DockerJson => parse_docker(line),
        LogFormat::Cri | LogFormat::K8sFile => parse_cri(line),
    }
}

#[derive(Deserialize)]
struct DockerRecord<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
}

fn parse_docker(line: &[u8]) -> Result<LogLine<'_>, LogLineError> {
    let rec: DockerRecord<'_> = serde_json::from_slice(line).map_err(|_| LogLineError::NotJson)?;
    let stream = Stream::parse(rec.stream.as_bytes()).ok_or(LogLineError::BadStream)?;
    let ts_ns = match &rec.time {
        Some(t) => Some(parse_rfc3339_ns(t.as_bytes()).ok_or(LogLineError::BadTime)?),
        None => None,
    };
    let partial = !rec.log.ends_with('\n');
    let text = match rec.log {
        Cow::Borrowed(s) => Cow::Borrowed(s.strip_suffix('\n').unwrap_or(s).as_bytes()),
        Cow::Owned(mut s) => {
            if s.ends_with('\n') {
                s.pop();
            }
            Cow::Owned(s.into_bytes())
        }
    };
    Ok(LogLine {
        ts_ns,
        stream,
        partial,
        text,
    })
}

fn parse_cri(line: &[u8]) -> Result<LogLine<'_>, LogLineError> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let (Some(time), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(LogLineError::MissingFields);
    };
    let text = parts.next().unwrap_or_default();
    let ts_ns = parse_rfc3339_ns(time).ok_or(LogLineError::BadTime)?;
    let stream = Stream::parse(stream).ok_or(LogLineError::BadStream)?;
    let first_tag = tag.split(|b| *b == b':').next().unwrap_or_default();
    let partial = match first_tag {
        b"F" => false,
        b"P" => true,
        _ => return Err(LogLineError::BadTag),
    };
    Ok(LogLine {
        ts_ns: Some(ts_ns),
        stream,
        partial,
        text: Cow::Borrowed(text.strip_suffix(b"\r").unwrap_or(text)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_lines_whole_partial_and_escaped() {
        let l = parse_line(
            LogFormat::DockerJson,
            br#"{"log":"hello \"x\"\n","stream":"stderr","time":"2024-05-01T10:00:00.000000001Z"}"#,
        )
        .unwrap();
        assert_eq!(&*l.text, br#"hello "x""#);
        assert_eq!(
            (l.stream, l.partial, l.ts_ns),
            (Stream::Stderr, false, Some(1_714_557_600_000_000_001))
        );
        let l = parse_line(
            LogFormat::DockerJson,
            br#"{"log":"part","stream":"stdout","time":"2024-05-01T10:00:00Z","attrs":{"a":"b"}}"#,
        )
        .unwrap();
        assert!(l.partial);
        assert_eq!(&*l.text, b"part");
        for (bad, why) in [
            (&b"not json"[..], LogLineError::NotJson),
            (br#"{"stream":"stdout"}"#, LogLineError::NotJson),
            (br#"{"log":"x\n","stream":"both"}"#, LogLineError::BadStream),
            (
                br#"{"log":"x\n","stream":"stdout","time":"yesterday"}"#,
                LogLineError::BadTime,
            ),
        ] {
            assert_eq!(parse_line(LogFormat::DockerJson, bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn cri_and_k8s_file_lines() {
        let l = parse_line(
            LogFormat::Cri,
            b"2024-05-01T10:00:00.1Z stdout P first half ",
        )
        .unwrap();
        assert!(l.partial);
        assert_eq!(&*l.text, b"first half ");
        let l = parse_line(LogFormat::Cri, b"2024-05-01T10:00:00.1Z stdout F").unwrap();
        assert_eq!((&*l.text, l.partial), (&b""[..], false));
        let l = parse_line(
            LogFormat::K8sFile,
            b"2024-05-01T12:00:00.000000000+02:00 stderr F:x a b",
        )
        .unwrap();
        assert_eq!(l.ts_ns, Some(1_714_557_600_000_000_000));
        assert_eq!((&*l.text, l.stream), (&b"a b"[..], Stream::Stderr));
        for (bad, why) in [
            (&b""[..], LogLineError::MissingFields),
            (b"2024-05-01T10:00:00Z stdout", LogLineError::MissingFields),
            (b"noon stdout F x", LogLineError::BadTime),
            (b"2024-05-01T10:00:00Z out F x", LogLineError::BadStream),
            (b"2024-05-01T10:00:00Z stdout X x", LogLineError::BadTag),
        ] {
            assert_eq!(parse_line(LogFormat::Cri, bad), Err(why), "{bad:?}");
        }
    }
}
