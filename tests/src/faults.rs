//! Helpers of the fault suite (`tests/faults*.rs`): a manifest entry made of
//! a shell script, a test directory with its configuration, the agent
//! started inside a memory cgroup, its status and self-metrics.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{Agent, eunomia, memcg::MemCgroup, temp_dir};

/// The memory the agent (and its tools) may use in these tests.
pub const LIMIT: u64 = 256 << 20;
/// The peak asserted: far above the agent's ~25 MB, far below a flood's GBs.
pub const PEAK_MAX: u64 = 128 << 20;

/// A manifest entry running `script` with `/bin/sh -c`, its stdout parsed as
/// `WORD N` columns (no process fields: the records name no process for the
/// agent to check).
pub fn tool(name: &str, script: &str) -> String {
    format!(
        r#"
[[tool]]
name = "{name}"
description = "fault-suite tool"
binary = "/bin/sh"
args = ["-c", {script:?}]
output = "events"
stop_signal = "SIGKILL"
[tool.format]
format = "columns"
columns = [
  {{ name = "fault.word", type = "str" }},
  {{ name = "fault.n", type = "int" }},
]
"#
    )
}

/// A test directory with `tools.d/faults.toml` holding `manifest` and a
/// configuration enabling `enabled`, with `extra` appended; no hot path.
pub fn setup(test: &str, manifest: &str, enabled: &[&str], extra: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(test);
    let tools_d = dir.join("tools.d");
    std::fs::create_dir(&tools_d).unwrap();
    std::fs::write(tools_d.join("faults.toml"), manifest).unwrap();
    let enabled: Vec<String> = enabled.iter().map(|e| format!("{e:?}")).collect();
    let config = dir.join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\npoll_interval = \"500ms\"\ncontrol_socket = {:?}\n\n[hotpath]\nsyscalls = false\ntcp = false\npids = false\n\n[tools]\nenabled = [{}]\nmanifest_dirs = [{:?}]\nmin_uptime = \"500ms\"\n\n[rules]\nconsole = false\n{extra}",
            dir.join("eunomia.sock").display().to_string(),
            enabled.join(", "),
            tools_d.display().to_string()
        ),
    )
    .unwrap();
    (dir, config)
}

/// `eunomia run --config CONFIG ARGS...` inside `cg`.
pub fn start_in(cg: &MemCgroup, config: &Path, args: &[&str]) -> Agent {
    let mut cmd = eunomia();
    // The socket of the configuration (one per test), not the process's.
    cmd.env_remove("EUNOMIA_SOCKET");
    cmd.arg("run").arg("--config").arg(config).args(args);
    cg.enter(&mut cmd);
    Agent::spawn(cmd)
}

/// `eunomia status --json` of the agent whose socket is in `dir` (waits
/// up to 10 s for the agent to serve it).
pub fn status(dir: &Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = eunomia()
            .args(["status", "--json", "--socket"])
            .arg(dir.join("eunomia.sock"))
            .output()
            .unwrap();
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).expect("status JSON");
        }
        assert!(Instant::now() < deadline, "status: {out:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of self-metric `name` whose labels include every pair of `labels`.
pub fn metric(status: &serde_json::Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    status["self_metrics"].as_array()?.iter().find_map(|m| {
        let ok = m["name"] == name && labels.iter().all(|(k, v)| m["labels"][*k] == *v);
        ok.then(|| m["value"].as_f64()).flatten()
    })
}

/// The agent's peak resident memory (VmHWM), in bytes.
pub fn peak_rss(agent: &Agent) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", agent.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Polls the status until `pred` holds (panics after `timeout`).
pub fn wait_status(
    dir: &Path,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let s = status(dir);
        if pred(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen within {timeout:?}: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
/// The self-metric `name{tool}` of the agent in `dir` (0 when absent).
pub fn tool_metric(s: &serde_json::Value, name: &str, tool: &str) -> f64 {
    metric(s, name, &[("tool", tool)]).unwrap_or(0.0)
}

pub fn counter_tool(count: u32) -> String {
    tool(
        "burst",
        &format!(
            "i=0; while [ $i -lt {count} ]; do echo \"burst $i\"; i=$((i+1)); done; exec sleep 3600"
        ),
    )
}

pub fn otlp_extra(endpoint: &str, more: &str) -> String {
    format!(
        "\n[sinks.otlp]\nenabled = true\nendpoint = {endpoint:?}\nexport_interval = \"500ms\"\ntimeout = \"2s\"\ncompression = \"none\"\ninitial_backoff = \"200ms\"\nmax_backoff = \"30s\"\n{more}"
    )
}

pub fn burst_logs(r: &crate::otlp::Received) -> usize {
    r.logs
        .iter()
        .flat_map(|l| &l.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .filter(|rec| crate::otlp::attr(&rec.attributes, "tool") == Some("burst"))
        .count()
}
