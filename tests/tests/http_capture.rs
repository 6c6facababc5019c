//! HTTP/1.x capture end to end: the tests crate's server (`http-echo`) in
//! one cgroup the test creates, its client in another, the agent writing
//! events and metrics to a JSON-lines file. Known methods, paths and status
//! codes, keep-alive and not, large headers and bodies, a server that
//! sleeps a known time, pipelined requests, and TLS-like and binary bytes
//! on the same port: the events and the duration histograms count exactly
//! what was sent, and nothing of the non-HTTP traffic.

mod hotpath_support;
mod http_support;

use std::{
    collections::BTreeMap,
    process::{Command, Stdio},
    time::Duration,
};

use eunomia_tests::{
    Agent, kernel_lock, kernel_tests_can_run,
    otlp::{OtlpReceiver, Received, attr, attr_text},
};
use hotpath_support::{ATTACHED, TestCgroup};
use http_support::{get, raw, serve, token};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use serde_json::Value;

fn lines_of(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn http_requests_counted_per_route_and_status() {
    if !kernel_tests_can_run("http_requests_counted_per_route_and_status") {
        return;
    }
    let _serial = kernel_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let config = dir.path().join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\npoll_interval = \"500ms\"\n\n[http]\nenabled = true\nsample_ratio = 1.0\n\n[sinks.jsonl]\nenabled = true\npath = \"{}\"\ninterval = \"500ms\"\n",
            out.display()
        ),
    )
    .unwrap();
    let srv_cg = TestCgroup::create("http-srv");
    let cli_cg = TestCgroup::create("http-cli");
    let mut agent = Agent::spawn({
        let mut c = Command::new(eunomia_tests::eunomia_bin());
        c.args(["run", "--config", config.to_str().unwrap()]);
        c
    });
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(30));
    let server = serve(&srv_cg);
    let port = server.port;
    let tok = token();
    let paths = |p: &str, n: usize| vec![format!("/{p}/{tok}"); n];

    // keep-alive: 10 × 200 on one connection
    assert_eq!(
        get(&cli_cg, port, &["--keepalive"], &paths("status/200", 10)),
        [200; 10]
    );
    // one connection per request: 5 × 404, 3 × 500
    assert_eq!(get(&cli_cg, port, &[], &paths("status/404", 5)), [404; 5]);
    assert_eq!(get(&cli_cg, port, &[], &paths("status/500", 3)), [500; 3]);
    // large headers and bodies, POST, keep-alive
    let big = [
        "--keepalive",
        "--method",
        "POST",
        "--body",
        "300000",
        "--header-bytes",
        "6000",
    ];
    assert_eq!(get(&cli_cg, port, &big, &paths("upload", 4)), [200; 4]);
    assert_eq!(
        get(&cli_cg, port, &["--keepalive"], &paths("big/500000", 2)),
        [200; 2]
    );
    // a server that takes 150 ms
    assert_eq!(
        get(&cli_cg, port, &["--keepalive"], &paths("sleep/150", 3)),
        [200; 3]
    );
    // a traceparent
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_eq!(
        get(&cli_cg, port, &["--traceparent", tp], &paths("traced", 1)),
        [200]
    );
    // pipelined: 4 requests in one write
    assert_eq!(
        get(
            &cli_cg,
            port,
            &["--keepalive", "--pipeline"],
            &paths("pipe", 4)
        ),
        [200; 4]
    );
    // TLS ClientHello-like and binary bytes on the same port
    raw(&cli_cg, port, "160301020001000100030300112233445566778899");
    raw(
        &cli_cg,
        port,
        "00ff10e5474554202f20485454502f312e310d0a0d0a",
    );

    std::thread::sleep(Duration::from_secs(2));
    agent.signal(libc::SIGTERM);
    let (code, _, stderr) = agent.finish_with_stderr(Duration::from_secs(20));
    // the kernel's series were read in batches (Linux 5.6 and later)
    assert!(
        !stderr
            .iter()
            .any(|l| l.contains("reading series one by one")),
        "{stderr:?}"
    );
    drop(server);
    assert_eq!(code, 0);
    let lines = lines_of(&out);

    let events = |kind: &str, cg: &TestCgroup| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["type"] == "event" && l["kind"] == kind && l["cgroup.id"] == cg.id)
            .cloned()
            .collect()
    };
    let count_by = |evs: &[Value]| -> BTreeMap<(String, i64), usize> {
        let mut m = BTreeMap::new();
        for e in evs {
            let key = (
                e["http.route"].as_str().unwrap_or("?").to_owned(),
                e["http.response.status_code"].as_i64().unwrap_or(0),
            );
            *m.entry(key).or_default() += 1;
        }
        m
    };
    let server_events = events("http_server", &srv_cg);
    let client_events = events("http_client", &cli_cg);
    let r = |p: &str| format!("/{p}/{tok}");
    let mut want = BTreeMap::new();
    want.insert((r("status/{id}"), 200), 10);
    want.insert((r("status/{id}"), 404), 5);
    want.insert((r("status/{id}"), 500), 3);
    want.insert((r("upload"), 200), 4);
    want.insert((r("big/{id}"), 200), 2);
    want.insert((r("sleep/{id}"), 200), 3);
    want.insert((r("traced"), 200), 1);
    let mut server_counts = count_by(&server_events);
    let pipelined_server = server_counts.remove(&(r("pipe"), 200)).unwrap_or(0);
    let mut client_counts = count_by(&client_events);
    let pipelined_client = client_counts.remove(&(r("pipe"), 200)).unwrap_or(0);
    let drops = http_drops(&lines);
    assert_eq!(server_counts, want, "server side; dropped: {drops:?}");
    assert_eq!(client_counts, want, "client side; dropped: {drops:?}");
    assert!(pipelined_server >= 1 && pipelined_client >= 1);

    // the pipelined requests the kernel could not match are counted
    let dropped: u64 = lines
        .iter()
        .filter(|l| l["type"] == "metric" && l["name"] == "eunomia_http_dropped_total")
        .filter(|l| l["labels"]["reason"] == "unmatched_response")
        .filter_map(|l| l["value"].as_f64())
        .fold(0.0, f64::max) as u64;
    assert!(
        pipelined_server as u64 + dropped >= 4,
        "pipelined: {pipelined_server} recorded + {dropped} counted"
    );

    // methods, sizes, addresses, traceparent
    let upload = server_events
        .iter()
        .find(|e| e["http.route"] == r("upload"))
        .unwrap();
    assert_eq!(upload["http.request.method"], "POST");
    assert!(
        upload["http.request.size"].as_i64().unwrap() >= 306_000,
        "{upload}"
    );
    assert_eq!(upload["server.port"], port);
    assert_eq!(upload["server.address"], "127.0.0.1");
    let call = client_events
        .iter()
        .find(|e| e["http.route"] == r("status/{id}"))
        .unwrap();
    assert_eq!(call["server.port"], port);
    assert_eq!(call["http.request.method"], "GET");
    let traced = server_events
        .iter()
        .find(|e| e["http.route"] == r("traced"))
        .unwrap();
    assert_eq!(traced["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(traced["parent_span_id"], "00f067aa0ba902b7");
    // every span has its own id; one without traceparent starts a trace
    let ids: std::collections::HashSet<&str> = server_events
        .iter()
        .chain(&client_events)
        .map(|e| e["span_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), server_events.len() + client_events.len());
    assert!(ids.iter().all(|i| i.len() == 16));
    assert_eq!(call["trace_id"].as_str().unwrap().len(), 32);
    assert!(call.get("parent_span_id").is_none(), "{call}");

    // durations: the sleeping route within tolerance of 150 ms
    for e in server_events
        .iter()
        .filter(|e| e["http.route"] == r("sleep/{id}"))
    {
        let ns = e["duration"].as_u64().unwrap();
        assert!((150_000_000..250_000_000).contains(&ns), "{e}");
    }
    for e in server_events
        .iter()
        .filter(|e| e["http.route"] == r("status/{id}"))
    {
        assert!(e["duration"].as_u64().unwrap() < 100_000_000, "{e}");
    }

    // the histograms count the same (the last snapshot of each series)
    let mut series: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for l in lines
        .iter()
        .filter(|l| l["type"] == "metric" && l["name"] == "http_server_request_duration_seconds")
    {
        let labels = &l["labels"];
        let Some(route) = labels["http.route"].as_str() else {
            continue;
        };
        if !of_cgroup(l, &srv_cg) {
            continue;
        }
        if !route.contains(&tok) {
            continue;
        }
        let key = format!(
            "{route} {} {}",
            labels["http.request.method"], labels["http.status_class"]
        );
        series.insert(
            key,
            (l["count"].as_u64().unwrap(), l["sum"].as_f64().unwrap()),
        );
    }
    let count = |route: &str, method: &str, class: &str| {
        series
            .get(&format!("{} \"{method}\" \"{class}\"", r(route)))
            .map_or(0, |s| s.0)
    };
    assert_eq!(count("status/{id}", "GET", "2xx"), 10, "{series:?}");
    assert_eq!(count("status/{id}", "GET", "4xx"), 5, "{series:?}");
    assert_eq!(count("status/{id}", "GET", "5xx"), 3, "{series:?}");
    assert_eq!(count("upload", "POST", "2xx"), 4, "{series:?}");
    let sleep = series[&format!("{} \"GET\" \"2xx\"", r("sleep/{id}"))];
    assert_eq!(sleep.0, 3);
    assert!((0.45..0.75).contains(&sleep.1), "3 × 150 ms: {sleep:?}");

    // nothing from the TLS-like and binary connections: every event is one
    // of the routes above
    for e in server_events.iter().chain(&client_events) {
        assert!(e["url.path"].as_str().unwrap().ends_with(&tok), "{e}");
    }
}

/// Whether metric line `l` is a series of `cg`'s.
fn of_cgroup(l: &Value, cg: &TestCgroup) -> bool {
    l["labels"]["cgroup.id"].as_str() == Some(cg.id.to_string().as_str())
}

/// The non-zero `eunomia_http_dropped_total` reasons and the delivered
/// records, for failure messages.
fn http_drops(lines: &[Value]) -> Vec<(String, u64)> {
    let mut reasons: Vec<String> = lines
        .iter()
        .filter(|l| l["type"] == "metric" && l["name"] == "eunomia_http_dropped_total")
        .filter_map(|l| l["labels"]["reason"].as_str().map(str::to_owned))
        .collect();
    reasons.sort();
    reasons.dedup();
    let mut out: Vec<(String, u64)> = reasons
        .into_iter()
        .map(|r| {
            let v = last_metric(lines, "eunomia_http_dropped_total", &r);
            (r, v)
        })
        .filter(|(_, v)| *v > 0)
        .collect();
    let records = lines
        .iter()
        .filter(|l| l["type"] == "metric" && l["name"] == "eunomia_http_records_total")
        .filter_map(|l| l["value"].as_f64())
        .fold(0.0, f64::max) as u64;
    out.push(("(records delivered)".to_owned(), records));
    out
}

/// The last value of self-metric `name{reason}` in the JSON-lines output.
fn last_metric(lines: &[Value], name: &str, reason: &str) -> u64 {
    lines
        .iter()
        .filter(|l| l["type"] == "metric" && l["name"] == name)
        .filter(|l| l["labels"]["reason"] == reason)
        .filter_map(|l| l["value"].as_f64())
        .fold(0.0, f64::max) as u64
}

#[test]
fn http_metrics_count_every_request_spans_only_sampled_and_errors() {
    if !kernel_tests_can_run("http_metrics_count_every_request_spans_only_sampled_and_errors") {
        return;
    }
    let _serial = kernel_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let config = dir.path().join("eunomia.toml");
    let receiver = OtlpReceiver::start();
    std::fs::write(
        &config,
        format!(
            "[agent]\npoll_interval = \"500ms\"\n\n[http]\nenabled = true\nsample_ratio = 0.0\nslow_threshold = \"100ms\"\n\n\
             [sinks.jsonl]\nenabled = true\npath = \"{}\"\ninterval = \"500ms\"\n\n\
             [sinks.otlp]\nendpoint = \"{}\"\nexport_interval = \"500ms\"\n",
            out.display(),
            receiver.endpoint()
        ),
    )
    .unwrap();
    // a systemd-like service, so its spans name it as service.name
    let service = format!("eunomia-test-web-{}", std::process::id());
    let srv_cg = service_cgroup(&service);
    let cli_cg = TestCgroup::create("http-smp-cli");
    let mut agent = Agent::spawn({
        let mut c = eunomia_tests::eunomia();
        c.args(["run", "--config", config.to_str().unwrap()]);
        c
    });
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(30));
    // `eunomia http --json` follows the agent's requests meanwhile
    let live = eunomia_tests::eunomia()
        .args(["http", "--json", "--for", "8s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn eunomia http");
    std::thread::sleep(Duration::from_millis(500));
    let server = serve(&srv_cg);
    let port = server.port;
    let tok = token();
    let paths = |p: &str, n: usize| vec![format!("/{p}/{tok}"); n];
    assert_eq!(
        get(&cli_cg, port, &["--keepalive"], &paths("status/200", 50)),
        [200; 50]
    );
    assert_eq!(get(&cli_cg, port, &[], &paths("status/503", 2)), [503; 2]);
    assert_eq!(
        get(&cli_cg, port, &["--keepalive"], &paths("sleep/150", 1)),
        [200]
    );
    let live = live.wait_with_output().expect("eunomia http");
    assert!(live.status.success(), "{live:?}");
    let live: Vec<Value> = String::from_utf8_lossy(&live.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let seen = |kind: &str, status: i64| {
        live.iter()
            .filter(|e| e["kind"] == kind && e["http.response.status_code"] == status)
            .filter(|e| e["url.path"].as_str().is_some_and(|p| p.ends_with(&tok)))
            .count()
    };
    assert_eq!(
        (seen("http_server", 503), seen("http_client", 503)),
        (2, 2),
        "{live:?}"
    );
    assert_eq!(
        (seen("http_server", 200), seen("http_client", 200)),
        (1, 1),
        "{live:?}"
    );
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(20));
    drop(server);
    assert_eq!(code, 0);
    let lines = lines_of(&out);
    check_otlp_spans(&receiver.received(), &service, port, &tok);

    // spans: only the errors and the slow one, on both sides
    let spans = |kind: &str, cg: &TestCgroup| -> Vec<(String, i64)> {
        let mut v: Vec<_> = lines
            .iter()
            .filter(|l| l["type"] == "event" && l["kind"] == kind && l["cgroup.id"] == cg.id)
            .map(|e| {
                (
                    e["http.route"].as_str().unwrap_or("?").to_owned(),
                    e["http.response.status_code"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        v.sort();
        v
    };
    let r = |p: &str| format!("/{p}/{tok}");
    let want = vec![
        (r("sleep/{id}"), 200),
        (r("status/{id}"), 503),
        (r("status/{id}"), 503),
    ];
    assert_eq!(spans("http_server", &srv_cg), want, "server spans");
    assert_eq!(spans("http_client", &cli_cg), want, "client spans");

    // metrics: every request, per side
    let count = |metric: &str, cg: &TestCgroup, class: &str| -> u64 {
        lines
            .iter()
            .filter(|l| l["type"] == "metric" && l["name"] == metric)
            .filter(|l| of_cgroup(l, cg))
            .filter(|l| l["labels"]["http.route"] == r("status/{id}"))
            .filter(|l| l["labels"]["http.status_class"] == class)
            .filter_map(|l| l["count"].as_u64())
            .max()
            .unwrap_or(0)
    };
    let server = "http_server_request_duration_seconds";
    let client = "http_client_request_duration_seconds";
    assert_eq!(count(server, &srv_cg, "2xx"), 50);
    assert_eq!(count(server, &srv_cg, "5xx"), 2);
    assert_eq!(count(client, &cli_cg, "2xx"), 50);
    assert_eq!(count(client, &cli_cg, "5xx"), 2);
    let call = lines
        .iter()
        .filter(|l| l["type"] == "metric" && l["name"] == client)
        .find(|l| of_cgroup(l, &cli_cg))
        .expect("a client series");
    assert_eq!(call["labels"]["server.port"], port.to_string());
    assert_eq!(call["labels"]["server.address"], "127.0.0.1");

    // what was not sent on is counted (other agents' traffic may add)
    let sampled_out = last_metric(&lines, "eunomia_http_dropped_total", "sampled_out");
    assert!(sampled_out >= 100, "sampled_out {sampled_out}");
    assert!(last_metric(&lines, "eunomia_http_spans_total", "error") >= 4);
    assert!(last_metric(&lines, "eunomia_http_spans_total", "slow") >= 2);
}

/// `<cgroup2 root>/NAME.service`, removed on drop.
fn service_cgroup(name: &str) -> TestCgroup {
    use std::os::unix::fs::MetadataExt as _;
    let path = hotpath_support::cgroup2_root().join(format!("{name}.service"));
    let _ = std::fs::remove_dir(&path);
    std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    let id = std::fs::metadata(&path).expect("stat cgroup").ino();
    TestCgroup { path, id }
}

/// The spans the OTLP receiver got: the two 503s and the slow request,
/// once as SERVER (resource: the service) and once as CLIENT, with the
/// HTTP semantic-convention attributes.
fn check_otlp_spans(got: &Received, service: &str, port: u16, tok: &str) {
    let mut server: Vec<&Span> = Vec::new();
    let mut client: Vec<&Span> = Vec::new();
    for rs in got.traces.iter().flat_map(|r| &r.resource_spans) {
        let res = rs
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
            if !attr(&span.attributes, "url.path").is_some_and(|p| p.ends_with(tok)) {
                continue;
            }
            if span.kind == SpanKind::Server as i32 {
                assert_eq!(attr(res, "service.name"), Some(service), "{res:?}");
                assert_eq!(attr(res, "service"), Some(service));
                assert!(attr(res, "host.name").is_some());
                server.push(span);
            } else {
                assert_eq!(span.kind, SpanKind::Client as i32, "{span:?}");
                client.push(span);
            }
        }
    }
    for spans in [&server, &client] {
        let mut statuses: Vec<String> = spans
            .iter()
            .map(|s| attr_text(&s.attributes, "http.response.status_code").unwrap())
            .collect();
        statuses.sort();
        assert_eq!(statuses, ["200", "503", "503"], "{spans:?}");
        for s in spans.iter() {
            assert_eq!(attr(&s.attributes, "http.request.method"), Some("GET"));
            assert_eq!(
                attr_text(&s.attributes, "server.port"),
                Some(port.to_string())
            );
            assert_eq!(attr(&s.attributes, "server.address"), Some("127.0.0.1"));
            assert!(attr(&s.attributes, "http.route").is_some());
            assert_eq!((s.trace_id.len(), s.span_id.len()), (16, 8));
            assert!(s.end_time_unix_nano > s.start_time_unix_nano);
            let error = attr_text(&s.attributes, "http.response.status_code").unwrap() == "503";
            let code = s.status.as_ref().map_or(0, |st| st.code);
            assert_eq!(code == StatusCode::Error as i32, error, "{s:?}");
        }
    }
    let slow = server
        .iter()
        .find(|s| attr_text(&s.attributes, "http.response.status_code").unwrap() == "200")
        .unwrap();
    assert_eq!(slow.name, format!("GET /sleep/{{id}}/{tok}"));
    assert!(slow.end_time_unix_nano - slow.start_time_unix_nano >= 150_000_000);
}
