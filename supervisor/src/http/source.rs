//! The HTTP source: reads the request records the kernel matched from the
//! ring buffer (woken by its fd), bounds the rate and the routes per
//! container, and sends one event per request into the pipeline; every
//! interval it reports what was dropped, in the kernel and here, as
//! `eunomia_http_dropped_total{reason}`.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use aya::maps::{Array, MapData, RingBuf};
use hotpath_common::http::{HttpDrop, HttpRecord};
use tokio::{io::unix::AsyncFd, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{HttpConfig, request};
use crate::pipeline::{Message, PipelineTx, Sample, SampleBatch, SampleValue, ToolRecord};

/// The tool name HTTP events carry (`event.tool`).
pub const TOOL: &str = "http";
/// Source name of the HTTP self-metrics.
pub const SOURCE: &str = "hotpath.http";
/// Requests seen but not delivered, by reason.
pub const DROPPED_METRIC: &str = "eunomia_http_dropped_total";
/// Requests delivered by the kernel.
pub const RECORDS_METRIC: &str = "eunomia_http_records_total";
/// Requests whose route was folded into `other` (route bound per container).
pub const ROUTE_OVERFLOW_METRIC: &str = "eunomia_http_route_overflow_total";

/// Cgroups whose routes are remembered at once; beyond, the table restarts.
const MAX_CGROUPS: usize = 4096;

/// The kernel side of the capture, handed over by the loader.
pub struct HttpMaps {
    /// Request records.
    pub ring: RingBuf<MapData>,
    /// Kernel drop counters, indexed by [`HttpDrop`].
    pub counters: Array<MapData, u64>,
}

/// What the source counted itself.
#[derive(Default, Debug, Clone, Copy, PartialEq)]
struct Counts {
    records: u64,
    rate_limited: u64,
    unparsable: u64,
    pipeline_full: u64,
    route_overflow: u64,
}

/// Per-record state: routes per cgroup and the rate bound.
struct State {
    config: HttpConfig,
    tool: Arc<str>,
    routes: HashMap<u64, HashSet<String>>,
    window: Instant,
    in_window: u32,
    counts: Counts,
}

impl State {
    fn new(config: HttpConfig) -> State {
        State {
            config,
            tool: TOOL.into(),
            routes: HashMap::new(),
            window: Instant::now(),
            in_window: 0,
            counts: Counts::default(),
        }
    }

    /// Whether one more request fits this second's budget.
    fn admit(&mut self) -> bool {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.in_window = 0;
        }
        self.in_window += 1;
        self.in_window <= self.config.max_requests_per_second
    }

    /// `route`, or `other` when the cgroup has its fill of routes.
    fn bounded_route(&mut self, cgroup: u64, route: &str) -> String {
        if self.routes.len() >= MAX_CGROUPS && !self.routes.contains_key(&cgroup) {
            self.routes.clear();
        }
        let known = self.routes.entry(cgroup).or_default();
        if known.contains(route) {
            return route.to_owned();
        }
        if known.len() < self.config.max_routes {
            known.insert(route.to_owned());
            return route.to_owned();
        }
        self.counts.route_overflow += 1;
        "other".to_owned()
    }

    /// One record from the ring buffer.
    fn record(&mut self, bytes: &[u8], tx: &PipelineTx) {
        self.counts.records += 1;
        if bytes.len() < std::mem::size_of::<HttpRecord>() {
            self.counts.unparsable += 1;
            return;
        }
        // SAFETY: at least size_of::<HttpRecord>() bytes of plain data.
        let r: HttpRecord = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        if !self.admit() {
            self.counts.rate_limited += 1;
            return;
        }
        let tool = self.tool.clone();
        let cgroup = r.conn.cgroup_id;
        let Some(mut event) =
            request::to_event(&tool, &r, |route| self.bounded_route(cgroup, route))
        else {
            self.counts.unparsable += 1;
            return;
        };
        event.ts_ns = wall_ns();
        let msg = ToolRecord::new(tool, model::Record::Event(event));
        if !tx.send(Message::Record(msg)) {
            self.counts.pipeline_full += 1;
        }
    }
}

fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Spawns the source.
pub fn start(
    maps: HttpMaps,
    config: HttpConfig,
    interval: Duration,
    tx: PipelineTx,
    shutdown: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let HttpMaps { ring, counters } = maps;
    // SAFETY: the ring buffer owns its descriptor, and the AsyncFd owns
    // the ring buffer until the task ends.
    let ring = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    Ok(tokio::spawn(run(
        ring, counters, config, interval, tx, shutdown,
    )))
}

async fn run(
    mut ring: AsyncFd<RingBuf<MapData>>,
    counters: Array<MapData, u64>,
    config: HttpConfig,
    interval: Duration,
    tx: PipelineTx,
    shutdown: CancellationToken,
) {
    let mut state = State::new(config);
    let mut tick = tokio::time::interval(interval);
    let mut reported = Reported::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let samples = reported.samples(&counters, &state.counts);
                if !samples.is_empty() {
                    tx.send(Message::Samples(SampleBatch {
                        source: SOURCE,
                        interval_s: interval.as_secs_f64(),
                        samples,
                    }));
                }
            }
            guard = ring.readable_mut() => {
                let Ok(mut guard) = guard else { break };
                let rb = guard.get_inner_mut();
                while let Some(item) = rb.next() {
                    state.record(&item, &tx);
                }
                guard.clear_ready();
            }
        }
    }
    // what arrived before the end
    while let Some(item) = ring.get_mut().next() {
        state.record(&item, &tx);
    }
    let samples = reported.samples(&counters, &state.counts);
    tx.send(Message::Samples(SampleBatch {
        source: SOURCE,
        interval_s: interval.as_secs_f64(),
        samples,
    }));
}

/// The counters last reported, for deltas.
#[derive(Default)]
struct Reported {
    kernel: [u64; HttpDrop::ALL.len()],
    counts: Counts,
}

impl Reported {
    fn samples(&mut self, kernel: &Array<MapData, u64>, now: &Counts) -> Vec<Sample> {
        let mut out = Vec::new();
        let mut push = |metric, reason: Option<&str>, d: u64| {
            if d > 0 {
                out.push(Sample {
                    metric,
                    labels: reason
                        .map(|r| vec![("reason", r.to_owned())])
                        .unwrap_or_default(),
                    value: SampleValue::Delta(d),
                });
            }
        };
        for (i, why) in HttpDrop::ALL.iter().enumerate() {
            let v = kernel.get(&(*why as u32), 0).unwrap_or(0);
            push(
                DROPPED_METRIC,
                Some(why.name()),
                v.wrapping_sub(self.kernel[i]),
            );
            self.kernel[i] = v;
        }
        let was = self.counts;
        push(
            DROPPED_METRIC,
            Some("rate_limited"),
            now.rate_limited - was.rate_limited,
        );
        push(
            DROPPED_METRIC,
            Some("unparsable"),
            now.unparsable - was.unparsable,
        );
        push(
            DROPPED_METRIC,
            Some("pipeline_full"),
            now.pipeline_full - was.pipeline_full,
        );
        push(RECORDS_METRIC, None, now.records - was.records);
        push(
            ROUTE_OVERFLOW_METRIC,
            None,
            now.route_overflow - was.route_overflow,
        );
        self.counts = *now;
        out
    }
}
