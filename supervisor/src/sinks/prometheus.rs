//! The Prometheus sink: a `/metrics` endpoint in the text exposition format
//! (0.0.4) of the latest published snapshot. Label names are
//! the model's with every character outside `[a-zA-Z0-9_]` replaced by `_`
//! (`container.name` → `container_name`).

use std::{convert::Infallible, fmt::Write as _, net::SocketAddr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;

use super::{Outcome, SinkContext, SinkStats, Snapshots, Started};
use crate::aggregate::{Histogram, MetricKind, Point, PointValue, Snapshot};

/// `[sinks.prometheus]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Serve `/metrics`.
    pub enabled: bool,
    /// Listen address (loopback by default).
    pub listen: SocketAddr,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

/// The exposition format's content type.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `s` as a Prometheus label name.
pub(crate) fn label_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn escape_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The text exposition of `snap`.
pub(crate) fn encode_text(snap: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    for m in &snap.metrics {
        let kind = match m.kind {
            MetricKind::Sum | MetricKind::Count => "counter",
            MetricKind::LastValue => "gauge",
            MetricKind::Histogram => "histogram",
        };
        if !m.help.is_empty() {
            let _ = writeln!(out, "# HELP {} {}", m.name, escape_help(m.help));
        }
        let _ = writeln!(out, "# TYPE {} {kind}", m.name);
        for p in &m.points {
            match &p.value {
                PointValue::Number(v) => sample(&mut out, m.name, "", p, None, *v),
                PointValue::Histogram(h) => histogram(&mut out, m.name, p, h),
            }
        }
    }
    out
}

fn histogram(out: &mut String, name: &str, p: &Point, h: &Histogram) {
    let mut cumulative = 0u64;
    for (i, c) in h.counts().iter().enumerate() {
        cumulative += c;
        let le = match h.bounds().get(i) {
            Some(b) => format_float(*b),
            None => "+Inf".to_owned(),
        };
        sample(out, name, "_bucket", p, Some(&le), cumulative as f64);
    }
    sample(out, name, "_sum", p, None, h.sum());
    sample(out, name, "_count", p, None, h.count() as f64);
}

fn sample(out: &mut String, name: &str, suffix: &str, p: &Point, le: Option<&str>, v: f64) {
    out.push_str(name);
    out.push_str(suffix);
    if !p.labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        for (k, val) in p.labels.iter() {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&label_name(k));
            out.push_str("=\"");
            escape_value(val, out);
            out.push('"');
        }
        if let Some(le) = le {
            if !first {
                out.push(',');
            }
            let _ = write!(out, "le=\"{le}\"");
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&format_float(v));
    out.push('\n');
}

/// A float as Prometheus writes it.
pub(crate) fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[error("listening on {addr} for Prometheus scrapes: {source}")]
pub struct ListenError {
    /// The address.
    pub(crate) addr: SocketAddr,
    /// Why.
    #[source]
    pub(crate) source: std::io::Error,
}

/// Binds the listener and serves `/metrics` until the context's `stop`.
pub(crate) async fn start(
    config: &PrometheusConfig,
    ctx: &SinkContext,
) -> Result<Started, ListenError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ListenError {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    tracing::info!(%addr, "serving Prometheus metrics on /metrics");
    let stats = ctx.stats("prometheus", format!("http://{addr}/metrics"));
    let (snapshots, stop) = (ctx.snapshots.clone(), ctx.stop.clone());
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(err) => {
                        stats.failure(format!("accepting a scrape connection: {err}"));
                        tracing::warn!("accepting a scrape connection: {err}");
                        continue;
                    }
                },
                _ = stop.cancelled() => return,
            };
            let snapshots = snapshots.clone();
            let stats = stats.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let snapshots = snapshots.clone();
                    let stats = stats.clone();
                    async move { Ok::<_, Infallible>(handle(req, &snapshots, &stats)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc);
                if let Err(err) = conn.await {
                    tracing::debug!("scrape connection: {err}");
                }
            });
        }
    });
    Ok(Started {
        tasks: vec![task],
        ..Started::default()
    })
}

fn handle(
    req: Request<Incoming>,
    snapshots: &Snapshots,
    stats: &SinkStats,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET || req.uri().path() != "/metrics" {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"not found; try /metrics\n")))
            .expect("static response");
    }
    stats.export("metrics", Outcome::Success);
    let snap = snapshots.borrow().clone();
    Response::builder()
        .header("content-type", CONTENT_TYPE)
        .body(Full::new(Bytes::from(encode_text(&snap))))
        .expect("static headers")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggregateConfig, Aggregator};
    use crate::testing::{OwnedEvent, OwnedValue};

    #[test]
    fn text_has_types_labels_and_histogram_buckets() {
        let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
        a.ingest_event(&OwnedEvent {
            tool: "tcplife".into(),
            kind: "tcp_session".into(),
            ts_ns: 1,
            fields: vec![
                ("net.dport".into(), OwnedValue::Int(443)),
                ("container.name".into(), OwnedValue::Str("we\"b".into())),
                ("duration".into(), OwnedValue::Duration(2_000_000)),
            ],
        });
        let text = encode_text(&a.collect());
        assert!(
            text.contains("# TYPE eunomia_tcp_sessions_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "eunomia_tcp_sessions_total{container_name=\"we\\\"b\",net_dport=\"443\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE eunomia_tcp_session_duration_seconds histogram\n"));
        assert!(text.contains("le=\"0.0025\"} 1\n"), "{text}");
        assert!(text.contains("le=\"0.001\"} 0\n"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 1\n"), "{text}");
        assert!(text.contains("eunomia_tcp_session_duration_seconds_count{container_name=\"we\\\"b\",net_dport=\"443\"} 1\n"));
    }

    #[test]
    fn label_names_are_sanitized() {
        assert_eq!(label_name("k8s.pod.name"), "k8s_pod_name");
        assert_eq!(label_name("9x"), "_9x");
    }
}
