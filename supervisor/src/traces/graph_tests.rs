use std::net::SocketAddr;

use super::*;
use crate::traces::{
    config::LinkConfig,
    link::Linker,
    span::{IdGen, SpanIn},
};

const MS: u64 = 1_000_000;

fn span(
    side: Side,
    node: &str,
    tid: u32,
    ms: (u64, u64),
    local: &str,
    remote: &str,
    status: u16,
) -> SpanIn {
    let a = |s: &str| s.parse::<SocketAddr>().unwrap();
    SpanIn {
        side,
        pid: tid / 10,
        tid,
        start_ns: ms.0 * MS,
        end_ns: ms.1 * MS,
        local: a(local),
        remote: a(remote),
        status,
        traceparent: None,
        node: node.into(),
        sampled: false,
    }
}

/// frontend → api → data (fails), api → an outside host; one user call.
fn requests(data_status: u16) -> Vec<SpanIn> {
    use Side::*;
    vec![
        span(
            Server,
            "data",
            31,
            (22, 48),
            "10.0.0.3:80",
            "10.0.0.2:4000",
            data_status,
        ),
        span(
            Client,
            "api",
            21,
            (20, 50),
            "10.0.0.2:4000",
            "10.0.0.3:80",
            data_status,
        ),
        span(
            Client,
            "api",
            21,
            (51, 54),
            "10.0.0.2:4001",
            "93.184.216.34:443",
            200,
        ),
        span(
            Server,
            "api",
            21,
            (12, 58),
            "10.0.0.2:80",
            "10.0.0.1:5000",
            200,
        ),
        span(
            Client,
            "frontend",
            11,
            (10, 60),
            "10.0.0.1:5000",
            "10.0.0.2:80",
            200,
        ),
        span(
            Server,
            "frontend",
            11,
            (0, 100),
            "10.0.0.1:80",
            "192.168.1.9:6000",
            200,
        ),
    ]
}

fn graph_of(spans: Vec<SpanIn>) -> ServiceGraph {
    let mut l = Linker::new(LinkConfig::default(), IdGen::seeded(3));
    let mut g = ServiceGraph::new(100);
    for s in spans {
        let now = s.end_ns;
        for x in l.push(s, now) {
            g.observe(&x, now);
        }
    }
    for x in l.flush() {
        g.observe(&x, 1000 * MS);
    }
    g
}

fn edge<'a>(v: &'a MapView, client: &str, server: &str) -> &'a EdgeView {
    v.edges
        .iter()
        .find(|e| e.client == client && e.server == server)
        .unwrap_or_else(|| panic!("no edge {client} -> {server} in {v:#?}"))
}

#[test]
fn edges_count_each_request_once() {
    let mut spans = requests(500);
    spans.extend(requests(200).into_iter().map(|mut s| {
        s.start_ns += 200 * MS;
        s.end_ns += 200 * MS;
        // new connections: other ephemeral ports
        for a in [&mut s.local, &mut s.remote] {
            if a.port() > 1024 {
                a.set_port(a.port() + 7);
            }
        }
        s
    }));
    let g = graph_of(spans);
    let v = g.view(2000 * MS);
    assert_eq!(v.edges.len(), 4, "{v:#?}");
    let fe_api = edge(&v, "frontend", "api");
    assert_eq!(
        (
            fe_api.requests,
            fe_api.failed,
            fe_api.connection_type.as_str()
        ),
        (2, 0, "")
    );
    let api_data = edge(&v, "api", "data");
    assert_eq!((api_data.requests, api_data.failed), (2, 1));
    assert_eq!(api_data.p99_seconds, Some(0.032768)); // 30 ms in [16.4, 32.8) ms
    let user = edge(&v, "192.168.1.9", "frontend");
    assert_eq!(
        (user.requests, user.connection_type.as_str()),
        (2, "virtual_node")
    );
    assert_eq!(edge(&v, "api", "93.184.216.34:443").requests, 2);
}

#[test]
fn samples_are_deltas_with_the_service_graph_labels() {
    let mut g = graph_of(requests(503));
    let s = g.take_samples();
    let of = |metric: &str, server: &str| {
        s.iter()
            .find(|x| x.metric == metric && x.label("server") == Some(server))
            .map(|x| x.value.clone())
    };
    assert_eq!(of(REQUESTS_METRIC, "data"), Some(SampleValue::Delta(1)));
    assert_eq!(of(FAILED_METRIC, "data"), Some(SampleValue::Delta(1)));
    assert_eq!(of(FAILED_METRIC, "api"), None);
    let Some(SampleValue::Log2Histogram { unit, counts }) = of(SERVER_SECONDS_METRIC, "data")
    else {
        panic!("no server histogram")
    };
    assert_eq!((unit, counts.iter().sum::<u64>()), ("us", 1));
    assert!(of(CLIENT_SECONDS_METRIC, "data").is_some());
    // a server span whose caller is elsewhere has no client-side duration
    assert!(of(CLIENT_SECONDS_METRIC, "frontend").is_none());
    let x = s.iter().find(|x| x.metric == REQUESTS_METRIC).unwrap();
    let keys: Vec<_> = x.labels.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, ["client", "server", "connection_type"]);
    assert!(g.take_samples().is_empty());
}

#[test]
fn tcp_edges_and_the_bound() {
    let mut g = ServiceGraph::new(2);
    g.observe_tcp("a".into(), "b".into(), 3, 1);
    g.observe_tcp("a".into(), "b".into(), 2, 2);
    g.observe_tcp("a".into(), "c".into(), 1, 3);
    g.observe_tcp("a".into(), "d".into(), 1, 4);
    let v = g.view(5);
    assert_eq!(v.edges.len(), 2);
    assert_eq!(edge(&v, "a", "b").requests, 5);
    assert_eq!(edge(&v, "a", "b").connection_type, "tcp");
    assert_eq!(edge(&v, "a", "b").p99_seconds, None);
    let s = g.take_samples();
    assert!(
        s.iter()
            .any(|x| x.metric == OVERFLOW_METRIC && x.value == SampleValue::Delta(1))
    );
    g.expire(4);
    assert!(g.is_empty());
}

#[test]
fn quantiles_of_log2_buckets() {
    let mut h = [0u64; BUCKETS];
    h[bucket(3_000_000)] = 99; // 3 ms
    h[bucket(900_000_000)] = 1; // 900 ms
    assert_eq!(quantile(&h, 0.99), Some(0.004096));
    assert_eq!(quantile(&h, 1.0), Some(1.048576));
    assert_eq!(quantile(&[0; BUCKETS], 0.99), None);
    assert_eq!(bucket(0), 0);
    assert_eq!(bucket(1_000), 1);
}
