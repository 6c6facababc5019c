use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use model::{
    EventView, Workload, fields as f,
    request::{HttpRequest, PathText},
    span::SpanKind,
};

use super::*;

const MS: u64 = 1_000_000;

/// An HTTP request of `pid`/`tid` (the service `svcPID`) ending at `end`
/// ms after `dur` ms, from 10.0.0.c:cport to 10.0.0.s:80.
fn request(
    kind: SpanKind,
    pid: u32,
    ms: (u64, u64),
    client: (u8, u16),
    server: u8,
    status: u16,
) -> Message {
    let ip = |d| IpAddr::V4(Ipv4Addr::new(10, 0, 0, d));
    let workload = Workload {
        service: Some(format!("svc{pid}")),
        ..Workload::default()
    };
    Message::Requests(vec![HttpRequest {
        kind,
        pid,
        tid: pid,
        cgroup_id: 1,
        start_ns: ms.0 * MS,
        duration_ns: (ms.1 - ms.0) * MS,
        server: SocketAddr::new(ip(server), 80),
        client: SocketAddr::new(ip(client.0), client.1),
        status,
        method: "GET",
        path: PathText::Route,
        route: "/".into(),
        request_size: 10,
        response_size: 20,
        traceparent: None,
        workload: Some(Arc::new(workload)),
        sampled: false,
    }])
}

fn stage(registry: &Registry, handle: MapHandle) -> TracesStage {
    TracesStage::new(
        registry,
        handle,
        Duration::ZERO,
        &TracesConfig::default(),
        SampleConfig::default(),
    )
}

#[test]
fn events_become_linked_spans_metrics_and_a_map() {
    use SpanKind::*;
    let registry = Registry::new();
    let handle = MapHandle::default();
    let mut stage = stage(&registry, handle.clone());
    let msgs = [
        request(Server, 2, (12, 58), (1, 5000), 2, 500),
        request(Client, 1, (10, 60), (1, 5000), 2, 500),
        request(Server, 1, (0, 100), (9, 6000), 1, 500),
    ];
    for m in msgs {
        assert!(stage.on_message(m, 0).is_none(), "span events are held");
    }
    assert!(stage.release(0).is_empty(), "held for the hold");
    let (released, batch) = stage.finish(1000 * MS);
    // every event goes on (ratio 1) with the linked ids: one trace, the
    // client's server span its child
    let ids: Vec<_> = released
        .iter()
        .map(|r| model::span::SpanContext::read(r).unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|c| c.trace_id == ids[0].trace_id));
    assert_eq!(ids.iter().filter(|c| c.parent_span_id.is_none()).count(), 1);
    assert_eq!(batch.source, SOURCE);
    let total = |server: &str| {
        batch
            .samples
            .iter()
            .find(|s| {
                s.metric == super::super::graph::REQUESTS_METRIC
                    && s.label("server") == Some(server)
            })
            .map(|s| s.value.clone())
    };
    assert_eq!(total("svc2"), Some(SampleValue::Delta(1)));
    assert_eq!(total("svc1"), Some(SampleValue::Delta(1))); // from 10.0.0.9
    let state: MapState = serde_json::from_str(&handle.json()).unwrap();
    assert_eq!(state.spans.len(), 3);
    let traces: std::collections::HashSet<_> = state.spans.iter().map(|s| &s.trace_id).collect();
    assert_eq!(traces.len(), 1, "{:#?}", state.spans);
    assert!(
        state
            .map
            .edges
            .iter()
            .any(|e| e.client == "svc1" && e.server == "svc2" && e.failed == 1)
    );
    let links: HashMap<_, _> = registry
        .read()
        .into_iter()
        .filter(|p| p.name == LINKS_METRIC)
        .map(|p| (p.labels[0].1.clone(), p.value))
        .collect();
    assert_eq!(links["server_parent_client"], 1.0);
    assert_eq!(links["server_no_parent"], 1.0);
    assert_eq!(links["client_parent_thread"], 1.0);
}

