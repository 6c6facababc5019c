//! A tool's stderr, read so that nothing it writes can hurt the agent:
//! lines are cut at [`MAX_STDERR_LINE`] bytes (the rest of an over-long line
//! is skipped and the cut counted), decoded lossily (a byte that is not
//! UTF-8 becomes U+FFFD and reading goes on), and only the last
//! [`STDERR_TAIL`] lines are kept, for the failure message. Memory is thus
//! bounded however much a tool writes and whether or not it ends its lines;
//! the pipe is read until the tool closes it, so the tool never dies of
//! SIGPIPE because the agent stopped listening.
//!
//! The libbpf-tools' reports of events their perf buffer lost (`Lost N
//! events on CPU #C!` or `lost N events on CPU #C`) are counted, not logged.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, atomic::Ordering},
};

use tokio::io::{AsyncRead, AsyncReadExt as _};

use super::stats::ToolStats;

/// Longest stderr line kept; longer ones are cut (and counted).
pub(crate) const MAX_STDERR_LINE: usize = 4 * 1024;
/// How many stderr lines are kept for failure messages.
pub(crate) const STDERR_TAIL: usize = 20;
/// Lines logged at WARN per run; the rest at DEBUG.
const WARN_LINES: u32 = STDERR_TAIL as u32;

/// The last stderr lines of a tool, shared with its runner.
pub(crate) type Tail = Arc<Mutex<VecDeque<String>>>;

/// The count of a libbpf-tools lost-events line: `Lost N events on CPU #C!`
/// (execsnoop, opensnoop, runqslower) or `lost N events on CPU #C` (exitsnoop,
/// tcpstates, killsnoop, mountsnoop, tcplife, sigsnoop, statsnoop, drsnoop,
/// gethostlatency); any case, `N events` after `lost`.
pub(crate) fn lost_events(line: &str) -> Option<u64> {
    let rest = line.trim_start();
    let word = rest.get(..5)?;
    if !word.eq_ignore_ascii_case("lost ") {
        return None;
    }
    let mut words = rest[5..].split_whitespace();
    let n = words.next()?.parse().ok()?;
    words.next().filter(|w| w.starts_with("event"))?;
    Some(n)
}

/// Splits a byte stream into lines of at most `max` bytes: a longer line is
/// cut to its first `max` bytes and the rest skipped up to its newline.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    max: usize,
    pending: Vec<u8>,
    /// Inside an over-long line whose head was already passed on.
    skipping: bool,
}

impl LineSplitter {
    /// A splitter cutting lines at `max` bytes.
    pub(crate) fn new(max: usize) -> LineSplitter {
        LineSplitter {
            max,
            pending: Vec::new(),
            skipping: false,
        }
    }

    /// Feeds `data`; calls `line(bytes, cut)` for each complete (or cut) line.
    pub(crate) fn push(&mut self, mut data: &[u8], mut line: impl FnMut(&[u8], bool)) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            let (head, rest) = (&data[..i], &data[i + 1..]);
            data = rest;
            if std::mem::take(&mut self.skipping) {
                continue;
            }
            if self.pending.len() + head.len() > self.max {
                self.pending
                    .extend_from_slice(&head[..self.max - self.pending.len()]);
                line(&self.pending, true);
            } else if self.pending.is_empty() {
                line(head, false);
            } else {
                self.pending.extend_from_slice(head);
                line(&self.pending, false);
            }
            self.pending.clear();
        }
        if self.skipping {
            return;
        }
        let room = self.max - self.pending.len();
        if data.len() > room {
            self.pending.extend_from_slice(&data[..room]);
            line(&self.pending, true);
            self.pending.clear();
            self.skipping = true;
        } else {
            self.pending.extend_from_slice(data);
        }
    }

    /// The unterminated last line, if any (at the end of the stream).
    pub(crate) fn finish(&mut self, mut line: impl FnMut(&[u8], bool)) {
        if !self.pending.is_empty() && !self.skipping {
            line(&self.pending, false);
        }
        self.pending.clear();
        self.skipping = false;
    }
}

