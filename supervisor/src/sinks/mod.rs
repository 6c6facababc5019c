//! Where the pipeline's output goes. One module per sink, all of one shape:
//! each is built by [`start`] (the factory) from its config section and a
//! [`SinkContext`]; it reads metric snapshots the [`Publisher`] publishes
//! once per interval, takes events ([`EventSink`]) and alerts
//! ([`AlertSink`]) through what it hands back ([`Started`]), and reports
//! through one [`SinkStats`] that `eunomia status` and the self-metrics read.

pub mod alertmanager;
pub(crate) mod console;
pub(crate) mod jsonl;
pub mod otlp;
pub(crate) mod prometheus;
pub(crate) mod publisher;
pub(crate) mod remote_write;
pub mod resource;
pub mod stats;

use std::{collections::BTreeMap, sync::Arc};

use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::{
    publisher::{Publisher, Snapshots},
    stats::{Outcome, SinkBook, SinkStats},
};
use crate::{
    pipeline::{Message, ToolRecord},
    rules::AlertSink,
    selfmetrics::Registry,
};

/// `[sinks]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    /// OTLP/gRPC to a core.
    pub otlp: otlp::OtlpConfig,
    /// The Prometheus `/metrics` endpoint.
    pub prometheus: prometheus::PrometheusConfig,
    /// Prometheus remote write.
    pub remote_write: remote_write::RemoteWriteConfig,
    /// `[sinks.alertmanager]`: post alerts to Alertmanager.
    pub alertmanager: Option<alertmanager::AlertmanagerConfig>,
    /// JSON lines to stdout or a file.
    pub jsonl: jsonl::JsonlConfig,
}

impl SinksConfig {
    /// Checks every enabled sink's values; the message names the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        self.otlp.validate()?;
        self.remote_write.validate()?;
        if let Some(am) = self.alertmanager() {
            am.validate()
                .map_err(|e| format!("sinks.alertmanager: {e}"))?;
        }
        self.jsonl.validate()
    }

    /// The one rule for every sink: a `[sinks.NAME]` section of the file
    /// (`sinks`, the file's `[sinks]` table) turns its sink on unless it says
    /// `enabled = false`.
    pub(crate) fn enable_configured(&mut self, sinks: &toml::Table) {
        for (name, section) in sinks {
            if section.get("enabled").is_some() {
                continue;
            }
            match name.as_str() {
                "otlp" => self.otlp.enabled = true,
                "prometheus" => self.prometheus.enabled = true,
                "remote_write" => self.remote_write.enabled = true,
                "jsonl" => self.jsonl.enabled = true,
                // Present means on already (its `enabled` defaults to true).
                _ => {}
            }
        }
    }

    /// The Alertmanager sink, when configured and enabled.
    pub(crate) fn alertmanager(&self) -> Option<&alertmanager::AlertmanagerConfig> {
        self.alertmanager.as_ref().filter(|a| a.enabled)
    }

    /// One line per enabled sink: its name and where it sends.
    pub(crate) fn active(&self) -> Vec<String> {
        let mut out = Vec::new();
        let o = &self.otlp;
        if o.enabled {
            out.push(match o.metrics_endpoint() == o.logs_endpoint() || !o.logs {
                true => format!("otlp -> {}", o.metrics_endpoint()),
                false => format!(
                    "otlp -> metrics {}, logs {}",
                    o.metrics_endpoint(),
                    o.logs_endpoint()
                ),
            });
        }
        if self.prometheus.enabled {
            out.push(format!(
                "prometheus on http://{}/metrics",
                self.prometheus.listen
            ));
        }
        if self.remote_write.enabled {
            out.push(format!("remote_write -> {}", self.remote_write.url));
        }
        if let Some(am) = self.alertmanager() {
            out.push(format!("alertmanager -> {}", am.url));
        }
        if self.jsonl.enabled {
            let to = match self.jsonl.path.as_os_str() == "-" {
                true => "stdout".to_owned(),
                false => self.jsonl.path.display().to_string(),
            };
            out.push(format!("jsonl -> {to}"));
        }
        out
    }
}

