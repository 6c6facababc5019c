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
//! at the next flush and then dropped and counted. Posts go over reqwest
//! (`http://` or `https://`).

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Outcome, SinkContext, SinkStats, Started, stats::DropCounter};
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
    /// The URL is not `http(s)://host[:port][/prefix]`.
    #[error("alertmanager url `{0}`: expected http://HOST[:PORT][/PREFIX] or https://...")]
    BadUrl(String),
    /// The HTTP client could not be built.
    #[error("alertmanager HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// Connecting, writing or reading failed.
    #[error("alertmanager at {addr}: {reason}")]
    Http {
        /// host:port.
        addr: String,
        /// Why, with its causes (`connection refused`, ...).
        reason: String,
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
    pub(crate) fn validate(&self) -> Result<(), AlertmanagerError> {
        Endpoint::parse(&self.url).map(|_| ())
    }
}

/// Where to post: the API v2 alerts URL and its `host:port` for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    url: reqwest::Url,
    addr: String,
}

impl Endpoint {
    /// `BASE/api/v2/alerts`; a base without a port gets Alertmanager's 9093.
    fn parse(base: &str) -> Result<Endpoint, AlertmanagerError> {
        let bad = || AlertmanagerError::BadUrl(base.to_owned());
        // `http:///x` has no host (the URL parser would take `x` as one).
        let authority = base.split_once("://").map_or("", |(_, rest)| rest);
        if authority.is_empty() || authority.starts_with('/') {
            return Err(bad());
        }
        let mut url = reqwest::Url::parse(base).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(bad());
        }
        if url.port().is_none() {
            url.set_port(Some(9093)).map_err(|_| bad())?;
        }
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}/api/v2/alerts"));
        let host = url.host_str().unwrap_or_default();
        let addr = format!("{host}:{}", url.port().unwrap_or(9093));
        Ok(Endpoint { url, addr })
    }
}

/// The pipeline side of the sink: queues alerts for the posting task.
pub(crate) struct AlertmanagerSink {
    tx: mpsc::Sender<Arc<Alert>>,
    dropped_full: DropCounter,
}

impl AlertSink for AlertmanagerSink {
    fn send(&mut self, alert: &Arc<Alert>) {
        if self.tx.try_send(alert.clone()).is_err() {
            self.dropped_full.inc();
        }
    }
}

/// Routing label names and the enrichment keys they copy.
const ROUTING_LABELS: &[(&str, &str)] = &[
    ("namespace", model::labels::K8S_NAMESPACE),
    ("pod", model::labels::K8S_POD_NAME),
    ("container", model::labels::CONTAINER_NAME),
];

/// Alerts posted at most in one request.
const MAX_BATCH: usize = 256;

/// Starts the posting task; it ends, after a last flush, on the context's
/// `stop` or when the rules stage lets go of the sink.
pub(crate) fn start(
    config: &AlertmanagerConfig,
    ctx: &SinkContext,
) -> Result<Started, AlertmanagerError> {
    let endpoint = Endpoint::parse(&config.url)?;
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .user_agent(concat!("eunomia/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(AlertmanagerError::Client)?;
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let stats = ctx.stats("alertmanager", config.url.clone());
    stats.declare_export(SIGNAL, Outcome::Failure);
    stats.declare_drops(SIGNAL, "failure");
    let sink = AlertmanagerSink {
        tx,
        dropped_full: stats.drop_counter(SIGNAL, "queue_full"),
    };
    let poster = Poster {
        stats,
        client,
        endpoint,
        config: config.clone(),
        instance: crate::host::hostname(),
    };
    Ok(Started {
        tasks: vec![tokio::spawn(poster.run(rx, ctx.stop.clone()))],
        events: None,
        alerts: Some(Box::new(sink)),
    })
}

/// The `signal` label of the sink's counters.
const SIGNAL: &str = "alerts";

struct Poster {
    stats: Arc<SinkStats>,
    client: reqwest::Client,
    endpoint: Endpoint,
    config: AlertmanagerConfig,
    instance: String,
}

impl Poster {
    async fn run(self, mut rx: mpsc::Receiver<Arc<Alert>>, stop: CancellationToken) {
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
                _ = stop.cancelled() => {
                    while let Ok(a) = rx.try_recv() {
                        batch.push(a);
                    }
                    break;
                }
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
        match post(&self.client, &self.endpoint, body).await {
            Ok(()) => self.stats.export(SIGNAL, Outcome::Success),
            Err(e) => {
                self.stats.failure(&e);
                self.stats.export(SIGNAL, Outcome::Failure);
                self.stats.dropped(SIGNAL, "failure", old.len() as u64);
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
pub(crate) fn label_name(key: &str) -> String {
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

/// `err` and its causes, `: `-separated (reqwest's own message alone does
/// not say why a connection failed).
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// One POST of JSON `body`; Ok on a 2xx status.
async fn post(
    client: &reqwest::Client,
    ep: &Endpoint,
    body: Vec<u8>,
) -> Result<(), AlertmanagerError> {
    let resp = client
        .post(ep.url.clone())
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|source| match source.is_timeout() {
            true => AlertmanagerError::Timeout(ep.addr.clone()),
            false => AlertmanagerError::Http {
                addr: ep.addr.clone(),
                reason: with_causes(&source),
            },
        })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(AlertmanagerError::Status {
        addr: ep.addr.clone(),
        status: status.as_u16(),
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
            (e.addr.as_str(), e.url.path()),
            ("127.0.0.1:9093", "/api/v2/alerts")
        );
        let e = Endpoint::parse("http://am.local/prefix/").unwrap();
        assert_eq!(
            (e.addr.as_str(), e.url.path()),
            ("am.local:9093", "/prefix/api/v2/alerts")
        );
        // Over reqwest, https works too.
        assert!(Endpoint::parse("https://x").is_ok());
        assert!(Endpoint::parse("ftp://x").is_err());
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
            stats: SinkStats::new(
                "alertmanager-test",
                "x".into(),
                crate::selfmetrics::Registry::new(),
            ),
            client: reqwest::Client::new(),
            endpoint: Endpoint::parse("http://127.0.0.1:9093").unwrap(),
            config: AlertmanagerConfig {
                enabled: true,
                url: "http://127.0.0.1:9093".into(),
                resolve_timeout: default_resolve_timeout(),
                flush_interval: default_flush_interval(),
                timeout: default_timeout(),
                queue: default_queue(),
            },
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