/// Reads `err` until its end (or a read error), counting lost-events lines,
/// logging the first lines, keeping the last ones in `tail`.
pub(crate) async fn read(
    mut err: impl AsyncRead + Unpin,
    tool: Arc<str>,
    stats: Arc<ToolStats>,
    tail: Tail,
) {
    let mut buf = vec![0u8; 8 * 1024];
    let mut split = LineSplitter::new(MAX_STDERR_LINE);
    let mut logged = 0u32;
    let mut on_line = |bytes: &[u8], cut: bool| {
        stats.stderr_lines.fetch_add(1, Ordering::Relaxed);
        if cut {
            stats.stderr_truncated_lines.fetch_add(1, Ordering::Relaxed);
        }
        let line = String::from_utf8_lossy(bytes);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if let Some(lost) = lost_events(line) {
            stats.lost_events.fetch_add(lost, Ordering::Relaxed);
            return;
        }
        logged = logged.saturating_add(1);
        let more = if cut { " [cut]" } else { "" };
        // Enough to see why a tool fails, without flooding the log when a
        // tool warns on every event.
        if logged <= WARN_LINES {
            tracing::warn!(tool = %tool, "stderr: {}{more}", line.escape_debug());
        } else {
            tracing::debug!(tool = %tool, "stderr: {}{more}", line.escape_debug());
        }
        let mut t = crate::sync::lock(&tail);
        if t.len() == STDERR_TAIL {
            t.pop_front();
        }
        t.push_back(line.to_owned());
    };
    loop {
        match err.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => split.push(&buf[..n], &mut on_line),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(tool = %tool, "reading stderr: {e}");
                break;
            }
        }
    }
    split.finish(&mut on_line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_event_lines_of_both_spellings_are_counted() {
        assert_eq!(lost_events("Lost 17 events on CPU #1!"), Some(17));
        assert_eq!(lost_events("lost 12857 events on CPU #0"), Some(12857));
        assert_eq!(lost_events("  Lost 3 events"), Some(3));
        assert_eq!(lost_events("LOST 1 event"), Some(1));
        assert_eq!(lost_events("Lost track of time"), None);
        assert_eq!(lost_events("lost 3 packets"), None);
        assert_eq!(lost_events("failed to attach"), None);
        assert_eq!(lost_events("los"), None);
        assert_eq!(lost_events("é lost"), None);
    }

    fn split_all(max: usize, chunks: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l, cut| out.push((l.to_vec(), cut)));
        }
        s.finish(|l, cut| out.push((l.to_vec(), cut)));
        out
    }

    #[test]
    fn lines_are_split_across_chunks_and_cut_when_too_long() {
        let out = split_all(4, &[b"ab", b"c\nde", b"\n", b"toolongline\nok\nrest"]);
        let want: Vec<(Vec<u8>, bool)> = vec![
            (b"abc".to_vec(), false),
            (b"de".to_vec(), false),
            (b"tool".to_vec(), true),
            (b"ok".to_vec(), false),
            (b"rest".to_vec(), false),
        ];
        assert_eq!(out, want);
        // Exactly max fits; a cut line spanning chunks is cut once.
        let out = split_all(4, &[b"abcd\nab", b"cdef", b"ghij", b"\nx"]);
        assert_eq!(
            out,
            vec![
                (b"abcd".to_vec(), false),
                (b"abcd".to_vec(), true),
                (b"x".to_vec(), false)
            ]
        );
        // A line cut at its newline's chunk.
        let out = split_all(4, &[b"ab", b"cdef\n"]);
        assert_eq!(out, vec![(b"abcd".to_vec(), true)]);
    }

    #[test]
    fn an_endless_line_keeps_memory_bounded() {
        let mut s = LineSplitter::new(MAX_STDERR_LINE);
        let chunk = vec![b'x'; 8192];
        let mut cut = 0;
        for _ in 0..10_000 {
            s.push(&chunk, |_, c| cut += usize::from(c));
            assert!(s.pending.capacity() <= 2 * MAX_STDERR_LINE);
        }
        assert_eq!(cut, 1);
    }

    #[tokio::test]
    async fn invalid_utf8_does_not_stop_the_reader() {
        let stats = Arc::new(ToolStats::new(Arc::from("stderr-test-tool")));
        let tail: Tail = Arc::default();
        let input: &[u8] =
            b"bad \xff\xfe byte\nlost 5 events on CPU #1\nLost 2 events on CPU #0!\nafter\n";
        read(input, "t".into(), stats.clone(), tail.clone()).await;
        let t = tail.lock().unwrap();
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            ["bad \u{fffd}\u{fffd} byte", "after"]
        );
        assert_eq!(stats.lost_events.load(Ordering::Relaxed), 7);
        assert_eq!(stats.stderr_lines.load(Ordering::Relaxed), 4);
    }
}
