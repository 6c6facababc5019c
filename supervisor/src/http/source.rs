//! The HTTP source: reads the request records the kernel matched from the
//! ring buffer (every [`HTTP_DRAIN_MS`], or sooner when the kernel wakes it
//! because a quarter of the ring is waiting), reads the RED histograms the
//! kernel counted once per interval ([`super::series`]) into its own
//! ([`super::red`], with the requests the kernel could not count, sent as
//! samples), and sends every record into the pipeline as a compact
//! request ([`model::request::HttpRequest`]), the requests of one drain
//! in one message: the traces stage links them, counts them in the
//! service map, and turns those whose trace is kept into span events on
//! their way to the sinks (`crate::traces::export`). Which requests have a
//! record is `[http] records`: every one, or those spans need. Decoding allocates nothing
//! per request in the common case (text goes into reused buffers, routes
//! are shared, short paths inline). Whatever is not delivered, in the
//! kernel or here, is counted in `eunomia_http_dropped_total{reason}` (a
//! self-metric, so `eunomia status` shows it).

use std::{collections::VecDeque, sync::Arc, time::Duration};

use aya::maps::{Array, MapData, RingBuf};
use hotpath_common::http::{HTTP_CLIENT, HTTP_DRAIN_MS, HTTP_FLAG_COUNTED, HttpDrop};
use model::{
    SmallStr,
    metrics::{HTTP_DROPPED_METRIC, HTTP_RECORDS_METRIC, HTTP_ROUTE_OVERFLOW_METRIC, HTTP_SOURCE},
    request::{HttpRequest, PathText},
};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use tokio::{io::unix::AsyncFd, task::JoinHandle};

use super::{
    HttpConfig,
    pause::HttpPause,
    red::{Key, Red},
    request::{
        escape_into, head_bytes, parse_head, record_from_ring, request_of, route_into, status_class,
    },
    series::{Counted, GRACE, KernelSeries},
};
use crate::{
    context::AgentContext,
    host::monotonic_ns,
    hotpath::HttpMaps,
    pipeline::{Message, PipelineTx, SampleBatch},
    selfmetrics::{Counter, Registry},
};

/// The tool name HTTP events carry (`event.tool`).
pub(crate) const TOOL: &str = model::request::TOOL;

/// Requests are not sent on while less than 1/RESERVED_SHARE of the
/// pipeline's room is left: that part stays for the other sources.
const RESERVED_SHARE: usize = 4;

/// Requests in one pipeline message at most.
const BATCH: usize = 1024;

/// Requests held back at most while the pipeline is busy (a few seconds of
/// a busy web server, about 4 MB); beyond, the oldest are dropped and
/// counted as `pipeline_busy`.
const HOLD_MAX: usize = 16 * BATCH;

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

/// Per-record state: routes per cgroup, the RED histograms, the requests
/// of this drain.
struct State {
    max_routes: usize,
    routes: HashMap<u64, HashSet<Arc<str>>>,
    red: Red,
    counts: Counters,
    /// Wall clock minus monotonic clock (ns), to date kernel times.
    wall_offset: i128,
    /// The requests of the drain under way.
    batch: Vec<HttpRequest>,
    /// Batches held back while the pipeline is busy, oldest first.
    held: VecDeque<Vec<HttpRequest>>,
    /// Requests in `held`.
    held_len: usize,
    /// The route of requests beyond `max_routes`.
    other: Arc<str>,
    /// Reused text buffers: the escaped path, the route.
    path: String,
    route: String,
}

impl State {
    fn new(config: &HttpConfig, registry: &Registry) -> State {
        State {
            max_routes: config.max_routes,
            routes: HashMap::default(),
            red: Red::default(),
            counts: Counters::new(registry),
            wall_offset: 0,
            batch: Vec::with_capacity(BATCH),
            held: VecDeque::new(),
            held_len: 0,
            other: "other".into(),
            path: String::new(),
            route: String::new(),
        }
    }

    /// `route`, or `other` when the cgroup has its fill of routes (shared:
    /// no allocation for a route seen before).
    fn bounded_route(&mut self, cgroup: u64) -> Arc<str> {
        let route = self.route.as_str();
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
        self.other.clone()
    }

