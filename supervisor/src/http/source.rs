//! The HTTP source: reads the request records the kernel matched from the
//! ring buffer (every [`HTTP_DRAIN_MS`], or sooner when the kernel wakes it
//! because a quarter of the ring is waiting), counts every request in the RED
//! histograms ([`super::red`], sent once per interval as samples), and
//! sends every request into the pipeline as a span event: the traces stage
//! links them, counts every one in the service map, and samples them per
//! trace on their way to the sinks (`crate::traces::export`). Whatever is
//! not delivered, in the kernel or here, is counted in
//! `eunomia_http_dropped_total{reason}` (a self-metric, so `eunomia status`
//! shows it).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use aya::maps::{Array, MapData, RingBuf};
use hotpath_common::http::{HTTP_DRAIN_MS, HttpDrop, HttpRecord};
use model::{
    metrics::{HTTP_DROPPED_METRIC, HTTP_RECORDS_METRIC, HTTP_ROUTE_OVERFLOW_METRIC, HTTP_SOURCE},
    span::SpanContext,
};
use tokio::{io::unix::AsyncFd, task::JoinHandle};

use super::{
    HttpConfig,
    red::{Key, Red},
    request::{Request, record_from_ring, route_of, status_class},
};
use crate::{
    context::AgentContext,
    host::monotonic_ns,
    hotpath::HttpMaps,
    pipeline::{Message, PipelineTx, SampleBatch, ToolRecord},
    selfmetrics::{Counter, Registry},
};

/// The tool name HTTP events carry (`event.tool`).
pub(crate) const TOOL: &str = "http";

/// Span events are not sent while less than 1/RESERVED_SHARE of the
/// pipeline's room is left: that part stays for the other sources.
const RESERVED_SHARE: usize = 4;

/// Cgroups whose routes are remembered at once; beyond, the table restarts.
const MAX_CGROUPS: usize = 4096;

/// The source's self-metrics.
struct Counters {
    records: Counter,
    route_overflow: Counter,
    unparsable: Counter,
    series_full: Counter,
    pipeline_full: Counter,
    pipeline_busy: Counter,
    kernel: Vec<Counter>,
}

impl Counters {
    fn new(r: &Registry) -> Counters {
        let dropped = |reason| {
            r.counter(
                HTTP_DROPPED_METRIC,
                "HTTP requests (or their spans) not delivered, by reason.",
                &[("reason", reason)],
            )
        };
        Counters {
            records: r.counter(
                HTTP_RECORDS_METRIC,
                "HTTP request records the kernel delivered.",
                &[],
            ),
            route_overflow: r.counter(
                HTTP_ROUTE_OVERFLOW_METRIC,
                "HTTP requests whose route was folded into `other`.",
                &[],
            ),
            unparsable: dropped("unparsable"),
            series_full: dropped("series_full"),
            pipeline_full: dropped("pipeline_full"),
            pipeline_busy: dropped("pipeline_busy"),
            kernel: HttpDrop::ALL.iter().map(|d| dropped(d.name())).collect(),
        }
    }
}

/// Per-record state: routes per cgroup, the RED histograms.
struct State {
    tool: Arc<str>,
    max_routes: usize,
    routes: HashMap<u64, HashSet<Arc<str>>>,
    red: Red,
    counts: Counters,
    /// Wall clock minus monotonic clock (ns), to date kernel times.
    wall_offset: i128,
}

impl State {
    fn new(config: &HttpConfig, registry: &Registry) -> State {
        State {
            tool: TOOL.into(),
            max_routes: config.max_routes,
            routes: HashMap::new(),
            red: Red::default(),
            counts: Counters::new(registry),
            wall_offset: 0,
        }
    }

    /// `route`, or `other` when the cgroup has its fill of routes.
    fn bounded_route(&mut self, cgroup: u64, route: &str) -> Arc<str> {
        if self.routes.len() >= MAX_CGROUPS && !self.routes.contains_key(&cgroup) {
            self.routes.clear();
        }
        let known = self.routes.entry(cgroup).or_default();
        if let Some(r) = known.get(route) {
            return r.clone();
        }
        if known.len() < self.max_routes {
            let r: Arc<str> = route.into();
            known.insert(r.clone());
            return r;
        }
        self.counts.route_overflow.inc();
        "other".into()
    }

