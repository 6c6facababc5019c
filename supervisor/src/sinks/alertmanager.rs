//! The Alertmanager sink: posts alerts to Alertmanager's API v2
//! (`POST /api/v2/alerts`) in batches.
//!
//! Each alert becomes one Alertmanager alert: labels `alertname` (the rule),
//! `severity`, `source="eunomia"`, `instance` (the host name), `fingerprint`
//! (the finding, so distinct findings of a rule stay distinct alerts) and the
//! event's container/pod labels with dots turned into underscores
//! (`container_id`, `k8s_namespace`, ...); annotations `summary` (the
//! rendered output), `description`, `tags`, `event` (the event's fields as
//! JSON). `startsAt` is the event time and `endsAt` that plus the resolve
//! timeout, so a finding that stops recurring resolves by itself.
//!
//! Sending never blocks the pipeline: alerts queue in a bounded channel and
//! are dropped (and counted) when it is full; failed posts are retried once
//! at the next flush and then dropped and counted. Plain `http://` only.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    sync::mpsc,
    task::JoinHandle,
};

use crate::rules::{Alert, AlertSink};

/// `[sinks.alertmanager]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Post alerts (the section turns the sink on unless this is false).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Base URL, e.g. `http://127.0.0.1:9093` (a path prefix is kept).
    pub url: String,
    /// How long after its last occurrence an alert resolves (`endsAt`).
    #[serde(with = "humantime_serde", default = "default_resolve_timeout")]
    pub resolve_timeout: Duration,
    /// How often queued alerts are posted.
    #[serde(with = "humantime_serde", default = "default_flush_interval")]
    pub flush_interval: Duration,
    /// Timeout of one POST.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Alerts queued before new ones are dropped (and counted).
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_enabled() -> bool {
    true
}
fn default_resolve_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_flush_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_queue() -> usize {
    1024
}