    /// Dates kernel (monotonic) times from now on.
    fn sync_clock(&mut self) {
        let wall = crate::host::now_ns() as i128;
        self.wall_offset = wall - monotonic_ns() as i128;
    }

    /// One record from the ring buffer: counted in the RED histograms,
    /// kept for the next [`State::send`].
    fn record(&mut self, bytes: &[u8], tx: &PipelineTx) {
        self.counts.records.inc();
        let Some(r) = record_from_ring(bytes) else {
            self.counts.unparsable.inc();
            return;
        };
        let Some(head) = parse_head(head_bytes(&r)) else {
            self.counts.unparsable.inc();
            return;
        };
        escape_into(&mut self.path, head.path);
        route_into(&mut self.route, &self.path);
        let cgroup = r.cgroup_id;
        let route = self.bounded_route(cgroup);
        let path = if *route == *self.path {
            PathText::Route
        } else {
            PathText::Own(SmallStr::new(&self.path))
        };
        let start = (r.start_ns as i128 + self.wall_offset).max(0) as u64;
        let req = request_of(&r, &head, path, route, start);
        if r.flags & HTTP_FLAG_COUNTED == 0 {
            // the kernel's series map was full: counted here
            let key = Key {
                cgroup,
                client: r.kind == HTTP_CLIENT,
                method: req.method,
                class: status_class(req.status),
                route: req.route.clone(),
                server: (r.kind == HTTP_CLIENT).then_some((req.server.ip(), req.server.port())),
            };
            if !self.red.observe(key, req.duration_ns as f64 / 1e9) {
                self.counts.series_full.inc();
            }
        }
        self.batch.push(req);
        if self.batch.len() >= BATCH {
            self.send(tx);
        }
    }

    /// A series the kernel counted, folded into the RED histograms under
    /// the route of its path.
    fn kernel_series(&mut self, c: &Counted<'_>) {
        let Some(head) = parse_head(c.line) else {
            self.counts.unparsable.add(c.counts.iter().sum());
            return;
        };
        escape_into(&mut self.path, head.path);
        route_into(&mut self.route, &self.path);
        let key = Key {
            cgroup: c.cgroup,
            client: c.client,
            method: head.method,
            class: status_class(u16::from(c.class) * 100),
            route: self.bounded_route(c.cgroup),
            server: c.server,
        };
        if !self.red.add(key, c.counts, c.sum_s) {
            self.counts.series_full.add(c.counts.iter().sum());
        }
    }

    /// Sends the drain's requests on in one message, after those held
    /// before. While less than 1/[`RESERVED_SHARE`] of the pipeline is free
    /// they are held instead (a flood of requests must not crowd out the
    /// other sources), up to [`HOLD_MAX`]: a short stall loses nothing,
    /// a long one drops the oldest (the RED histograms count them all).
    fn send(&mut self, tx: &PipelineTx) {
        if !self.batch.is_empty() {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
            self.held_len += batch.len();
            self.held.push_back(batch);
        }
        while tx.room() >= tx.max_room() / RESERVED_SHARE {
            let Some(batch) = self.take_held() else { break };
            let n = batch.len() as u64;
            if !tx.send(Message::Requests(batch)) {
                self.counts.pipeline_full.add(n);
            }
        }
        while self.held_len > HOLD_MAX {
            let Some(batch) = self.take_held() else { break };
            self.counts.pipeline_busy.add(batch.len() as u64);
        }
    }

    /// The oldest held batch.
    fn take_held(&mut self) -> Option<Vec<HttpRequest>> {
        let batch = self.held.pop_front()?;
        self.held_len -= batch.len();
        Some(batch)
    }

