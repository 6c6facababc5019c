//! Call chains and the service map on a small microservice system of real
//! Docker containers on a Docker network (`scripts/demo/demo-svc.rs`,
//! built static into `FROM scratch` images): frontend → api → {auth,
//! data}, data failing every 5th request, and `pool`, a service that
//! hands its call to data to a thread pool. Under N known requests: N
//! traces each with the whole chain and its parent links, edges counting
//! the calls made and the failures injected, the service-graph metrics in
//! a real Prometheus, and the map SVG naming every service. The thread
//! pool's link completeness is measured and printed. With sampling on
//! (`sample_ratio = 0.5`), the map and the service-graph metrics still
//! count every request, and the spans the OTLP receiver gets form whole
//! traces (8 spans, every parent link right): the failed ones all, the
//! others some kept and some dropped, never a part of one. This is
//! `[http] records = "all"`; `service_map_sampled.rs` runs the same
//! system with the kernel's sampling.

mod containers_support;
mod demo_support;

use std::{collections::HashMap, path::Path, time::Duration};

use containers_support::{can_run, runtimes};
use demo_support::{
    Demo, FAIL_EVERY, N, POOL_N, brief, chain_complete, count, edge, edges_brief, http_drops,
    map_json, otlp_spans, start_agent, user_traces,
};
use eunomia_tests::{
    eunomia, kernel_lock,
    otlp::OtlpReceiver,
    prom::{Prometheus, free_port, value_of},
};
use serde_json::Value;

/// Share of the traces kept by ratio.
const RATIO: f64 = 0.5;

