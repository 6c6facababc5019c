//! Joins the partial lines of a stream (CRI `P`, Docker's 16 KiB splits)
//! into the line the container wrote. Each stream is joined on its own; a
//! joined line longer than the bound is cut there and marked truncated (the
//! rest of it, up to the final part, is dropped, never carried over).
//!
//! Every part is pushed with an opaque position (the caller's file offset of
//! the part): [`PartialJoiner::pending_from`] tells from where a reader that
//! stops now must read again to lose nothing.

use std::borrow::Cow;

use super::format::{LogLine, Stream};

/// A whole line: one unsplit line, or the parts of a split one joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedLine<'a> {
    /// The time stamp of the first part.
    pub ts_ns: Option<u64>,
    /// The stream.
    pub stream: Stream,
    /// The text, without newline.
    pub text: Cow<'a, [u8]>,
    /// How many parts were joined (1 for an unsplit line).
    pub parts: u32,
    /// Longer than the bound: cut.
    pub truncated: bool,
}

#[derive(Debug, Default)]
struct Pending {
    ts_ns: Option<u64>,
    text: Vec<u8>,
    parts: u32,
    truncated: bool,
    from: u64,
}

/// Joins partial lines per stream, keeping at most `max_bytes` of a line.
#[derive(Debug)]
pub struct PartialJoiner {
    max_bytes: usize,
    stdout: Option<Pending>,
    stderr: Option<Pending>,
}

impl PartialJoiner {
    /// A joiner keeping at most `max_bytes` (at least 1) of a joined line.
    pub fn new(max_bytes: usize) -> PartialJoiner {
        PartialJoiner {
            max_bytes: max_bytes.max(1),
            stdout: None,
            stderr: None,
        }
    }

    fn slot(&mut self, s: Stream) -> &mut Option<Pending> {
        match s {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    /// Adds one parsed line found at position `at`; returns the whole line
    /// it completes, if any.
    pub fn push<'a>(&mut self, line: LogLine<'a>, at: u64) -> Option<JoinedLine<'a>> {
        let max = self.max_bytes;
        let slot = self.slot(line.stream);
        if slot.is_none() && !line.partial {
            let truncated = line.text.len() > max;
            let text = match line.text {
                Cow::Borrowed(b) => Cow::Borrowed(&b[..b.len().min(max)]),
                Cow::Owned(mut v) => {
                    v.truncate(max);
                    Cow::Owned(v)
                }
            };
            return Some(JoinedLine {
                ts_ns: line.ts_ns,
                stream: line.stream,
                text,
                parts: 1,
                truncated,
            });
        }
        let p = slot.get_or_insert_with(|| Pending {
            ts_ns: line.ts_ns,
            from: at,
            ..Pending::default()
        });
        let room = max.saturating_sub(p.text.len());
        p.truncated |= line.text.len() > room;
        p.text
            .extend_from_slice(&line.text[..line.text.len().min(room)]);
        p.parts = p.parts.saturating_add(1);
        if line.partial {
            return None;
        }
        let p = slot.take()?;
        Some(JoinedLine {
            ts_ns: p.ts_ns,
            stream: line.stream,
            text: Cow::Owned(p.text),
            parts: p.parts,
            truncated: p.truncated,
        })
    }

    /// The position of the oldest part still waiting for its end, if any.
    pub fn pending_from(&self) -> Option<u64> {
        [&self.stdout, &self.stderr]
            .into_iter()
            .flatten()
            .map(|p| p.from)
            .min()
    }

    /// Bytes held in parts waiting for their end.
    pub fn pending_bytes(&self) -> usize {
        [&self.stdout, &self.stderr]
            .into_iter()
            .flatten()
            .map(|p| p.text.len())
            .sum()
    }

    /// The parts still waiting, as lines (at the end of a file that will
    /// never be continued, e.g. a container that exited mid-line).
    pub fn flush(&mut self) -> Vec<JoinedLine<'static>> {
        let mut out = Vec::new();
        for s in [Stream::Stdout, Stream::Stderr] {
            if let Some(p) = self.slot(s).take() {
                out.push(JoinedLine {
                    ts_ns: p.ts_ns,
                    stream: s,
                    text: Cow::Owned(p.text),
                    parts: p.parts,
                    truncated: p.truncated,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(stream: Stream, partial: bool, text: &str) -> LogLine<'_> {
        LogLine {
            ts_ns: Some(text.len() as u64),
            stream,
            partial,
            text: Cow::Borrowed(text.as_bytes()),
        }
    }

    #[test]
    fn joins_per_stream_and_tracks_the_restart_position() {
        let mut j = PartialJoiner::new(1024);
        assert!(j.push(line(Stream::Stdout, true, "ab"), 10).is_none());
        assert_eq!(j.pending_from(), Some(10));
        let e = j.push(line(Stream::Stderr, false, "err"), 20).unwrap();
        assert_eq!((&*e.text, e.parts), (&b"err"[..], 1));
        assert!(j.push(line(Stream::Stdout, true, "cd"), 30).is_none());
        let o = j.push(line(Stream::Stdout, false, "ef"), 40).unwrap();
        assert_eq!((&*o.text, o.parts, o.ts_ns), (&b"abcdef"[..], 3, Some(2)));
        assert_eq!(j.pending_from(), None);
    }

    #[test]
    fn long_lines_are_cut_and_marked() {
        let mut j = PartialJoiner::new(4);
        assert!(j.push(line(Stream::Stdout, true, "abc"), 0).is_none());
        assert!(j.push(line(Stream::Stdout, true, "def"), 1).is_none());
        let o = j.push(line(Stream::Stdout, false, "g"), 2).unwrap();
        assert_eq!((&*o.text, o.truncated), (&b"abcd"[..], true));
        let o = j.push(line(Stream::Stdout, false, "abcdef"), 3).unwrap();
        assert_eq!((&*o.text, o.truncated), (&b"abcd"[..], true));
        assert!(j.push(line(Stream::Stderr, true, "x"), 4).is_none());
        assert_eq!(j.pending_bytes(), 1);
        let rest = j.flush();
        assert_eq!(rest.len(), 1);
        assert_eq!(&*rest[0].text, b"x");
    }
}
