//! Cgroup v2 ids ↔ cgroup paths.
//!
//! A cgroup's v2 id (what `bpf_get_current_cgroup_id()` returns) is the inode
//! number of its directory in the v2 hierarchy. Going from a path to an id is
//! a `stat`. Going back uses the kernel's file handles: a cgroupfs handle is
//! the 8-byte id, so `open_by_handle_at` opens any live cgroup directly and
//! fails with `ESTALE` for one that is gone, which always follows changes
//! without walking the tree. Where handles are refused (no
//! `CAP_DAC_READ_SEARCH`), the tree is walked once and walked again on a miss,
//! at most once a second.

use std::{
    collections::HashMap,
    fs::File,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::fs::MetadataExt,
    },
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use crate::host::cgroup::{WALK_LIMIT, walk};

/// Kernfs' file handle type (`FILEID_KERNFS`).
const FILEID_KERNFS: i32 = 0xfe;
/// At most this often is the tree walked again to find an unknown id.
const REWALK_EVERY: Duration = Duration::from_secs(1);

/// What an id lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdLookup {
    /// The cgroup exists at this path (relative to the v2 root, starting `/`).
    Found(Arc<str>),
    /// No such cgroup (any more).
    Gone,
}

/// The v2 hierarchy, opened for id lookups.
#[derive(Debug)]
pub(crate) struct V2Hierarchy {
    mount: PathBuf,
    root: File,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Handles,
    Walk(WalkIndex),
}

#[derive(Debug, Default)]
struct WalkIndex {
    paths: HashMap<u64, Arc<str>>,
    walked_at: Option<Instant>,
}

impl V2Hierarchy {
    /// Opens the v2 hierarchy mounted at `mount`.
    pub(crate) fn open(mount: &Path) -> std::io::Result<V2Hierarchy> {
        let root = File::open(mount)?;
        let mut me = V2Hierarchy {
            mount: mount.to_owned(),
            root,
            mode: Mode::Handles,
        };
        // Probe with the root cgroup's own id: refusals show up at once.
        let root_id = std::fs::metadata(mount)?.ino();
        if let Err(err) = me.open_by_id(root_id) {
            tracing::info!(
                "cgroup file handles unavailable ({err}); walking {} instead",
                mount.display()
            );
            me.mode = Mode::Walk(WalkIndex::default());
        }
        Ok(me)
    }

    /// The absolute directory of a cgroup path relative to the root.
    pub(crate) fn dir_of(&self, path: &str) -> PathBuf {
        self.mount.join(path.trim_start_matches('/'))
    }

    /// The id of the cgroup at `path` (relative to the root), if it exists.
    pub(crate) fn id_of(&self, path: &str) -> Option<u64> {
        std::fs::metadata(self.dir_of(path)).ok().map(|m| m.ino())
    }

    /// The path of the cgroup with id `id`.
    pub(crate) fn path_of(&mut self, id: u64) -> IdLookup {
        if let Mode::Walk(index) = &mut self.mode {
            return index.lookup(&self.mount, id);
        }
        match self.open_by_id(id) {
            Ok(dir) => self.path_of_fd(&dir),
            Err(_) => IdLookup::Gone,
        }
    }

    /// Opens the cgroup directory with id `id` through its file handle.
    fn open_by_id(&self, id: u64) -> std::io::Result<OwnedFd> {
        #[repr(C)]
        struct KernfsHandle {
            handle_bytes: u32,
            handle_type: i32,
            id: u64,
        }
        let mut handle = KernfsHandle {
            handle_bytes: 8,
            handle_type: FILEID_KERNFS,
            id,
        };
        // SAFETY: `handle` is a valid `struct file_handle` with 8 bytes of
        // payload that outlives the call; the kernel only reads it.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_by_handle_at,
                self.root.as_raw_fd(),
                &mut handle as *mut KernfsHandle,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the syscall returned a new descriptor that we now own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// The path an open cgroup directory has, via `/proc/self/fd`.
    fn path_of_fd(&self, dir: &OwnedFd) -> IdLookup {
        let link = format!("/proc/self/fd/{}", dir.as_raw_fd());
        let Ok(target) = std::fs::read_link(link) else {
            return IdLookup::Gone;
        };
        let target = target.to_string_lossy();
        if target.ends_with(" (deleted)") {
            return IdLookup::Gone;
        }
        match relative_to(&target, &self.mount.to_string_lossy()) {
            Some(rel) => IdLookup::Found(rel.into()),
            None => IdLookup::Gone,
        }
    }
}

impl WalkIndex {
    fn lookup(&mut self, mount: &Path, id: u64) -> IdLookup {
        if let Some(path) = self.paths.get(&id)
            && std::fs::metadata(mount.join(path.trim_start_matches('/')))
                .is_ok_and(|m| m.ino() == id)
        {
            return IdLookup::Found(path.clone());
        }
        if self.walked_at.is_none_or(|t| t.elapsed() >= REWALK_EVERY) {
            self.paths = walk(mount, WALK_LIMIT)
                .into_iter()
                .map(|(path, id)| (id, Arc::from(path)))
                .collect();
            self.walked_at = Some(Instant::now());
        }
        self.paths
            .get(&id)
            .map_or(IdLookup::Gone, |p| IdLookup::Found(p.clone()))
    }
}

/// `target` relative to `mount` as `/a/b` (`/` for the root itself).
fn relative_to(target: &str, mount: &str) -> Option<String> {
    let rest = target.strip_prefix(mount.trim_end_matches('/'))?;
    match rest {
        "" => Some("/".to_owned()),
        r if r.starts_with('/') => Some(r.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to("/sys/fs/cgroup/unified/a/b", "/sys/fs/cgroup/unified").as_deref(),
            Some("/a/b")
        );
        assert_eq!(
            relative_to("/sys/fs/cgroup/unified", "/sys/fs/cgroup/unified/").as_deref(),
            Some("/")
        );
        assert_eq!(
            relative_to("/sys/fs/cgroup/unifiedx/a", "/sys/fs/cgroup/unified"),
            None
        );
    }
}
