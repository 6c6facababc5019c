//! The `[tools]` section of the configuration: which manifest tools start
//! with the agent.

use serde::Deserialize;

/// Which external tools the agent supervises.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// Manifest names of the tools started with `eunomia run`.
    pub enabled: Vec<String>,
}
