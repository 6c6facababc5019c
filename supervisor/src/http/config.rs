//! The `[http]` section: HTTP/1.x request capture, on by default. Its cost
//! (`scripts/bench-http.sh`, docs/metrics.md): about 0.4 µs per request
//! and captured side with `records = "sampled"` (the kernel counts the RED
//! histograms and sends records for spans only), about 0.9 µs with
//! `records = "all"`.

use std::time::Duration;

use serde::Deserialize;

use crate::hotpath::HttpCapture;

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpConfig {
    /// Capture HTTP/1.x requests and responses (needs `hotpath.syscalls`:
    /// the capture rides on its `sys_exit` program).
    pub(crate) enabled: bool,
    /// Distinct `http.route` values kept per container; later routes are
    /// reported as `other` (and counted).
    pub(crate) max_routes: usize,
    /// Share of traces (0 to 1) sent on as spans (request events that
    /// rules, the OTLP traces and the event sinks see), decided per linked
    /// trace (`crate::traces::sample`); a trace with an error or a slow
    /// span is always kept. The RED metrics and the service map count
    /// every request.
    pub(crate) sample_ratio: f64,
    /// A span at least this slow keeps its trace.
    #[serde(with = "humantime_serde")]
    pub(crate) slow_threshold: Duration,
    /// Spans per second at most (errors and slow ones included), whole
    /// traces at a time; beyond it they are dropped and counted
    /// (`eunomia_http_dropped_total{reason="span_rate_limited"}`).
    pub(crate) max_spans_per_second: u32,
    /// Which requests the kernel sends to the agent as records.
    pub(crate) records: Records,
}

/// `http.records`: which requests the kernel sends to the agent. The RED
/// metrics count every request either way (in the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Records {
    /// Those spans need: call chains sampled in the kernel at
    /// `sample_ratio`, errors and slow requests (with the server request
    /// that made them), and each series' first per interval. Rules, the
    /// event sinks and the service map see these.
    Sampled,
    /// Every request: rules and the service map see each one, and the
    /// agent samples the spans per trace.
    All,
}

impl HttpConfig {
    /// What the kernel's capture sends (None when it is off).
    pub(crate) fn capture(&self) -> Option<HttpCapture> {
        self.enabled.then(|| match self.records {
            Records::All => HttpCapture::EVERY_REQUEST,
            Records::Sampled => HttpCapture::sampled(self.sample_ratio, self.slow_threshold),
        })
    }

    /// The share of traces the agent keeps by ratio: none when the kernel
    /// sampled already (it sends the sampled chains flagged).
    pub(crate) fn agent_ratio(&self) -> f64 {
        match self.records {
            Records::All => self.sample_ratio,
            Records::Sampled => 0.0,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_routes: 100,
            sample_ratio: 0.1,
            slow_threshold: Duration::from_secs(1),
            max_spans_per_second: 500,
            records: Records::Sampled,
        }
    }
}

impl HttpConfig {
    /// Checks values; the message names the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(format!(
                "http.sample_ratio must be between 0 and 1, not {}",
                self.sample_ratio
            ));
        }
        if self.max_routes == 0 {
            return Err("http.max_routes must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_by_default_sampled_in_the_kernel_and_can_be_turned_off() {
        let d = HttpConfig::default();
        assert!(d.enabled);
        assert_eq!(d.records, Records::Sampled);
        assert_eq!(d.validate(), Ok(()));
        let c = d.capture().expect("captured");
        assert!(!c.every_request);
        assert_eq!(c.sample_below, (0.1f64 * 4_294_967_296.0) as u64);
        assert_eq!(d.agent_ratio(), 0.0, "the kernel sampled already");
        let c: HttpConfig = toml::from_str("enabled = false\n").unwrap();
        assert!(!c.enabled);
        assert_eq!(c.capture(), None);
        let c: HttpConfig = toml::from_str("records = \"all\"\nsample_ratio = 0.3\n").unwrap();
        assert_eq!(c.capture(), Some(HttpCapture::EVERY_REQUEST));
        assert_eq!(c.agent_ratio(), 0.3);
        assert!(toml::from_str::<HttpConfig>("records = \"some\"\n").is_err());
        assert!(toml::from_str::<HttpConfig>("bogus = 1\n").is_err());
        let c: HttpConfig =
            toml::from_str("sample_ratio = 1.5\nslow_threshold = \"250ms\"\n").unwrap();
        assert_eq!(c.slow_threshold, Duration::from_millis(250));
        assert!(c.validate().unwrap_err().contains("http.sample_ratio"));
    }
}
