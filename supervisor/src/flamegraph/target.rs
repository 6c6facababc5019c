//! What to profile: one process, one cgroup (a container or a service), or
//! the whole host; and resolving a container id to its cgroup.

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use super::FlameError;

/// The thing being profiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One process (all its threads).
    Pid(u32),
    /// Every process in one cgroup v2 directory.
    Cgroup {
        /// The directory.
        path: PathBuf,
        /// Its cgroup id (the directory's inode number).
        id: u64,
    },
    /// Every process on the host.
    Host,
}

impl Target {
    /// A process that must exist now.
    pub fn pid(pid: u32) -> Result<Target, FlameError> {
        if Path::new(&format!("/proc/{pid}")).exists() {
            Ok(Target::Pid(pid))
        } else {
            Err(FlameError::NoTarget(format!("no process with pid {pid}")))
        }
    }

    /// A cgroup given as a path, absolute or relative to the v2 root.
    pub fn cgroup(path: &Path) -> Result<Target, FlameError> {
        let full = if path.is_absolute() && path.exists() {
            path.to_owned()
        } else {
            cgroup2_root().join(path.strip_prefix("/").unwrap_or(path))
        };
        let meta = fs::metadata(&full)
            .map_err(|e| FlameError::NoTarget(format!("cgroup {}: {e}", full.display())))?;
        if !meta.is_dir() {
            return Err(FlameError::NoTarget(format!(
                "{} is not a cgroup directory",
                full.display()
            )));
        }
        Ok(Target::Cgroup {
            id: meta.ino(),
            path: full,
        })
    }

    /// The cgroup of the container whose id starts with `id` (at least 4
    /// characters), found by its runtime's naming in the v2 hierarchy.
    pub fn container(id: &str) -> Result<Target, FlameError> {
        if id.len() < 4 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(FlameError::NoTarget(format!(
                "container id {id:?}: expected at least 4 hex digits"
            )));
        }
        let found = find_dir(&cgroup2_root(), &|name| container_dir_matches(name, id), 12)
            .ok_or_else(|| FlameError::NoTarget(format!("no cgroup for container {id}")))?;
        Self::cgroup(&found)
    }

    /// Short human description, for titles and progress.
    pub fn describe(&self) -> String {
        match self {
            Target::Pid(pid) => format!("pid {pid} ({})", comm_of(*pid)),
            Target::Cgroup { path, .. } => format!("cgroup {}", path.display()),
            Target::Host => "the whole host".to_owned(),
        }
    }

    /// Whether the target still exists (a zombie process does not count).
    pub fn alive(&self) -> bool {
        match self {
            Target::Pid(pid) => process_running(*pid),
            Target::Cgroup { path, .. } => path.exists(),
            Target::Host => true,
        }
    }
}

/// Whether a cgroup directory name is that of container `id` under one of
/// the runtimes' naming schemes (`docker-<id>.scope`, `cri-containerd-<id>.scope`,
/// `crio-<id>.scope`, `libpod-<id>.scope`, or a bare `<id>` directory).
fn container_dir_matches(name: &str, id: &str) -> bool {
    let base = name.strip_suffix(".scope").unwrap_or(name);
    let bare = base.rsplit('-').next().unwrap_or(base);
    bare.len() >= 12 && bare.starts_with(id)
}

/// Depth-first search for a directory whose name satisfies `pred`.
fn find_dir(dir: &Path, pred: &dyn Fn(&str) -> bool, depth: usize) -> Option<PathBuf> {
    if depth == 0 {
        return None;
    }
    for entry in fs::read_dir(dir).ok()?.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        if entry.file_name().to_str().is_some_and(pred) {
            return Some(path);
        }
        if let Some(found) = find_dir(&path, pred, depth - 1) {
            return Some(found);
        }
    }
    None
}

/// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup/unified` on
/// hybrid hosts, `/sys/fs/cgroup` on pure v2 hosts.
pub fn cgroup2_root() -> PathBuf {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, mnt, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(mnt))
        })
        .next()
        .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"))
}

/// Whether `pid` exists and has not exited (state neither Z nor X in
/// /proc/PID/stat).
fn process_running(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// The command name of a process, or `?`.
pub fn comm_of(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_else(|_| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_of_each_runtime_match() {
        let id = "0123456789abcdef0123";
        for name in [
            "docker-0123456789abcdef0123.scope",
            "cri-containerd-0123456789abcdef0123.scope",
            "crio-0123456789abcdef0123.scope",
            "libpod-0123456789abcdef0123.scope",
            "0123456789abcdef0123",
        ] {
            assert!(container_dir_matches(name, &id[..8]), "{name}");
        }
        assert!(!container_dir_matches(
            "docker-ffff456789abcdef0123.scope",
            "0123"
        ));
        assert!(!container_dir_matches("user.slice", "0123"));
    }

    #[test]
    fn missing_pid_is_a_target_error() {
        assert!(matches!(
            Target::pid(u32::MAX - 1),
            Err(FlameError::NoTarget(_))
        ));
        assert!(Target::pid(std::process::id()).is_ok());
        assert!(Target::Pid(std::process::id()).alive());
    }

    #[test]
    fn short_container_id_is_rejected() {
        assert!(matches!(
            Target::container("ab"),
            Err(FlameError::NoTarget(_))
        ));
    }
}
