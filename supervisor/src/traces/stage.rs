//! The traces stage: HTTP requests (every request, compact, before any
//! sampling) become spans, linked into traces (the linker) and folded into
//! the service map (the graph); the hot path's TCP connections add TCP
//! edges. The requests themselves are held while their spans are
//! (`[traces] hold`); those whose trace is kept ([`super::export`]) then
//! go on to the later stages and the sinks as span events with the linked
//! trace and parent ids. Every
//! interval it emits the service-graph samples, updates
//! `eunomia_trace_links_total{outcome}` and publishes the map and the
//! latest spans for the control API (`eunomia map`).

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use model::{
    Workload,
    labels::{CONTAINER_NAME, K8S_NAMESPACE, K8S_POD_NAME, SERVICE},
    metrics::{CONNECTIONS_METRIC, TCP_SOURCE},
    request::HttpRequest,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::{
    config::TracesConfig,
    event::{node_name, span_of},
    export::SpanExport,
    graph::{MapView, ServiceGraph},
    link::{LinkedSpan, Linker, Outcome},
    sample::SampleConfig,
    span::{IdGen, Side},
};
use crate::{
    pipeline::{Message, Sample, SampleBatch, SampleValue, ToolRecord},
    selfmetrics::{Counter, Registry},
};

/// Source name of the service-graph samples.
pub(crate) const SOURCE: &str = "traces";
/// Link outcomes, by `outcome`.
pub(crate) const LINKS_METRIC: &str = "eunomia_trace_links_total";
/// Spans kept for the control API.
const RECENT_SPANS: usize = 2048;
/// Room for spans kept between releases at most (the list of spans
/// emitted early is reused).
const REUSE_SPANS: usize = 8192;
/// Server addresses remembered (address → node), for TCP edges.
const MAX_ADDRS: usize = 4096;
/// Edges idle this long leave the map.
const EDGE_TTL: Duration = Duration::from_secs(600);

/// One span as the control API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SpanView {
    /// 32 hex digits.
    pub(crate) trace_id: String,
    /// 16 hex digits.
    pub(crate) span_id: String,
    /// 16 hex digits, when it has a parent.
    pub(crate) parent_id: Option<String>,
    /// `server` or `client`.
    pub(crate) kind: String,
    /// Who this end is.
    pub(crate) node: String,
    /// The other end, when on this host.
    pub(crate) peer: Option<String>,
    /// Process and thread.
    pub(crate) pid: u32,
    /// Thread.
    pub(crate) tid: u32,
    /// This end's address.
    pub(crate) local: String,
    /// The other end's address.
    pub(crate) remote: String,
    /// HTTP status.
    pub(crate) status: u16,
    /// Duration, ns.
    pub(crate) duration_ns: u64,
}

impl SpanView {
    fn of(s: &LinkedSpan) -> SpanView {
        SpanView {
            trace_id: format!("{:032x}", s.trace_id),
            span_id: format!("{:016x}", s.span_id),
            parent_id: s.parent_id.map(|p| format!("{p:016x}")),
            kind: match s.span.side {
                Side::Server => "server",
                Side::Client => "client",
            }
            .into(),
            node: s.span.node.to_string(),
            peer: s.peer.as_ref().map(|p| p.node.to_string()),
            pid: s.span.pid,
            tid: s.span.tid,
            local: s.span.local.to_string(),
            remote: s.span.remote.to_string(),
            status: s.span.status,
            duration_ns: s.span.duration_ns(),
        }
    }
}

/// What `eunomia map` gets from the agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct MapState {
    /// The service map.
    pub(crate) map: MapView,
    /// The latest linked spans, oldest first.
    pub(crate) spans: VecDeque<SpanView>,
    /// Link outcomes so far.
    pub(crate) links: Vec<(String, u64)>,
}

/// The map as the stage last published it; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct MapHandle(Arc<Mutex<MapState>>);

impl MapHandle {
    /// The state as one JSON object.
    pub(crate) fn json(&self) -> String {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_string(&*s).unwrap_or_else(|_| "{}".into())
    }
}

/// The stage (see the module docs).
pub(crate) struct TracesStage {
    linker: Linker,
    export: SpanExport,
    /// Spans the linker emitted early (evicted), for the next release.
    early: Vec<LinkedSpan>,
    graph: ServiceGraph,
    handle: MapHandle,
    counters: Vec<(Outcome, Counter, u64)>,
    interval: Duration,
    last: Instant,
    servers: FxHashMap<SocketAddr, Arc<str>>,
    comms: FxHashMap<u32, Arc<str>>,
    /// The spans held that alone keep their trace (errors, slow ones):
    /// the only held spans that change a sampling decision.
    notable: Vec<u64>,
    /// Node names by pid, with the workload they were made of.
    nodes: FxHashMap<u32, (Arc<Workload>, Arc<str>)>,
    recent: Recent<LinkedSpan>,
}

