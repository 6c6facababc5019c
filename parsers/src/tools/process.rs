//! Process life-cycle tools: execsnoop and exitsnoop.

use nom::Parser;

use crate::fields as f;
use crate::line::{EventSyntax, TimeCol};
use crate::records::{Event, EventKind, Value};
use crate::text::{
    self, Res, clock, comm, expect, has_token, id, int, padded, rel_time_exact, trim, ws, ws0,
};

/// execsnoop.
///
/// Canonical flags: **`-T -U -x -q`** (time of day, uid column, failed execs
/// too, quoted arguments: the tool escapes a newline in an argument as `\n`,
/// so an argument can never start a new line). Also accepted: no flags, `-t`
/// (relative time), `-U`, and their combinations; the header line decides.
/// Arguments that start with `"` are read as `-q` output (unquoted).
///
/// Output (libbpf-tools 0.26):
/// `TIME     UID    PCOMM            PID    PPID   RET ARGS`, printed as
/// `%-8s ` / `%-8.3f`, `%-6d`, `%-16s %-6d %-6d %3d ` then the arguments.
///
/// Event `exec`: `proc.uid`, `proc.comm`, `proc.pid`, `proc.ppid`, `ret`
/// (0 or -errno), `proc.args` (trimmed; ends with ` ...` when the tool cut
/// the argument list).
pub(crate) struct Execsnoop;

/// execsnoop's optional columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExecLayout {
    time: TimeCol,
    uid: bool,
}

impl EventSyntax for Execsnoop {
    type Layout = ExecLayout;

    fn kind(&self) -> EventKind {
        EventKind::Exec
    }

    fn default_layout(&self) -> ExecLayout {
        ExecLayout {
            time: TimeCol::Clock,
            uid: true,
        }
    }

    fn header(&self, line: &[u8]) -> Option<ExecLayout> {
        if !has_token(line, b"PCOMM") || !has_token(line, b"ARGS") {
            return None;
        }
        let time = if has_token(line, b"TIME(s)") {
            TimeCol::Relative
        } else if has_token(line, b"TIME") {
            TimeCol::Clock
        } else {
            TimeCol::None
        };
        Some(ExecLayout {
            time,
            uid: has_token(line, b"UID"),
        })
    }

    fn parse<'a>(&self, i: &'a [u8], l: ExecLayout, ev: &mut Event) -> Res<'a, ()> {
        let i = match l.time {
            TimeCol::Clock => {
                let (i, t) = padded(8, true, clock)(i)?;
                ev.tool_time = Some(t);
                i
            }
            TimeCol::Relative => {
                let (i, t) = padded(8, false, rel_time_exact(3))(i)?;
                ev.tool_time = Some(t);
                i
            }
            TimeCol::None => i,
        };
        let i = if l.uid {
            let (i, uid) = padded(6, false, id("expected a uid"))(i)?;
            ev.uid = Some(uid);
            i
        } else {
            i
        };
        let (i, c) = comm(16)(i)?;
        let (i, pid) = padded(6, true, id("expected a pid"))(ws0(i))?;
        let (i, ppid) = id("expected a ppid")(ws0(i))?;
        let (i, _) = ws(i)?;
        let (i, ret) = expect("expected a return value", int).parse(i)?;
        ev.comm = Some(c);
        ev.pid = Some(pid);
        ev.ppid = Some(ppid);
        ev.fields.reserve_exact(2);
        ev.push(f::RET, Value::Int(ret));
        let args = trim(i);
        let args = if args.first() == Some(&b'"') {
            Value::str_lossy(trim(&unquote_args(args)))
        } else {
            Value::str_lossy(args)
        };
        ev.push(f::PROC_ARGS, args);
        Ok((&i[i.len()..], ()))
    }
}

