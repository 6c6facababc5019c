//! Shared helpers of the `enrich_*` tests: real cgroups named as the
//! runtimes name them, created under one private parent per test and removed
//! again (even when the test fails) by a Drop guard.

#![allow(dead_code)] // each test binary uses a different subset

use std::{
    fs::File,
    os::{fd::AsRawFd, unix::process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use eunomia::host::cgroup::CgroupMounts;

/// The v1 controllers a test cgroup is also created in on hybrid and v1
/// hosts (what the runtimes do there).
const V1_CONTROLLERS: &[&str] = &["memory", "cpuacct", "pids", "blkio"];

/// A 64-digit hex id, unique per call (like a container id).
pub fn container_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let n = N.fetch_add(1, Ordering::Relaxed);
    let pid = u64::from(std::process::id());
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        t,
        pid.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        n ^ 0x5a5a,
        t.rotate_left(17) ^ n
    )
}

/// A pod uid (UUID form), unique per call.
pub fn pod_uid() -> String {
    let h = container_id();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The host's cgroup mounts; panics without a v2 hierarchy.
pub fn mounts() -> CgroupMounts {
    let m = CgroupMounts::detect();
    assert!(m.v2.is_some(), "these tests need the cgroup v2 hierarchy");
    m
}

/// One private tree of test cgroups, in the v2 hierarchy and (optionally)
/// the v1 controllers at the same paths. Dropping it kills every process in
/// it and removes every cgroup it created, deepest first.
pub struct CgroupTree {
    roots: Vec<PathBuf>,
    created: Vec<PathBuf>,
    children: Vec<Child>,
}

impl CgroupTree {
    /// A tree under `/eunomia-test-<name>-<pid>` in the v2 hierarchy only.
    pub fn v2_only(name: &str) -> CgroupTree {
        Self::in_roots(name, vec![mounts().v2.unwrap()])
    }

    /// A tree in the v2 hierarchy and the usual v1 controllers.
    pub fn with_v1(name: &str) -> CgroupTree {
        let m = mounts();
        let mut roots = vec![m.v2.clone().unwrap()];
        roots.extend(
            V1_CONTROLLERS
                .iter()
                .filter_map(|c| m.v1_mount(c).map(Path::to_owned)),
        );
        roots.dedup();
        Self::in_roots(name, roots)
    }

    fn in_roots(name: &str, hierarchy_roots: Vec<PathBuf>) -> CgroupTree {
        let base = format!("eunomia-test-{name}-{}", std::process::id());
        let mut tree = CgroupTree {
            roots: hierarchy_roots.iter().map(|r| r.join(&base)).collect(),
            created: Vec::new(),
            children: Vec::new(),
        };
        for root in tree.roots.clone() {
            tree.mkdir(&root);
        }
        tree
    }

    /// The path of the tree's top relative to the hierarchy root (`/eunomia-test-…`).
    pub fn base(&self) -> String {
        format!("/{}", self.roots[0].file_name().unwrap().to_string_lossy())
    }

    /// Creates `rel` (e.g. `kubepods.slice/…/cri-containerd-<id>.scope`) in
    /// every hierarchy and returns its path relative to the hierarchy root.
    pub fn create(&mut self, rel: &str) -> String {
        for root in self.roots.clone() {
            let mut dir = root.clone();
            for part in rel.split('/').filter(|p| !p.is_empty()) {
                dir.push(part);
                self.mkdir(&dir);
            }
        }
        format!("{}/{}", self.base(), rel.trim_start_matches('/'))
    }

    /// Removes `rel` (a leaf) from every hierarchy now.
    pub fn remove(&mut self, rel: &str) {
        for root in &self.roots {
            let dir = root.join(rel.trim_start_matches('/'));
            rmdir_retrying(&dir);
        }
    }

    /// The directory of `path` (relative to the hierarchy root) in the v2 hierarchy.
    pub fn v2_dir(&self, path: &str) -> PathBuf {
        mounts().v2.unwrap().join(path.trim_start_matches('/'))
    }

    /// The v2 id (inode) of the cgroup at `path`.
    pub fn id_of(&self, path: &str) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(self.v2_dir(path))
            .expect("cgroup exists")
            .ino()
    }

    /// Writes `value` into `file` of the cgroup at `path` in the hierarchy
    /// whose root is `hierarchy` (e.g. a v1 memory limit).
    pub fn write(&self, hierarchy: &Path, path: &str, file: &str, value: &str) {
        let target = hierarchy.join(path.trim_start_matches('/')).join(file);
        std::fs::write(&target, value).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
    }

    /// Spawns `cmd` inside the cgroup at `path` in every hierarchy: the child
    /// joins the cgroups between fork and exec, as runtimes do, so even its
    /// exec is seen there.
    pub fn spawn_in(&mut self, path: &str, cmd: &mut Command) -> u32 {
        let procs: Vec<File> = self
            .hierarchy_roots()
            .iter()
            .map(|root| {
                let file = root.join(path.trim_start_matches('/')).join("cgroup.procs");
                File::options()
                    .write(true)
                    .open(&file)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            })
            .collect();
        let fds: Vec<i32> = procs.iter().map(|f| f.as_raw_fd()).collect();
        // SAFETY: only async-signal-safe calls (write) happen in the child.
        unsafe {
            cmd.pre_exec(move || {
                for fd in &fds {
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.stdin(Stdio::null()).spawn().expect("spawn into cgroup");
        drop(procs);
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Spawns `sleep 600` in the cgroup at `path`.
    pub fn sleeper(&mut self, path: &str) -> u32 {
        self.spawn_in(path, Command::new("sleep").arg("600").stdout(Stdio::null()))
    }

    /// Kills and reaps child `pid`.
    pub fn kill(&mut self, pid: u32) {
        if let Some(i) = self.children.iter().position(|c| c.id() == pid) {
            let mut child = self.children.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for child `pid` to exit by itself (at most `timeout`).
    pub fn wait(&mut self, pid: u32, timeout: Duration) -> Option<std::process::ExitStatus> {
        let i = self.children.iter().position(|c| c.id() == pid)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.children[i].try_wait() {
                // Already reaped by try_wait; the handle is just dropped.
                let _reaped = self.children.remove(i).wait();
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn hierarchy_roots(&self) -> Vec<PathBuf> {
        self.roots
            .iter()
            .map(|r| r.parent().unwrap().to_owned())
            .collect()
    }

    fn mkdir(&mut self, dir: &Path) {
        match std::fs::create_dir(dir) {
            Ok(()) => self.created.push(dir.to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("mkdir {}: {e}", dir.display()),
        }
    }
}

impl Drop for CgroupTree {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deepest first: children were created after their parents.
        for dir in self.created.iter().rev() {
            rmdir_retrying(dir);
        }
    }
}

/// rmdir, retrying while the kernel still counts exiting tasks (EBUSY).
fn rmdir_retrying(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if Instant::now() > deadline => {
                eprintln!("could not remove test cgroup {}: {e}", dir.display());
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `/tmp/eunomia-<name>-<pid>`.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("eunomia-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