impl TracesStage {
    /// A stage bounded by `config`, sampling span events by `sampling`,
    /// reporting to `registry` and publishing to `handle` every `interval`.
    pub(crate) fn new(
        registry: &Registry,
        handle: MapHandle,
        interval: Duration,
        config: &TracesConfig,
        sampling: SampleConfig,
    ) -> TracesStage {
        let counters = Outcome::ALL
            .iter()
            .map(|o| {
                let c = registry.counter(
                    LINKS_METRIC,
                    "Request spans by what linking found for them (trace links without writing into requests).",
                    &[("outcome", o.name())],
                );
                (*o, c, 0)
            })
            .collect();
        let linker = Linker::new(config.link(), IdGen::default());
        TracesStage {
            export: SpanExport::new(registry, sampling, config.window, linker.span_ids()),
            linker,
            early: Vec::new(),
            graph: ServiceGraph::new(config.max_edges),
            handle,
            counters,
            interval,
            last: Instant::now(),
            servers: FxHashMap::default(),
            comms: FxHashMap::default(),
            nodes: FxHashMap::default(),
            notable: Vec::new(),
            recent: Recent::default(),
        }
    }

    /// Takes one (enriched) pipeline message: HTTP requests are held (the
    /// span events of those whose trace is kept come out of
    /// [`TracesStage::release`]), anything else is handed back for the
    /// later stages.
    pub(crate) fn on_message(&mut self, msg: Message, now_ns: u64) -> Option<Message> {
        match msg {
            Message::Requests(requests) => {
                for r in requests {
                    self.on_request(r, now_ns);
                }
                None
            }
            Message::Samples(b) => {
                if b.source == TCP_SOURCE {
                    for s in &b.samples {
                        self.on_tcp(s, now_ns);
                    }
                }
                Some(Message::Samples(b))
            }
            msg @ Message::Record(_) => Some(msg),
        }
    }

    /// One request: its span to the linker, the request held for export.
    fn on_request(&mut self, r: HttpRequest, now_ns: u64) {
        let node = self.node_of(&r);
        let span = span_of(&r, node);
        if span.side == Side::Server {
            if self.servers.len() >= MAX_ADDRS && !self.servers.contains_key(&span.local) {
                self.servers.clear();
            }
            if self.servers.get(&span.local) != Some(&span.node) {
                self.servers.insert(span.local, span.node.clone());
            }
        }
        let notable = self.export.is_notable(&span);
        let id = self.linker.push_span(span, now_ns, &mut self.early);
        if notable {
            self.notable.push(id);
        }
        self.export.hold(id, r);
    }

    /// The node of a request's end: its workload's name, else its
    /// process's (remembered per pid with the workload it was made of).
    fn node_of(&mut self, r: &HttpRequest) -> Arc<str> {
        let w = r.workload.as_ref();
        if let Some((known, node)) = self.nodes.get(&r.pid)
            && w.is_some_and(|w| Arc::ptr_eq(w, known))
        {
            return node.clone();
        }
        let node = node_name(w.map(|w| &**w)).unwrap_or_else(|| self.process_name(r.pid));
        if let Some(w) = w {
            if self.nodes.len() >= MAX_ADDRS {
                self.nodes.clear();
            }
            self.nodes.insert(r.pid, (w.clone(), node.clone()));
        }
        node
    }

    /// The span events whose hold is over at `now_ns` and whose trace is
    /// kept, with their linked ids (every span of them counted in the
    /// service map first).
    pub(crate) fn release(&mut self, now_ns: u64) -> Vec<ToolRecord> {
        let drained = self.linker.drain(now_ns);
        self.pass_on(drained, now_ns)
    }

    /// Counts `spans` in the map; their events whose trace is kept.
    fn pass_on(&mut self, drained: Vec<LinkedSpan>, now_ns: u64) -> Vec<ToolRecord> {
        let spans = match self.early.is_empty() {
            true => drained,
            false => {
                let mut spans = std::mem::take(&mut self.early);
                spans.extend(drained);
                spans
            }
        };
        for s in &spans {
            self.graph.observe(s, now_ns);
        }
        let linker = &self.linker;
        self.notable.retain(|id| linker.is_held(*id));
        let released = self
            .export
            .release(&spans, linker.held_in_traces(&self.notable), now_ns);
        self.keep_recent(spans);
        released
    }

    /// A process outside any workload, by its name (`/proc/PID/comm`,
    /// remembered: the process may be gone by the next request), else
    /// `pid N`.
    fn process_name(&mut self, pid: u32) -> Arc<str> {
        if let Some(n) = self.comms.get(&pid) {
            return n.clone();
        }
        if self.comms.len() >= MAX_ADDRS {
            self.comms.clear();
        }
        let name: Arc<str> = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()
            .map(|c| model::escape::escape_str(c.trim_end()).into_owned())
            .filter(|c| !c.is_empty())
            .map_or_else(|| format!("pid {pid}").into(), Into::into);
        self.comms.insert(pid, name.clone());
        name
    }

