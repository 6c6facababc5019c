//! Scheduler and memory event tools: runqslower and drsnoop.

use nom::Parser;

use crate::fields as f;
use crate::line::EventSyntax;
use crate::records::{Event, EventKind, Value};
use crate::text::{self, Res, clock, comm, expect, has_token, id, padded, trim, ws0};

/// runqslower.
///
/// Canonical flags: **`-P MIN_US`** (also print the previous task; the
/// threshold is the manifest's choice, default 10000 µs). Also accepted:
/// without `-P`, with `-p`/`-t`.
///
/// Output: `%-8s %-16s %-6d %14llu[ %-16s %-6d]` (time, comm, tid, latency
/// in µs, previous comm and tid).
///
/// Event `runq_latency`: `proc.comm`, `proc.tid`, `latency`, and with `-P`
/// `prev.comm`, `prev.tid`.
pub(crate) struct Runqslower;

impl EventSyntax for Runqslower {
    type Layout = ();

    fn kind(&self) -> EventKind {
        EventKind::RunqLatency
    }

    fn default_layout(&self) {}

    fn header(&self, line: &[u8]) -> Option<()> {
        (has_token(line, b"LAT(us)") && has_token(line, b"TID")).then_some(())
    }

    fn parse<'a>(&self, i: &'a [u8], _: (), ev: &mut Event) -> Res<'a, ()> {
        let (i, t) = padded(8, true, clock)(i)?;
        let (i, c) = comm(16)(i)?;
        let (i, tid) = id("expected a tid")(ws0(i))?;
        let (i, lat) = expect("expected a latency", text::duration(1e3)).parse(ws0(i))?;
        ev.tool_time = Some(t);
        ev.comm = Some(c);
        ev.tid = Some(tid);
        ev.push(f::LATENCY, Value::Duration(lat));
        if trim(i).is_empty() {
            return Ok((i, ()));
        }
        let i = i.strip_prefix(b" ").unwrap_or(i);
        let (i, prev) = comm(16)(i)?;
        let (i, prev_tid) = id("expected the previous tid")(ws0(i))?;
        ev.push(f::PREV_COMM, Value::Str(prev.as_str().into()));
        ev.push(f::PREV_TID, Value::Int(i64::from(prev_tid)));
        Ok((i, ()))
    }
}

/// drsnoop.
///
/// Canonical flags: **none** (`-e` fails on this kernel: it needs the
/// `vm_zone_stat` symbol). Also accepted: `-e`, `-p`, `-t`.
///
/// Output: `%-8s %-16s %-6d %8.3f %5lld[ %8llu]` (time, comm, tid, latency
/// in ms, pages reclaimed, free KiB).
///
/// Event `direct_reclaim`: `proc.comm`, `proc.tid`, `latency`,
/// `mem.reclaimed_pages`, `mem.free_kb` (with `-e`).
pub(crate) struct Drsnoop;

impl EventSyntax for Drsnoop {
    type Layout = ();

    fn kind(&self) -> EventKind {
        EventKind::DirectReclaim
    }

    fn default_layout(&self) {}

    fn header(&self, line: &[u8]) -> Option<()> {
        (has_token(line, b"LAT(ms)") && has_token(line, b"PAGES")).then_some(())
    }

    fn parse<'a>(&self, i: &'a [u8], _: (), ev: &mut Event) -> Res<'a, ()> {
        let (i, t) = padded(8, true, clock)(i)?;
        let (i, c) = comm(16)(i)?;
        let (i, tid) = id("expected a tid")(ws0(i))?;
        let (i, lat) = expect("expected a latency", text::duration(1e6)).parse(ws0(i))?;
        let (i, pages) = expect("expected pages", text::int).parse(ws0(i))?;
        ev.tool_time = Some(t);
        ev.comm = Some(c);
        ev.tid = Some(tid);
        ev.push(f::LATENCY, Value::Duration(lat));
        ev.push(f::MEM_RECLAIMED_PAGES, Value::Int(pages));
        if trim(i).is_empty() {
            return Ok((i, ()));
        }
        let (i, free) = expect("expected free KiB", text::int).parse(ws0(i))?;
        ev.push(f::MEM_FREE_KB, Value::Int(free));
        Ok((i, ()))
    }
}
