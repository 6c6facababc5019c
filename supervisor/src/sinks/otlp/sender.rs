//! The OTLP sender: delivers the buffer's batches in order, one at a time.
//!
//! - **Retries** follow OTLP's rules: `UNAVAILABLE`, `DEADLINE_EXCEEDED`,
//!   `ABORTED`, `OUT_OF_RANGE`, `DATA_LOSS`, `CANCELLED` (and `UNKNOWN`,
//!   which is how transport errors surface) are retried with exponential
//!   backoff; every other code drops the batch (counted, `rejected`).
//!   `RESOURCE_EXHAUSTED` is retried only when the core says when
//!   (`google.rpc.RetryInfo` in the details), as the specification asks.
//! - **A batch too large for the core** (its message-size limit:
//!   `RESOURCE_EXHAUSTED` or `OUT_OF_RANGE` naming the message size) is split
//!   in halves that go back at the front, down to a single item, which is
//!   dropped and counted (`too_large`): it never blocks the batches behind it.
//! - **Partial success**: the records the core rejected are counted, the rest
//!   counts as delivered; the batch is not sent again.
//! - **A bounded stop**: once the agent stops, the sender keeps delivering
//!   for at most `shutdown_timeout` (an export in flight and a backoff sleep
//!   included); then what is left is written to the spill directory (files
//!   0600) or, without one, counted as dropped (`shutdown`) — never neither.
//! - **A slow core** is not sent the same batch again and again: after a
//!   request times out, the next attempts wait twice as long (up to
//!   [`SLOW_CORE_FACTOR`] times `timeout`), back to `timeout` once one is
//!   delivered.
//! - The first failed export is a WARN naming the endpoint and the error;
//!   later ones are a WARN at most once a minute, and the recovery an INFO.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::{
    metrics::v1::metrics_service_client::MetricsServiceClient,
    trace::v1::trace_service_client::TraceServiceClient,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Status, metadata::MetadataMap, transport::Channel};

use super::{OtlpConfig, Shared, buffer::Batch, raw::RawLogsClient};
use crate::sinks::{Outcome as Export, SinkStats};

/// The longest request deadline, as a multiple of `timeout`.
pub(crate) const SLOW_CORE_FACTOR: u32 = 4;

/// Whether a request ended because its deadline passed: the server's
/// `DEADLINE_EXCEEDED`, or tonic's own `CANCELLED: Timeout expired`.
fn timed_out(s: &Status) -> bool {
    s.code() == Code::DeadlineExceeded
        || (s.code() == Code::Cancelled && s.message().contains("Timeout expired"))
}

/// The deadline of the next request after one that ended with `status`.
fn next_deadline(current: Duration, status: &Status, timeout: Duration) -> Duration {
    if timed_out(status) {
        (current * 2).min(timeout * SLOW_CORE_FACTOR)
    } else {
        current
    }
}

/// How often a core that keeps failing is logged at WARN.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Delivers batches in order, retrying with backoff.
pub(super) struct Sender {
    pub(super) config: OtlpConfig,
    pub(super) metrics: MetricsServiceClient<Channel>,
    pub(super) logs: RawLogsClient,
    pub(super) traces: TraceServiceClient<Channel>,
    pub(super) headers: MetadataMap,
    pub(super) shared: std::sync::Arc<Shared>,
    /// Exports, drops, up/down, last success and last error.
    pub(super) stats: std::sync::Arc<SinkStats>,
}

/// What became of one export attempt.
#[derive(Debug)]
enum Outcome {
    Delivered,
    Retry(Status),
    Rejected(Status),
    TooLarge(Status),
}

/// The stop deadline: unset until the agent stops, then `shutdown_timeout`
/// from that moment; every wait of the sender is bounded by it.
struct StopClock {
    stop: CancellationToken,
    grace: Duration,
    at: Option<Instant>,
}

impl StopClock {
    /// Runs `f` to its end, or until the deadline (`None`).
    async fn bound<F: std::future::Future>(&mut self, f: F) -> Option<F::Output> {
        tokio::pin!(f);
        loop {
            if let Some(at) = self.at {
                return tokio::time::timeout_at(at, &mut f).await.ok();
            }
            tokio::select! {
                out = &mut f => return Some(out),
                _ = self.stop.cancelled() => self.at = Some(Instant::now() + self.grace),
            }
        }
    }
}

/// Logs export failures without flooding: the first at WARN, then one
/// WARN a minute with the count, and the recovery.
#[derive(Default)]
struct FailureLog {
    failures: u64,
    last_warn: Option<Instant>,
}

impl FailureLog {
    fn failed(&mut self, endpoint: &str, signal: &str, status: &Status, backoff: Duration) {
        self.failures += 1;
        if self.last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            self.last_warn = Some(Instant::now());
            tracing::warn!(
                endpoint,
                signal,
                failures = self.failures,
                "OTLP export failed, retrying in {backoff:?} (batches wait in the buffer): {}",
                describe(status)
            );
        } else {
            tracing::debug!(
                endpoint,
                signal,
                ?backoff,
                "OTLP export failed: {}",
                describe(status)
            );
        }
    }

    fn delivered(&mut self, endpoint: &str) {
        if self.failures > 0 {
            tracing::info!(endpoint, failures = self.failures, "OTLP export recovered");
        }
        *self = FailureLog::default();
    }
}

