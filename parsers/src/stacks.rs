//! Stack tools: offcputime and wakeuptime (multi-line stacks, folded here
//! into [`FoldedStack`]s), and the generic `folded` format
//! (`frame;frame;frame count`, one stack a line).
//!
//! libbpf-tools 0.26 has no `-f` (folded) flag for either tool, so their
//! multi-line output is parsed and folded in flame-graph order (root first).

use std::sync::Arc;

use crate::ToolParser;
use crate::error::ParseError;
use crate::records::{Comm, FoldedStack, Record};
use crate::text::{self, chomp, is_noise, trim};

/// At most this many frames are kept per stack (the tools print ≤ 127).
const MAX_FRAMES: usize = 512;

/// Which multi-line stack tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StackStyle {
    /// offcputime: frames indented by 4 spaces, leaf first (kernel then
    /// user), then `    -                COMM (PID)` and `        USECS`.
    Offcpu,
    /// wakeuptime: `\ttarget:          NAME`, `\tADDR SYMBOL` frames (leaf
    /// first), `\t          waker: NAME`, `\tUSECS`.
    Wakeup,
}

/// offcputime / wakeuptime.
///
/// offcputime canonical flags: **`-m MIN_US DURATION`** (e.g. `-m 1000 30`;
/// the tool prints only when it ends); also `-u`, `-k`, `-p`, `-t`, `-M`,
/// `--state`. Not `-v` (raw addresses). Records: `FoldedStack` with
/// `stack` = `COMM;user root..leaf;kernel root..leaf`, `pid`, `comm`, and
/// `count` = off-CPU µs.
///
/// wakeuptime canonical flags: **`-m MIN_US DURATION`**; also `-u`, `-p`.
/// Records: `stack` = `TARGET;kernel root..leaf;WAKER`, `count` = blocked µs.
pub(crate) struct StackTool {
    tool: Arc<str>,
    style: StackStyle,
    frames: Vec<Box<str>>,
    target: Option<Box<str>>,
    waker: Option<Box<str>>,
    who: Option<(Comm, u32)>,
}

impl StackTool {
    /// A parser for `tool` in `style`.
    pub(crate) fn new(tool: &str, style: StackStyle) -> Self {
        StackTool {
            tool: tool.into(),
            style,
            frames: Vec::new(),
            target: None,
            waker: None,
            who: None,
        }
    }

    fn reset(&mut self) {
        self.frames.clear();
        self.target = None;
        self.waker = None;
        self.who = None;
    }

    fn push_frame(&mut self, f: &[u8]) {
        if self.frames.len() < MAX_FRAMES {
            self.frames.push(sanitize_frame(f));
        }
    }

    /// Builds the folded record from the collected lines and `count`.
    fn emit(&mut self, count: u64, out: &mut Vec<Record>) {
        let mut parts: Vec<&str> = Vec::with_capacity(self.frames.len() + 2);
        let (pid, comm) = match (self.style, &self.who) {
            (StackStyle::Offcpu, Some((c, pid))) => {
                parts.push(c.as_str());
                (Some(*pid), Some(c.clone()))
            }
            _ => (None, None),
        };
        if let Some(t) = &self.target {
            parts.push(t);
        }
        parts.extend(self.frames.iter().rev().map(|f| &**f));
        if let Some(w) = &self.waker {
            parts.push(w);
        }
        let stack = parts.join(";").into_boxed_str();
        out.push(Record::Stack(FoldedStack {
            ts_ns: 0,
            tool: self.tool.clone(),
            pid,
            comm,
            stack,
            count,
        }));
        self.reset();
    }

