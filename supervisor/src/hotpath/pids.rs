//! pid → cgroup id: the kernel fills an LRU map at fork and exec and marks
//! entries at exit; the supervisor removes exited entries after a grace
//! period, so enrichment can still resolve a process that an external tool
//! reports after it is gone. [`PidCgroups`] is a cheap, cloneable handle
//! other tasks can use.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use aya::maps::{Array, HashMap as BpfHashMap, MapData};
use hotpath_common::PidInfo;

/// A handle on the kernel's pid → cgroup map.
#[derive(Clone)]
pub struct PidCgroups {
    map: Arc<Mutex<BpfHashMap<MapData, u32, PidInfo>>>,
    newlines: Arc<Mutex<Array<MapData, u64>>>,
    /// Which newline families are counted (paths, mounts).
    families: [bool; 2],
}

impl PidCgroups {
    pub(crate) fn new(
        map: BpfHashMap<MapData, u32, PidInfo>,
        newlines: Array<MapData, u64>,
        families: [bool; 2],
    ) -> Self {
        Self {
            map: Arc::new(Mutex::new(map)),
            newlines: Arc::new(Mutex::new(newlines)),
            families,
        }
    }

    /// Newlines the kernel saw in the strings of `family`'s syscalls
    /// (`hotpath_common::FAMILY_*`) since the probe was attached; None when
    /// that family is not counted.
    pub fn newlines(&self, family: u32) -> Option<u64> {
        if !*self.families.get(family as usize)? {
            return None;
        }
        let map = crate::sync::lock(&self.newlines);
        map.get(&family, 0).ok()
    }

    /// The cgroup v2 id of `pid` (a process or thread id), from the map,
    /// else from `/proc/PID/cgroup`.
    pub fn cgroup_of_pid(&self, pid: u32) -> Option<u64> {
        let from_map = {
            let map = crate::sync::lock(&self.map);
            map.get(&pid, 0).ok().map(|info| info.cgroup_id)
        };
        from_map.or_else(|| cgroup_of_pid_from_proc(pid))
    }

    /// What the kernel recorded of task `pid` (fork, exec, renames, moves,
    /// exit), if the map still has it.
    pub fn process(&self, pid: u32) -> Option<PidInfo> {
        let map = crate::sync::lock(&self.map);
        map.get(&pid, 0).ok()
    }

    /// Removes entries of processes that exited more than `grace` ago.
    /// Returns (entries left, entries removed).
    pub fn sweep(&self, grace: Duration) -> (usize, usize) {
        let now = monotonic_ns();
        let grace = grace.as_nanos() as u64;
        let mut map = crate::sync::lock(&self.map);
        let mut total = 0;
        let stale: Vec<u32> = map
            .iter()
            .filter_map(Result::ok)
            .inspect(|_| total += 1)
            .filter(|(_, info)| info.exited_ns != 0 && now.saturating_sub(info.exited_ns) > grace)
            .map(|(pid, _)| pid)
            .collect();
        for pid in &stale {
            let _ = map.remove(pid);
        }
        (total - stale.len(), stale.len())
    }
}

/// What stages ask of the map, through the agent context.
impl crate::context::KernelPids for PidCgroups {
    fn cgroup_of_pid(&self, pid: u32) -> Option<u64> {
        PidCgroups::cgroup_of_pid(self, pid)
    }
    fn process(&self, pid: u32) -> Option<PidInfo> {
        PidCgroups::process(self, pid)
    }
    fn newlines(&self, family: u32) -> Option<u64> {
        PidCgroups::newlines(self, family)
    }
}

/// `CLOCK_MONOTONIC` in ns, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into ts.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup/unified` on
/// hybrid hosts, else `/sys/fs/cgroup`.
pub fn cgroup2_root() -> PathBuf {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    for dir in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let Ok(c) = std::ffi::CString::new(dir) else {
            continue;
        };
        // SAFETY: statfs writes into the zeroed struct.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0
            && st.f_type as i64 == CGROUP2_SUPER_MAGIC
        {
            return PathBuf::from(dir);
        }
    }
    PathBuf::from("/sys/fs/cgroup")
}

/// The cgroup v2 id of `pid` from `/proc/PID/cgroup` (the `0::PATH` line):
/// the inode number of that directory.
pub fn cgroup_of_pid_from_proc(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = cgroup2_root().join(path.trim_start_matches('/'));
    cgroup_id_of(&dir)
}

/// The cgroup id of a cgroup v2 directory (its inode number).
pub fn cgroup_id_of(dir: &Path) -> Option<u64> {
    std::fs::metadata(dir).ok().map(|m| m.ino())
}

/// The ids of every live cgroup v2 (walks the hierarchy).
pub fn live_cgroups() -> std::collections::HashSet<u64> {
    let mut out = std::collections::HashSet::new();
    let mut stack = vec![cgroup2_root()];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        out.insert(meta.ino());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_resolves_from_proc() {
        let root = cgroup2_root();
        if !root.exists() {
            eprintln!("SKIP: no cgroup v2 hierarchy");
            return;
        }
        let id = cgroup_of_pid_from_proc(std::process::id());
        assert!(id.is_some());
        assert!(live_cgroups().contains(&id.unwrap()));
    }
}
