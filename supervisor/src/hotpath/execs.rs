//! The exec events' reader: each [`ExecEvent`] the hot path's `exec_event`
//! program sends (at `sched_process_exec`, no syscall hook) becomes an exec
//! record of tool [`TOOL`], with the fields execsnoop's records carry
//! (`proc.pid`, `proc.ppid`, `proc.uid`, `proc.comm`, `proc.args`,
//! `ret` = 0), so rules and sinks treat both alike, and one more:
//! `proc.vpid`, the pid in the process's own pid namespace (1 for a
//! container's first process), which execsnoop does not print. Events lost to a full
//! ring buffer are counted in the kernel
//! (`eunomia_hotpath_map_full_total{map="exec_events"}`).

use std::sync::Arc;

use aya::maps::{MapData, RingBuf};
use hotpath_common::{EXEC_ARGS_LEN, ExecEvent};
use model::{Comm, Event, EventKind, Value, fields};
use tokio::task::JoinHandle;

use crate::context::AgentContext;

/// The tool name of the hot path's exec records.
pub(crate) const TOOL: &str = "hotpath.exec";

/// Starts reading `ring` into the pipeline until shutdown; None (with a
/// warning) when the ring buffer cannot be polled.
pub fn start(ring: RingBuf<MapData>, ctx: &AgentContext) -> Option<JoinHandle<()>> {
    super::ring::start(
        "exec events",
        ring,
        TOOL,
        |tool, item| read_event(item).map(|ev| to_event(tool, &ev)),
        ctx,
    )
}

/// The event in a ring buffer item (None when it is too short).
fn read_event(bytes: &[u8]) -> Option<ExecEvent> {
    super::ring::read_item(bytes)
}

/// An exec record like execsnoop's: argv joined by spaces (control bytes
/// escaped by the model's string rules), ` ...` when cut.
pub(crate) fn to_event(tool: &Arc<str>, ev: &ExecEvent) -> Event {
    let mut out = Event::new(tool.clone(), EventKind::Exec);
    out.pid = Some(ev.pid);
    out.ppid = (ev.ppid != 0).then_some(ev.ppid);
    out.uid = Some(ev.uid);
    if ev.vpid != 0 {
        out.push(fields::PROC_VPID, Value::Int(i64::from(ev.vpid)));
    }
    out.comm = Some(Comm::from_utf8_lossy(super::ring::c_str(&ev.comm)));
    out.push(fields::RET, Value::Int(0));
    out.push(fields::PROC_ARGS, Value::str_lossy(&args_text(ev)));
    out.ts_ns = crate::host::now_ns();
    out
}

/// argv as one space-separated string.
fn args_text(ev: &ExecEvent) -> Vec<u8> {
    let len = (ev.args_len as usize).min(EXEC_ARGS_LEN);
    let raw = &ev.args[..len];
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    let mut text: Vec<u8> = raw.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
    if ev.args_full > len as u64 {
        text.extend_from_slice(b" ...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(e: &Event) -> Option<&str> {
        e.fields
            .iter()
            .find(|(n, _)| *n == fields::PROC_ARGS)
            .and_then(|(_, v)| v.as_str())
    }

    fn event(args: &[u8], full: u64) -> ExecEvent {
        let mut ev = ExecEvent {
            pid: 42,
            ppid: 7,
            uid: 1000,
            args_len: args.len() as u32,
            vpid: 1,
            _pad: 0,
            args_full: full,
            cgroup_id: 1,
            comm: [0; 16],
            args: [0; EXEC_ARGS_LEN],
        };
        ev.comm[..2].copy_from_slice(b"sh");
        ev.args[..args.len()].copy_from_slice(args);
        ev
    }

    #[test]
    fn an_exec_event_is_an_exec_record() {
        let tool: Arc<str> = Arc::from(TOOL);
        let e = to_event(&tool, &event(b"sh\0-c\0echo hi\0", 14));
        assert_eq!(e.kind, EventKind::Exec);
        assert_eq!((e.pid, e.ppid, e.uid), (Some(42), Some(7), Some(1000)));
        assert_eq!(e.comm.as_ref().map(|c| c.as_str()), Some("sh"));
        assert_eq!(args(&e), Some("sh -c echo hi"));
        assert_eq!(e.get(fields::PROC_VPID), Some(model::ValueRef::Int(1)));
    }

    #[test]
    fn cut_arguments_say_so_and_short_items_are_refused() {
        let tool: Arc<str> = Arc::from(TOOL);
        let e = to_event(&tool, &event(b"ls\0-l", 5000));
        assert_eq!(args(&e), Some("ls -l ..."));
        assert!(read_event(&[0u8; 8]).is_none());
    }
}
