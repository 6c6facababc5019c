//! What the kernel and the host offer, asked the same way by every part
//! that needs it (the hot path, the tools' availability check, the flame
//! graphs, enrichment, the sinks):
//!
//! - [`btf`]: the kernel's BTF (struct member offsets, function ids).
//! - [`kernel`]: a lazily read view of the running kernel (tracefs, kernel
//!   symbols, kprobes, fentry, configuration).
//! - [`kconfig`]: the kernel's build configuration.
//! - [`tracefs`]: tracefs and tracepoint record layouts.
//! - [`cgroup`]: the cgroup hierarchies, v2 ids, `/proc/PID/cgroup`.
//! - [`containers`]: the container runtimes' cgroup names and files.
//! - [`proc`] reads `/proc/PID/status`.
//! - here: the host's name and id, the kernel's monotonic clock.

pub(crate) mod btf;
pub mod cgroup;
pub(crate) mod containers;
pub(crate) mod kconfig;
pub(crate) mod kernel;
pub(crate) mod proc;
pub(crate) mod tracefs;

/// The host name (the UTS namespace's node name); `unknown` if it cannot be
/// read.
pub(crate) fn hostname() -> String {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| u.nodename().to_str().map(str::to_owned))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The host's id (`/etc/machine-id`, else D-Bus' copy), if it has one.
pub(crate) fn machine_id() -> Option<String> {
    read_trimmed("/etc/machine-id").or_else(|| read_trimmed("/var/lib/dbus/machine-id"))
}

/// Now, in ns since the Unix epoch (0 before it).
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `CLOCK_MONOTONIC` in ns, the clock of `bpf_ktime_get_ns`.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into ts.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn read_trimmed(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_facts() {
        assert!(!super::hostname().is_empty());
        let a = super::monotonic_ns();
        assert!(super::monotonic_ns() >= a && a > 0);
    }
}