    /// Dates kernel (monotonic) times from now on.
    fn sync_clock(&mut self) {
        let wall = crate::host::now_ns() as i128;
        self.wall_offset = wall - monotonic_ns() as i128;
    }

    /// One record from the ring buffer.
    fn record(&mut self, bytes: &[u8], tx: &PipelineTx) {
        self.counts.records.inc();
        let Some(r) = record_from_ring(bytes) else {
            self.counts.unparsable.inc();
            return;
        };
        let Some(req) = Request::decode(&r) else {
            self.counts.unparsable.inc();
            return;
        };
        let cgroup = r.cgroup_id;
        let route = self.bounded_route(cgroup, &route_of(&req.head.path));
        let key = Key {
            cgroup,
            client: req.client,
            method: req.head.method.as_str().into(),
            class: status_class(req.status),
            route: route.clone(),
            server: req.client.then_some(req.server),
        };
        if !self.red.observe(key, req.duration_ns as f64 / 1e9) {
            self.counts.series_full.inc();
        }
        self.send_span(&req, &r, &route, tx);
    }

    fn send_span(&self, req: &Request, r: &HttpRecord, route: &str, tx: &PipelineTx) {
        // every request is a message: under a flood of requests they must
        // not crowd out the other sources (the RED histograms still count
        // the request)
        if tx.room() < tx.max_room() / RESERVED_SHARE {
            self.counts.pipeline_busy.inc();
            return;
        }
        let ids = SpanContext {
            trace_id: req
                .head
                .traceparent
                .map_or_else(|| nonzero(fastrand::u128(..).to_be_bytes()), |(t, _)| t),
            span_id: nonzero(fastrand::u64(..).to_be_bytes()),
            parent_span_id: req.head.traceparent.map(|(_, p)| p),
        };
        let start = (r.start_ns as i128 + self.wall_offset).max(0) as u64;
        let event = req.to_event(&self.tool, r, route, &ids, start);
        let msg = ToolRecord::new(self.tool.clone(), model::Record::Event(event));
        if !tx.send(Message::Record(msg)) {
            self.counts.pipeline_full.inc();
        }
    }

    /// The interval's histograms, and the kernel's drop counters into the
    /// self-metrics.
    fn flush(&mut self, kernel: &Array<MapData, u64>, seen: &mut [u64], tx: &PipelineTx) {
        for (i, why) in HttpDrop::ALL.iter().enumerate() {
            let v = kernel.get(&(*why as u32), 0).unwrap_or(0);
            self.counts.kernel[i].add(v.wrapping_sub(seen[i]));
            seen[i] = v;
        }
        let samples = self.red.drain();
        if !samples.is_empty() {
            tx.send(Message::Samples(SampleBatch {
                source: HTTP_SOURCE,
                interval_s: 0.0,
                samples,
            }));
        }
    }
}

/// Ids are never all zero.
fn nonzero<const N: usize>(mut b: [u8; N]) -> [u8; N] {
    if b.iter().all(|&x| x == 0) {
        b[N - 1] = 1;
    }
    b
}

/// Spawns the source.
pub(crate) fn start(
    maps: HttpMaps,
    config: &HttpConfig,
    interval: Duration,
    ctx: &AgentContext,
) -> std::io::Result<JoinHandle<()>> {
    let HttpMaps { ring, counters } = maps;
    // SAFETY: the ring buffer owns its descriptor, and the AsyncFd owns
    // the ring buffer until the task ends.
    let ring = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    let state = State::new(config, &ctx.registry);
    Ok(tokio::spawn(run(
        ring,
        counters,
        state,
        interval,
        ctx.clone(),
    )))
}

async fn run(
    mut ring: AsyncFd<RingBuf<MapData>>,
    kernel: Array<MapData, u64>,
    mut state: State,
    interval: Duration,
    ctx: AgentContext,
) {
    let mut tick = tokio::time::interval(interval);
    let mut drain = tokio::time::interval(Duration::from_millis(HTTP_DRAIN_MS));
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = [0u64; HttpDrop::ALL.len()];
    let tx = ctx.tx.clone();
    state.sync_clock();
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tick.tick() => {
                state.sync_clock();
                state.flush(&kernel, &mut seen, &tx);
            }
            _ = drain.tick() => {
                while let Some(item) = ring.get_mut().next() {
                    state.record(&item, &tx);
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
    state.flush(&kernel, &mut seen, &tx);
}
