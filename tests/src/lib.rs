//! Helpers shared by the end-to-end tests: finding the built `eunomia`
//! binary, running it as an agent, and deciding whether root-only tests run.

pub mod alertmanager;
pub mod churn;
pub mod faults;
pub mod memcg;
pub mod otlp;
pub mod prom;
pub mod tmux;

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

/// The built `eunomia` binary: `$EUNOMIA_BIN`, or `target/<profile>/eunomia`
/// next to the running test executable.
pub fn eunomia_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("EUNOMIA_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join("eunomia");
    assert!(
        bin.exists(),
        "{} does not exist: build it first (`cargo build -p eunomia`) or set EUNOMIA_BIN",
        bin.display()
    );
    bin
}

/// A `Command` for the built binary. Its control socket (`EUNOMIA_SOCKET`)
/// is private to this test process, so tests never talk to, or collide
/// with, an agent of the host or of another test run; `--socket` still wins.
pub fn eunomia() -> Command {
    let mut cmd = Command::new(eunomia_bin());
    cmd.env("EUNOMIA_SOCKET", test_socket());
    cmd
}

/// The control socket of the agents this test process starts.
pub fn test_socket() -> PathBuf {
    std::env::temp_dir()
        .join(format!("eunomia-tests-{}", std::process::id()))
        .join("eunomia.sock")
}

/// Whether this test can use the kernel (needs root). Outside CI a test that
/// cannot prints why and skips; in CI (`CI=true`) it fails instead.
pub fn kernel_tests_can_run(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: kernel tests need root and must not skip in CI");
    }
    eprintln!("SKIP {test}: needs root to load BPF programs");
    false
}

/// A running `eunomia` process whose stdout and stderr are read line by line
/// on background threads.
pub struct Agent {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// Every stderr line seen so far (for failure messages).
    pub stderr_seen: Vec<String>,
}

impl Agent {
    /// Starts `eunomia ARGS...` with piped output.
    pub fn start(args: &[&str]) -> Agent {
        Self::start_with_env(args, &[])
    }

