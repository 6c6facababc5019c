//! The service map: linked spans folded into edges client → server with
//! request counts, failures and duration histograms, published as the
//! service-graph metrics of Tempo's and the OpenTelemetry Collector's
//! `servicegraph` connector, and as a snapshot for `eunomia map`.
//!
//! A request whose two ends are on this host is one edge between their
//! nodes (counted once, at the client span, with both durations). A client
//! span whose server is elsewhere is an edge to the server's address; a
//! server span whose caller is elsewhere, an edge from the caller's
//! address (`connection_type="virtual_node"`). TCP connections without
//! HTTP make `connection_type="tcp"` edges, counting connections.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use serde::Serialize;

use super::{link::LinkedSpan, span::Side};
use crate::pipeline::{Sample, SampleValue};

/// Requests per edge.
pub(crate) const REQUESTS_METRIC: &str = "traces_service_graph_request_total";
/// Failed requests per edge.
pub(crate) const FAILED_METRIC: &str = "traces_service_graph_request_failed_total";
/// Server-side durations per edge.
pub(crate) const SERVER_SECONDS_METRIC: &str = "traces_service_graph_request_server_seconds";
/// Client-side durations per edge.
pub(crate) const CLIENT_SECONDS_METRIC: &str = "traces_service_graph_request_client_seconds";
/// Edges not kept because the map was full.
pub(crate) const OVERFLOW_METRIC: &str = "eunomia_service_graph_edges_overflow_total";

/// Log2 buckets of durations in µs (as the hot path's histograms).
const BUCKETS: usize = 40;

/// Who calls whom, and how.
// equality is the derived one's (content), only faster: Hash agrees
#[allow(clippy::derived_hash_with_manual_eq)]
#[derive(Debug, Clone, Eq, Hash, PartialOrd, Ord, Serialize)]
pub(crate) struct EdgeKey {
    /// The calling node.
    pub(crate) client: Arc<str>,
    /// The called node.
    pub(crate) server: Arc<str>,
    /// `""` (both ends seen), `virtual_node` (one end elsewhere) or `tcp`.
    pub(crate) connection_type: &'static str,
}

impl PartialEq for EdgeKey {
    /// By content, the shared names first by pointer (the stage hands out
    /// one `Arc` per node: most lookups compare no bytes).
    fn eq(&self, o: &EdgeKey) -> bool {
        let same = |a: &Arc<str>, b: &Arc<str>| Arc::ptr_eq(a, b) || a == b;
        same(&self.client, &o.client)
            && same(&self.server, &o.server)
            && (std::ptr::eq(self.connection_type, o.connection_type)
                || self.connection_type == o.connection_type)
    }
}

/// Counts of one edge (since the edge was first seen, or since the last
/// `take_samples` for the deltas).
#[derive(Debug, Clone, PartialEq)]
struct Counts {
    requests: u64,
    failed: u64,
    server: [u64; BUCKETS],
    client: [u64; BUCKETS],
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            requests: 0,
            failed: 0,
            server: [0; BUCKETS],
            client: [0; BUCKETS],
        }
    }
}

impl Counts {
    fn is_empty(&self) -> bool {
        self.requests == 0
    }
}

#[derive(Debug, Clone, Default)]
struct Edge {
    total: Counts,
    delta: Counts,
    first_ns: u64,
    last_ns: u64,
}

/// One edge as `eunomia map` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub(crate) struct EdgeView {
    /// The calling node.
    pub(crate) client: String,
    /// The called node.
    pub(crate) server: String,
    /// `""`, `virtual_node` or `tcp`.
    pub(crate) connection_type: String,
    /// Requests (connections for `tcp`) since first seen.
    pub(crate) requests: u64,
    /// Failed requests.
    pub(crate) failed: u64,
    /// Requests per second since first seen.
    pub(crate) rate: f64,
    /// 99th percentile of the client-side (else server-side) duration,
    /// seconds (upper bound of its log2 bucket); None without durations.
    pub(crate) p99_seconds: Option<f64>,
}

/// The map at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub(crate) struct MapView {
    /// Every edge, sorted.
    pub(crate) edges: Vec<EdgeView>,
}

/// The service graph of this host, bounded in edges.
#[derive(Debug)]
pub(crate) struct ServiceGraph {
    edges: HashMap<EdgeKey, Edge>,
    max_edges: usize,
    overflow: u64,
    overflow_reported: u64,
}

/// The bucket of a duration in ns: `0` below 1 µs, `i` in `[2^(i-1), 2^i)` µs.
fn bucket(ns: u64) -> usize {
    let us = ns / 1000;
    ((u64::BITS - us.leading_zeros()) as usize).min(BUCKETS - 1)
}

impl ServiceGraph {
    /// An empty map of at most `max_edges` edges.
    pub(crate) fn new(max_edges: usize) -> ServiceGraph {
        ServiceGraph {
            edges: HashMap::default(),
            max_edges,
            overflow: 0,
            overflow_reported: 0,
        }
    }

