//! Helpers of the hot-path tests: a cgroup v2 the test creates and moves its
//! workload into, and the `--samples` JSON lines of `eunomia run`.

#![allow(dead_code)]

use std::{
    os::unix::fs::MetadataExt as _,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use eunomia_tests::Agent;
use serde_json::Value;

/// What `eunomia run` prints once its hot path is attached.
pub const ATTACHED: &str = "hot path attached";

/// Starts `eunomia run --interval 1s --for <secs>s --json --samples` and
/// waits until its hot path is attached.
pub fn start_sampling_agent(secs: u32) -> Agent {
    let for_arg = format!("{secs}s");
    let mut agent = Agent::start(&[
        "run",
        "--interval",
        "1s",
        "--for",
        &for_arg,
        "--json",
        "--samples",
    ]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));
    agent
}

pub use eunomia_tests::cgroup2_root;

/// A child cgroup of the v2 root, removed on drop.
pub struct TestCgroup {
    /// Its directory.
    pub path: PathBuf,
    /// Its id (the directory's inode number), as bpf_get_current_cgroup_id() sees it.
    pub id: u64,
}

impl TestCgroup {
    /// Creates `<root>/eunomia-test-<name>-<pid>`.
    pub fn create(name: &str) -> TestCgroup {
        let path = cgroup2_root().join(format!("eunomia-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir(&path);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        let id = std::fs::metadata(&path).expect("stat cgroup").ino();
        TestCgroup { path, id }
    }

    /// A command that runs `program ARGS...` inside this cgroup: a shell
    /// moves itself into the cgroup, then execs the program.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(r#"echo $$ > "$0/cgroup.procs" && shift && exec "$@""#)
            .arg(&self.path)
            .arg("--")
            .arg(program)
            .args(args);
        c
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // the last process may take a moment to leave
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.path).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Every sample of the `--samples` lines among `lines`, each with its batch's
/// `source` added.
pub fn samples(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("samples").is_some())
        .flat_map(|batch| {
            let source = batch["source"].clone();
            batch["samples"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |mut s| {
                    s["source"] = source.clone();
                    s
                })
        })
        .collect()
}

/// Sum of the `delta` of the samples of `metric` whose labels include every
/// pair of `labels`.
pub fn sum(samples: &[Value], metric: &str, labels: &[(&str, &str)]) -> u64 {
    matching(samples, metric, labels)
        .map(|s| s["delta"].as_u64().unwrap_or(0))
        .sum()
}

/// The samples of `metric` with all of `labels`.
pub fn matching<'a>(
    samples: &'a [Value],
    metric: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a Value> + 'a {
    samples
        .iter()
        .filter(move |s| s["metric"] == metric && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
}

/// Bucket-wise sum of the log2 histograms of `metric` with all of `labels`.
pub fn histogram(samples: &[Value], metric: &str, labels: &[(&str, &str)]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for s in matching(samples, metric, labels) {
        let counts = s["histogram"]["log2_counts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if out.len() < counts.len() {
            out.resize(counts.len(), 0);
        }
        for (i, c) in counts.iter().enumerate() {
            out[i] += c.as_u64().unwrap_or(0);
        }
    }
    out
}

/// The last gauge value of `metric` with all of `labels`.
pub fn last_gauge(samples: &[Value], metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    matching(samples, metric, labels)
        .filter_map(|s| s["gauge"].as_f64())
        .last()
}