    fn feed_offcpu(&mut self, line: &[u8], out: &mut Vec<Record>) -> Result<(), &'static str> {
        let t = trim(line);
        if let Some(who) = t.strip_prefix(b"- ") {
            self.who = Some(comm_pid(trim(who)).ok_or("expected `- COMM (PID)`")?);
            return Ok(());
        }
        if self.who.is_some() {
            let (rest, n) = text::uint(t).map_err(|_| "expected the off-CPU time")?;
            if !rest.is_empty() {
                return Err("expected the off-CPU time");
            }
            self.emit(n, out);
            return Ok(());
        }
        if !line.starts_with(b"    ") {
            return Err("expected an indented frame");
        }
        self.push_frame(t);
        Ok(())
    }

    fn feed_wakeup(&mut self, line: &[u8], out: &mut Vec<Record>) -> Result<(), &'static str> {
        let t = trim(line);
        if let Some(target) = t.strip_prefix(b"target:") {
            self.reset();
            self.target = Some(sanitize_frame(trim(target)));
            return Ok(());
        }
        if let Some(waker) = t.strip_prefix(b"waker:") {
            self.waker = Some(sanitize_frame(trim(waker)));
            return Ok(());
        }
        if self.target.is_none() {
            return Err("expected `target:`");
        }
        if self.waker.is_some() {
            let (rest, n) = text::int(t).map_err(|_| "expected the blocked time")?;
            if !rest.is_empty() {
                return Err("expected the blocked time");
            }
            // wakeuptime prints its u64 total with %d: keep the low 32 bits
            self.emit(u64::from(n as i32 as u32), out);
            return Ok(());
        }
        // `ADDR SYMBOL`
        let sym = match memchr::memchr(b' ', t) {
            Some(sp) if t[..sp].iter().all(u8::is_ascii_hexdigit) => trim(&t[sp + 1..]),
            _ => return Err("expected `ADDRESS SYMBOL`"),
        };
        self.push_frame(sym);
        Ok(())
    }
}

impl ToolParser for StackTool {
    fn feed(&mut self, line: &[u8], out: &mut Vec<Record>) -> Result<(), ParseError> {
        let line = chomp(line);
        if is_noise(line) {
            return Ok(());
        }
        let r = match self.style {
            StackStyle::Offcpu => self.feed_offcpu(line, out),
            StackStyle::Wakeup => self.feed_wakeup(line, out),
        };
        r.map_err(|what| {
            self.reset();
            ParseError::new(&self.tool, what, line)
        })
    }

    fn finish(&mut self, _out: &mut Vec<Record>) {
        // a stack without its total was cut short: nothing to report
        self.reset();
    }

    fn tool(&self) -> &str {
        &self.tool
    }
}

/// `comm (pid)`; comm may contain spaces and parentheses.
fn comm_pid(t: &[u8]) -> Option<(Comm, u32)> {
    let open = t.iter().rposition(|b| *b == b'(')?;
    let inner = t[open + 1..].strip_suffix(b")")?;
    let (rest, pid) = text::u32_(inner).ok()?;
    if !rest.is_empty() {
        return None;
    }
    Some((Comm::from_utf8_lossy(trim(&t[..open])), pid))
}

/// A frame name for folded output: `;` separates frames, so it becomes `:`.
fn sanitize_frame(f: &[u8]) -> Box<str> {
    let s = crate::records::lossy_box(f);
    if s.contains(';') {
        s.replace(';', ":").into_boxed_str()
    } else {
        s
    }
}

/// The generic `folded` format: `frame;frame;frame count` per line (as
/// newer offcputime/wakeuptime `-f`, profile `-f` and stackcollapse print).
/// The first frame is kept in the stack; no pid is known.
pub(crate) struct FoldedTool {
    tool: Arc<str>,
}

impl FoldedTool {
    /// A folded-format parser for `tool`.
    pub(crate) fn new(tool: &str) -> Self {
        FoldedTool { tool: tool.into() }
    }
}

/// Parses `a;b;c 123` into (stack, count).
pub(crate) fn parse_folded_line(line: &[u8]) -> Option<(&[u8], u64)> {
    let t = trim(line);
    let sp = t.iter().rposition(|b| *b == b' ')?;
    let (stack, count) = (&t[..sp], &t[sp + 1..]);
    let (rest, n) = text::uint(count).ok()?;
    if !rest.is_empty() || trim(stack).is_empty() {
        return None;
    }
    Some((trim(stack), n))
}

impl ToolParser for FoldedTool {
    fn feed(&mut self, line: &[u8], out: &mut Vec<Record>) -> Result<(), ParseError> {
        let line = chomp(line);
        if is_noise(line) {
            return Ok(());
        }
        let (stack, count) = parse_folded_line(line)
            .ok_or_else(|| ParseError::new(&self.tool, "expected `frame;frame count`", line))?;
        out.push(Record::Stack(FoldedStack {
            ts_ns: 0,
            tool: self.tool.clone(),
            pid: None,
            comm: None,
            stack: crate::records::lossy_box(stack),
            count,
        }));
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Record>) {}

    fn tool(&self) -> &str {
        &self.tool
    }
}
