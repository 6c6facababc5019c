//! Signal tools: killsnoop and sigsnoop, which share one output format.

use nom::Parser;

use crate::fields as f;
use crate::line::EventSyntax;
use crate::records::{Event, EventKind, Value};
use crate::text::{Res, clock, comm, expect, has_token, id, int, padded, token, trim, ws0};

/// killsnoop and sigsnoop (same format; killsnoop only sees kill-family
/// syscalls and yields kind `kill`, sigsnoop every generated signal, kind
/// `signal`).
///
/// Canonical flags: **none** for both. Also accepted: `-n` (signal names),
/// `-x`, `-k`, `-p`, `-s`.
///
/// Output: `%-8s %-7d %-16s %-9d %-7d %-6d` (time, pid, comm, signal,
/// target pid, result); with `-n` the signal column is a name (`SIGTERM`,
/// or `N/A` when unknown).
///
/// Event: `proc.pid`, `proc.comm`, `signal.num` or `signal.name`,
/// `target.pid` (negative for process groups), `ret`.
pub(crate) struct SignalSnoop {
    /// `kill` or `signal`.
    pub(crate) kind: EventKind,
}

impl EventSyntax for SignalSnoop {
    type Layout = ();

    fn kind(&self) -> EventKind {
        self.kind
    }

    fn default_layout(&self) {}

    fn header(&self, line: &[u8]) -> Option<()> {
        (has_token(line, b"SIG") && has_token(line, b"TPID")).then_some(())
    }

    fn parse<'a>(&self, i: &'a [u8], _: (), ev: &mut Event) -> Res<'a, ()> {
        let (i, t) = padded(8, true, clock)(i)?;
        let (i, pid) = padded(7, true, id("expected a pid"))(i)?;
        let (i, c) = comm(16)(i)?;
        let (i, sig) = token(ws0(i))?;
        let (i, tpid) = expect("expected a target pid", int).parse(ws0(i))?;
        let (i, ret) = expect("expected a result", int).parse(ws0(i))?;
        if !trim(i).is_empty() {
            return crate::text::fail("unexpected text after the result");
        }
        ev.tool_time = Some(t);
        ev.pid = Some(pid);
        ev.comm = Some(c);
        ev.fields.reserve_exact(3);
        match int(sig) {
            Ok(([], n)) => ev.push(f::SIGNAL_NUM, Value::Int(n)),
            _ => ev.push(f::SIGNAL_NAME, Value::str_lossy(sig)),
        }
        ev.push(f::TARGET_PID, Value::Int(tpid));
        ev.push(f::RET, Value::Int(ret));
        Ok((i, ()))
    }
}
