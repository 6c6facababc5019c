//! A memory cgroup for one agent under test, so that a memory regression is
//! a failed test (the agent is OOM-killed at the limit, or its peak is
//! over the bound asserted) rather than a host out of memory. cgroup v1's
//! memory controller when mounted (this machine's hybrid layout), else v2.
//! The cgroup is removed when dropped (after its processes are gone).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

/// One memory cgroup.
pub struct MemCgroup {
    dir: PathBuf,
    v2: bool,
}

impl MemCgroup {
    /// A fresh cgroup named `name` (made unique per test process) limited
    /// to `limit` bytes.
    pub fn new(name: &str, limit: u64) -> MemCgroup {
        let unique = format!("eunomia-test-{name}-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
        let (dir, v2) = if v1 {
            (Path::new("/sys/fs/cgroup/memory").join(&unique), false)
        } else {
            let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
                .into_iter()
                .find(|r| Path::new(r).join("cgroup.controllers").exists())
                .expect("a cgroup v1 memory or v2 hierarchy");
            (Path::new(root).join(&unique), true)
        };
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let cg = MemCgroup { dir, v2 };
        let file = if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        cg.write(file, &limit.to_string());
        if !v2 {
            // No swap to hide growth in (when the kernel accounts swap).
            let _ = std::fs::write(
                cg.dir.join("memory.memsw.limit_in_bytes"),
                limit.to_string(),
            );
        }
        cg
    }

    fn write(&self, file: &str, value: &str) {
        std::fs::write(self.dir.join(file), value)
            .unwrap_or_else(|e| panic!("write {value} to {}/{file}: {e}", self.dir.display()));
    }

    fn read_u64(&self, file: &str) -> Option<u64> {
        std::fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Makes `cmd` start inside the cgroup (it joins before exec, so all it
    /// spawns is inside too).
    pub fn enter(&self, cmd: &mut Command) {
        use std::os::unix::ffi::OsStrExt as _;
        use std::os::unix::process::CommandExt as _;
        let procs = std::ffi::CString::new(self.dir.join("cgroup.procs").as_os_str().as_bytes())
            .expect("no NUL in a cgroup path");
        // SAFETY: only open/write/close (async-signal-safe, no allocation)
        // between fork and exec; `procs` outlives the closure's calls.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if n != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// The highest memory use so far (v1 `max_usage_in_bytes`, v2
    /// `memory.peak`, else the current use), in bytes.
    pub fn peak(&self) -> u64 {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        self.read_u64(file)
            .or_else(|| {
                self.read_u64(if self.v2 {
                    "memory.current"
                } else {
                    "memory.usage_in_bytes"
                })
            })
            .unwrap_or(0)
    }

    /// Times the kernel's OOM killer acted in the cgroup.
    pub fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for MemCgroup {
    /// Kills what the test left in the cgroup (all of it started by the
    /// test: the agent and its tools, also when the test failed), then
    /// removes it.
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Megabytes, for messages.
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
