//! The `[hotpath]` section of the configuration: which probes are on.

use serde::Deserialize;

/// Which hot-path probes to load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotpathConfig {
    /// Count syscalls (raw tracepoint `sys_enter`).
    pub syscalls: bool,
}

impl Default for HotpathConfig {
    fn default() -> Self {
        Self { syscalls: true }
    }
}