    /// A new outgoing TCP connection of a known workload: a `tcp` edge.
    fn on_tcp(&mut self, s: &Sample, now_ns: u64) {
        let SampleValue::Delta(n) = s.value else {
            return;
        };
        if s.metric != CONNECTIONS_METRIC || s.label("direction") != Some("active") {
            return;
        }
        let Some(client) = sample_node(s) else { return };
        let (Some(ip), Some(port)) = (s.label("net.daddr"), s.label("net.dport")) else {
            return;
        };
        let Ok(addr) = format!("{ip}:{port}").parse::<SocketAddr>() else {
            return;
        };
        let server = self
            .servers
            .get(&addr)
            .cloned()
            .unwrap_or_else(|| addr.to_string().into());
        self.graph.observe_tcp(client, server, n, now_ns);
    }

    /// Keeps the latest spans for the control API (formatted when
    /// published).
    fn keep_recent(&mut self, spans: Vec<LinkedSpan>) {
        let Some(mut old) = self.recent.keep(spans) else {
            return;
        };
        // the next evicted spans go into its room (when not too large)
        if self.early.is_empty() && old.capacity() <= REUSE_SPANS {
            old.clear();
            self.early = old;
        }
    }

    /// Every interval: the service-graph samples, the link counters and
    /// the published map.
    pub(crate) fn due(&mut self, now_ns: u64) -> Option<SampleBatch> {
        if self.last.elapsed() < self.interval {
            return None;
        }
        let interval_s = self.last.elapsed().as_secs_f64();
        self.last = Instant::now();
        Some(self.tick(now_ns, interval_s))
    }

    /// Releases everything held (at shutdown): the span events that go
    /// on, and the last service-graph samples.
    pub(crate) fn finish(&mut self, now_ns: u64) -> (Vec<ToolRecord>, SampleBatch) {
        let flushed = self.linker.flush();
        let released = self.pass_on(flushed, now_ns);
        (
            released,
            self.tick(now_ns, self.last.elapsed().as_secs_f64()),
        )
    }

    fn tick(&mut self, now_ns: u64, interval_s: f64) -> SampleBatch {
        self.graph
            .expire(now_ns.saturating_sub(EDGE_TTL.as_nanos() as u64));
        let counts: HashMap<Outcome, u64> = self.linker.counts().collect();
        for (o, counter, reported) in &mut self.counters {
            let now = counts.get(o).copied().unwrap_or(0);
            counter.add(now - *reported);
            *reported = now;
        }
        let state = MapState {
            map: self.graph.view(now_ns),
            spans: self.recent.latest().map(SpanView::of).collect(),
            links: counts
                .iter()
                .map(|(o, n)| (o.name().to_owned(), *n))
                .collect(),
        };
        *self.handle.0.lock().unwrap_or_else(|p| p.into_inner()) = state;
        SampleBatch {
            source: SOURCE,
            interval_s,
            samples: self.graph.take_samples(),
        }
    }
}

/// The latest [`RECENT_SPANS`] spans, kept as the batches they were
/// released in: a batch is moved, not its spans (most are never shown).
struct Recent<T> {
    batches: VecDeque<Vec<T>>,
    /// Spans in `batches`.
    len: usize,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent {
            batches: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> Recent<T> {
    /// Keeps `spans`; returns the last batch no longer among the latest
    /// (for its room).
    fn keep(&mut self, mut spans: Vec<T>) -> Option<Vec<T>> {
        if spans.len() > RECENT_SPANS {
            spans.drain(..spans.len() - RECENT_SPANS);
        }
        self.len += spans.len();
        self.batches.push_back(spans);
        let mut old = None;
        while let Some(front) = self.batches.front()
            && self.len - front.len() >= RECENT_SPANS
        {
            self.len -= front.len();
            old = self.batches.pop_front();
        }
        old
    }

    /// The latest spans, oldest first.
    fn latest(&self) -> impl Iterator<Item = &T> {
        let skip = self.len.saturating_sub(RECENT_SPANS);
        self.batches.iter().flatten().skip(skip)
    }
}

/// The node of an enriched sample: pod, container or service; None for
/// processes outside any workload.
fn sample_node(s: &Sample) -> Option<Arc<str>> {
    if let Some(pod) = s.label(K8S_POD_NAME) {
        return Some(match s.label(K8S_NAMESPACE) {
            Some(ns) => format!("{ns}/{pod}").into(),
            None => pod.into(),
        });
    }
    s.label(CONTAINER_NAME).or(s.label(SERVICE)).map(Into::into)
}

#[cfg(test)]
#[path = "stage_tests.rs"]
mod tests;
