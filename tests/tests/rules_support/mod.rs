//! Helpers of the rules end-to-end tests: a temporary directory, the agent
//! run with its output collected, waiting, the tools and Alertmanager a test
//! needs (the HTTP server is `http_support`'s).

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use eunomia_tests::{alertmanager::ALERTMANAGER, eunomia, kernel_tests_can_run};
use serde_json::Value;

/// A directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(base: &str, tag: &str) -> TempDir {
        let p = PathBuf::from(base).join(format!("eunomia-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `eunomia run` with a config file; stdout and stderr collected as they come.
pub(crate) struct AgentRun {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl AgentRun {
    pub(crate) fn start(config: &Path) -> AgentRun {
        let mut child = eunomia()
            .args(["run", "--json", "--for", "120s", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn eunomia run");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        AgentRun {
            child,
            stdout,
            stderr,
        }
    }

    /// The alerts printed so far (JSON lines with `"type": "alert"`).
    pub(crate) fn alerts(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "alert")
            .collect()
    }

    pub(crate) fn stderr_has(&self, needle: &str) -> bool {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    pub(crate) fn dump(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.lock().unwrap().join("\n"),
            self.stderr.lock().unwrap().join("\n")
        )
    }

    pub(crate) fn hup(&self) {
        // SAFETY: kill has no memory-safety preconditions.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as i32, libc::SIGHUP) },
            0
        );
    }

    /// SIGTERM, then the exit code.
    pub(crate) fn stop(mut self) -> i32 {
        // SAFETY: as above.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "agent did not stop:\n{}",
                self.dump()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AgentRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn collect<R: std::io::Read + Send + 'static>(r: R) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

pub(crate) fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

pub(crate) fn run(cmd: &str, args: &[&str]) {
    let _ = Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub(crate) fn tools_present(tools: &[&str]) -> bool {
    tools
        .iter()
        .all(|t| Path::new("/usr/sbin").join(t).exists())
}

/// Whether the kernel tests can run here and the tools and peers exist.
pub(crate) fn can_run(test: &str, tools: &[&str], alertmanager: bool) -> bool {
    if !kernel_tests_can_run(test) {
        return false;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !tools_present(&[t]))
        .chain((alertmanager && !Path::new(ALERTMANAGER).exists()).then_some(ALERTMANAGER))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !ci,
        "{test}: missing {missing:?} (install libbpf-tools and prometheus-alertmanager)"
    );
    eprintln!("SKIP {test}: missing {missing:?}");
    false
}

pub(crate) fn has_alert(alerts: &[Value], rule: &str, field: &str, value: &Value) -> bool {
    alerts
        .iter()
        .any(|a| a["rule"] == rule && &a[field] == value)
}
