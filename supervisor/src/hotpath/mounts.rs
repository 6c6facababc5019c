//! The mount events' reader: each [`MountEvent`] the hot path's `sys_exit`
//! program sends (mount, umount2, move_mount, as they return; no syscall
//! tracepoint of their own) becomes a mount record of tool [`TOOL`] with
//! the fields mountsnoop's records carry (`proc.pid`, `proc.tid`,
//! `proc.uid`, `proc.comm`, `mount.op`, `mount.source`, `mount.target`,
//! `mount.fs`, `mount.flags`, `mount.data`, `ret`, `error.name`), so rules
//! treat both alike. `mount.ns` is not read. `move_mount` (the new mount
//! API's attach step) is `mount.op` = `move_mount`, its from path in
//! `mount.source` and its to path in `mount.target`. Events lost to a full
//! ring buffer are counted in the kernel
//! (`eunomia_hotpath_map_full_total{map="mount_events"}`).

use std::sync::Arc;

use aya::maps::{MapData, RingBuf};
use hotpath_common::{MOUNT_OP_MOVE, MOUNT_OP_UMOUNT, MountEvent};
use model::{Comm, Event, EventKind, Value, fields};
use tokio::task::JoinHandle;

use super::ring::{c_str, read_item};
use crate::{context::AgentContext, host::now_ns};

/// The tool name of the hot path's mount records.
pub const TOOL: &str = "hotpath.mount";

/// Starts reading `ring` into the pipeline until shutdown; None (with a
/// warning) when the ring buffer cannot be polled.
pub fn start(ring: RingBuf<MapData>, ctx: &AgentContext) -> Option<JoinHandle<()>> {
    super::ring::start(
        "mount events",
        ring,
        TOOL,
        |tool, item| read_item::<MountEvent>(item).map(|ev| to_event(tool, &ev)),
        ctx,
    )
}

/// A mount record like mountsnoop's.
pub fn to_event(tool: &Arc<str>, ev: &MountEvent) -> Event {
    let mut out = Event::new(tool.clone(), EventKind::Mount);
    (out.pid, out.tid, out.uid) = (Some(ev.pid), Some(ev.tid), Some(ev.uid));
    out.comm = Some(Comm::from_utf8_lossy(c_str(&ev.comm)));
    let text = |s: &[u8]| Value::str_lossy(c_str(s));
    match ev.op {
        MOUNT_OP_UMOUNT => {
            out.push(fields::MOUNT_OP, Value::Str("umount".into()));
            out.push(fields::MOUNT_TARGET, text(&ev.target));
            out.push(fields::MOUNT_FLAGS, Value::Str(hex(ev.flags).into()));
        }
        MOUNT_OP_MOVE => {
            out.push(fields::MOUNT_OP, Value::Str("move_mount".into()));
            out.push(fields::MOUNT_SOURCE, text(&ev.source));
            out.push(fields::MOUNT_TARGET, text(&ev.target));
            out.push(fields::MOUNT_FLAGS, Value::Str(hex(ev.flags).into()));
        }
        _ => {
            out.push(fields::MOUNT_OP, Value::Str("mount".into()));
            out.push(fields::MOUNT_SOURCE, text(&ev.source));
            out.push(fields::MOUNT_TARGET, text(&ev.target));
            out.push(fields::MOUNT_FS, text(&ev.fs));
            out.push(fields::MOUNT_FLAGS, Value::Str(ms_flags(ev.flags).into()));
            out.push(fields::MOUNT_DATA, text(&ev.data));
        }
    }
    out.push(fields::RET, Value::Int(ev.ret));
    if ev.ret < 0 {
        let errno = nix::errno::Errno::from_raw(i32::try_from(-ev.ret).unwrap_or(0));
        out.push(fields::ERROR_NAME, Value::Str(format!("{errno:?}").into()));
    }
    out.ts_ns = now_ns();
    out
}

/// `0x` and the flags in hex.
fn hex(flags: u64) -> String {
    format!("{flags:#x}")
}

