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
        let agent = AgentRun::spawn(dir, &config, "agent", jsonl);
        agent.wait_until_tools_see(&format!("eunomia-ready-{}", std::process::id()));
        agent
    }

    /// Starts the agent with the configuration file `config`, whose JSON-lines
    /// sink writes to `DIR/NAME.jsonl`; returns once the first metrics are
    /// written there (everything runs then).
    pub fn with_config(dir: &Path, config: &Path, name: &str) -> AgentRun {
        let jsonl = dir.join(format!("{name}.jsonl"));
        let agent = AgentRun::spawn(dir, config, name, jsonl);
        wait_for(Duration::from_secs(60), "the agent running", || {
            !agent.metrics().is_empty()
        });
        agent
    }

    /// `eunomia run --json` with `config`, its output in `DIR/NAME.std{out,err}`.
    fn spawn(dir: &Path, config: &Path, name: &str, jsonl: PathBuf) -> AgentRun {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let child = eunomia()
            .args(["run", "--json", "--for", "300s", "--interval", "1s"])
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn eunomia run");
        AgentRun {
            child,
            jsonl,
            stdout,
            stderr,
        }
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

    /// What the agent wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn dump(&self) -> String {
        format!(
            "stderr:\n{}",
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Stops the agent; its exit code and everything it wrote.
    pub fn stop_and_lines(self) -> (i32, Vec<Value>) {
        let jsonl = self.jsonl.clone();
        let code = self.stop();
        let lines = std::fs::read_to_string(jsonl)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (code, lines)
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
