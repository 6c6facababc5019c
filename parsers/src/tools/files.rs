//! File-system tools: opensnoop, statsnoop and mountsnoop.

use nom::Parser;

use crate::fields as f;
use crate::line::{EventSyntax, TimeCol};
use crate::records::{Event, EventKind, Value};
use crate::text::{
    self, Res, clock, comm, expect, has_token, id, int, padded, rel_time, trim, trim_end, ws, ws0,
};

/// opensnoop.
///
/// Canonical flags: **`-T -U -e`** (time of day, uid, open flags).
/// Also accepted: any subset of those, with `-x`, `-p`, `-n`, ...
///
/// Output: `[%-8s ][%-7d ]%-6d %-16s %3d %3d [%08o ]PATH`.
///
/// Event `open`: `proc.uid`, `proc.pid`, `proc.comm`, `ret` (the fd, -1 on
/// failure), `error` (errno, 0 on success), `file.flags`, `file.path`.
pub(crate) struct Opensnoop;

/// opensnoop's optional columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenLayout {
    time: bool,
    uid: bool,
    flags: bool,
}

impl EventSyntax for Opensnoop {
    type Layout = OpenLayout;

    fn kind(&self) -> EventKind {
        EventKind::Open
    }

    fn default_layout(&self) -> OpenLayout {
        OpenLayout {
            time: true,
            uid: true,
            flags: true,
        }
    }

    fn header(&self, line: &[u8]) -> Option<OpenLayout> {
        (has_token(line, b"COMM") && has_token(line, b"FD") && has_token(line, b"ERR")).then(|| {
            OpenLayout {
                time: has_token(line, b"TIME"),
                uid: has_token(line, b"UID"),
                flags: has_token(line, b"FLAGS"),
            }
        })
    }

    fn parse<'a>(&self, i: &'a [u8], l: OpenLayout, ev: &mut Event) -> Res<'a, ()> {
        let mut i = i;
        if l.time {
            let (r, t) = padded(8, true, clock)(i)?;
            ev.tool_time = Some(t);
            i = r;
        }
        if l.uid {
            let (r, uid) = padded(7, true, id("expected a uid"))(i)?;
            ev.uid = Some(uid);
            i = r;
        }
        let (i, pid) = padded(6, true, id("expected a pid"))(i)?;
        let (i, c) = comm(16)(i)?;
        let (i, fd) = expect("expected an fd", int).parse(ws0(i))?;
        let (i, err) = expect("expected an errno", int).parse(ws0(i))?;
        let (mut i, _) = ws(i)?;
        ev.pid = Some(pid);
        ev.comm = Some(c);
        ev.fields.reserve_exact(3 + usize::from(l.flags));
        ev.push(f::RET, Value::Int(fd));
        ev.push(f::ERROR, Value::Int(err));
        if l.flags {
            let (r, flags) = octal(i)?;
            ev.push(f::FILE_FLAGS, Value::Int(flags));
            i = ws0(r);
        }
        ev.push(f::FILE_PATH, Value::str_lossy(trim_end(i)));
        Ok((&i[i.len()..], ()))
    }
}

/// An octal number (`02000000`).
fn octal(i: &[u8]) -> Res<'_, i64> {
    let n = i.iter().take_while(|b| (b'0'..=b'7').contains(*b)).count();
    if n == 0 || n > 21 {
        return text::fail("expected octal flags");
    }
    let v = i[..n]
        .iter()
        .fold(0i64, |acc, d| (acc << 3) | i64::from(d - b'0'));
    Ok((&i[n..], v))
}

/// statsnoop.
///
/// Canonical flags: **`-t`** (relative time in seconds). Also accepted: no
/// flags, `-x`, `-p`. (On this 6.18 kernel statsnoop attaches but reports
/// no events; the format is taken from the 0.26 source.)
///
/// Output: `[%-14.9f ]%-7d %-20s %-4d %-4d PATH`.
///
/// Event `stat`: `proc.pid`, `proc.comm`, `ret` (-1 on failure), `error`,
/// `file.path`.
pub(crate) struct Statsnoop;

impl EventSyntax for Statsnoop {
    type Layout = bool;

    fn kind(&self) -> EventKind {
        EventKind::Stat
    }

    fn default_layout(&self) -> bool {
        true
    }

    fn header(&self, line: &[u8]) -> Option<bool> {
        (has_token(line, b"COMM") && has_token(line, b"RET") && has_token(line, b"PATH"))
            .then(|| has_token(line, b"TIME(s)"))
    }

    fn parse<'a>(&self, i: &'a [u8], time: bool, ev: &mut Event) -> Res<'a, ()> {
        let mut i = i;
        if time {
            let (r, t) = padded(14, true, rel_time)(i)?;
            ev.tool_time = Some(t);
            i = r;
        }
        let (i, pid) = padded(7, true, id("expected a pid"))(i)?;
        let (i, c) = comm(20)(i)?;
        let (i, ret) = expect("expected a return value", int).parse(ws0(i))?;
        let (i, err) = expect("expected an errno", int).parse(ws0(i))?;
        let i = ws0(i);
        ev.pid = Some(pid);
        ev.comm = Some(c);
        ev.push(f::RET, Value::Int(ret));
        ev.push(f::ERROR, Value::Int(err));
        ev.push(f::FILE_PATH, Value::str_lossy(trim_end(i)));
        Ok((&i[i.len()..], ()))
    }
}

