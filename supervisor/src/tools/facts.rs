//! What the kernel knows of a process, which tool records are checked
//! against ([`super::verify`]): the hot path's pid map (comm, uid and exec
//! times recorded at fork, exec, rename, cgroup move and exit; newlines in
//! the strings the process passed to traced syscalls) and, for a live
//! process that does not match it, `/proc`.

use parsers::escape;

use crate::context::PidLookup;

/// What the kernel knows of one process.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Its names (at exec, before the last exec, after renames), escaped
    /// and trimmed as the parsers leave a printed `comm`.
    pub(crate) comms: Vec<String>,
    /// Its real uids (at fork or exec, later, and `/proc`'s four).
    pub(crate) uids: Vec<u32>,
    /// Recent execs as (monotonic ns, comm after it); empty when unknown.
    pub(crate) execs: Vec<(u64, String)>,
    /// Whether the kernel's exec record is known (the pid map has it).
    pub(crate) execs_known: bool,
    /// Newlines in the process's strings, per family
    /// (`hotpath_common::FAMILY_*`), as the kernel counted them.
    pub(crate) newlines: [u32; 2],
    /// When (monotonic ns) the process last passed a string with a newline.
    pub(crate) newline_ns: u64,
}

/// Where process facts come from.
pub trait ProcessFacts: Send + Sync {
    /// What the kernel recorded of `pid` (cheap: a map lookup).
    fn recorded(&self, pid: u32) -> Option<Facts>;
    /// What `/proc` says of a live `pid`, with every thread's name (tools
    /// print the thread's `comm` with the process id). Only asked when the
    /// record does not match [`ProcessFacts::recorded`]: reading `/proc` is
    /// itself an open that opensnoop reports.
    fn live(&self, pid: u32) -> Option<Facts>;
    /// Newlines the kernel counted in all strings of `family` since it
    /// started counting; None when it does not count that family.
    fn newlines(&self, family: u32) -> Option<u64>;
}

/// The hot path's pid map, then `/proc`; the agent's own process from what
/// it read of itself at start (its own reads must not make more reads).
pub struct KernelFacts {
    pids: PidLookup,
    me: (u32, Option<Facts>),
}

impl KernelFacts {
    /// Facts from `pids` (the running hot path's map) and `/proc`.
    pub fn new(pids: PidLookup) -> KernelFacts {
        let me = std::process::id();
        let mut facts = proc_facts(me);
        if let Some(f) = &mut facts {
            f.comms.extend(thread_comms(me));
        }
        KernelFacts {
            pids,
            me: (me, facts),
        }
    }
}

/// A kernel `comm` buffer as the parsers leave a printed one.
pub(crate) fn comm_text(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    escape::escape_lossy(&raw[..end]).trim_end().to_owned()
}

impl ProcessFacts for KernelFacts {
    fn recorded(&self, pid: u32) -> Option<Facts> {
        if pid == self.me.0 {
            return self.me.1.clone();
        }
        let info = self.pids.map()?.process(pid)?;
        let (now, prev) = (comm_text(&info.comm), comm_text(&info.comm_prev));
        Some(Facts {
            comms: vec![
                now.clone(),
                comm_text(&info.comm_now),
                comm_text(&info.comm_thread),
                prev.clone(),
            ],
            uids: vec![info.uid, info.uid_last, info.uid_prev],
            execs: [(info.exec_ns, now), (info.exec_prev_ns, prev)]
                .into_iter()
                .filter(|(ns, _)| *ns != 0)
                .collect(),
            execs_known: true,
            newlines: [info.path_newlines, info.mount_newlines],
            newline_ns: info.newline_ns,
        })
    }

    fn newlines(&self, family: u32) -> Option<u64> {
        self.pids.map()?.newlines(family)
    }

    fn live(&self, pid: u32) -> Option<Facts> {
        if pid == self.me.0 {
            return None;
        }
        let mut facts = proc_facts(pid)?;
        facts.comms.extend(thread_comms(pid));
        Some(facts)
    }
}

/// The names of the threads of a live `pid`.
fn thread_comms(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .take(4096)
        .filter_map(|t| std::fs::read(t.path().join("comm")).ok())
        .map(|c| comm_text(c.strip_suffix(b"\n").unwrap_or(&c)))
        .collect()
}

/// `comm` and the four uids (real, effective, saved, fs) of a live process.
fn proc_facts(pid: u32) -> Option<Facts> {
    let comm = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    let uids = crate::host::proc::Status::read(pid)?.uids;
    Some(Facts {
        comms: vec![comm_text(comm.strip_suffix(b"\n").unwrap_or(&comm))],
        uids,
        ..Facts::default()
    })
}
