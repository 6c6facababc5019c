//! The cgroup hierarchies: where they are mounted ([`mounts`]), which
//! cgroups a process is in ([`procfs`]), the one answer to "where is the v2
//! hierarchy" ([`v2_root`]), v2 ids (a directory's inode number) and walks
//! of the tree.

use std::{
    collections::HashSet,
    os::unix::fs::{DirEntryExt as _, MetadataExt as _},
    path::{Path, PathBuf},
    sync::OnceLock,
};

pub(crate) mod mounts;
pub(crate) mod procfs;

pub use mounts::CgroupMounts;
pub(crate) use procfs::ProcCgroups;

/// A walk stops after this many cgroups.
pub(crate) const WALK_LIMIT: usize = 1 << 20;

/// Where the v2 hierarchy is assumed to be when no `cgroup2` mount is found.
const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// Where the cgroup v2 hierarchy is mounted (the first `cgroup2` mount of
/// this mount namespace): `/sys/fs/cgroup/unified` on hybrid hosts,
/// `/sys/fs/cgroup` on pure v2 hosts (and when none is mounted). Read once.
pub(crate) fn v2_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        CgroupMounts::detect()
            .v2
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
    })
    .clone()
}

/// The cgroup id of a cgroup v2 directory (its inode number).
pub(crate) fn id_of(dir: &Path) -> Option<u64> {
    std::fs::metadata(dir).ok().map(|m| m.ino())
}

/// The cgroup v2 id of `pid` from `/proc/PID/cgroup` (the `0::PATH` line):
/// the inode number of that directory.
pub(crate) fn id_of_pid(pid: u32) -> Option<u64> {
    let path = ProcCgroups::read(pid)?.v2?;
    id_of(&v2_root().join(path.trim_start_matches('/')))
}

/// The ids of every live cgroup v2 (walks the hierarchy).
pub(crate) fn live_ids() -> HashSet<u64> {
    walk(&v2_root(), usize::MAX)
        .into_iter()
        .map(|(_, id)| id)
        .collect()
}

/// Every cgroup under `root` (inclusive) as (path relative to `root`,
/// inode number), depth first, at most `limit` of them. Cgroups that vanish
/// during the walk are skipped.
pub(crate) fn walk(root: &Path, limit: usize) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(meta) = std::fs::metadata(root) else {
        return out;
    };
    out.push(("/".to_owned(), meta.ino()));
    let mut stack = vec![(root.to_owned(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if out.len() >= limit {
                return out;
            }
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let child = format!("{rel}/{}", entry.file_name().to_string_lossy());
            out.push((child.clone(), entry.ino()));
            stack.push((entry.path(), child));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_resolves_from_proc() {
        let root = v2_root();
        if !root.exists() {
            eprintln!("SKIP: no cgroup v2 hierarchy");
            return;
        }
        let id = id_of_pid(std::process::id());
        assert!(id.is_some());
        assert!(live_ids().contains(&id.unwrap()));
    }

    #[test]
    fn walk_lists_directories_with_inodes() {
        let dir = std::env::temp_dir().join(format!("eunomia-walk-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/file"), b"x").unwrap();
        let found = walk(&dir, 100);
        let _ = std::fs::remove_dir_all(&dir);
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, vec!["/", "/a", "/a/b"]);
        assert_eq!(walk(Path::new("/nonexistent-eunomia"), 10), vec![]);
    }

    #[test]
    fn walk_stops_at_its_limit() {
        let root = v2_root();
        assert!(walk(&root, 1).len() <= 1);
        assert!(walk(Path::new("/no/such/cgroup"), 10).is_empty());
    }
}