/// A sink could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The OTLP sink.
    #[error(transparent)]
    Otlp(#[from] otlp::OtlpError),
    /// The Prometheus endpoint.
    #[error(transparent)]
    Prometheus(#[from] prometheus::ListenError),
    /// The remote-write client.
    #[error(transparent)]
    RemoteWrite(#[from] remote_write::RemoteWriteError),
    /// The JSON-lines output.
    #[error(transparent)]
    Jsonl(#[from] jsonl::JsonlError),
    /// The Alertmanager sink.
    #[error(transparent)]
    Alertmanager(#[from] alertmanager::AlertmanagerError),
}

/// What every sink is started with: the latest metric snapshot, the
/// registry, the stop token, the resource attributes and the book its
/// [`SinkStats`] go into.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// The latest published metric snapshot.
    pub snapshots: Snapshots,
    /// Where self-metrics are registered.
    pub registry: Arc<Registry>,
    /// Cancelled once the pipeline has drained: export a last time, then end.
    pub stop: CancellationToken,
    /// `[agent] resource_attributes` (see [`resource`]).
    pub resource_attributes: BTreeMap<String, String>,
    /// Every sink's stats, for `eunomia status`.
    pub book: SinkBook,
}

impl SinkContext {
    /// The stats of a sink starting now, added to the book.
    pub(crate) fn stats(&self, name: &'static str, target: impl Into<String>) -> Arc<SinkStats> {
        let stats = SinkStats::new(name, target.into(), self.registry.clone());
        self.book.add(stats.clone());
        stats
    }
}

/// A sink of events: takes one enriched event without ever waiting (a full
/// queue drops it and counts the drop).
pub(crate) trait EventSink: Send + Sync {
    /// Queues `record` (an event, with its workload).
    fn offer(&self, record: &ToolRecord);
}

/// What a started sink hands back.
#[derive(Default)]
pub(crate) struct Started {
    /// Tasks that end after the context's `stop` (exporting a last time).
    pub(crate) tasks: Vec<JoinHandle<()>>,
    /// Where events go, if the sink takes events.
    pub(crate) events: Option<Arc<dyn EventSink>>,
    /// Where alerts go, if the sink takes alerts.
    pub(crate) alerts: Option<Box<dyn AlertSink>>,
}

/// The running sinks.
#[derive(Default)]
pub struct Sinks {
    /// Tasks that end after `stop` (flushing first).
    pub tasks: Vec<JoinHandle<()>>,
    /// The sinks that take events.
    pub events: EventSinks,
    /// The sinks that take alerts (handed to the rules stage).
    pub alerts: Vec<Box<dyn AlertSink>>,
}

impl Sinks {
    fn add(&mut self, started: Started) {
        self.tasks.extend(started.tasks);
        self.events.0.extend(started.events);
        self.alerts.extend(started.alerts);
    }
}

/// The sinks that export events one by one (OTLP logs, JSON lines).
#[derive(Clone, Default)]
pub struct EventSinks(Vec<Arc<dyn EventSink>>);

impl EventSinks {
    /// Hands a pipeline message's event, with its enrichment labels, to the
    /// sinks that export events (never waits: full queues drop and count).
    pub fn offer(&self, msg: &Message) {
        let Message::Record(r) = msg else {
            return;
        };
        if r.record.as_event().is_none() {
            return;
        }
        for sink in &self.0 {
            sink.offer(r);
        }
    }
}

/// The factory: starts every sink the configuration enables, each from its
/// section. A new sink is one module and one line here.
pub async fn start(config: &SinksConfig, ctx: &SinkContext) -> Result<Sinks, SinkError> {
    let mut sinks = Sinks::default();
    if config.otlp.enabled {
        sinks.add(otlp::start(&config.otlp, ctx)?);
    }
    if config.prometheus.enabled {
        sinks.add(prometheus::start(&config.prometheus, ctx).await?);
    }
    if config.remote_write.enabled {
        sinks.add(remote_write::start(&config.remote_write, ctx)?);
    }
    if config.jsonl.enabled {
        sinks.add(jsonl::start(&config.jsonl, ctx).await?);
    }
    if let Some(am) = config.alertmanager() {
        sinks.add(alertmanager::start(am, ctx)?);
    }
    Ok(sinks)
}

#[cfg(test)]
mod tests {
    use std::{path::Path, time::Duration};

    use crate::config::{Config, ConfigError};

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_str(text, Path::new("test.toml"))
    }

    #[test]
    fn full_sinks_section_parses() {
        let c = parse(
            r#"
[aggregate]
max_series = 500
series_ttl = "10m"
series_limits = { eunomia_process_execs_total = 100 }

[[aggregate.rules]]
kind = "open"
metric = "eunomia_file_open_errors_total"
type = "count"
labels = ["container.name", "error"]

[sinks.otlp]
enabled = true
endpoint = "https://core.example:4317"
headers = { "x-api-key" = "secret" }
compression = "gzip"
export_interval = "15s"
timeout = "5s"
tls = { ca_file = "/etc/ssl/ca.pem" }
buffer = { max_batches = 50, spill_dir = "/var/lib/eunomia/otlp" }

[sinks.prometheus]
enabled = true
listen = "127.0.0.1:9464"

[sinks.remote_write]
enabled = true
url = "http://127.0.0.1:9090/api/v1/write"
interval = "30s"

[sinks.jsonl]
enabled = true
path = "/var/log/eunomia.jsonl"
"#,
        )
        .unwrap();
        assert_eq!(c.aggregate.limit_of("eunomia_process_execs_total"), 100);
        assert_eq!(c.aggregate.limit_of("other"), 500);
        assert_eq!(c.sinks.otlp.export_interval, Duration::from_secs(15));
        assert_eq!(c.sinks.otlp.buffer.max_batches, 50);
        assert!(c.sinks.prometheus.enabled);
    }

    #[test]
    fn a_section_turns_its_sink_on_unless_it_says_enabled_false() {
        let c = parse(
            "[sinks.otlp]\nendpoint = \"http://core:4317\"\n[sinks.prometheus]\nlisten = \"127.0.0.1:9999\"\n[sinks.jsonl]\n[sinks.remote_write]\nenabled = false\n[sinks.alertmanager]\nurl = \"http://127.0.0.1:9093\"\n",
        )
        .unwrap();
        assert!(c.sinks.otlp.enabled && c.sinks.prometheus.enabled && c.sinks.jsonl.enabled);
        assert!(!c.sinks.remote_write.enabled);
        assert!(c.sinks.alertmanager().is_some());
        assert_eq!(c.sinks.active().len(), 4, "{:?}", c.sinks.active());
        let c = parse("[sinks.alertmanager]\nenabled = false\nurl = \"https://not-checked\"\n")
            .unwrap();
        assert!(c.sinks.alertmanager().is_none());
        assert!(c.sinks.active().is_empty());
        // A sub-table alone configures the sink too.
        let c = parse("[sinks.otlp.tls]\ndomain = \"core\"\n").unwrap();
        assert!(c.sinks.otlp.enabled);
    }

    #[test]
    fn sinks_are_off_by_default() {
        let c = parse("").unwrap();
        assert!(!c.sinks.otlp.enabled && !c.sinks.prometheus.enabled);
        assert!(c.sinks.prometheus.listen.ip().is_loopback());
    }

    #[test]
    fn unknown_sink_key_names_the_line() {
        let err = parse("[sinks.prometheus]\nenabled = true\nport = 1\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("test.toml:3:1: ") && msg.contains("port"),
            "{msg}"
        );
    }

    #[test]
    fn bad_endpoint_and_rule_are_invalid() {
        let err = parse("[sinks.otlp]\nenabled = true\nendpoint = \"ftp://x\"\n").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("sinks.otlp.endpoint"), "{err}");
        let err = parse(
            "[[aggregate.rules]]\nkind = \"exec\"\nmetric = \"bad name\"\ntype = \"count\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("aggregate.rules[0]"), "{err}");
    }
}
