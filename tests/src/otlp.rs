//! A test OTLP receiver built from the official protocol definitions (the
//! `opentelemetry-proto` crate's tonic server traits): it records every
//! metrics, logs and traces request it accepts, and can be stopped and restarted on
//! the same port to play an unreachable core.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::{
            ExportLogsServiceRequest, ExportLogsServiceResponse,
            logs_service_server::{LogsService, LogsServiceServer},
        },
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value},
    metrics::v1::{Metric, metric::Data, number_data_point},
};
use tonic::{Request, Response, Status, codec::CompressionEncoding};

/// Everything received, in arrival order.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Metrics requests with the time they arrived.
    pub metrics: Vec<(Instant, ExportMetricsServiceRequest)>,
    /// Logs requests.
    pub logs: Vec<ExportLogsServiceRequest>,
    /// Traces requests.
    pub traces: Vec<ExportTraceServiceRequest>,
    /// The gRPC metadata (ASCII entries) of each metrics request.
    pub metrics_metadata: Vec<Vec<(String, String)>>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Received>>, Arc<Mutex<Duration>>);

impl Recorder {
    /// A slow core: it takes the request, then answers after the delay (so
    /// an agent that gave up waiting may send it again).
    async fn answer_late(&self) {
        let delay = *self.1.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

#[tonic::async_trait]
impl MetricsService for Recorder {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        {
            let mut r = self.0.lock().unwrap();
            let metadata = req
                .metadata()
                .iter()
                .filter_map(|kv| match kv {
                    tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                        Some((k.to_string(), v.to_str().ok()?.to_owned()))
                    }
                    tonic::metadata::KeyAndValueRef::Binary(..) => None,
                })
                .collect();
            r.metrics_metadata.push(metadata);
            r.metrics.push((Instant::now(), req.into_inner()));
        }
        self.answer_late().await;
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Recorder {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.0.lock().unwrap().logs.push(req.into_inner());
        self.answer_late().await;
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Recorder {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.lock().unwrap().traces.push(req.into_inner());
        self.answer_late().await;
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A running (or stopped) receiver.
pub struct OtlpReceiver {
    addr: SocketAddr,
    recorder: Recorder,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// The largest request accepted (gRPC's message limit).
    limit: usize,
}

impl OtlpReceiver {
    /// Starts on a free loopback port.
    pub fn start() -> OtlpReceiver {
        Self::start_with_limit(64 << 20)
    }

    /// Starts on a free loopback port, refusing requests larger than
    /// `limit` bytes as a core with a small message limit does.
    pub fn start_with_limit(limit: usize) -> OtlpReceiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut r = OtlpReceiver {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            recorder: Recorder::default(),
            runtime,
            stop: None,
            server: None,
            limit,
        };
        r.serve();
        r
    }

    fn serve(&mut self) {
        let listener = self
            .runtime
            .block_on(tokio::net::TcpListener::bind(self.addr))
            .expect("bind OTLP receiver");
        self.addr = listener.local_addr().expect("local_addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let rec = self.recorder.clone();
        let limit = self.limit;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        self.server = Some(self.runtime.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(
                    MetricsServiceServer::new(rec.clone())
                        .accept_compressed(CompressionEncoding::Gzip)
                        .max_decoding_message_size(limit),
                )
                .add_service(
                    LogsServiceServer::new(rec.clone())
                        .accept_compressed(CompressionEncoding::Gzip)
                        .max_decoding_message_size(limit),
                )
                .add_service(
                    TraceServiceServer::new(rec)
                        .accept_compressed(CompressionEncoding::Gzip)
                        .max_decoding_message_size(limit),
                )
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await
                .expect("OTLP receiver");
        }));
        self.stop = Some(tx);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving; the port refuses connections until [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), h).await });
        }
    }

    /// Serves again on the same port.
    pub fn restart(&mut self) {
        self.serve();
    }

    /// Answers every request `delay` after taking it (a slow core).
    pub fn set_delay(&self, delay: Duration) {
        *self.recorder.1.lock().unwrap() = delay;
    }

    /// A copy of everything received so far.
    pub fn received(&self) -> Received {
        self.recorder.0.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for what was received; panics after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Received) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if pred(&self.recorder.0.lock().unwrap()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("OTLP receiver: {what} not received within {timeout:?}");
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every metric named `name` across `requests`, in arrival order.
pub fn metrics_named<'a>(
    requests: impl IntoIterator<Item = &'a ExportMetricsServiceRequest>,
    name: &str,
) -> Vec<&'a Metric> {
    requests
        .into_iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .filter(|m| m.name == name)
        .collect()
}

/// The string value of attribute `key`.
pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}

/// Any attribute value, as text.
pub fn attr_text(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v: &AnyValue = attrs.iter().find(|a| a.key == key)?.value.as_ref()?;
    Some(match v.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

/// The value of a Sum or Gauge point with attribute `key` = `value`
/// (any point when `key` is empty), with its time.
pub fn number_points(m: &Metric) -> Vec<(u64, &[KeyValue], f64)> {
    let points = match &m.data {
        Some(Data::Sum(s)) => &s.data_points,
        Some(Data::Gauge(g)) => &g.data_points,
        _ => return Vec::new(),
    };
    points
        .iter()
        .map(|p| {
            let v = match p.value {
                Some(number_data_point::Value::AsDouble(d)) => d,
                Some(number_data_point::Value::AsInt(i)) => i as f64,
                None => f64::NAN,
            };
            (p.time_unix_nano, p.attributes.as_slice(), v)
        })
        .collect()
}
