//! The Prometheus remote-write sink: every interval the snapshot becomes a
//! `WriteRequest` (protobuf, snappy block format) POSTed to a configured URL
//! (Prometheus with `--web.enable-remote-write-receiver`, Mimir, Thanos,
//! VictoriaMetrics, ...). Values are cumulative, so a failed request loses no
//! count: the next one carries it; failures are counted and retried at the
//! next interval.

use std::{collections::BTreeMap, time::Duration};

use super::{
    Outcome, SinkContext, Started,
    prometheus::{format_float, label_name},
    publisher::Fresh,
};
use crate::aggregate::{Histogram, MetricKind, Point, PointValue, Snapshot};
use prost::Message as _;
use serde::Deserialize;

/// The remote-write protocol's messages (prometheus/prompb, version 1).
pub(crate) mod prompb {
    /// `prometheus.WriteRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct WriteRequest {
        /// The series.
        #[prost(message, repeated, tag = "1")]
        pub(crate) timeseries: Vec<TimeSeries>,
    }

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TimeSeries {
        /// Labels, sorted by name, `__name__` included.
        #[prost(message, repeated, tag = "1")]
        pub(crate) labels: Vec<Label>,
        /// Samples, oldest first.
        #[prost(message, repeated, tag = "2")]
        pub(crate) samples: Vec<Sample>,
    }

    /// `prometheus.Label`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Label {
        /// Name.
        #[prost(string, tag = "1")]
        pub(crate) name: String,
        /// Value.
        #[prost(string, tag = "2")]
        pub(crate) value: String,
    }

    /// `prometheus.Sample`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Sample {
        /// Value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the epoch.
        #[prost(int64, tag = "2")]
        pub(crate) timestamp: i64,
    }
}

/// `[sinks.remote_write]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    /// Push to `url`.
    pub enabled: bool,
    /// The receiver, e.g. `http://127.0.0.1:9090/api/v1/write`.
    pub url: String,
    /// Extra HTTP headers (e.g. `Authorization`).
    pub(crate) headers: BTreeMap<String, String>,
    /// How often to push.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Deadline of one request.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Labels added to every series (e.g. `instance`).
    pub(crate) external_labels: BTreeMap<String, String>,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: String::new(),
            headers: BTreeMap::new(),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            external_labels: BTreeMap::new(),
        }
    }
}

impl RemoteWriteConfig {
    /// Checks values; the message names the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| format!("sinks.remote_write.url {:?}: {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "sinks.remote_write.url {:?}: expected http(s)://",
                self.url
            ));
        }
        if self.interval < Duration::from_millis(100) || self.timeout.is_zero() {
            return Err(
                "sinks.remote_write: interval must be at least 100ms, timeout positive".into(),
            );
        }
        for (k, v) in &self.headers {
            reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("sinks.remote_write.headers: invalid name {k:?}"))?;
            reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| format!("sinks.remote_write.headers.{k}: invalid value"))?;
        }
        if let Some(k) = self.external_labels.keys().find(|k| label_name(k) != **k) {
            return Err(format!(
                "sinks.remote_write.external_labels: invalid label name {k:?}"
            ));
        }
        Ok(())
    }
}

/// The write request for one snapshot.
pub(crate) fn write_request(
    snap: &Snapshot,
    external: &BTreeMap<String, String>,
) -> prompb::WriteRequest {
    let ts = (snap.time_ns / 1_000_000) as i64;
    let mut out = Vec::new();
    for m in &snap.metrics {
        for p in &m.points {
            match (&p.value, m.kind) {
                (PointValue::Histogram(h), MetricKind::Histogram) => {
                    histogram_series(&mut out, m.name, p, h, external, ts)
                }
                (PointValue::Number(v), _) => out.push(series(m.name, p, None, external, *v, ts)),
                (PointValue::Histogram(h), _) => {
                    out.push(series(m.name, p, None, external, h.count() as f64, ts))
                }
            }
        }
    }
    prompb::WriteRequest { timeseries: out }
}

fn histogram_series(
    out: &mut Vec<prompb::TimeSeries>,
    name: &str,
    p: &Point,
    h: &Histogram,
    external: &BTreeMap<String, String>,
    ts: i64,
) {
    let mut cumulative = 0u64;
    for (i, c) in h.counts().iter().enumerate() {
        cumulative += c;
        let le = h
            .bounds()
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |b| format_float(*b));
        let bucket = format!("{name}_bucket");
        out.push(series(
            &bucket,
            p,
            Some(le),
            external,
            cumulative as f64,
            ts,
        ));
    }
    out.push(series(
        &format!("{name}_sum"),
        p,
        None,
        external,
        h.sum(),
        ts,
    ));
    out.push(series(
        &format!("{name}_count"),
        p,
        None,
        external,
        h.count() as f64,
        ts,
    ));
}