#[test]
fn tcp_connections_of_workloads_make_tcp_edges() {
    let registry = Registry::new();
    let mut stage = stage(&registry, MapHandle::default());
    let tcp = |labels: Vec<(&'static str, &str)>| {
        Message::Samples(SampleBatch {
            source: TCP_SOURCE,
            interval_s: 1.0,
            samples: vec![Sample {
                metric: CONNECTIONS_METRIC,
                labels: labels.into_iter().map(|(k, v)| (k, v.to_owned())).collect(),
                value: SampleValue::Delta(3),
            }],
        })
    };
    let base = vec![
        ("direction", "active"),
        ("net.daddr", "10.0.0.5"),
        ("net.dport", "6379"),
    ];
    let mut named = base.clone();
    named.push((CONTAINER_NAME, "api"));
    stage.on_message(tcp(named), 1);
    stage.on_message(tcp(base), 1); // a host process: no node
    let (_, batch) = stage.finish(2);
    let edge: Vec<_> = batch
        .samples
        .iter()
        .filter(|s| s.metric == super::super::graph::REQUESTS_METRIC)
        .collect();
    assert_eq!(edge.len(), 1);
    assert_eq!(edge[0].label("client"), Some("api"));
    assert_eq!(edge[0].label("server"), Some("10.0.0.5:6379"));
    assert_eq!(edge[0].label("connection_type"), Some("tcp"));
}

#[test]
fn processes_outside_workloads_are_named_by_their_comm() {
    let mut stage = stage(&Registry::new(), MapHandle::default());
    let me = stage.process_name(std::process::id());
    assert!(!me.starts_with("pid "), "{me}");
    assert_eq!(&*stage.process_name(u32::MAX), &format!("pid {}", u32::MAX));
}

#[test]
fn traces_are_sampled_whole_and_every_span_is_counted() {
    use SpanKind::*;
    let registry = Registry::new();
    let never = SampleConfig {
        ratio: 0.0,
        ..SampleConfig::default()
    };
    let mut stage = TracesStage::new(
        &registry,
        MapHandle::default(),
        Duration::ZERO,
        &TracesConfig::default(),
        never,
    );
    // two chains of three spans: in the first only the leaf failed
    let msgs = [
        request(Server, 2, (12, 58), (1, 5000), 2, 503),
        request(Client, 1, (10, 60), (1, 5000), 2, 503),
        request(Server, 1, (0, 100), (9, 6000), 1, 200),
        request(Server, 4, (212, 258), (3, 5001), 4, 200),
        request(Client, 3, (210, 260), (3, 5001), 4, 200),
        request(Server, 3, (200, 300), (9, 6001), 3, 200),
    ];
    for m in msgs {
        assert!(stage.on_message(m, 0).is_none());
    }
    let hold = TracesConfig::default().hold.as_nanos() as u64;
    let released = stage.release(hold);
    assert_eq!(released.len(), 3, "the failed trace, whole");
    let ids: Vec<_> = released
        .iter()
        .map(|r| model::span::SpanContext::read(r).unwrap())
        .collect();
    assert!(ids.iter().all(|c| c.trace_id == ids[0].trace_id));
    let statuses: Vec<_> = released
        .iter()
        .map(|r| r.get(f::HTTP_STATUS).map(|v| format!("{v:?}")))
        .collect();
    assert_eq!(statuses.iter().filter(|s| s.is_some()).count(), 3);
    let metric = |name: &str, reason: &str| {
        registry
            .read()
            .into_iter()
            .find(|p| p.name == name && p.labels.iter().any(|(_, v)| v == reason))
            .map_or(0.0, |p| p.value)
    };
    assert_eq!(metric(model::metrics::HTTP_SPANS_METRIC, "error"), 3.0);
    assert_eq!(
        metric(model::metrics::HTTP_DROPPED_METRIC, "sampled_out"),
        3.0
    );
    // the map counts both traces' calls
    let (_, batch) = stage.finish(hold);
    let calls: u64 = batch
        .samples
        .iter()
        .filter(|s| s.metric == super::super::graph::REQUESTS_METRIC && s.label("client").is_some())
        .filter(|s| s.label("connection_type") == Some(""))
        .map(|s| match s.value {
            SampleValue::Delta(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(calls, 2, "{:#?}", batch.samples);
}

#[test]
fn the_latest_spans_are_kept_whatever_the_batches() {
    let mut r = Recent::default();
    let mut next = 0;
    for n in [3, RECENT_SPANS - 1, 1, RECENT_SPANS + 5, 0, 7, 2] {
        r.keep((next..next + n).collect());
        next += n;
        let latest: Vec<usize> = r.latest().copied().collect();
        let want: Vec<usize> = (next.saturating_sub(RECENT_SPANS)..next).collect();
        assert_eq!(latest, want, "after a batch of {n}");
        assert!(r.len < 2 * RECENT_SPANS + 8, "{} held", r.len);
    }
}