/// mount(2) flags as mountsnoop prints them: `MS_RDONLY | MS_NOSUID`, bits
/// without a name in hex, `0x0` for none.
fn ms_flags(flags: u64) -> String {
    const NAMES: [(u64, &str); 24] = [
        (1, "MS_RDONLY"),
        (1 << 1, "MS_NOSUID"),
        (1 << 2, "MS_NODEV"),
        (1 << 3, "MS_NOEXEC"),
        (1 << 4, "MS_SYNCHRONOUS"),
        (1 << 5, "MS_REMOUNT"),
        (1 << 6, "MS_MANDLOCK"),
        (1 << 7, "MS_DIRSYNC"),
        (1 << 8, "MS_NOSYMFOLLOW"),
        (1 << 10, "MS_NOATIME"),
        (1 << 11, "MS_NODIRATIME"),
        (1 << 12, "MS_BIND"),
        (1 << 13, "MS_MOVE"),
        (1 << 14, "MS_REC"),
        (1 << 15, "MS_SILENT"),
        (1 << 16, "MS_POSIXACL"),
        (1 << 17, "MS_UNBINDABLE"),
        (1 << 18, "MS_PRIVATE"),
        (1 << 19, "MS_SLAVE"),
        (1 << 20, "MS_SHARED"),
        (1 << 21, "MS_RELATIME"),
        (1 << 22, "MS_KERNMOUNT"),
        (1 << 23, "MS_I_VERSION"),
        (1 << 24, "MS_STRICTATIME"),
    ];
    let mut parts: Vec<String> = NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect();
    let rest = NAMES.iter().fold(flags, |f, (bit, _)| f & !bit);
    if rest != 0 || parts.is_empty() {
        parts.push(hex(rest));
    }
    parts.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpath_common::{MOUNT_DATA_LEN, MOUNT_FS_LEN, MOUNT_OP_MOUNT, MOUNT_PATH_LEN};

    fn event(op: u32, ret: i64) -> MountEvent {
        let mut ev = MountEvent {
            pid: 42,
            tid: 43,
            uid: 0,
            op,
            ret,
            flags: 1 << 12 | 1 << 14,
            cgroup_id: 1,
            comm: [0; 16],
            source: [0; MOUNT_PATH_LEN],
            target: [0; MOUNT_PATH_LEN],
            fs: [0; MOUNT_FS_LEN],
            data: [0; MOUNT_DATA_LEN],
        };
        ev.comm[..5].copy_from_slice(b"mount");
        ev.source[..9].copy_from_slice(b"/dev/sda1");
        ev.target[..10].copy_from_slice(b"/mnt/ho\nst");
        ev.fs[..4].copy_from_slice(b"ext4");
        ev
    }

    fn field<'a>(e: &'a Event, name: &str) -> Option<&'a str> {
        e.field(name).and_then(|v| v.as_str())
    }

    #[test]
    fn a_mount_event_is_a_mount_record_like_mountsnoops() {
        let tool: Arc<str> = Arc::from(TOOL);
        let e = to_event(&tool, &event(MOUNT_OP_MOUNT, 0));
        assert_eq!(e.kind, EventKind::Mount);
        assert_eq!((e.pid, e.tid, e.uid), (Some(42), Some(43), Some(0)));
        assert_eq!(e.comm.as_ref().map(|c| c.as_str()), Some("mount"));
        assert_eq!(field(&e, fields::MOUNT_OP), Some("mount"));
        assert_eq!(field(&e, fields::MOUNT_SOURCE), Some("/dev/sda1"));
        assert_eq!(field(&e, fields::MOUNT_FS), Some("ext4"));
        assert_eq!(field(&e, fields::MOUNT_FLAGS), Some("MS_BIND | MS_REC"));
        assert_eq!(field(&e, fields::MOUNT_DATA), Some(""));
        // control bytes are escaped, never split into records
        let target = field(&e, fields::MOUNT_TARGET).unwrap();
        assert!(
            target.starts_with("/mnt/ho") && !target.contains('\n'),
            "{target}"
        );
        assert!(e.field(fields::ERROR_NAME).is_none());
    }

    #[test]
    fn umounts_moves_and_failures() {
        let tool: Arc<str> = Arc::from(TOOL);
        let e = to_event(&tool, &event(MOUNT_OP_UMOUNT, -1));
        assert_eq!(field(&e, fields::MOUNT_OP), Some("umount"));
        assert!(e.field(fields::MOUNT_SOURCE).is_none());
        assert_eq!(field(&e, fields::ERROR_NAME), Some("EPERM"));
        assert_eq!(e.get(fields::RET), Some(model::ValueRef::Int(-1)));
        let e = to_event(&tool, &event(MOUNT_OP_MOVE, 0));
        assert_eq!(field(&e, fields::MOUNT_OP), Some("move_mount"));
        assert_eq!(field(&e, fields::MOUNT_FLAGS), Some("0x5000"));
        assert_eq!(ms_flags(0), "0x0");
        assert_eq!(ms_flags(1 | 1 << 40), "MS_RDONLY | 0x10000000000");
        assert!(read_item::<MountEvent>(&[0u8; 8]).is_none());
    }
}
