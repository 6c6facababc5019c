//! Real container runtimes for the tests: containerd (with its CRI plugin),
//! dockerd on that containerd, and podman, all with their state under one
//! directory of this test process, started once per test binary and torn
//! down when it exits, also after a failed test (an `atexit` handler), and
//! at the next start when a run was killed (directories of dead test
//! processes). Images are built locally from `busybox-static` (no registry
//! is reachable): `docker import`/`podman import` of a rootfs, and `ctr`
//! runs that rootfs directly.
//!
//! The runtimes need root and the Debian packages `scripts/setup.sh`
//! installs; in CI (`CI=true`) a missing one fails the test instead of
//! skipping it.

#![allow(dead_code)]

pub mod agent;
pub mod cri_pod;

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    thread,
    time::{Duration, Instant},
};

/// The test image every runtime runs.
pub const IMAGE: &str = "eunomia.test/busybox:1";
/// The containerd namespace of the `ctr` containers.
pub const CTR_NAMESPACE: &str = "eunomia-test";
/// Where the runtimes keep their state: one directory per test process.
const BASE_PREFIX: &str = "/tmp/eunomia-rt-";

const BINARIES: &[&str] = &[
    "/usr/bin/containerd",
    "/usr/sbin/dockerd",
    "/usr/bin/docker",
    "/usr/bin/ctr",
    "/usr/bin/podman",
    "/usr/sbin/runc",
    "/bin/busybox",
];

/// The running daemons and where their state is.
pub struct Runtimes {
    /// The state directory of this test process.
    pub base: PathBuf,
    daemons: Mutex<Vec<Child>>,
}

static RUNTIMES: OnceLock<Runtimes> = OnceLock::new();

/// Whether container tests can run here; outside CI a test that cannot
/// prints why and skips, in CI it fails.
pub fn can_run(test: &str) -> bool {
    if !eunomia_tests::kernel_tests_can_run(test) {
        return false;
    }
    let missing: Vec<&str> = BINARIES
        .iter()
        .copied()
        .filter(|b| !Path::new(b).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: missing {missing:?}: run scripts/setup.sh (container tests never skip in CI)"
    );
    eprintln!("SKIP {test}: missing {missing:?} (scripts/setup.sh installs them)");
    false
}

/// The runtimes, started on first use.
pub fn runtimes() -> &'static Runtimes {
    RUNTIMES.get_or_init(Runtimes::start)
}