/// Why the sink cannot be set up or a post failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertmanagerError {
    /// The URL is not `http://host[:port][/prefix]`.
    #[error("alertmanager url `{0}`: expected http://HOST[:PORT][/PREFIX]")]
    BadUrl(String),
    /// Connecting, writing or reading failed.
    #[error("alertmanager at {addr}: {source}")]
    Io {
        /// host:port.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The POST timed out.
    #[error("alertmanager at {0}: timed out")]
    Timeout(String),
    /// Alertmanager answered with an error status.
    #[error("alertmanager at {addr}: HTTP {status}: {body}")]
    Status {
        /// host:port.
        addr: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

impl AlertmanagerConfig {
    /// Checks the URL.
    pub fn validate(&self) -> Result<(), AlertmanagerError> {
        Endpoint::parse(&self.url).map(|_| ())
    }
}

/// Where to post: `host:port` and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    addr: String,
    host: String,
    path: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Endpoint, AlertmanagerError> {
        let bad = || AlertmanagerError::BadUrl(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (host, prefix) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
        if host.is_empty() {
            return Err(bad());
        }
        let addr = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_owned()
        } else {
            format!("{host}:9093")
        };
        let prefix = prefix.trim_end_matches('/');
        let path = if prefix.is_empty() {
            "/api/v2/alerts".to_owned()
        } else {
            format!("/{prefix}/api/v2/alerts")
        };
        Ok(Endpoint {
            addr,
            host: host.to_owned(),
            path,
        })
    }
}

/// Counters of the sink.
#[derive(Debug, Default)]
pub struct AlertmanagerStats {
    /// Alerts Alertmanager accepted.
    pub sent: AtomicU64,
    /// Alerts dropped because the queue was full.
    pub dropped_full: AtomicU64,
    /// Alerts dropped after a failed post and its retry.
    pub dropped_failed: AtomicU64,
    /// Failed posts.
    pub post_errors: AtomicU64,
}

/// The pipeline side of the sink: queues alerts for the posting task.
pub struct AlertmanagerSink {
    tx: mpsc::Sender<Arc<Alert>>,
    stats: Arc<AlertmanagerStats>,
}

impl AlertSink for AlertmanagerSink {
    fn send(&mut self, alert: &Arc<Alert>) {
        if self.tx.try_send(alert.clone()).is_err() {
            self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl AlertmanagerSink {
    /// The sink's counters.
    pub fn stats(&self) -> &Arc<AlertmanagerStats> {
        &self.stats
    }
}

/// Exports the sink's counters as the common sink self-metrics
/// (`eunomia_sink_exports_total`, `eunomia_sink_dropped_items_total`,
/// `sink="alertmanager"`, `signal="alerts"`).
pub fn register_stats(stats: &Arc<AlertmanagerStats>, registry: &crate::selfmetrics::Registry) {
    let read = |f: fn(&AlertmanagerStats) -> &AtomicU64| {
        let s = Arc::downgrade(stats);
        move || s.upgrade().map_or(0, |s| f(&s).load(Ordering::Relaxed))
    };
    let labels =
        |k: &'static str, v: &'static str| [("sink", "alertmanager"), ("signal", "alerts"), (k, v)];
    registry.observe_counter(
        "eunomia_sink_exports_total",
        "Export requests by sink, signal and outcome (success, failure, rejected).",
        &labels("outcome", "failure"),
        read(|s| &s.post_errors),
    );
    registry.observe_counter(
        "eunomia_sink_dropped_items_total",
        "Data points and log records a sink dropped, by reason.",
        &labels("reason", "queue_full"),
        read(|s| &s.dropped_full),
    );
    registry.observe_counter(
        "eunomia_sink_dropped_items_total",
        "Data points and log records a sink dropped, by reason.",
        &labels("reason", "failure"),
        read(|s| &s.dropped_failed),
    );
}

/// Routing label names and the enrichment keys they copy.
const ROUTING_LABELS: &[(&str, &str)] = &[
    ("namespace", model::labels::K8S_NAMESPACE),
    ("pod", model::labels::K8S_POD_NAME),
    ("container", model::labels::CONTAINER_NAME),
];

/// Alerts posted at most in one request.
const MAX_BATCH: usize = 256;

/// Starts the posting task; it ends, after a last flush, when the sink is
/// dropped.
pub fn start(
    config: &AlertmanagerConfig,
) -> Result<(AlertmanagerSink, JoinHandle<()>), AlertmanagerError> {
    let endpoint = Endpoint::parse(&config.url)?;
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let stats = Arc::new(AlertmanagerStats::default());
    let poster = Poster {
        health: super::health::register("alertmanager", config.url.clone()),
        endpoint,
        config: config.clone(),
        stats: stats.clone(),
        instance: hostname(),
    };
    let task = tokio::spawn(poster.run(rx));
    Ok((AlertmanagerSink { tx, stats }, task))
}

struct Poster {
    health: Arc<super::health::SinkHealth>,
    endpoint: Endpoint,
    config: AlertmanagerConfig,
    stats: Arc<AlertmanagerStats>,
    instance: String,
}

impl Poster {
    async fn run(self, mut rx: mpsc::Receiver<Arc<Alert>>) {
        let mut batch: Vec<Arc<Alert>> = Vec::new();
        let mut retry: Vec<Arc<Alert>> = Vec::new();
        let mut tick = tokio::time::interval(self.config.flush_interval);
        loop {
            tokio::select! {
                a = rx.recv() => match a {
                    Some(a) => {
                        batch.push(a);
                        if batch.len() >= MAX_BATCH {
                            self.flush(&mut batch, &mut retry).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => self.flush(&mut batch, &mut retry).await,
            }
        }
        self.flush(&mut batch, &mut retry).await;
    }

    /// Posts `retry` (failed last time) and `batch`; what fails now moves
    /// to `retry` if it was new, or is dropped and counted.
    async fn flush(&self, batch: &mut Vec<Arc<Alert>>, retry: &mut Vec<Arc<Alert>>) {
        let old = std::mem::take(retry);
        let new = std::mem::take(batch);
        let all: Vec<&Arc<Alert>> = old.iter().chain(new.iter()).collect();
        if all.is_empty() {
            return;
        }
        let body = serde_json::to_vec(&all.iter().map(|a| self.payload(a)).collect::<Vec<_>>())
            .unwrap_or_default();
        match post(&self.endpoint, &body, self.config.timeout).await {
            Ok(()) => {
                self.health.success();
                self.stats
                    .sent
                    .fetch_add(all.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.health.failure(&e);
                self.stats.post_errors.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .dropped_failed
                    .fetch_add(old.len() as u64, Ordering::Relaxed);
                tracing::warn!(error = %e, alerts = all.len(), "posting alerts to Alertmanager failed");
                *retry = new;
            }
        }
    }

    /// The API v2 object for one alert.
    fn payload(&self, a: &Alert) -> Value {
        let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(a.ts_ns);
        let start = if a.ts_ns == 0 {
            SystemTime::now()
        } else {
            start
        };
        let end = start + self.config.resolve_timeout;
        let mut labels = serde_json::Map::new();
        for (k, v) in &a.labels {
            if !v.is_empty() {
                labels.insert(label_name(k), v.clone().into());
            }
        }
        // The names routing trees and inhibitions use, beside the OTel keys.
        for (route, key) in ROUTING_LABELS {
            if let Some(v) = a.labels.get(*key).filter(|v| !v.is_empty()) {
                labels.insert((*route).into(), v.clone().into());
            }
        }
        labels.insert("alertname".into(), a.rule.to_string().into());
        labels.insert("severity".into(), a.severity.as_str().into());
        labels.insert("source".into(), "eunomia".into());
        labels.insert("instance".into(), self.instance.clone().into());
        labels.insert(
            "fingerprint".into(),
            format!("{:016x}", a.fingerprint).into(),
        );
        json!({
            "labels": labels,
            "annotations": {
                "summary": a.output,
                "description": &*a.description,
                "tags": a.tags.join(","),
                "kind": a.kind,
                "tool": &*a.tool,
                "event": serde_json::to_string(&a.fields).unwrap_or_default(),
                "suppressed_duplicates": a.suppressed.to_string(),
            },
            "startsAt": humantime::format_rfc3339_millis(start).to_string(),
            "endsAt": humantime::format_rfc3339_millis(end).to_string(),
        })
    }
}

/// `container.id` → `container_id`: Alertmanager label names are
/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn label_name(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) || s.is_empty() {
        s.insert(0, '_');
    }
    s
}

fn hostname() -> String {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| u.nodename().to_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// One HTTP/1.1 POST of JSON `body`; Ok on a 2xx status.
async fn post(ep: &Endpoint, body: &[u8], timeout: Duration) -> Result<(), AlertmanagerError> {
    let io = |source| AlertmanagerError::Io {
        addr: ep.addr.clone(),
        source,
    };
    let exchange = async {
        let mut stream = TcpStream::connect(&ep.addr).await.map_err(io)?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: eunomia/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            ep.path,
            ep.host,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        stream.write_all(head.as_bytes()).await.map_err(io)?;
        stream.write_all(body).await.map_err(io)?;
        let mut resp = Vec::new();
        stream
            .take(64 * 1024)
            .read_to_end(&mut resp)
            .await
            .map_err(io)?;
        Ok::<_, AlertmanagerError>(resp)
    };
    let resp = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| AlertmanagerError::Timeout(ep.addr.clone()))??;
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Err(AlertmanagerError::Status {
        addr: ep.addr.clone(),
        status,
        body: body.chars().take(200).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("http://127.0.0.1:9093").unwrap();
        assert_eq!(
            (e.addr.as_str(), e.path.as_str()),
            ("127.0.0.1:9093", "/api/v2/alerts")
        );
        let e = Endpoint::parse("http://am.local/prefix/").unwrap();
        assert_eq!(
            (e.addr.as_str(), e.path.as_str()),
            ("am.local:9093", "/prefix/api/v2/alerts")
        );
        assert!(Endpoint::parse("https://x").is_err());
        assert!(Endpoint::parse("http:///x").is_err());
    }

    #[test]
    fn payload_has_routing_labels_and_the_rule_description() {
        let set = crate::rules::load_str(
            "t.toml",
            "[[rule]]\nname = \"r\"\ndescription = \"A shell ran in a container.\"\ncondition = 'event.kind = exec'\nseverity = \"warning\"\noutput = \"shell in {container}\"\n",
        )
        .unwrap()
        .set;
        let e = parsers::Event::new("execsnoop".into(), parsers::EventKind::Exec);
        let labels = vec![
            ("container.id", "3f4e".repeat(16)),
            ("container.name", "web".to_owned()),
            ("k8s.namespace.name", "shop".to_owned()),
            ("k8s.pod.name", "web-7d9".to_owned()),
        ];
        let ctx = crate::rules::Ctx {
            event: &e,
            labels: &labels,
            lineage: crate::rules::Lineage::default(),
        };
        let alert = Alert::new(&set.rules()[0], &ctx, 7, 0);
        let poster = Poster {
            health: crate::sinks::health::register("alertmanager-test", "x"),
            endpoint: Endpoint::parse("http://127.0.0.1:9093").unwrap(),
            config: AlertmanagerConfig {
                enabled: true,
                url: "http://127.0.0.1:9093".into(),
                resolve_timeout: default_resolve_timeout(),
                flush_interval: default_flush_interval(),
                timeout: default_timeout(),
                queue: default_queue(),
            },
            stats: Default::default(),
            instance: "node-1".into(),
        };
        let p = poster.payload(&alert);
        assert_eq!(p["labels"]["namespace"], "shop");
        assert_eq!(p["labels"]["pod"], "web-7d9");
        assert_eq!(p["labels"]["container"], "web");
        assert_eq!(p["labels"]["k8s_namespace_name"], "shop");
        assert_eq!(
            p["annotations"]["description"],
            "A shell ran in a container."
        );
        assert_eq!(p["annotations"]["summary"], "shell in web");
    }

    #[test]
    fn label_names_are_prometheus_names() {
        assert_eq!(label_name("container.id"), "container_id");
        assert_eq!(label_name("k8s.pod.name"), "k8s_pod_name");
        assert_eq!(label_name("9x"), "_9x");
    }
}
