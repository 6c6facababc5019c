//! The Grafana dashboard against real data: a real agent (Prometheus sink,
//! tools, rules) is scraped by a real Prometheus (Debian's), and every
//! panel's query is run there. A query naming a metric the agent does not
//! export, or grouping or filtering by a label that metric does not have,
//! fails the test (that is how `sum by (container_name, dir)` of
//! `eunomia_tcp_bytes_total`, whose labels are `direction` and `role`, went
//! unnoticed). The same scrape holds every exported name to the rule of
//! `docs/metrics.md`.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use eunomia::aggregate::{MetricKind, names::check_metric_name};
use eunomia_tests::{
    Agent, eunomia, kernel_lock, kernel_tests_can_run,
    otlp::OtlpReceiver,
    prom::{Prometheus, free_port},
    temp_dir,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Enrichment labels (docs/metrics.md: "+ enrichment labels"): present only
/// on series of containers, pods and services, which this host may lack.
const ENRICHMENT: &[&str] = &[
    "container_name",
    "container_id",
    "container_runtime",
    "k8s_pod_name",
    "k8s_pod_uid",
    "k8s_namespace_name",
    "service",
];

/// Metrics that have series only when something happens that a healthy
/// test host does not do, with the reason.
const ONLY_ON_TROUBLE_OR_CONTAINERS: &[(&str, &str)] = &[
    ("eunomia_container_cpu_seconds_total", "needs a container"),
    ("eunomia_container_memory_bytes", "needs a container"),
    (
        "eunomia_aggregate_overflow_total",
        "only when a metric overflows",
    ),
    (
        "eunomia_hotpath_map_full_total",
        "only when a kernel map is full",
    ),
];

/// Every panel query of the dashboard, with its panel title.
fn panel_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("deploy/grafana/eunomia.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((p["title"].as_str().unwrap_or("").to_owned(), e.to_owned()));
            }
        }
    }
    out
}

/// Grafana's variables as a dashboard user with "All" selected has them.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$instance", ".*")
        .replace("$container", ".*")
}

/// `eunomia_*` and `traces_service_graph_*` metric names in `expr`,
/// histogram suffixes stripped.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let starts = expr
        .match_indices("eunomia_")
        .chain(expr.match_indices("traces_service_graph_"));
    for (i, _) in starts {
        let tail = &expr[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        out.insert(name.strip_suffix("_bucket").unwrap_or(name).to_owned());
    }
    out
}

/// Label names `expr` groups by (`by (a, b)`) or matches on (`{a=~".."}`).
fn labels_in(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("by (").or_else(|| rest.find("by(")) {
        let tail = &rest[i..];
        let open = tail.find('(').unwrap();
        let close = tail.find(')').unwrap();
        out.extend(
            tail[open + 1..close]
                .split(',')
                .map(|l| l.trim().to_owned()),
        );
        rest = &tail[close..];
    }
    let mut rest = expr;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i + 1..];
        let close = tail.find('}').unwrap();
        for matcher in tail[..close].split(',') {
            let name = matcher.split(['=', '!', '~']).next().unwrap_or("").trim();
            out.insert(name.to_owned());
        }
        rest = &tail[close..];
    }
    out.retain(|l| !l.is_empty() && l != "instance" && l != "le");
    out
}

/// Label names on any series of `metric` in Prometheus (None: no series).
fn labels_of(prom: &Prometheus, metric: &str) -> Option<BTreeSet<String>> {
    let series = prom.query(&format!("{{__name__=~\"{metric}|{metric}_bucket\"}}"));
    if series.is_empty() {
        return None;
    }
    Some(
        series
            .iter()
            .flat_map(|s| s["metric"].as_object().unwrap().keys().cloned())
            .collect(),
    )
}