impl Runtimes {
    fn start() -> Runtimes {
        clean_stale();
        let base = PathBuf::from(format!("{BASE_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        // SAFETY: registers a plain extern "C" function.
        unsafe { libc::atexit(stop_at_exit) };
        let rt = Runtimes {
            base,
            daemons: Mutex::new(Vec::new()),
        };
        // A daemon that fails to start must not outlive the test process.
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.start_containerd();
            rt.start_dockerd();
            rt.build_rootfs();
            rt.import_images();
        }));
        if let Err(panic) = started {
            rt.stop();
            std::panic::resume_unwind(panic);
        }
        rt
    }

    /// containerd's socket.
    pub fn containerd_socket(&self) -> PathBuf {
        self.base.join("containerd/containerd.sock")
    }

    /// containerd's state directory (the task bundles).
    pub fn containerd_state(&self) -> PathBuf {
        self.base.join("containerd/state")
    }

    /// Docker's container directory (`config.v2.json` per container).
    pub fn docker_containers(&self) -> PathBuf {
        self.base.join("docker/root/containers")
    }

    /// Podman's storage root.
    pub fn podman_root(&self) -> PathBuf {
        self.base.join("podman/root")
    }

    /// The busybox rootfs `ctr` runs.
    pub fn rootfs(&self) -> PathBuf {
        self.base.join("rootfs")
    }

    /// The `[enrich]` keys that point the agent at these runtimes' files.
    pub fn enrich_toml(&self) -> String {
        format!(
            "docker_root = \"{}\"\npodman_root = \"{}\"\ncontainerd_state = \"{}\"\n",
            self.docker_containers().display(),
            self.podman_root().display(),
            self.containerd_state().display()
        )
    }

    /// `docker` talking to this test's dockerd.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new("/usr/bin/docker");
        cmd.arg("-H").arg(format!(
            "unix://{}",
            self.base.join("docker/docker.sock").display()
        ));
        cmd
    }

    /// `ctr` on this test's containerd, in [`CTR_NAMESPACE`].
    pub fn ctr(&self) -> Command {
        self.ctr_in(CTR_NAMESPACE)
    }

    /// `ctr` on this test's containerd, in `namespace`.
    pub fn ctr_in(&self, namespace: &str) -> Command {
        let mut cmd = Command::new("/usr/bin/ctr");
        cmd.arg("-a")
            .arg(self.containerd_socket())
            .args(["-n", namespace]);
        cmd
    }

    /// `podman` with its storage here, runc (never crun: it refuses this
    /// hybrid cgroup layout) and the cgroupfs manager.
    pub fn podman(&self) -> Command {
        let p = self.base.join("podman");
        let mut cmd = Command::new("/usr/bin/podman");
        cmd.arg("--root")
            .arg(p.join("root"))
            .arg("--runroot")
            .arg(p.join("run"))
            .arg("--tmpdir")
            .arg(p.join("tmp"))
            .args([
                "--runtime",
                "runc",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ]);
        cmd
    }

    fn start_containerd(&self) {
        let dir = self.base.join("containerd");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[plugins."io.containerd.grpc.v1.cri"]
  # the machine lacks CAP_SYS_RESOURCE
  restrict_oom_score_adj = true
  sandbox_image = "{IMAGE}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "{cni}"
"#,
                root = dir.join("root").display(),
                state = self.containerd_state().display(),
                sock = self.containerd_socket().display(),
                cni = dir.join("cni").display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("/usr/bin/containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        std::fs::write(dir.join("pid"), child.id().to_string()).unwrap();
        self.daemons.lock().unwrap().push(child);
        wait_for(Duration::from_secs(30), "containerd", || {
            self.assert_daemons_alive();
            self.ctr()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    }

    fn start_dockerd(&self) {
        let dir = self.base.join("docker");
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("/usr/sbin/dockerd")
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .arg("--containerd")
            .arg(self.containerd_socket())
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        std::fs::write(dir.join("pid"), child.id().to_string()).unwrap();
        self.daemons.lock().unwrap().push(child);
        wait_for(Duration::from_secs(60), "dockerd", || {
            self.assert_daemons_alive();
            self.docker()
                .arg("info")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    }

    /// Panics with the daemons' last log lines when one has exited.
    fn assert_daemons_alive(&self) {
        let mut daemons = self.daemons.lock().unwrap_or_else(|p| p.into_inner());
        for child in daemons.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let logs = ["containerd/containerd.log", "docker/dockerd.log"]
                    .map(|l| std::fs::read_to_string(self.base.join(l)).unwrap_or_default());
                let tail: Vec<&str> = logs.iter().flat_map(|l| l.lines().rev().take(5)).collect();
                panic!("a container daemon exited ({status}); last log lines: {tail:#?}");
            }
        }
    }

    fn build_rootfs(&self) {
        let bin = self.rootfs().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for dir in ["etc", "tmp", "proc", "sys", "dev"] {
            std::fs::create_dir_all(self.rootfs().join(dir)).unwrap();
        }
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        for applet in ["sh", "sleep", "cat", "nc", "echo", "true", "ls", "mount"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        std::fs::write(self.rootfs().join("etc/hostname"), "eunomia-test\n").unwrap();
    }

    fn import_images(&self) {
        let tar = self.base.join("rootfs.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(self.rootfs())
            .arg("-cf")
            .arg(&tar)
            .arg("."));
        let change = r#"CMD ["/bin/sleep","1000000"]"#;
        run(self
            .docker()
            .args(["import", "--change", change])
            .arg(&tar)
            .arg(IMAGE));
        run(self
            .podman()
            .args(["import", "--change", change])
            .arg(&tar)
            .arg(IMAGE));
        // The CRI plugin's namespace gets the same image (the pod sandbox
        // and the app container run it).
        let saved = self.base.join("image.tar");
        run(self.docker().args(["save", "-o"]).arg(&saved).arg(IMAGE));
        run(self.ctr_in("k8s.io").args(["images", "import"]).arg(&saved));
    }

    /// The CRI socket (containerd's own).
    pub fn cri_socket(&self) -> PathBuf {
        self.containerd_socket()
    }

    /// Every container removed, every daemon stopped, the state removed.
    fn stop(&self) {
        let _ = self
            .docker()
            .args(["rm", "-f", "-v"])
            .args(self.docker_ids())
            .output();
        let _ = self.podman().args(["rm", "-f", "-a"]).output();
        for ns in [CTR_NAMESPACE, "k8s.io"] {
            remove_ctr_containers(self, ns);
        }
        let mut daemons = self.daemons.lock().unwrap_or_else(|p| p.into_inner());
        // dockerd before containerd, each given time to unmount.
        while let Some(mut child) = daemons.pop() {
            terminate(&mut child);
        }
        teardown_dir(&self.base);
    }

    fn docker_ids(&self) -> Vec<String> {
        self.docker()
            .args(["ps", "-aq"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

extern "C" fn stop_at_exit() {
    if let Some(rt) = RUNTIMES.get() {
        rt.stop();
    }
}

fn remove_ctr_containers(rt: &Runtimes, ns: &str) {
    let Ok(out) = rt.ctr_in(ns).args(["containers", "ls", "-q"]).output() else {
        return;
    };
    for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = rt
            .ctr_in(ns)
            .args(["tasks", "kill", "-s", "SIGKILL", id])
            .output();
        thread::sleep(Duration::from_millis(100));
        let _ = rt.ctr_in(ns).args(["tasks", "delete", "-f", id]).output();
        let _ = rt.ctr_in(ns).args(["containers", "delete", id]).output();
    }
}

/// SIGTERM, then SIGKILL after 15 s.
fn terminate(child: &mut Child) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Unmounts what the runtimes left mounted under `dir`, removes it, and
/// removes the empty cgroups of the test's containerd namespace.
fn teardown_dir(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).output();
    }
    let _ = std::fs::remove_dir_all(dir);
    remove_test_pod_cgroups();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let ns = hierarchy.path().join(CTR_NAMESPACE);
        if ns.is_dir() {
            for c in std::fs::read_dir(&ns).into_iter().flatten().flatten() {
                let _ = std::fs::remove_dir(c.path());
            }
            let _ = std::fs::remove_dir(&ns);
        }
    }
}

/// The uid prefix of the test pods, whose empty cgroups are removed.
pub const POD_UID_PREFIX: &str = "eeee0016-";

/// Removes the (empty) cgroups runc left for the test pods:
/// `kubepods/besteffort/pod<uid>` in every hierarchy, and the parents when
/// they are empty.
pub fn remove_test_pod_cgroups() {
    let mut hierarchies: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    hierarchies.push(PathBuf::from("/sys/fs/cgroup"));
    for h in hierarchies {
        let qos = h.join("kubepods/besteffort");
        for pod in std::fs::read_dir(&qos).into_iter().flatten().flatten() {
            let name = pod.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("pod{POD_UID_PREFIX}")) {
                for c in std::fs::read_dir(pod.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let _ = std::fs::remove_dir(c.path());
                }
                let _ = std::fs::remove_dir(pod.path());
            }
        }
        let _ = std::fs::remove_dir(&qos);
        let _ = std::fs::remove_dir(h.join("kubepods"));
    }
}

/// Tears down the state of earlier test processes that were killed before
/// their `atexit` handler ran: their daemons (by their pid files) and dirs.
fn clean_stale() {
    for entry in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&BASE_PREFIX["/tmp/".len()..])
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        for pidfile in ["docker/pid", "containerd/pid"] {
            if let Some(daemon) = std::fs::read_to_string(dir.join(pidfile))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                // SAFETY: as above; the daemon was started by a test run.
                unsafe { libc::kill(daemon, libc::SIGKILL) };
            }
        }
        thread::sleep(Duration::from_millis(300));
        teardown_dir(&dir);
    }
}

