//! The JSON-lines sink, for piping and debugging: every event as one JSON
//! object per line (the parsers' flat shape plus `"type":"event"`), and every
//! interval one line per metric point (`"type":"metric"`). Writes happen on
//! a task of their own behind a bounded queue; a full queue drops and counts.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncWrite, AsyncWriteExt},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

use super::{EventSink, SinkContext, SinkStats, Started, publisher::Fresh, stats::DropCounter};
use crate::{
    aggregate::{MetricKind, PointValue, Snapshot},
    pipeline::ToolRecord,
};

/// `[sinks.jsonl]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonlConfig {
    /// Write JSON lines.
    pub enabled: bool,
    /// A file to append to, or `-` for stdout.
    pub path: PathBuf,
    /// Write every event.
    pub(crate) events: bool,
    /// Write the metrics every `interval`.
    pub(crate) metrics: bool,
    /// How often metrics are written.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Lines queued before new ones are dropped (and counted).
    pub queue: usize,
}

impl Default for JsonlConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            path: PathBuf::from("-"),
            events: true,
            metrics: true,
            interval: Duration::from_secs(10),
            queue: 10_000,
        }
    }
}

impl JsonlConfig {
    /// Whether the sink writes to stdout (`path = "-"`): then stdout is
    /// JSON lines only, and the human summaries and alerts go to stderr.
    pub(crate) fn writes_stdout(&self) -> bool {
        self.enabled && self.path.as_os_str() == "-"
    }

    /// Checks values; the message names the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.enabled && (self.queue == 0 || self.interval < Duration::from_millis(100)) {
            return Err("sinks.jsonl: queue must be at least 1 and interval at least 100ms".into());
        }
        Ok(())
    }
}

/// One metric point as a JSON line.
#[derive(Debug, Serialize)]
struct MetricLine<'a> {
    r#type: &'static str,
    ts_ns: u64,
    name: &'a str,
    kind: &'static str,
    labels: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bounds: Option<&'a [f64]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    buckets: Option<&'a [u64]>,
}

/// The lines of one snapshot.
pub(crate) fn metric_lines(snap: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for m in &snap.metrics {
        for p in &m.points {
            let mut line = MetricLine {
                r#type: "metric",
                ts_ns: snap.time_ns,
                name: m.name,
                kind: m.kind.as_str(),
                labels: p.labels.iter().map(|(k, v)| (*k, &**v)).collect(),
                value: None,
                count: None,
                sum: None,
                bounds: None,
                buckets: None,
            };
            match &p.value {
                PointValue::Number(v) => line.value = Some(*v),
                PointValue::Histogram(h) if m.kind == MetricKind::Histogram => {
                    line.count = Some(h.count());
                    line.sum = Some(h.sum());
                    line.bounds = Some(h.bounds());
                    line.buckets = Some(h.counts());
                }
                PointValue::Histogram(h) => line.value = Some(h.count() as f64),
            }
            if let Ok(s) = serde_json::to_string(&line) {
                out.push(s);
            }
        }
    }
    out
}

/// One event as a JSON line in the one schema ([`crate::schema`]):
/// `"type":"event"`, the parsers' flat object, then the workload labels
/// (`cgroup.id`, `container.id`, `k8s.pod.name`, ...).
pub(crate) fn event_line(r: &crate::pipeline::ToolRecord) -> Option<String> {
    r.record.as_event()?;
    serde_json::to_string(&crate::schema::tool_record_object(r)).ok()
}

/// The handle the consume loop uses.
#[derive(Debug, Clone)]
pub(crate) struct JsonlSender {
    tx: mpsc::Sender<String>,
    events: bool,
    dropped: DropCounter,
}

impl EventSink for JsonlSender {
    fn offer(&self, record: &ToolRecord) {
        self.send_event(record);
    }
}

impl JsonlSender {
    /// Queues an event line without waiting.
    pub(crate) fn send_event(&self, e: &crate::pipeline::ToolRecord) {
        if !self.events {
            return;
        }
        if let Some(line) = event_line(e)
            && self.tx.try_send(line).is_err()
        {
            self.dropped.inc();
        }
    }
}