#[test]
fn demo_system_traces_edges_and_map() {
    if !can_run("demo_system_traces_edges_and_map") {
        return;
    }
    let _k = kernel_lock();
    let rt = runtimes();
    let demo = Demo::start(rt);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let receiver = OtlpReceiver::start();
    let (agent, socket) = start_agent(
        &demo,
        dir.path(),
        &format!("records = \"all\"\nsample_ratio = {RATIO}"),
        port,
        &receiver,
    );
    let auth = demo.node("auth");

    let prom = Prometheus::start(&format!(
        "  - job_name: eunomia\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    ));
    let (ok, failed) = demo.load("frontend", N);
    let injected = N / FAIL_EVERY;
    assert_eq!((ok, failed), (N - injected, injected));
    let (pool_ok, pool_failed) = demo.load("pool", POOL_N);
    assert_eq!(pool_ok + pool_failed, POOL_N);

    let (fe, api, data, pool) = (
        demo.node("frontend"),
        demo.node("api"),
        demo.node("data"),
        demo.node("pool"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let map = loop {
        let map = map_json(&socket);
        let all = count(edge(&map, &fe, &api), "requests") >= N
            && count(edge(&map, &api, &data), "requests") >= N
            && count(edge(&map, &pool, &data), "requests") >= POOL_N;
        if all {
            break map;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every call in the map; dropped: {:?}\nlinks: {}\nedges:\n{}",
            http_drops(port),
            map["links"],
            edges_brief(&map)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // edges: the calls made, the failures injected
    let fe_api = edge(&map, &fe, &api);
    assert_eq!(
        (count(fe_api, "requests"), count(fe_api, "failed")),
        (N, injected),
        "{map:#}\ndropped: {:?}",
        http_drops(port)
    );
    let api_data = edge(&map, &api, &data);
    assert_eq!(
        (count(api_data, "requests"), count(api_data, "failed")),
        (N, injected)
    );
    let api_auth = edge(&map, &api, &auth);
    assert_eq!(
        (count(api_auth, "requests"), count(api_auth, "failed")),
        (N, 0)
    );
    let pool_data = edge(&map, &pool, &data);
    assert_eq!(
        (count(pool_data, "requests"), count(pool_data, "failed")),
        (POOL_N, POOL_N / FAIL_EVERY)
    );

    // traces: each user request is one trace through every service
    let spans = map["spans"].as_array().unwrap();
    let mut traces: HashMap<&str, Vec<&Value>> = HashMap::new();
    for s in spans {
        traces
            .entry(s["trace_id"].as_str().unwrap())
            .or_default()
            .push(s);
    }
    let whole = traces
        .values()
        .filter(|t| {
            t.iter()
                .any(|s| s["node"] == fe.as_str() && s["kind"] == "server")
        })
        .filter(|t| chain_complete(t, &fe, &api, &auth, &data))
        .count();
    let broken: Vec<_> = traces
        .values()
        .filter(|t| {
            t.iter()
                .any(|s| s["node"] == fe.as_str() && s["kind"] == "server")
        })
        .filter(|t| !chain_complete(t, &fe, &api, &auth, &data))
        .collect();
    let broken: Vec<Vec<String>> = broken.into_iter().map(|t| brief(t)).collect();
    let auth_spans: Vec<String> = spans
        .iter()
        .filter(|s| {
            s["node"] == auth.as_str() || (s["node"] == api.as_str() && s["kind"] == "client")
        })
        .map(|s| {
            format!(
                "{} {} {} tid {} trace {} parent {}",
                s["node"], s["kind"], s["remote"], s["tid"], s["trace_id"], s["parent_id"]
            )
        })
        .collect();
    assert_eq!(
        whole as u64, N,
        "traces with the whole chain; links {}; broken: {broken:#?}; api/auth spans: {auth_spans:#?}",
        map["links"]
    );

    // the thread pool: its calls are made by another thread
    let pool_linked = traces
        .values()
        .filter(|t| {
            t.iter()
                .any(|s| s["node"] == pool.as_str() && s["kind"] == "server")
        })
        .filter(|t| {
            t.iter()
                .any(|s| s["node"] == data.as_str() && s["kind"] == "server")
        })
        .count();
    println!(
        "link completeness: {whole}/{N} user requests fully linked; thread pool service: {pool_linked}/{POOL_N} (its calls to data are made by pool threads, which the same-thread rule cannot see)"
    );
    println!("link outcomes: {}", map["links"]);
    assert_eq!(
        pool_linked, 0,
        "a thread pool's calls cannot be linked by thread"
    );

    // the map SVG names every service
    let svg_path = dir.path().join("map.svg");
    let out = eunomia()
        .args(["map", "-o"])
        .arg(&svg_path)
        .arg("--socket")
        .arg(&socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    for name in [&fe, &api, &auth, &data, &pool] {
        assert!(
            svg.contains(&format!("<title>{name}</title>")),
            "{name} not in the SVG"
        );
    }

    // the service-graph metrics in a real Prometheus
    let q = format!(
        "traces_service_graph_request_total{{client=\"{fe}\",server=\"{api}\",connection_type=\"\"}}"
    );
    let r = prom.wait_for(&q, Duration::from_secs(30), |r| {
        r.first().is_some_and(|x| value_of(x) >= N as f64)
    });
    assert_eq!(value_of(&r[0]), N as f64);
    let q =
        format!("traces_service_graph_request_failed_total{{client=\"{api}\",server=\"{data}\"}}");
    let r = prom.wait_for(&q, Duration::from_secs(30), |r| !r.is_empty());
    assert_eq!(value_of(&r[0]), injected as f64);
    let q = format!(
        "traces_service_graph_request_server_seconds_count{{client=\"{fe}\",server=\"{api}\"}}"
    );
    let r = prom.wait_for(&q, Duration::from_secs(30), |r| !r.is_empty());
    assert_eq!(value_of(&r[0]), N as f64);

    dashboard_service_map(&prom, &[&fe, &api, &auth, &data, &pool]);

    let status = eunomia()
        .args(["status", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("trace links: "), "{text}");
    assert!(
        text.contains("eunomia_http_dropped_total{reason=\"sampled_out\"}"),
        "{text}"
    );
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);

    // the OTLP spans: whole linked traces, sampled per trace
    let otlp = otlp_spans(&receiver.received());
    let user = user_traces(&otlp, &fe);
    let partial: Vec<Vec<String>> = user
        .iter()
        .filter(|t| t.len() != 8 || !chain_complete(t, &fe, &api, &auth, &data))
        .map(|t| brief(t))
        .collect();
    assert!(partial.is_empty(), "partial traces exported: {partial:#?}");
    let failed = user
        .iter()
        .filter(|t| {
            t.iter()
                .any(|s| s["node"] == fe.as_str() && s["kind"] == "server" && s["error"] == true)
        })
        .count() as u64;
    let kept = user.len() as u64;
    println!(
        "OTLP: {kept}/{N} user traces exported whole at sample_ratio {RATIO} ({failed} failed, all kept; {} by ratio of {}), {} spans in all",
        kept - failed,
        N - injected,
        otlp.len()
    );
    assert_eq!(failed, injected, "every failed trace is kept");
    assert!(
        kept > injected && kept < N,
        "some traces kept by ratio, some dropped: {kept} of {N}"
    );
    drop(demo);
}

/// The service-map panels of the shipped Grafana dashboard, run in the
/// real Prometheus: every query returns data, the node graph's nodes query
/// names every service and its edges query has the frontend → api edge.
fn dashboard_service_map(prom: &Prometheus, services: &[&String]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/eunomia.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panel = |title: &str| -> Vec<(String, String)> {
        let p = dash["panels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title}"));
        p["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let q = t["expr"].as_str().unwrap();
                let q = q
                    .replace("$instance", ".*")
                    .replace("$__range", "5m")
                    .replace("$__rate_interval", "30s");
                (t["refId"].as_str().unwrap().to_owned(), q)
            })
            .collect()
    };
    // rates need two scrapes of each series
    let wait = |q: &str, what: &str, pred: &dyn Fn(&[Value]) -> bool| {
        prom.wait_for(q, Duration::from_secs(30), |r| pred(r));
        println!("dashboard: {what} ok");
    };
    let graph = panel("Service graph");
    assert_eq!(graph[0].0, "nodes");
    wait(&graph[0].1, "node graph nodes", &|r| {
        services
            .iter()
            .all(|name| r.iter().any(|n| n["metric"]["id"] == name.as_str()))
    });
    let fe_api = format!("{} -> {}", services[0], services[1]);
    wait(&graph[1].1, "node graph edges", &|r| {
        r.iter().any(|e| e["metric"]["id"] == fe_api.as_str())
    });
    wait(&graph[2].1, "node graph failed share", &|r| !r.is_empty());
    for title in [
        "Requests / s by edge",
        "Failed requests / s and p99 by edge",
    ] {
        for (_, q) in panel(title) {
            wait(&q, title, &|r| !r.is_empty());
        }
    }
}
