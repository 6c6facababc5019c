//! The hot path's maps as its readers take them: ring buffers handed to
//! their sources once, mmap'd counter tables, the pid → cgroup handle and
//! the programs' recursion misses.

use std::{
    os::fd::{AsFd as _, AsRawFd as _},
    sync::{Arc, atomic::AtomicBool},
};

use aya::maps::{Array, MapData, RingBuf};
use hotpath_common::http::{
    HTTP_COUNTERS_MAP, HTTP_EVENTS_MAP, HTTP_PAUSED_MAP, HTTP_SERIES_GEN_MAP, HTTP_SERIES_MAP,
    HttpSeries, HttpSeriesKey,
};
use hotpath_common::{
    COUNTERS_LEN, COUNTERS_MAP, EXEC_EVENTS_MAP, MOUNT_EVENTS_MAP, SLOT_OWNERS_MAP, SYS_EXIT_PROG,
    SYSCALL_COUNTERS_MAP, SlotCounters,
};

use super::loader::{Hotpath, HotpathError, Probe};
use super::{mmap::MmapArray, pids::PidCgroups};

/// The HTTP capture's maps, handed to the HTTP source.
pub(crate) struct HttpMaps {
    /// Request records.
    pub(crate) ring: RingBuf<MapData>,
    /// Kernel drop counters, indexed by `hotpath_common::http::HttpDrop`.
    pub(crate) counters: Array<MapData, u64>,
    /// The pause switch (one u32: 1 paused).
    pub(crate) paused: Array<MapData, u32>,
    /// The RED histograms counted in the kernel.
    pub(crate) series: aya::maps::HashMap<MapData, HttpSeriesKey, HttpSeries>,
    /// The generation the kernel counts into (one u32).
    pub(crate) series_gen: Array<MapData, u32>,
    /// Whether the switch is on, shared with the poller: syscall counting
    /// may be sampled only while the capture is paused.
    pub(crate) paused_flag: Arc<AtomicBool>,
}

impl Hotpath {
    /// The exec events' ring buffer, taken once (None when the exec probe
    /// is not attached).
    pub(crate) fn take_exec_events(&mut self) -> Option<aya::maps::RingBuf<aya::maps::MapData>> {
        if !self.attached.iter().any(|(_, p)| *p == Probe::Execs) {
            return None;
        }
        let map = self.ebpf.take_map(EXEC_EVENTS_MAP)?;
        aya::maps::RingBuf::try_from(map).ok()
    }

    /// The mount events' ring buffer, taken once (None when mounts are not
    /// reported or `sys_exit` is not attached).
    pub(crate) fn take_mount_events(&mut self, enabled: bool) -> Option<RingBuf<MapData>> {
        if !enabled || !self.attached.iter().any(|(n, _)| *n == SYS_EXIT_PROG) {
            return None;
        }
        RingBuf::try_from(self.ebpf.take_map(MOUNT_EVENTS_MAP)?).ok()
    }

    /// The HTTP capture's ring buffer, counters and pause switch, once (None when the
    /// capture is off or `sys_exit` is not attached).
    pub(crate) fn take_http(&mut self, enabled: bool) -> Result<Option<HttpMaps>, HotpathError> {
        if !enabled || !self.attached.iter().any(|(n, _)| *n == SYS_EXIT_PROG) {
            return Ok(None);
        }
        Ok(Some(HttpMaps {
            ring: self.take_typed(HTTP_EVENTS_MAP)?,
            counters: self.take_typed(HTTP_COUNTERS_MAP)?,
            paused: self.take_typed(HTTP_PAUSED_MAP)?,
            series: self.take_typed(HTTP_SERIES_MAP)?,
            series_gen: self.take_typed(HTTP_SERIES_GEN_MAP)?,
            paused_flag: Arc::default(),
        }))
    }

    /// The map `name`, taken once, as its typed handle.
    fn take_typed<T>(&mut self, name: &'static str) -> Result<T, HotpathError>
    where
        T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.take_map(name).ok_or_else(|| missing(name))?;
        T::try_from(map).map_err(map_err(name))
    }
    /// A cloneable handle on the pid → cgroup map (None when the pid probe is off).
    pub fn pid_cgroups(&self) -> Option<PidCgroups> {
        self.pids.clone()
    }

    /// The cgroup v2 id of `pid`: from the kernel's pid map (which keeps
    /// exited processes for a grace period), else from /proc.
    pub fn cgroup_of_pid(&self, pid: u32) -> Option<u64> {
        match &self.pids {
            Some(p) => p.cgroup_of_pid(pid),
            None => crate::host::cgroup::id_of_pid(pid),
        }
    }

    /// mmap of the syscall counters (`cpus * slots` [`SlotCounters`]).
    pub(crate) fn map_syscall_counters(&self) -> Result<MmapArray<SlotCounters>, HotpathError> {
        self.mmap(SYSCALL_COUNTERS_MAP, (self.cpus * self.slots) as usize)
    }

    /// mmap of slot → cgroup id.
    pub(crate) fn map_slot_owners(&self) -> Result<MmapArray<u64>, HotpathError> {
        self.mmap(SLOT_OWNERS_MAP, self.slots as usize)
    }

    /// mmap of the self-observability counters.
    pub(crate) fn map_counters(&self) -> Result<MmapArray<u64>, HotpathError> {
        self.mmap(COUNTERS_MAP, COUNTERS_LEN as usize)
    }

    fn mmap<T: Copy>(&self, name: &'static str, len: usize) -> Result<MmapArray<T>, HotpathError> {
        let map = self.ebpf.map(name).ok_or_else(|| missing(name))?;
        let data: &MapData = match map {
            aya::maps::Map::Array(d) => d,
            _ => {
                return Err(HotpathError::Map {
                    map: name,
                    source: aya::maps::MapError::InvalidName { name: name.into() },
                });
            }
        };
        MmapArray::new(data.fd().as_fd(), len)
            .map_err(|source| HotpathError::Mmap { map: name, source })
    }

    /// The recursion misses of every attached program (the kernel skipped
    /// the program because it was already running on that CPU, e.g. when
    /// a task was preempted inside it), from `/proc/self/fdinfo`.
    pub(crate) fn recursion_misses(&self) -> Vec<(&'static str, u64)> {
        self.attached
            .iter()
            .filter_map(|&(name, _)| {
                let fd = self.ebpf.program(name)?.fd().ok()?.as_fd().as_raw_fd();
                let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
                let misses = info
                    .lines()
                    .find_map(|l| l.strip_prefix("recursion_misses:"))?
                    .trim()
                    .parse()
                    .ok()?;
                Some((name, misses))
            })
            .collect()
    }
}

/// The error for a map the object lacks.
pub(super) fn missing(map: &'static str) -> HotpathError {
    HotpathError::Map {
        map,
        source: aya::maps::MapError::InvalidName { name: map.into() },
    }
}

/// Wraps a map error with the map's name.
pub(super) fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> HotpathError {
    move |source| HotpathError::Map { map, source }
}
