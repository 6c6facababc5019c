//! The `[tools]` section of the configuration: which manifest tools start
//! with the agent, where manifests come from, and how tools are supervised.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

/// Where users drop their own manifest files by default.
pub(crate) const DEFAULT_MANIFEST_DIR: &str = "/etc/eunomia/tools.d";

/// The tools `eunomia run` supervises out of the box: low-frequency tracers
/// that feed the default security rules (process exits, listening sockets,
/// signals), all on non-syscall hooks, so the agent holds no syscall
/// tracepoint but the hot path's counter: execs come from the hot path
/// (`sched_process_exec`), mounts from its syscall probe (`sys_exit`),
/// signals from sigsnoop (`signal_generate`). execsnoop, killsnoop and
/// mountsnoop stay available; each sits on syscall tracepoints, which put
/// every syscall of the machine on the tracing path (about 55 ns here,
/// `docs/performance.md`). opensnoop, which the file rules need, reports
/// every open(2) and is left for the user to enable where that is
/// affordable.
pub(crate) const DEFAULT_TOOLS: &[&str] = &["exitsnoop", "tcpstates", "sigsnoop"];

/// Which external tools the agent supervises, and how.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// Manifest names of the tools started with `eunomia run`.
    pub(crate) enabled: Vec<String>,
    /// A manifest file used instead of the one built into the binary.
    pub(crate) manifest: Option<PathBuf>,
    /// Directories whose `*.toml` files add or replace manifest entries
    /// (missing directories are skipped).
    pub(crate) manifest_dirs: Vec<PathBuf>,
    /// Extra directories searched for tool binaries (after `$PATH`, before
    /// /usr/sbin).
    pub(crate) search_dirs: Vec<PathBuf>,
    /// The printing interval of periodic (histogram and table) tools.
    #[serde(with = "humantime_serde")]
    pub(crate) interval: Duration,
    /// First delay before restarting a tool that exited; doubles per
    /// consecutive restart.
    #[serde(with = "humantime_serde")]
    pub(crate) restart_backoff: Duration,
    /// The longest delay between restarts.
    #[serde(with = "humantime_serde")]
    pub(crate) restart_backoff_max: Duration,
    /// A run shorter than this counts as a failed start.
    #[serde(with = "humantime_serde")]
    pub(crate) min_uptime: Duration,
    /// After this many failed starts in a row, the tool is marked failed and
    /// no longer restarted.
    pub(crate) max_failed_starts: u32,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            enabled: DEFAULT_TOOLS.iter().map(|t| (*t).to_owned()).collect(),
            manifest: None,
            manifest_dirs: vec![PathBuf::from(DEFAULT_MANIFEST_DIR)],
            search_dirs: Vec::new(),
            interval: Duration::from_secs(10),
            restart_backoff: Duration::from_millis(500),
            restart_backoff_max: Duration::from_secs(30),
            min_uptime: Duration::from_secs(2),
            max_failed_starts: 3,
        }
    }
}

impl ToolsConfig {
    /// Range checks; the message names the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.interval < Duration::from_secs(1) {
            return Err(format!(
                "tools.interval = {:?} is too short (the tools print at most once per second)",
                self.interval
            ));
        }
        if self.restart_backoff.is_zero() || self.restart_backoff > self.restart_backoff_max {
            return Err(
                "tools.restart_backoff must be > 0 and <= tools.restart_backoff_max".into(),
            );
        }
        if self.max_failed_starts == 0 {
            return Err("tools.max_failed_starts must be at least 1".into());
        }
        Ok(())
    }
}
