//! Per-syscall counters: reads the kernel's per-CPU array of `sys_enter`
//! counts, sums the CPUs, and turns successive reads into per-interval deltas.

use aya::maps::{MapData, PerCpuArray};
use hotpath_common::{MAX_SYSCALLS, SYSCALL_COUNTS_MAP};

use super::{Hotpath, HotpathError};

/// Syscall counts summed over CPUs, indexed by syscall number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallCounts(pub Vec<u64>);

impl SyscallCounts {
    /// The count of one syscall number (0 when out of range).
    pub fn get(&self, nr: u32) -> u64 {
        self.0.get(nr as usize).copied().unwrap_or(0)
    }

    /// All syscalls together.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// What happened between `earlier` and `self` (counters only grow; a
    /// counter that went down is treated as reset).
    pub fn delta_since(&self, earlier: &SyscallCounts) -> SyscallCounts {
        let delta = self
            .0
            .iter()
            .enumerate()
            .map(|(nr, &now)| {
                let before = earlier.get(nr as u32);
                if now >= before { now - before } else { now }
            })
            .collect();
        SyscallCounts(delta)
    }

    /// The `n` most frequent syscalls as (name, count), largest first.
    pub fn top(&self, n: usize) -> Vec<(&'static str, u64)> {
        let mut nonzero: Vec<(u32, u64)> = (0..self.0.len() as u32)
            .map(|nr| (nr, self.get(nr)))
            .filter(|&(_, c)| c > 0)
            .collect();
        nonzero.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        nonzero
            .into_iter()
            .take(n)
            .map(|(nr, c)| (syscall_name(nr), c))
            .collect()
    }
}

/// The name of syscall number `nr` on this architecture, or `unknown`.
pub fn syscall_name(nr: u32) -> &'static str {
    syscalls::Sysno::new(nr as usize).map_or("unknown", |s| s.name())
}

/// The number of the syscall called `name` on this architecture.
pub fn syscall_number(name: &str) -> Option<u32> {
    name.parse::<syscalls::Sysno>().ok().map(|s| s.id() as u32)
}

/// Reads the kernel's per-syscall counters.
pub struct SyscallReader<'a> {
    map: PerCpuArray<&'a MapData, u64>,
}

impl<'a> SyscallReader<'a> {
    /// Opens the counters map of a loaded hot path.
    pub fn new(hotpath: &'a Hotpath) -> Result<Self, HotpathError> {
        let err = |source| HotpathError::Map {
            map: SYSCALL_COUNTS_MAP,
            source,
        };
        let map = hotpath.ebpf().map(SYSCALL_COUNTS_MAP).ok_or(err(
            aya::maps::MapError::InvalidName {
                name: SYSCALL_COUNTS_MAP.into(),
            },
        ))?;
        Ok(Self {
            map: PerCpuArray::try_from(map).map_err(err)?,
        })
    }

    /// The current totals, summed over CPUs.
    pub fn read(&self) -> Result<SyscallCounts, HotpathError> {
        let counts = (0..MAX_SYSCALLS)
            .map(|nr| {
                self.map
                    .get(&nr, 0)
                    .map(|per_cpu| per_cpu.iter().sum())
                    .map_err(|source| HotpathError::Map {
                        map: SYSCALL_COUNTS_MAP,
                        source,
                    })
            })
            .collect::<Result<Vec<u64>, _>>()?;
        Ok(SyscallCounts(counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_and_top() {
        let before = SyscallCounts(vec![1, 10, 0, 5]);
        let after = SyscallCounts(vec![3, 10, 7, 2]);
        let d = after.delta_since(&before);
        assert_eq!(d.0, vec![2, 0, 7, 2]);
        assert_eq!(d.total(), 11);
        assert_eq!(d.top(2), vec![(syscall_name(2), 7), (syscall_name(0), 2)]);
    }

    #[test]
    fn names_round_trip() {
        let nr = syscall_number("getppid").expect("getppid exists");
        assert_eq!(syscall_name(nr), "getppid");
        assert_eq!(syscall_name(100_000), "unknown");
    }
}
