//! The `[logs]` section: which container logs are read, where the
//! checkpoints live, and the bounds (documented with their defaults in
//! `deploy/eunomia.toml`). Where each runtime keeps its files is `[enrich]`'s
//! `docker_root`, `podman_root` and `pod_logs_root`.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

/// `[logs]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogsConfig {
    /// Read the containers' stdout/stderr logs.
    pub(crate) enabled: bool,
    /// Docker's `json-file` logs (`<docker_root>/<id>/<id>-json.log`).
    pub(crate) docker: bool,
    /// CRI pod logs (`<pod_logs_root>/<ns>_<pod>_<uid>/<container>/N.log`).
    pub(crate) cri: bool,
    /// podman's `k8s-file` logs (`<podman_root>/overlay-containers/<id>/userdata/ctr.log`).
    pub(crate) podman: bool,
    /// Where the read position of every file is kept across restarts.
    pub(crate) checkpoint_file: PathBuf,
    /// How often the files are checked for new lines.
    #[serde(with = "humantime_serde")]
    pub(crate) poll_interval: Duration,
    /// How often the runtimes' directories are listed for new containers.
    #[serde(with = "humantime_serde")]
    pub(crate) discover_interval: Duration,
    /// Files present at the first start (no checkpoint) are read from their
    /// beginning; otherwise from their end. Files that appear later are
    /// always read from their beginning.
    pub(crate) read_existing: bool,
    /// Bytes read from one file per poll at most (the read buffer).
    pub(crate) read_bytes: usize,
    /// A line (partial lines joined) is cut at this many bytes.
    pub(crate) max_line_bytes: usize,
    /// Files followed at most.
    pub(crate) max_files: usize,
    /// Lines per second each container may send; beyond, lines are sampled.
    pub(crate) rate_limit: u32,
    /// Lines a container may send at once above the rate.
    pub(crate) burst: u32,
    /// Beyond the rate, one line in this many is kept (the others counted).
    pub(crate) sample_1_in: u32,
    /// Patterns counted per container; further ones count as `other`.
    pub(crate) max_patterns: usize,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            enabled: true,
            docker: true,
            cri: true,
            podman: true,
            checkpoint_file: "/var/lib/eunomia/logs-checkpoints.json".into(),
            poll_interval: Duration::from_millis(250),
            discover_interval: Duration::from_secs(2),
            read_existing: false,
            read_bytes: 256 * 1024,
            max_line_bytes: 64 * 1024,
            max_files: 1024,
            rate_limit: 1000,
            burst: 5000,
            sample_1_in: 100,
            max_patterns: 200,
        }
    }
}

impl LogsConfig {
    /// Checks ranges; the message names the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let positive = [
            ("logs.read_bytes", self.read_bytes),
            ("logs.max_line_bytes", self.max_line_bytes),
            ("logs.max_files", self.max_files),
            ("logs.rate_limit", self.rate_limit as usize),
            ("logs.sample_1_in", self.sample_1_in as usize),
            ("logs.max_patterns", self.max_patterns),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{key} must be at least 1"));
        }
        if self.poll_interval.is_zero() || self.discover_interval.is_zero() {
            return Err("logs.poll_interval and logs.discover_interval must be above 0".into());
        }
        if self.enabled && self.checkpoint_file.as_os_str().is_empty() {
            return Err("logs.checkpoint_file must name a file".into());
        }
        Ok(())
    }
}
