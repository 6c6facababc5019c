//! Reads one cgroup's resource usage from cgroupfs: the v2 file where the v2
//! hierarchy has it, else the v1 controller's file at the same path.
//!
//! On hybrid hosts (like the one eunomia is built on) the v2 hierarchy
//! carries no controllers: only `cpu.stat`'s usage exists there, and memory,
//! pids and I/O are in the v1 hierarchies, where the runtimes create the same
//! path in every hierarchy.

use std::path::{Path, PathBuf};

use crate::host::cgroup::CgroupMounts;

/// v1 reports "no limit" as a page-aligned `i64::MAX`; anything this large
/// is treated as unlimited.
const V1_UNLIMITED: u64 = 1 << 62;

/// One cgroup's usage; `None` where neither hierarchy has the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// CPU time used, in nanoseconds (cumulative).
    pub(crate) cpu_ns: Option<u64>,
    /// Memory in use, in bytes.
    pub memory_bytes: Option<u64>,
    /// The memory limit in bytes; `None` when unlimited.
    pub(crate) memory_limit_bytes: Option<u64>,
    /// Processes killed by the OOM killer in this cgroup (cumulative).
    pub(crate) oom_kills: Option<u64>,
    /// Bytes read from block devices (cumulative).
    pub(crate) io_read_bytes: Option<u64>,
    /// Bytes written to block devices (cumulative).
    pub(crate) io_write_bytes: Option<u64>,
    /// Tasks in the cgroup.
    pub(crate) pids: Option<u64>,
}

/// Reads [`CgroupStats`] for paths relative to the hierarchies' roots.
#[derive(Debug, Clone, Default)]
pub struct StatsReader {
    v2: Option<PathBuf>,
    cpuacct: Option<PathBuf>,
    memory: Option<PathBuf>,
    blkio: Option<PathBuf>,
    pids: Option<PathBuf>,
}

impl StatsReader {
    /// A reader for the hierarchies in `mounts`.
    pub fn new(mounts: &CgroupMounts) -> StatsReader {
        let v1 = |c: &str| mounts.v1_mount(c).map(Path::to_owned);
        StatsReader {
            v2: mounts.v2.clone(),
            cpuacct: v1("cpuacct"),
            memory: v1("memory"),
            blkio: v1("blkio"),
            pids: v1("pids"),
        }
    }

    /// Everything readable about the cgroup at `path`.
    pub fn read(&self, path: &str) -> CgroupStats {
        let v2 = |file: &str| read_in(self.v2.as_deref(), path, file);
        let v1 = |root: &Option<PathBuf>, file: &str| read_in(root.as_deref(), path, file);
        let (io_read_bytes, io_write_bytes) = match v2("io.stat") {
            Some(text) => sum_io_v2(&text),
            None => v1(&self.blkio, "blkio.throttle.io_service_bytes_recursive")
                .map_or((None, None), |t| sum_io_v1(&t)),
        };
        CgroupStats {
            cpu_ns: v2("cpu.stat")
                .and_then(|t| keyed(&t, "usage_usec"))
                .map(|us| us.saturating_mul(1000))
                .or_else(|| v1(&self.cpuacct, "cpuacct.usage").and_then(|t| number(&t))),
            memory_bytes: v2("memory.current")
                .or_else(|| v1(&self.memory, "memory.usage_in_bytes"))
                .and_then(|t| number(&t)),
            memory_limit_bytes: match v2("memory.max") {
                Some(t) => number(&t),
                None => v1(&self.memory, "memory.limit_in_bytes")
                    .and_then(|t| number(&t))
                    .filter(|&n| n < V1_UNLIMITED),
            },
            oom_kills: v2("memory.events")
                .or_else(|| v1(&self.memory, "memory.oom_control"))
                .and_then(|t| keyed(&t, "oom_kill")),
            io_read_bytes,
            io_write_bytes,
            pids: v2("pids.current")
                .or_else(|| v1(&self.pids, "pids.current"))
                .and_then(|t| number(&t)),
        }
    }
}

/// The text of `root/path/file`, if the hierarchy is mounted and has it.
fn read_in(root: Option<&Path>, path: &str, file: &str) -> Option<String> {
    let dir = root?.join(path.trim_start_matches('/'));
    std::fs::read_to_string(dir.join(file)).ok()
}

/// A file holding one number (`max` and anything else is `None`).
fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`key value` per line).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Sums `rbytes=` and `wbytes=` over the devices of a v2 `io.stat`.
fn sum_io_v2(text: &str) -> (Option<u64>, Option<u64>) {
    let mut read = 0u64;
    let mut write = 0u64;
    for field in text.split_whitespace() {
        if let Some(v) = field.strip_prefix("rbytes=") {
            read += v.parse::<u64>().unwrap_or(0);
        } else if let Some(v) = field.strip_prefix("wbytes=") {
            write += v.parse::<u64>().unwrap_or(0);
        }
    }
    (Some(read), Some(write))
}

/// Sums the `MAJ:MIN Read N` and `MAJ:MIN Write N` lines of a v1
/// `blkio.*io_service_bytes*` file.
fn sum_io_v1(text: &str) -> (Option<u64>, Option<u64>) {
    let mut read = 0u64;
    let mut write = 0u64;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(_dev), Some(op), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let n: u64 = n.parse().unwrap_or(0);
        match op {
            "Read" => read += n,
            "Write" => write += n,
            _ => {}
        }
    }
    (Some(read), Some(write))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_and_numbers() {
        let cpu = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(keyed(cpu, "usage_usec"), Some(1500));
        assert_eq!(keyed(cpu, "nope"), None);
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(oom, "oom_kill"), Some(3));
        assert_eq!(number("max\n"), None);
        assert_eq!(number("4096\n"), Some(4096));
    }

    #[test]
    fn io_sums() {
        let v2 = "8:0 rbytes=100 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1\n";
        assert_eq!(sum_io_v2(v2), (Some(101), Some(22)));
        let v1 = "8:0 Read 100\n8:0 Write 20\n8:0 Sync 0\n8:0 Total 120\nTotal 120\n";
        assert_eq!(sum_io_v1(v1), (Some(100), Some(20)));
    }

    #[test]
    fn own_cgroup_reads_something() {
        let reader = StatsReader::new(&CgroupMounts::detect());
        // The root cgroup of any hierarchy: nothing may panic.
        let _ = reader.read("/");
    }
}