/// execsnoop `-q` arguments (`"a\nb" "c\"d" ...`) as one space-separated
/// string: quotes removed, `\"` unescaped, `\n` and `\t` kept as the
/// escapes they are (a newline in an argument never ends the line). Text
/// outside quotes (the ` ...` of a cut list) is kept.
fn unquote_args(i: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(i.len());
    let mut k = 0;
    while k < i.len() {
        if i[k] != b'"' {
            out.push(i[k]);
            k += 1;
            continue;
        }
        k += 1;
        while k < i.len() && i[k] != b'"' {
            if i[k] == b'\\' && i.get(k + 1) == Some(&b'"') {
                k += 1;
            }
            out.push(i[k]);
            k += 1;
        }
        k += 1;
    }
    out
}

/// exitsnoop.
///
/// Canonical flags: **`-t`** (time of day; the header says `TIME(s)` but the
/// column is `HH:MM:SS`). Also accepted: no flags, `-T` (per thread), `-x`.
///
/// Output: `[%8s ]%-16s %-7d %-7d %-7d %-7.2f ` then `0`, `code N` or
/// `signal N (Name)[, core dumped]`.
///
/// Event `exit`: `proc.comm`, `proc.pid`, `proc.ppid`, `proc.tid`, `proc.age`
/// (duration), and either `proc.exit_code` or `signal.num`, `signal.name`,
/// `proc.core_dumped`.
pub(crate) struct Exitsnoop;

impl EventSyntax for Exitsnoop {
    type Layout = bool;

    fn kind(&self) -> EventKind {
        EventKind::Exit
    }

    fn default_layout(&self) -> bool {
        true
    }

    fn header(&self, line: &[u8]) -> Option<bool> {
        (has_token(line, b"PCOMM") && has_token(line, b"EXIT_CODE"))
            .then(|| has_token(line, b"TIME(s)") || has_token(line, b"TIME"))
    }

    fn parse<'a>(&self, i: &'a [u8], time: bool, ev: &mut Event) -> Res<'a, ()> {
        let i = if time {
            let (i, t) = padded(8, true, clock)(ws0(i))?;
            ev.tool_time = Some(t);
            i
        } else {
            i
        };
        let (i, c) = comm(16)(i)?;
        let (i, pid) = id("expected a pid")(ws0(i))?;
        let (i, ppid) = id("expected a ppid")(ws0(i))?;
        let (i, tid) = id("expected a tid")(ws0(i))?;
        let (i, age) = expect("expected an age", text::duration(1e9)).parse(ws0(i))?;
        ev.comm = Some(c);
        ev.pid = Some(pid);
        ev.ppid = Some(ppid);
        ev.tid = Some(tid);
        ev.push(f::PROC_AGE, Value::Duration(age));
        let i = exit_status(ws0(i), ev)?;
        Ok((i, ()))
    }
}

/// `0` | `code N` | `signal N (Name)[, core dumped]`.
fn exit_status<'a>(i: &'a [u8], ev: &mut Event) -> Result<&'a [u8], nom::Err<text::Fail>> {
    let i = trim(i);
    if let Some(rest) = i.strip_prefix(b"code ") {
        let (r, code) = expect("expected an exit code", int).parse(rest)?;
        ev.push(f::PROC_EXIT_CODE, Value::Int(code));
        return Ok(r);
    }
    if let Some(rest) = i.strip_prefix(b"signal ") {
        let (r, sig) = expect("expected a signal number", int).parse(rest)?;
        ev.push(f::SIGNAL_NUM, Value::Int(sig));
        let r = ws0(r);
        let (name, dumped) = match r.strip_suffix(b", core dumped") {
            Some(n) => (n, true),
            None => (r, false),
        };
        let name = name
            .strip_prefix(b"(")
            .and_then(|n| n.strip_suffix(b")"))
            .unwrap_or(name);
        ev.push(f::SIGNAL_NAME, Value::str_lossy(name));
        ev.push(f::PROC_CORE_DUMPED, Value::Bool(dumped));
        return Ok(&r[r.len()..]);
    }
    if i == b", core dumped" {
        ev.push(f::PROC_CORE_DUMPED, Value::Bool(true));
        return Ok(&i[i.len()..]);
    }
    let (r, code) = expect("expected an exit status", int).parse(i)?;
    if !r.is_empty() {
        return text::fail("unexpected text after the exit status");
    }
    ev.push(f::PROC_EXIT_CODE, Value::Int(code));
    Ok(r)
}
