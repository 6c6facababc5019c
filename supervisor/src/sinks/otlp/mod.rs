//! The OTLP/gRPC sink, the primary way data leaves the host: every export
//! interval the aggregator's snapshot becomes one metrics request; events
//! become log records, and span events (HTTP requests, [`model::span`])
//! spans ([`traces`]), batched. Requests wait in an ordered, bounded
//! [`buffer::ExportBuffer`] and a sender delivers them one at a time, retrying
//! with exponential backoff while the core is unreachable, so what was kept
//! arrives in order once it is back.

pub(crate) mod buffer;
pub mod encode;
pub mod logs_wire;
mod raw;
mod sender;
pub(crate) mod traces;

use std::{collections::BTreeMap, path::PathBuf, str::FromStr, sync::Arc, time::Duration};

use model::EventView;
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::metrics_service_client::MetricsServiceClient,
        trace::v1::trace_service_client::TraceServiceClient,
    },
    resource::v1::Resource,
};
use serde::Deserialize;
use tokio::sync::{Mutex, Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::{
    codec::CompressionEncoding,
    metadata::{MetadataKey, MetadataMap, MetadataValue},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use self::{
    buffer::{Batch, BufferConfig, ExportBuffer},
    logs_wire::LogsBuilder,
    raw::RawLogsClient,
    traces::ResourceSpan,
};
use super::{EventSink, SinkContext, SinkStats, Started, publisher::Fresh, stats::DropCounter};
use crate::{aggregate::Snapshot, host::now_ns, pipeline::ToolRecord};

/// Compression of export requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Compression {
    /// None.
    None,
    /// gzip.
    #[default]
    Gzip,
}

/// `[sinks.otlp.tls]`: for `https://` endpoints.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TlsConfig {
    /// PEM CA bundle to trust (in addition to the system's roots).
    pub(crate) ca_file: Option<PathBuf>,
    /// PEM client certificate (mutual TLS).
    pub(crate) cert_file: Option<PathBuf>,
    /// PEM client key (mutual TLS).
    pub(crate) key_file: Option<PathBuf>,
    /// Server name to verify instead of the endpoint's host.
    pub(crate) domain: Option<String>,
}

/// `[sinks.otlp]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Export over OTLP/gRPC.
    pub enabled: bool,
    /// `http://host:port` or `https://host:port` (default port 4317).
    pub endpoint: String,
    /// Where metrics go instead of `endpoint` (used as is, as OTLP/gRPC does).
    pub(crate) metrics_endpoint: Option<String>,
    /// Where logs go instead of `endpoint`.
    pub(crate) logs_endpoint: Option<String>,
    /// Where traces go instead of `endpoint`.
    pub(crate) traces_endpoint: Option<String>,
    /// Extra gRPC metadata sent with every request (e.g. an API key).
    pub(crate) headers: BTreeMap<String, String>,
    /// TLS settings for `https://` endpoints.
    pub(crate) tls: TlsConfig,
    /// Request compression.
    pub(crate) compression: Compression,
    /// How often metrics are exported (and log batches flushed).
    #[serde(with = "humantime_serde")]
    pub export_interval: Duration,
    /// Deadline of one export request (doubled, up to 4x, after a request
    /// timed out: a slow core is not sent the same batch again and again).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Export events as OTLP logs.
    pub(crate) logs: bool,
    /// Export span events (HTTP requests) as OTLP traces (else, with
    /// `logs`, as log records).
    pub(crate) traces: bool,
    /// Log records per logs request (a full batch is sent before the interval ends).
    pub(crate) max_logs_per_batch: usize,
    /// Log records queued between the pipeline and the sink.
    pub logs_queue: usize,
    /// First retry delay after a failed export; doubles up to `max_backoff`.
    #[serde(with = "humantime_serde")]
    pub(crate) initial_backoff: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub(crate) max_backoff: Duration,
    /// How long the agent's stop may wait for the core: the batches still
    /// undelivered then are spilled (with a spill directory) or dropped and
    /// counted. Keep it below the service manager's stop timeout.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// What is kept while the core is unreachable.
    pub(crate) buffer: BufferConfig,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: "http://localhost:4317".into(),
            metrics_endpoint: None,
            logs_endpoint: None,
            traces_endpoint: None,
            headers: BTreeMap::new(),
            tls: TlsConfig::default(),
            compression: Compression::Gzip,
            export_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
            logs: true,
            traces: true,
            max_logs_per_batch: 1000,
            logs_queue: 10_000,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
            buffer: BufferConfig::default(),
        }
    }
}

