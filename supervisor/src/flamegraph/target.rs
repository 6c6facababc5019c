//! What to profile: one process, one cgroup (a container or a service), or
//! the whole host; and resolving a container's name or id to its cgroup
//! (with the enrichment code, which knows every runtime's naming).

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use super::FlameError;
use crate::{
    enrich::{EnrichConfig, Resolver, WorkloadFilter},
    host::cgroup,
};

/// Most cgroups looked at when searching for a container.
const MAX_CGROUPS: usize = 100_000;

/// The thing being profiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
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
    pub(crate) fn pid(pid: u32) -> Result<Target, FlameError> {
        if Path::new(&format!("/proc/{pid}")).exists() {
            Ok(Target::Pid(pid))
        } else {
            Err(FlameError::NoTarget(format!("no process with pid {pid}")))
        }
    }

    /// A cgroup given as a path, absolute or relative to the v2 root.
    pub(crate) fn cgroup(path: &Path) -> Result<Target, FlameError> {
        let full = if path.is_absolute() && path.exists() {
            path.to_owned()
        } else {
            cgroup::v2_root().join(path.strip_prefix("/").unwrap_or(path))
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

    /// The cgroup of the container named `want` (as its runtime or the
    /// kubelet names it), or whose id is `want` or starts with it (at least
    /// 4 characters), as `eunomia tools start --container` selects; the
    /// runtimes' files are where `enrich` says.
    pub(crate) fn container(want: &str, enrich: &EnrichConfig) -> Result<Target, FlameError> {
        if want.is_empty() {
            return Err(FlameError::NoTarget("empty container name".into()));
        }
        let root = enrich.cgroup_root.clone().unwrap_or_else(cgroup::v2_root);
        let mut resolver = Resolver::new(enrich);
        let filter = WorkloadFilter {
            container: Some(want.to_owned()),
            ..WorkloadFilter::default()
        };
        // Container id → its outermost cgroup.
        let mut found: std::collections::BTreeMap<String, String> = Default::default();
        for (rel, _) in cgroup::walk(&root, MAX_CGROUPS) {
            let workload = resolver.by_path(&rel);
            if !filter.matches(Some(&workload)) {
                continue;
            }
            let id = workload.container.as_ref().map(|c| c.id.clone());
            let best = found.entry(id.unwrap_or_default()).or_insert(rel.clone());
            if rel.len() < best.len() {
                *best = rel;
            }
        }
        let mut found = found.into_iter();
        match (found.next(), found.next()) {
            (None, _) => Err(FlameError::NoTarget(format!(
                "no running container named {want:?} or with an id starting with it"
            ))),
            (Some((_, path)), None) => Self::cgroup(&root.join(path.trim_start_matches('/'))),
            (Some((a, _)), Some((b, _))) => Err(FlameError::NoTarget(format!(
                "{want:?} names more than one container ({a}, {b}, ...): give more of the id"
            ))),
        }
    }

    /// Short human description, for titles and progress.
    pub(crate) fn describe(&self) -> String {
        match self {
            Target::Pid(pid) => format!("pid {pid} ({})", comm_of(*pid)),
            Target::Cgroup { path, .. } => format!("cgroup {}", path.display()),
            Target::Host => "the whole host".to_owned(),
        }
    }

    /// Whether the target still exists (a zombie process does not count).
    pub(crate) fn alive(&self) -> bool {
        match self {
            Target::Pid(pid) => process_running(*pid),
            Target::Cgroup { path, .. } => path.exists(),
            Target::Host => true,
        }
    }
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
pub(crate) fn comm_of(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_else(|_| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn unknown_container_is_a_target_error() {
        let enrich = EnrichConfig::default();
        for want in ["", "ab", "no-such-container-eunomia-test"] {
            assert!(
                matches!(
                    Target::container(want, &enrich),
                    Err(FlameError::NoTarget(_))
                ),
                "{want}"
            );
        }
    }
}