/// The sink could not open its file.
#[derive(Debug, thiserror::Error)]
#[error("opening {path} for JSON lines: {source}")]
pub struct JsonlError {
    /// The file.
    pub(crate) path: PathBuf,
    /// Why.
    #[source]
    pub(crate) source: std::io::Error,
}

/// Opens the output and starts the writer; events go to the sender it
/// hands back.
pub(crate) async fn start(config: &JsonlConfig, ctx: &SinkContext) -> Result<Started, JsonlError> {
    let out: Box<dyn AsyncWrite + Send + Unpin> = if config.path.as_os_str() == "-" {
        Box::new(tokio::io::stdout())
    } else {
        let f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)
            .await
            .map_err(|source| JsonlError {
                path: config.path.clone(),
                source,
            })?;
        Box::new(f)
    };
    let (tx, rx) = mpsc::channel(config.queue);
    let to = match config.path.as_os_str() == "-" {
        true => "stdout".to_owned(),
        false => config.path.display().to_string(),
    };
    let stats = ctx.stats("jsonl", to);
    let sender = JsonlSender {
        tx,
        events: config.events,
        dropped: stats.drop_counter("logs", "queue_full"),
    };
    let writer = Writer {
        stats,
        out: tokio::io::BufWriter::new(out),
        snapshots: Fresh::new(ctx.snapshots.clone()),
        interval: config.interval,
        metrics: config.metrics,
    };
    Ok(Started {
        tasks: vec![tokio::spawn(writer.run(rx, ctx.stop.clone()))],
        events: Some(Arc::new(sender)),
        alerts: None,
    })
}

struct Writer {
    stats: Arc<SinkStats>,
    out: tokio::io::BufWriter<Box<dyn AsyncWrite + Send + Unpin>>,
    snapshots: Fresh,
    interval: Duration,
    metrics: bool,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<String>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.tick().await;
        // Metrics are due: they are written from the next fresh snapshot.
        let mut due = false;
        loop {
            let result = tokio::select! {
                Some(line) = rx.recv() => self.line(&line).await,
                _ = ticker.tick() => {
                    due = self.metrics;
                    if due { Ok(()) } else { self.out.flush().await }
                }
                snap = self.snapshots.next(), if due => {
                    due = false;
                    self.snapshot(&snap).await
                }
                _ = stop.cancelled() => break,
            };
            match result {
                Ok(()) => self.stats.success(),
                Err(err) => {
                    self.stats.failure(format!("{err}; stopped"));
                    tracing::warn!("JSON lines sink: {err}; stopping it");
                    return;
                }
            }
        }
        while let Ok(line) = rx.try_recv() {
            let _ = self.line(&line).await;
        }
        let last = self.snapshots.latest();
        let _ = self.snapshot(&last).await;
        let _ = self.out.flush().await;
    }

    async fn line(&mut self, line: &str) -> std::io::Result<()> {
        self.out.write_all(line.as_bytes()).await?;
        self.out.write_all(b"\n").await?;
        if self.out.buffer().len() > 32 << 10 {
            self.out.flush().await?;
        }
        Ok(())
    }

    async fn snapshot(&mut self, snap: &Snapshot) -> std::io::Result<()> {
        if self.metrics {
            for line in metric_lines(snap) {
                self.out.write_all(line.as_bytes()).await?;
                self.out.write_all(b"\n").await?;
            }
        }
        self.out.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggregateConfig, Aggregator};

    #[test]
    fn events_are_flat_objects_tagged_event() {
        let mut e = parsers::Event::new("execsnoop".into(), parsers::EventKind::Exec);
        e.pid = Some(3);
        let r = crate::pipeline::ToolRecord::new("execsnoop".into(), parsers::Record::Event(e));
        let v: serde_json::Value = serde_json::from_str(&event_line(&r).unwrap()).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["kind"], "exec");
        assert_eq!(v["proc.pid"], 3);
    }

    #[test]
    fn metrics_are_one_line_per_point() {
        let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
        let e = parsers::Event::new("execsnoop".into(), parsers::EventKind::Exec);
        a.ingest_event(&e);
        let lines = metric_lines(&a.collect());
        let v: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let execs = v
            .iter()
            .find(|l| l["name"] == "eunomia_process_execs_total")
            .unwrap();
        assert_eq!(execs["kind"], "count");
        assert_eq!(execs["value"], 1.0);
    }
}