impl OtlpConfig {
    /// Checks values; the message names the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        check_endpoint("sinks.otlp.endpoint", &self.endpoint)?;
        if let Some(e) = &self.metrics_endpoint {
            check_endpoint("sinks.otlp.metrics_endpoint", e)?;
        }
        if let Some(e) = &self.logs_endpoint {
            check_endpoint("sinks.otlp.logs_endpoint", e)?;
        }
        if let Some(e) = &self.traces_endpoint {
            check_endpoint("sinks.otlp.traces_endpoint", e)?;
        }
        for (k, v) in &self.headers {
            MetadataKey::<tonic::metadata::Ascii>::from_str(&k.to_ascii_lowercase())
                .map_err(|_| format!("sinks.otlp.headers: invalid header name {k:?}"))?;
            MetadataValue::<tonic::metadata::Ascii>::from_str(v)
                .map_err(|_| format!("sinks.otlp.headers.{k}: invalid header value"))?;
        }
        if self.export_interval < Duration::from_millis(100) {
            return Err("sinks.otlp.export_interval must be at least 100ms".into());
        }
        if self.shutdown_timeout > Duration::from_secs(300) {
            return Err("sinks.otlp.shutdown_timeout must be at most 5m".into());
        }
        if self.timeout.is_zero() {
            return Err("sinks.otlp.timeout must be positive".into());
        }
        if self.initial_backoff.is_zero() || self.max_backoff < self.initial_backoff {
            return Err("sinks.otlp: need 0 < initial_backoff <= max_backoff".into());
        }
        if self.max_logs_per_batch == 0 || self.logs_queue == 0 {
            return Err("sinks.otlp.max_logs_per_batch and logs_queue must be at least 1".into());
        }
        if self.buffer.max_batches == 0 || self.buffer.max_bytes == 0 {
            return Err("sinks.otlp.buffer.max_batches and max_bytes must be at least 1".into());
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err("sinks.otlp.tls: cert_file and key_file go together".into());
        }
        Ok(())
    }
}

impl OtlpConfig {
    /// Where metrics requests go.
    pub(crate) fn metrics_endpoint(&self) -> &str {
        self.metrics_endpoint.as_deref().unwrap_or(&self.endpoint)
    }

    /// Where logs requests go.
    pub(crate) fn logs_endpoint(&self) -> &str {
        self.logs_endpoint.as_deref().unwrap_or(&self.endpoint)
    }

    /// Where traces requests go.
    pub(crate) fn traces_endpoint(&self) -> &str {
        self.traces_endpoint.as_deref().unwrap_or(&self.endpoint)
    }
}

/// Checks that `endpoint` is `http(s)://host[:port]`; `key` names it in the message.
pub(crate) fn check_endpoint(key: &str, endpoint: &str) -> Result<(), String> {
    let uri = tonic::codegen::http::Uri::from_str(endpoint)
        .map_err(|e| format!("{key} {endpoint:?}: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!(
            "{key} {endpoint:?}: expected http://host:port or https://host:port"
        ));
    }
    Ok(())
}