fn series(
    name: &str,
    p: &Point,
    le: Option<String>,
    external: &BTreeMap<String, String>,
    value: f64,
    ts: i64,
) -> prompb::TimeSeries {
    let label = |name: String, value: String| prompb::Label { name, value };
    let mut labels: Vec<prompb::Label> = p
        .labels
        .iter()
        .map(|(k, v)| label(label_name(k), v.to_string()))
        .collect();
    for (k, v) in external {
        if !labels.iter().any(|l| l.name == *k) {
            labels.push(label(k.clone(), v.clone()));
        }
    }
    labels.push(label("__name__".into(), name.into()));
    if let Some(le) = le {
        labels.push(label("le".into(), le));
    }
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    labels.dedup_by(|a, b| a.name == b.name);
    prompb::TimeSeries {
        labels,
        samples: vec![prompb::Sample {
            value,
            timestamp: ts,
        }],
    }
}

/// The protobuf of `req`, snappy-compressed (block format) as the protocol wants.
pub(crate) fn encode(req: &prompb::WriteRequest) -> Vec<u8> {
    let raw = req.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compression of an in-memory buffer")
}

/// The sink could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("remote write HTTP client: {0}")]
pub struct RemoteWriteError(#[from] reqwest::Error);

/// Starts the push loop; it pushes once more after the context's `stop`.
pub(crate) fn start(
    config: &RemoteWriteConfig,
    ctx: &SinkContext,
) -> Result<Started, RemoteWriteError> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in &config.headers {
        if let (Ok(k), Ok(v)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v),
        ) {
            headers.insert(k, v);
        }
    }
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .default_headers(headers)
        .build()?;
    let config = config.clone();
    let stats = ctx.stats("remote_write", config.url.clone());
    let (mut snapshots, stop) = (Fresh::new(ctx.snapshots.clone()), ctx.stop.clone());
    tracing::info!(url = %config.url, "pushing Prometheus remote write");
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(config.interval);
        ticker.tick().await;
        loop {
            let last = tokio::select! {
                _ = ticker.tick() => false,
                _ = stop.cancelled() => true,
            };
            // The next fresh snapshot; at the end, the last one.
            let (snap, last) = match last {
                true => (snapshots.latest(), true),
                false => tokio::select! {
                    s = snapshots.next() => (s, false),
                    _ = stop.cancelled() => (snapshots.latest(), true),
                },
            };
            let req = write_request(&snap, &config.external_labels);
            let samples: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
            match push(&client, &config.url, encode(&req)).await {
                Ok(()) => stats.export("metrics", Outcome::Success),
                Err(err) => {
                    // Not retried: the next push carries the cumulative values.
                    stats.export("metrics", Outcome::Failure);
                    stats.dropped("metrics", "failure", samples as u64);
                    stats.failure(&err);
                    tracing::warn!(url = %config.url, "remote write failed: {err}");
                }
            }
            if last {
                return;
            }
        }
    });
    Ok(Started {
        tasks: vec![task],
        ..Started::default()
    })
}

async fn push(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(), String> {
    let resp = client
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header("User-Agent", concat!("eunomia/", env!("CARGO_PKG_VERSION")))
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        return Ok(());
    }
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    Err(format!("{status}: {}", text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggregateConfig, Aggregator};
    use crate::testing::{OwnedEvent, OwnedValue};

    #[test]
    fn series_have_sorted_labels_and_histogram_parts() {
        let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
        a.ingest_event(&OwnedEvent {
            tool: "tcplife".into(),
            kind: "tcp_session".into(),
            ts_ns: 1,
            fields: vec![
                ("net.dport".into(), OwnedValue::Int(80)),
                ("duration".into(), OwnedValue::Duration(1_000_000)),
            ],
        });
        let ext = [("instance".to_owned(), "h1".to_owned())].into();
        let req = write_request(&a.collect(), &ext);
        let names: Vec<&str> = req
            .timeseries
            .iter()
            .map(|t| {
                t.labels
                    .iter()
                    .find(|l| l.name == "__name__")
                    .unwrap()
                    .value
                    .as_str()
            })
            .collect();
        assert!(names.contains(&"eunomia_tcp_sessions_total"));
        assert!(names.contains(&"eunomia_tcp_session_duration_seconds_bucket"));
        assert!(names.contains(&"eunomia_tcp_session_duration_seconds_count"));
        for t in &req.timeseries {
            assert!(t.labels.windows(2).all(|w| w[0].name < w[1].name), "{t:?}");
            assert!(t.labels.iter().any(|l| l.name == "instance"));
        }
        let decoded = snap::raw::Decoder::new()
            .decompress_vec(&encode(&req))
            .unwrap();
        assert_eq!(prompb::WriteRequest::decode(&decoded[..]).unwrap(), req);
    }
}