    /// At the end: sends what the pipeline takes, counts the rest.
    fn finish(&mut self, tx: &PipelineTx) {
        self.send(tx);
        while let Some(batch) = self.take_held() {
            self.counts.pipeline_busy.add(batch.len() as u64);
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

/// Spawns the source; with it, the capture's pause switch.
pub(crate) fn start(
    maps: HttpMaps,
    config: &HttpConfig,
    interval: Duration,
    ctx: &AgentContext,
) -> std::io::Result<(JoinHandle<()>, HttpPause)> {
    let HttpMaps {
        ring,
        counters,
        paused,
        paused_flag,
        series,
        series_gen,
    } = maps;
    let series = KernelSeries::new(series, series_gen);
    // SAFETY: the ring buffer owns its descriptor, and the AsyncFd owns
    // the ring buffer until the task ends.
    let ring = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    let state = State::new(config, &ctx.registry);
    let task = tokio::spawn(run(ring, counters, series, state, interval, ctx.clone()));
    Ok((task, HttpPause::new(paused, paused_flag)))
}

/// Reads the series the kernel counted since the last call into the RED
/// histograms (`both`: of both generations, at the end).
async fn read_series(series: &mut KernelSeries, state: &mut State, both: bool) {
    for _ in 0..=usize::from(both) {
        if let Err(e) = series.flip() {
            tracing::warn!("http: flipping the kernel's series generation: {e}");
            return;
        }
        tokio::time::sleep(GRACE).await;
        series.take(|c| state.kernel_series(c));
    }
}

async fn run(
    mut ring: AsyncFd<RingBuf<MapData>>,
    kernel: Array<MapData, u64>,
    mut series: KernelSeries,
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
                read_series(&mut series, &mut state, false).await;
                state.flush(&kernel, &mut seen, &tx);
            }
            _ = drain.tick() => {
                while let Some(item) = ring.get_mut().next() {
                    state.record(&item, &tx);
                }
                state.send(&tx);
            }
            guard = ring.readable_mut() => {
                let Ok(mut guard) = guard else { break };
                let rb = guard.get_inner_mut();
                while let Some(item) = rb.next() {
                    state.record(&item, &tx);
                }
                guard.clear_ready();
                state.send(&tx);
            }
        }
    }
    // what arrived before the end
    while let Some(item) = ring.get_mut().next() {
        state.record(&item, &tx);
    }
    state.finish(&tx);
    read_series(&mut series, &mut state, true).await;
    state.flush(&kernel, &mut seen, &tx);
}

#[cfg(test)]
mod tests {
    use model::{request::HttpRequest, span::SpanKind};

    use super::*;
    use crate::pipeline::channel;

    fn requests(n: usize) -> Vec<HttpRequest> {
        (0..n)
            .map(|_| crate::testing::http_request(SpanKind::Server))
            .collect()
    }

    fn sent(rx: &mut tokio::sync::mpsc::Receiver<Message>) -> usize {
        let mut n = 0;
        while let Ok(m) = rx.try_recv() {
            if let Message::Requests(r) = m {
                n += r.len();
            }
        }
        n
    }

    /// Fills the pipeline (8 messages) up to `used`.
    fn pipeline(used: usize) -> (PipelineTx, tokio::sync::mpsc::Receiver<Message>) {
        let (tx, rx) = channel(8);
        for _ in 0..used {
            assert!(tx.send(Message::Requests(Vec::new())));
        }
        (tx, rx)
    }

    #[test]
    fn requests_wait_while_the_pipeline_is_busy_and_go_on_after() {
        let mut state = State::new(&HttpConfig::default(), &Registry::new());
        let (tx, mut rx) = pipeline(7);
        state.batch = requests(10);
        state.send(&tx);
        state.batch = requests(5);
        state.send(&tx);
        assert_eq!(state.held_len, 15, "held while 1 of 8 is free");
        assert_eq!(sent(&mut rx), 0);
        state.send(&tx);
        assert_eq!(sent(&mut rx), 15, "in order, once there is room");
        assert_eq!(state.held_len, 0);
        assert_eq!(state.counts.pipeline_busy.get(), 0);
    }

    #[test]
    fn a_long_stall_drops_the_oldest_and_counts_them() {
        let mut state = State::new(&HttpConfig::default(), &Registry::new());
        let (tx, mut rx) = pipeline(7);
        for _ in 0..HOLD_MAX / BATCH + 2 {
            state.batch = requests(BATCH);
            state.send(&tx);
        }
        assert_eq!(state.held_len, HOLD_MAX);
        assert_eq!(state.counts.pipeline_busy.get(), 2 * BATCH as u64);
        // the end: what the pipeline cannot take is counted too
        state.finish(&tx);
        assert_eq!(state.held_len, 0);
        assert_eq!(
            state.counts.pipeline_busy.get(),
            (HOLD_MAX + 2 * BATCH) as u64
        );
        assert_eq!(sent(&mut rx), 0);
    }
}