/// The OTLP sink could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// A TLS file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The endpoint or TLS settings are unusable.
    #[error("OTLP endpoint {endpoint}: {source}")]
    Endpoint {
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The spill directory cannot be used.
    #[error("OTLP spill directory: {0}")]
    Spill(#[source] std::io::Error),
}

/// What the consume loop queues for the producer.
#[derive(Debug)]
pub(crate) enum Item {
    /// An event as the bytes of a log record ([`logs_wire`]).
    Log(Vec<u8>),
    /// A span event as a span.
    Span(Box<ResourceSpan>),
}

/// The handle the consume loop uses to hand events to the sink.
#[derive(Debug, Clone)]
pub(crate) struct LogSender {
    tx: mpsc::Sender<Item>,
    logs: bool,
    traces: bool,
    queue_full: DropCounter,
    spans_full: DropCounter,
}

impl EventSink for LogSender {
    fn offer(&self, record: &ToolRecord) {
        if self.traces
            && let Some(span) = traces::span_of(record)
        {
            if self.tx.try_send(Item::Span(Box::new(span))).is_err() {
                self.spans_full.inc();
            }
            return;
        }
        if self.logs {
            self.send(record);
        }
    }
}

impl LogSender {
    /// Queues `ev` as a log record without waiting; drops and counts it
    /// when the queue is full.
    pub(crate) fn send(&self, ev: &dyn EventView) {
        let record = logs_wire::log_record_bytes(ev, now_ns());
        if self.tx.try_send(Item::Log(record)).is_err() {
            self.queue_full.inc();
        }
    }
}

/// Starts the sink's producer and sender tasks; events go to the sender it
/// hands back when logs are on.
pub(crate) fn start(config: &OtlpConfig, ctx: &SinkContext) -> Result<Started, OtlpError> {
    let metrics_channel = channel(config, config.metrics_endpoint())?;
    let logs_channel = match config.logs_endpoint() == config.metrics_endpoint() {
        true => metrics_channel.clone(),
        false => channel(config, config.logs_endpoint())?,
    };
    let traces_channel = match config.traces_endpoint() == config.metrics_endpoint() {
        true => metrics_channel.clone(),
        false => channel(config, config.traces_endpoint())?,
    };
    let buffer = ExportBuffer::new(config.buffer.clone()).map_err(OtlpError::Spill)?;
    let shared = Arc::new(Shared {
        buffer: Mutex::new(buffer),
        wake: Notify::new(),
        produced_all: CancellationToken::new(),
    });
    let stats = ctx.stats("otlp", target(config));
    register_buffer_gauges(ctx, &stats, &shared);
    let (logs_tx, logs_rx) = mpsc::channel(config.logs_queue);
    let logs = (config.logs || config.traces).then(|| LogSender {
        tx: logs_tx,
        logs: config.logs,
        traces: config.traces,
        queue_full: stats.drop_counter("logs", "queue_full"),
        spans_full: stats.drop_counter("traces", "queue_full"),
    });
    let producer = Producer {
        config: config.clone(),
        snapshots: Fresh::new(ctx.snapshots.clone()),
        resource: super::resource::resource(&ctx.resource_attributes),
        shared: shared.clone(),
        stats: stats.clone(),
    };
    let sender = sender::Sender {
        config: config.clone(),
        metrics: metrics_client(metrics_channel, config.compression),
        logs: logs_client(logs_channel, config.compression),
        traces: traces_client(traces_channel, config.compression),
        headers: headers(config),
        shared,
        stats,
    };
    tracing::info!(
        metrics = config.metrics_endpoint(),
        logs = config.logs_endpoint(),
        traces = config.traces_endpoint(),
        "exporting OTLP"
    );
    let stop = ctx.stop.clone();
    Ok(Started {
        tasks: vec![
            tokio::spawn(producer.run(logs_rx, stop.clone())),
            tokio::spawn(sender.run(stop)),
        ],
        events: logs.map(|l| Arc::new(l) as Arc<dyn EventSink>),
        alerts: None,
    })
}

fn register_buffer_gauges(ctx: &SinkContext, stats: &SinkStats, shared: &Arc<Shared>) {
    let s = Arc::downgrade(shared);
    stats.set_backlog(move || {
        s.upgrade()
            .and_then(|s| s.buffer.try_lock().ok().map(|b| b.len() as u64))
            .unwrap_or(0)
    });
    let registry = &ctx.registry;
    let s = Arc::downgrade(shared);
    registry.observe_gauge(
        "eunomia_sink_buffer_batches",
        "Export requests waiting in a sink's buffer.",
        &[("sink", "otlp")],
        move || {
            s.upgrade()
                .and_then(|s| s.buffer.try_lock().ok().map(|b| b.len() as f64))
                .unwrap_or(0.0)
        },
    );
    let s = Arc::downgrade(shared);
    registry.observe_gauge(
        "eunomia_sink_buffer_bytes",
        "Encoded bytes waiting in a sink's buffer (memory and disk).",
        &[("sink", "otlp")],
        move || {
            s.upgrade()
                .and_then(|s| s.buffer.try_lock().ok().map(|b| b.bytes() as f64))
                .unwrap_or(0.0)
        },
    );
}

/// State shared by producer and sender.
#[derive(Debug)]
struct Shared {
    buffer: Mutex<ExportBuffer>,
    wake: Notify,
    /// Cancelled by the producer after its last batch.
    produced_all: CancellationToken,
}

fn channel(config: &OtlpConfig, endpoint: &str) -> Result<Channel, OtlpError> {
    let endpoint_err = |source| OtlpError::Endpoint {
        endpoint: endpoint.to_owned(),
        source,
    };
    // The request deadline is set per request (longer for a slow core).
    let mut ep = Endpoint::from_shared(endpoint.to_owned())
        .map_err(endpoint_err)?
        .connect_timeout(config.timeout);
    if endpoint.starts_with("https://") {
        ep = ep.tls_config(tls(&config.tls)?).map_err(endpoint_err)?;
    }
    Ok(ep.connect_lazy())
}

fn tls(t: &TlsConfig) -> Result<ClientTlsConfig, OtlpError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| OtlpError::Read {
            path: path.clone(),
            source,
        })
    };
    let mut tls = ClientTlsConfig::new().with_native_roots();
    if let Some(ca) = &t.ca_file {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let (Some(cert), Some(key)) = (&t.cert_file, &t.key_file) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    if let Some(domain) = &t.domain {
        tls = tls.domain_name(domain.clone());
    }
    Ok(tls)
}