/// mountsnoop.
///
/// Canonical flags: **`-t`** (time of day). Also accepted: no flags. The
/// detailed mode `-d` (one line per value) is not supported.
///
/// Output: `[HH:MM:SS ]%-16s %-7d %-7d %-11u CALL` where CALL is
/// `mount("SRC", "TARGET", "FS", FLAGS, "DATA") = RET` or
/// `umount("TARGET", FLAGS) = RET`, RET being `0`, a number, or `-ENAME`.
///
/// Event `mount`: `proc.comm`, `proc.pid`, `proc.tid`, `mount.ns`,
/// `mount.op`, `mount.source`, `mount.target`, `mount.fs`, `mount.flags`,
/// `mount.data`, `ret`, and `error.name` when RET is symbolic.
pub(crate) struct Mountsnoop;

impl EventSyntax for Mountsnoop {
    type Layout = TimeCol;

    fn kind(&self) -> EventKind {
        EventKind::Mount
    }

    fn default_layout(&self) -> TimeCol {
        TimeCol::Clock
    }

    fn header(&self, line: &[u8]) -> Option<TimeCol> {
        (has_token(line, b"COMM") && has_token(line, b"MNT_NS") && has_token(line, b"CALL")).then(
            || {
                if has_token(line, b"TIME") {
                    TimeCol::Clock
                } else {
                    TimeCol::None
                }
            },
        )
    }

    fn parse<'a>(&self, i: &'a [u8], l: TimeCol, ev: &mut Event) -> Res<'a, ()> {
        let mut i = i;
        if l == TimeCol::Clock {
            let (r, t) = clock(i)?;
            let (r, _) = ws(r)?;
            ev.tool_time = Some(t);
            i = r;
        }
        let (i, c) = comm(16)(i)?;
        let (i, pid) = id("expected a pid")(ws0(i))?;
        let (i, tid) = id("expected a tid")(ws0(i))?;
        let (i, ns) = expect("expected a mount namespace", text::uint).parse(ws0(i))?;
        ev.comm = Some(c);
        ev.pid = Some(pid);
        ev.tid = Some(tid);
        ev.push(f::MOUNT_NS, Value::Int(ns as i64));
        mount_call(trim(i), ev)?;
        Ok((&i[i.len()..], ()))
    }
}

/// Splits `mount(...) = RET` / `umount(...) = RET` into fields.
fn mount_call(call: &[u8], ev: &mut Event) -> Result<(), nom::Err<text::Fail>> {
    let Some(eq) = memchr::memmem::rfind(call, b") = ") else {
        return text::fail("expected `) = RET` after the call");
    };
    let (head, ret) = (&call[..eq], &call[eq + 4..]);
    if let Some(args) = head.strip_prefix(b"mount(") {
        ev.push(f::MOUNT_OP, Value::Str("mount".into()));
        mount_args(args, ev)?;
    } else if let Some(args) = head.strip_prefix(b"umount(") {
        ev.push(f::MOUNT_OP, Value::Str("umount".into()));
        umount_args(args, ev)?;
    } else {
        return text::fail("expected mount( or umount(");
    }
    mount_ret(ret, ev)
}

/// `"SRC", "TARGET", "FS", FLAGS, "DATA"`; strings are printed unescaped, so
/// the first three split on `", "` from the left and DATA from the right.
fn mount_args(a: &[u8], ev: &mut Event) -> Result<(), nom::Err<text::Fail>> {
    let bad = || text::fail("malformed mount arguments");
    let Some(a) = a.strip_prefix(b"\"") else {
        return bad();
    };
    let mut parts = [&a[..0]; 3];
    let mut rest = a;
    for p in &mut parts {
        let Some(pos) = memchr::memmem::find(rest, b"\", ") else {
            return bad();
        };
        *p = &rest[..pos];
        rest = &rest[pos + 3..];
        rest = rest.strip_prefix(b"\"").unwrap_or(rest);
    }
    // rest = FLAGS, "DATA"
    let Some(pos) = memchr::memmem::rfind(rest, b", \"") else {
        return bad();
    };
    let flags = &rest[..pos];
    let data = rest[pos + 3..]
        .strip_suffix(b"\"")
        .unwrap_or(&rest[pos + 3..]);
    ev.push(f::MOUNT_SOURCE, Value::str_lossy(parts[0]));
    ev.push(f::MOUNT_TARGET, Value::str_lossy(parts[1]));
    ev.push(f::MOUNT_FS, Value::str_lossy(parts[2]));
    ev.push(f::MOUNT_FLAGS, Value::str_lossy(flags));
    ev.push(f::MOUNT_DATA, Value::str_lossy(data));
    Ok(())
}

/// `"TARGET", FLAGS`.
fn umount_args(a: &[u8], ev: &mut Event) -> Result<(), nom::Err<text::Fail>> {
    let Some(pos) = memchr::memmem::rfind(a, b"\", ") else {
        return text::fail("malformed umount arguments");
    };
    let target = a[..pos].strip_prefix(b"\"").unwrap_or(&a[..pos]);
    ev.push(f::MOUNT_TARGET, Value::str_lossy(target));
    ev.push(f::MOUNT_FLAGS, Value::str_lossy(&a[pos + 3..]));
    Ok(())
}

/// `0`, `-2` or `-ENOENT`.
fn mount_ret(ret: &[u8], ev: &mut Event) -> Result<(), nom::Err<text::Fail>> {
    if let Ok(([], v)) = int(ret) {
        ev.push(f::RET, Value::Int(v));
        return Ok(());
    }
    match ret.strip_prefix(b"-") {
        Some(name) if !name.is_empty() && name.iter().all(u8::is_ascii_alphanumeric) => {
            ev.push(f::RET, Value::Int(-1));
            ev.push(f::ERROR_NAME, Value::str_lossy(name));
            Ok(())
        }
        _ => text::fail("expected a return value"),
    }
}