    /// Starts `eunomia ARGS...` with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut cmd = eunomia();
        cmd.args(args).envs(env.iter().copied());
        Self::spawn(cmd)
    }

    /// Starts `cmd` (made with [`eunomia`]) with piped output.
    pub fn spawn(mut cmd: Command) -> Agent {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn eunomia");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        Agent {
            child,
            stdout,
            stderr,
            stderr_seen: Vec::new(),
        }
    }

    /// The agent's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a stderr line contains `needle`; panics after `timeout`
    /// with everything the agent printed.
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.stderr_seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "agent did not print {needle:?} within {timeout:?}; stderr:\n{}",
            self.stderr_seen.join("\n")
        );
    }

    /// Sends a signal to the agent.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.child.id());
    }

    /// Waits for the agent to exit (at most `timeout`) and returns its exit
    /// code with every stdout line it printed.
    pub fn finish(mut self, timeout: Duration) -> (i32, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("agent did not exit within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stdout: Vec<String> = self.stdout.iter().collect();
        self.stderr_seen.extend(self.stderr.iter());
        let code = status.code().unwrap_or(-1);
        if code != 0 {
            eprintln!("agent stderr:\n{}", self.stderr_seen.join("\n"));
        }
        (code, stdout)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each line read from `r` to the returned channel.
fn lines_of<R: std::io::Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// IDs of the BPF programs that process `pid` holds open, from the
/// `prog_id:` lines of `/proc/PID/fdinfo/*` (Debian's bpftool cannot show pids).
pub fn bpf_programs_of(pid: u32) -> Vec<u64> {
    let dir = format!("/proc/{pid}/fdinfo");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut ids: Vec<u64> = entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("prog_id:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Every loaded BPF program, as bpftool's JSON objects.
pub fn bpf_programs() -> Vec<serde_json::Value> {
    let out = Command::new("bpftool")
        .args(["prog", "list", "-j"])
        .output()
        .expect("run bpftool (installed by scripts/setup.sh)");
    assert!(out.status.success(), "bpftool prog list failed");
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).expect("bpftool JSON")
}

/// Serialises the tests of one test binary that load BPF programs: several
/// agents attached to the same hook at once compete for the 2 CPUs, and a
/// program preempted mid-run makes the kernel skip that program's next runs
/// on the CPU (recursion protection), which would make counts flaky.
pub fn kernel_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Agent {
    /// The next stdout line, waiting at most `timeout`.
    pub fn next_stdout(&mut self, timeout: Duration) -> Option<String> {
        self.stdout.recv_timeout(timeout).ok()
    }

    /// Every stdout line until `done` returns true for the lines so far (or
    /// `timeout` passes); returns all lines read.
    pub fn stdout_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    lines.push(line);
                    if done(&lines) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        lines
    }

    /// Reads stdout until `done` holds for the lines so far (or `timeout`
    /// passes), then stops the agent with SIGTERM: its exit code and every
    /// stdout line. For tests that wait for what they caused rather than
    /// for a fixed `--for`, which a loaded machine can outrun.
    pub fn stop_when(
        mut self,
        timeout: Duration,
        done: impl FnMut(&[String]) -> bool,
    ) -> (i32, Vec<String>) {
        let mut lines = self.stdout_until(timeout, done);
        self.signal(libc::SIGTERM);
        let (code, rest) = self.finish(Duration::from_secs(20));
        lines.extend(rest);
        (code, lines)
    }

    /// Like [`Agent::finish`], also returning every stderr line.
    pub fn finish_with_stderr(mut self, timeout: Duration) -> (i32, Vec<String>, Vec<String>) {
        let seen = std::mem::take(&mut self.stderr_seen);
        let stderr = std::mem::replace(&mut self.stderr, mpsc::channel().1);
        let (code, stdout) = self.finish(timeout);
        let mut all = seen;
        all.extend(stderr.iter());
        (code, stdout, all)
    }

    /// Stderr lines seen so far plus any that arrive within `wait`.
    pub fn stderr_lines(&mut self, wait: Duration) -> &[String] {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.stderr_seen.push(line),
                Err(_) => break,
            }
        }
        &self.stderr_seen
    }
}

/// Direct children of `pid` (all its threads'), from
/// `/proc/PID/task/*/children`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut kids: Vec<u32> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    kids.sort_unstable();
    kids.dedup();
    kids
}

/// Whether `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// The pids of processes whose executable is `exe` (from /proc/*/exe).
pub fn pids_of_exe(exe: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|p| p.to_str().is_some_and(|p| p == exe))
        })
        .filter(|pid| process_alive(*pid))
        .collect()
}

/// A fresh, empty temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eunomia-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Where the cgroup v2 hierarchy is: `/sys/fs/cgroup/unified` on hybrid
/// hosts, else `/sys/fs/cgroup`.
pub fn cgroup2_root() -> PathBuf {
    let hybrid = PathBuf::from("/sys/fs/cgroup/unified");
    if hybrid.join("cgroup.procs").exists() {
        hybrid
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

/// A manifest entry for a tool that exists only as manifest data: a shell
/// script printing a `PID COMM N` header, then a numbered line every 100 ms
/// naming itself (its pid and its comm, `sh`: records are checked against
/// the kernel), described by a generic columns format.
pub const TICKER_TOOL: &str = r#"
[[tool]]
name = "ticker"
description = "A script that prints a numbered line every 100 ms"
binary = "/bin/sh"
args = ["-c", "echo 'PID COMM N'; i=0; while :; do echo \"$$ sh $i\"; i=$((i+1)); sleep 0.1; done"]
output = "events"
[tool.format]
format = "columns"
header = "PID"
columns = [
  { name = "proc.pid", type = "int" },
  { name = "proc.comm", type = "str" },
  { name = "ticker.n", type = "int" },
]
"#;