/// The agent with every sink the dashboard has panels for: Prometheus
/// (scraped), OTLP (to a real receiver) and JSON lines (to a file).
fn start_agent(port: u16, otlp: &str) -> Agent {
    let dir = temp_dir("dashboard-live");
    let config = dir.join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\npoll_interval = \"1s\"\n[tools]\nenabled = [\"execsnoop\", \"opensnoop\", \"exitsnoop\", \"tcpstates\"]\n[rules]\nwatch_interval = \"0s\"\nconsole = false\n[sinks.prometheus]\nlisten = \"127.0.0.1:{port}\"\n[sinks.otlp]\nendpoint = \"{otlp}\"\nexport_interval = \"1s\"\n[sinks.jsonl]\npath = {:?}\nmetrics = false\n",
            dir.join("events.jsonl").display().to_string()
        ),
    )
    .unwrap();
    let mut cmd = eunomia();
    cmd.args(["run", "--for", "90s", "--config"]).arg(&config);
    Agent::spawn(cmd)
}

/// A TCP session ended by a reset (SO_LINGER 0), and a refused connect.
fn reset_and_refuse() {
    use std::os::fd::AsRawFd as _;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_s, _) = l.accept().unwrap();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on an open socket with a valid linger struct.
    let rc = unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
    drop(c);
    let closed = l.local_addr().unwrap();
    drop(l);
    assert!(std::net::TcpStream::connect(closed).is_err());
}

/// Things for every panel to show: execs, opens, TCP sessions, an alert.
fn make_activity() {
    reset_and_refuse();
    for _ in 0..3 {
        let _ = Command::new("cat").arg("/etc/shadow").output();
        let _ = Command::new("true").output();
        let _ = Command::new("sh")
            .args(["-c", "cat /nonexistent-eunomia-file 2>/dev/null"])
            .output();
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn every_dashboard_query_returns_data() {
    if !kernel_tests_can_run("every_dashboard_query_returns_data") {
        return;
    }
    let _serial = kernel_lock();
    let port = free_port();
    let receiver = OtlpReceiver::start();
    let mut agent = start_agent(port, &receiver.endpoint());
    agent.wait_for_stderr("hot path attached", Duration::from_secs(30));
    let prom = Prometheus::start(&format!(
        "  - job_name: eunomia\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
    ));
    make_activity();
    // Rates need two scrapes after the activity; alerts need the rules.
    prom.wait_for(
        "sum(eunomia_rules_alerts_total)",
        Duration::from_secs(40),
        |r| !r.is_empty(),
    );
    make_activity();
    std::thread::sleep(Duration::from_secs(4));

    let mut problems = Vec::new();
    let mut unverified = BTreeSet::new();
    let mut labels_cache: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    for (title, expr) in panel_queries() {
        // the service map's panels run against a real Prometheus in
        // tests/tests/service_map.rs, on the demo system: here the edges
        // are whatever HTTP the machine makes (the scrapes), and their
        // queries make labels (`id`) that no metric has
        if expr.contains("traces_service_graph_") {
            continue;
        }
        let q = substitute(&expr);
        let mut all_present = true;
        for m in metrics_in(&q) {
            let labels = labels_cache
                .entry(m.clone())
                .or_insert_with(|| labels_of(&prom, &m))
                .clone();
            let Some(labels) = labels else {
                all_present = false;
                if !ONLY_ON_TROUBLE_OR_CONTAINERS.iter().any(|(n, _)| *n == m) {
                    problems.push(format!(
                        "{title}: the agent exports no {m} (wrong name?): {expr}"
                    ));
                }
                continue;
            };
            for l in labels_in(&q) {
                if labels.contains(&l) {
                    continue;
                }
                if ENRICHMENT.contains(&l.as_str()) {
                    unverified.insert(format!("{m}:{l}"));
                    continue;
                }
                problems.push(format!(
                    "{title}: {m} has no label `{l}` (it has {labels:?}): {expr}"
                ));
            }
        }
        if all_present && prom.query(&q).is_empty() {
            problems.push(format!("{title}: returns nothing: {q}"));
        }
    }
    eprintln!("enrichment labels not checked against data (no container here): {unverified:?}");

    // Every exported name follows docs/metrics.md's rule.
    let text = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .and_then(|r| r.text())
        .expect("scrape the agent");
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let kind = match kind {
            "counter" => Some(MetricKind::Sum),
            "gauge" => Some(MetricKind::LastValue),
            "histogram" => Some(MetricKind::Histogram),
            _ => None,
        };
        if let Err(e) = check_metric_name(name, kind) {
            problems.push(format!("exported name: {e}"));
        }
    }
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
