//! The `[http]` section: HTTP/1.x request capture (on by default).

use serde::Deserialize;

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Capture HTTP/1.x requests and responses (needs `hotpath.syscalls`:
    /// the capture rides on its `sys_exit` program).
    pub enabled: bool,
    /// Distinct `http.route` values kept per container; later routes are
    /// reported as `other` (and counted).
    pub max_routes: usize,
    /// Request events (and spans) per second sent on into the pipeline;
    /// beyond it they are dropped and counted. Metrics come from the same
    /// events, so this bounds the agent's work under load.
    pub max_requests_per_second: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_routes: 100,
            max_requests_per_second: 100_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_by_default_and_can_be_turned_off() {
        assert!(HttpConfig::default().enabled);
        let c: HttpConfig = toml::from_str("enabled = false\n").unwrap();
        assert!(!c.enabled);
        assert!(toml::from_str::<HttpConfig>("bogus = 1\n").is_err());
    }
}
