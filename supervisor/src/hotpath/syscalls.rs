//! Syscalls per cgroup: reads the kernel's slot table through mmap (no bpf()
//! syscall per poll), sums the CPUs, turns successive reads into deltas per
//! (cgroup, syscall), and frees the slots of dead cgroups.

use aya::maps::{HashMap as BpfHashMap, MapData, Queue};
use hotpath_common::{CGROUP_SLOTS_MAP, FREE_SLOTS_MAP, MAX_SYSCALLS, OVERFLOW_SLOT, SlotCounters};

use super::{Hotpath, HotpathError, mmap::MmapArray};

/// u64 counters per slot and CPU: calls then errors.
const WORDS: usize = 2 * MAX_SYSCALLS as usize;

/// The increase of one syscall's counters in one cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyscallDelta {
    /// cgroup v2 id; `None` for the overflow slot (cgroups that found the
    /// table full).
    pub(crate) cgroup_id: Option<u64>,
    /// Syscall number.
    pub(crate) nr: u32,
    /// Calls made.
    pub(crate) calls: u64,
    /// Calls that returned an error.
    pub(crate) errors: u64,
}

/// The user-space side of the syscall slot table.
pub(crate) struct SyscallTable {
    counters: MmapArray<SlotCounters>,
    owners: MmapArray<u64>,
    slots: usize,
    cpus: usize,
    /// Per slot: the owner and the totals at the previous poll.
    prev: Vec<Option<(u64, Box<[u64; WORDS]>)>>,
    /// Slots freed so far.
    pub(crate) evicted: u64,
}

impl SyscallTable {
    /// Maps the tables of a loaded hot path.
    pub(crate) fn new(hotpath: &Hotpath) -> Result<Self, HotpathError> {
        let slots = hotpath.slots as usize;
        Ok(Self {
            counters: hotpath.map_syscall_counters()?,
            owners: hotpath.map_slot_owners()?,
            slots,
            cpus: hotpath.cpus as usize,
            prev: vec![None; slots],
            evicted: 0,
        })
    }

    /// Slots with an owner (plus the overflow slot).
    pub(crate) fn used_slots(&self) -> usize {
        (1..self.slots).filter(|&s| self.owners.get(s) != 0).count()
    }

    /// Totals of `slot` summed over CPUs.
    fn read_slot(&self, slot: usize) -> Box<[u64; WORDS]> {
        let mut sum = Box::new([0u64; WORDS]);
        for cpu in 0..self.cpus {
            let base = self.counters.ptr(cpu * self.slots + slot).cast::<u64>();
            for (i, s) in sum.iter_mut().enumerate() {
                // SAFETY: SlotCounters is WORDS u64s; volatile because the
                // kernel writes concurrently.
                *s += unsafe { std::ptr::read_volatile(base.add(i)) };
            }
        }
        sum
    }

    /// Reads every slot in use. Returns the deltas since the previous poll
    /// and the slots that did not change (candidates for eviction).
    pub(crate) fn poll(&mut self) -> (Vec<SyscallDelta>, Vec<(usize, u64)>) {
        let mut deltas = Vec::new();
        let mut idle = Vec::new();
        for slot in 0..self.slots {
            let owner = self.owners.get(slot);
            if owner == 0 && slot != OVERFLOW_SLOT as usize {
                self.prev[slot] = None;
                continue;
            }
            let now = self.read_slot(slot);
            let before = match &self.prev[slot] {
                Some((o, b)) if *o == owner => Some(b),
                _ => None,
            };
            let mut changed = false;
            for nr in 0..MAX_SYSCALLS as usize {
                let e = nr + MAX_SYSCALLS as usize;
                let calls = now[nr].wrapping_sub(before.map_or(0, |b| b[nr]));
                let errors = now[e].wrapping_sub(before.map_or(0, |b| b[e]));
                if calls != 0 || errors != 0 {
                    changed = true;
                    deltas.push(SyscallDelta {
                        cgroup_id: (slot != OVERFLOW_SLOT as usize).then_some(owner),
                        nr: nr as u32,
                        calls,
                        errors,
                    });
                }
            }
            if !changed && slot != OVERFLOW_SLOT as usize && before.is_some() {
                idle.push((slot, owner));
            }
            self.prev[slot] = Some((owner, now));
        }
        (deltas, idle)
    }

    /// Frees `slot` (owned by the dead cgroup `cgroup_id`): removes the
    /// cgroup from the kernel's table, zeroes the counters, and gives the
    /// slot back to the free queue. Only for cgroups that no longer exist:
    /// a CPU's cache may still name the slot, but no task of a dead cgroup
    /// makes syscalls.
    pub(crate) fn evict(
        &mut self,
        hotpath: &mut Hotpath,
        slot: usize,
        cgroup_id: u64,
    ) -> Result<(), HotpathError> {
        let err = |map| move |source| HotpathError::Map { map, source };
        {
            let map = hotpath
                .ebpf_mut()
                .map_mut(CGROUP_SLOTS_MAP)
                .ok_or(HotpathError::Map {
                    map: CGROUP_SLOTS_MAP,
                    source: aya::maps::MapError::InvalidName {
                        name: CGROUP_SLOTS_MAP.into(),
                    },
                })?;
            let mut table: BpfHashMap<&mut MapData, u64, u32> =
                BpfHashMap::try_from(map).map_err(err(CGROUP_SLOTS_MAP))?;
            let _ = table.remove(&cgroup_id);
        }
        for cpu in 0..self.cpus {
            let base = self.counters.ptr(cpu * self.slots + slot).cast::<u64>();
            for i in 0..WORDS {
                // SAFETY: within this element.
                unsafe { std::ptr::write_volatile(base.add(i), 0) };
            }
        }
        self.owners.set(slot, 0);
        self.prev[slot] = None;
        let map = hotpath
            .ebpf_mut()
            .map_mut(FREE_SLOTS_MAP)
            .ok_or(HotpathError::Map {
                map: FREE_SLOTS_MAP,
                source: aya::maps::MapError::InvalidName {
                    name: FREE_SLOTS_MAP.into(),
                },
            })?;
        let mut free: Queue<&mut MapData, u32> =
            Queue::try_from(map).map_err(err(FREE_SLOTS_MAP))?;
        free.push(slot as u32, 0).map_err(err(FREE_SLOTS_MAP))?;
        self.evicted += 1;
        Ok(())
    }
}

/// The name of syscall number `nr` on this architecture, or `unknown`.
pub(crate) fn syscall_name(nr: u32) -> &'static str {
    syscalls::Sysno::new(nr as usize).map_or("unknown", |s| s.name())
}

#[cfg(test)]
/// The number of the syscall called `name` on this architecture.
pub(crate) fn syscall_number(name: &str) -> Option<u32> {
    name.parse::<syscalls::Sysno>().ok().map(|s| s.id() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let nr = syscall_number("getppid").expect("getppid exists");
        assert_eq!(syscall_name(nr), "getppid");
        assert_eq!(syscall_name(100_000), "unknown");
    }
}
