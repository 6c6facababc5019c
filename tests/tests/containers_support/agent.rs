//! `eunomia run` as the container tests run it: events and metrics as JSON
//! lines in a file, alerts on stdout.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use eunomia_tests::eunomia;
use serde_json::Value;

use super::{Runtimes, wait_for};

/// `eunomia run` with events and metrics written as JSON lines to a file.
pub struct AgentRun {
    child: Child,
    jsonl: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl AgentRun {
    /// Starts the agent with execsnoop, opensnoop and mountsnoop, the
    /// runtimes' files as name sources and `enrich` added to `[enrich]`.
    pub fn start(dir: &Path, rt: &Runtimes, enrich: &str) -> AgentRun {
        let jsonl = dir.join("out.jsonl");
        let config = dir.join("eunomia.toml");
        std::fs::write(
            &config,
            format!(
                "[tools]\nenabled = [\"execsnoop\", \"opensnoop\", \"mountsnoop\"]\n\
                 [enrich]\n{}{enrich}\n\
                 [rules]\nwatch_interval = \"0s\"\n\
                 [sinks.jsonl]\nenabled = true\npath = \"{}\"\ninterval = \"1s\"\n",
                rt.enrich_toml(),
                jsonl.display()
            ),
        )
        .unwrap();
        let (stdout, stderr) = (dir.join("stdout"), dir.join("stderr"));
        let child = eunomia()
            .args([
                "run",
                "--json",
                "--for",
                "120s",
                "--interval",
                "1s",
                "--config",
            ])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn eunomia run");
        let agent = AgentRun {
            child,
            jsonl,
            stdout,
            stderr,
        };
        agent.wait_until_tools_see(&format!("eunomia-ready-{}", std::process::id()));
        agent
    }

    /// Runs `/bin/true MARK` until execsnoop's event for it is written.
    pub fn wait_until_tools_see(&self, mark: &str) {
        wait_for(Duration::from_secs(60), "execsnoop attached", || {
            let _ = Command::new("/bin/true").arg(mark).status();
            thread::sleep(Duration::from_millis(300));
            self.events().iter().any(|e| args_contain(e, mark))
        });
    }

    pub fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.jsonl)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn events(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|v| v["type"] == "event")
            .collect()
    }

    pub fn metrics(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|v| v["type"] == "metric")
            .collect()
    }

    /// The alerts printed on stdout.
    pub fn alerts(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "alert")
            .collect()
    }

    pub fn dump(&self) -> String {
        format!(
            "stderr:\n{}",
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    pub fn stop(mut self) -> i32 {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("the agent did not stop:\n{}", self.dump());
    }
}

impl Drop for AgentRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn args_contain(e: &Value, needle: &str) -> bool {
    e["proc.args"].as_str().is_some_and(|a| a.contains(needle))
}

/// An event of a process inside a container: not one of the runtime CLIs
/// this test ran (whose arguments hold the same markers).
pub fn in_container(e: &Value) -> bool {
    e["proc.ppid"] != std::process::id()
        && !matches!(e["proc.comm"].as_str(), Some("docker" | "podman" | "ctr"))
}
