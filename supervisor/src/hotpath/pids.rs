//! pid → cgroup id: the kernel fills an LRU map at fork and exec and marks
//! entries at exit; the supervisor removes exited entries after a grace
//! period, so enrichment can still resolve a process that an external tool
//! reports after it is gone. [`PidCgroups`] is a cheap, cloneable handle
//! other tasks can use.

use std::{
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
    pub(crate) fn newlines(&self, family: u32) -> Option<u64> {
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
        from_map.or_else(|| crate::host::cgroup::id_of_pid(pid))
    }

    /// What the kernel recorded of task `pid` (fork, exec, renames, moves,
    /// exit), if the map still has it.
    pub(crate) fn process(&self, pid: u32) -> Option<PidInfo> {
        let map = crate::sync::lock(&self.map);
        map.get(&pid, 0).ok()
    }

    /// Removes entries of processes that exited more than `grace` ago.
    /// Returns (entries left, entries removed).
    pub(crate) fn sweep(&self, grace: Duration) -> (usize, usize) {
        let now = crate::host::monotonic_ns();
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