/// The Docker image of the demo service (`scripts/demo/demo-svc.rs`).
pub const DEMO_IMAGE: &str = "eunomia.test/demo:1";

/// Builds the demo service static with rustc (std only) and imports it
/// into Docker as [`DEMO_IMAGE`] (`FROM scratch`, the binary its
/// entrypoint), once per test process; returns the binary, which runs on
/// the host too.
pub fn demo_image(rt: &Runtimes) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = rt.base.join("demo");
            std::fs::create_dir_all(dir.join("image")).unwrap();
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo/demo-svc.rs");
            let bin = dir.join("demo-svc");
            run(Command::new("rustc")
                .args([
                    "--edition",
                    "2024",
                    "-O",
                    "-C",
                    "target-feature=+crt-static",
                ])
                .arg(&src)
                .arg("-o")
                .arg(&bin));
            std::fs::copy(&bin, dir.join("image/demo-svc")).unwrap();
            let tar = dir.join("demo.tar");
            run(Command::new("tar")
                .arg("-C")
                .arg(dir.join("image"))
                .arg("-cf")
                .arg(&tar)
                .arg("."));
            run(rt
                .docker()
                .args(["import", "--change", r#"ENTRYPOINT ["/demo-svc"]"#])
                .arg(&tar)
                .arg(DEMO_IMAGE));
            bin
        })
        .clone()
}

/// Runs `cmd`, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes (panics).
pub fn wait_for(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A TCP listener on 127.0.0.1 that accepts and closes connections on a
/// background thread (containers run in the host's network namespace).
pub fn tcp_sink() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(b"ok\n");
        }
    });
    port
}