    #[cfg(test)]
    /// Whether there is no edge.
    pub(crate) fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    fn edge(&mut self, key: EdgeKey, now_ns: u64) -> Option<&mut Edge> {
        use std::collections::hash_map::Entry;
        let full = self.edges.len() >= self.max_edges;
        let e = match self.edges.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(_) if full => {
                self.overflow += 1;
                return None;
            }
            Entry::Vacant(v) => v.insert(Edge {
                first_ns: now_ns,
                ..Edge::default()
            }),
        };
        e.last_ns = now_ns;
        Some(e)
    }

    /// Folds one linked span in (see the module docs for which count).
    pub(crate) fn observe(&mut self, s: &LinkedSpan, now_ns: u64) {
        let span = &s.span;
        let (key, client_ns, server_ns, failed) = match (span.side, &s.peer) {
            (Side::Server, Some(_)) => return, // counted at its client span
            (Side::Server, None) => (
                EdgeKey {
                    client: span.remote.ip().to_string().into(),
                    server: span.node.clone(),
                    connection_type: "virtual_node",
                },
                None,
                Some(span.duration_ns()),
                span.failed(),
            ),
            (Side::Client, Some(peer)) => (
                EdgeKey {
                    client: span.node.clone(),
                    server: peer.node.clone(),
                    connection_type: "",
                },
                Some(span.duration_ns()),
                Some(peer.duration_ns),
                span.failed() || peer.failed,
            ),
            (Side::Client, None) => (
                EdgeKey {
                    client: span.node.clone(),
                    server: span.remote.to_string().into(),
                    connection_type: "virtual_node",
                },
                Some(span.duration_ns()),
                None,
                span.failed(),
            ),
        };
        let Some(e) = self.edge(key, now_ns) else {
            return;
        };
        for c in [&mut e.total, &mut e.delta] {
            c.requests += 1;
            c.failed += u64::from(failed);
            if let Some(ns) = client_ns {
                c.client[bucket(ns)] += 1;
            }
            if let Some(ns) = server_ns {
                c.server[bucket(ns)] += 1;
            }
        }
    }

    /// Counts `connections` new TCP connections from `client` to `server`
    /// (an edge of the hot path's TCP flows).
    pub(crate) fn observe_tcp(
        &mut self,
        client: Arc<str>,
        server: Arc<str>,
        connections: u64,
        now_ns: u64,
    ) {
        let key = EdgeKey {
            client,
            server,
            connection_type: "tcp",
        };
        if let Some(e) = self.edge(key, now_ns) {
            e.total.requests += connections;
            e.delta.requests += connections;
        }
    }

    /// Forgets edges idle since before `cutoff_ns`.
    pub(crate) fn expire(&mut self, cutoff_ns: u64) {
        self.edges.retain(|_, e| e.last_ns >= cutoff_ns);
    }

    /// The service-graph samples of what changed since the last call.
    pub(crate) fn take_samples(&mut self) -> Vec<Sample> {
        let mut out = Vec::new();
        for (k, e) in &mut self.edges {
            if e.delta.is_empty() {
                continue;
            }
            let d = std::mem::take(&mut e.delta);
            let labels = vec![
                ("client", k.client.to_string()),
                ("server", k.server.to_string()),
                ("connection_type", k.connection_type.to_owned()),
            ];
            let mut push = |metric, value| {
                out.push(Sample {
                    metric,
                    labels: labels.clone(),
                    value,
                })
            };
            push(REQUESTS_METRIC, SampleValue::Delta(d.requests));
            if d.failed > 0 {
                push(FAILED_METRIC, SampleValue::Delta(d.failed));
            }
            for (metric, h) in [
                (SERVER_SECONDS_METRIC, &d.server),
                (CLIENT_SECONDS_METRIC, &d.client),
            ] {
                if h.iter().any(|c| *c > 0) {
                    push(
                        metric,
                        SampleValue::Log2Histogram {
                            unit: "us",
                            counts: h.to_vec(),
                        },
                    );
                }
            }
        }
        let overflow = self.overflow - self.overflow_reported;
        if overflow > 0 {
            self.overflow_reported = self.overflow;
            out.push(Sample {
                metric: OVERFLOW_METRIC,
                labels: Vec::new(),
                value: SampleValue::Delta(overflow),
            });
        }
        out
    }

    /// The map now, for `eunomia map`.
    pub(crate) fn view(&self, now_ns: u64) -> MapView {
        let mut keys: Vec<&EdgeKey> = self.edges.keys().collect();
        keys.sort();
        let edges = keys
            .into_iter()
            .map(|k| {
                let e = &self.edges[k];
                let secs = (now_ns.saturating_sub(e.first_ns) as f64 / 1e9).max(1.0);
                let hist = if e.total.client.iter().any(|c| *c > 0) {
                    &e.total.client
                } else {
                    &e.total.server
                };
                EdgeView {
                    client: k.client.to_string(),
                    server: k.server.to_string(),
                    connection_type: k.connection_type.to_owned(),
                    requests: e.total.requests,
                    failed: e.total.failed,
                    rate: e.total.requests as f64 / secs,
                    p99_seconds: quantile(hist, 0.99),
                }
            })
            .collect();
        MapView { edges }
    }
}

/// The upper bound (seconds) of the log2 µs bucket holding quantile `q`.
fn quantile(h: &[u64; BUCKETS], q: f64) -> Option<f64> {
    let n: u64 = h.iter().sum();
    if n == 0 {
        return None;
    }
    let want = (q * n as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in h.iter().enumerate() {
        seen += c;
        if seen >= want {
            return Some((1u64 << i) as f64 * 1e-6);
        }
    }
    None
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