fn describe(s: &Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

impl Sender {
    pub(super) async fn run(self, stop: CancellationToken) {
        let mut clock = StopClock {
            stop,
            grace: self.config.shutdown_timeout,
            at: None,
        };
        let mut backoff = self.config.initial_backoff;
        let mut deadline = self.config.timeout;
        let mut log = FailureLog::default();
        let endpoint = self.config.endpoint.clone();
        loop {
            let entry = self.shared.buffer.lock().await.take();
            let Some(entry) = entry else {
                if self.shared.produced_all.is_cancelled() {
                    return;
                }
                let shared = self.shared.clone();
                let woke = clock
                    .bound(async move {
                        tokio::select! {
                            _ = shared.wake.notified() => {}
                            _ = shared.produced_all.cancelled() => {}
                        }
                    })
                    .await;
                if woke.is_none() {
                    self.give_up().await;
                    return;
                }
                continue;
            };
            let signal = entry.batch.signal();
            let Some(outcome) = clock.bound(self.export(&entry.batch, deadline)).await else {
                self.shared.buffer.lock().await.give_back(entry);
                self.give_up().await;
                return;
            };
            match outcome {
                Outcome::Delivered => {
                    self.stats.export(signal, Export::Success);
                    self.shared.buffer.lock().await.done(entry);
                    backoff = self.config.initial_backoff;
                    deadline = self.config.timeout;
                    log.delivered(&endpoint);
                }
                Outcome::Rejected(status) => {
                    self.stats
                        .failure(format!("{signal} rejected: {}", status.message()));
                    tracing::warn!(
                        endpoint,
                        signal,
                        items = entry.batch.items(),
                        "OTLP export rejected, batch dropped: {}",
                        describe(&status)
                    );
                    self.stats.export(signal, Export::Rejected);
                    self.stats.dropped(signal, "rejected", entry.batch.items());
                    self.shared.buffer.lock().await.done(entry);
                }
                Outcome::TooLarge(status) => {
                    self.stats.export(signal, Export::TooLarge);
                    let mut buffer = self.shared.buffer.lock().await;
                    let batch = entry.batch.clone();
                    buffer.done(entry);
                    match batch.split() {
                        Ok((a, b)) => {
                            tracing::debug!(
                                signal,
                                "OTLP batch too large for the core, split in two"
                            );
                            buffer.put_front(b);
                            buffer.put_front(a);
                        }
                        Err(batch) => {
                            tracing::warn!(
                                endpoint,
                                signal,
                                items = batch.items(),
                                "OTLP batch too large for the core even alone, dropped: {}",
                                describe(&status)
                            );
                            self.stats.dropped(signal, "too_large", batch.items());
                        }
                    }
                }
                Outcome::Retry(status) => {
                    self.stats
                        .failure(format!("{signal}: {}", status.message()));
                    self.stats.export(signal, Export::Failure);
                    deadline = next_deadline(deadline, &status, self.config.timeout);
                    log.failed(&endpoint, signal, &status, backoff);
                    self.shared.buffer.lock().await.give_back(entry);
                    if clock.bound(tokio::time::sleep(backoff)).await.is_none() {
                        self.give_up().await;
                        return;
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// At the stop deadline: keeps what is buffered on disk when a spill
    /// directory is configured (the next run sends it first), otherwise
    /// counts it as dropped.
    async fn give_up(&self) {
        let mut buffer = self.shared.buffer.lock().await;
        if buffer.is_empty() {
            return;
        }
        match buffer.persist() {
            Ok(n) if self.config.buffer.spill_dir.is_some() => {
                tracing::warn!(
                    endpoint = %self.config.endpoint,
                    persisted = n,
                    held = buffer.len(),
                    "OTLP batches not delivered within the shutdown timeout ({:?}) kept in the spill directory",
                    self.config.shutdown_timeout
                );
                return;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!("persisting the OTLP buffer: {err}"),
        }
        let mut items = 0;
        let batches = buffer.len();
        while let Some(e) = buffer.take() {
            items += e.batch.items();
            self.stats
                .dropped(e.batch.signal(), "shutdown", e.batch.items());
            buffer.done(e);
        }
        tracing::warn!(
            endpoint = %self.config.endpoint,
            batches,
            items,
            "OTLP batches not delivered within the shutdown timeout ({:?}) dropped (no spill directory)",
            self.config.shutdown_timeout
        );
    }

    async fn export(&self, batch: &Batch, deadline: Duration) -> Outcome {
        let result = match batch {
            Batch::Metrics(m) => {
                let mut req = Request::new(m.clone());
                *req.metadata_mut() = self.headers.clone();
                req.set_timeout(deadline);
                self.metrics.clone().export(req).await.map(|r| {
                    r.into_inner()
                        .partial_success
                        .map(|p| (p.rejected_data_points, p.error_message))
                })
            }
            Batch::Logs(l) => {
                let mut req = Request::new(l.bytes().clone());
                *req.metadata_mut() = self.headers.clone();
                req.set_timeout(deadline);
                self.logs.clone().export(req).await.map(|r| {
                    r.into_inner()
                        .partial_success
                        .map(|p| (p.rejected_log_records, p.error_message))
                })
            }
            Batch::Traces(t) => {
                let mut req = Request::new(t.clone());
                *req.metadata_mut() = self.headers.clone();
                req.set_timeout(deadline);
                self.traces.clone().export(req).await.map(|r| {
                    r.into_inner()
                        .partial_success
                        .map(|p| (p.rejected_spans, p.error_message))
                })
            }
        };
        match result {
            Ok(partial) => {
                if let Some((rejected, msg)) = partial.filter(|(n, _)| *n > 0) {
                    tracing::warn!(rejected, "OTLP partial success: {msg}");
                    self.stats
                        .dropped(batch.signal(), "rejected", rejected as u64);
                }
                Outcome::Delivered
            }
            Err(s) => classify(s),
        }
    }
}

/// Sorts a failed export's status into retry, reject or too large.
fn classify(s: Status) -> Outcome {
    if too_large(&s) {
        return Outcome::TooLarge(s);
    }
    match s.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss
        // Transport errors (connection refused, reset) surface as Unknown.
        | Code::Unknown => Outcome::Retry(s),
        Code::ResourceExhausted if has_retry_info(&s) => Outcome::Retry(s),
        _ => Outcome::Rejected(s),
    }
}

/// Whether the core refused the request for its size (gRPC's message
/// limit: grpc-go says `received message larger than max`, tonic `message
/// length too large`).
fn too_large(s: &Status) -> bool {
    if !matches!(s.code(), Code::ResourceExhausted | Code::OutOfRange) {
        return false;
    }
    let m = s.message().to_ascii_lowercase();
    m.contains("larger than max") || m.contains("too large") || m.contains("message size")
}

/// Whether the status carries a `google.rpc.RetryInfo` detail (the core
/// says the request may be retried).
fn has_retry_info(s: &Status) -> bool {
    const TYPE: &[u8] = b"type.googleapis.com/google.rpc.RetryInfo";
    s.details().windows(TYPE.len()).any(|w| w == TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_sorted_by_the_otlp_rules() {
        let kind = |s: Status| match classify(s) {
            Outcome::Retry(_) => "retry",
            Outcome::Rejected(_) => "rejected",
            Outcome::TooLarge(_) => "too_large",
            Outcome::Delivered => "delivered",
        };
        assert_eq!(kind(Status::unavailable("down")), "retry");
        assert_eq!(kind(Status::unknown("transport error")), "retry");
        assert_eq!(kind(Status::invalid_argument("bad")), "rejected");
        assert_eq!(kind(Status::resource_exhausted("busy")), "rejected");
        assert_eq!(
            kind(Status::resource_exhausted(
                "grpc: received message larger than max (5000000 vs. 4194304)"
            )),
            "too_large"
        );
        assert_eq!(
            kind(Status::out_of_range(
                "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes"
            )),
            "too_large"
        );
        let with_retry = Status::with_details(
            Code::ResourceExhausted,
            "slow down",
            b"\n(type.googleapis.com/google.rpc.RetryInfo\x12\x02\x08\x01"
                .to_vec()
                .into(),
        );
        assert_eq!(kind(with_retry), "retry");
    }

    #[test]
    fn a_slow_core_gets_longer_deadlines_not_more_copies() {
        let t = Duration::from_secs(10);
        let late = Status::deadline_exceeded("late");
        let d = next_deadline(t, &late, t);
        assert_eq!(d, Duration::from_secs(20));
        // tonic's own deadline.
        let d = next_deadline(d, &Status::cancelled("Timeout expired"), t);
        let d = next_deadline(d, &late, t);
        assert_eq!(d, Duration::from_secs(40));
        assert_eq!(next_deadline(d, &Status::unavailable("down"), t), d);
        assert_eq!(next_deadline(t, &Status::cancelled("by peer"), t), t);
    }

    #[tokio::test]
    async fn the_stop_clock_bounds_waits_from_the_stop_on() {
        let stop = CancellationToken::new();
        let mut clock = StopClock {
            stop: stop.clone(),
            grace: Duration::from_millis(300),
            at: None,
        };
        assert_eq!(clock.bound(async { 7 }).await, Some(7));
        let started = Instant::now();
        let s = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            s.cancel();
        });
        let r = clock
            .bound(tokio::time::sleep(Duration::from_secs(60)))
            .await;
        assert_eq!(r, None);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(5),
            "{took:?}"
        );
        // Later waits end at the same deadline.
        assert_eq!(clock.bound(std::future::pending::<()>()).await, None);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