fn metrics_client(ch: Channel, c: Compression) -> MetricsServiceClient<Channel> {
    let client = MetricsServiceClient::new(ch).max_decoding_message_size(16 << 20);
    match c {
        Compression::Gzip => client.send_compressed(CompressionEncoding::Gzip),
        Compression::None => client,
    }
}

fn logs_client(ch: Channel, c: Compression) -> RawLogsClient {
    RawLogsClient::new(ch, c == Compression::Gzip)
}

fn traces_client(ch: Channel, c: Compression) -> TraceServiceClient<Channel> {
    let client = TraceServiceClient::new(ch);
    match c {
        Compression::Gzip => client.send_compressed(CompressionEncoding::Gzip),
        Compression::None => client,
    }
}

fn headers(config: &OtlpConfig) -> MetadataMap {
    let mut map = MetadataMap::new();
    for (k, v) in &config.headers {
        // Validated on load.
        if let (Ok(k), Ok(v)) = (
            MetadataKey::from_str(&k.to_ascii_lowercase()),
            MetadataValue::from_str(v),
        ) {
            map.insert(k, v);
        }
    }
    map
}

/// Makes batches: a metrics request per interval, log requests as records come.
struct Producer {
    config: OtlpConfig,
    snapshots: Fresh,
    resource: Resource,
    shared: Arc<Shared>,
    stats: Arc<SinkStats>,
}

impl Producer {
    async fn run(mut self, mut logs: mpsc::Receiver<Item>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.config.export_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut pending = Pending::default();
        // A metrics request is due: it goes with the next fresh snapshot.
        let mut due = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    self.flush_logs(&mut pending).await;
                    due = true;
                }
                snap = self.snapshots.next(), if due => {
                    due = false;
                    self.push_metrics(&snap).await;
                }
                Some(r) = logs.recv() => {
                    if pending.push(r) >= self.config.max_logs_per_batch {
                        self.flush_logs(&mut pending).await;
                    }
                }
                _ = stop.cancelled() => break,
            }
        }
        // The pipeline has drained: take what is left, then a last snapshot.
        while let Ok(r) = logs.try_recv() {
            pending.push(r);
        }
        self.flush_logs(&mut pending).await;
        let last = self.snapshots.latest();
        self.push_metrics(&last).await;
        self.shared.produced_all.cancel();
    }

    async fn push_metrics(&self, snap: &Snapshot) {
        let req = encode::metrics_request(snap, &self.resource);
        self.push(Batch::Metrics(req)).await;
    }

    /// Sends the pending log records and spans, each as one request.
    async fn flush_logs(&self, pending: &mut Pending) {
        if !pending.logs.is_empty() {
            let batch = pending.logs.finish(&self.resource);
            self.push(Batch::Logs(batch)).await;
        }
        let spans = std::mem::take(&mut pending.spans);
        if !spans.is_empty() {
            let req = traces::traces_request(spans, &self.resource);
            self.push(Batch::Traces(req)).await;
        }
    }

    async fn push(&self, batch: Batch) {
        let dropped = self.shared.buffer.lock().await.push(batch);
        for d in dropped {
            self.stats.dropped(d.signal, "buffer_full", d.items);
        }
        self.shared.wake.notify_one();
    }
}

/// Log records and spans waiting for the next request.
#[derive(Debug, Default)]
struct Pending {
    logs: LogsBuilder,
    spans: Vec<ResourceSpan>,
}

impl Pending {
    /// Adds `item`; returns how many of its kind wait.
    fn push(&mut self, item: Item) -> usize {
        match item {
            Item::Log(r) => {
                self.logs.push_encoded(&r);
                self.logs.len() as usize
            }
            Item::Span(s) => {
                self.spans.push(*s);
                self.spans.len()
            }
        }
    }
}

/// Where the sink sends, for `eunomia status`.
fn target(config: &OtlpConfig) -> String {
    let (m, l, t) = (
        config.metrics_endpoint(),
        config.logs_endpoint(),
        config.traces_endpoint(),
    );
    match m == l && m == t {
        true => config.endpoint.clone(),
        false => format!("metrics {m}, logs {l}, traces {t}"),
    }
}
