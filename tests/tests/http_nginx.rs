//! The HTTP capture on a real web server: nginx (master and one worker) in
//! a cgroup the test creates, called by the tests crate's client with
//! known paths and statuses (200, 404, 500), keep-alive and not, and one
//! request carrying a `traceparent`, chunked responses on one keep-alive
//! connection (curl), and curl over TLS to a second port.
//! The agent's RED histograms of the nginx cgroup count exactly what was
//! sent per route and status class, the OTLP receiver gets the traced
//! request as a SERVER span (nginx) and a CLIENT span (the caller) that
//! keep the application's trace id and parent, and the TLS connections
//! make no series and no span.

mod hotpath_support;
mod http_support;

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use eunomia_tests::{
    Agent, kernel_lock, kernel_tests_can_run,
    otlp::{OtlpReceiver, Received, attr, attr_text},
    prom::free_port,
};
use hotpath_support::{ATTACHED, TestCgroup};
use http_support::{get, token};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use serde_json::Value;

const NGINX: &str = "/usr/sbin/nginx";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// nginx in the foreground, stopped (master and worker) on drop.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker and exits
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts nginx in `cgroup` with its files under `dir`: on `port` 200 on
/// `/ok/` and `/`, 404 on `/missing/`, 500 on `/fail/`, 200 chunked on
/// `/chunked/` (to a client that accepts gzip); on `tls_port` 200
/// over TLS (a self-signed certificate).
fn nginx(cgroup: &TestCgroup, dir: &Path, port: u16, tls_port: u16) -> Nginx {
    let d = dir.display();
    let openssl = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("run openssl");
    assert!(openssl.status.success(), "{openssl:?}");
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             server {{\n    listen 127.0.0.1:{port};\n\
             location /missing/ {{ return 404; }}\n    location /fail/ {{ return 500; }}\n\
             location /chunked/ {{ gzip on; gzip_types text/plain; gzip_min_length 0;\n\
             default_type text/plain; return 200 \"chunked, compressed\\n\"; }}\n\
             location / {{ return 200 \"ok\\n\"; }}\n  }}\n\
             server {{\n    listen 127.0.0.1:{tls_port} ssl;\n    ssl_certificate {d}/cert.pem;\n\
             ssl_certificate_key {d}/key.pem;\n    location / {{ return 200 \"ok\\n\"; }}\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let conf = conf.to_str().unwrap().to_owned();
    let child = cgroup
        .command(NGINX, &["-c", &conf, "-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nginx");
    let server = Nginx(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not listen: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Whether nginx is here; outside CI a test without it skips, in CI
/// (`CI=true`) it fails (scripts/setup.sh installs it).
fn nginx_installed(test: &str) -> bool {
    if Path::new(NGINX).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: no {NGINX}: run scripts/setup.sh (never skipped in CI)"
    );
    eprintln!("SKIP {test}: no {NGINX} (scripts/setup.sh installs it)");
    false
}

#[test]
fn nginx_requests_counted_and_traceparent_kept_in_spans() {
    let test = "nginx_requests_counted_and_traceparent_kept_in_spans";
    if !kernel_tests_can_run(test) || !nginx_installed(test) {
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
            "[agent]\npoll_interval = \"500ms\"\n[tools]\nenabled = []\n\
             [http]\nenabled = true\nsample_ratio = 1.0\nmax_spans_per_second = 100000\n\
             [sinks.jsonl]\nenabled = true\npath = \"{}\"\ninterval = \"500ms\"\n\
             [sinks.otlp]\nendpoint = \"{}\"\nexport_interval = \"500ms\"\nlogs = false\n",
            out.display(),
            receiver.endpoint()
        ),
    )
    .unwrap();
    let srv_cg = TestCgroup::create("http-nginx");
    let cli_cg = TestCgroup::create("http-nginx-cli");
    let mut agent = Agent::spawn({
        let mut c = eunomia_tests::eunomia();
        c.args(["run", "--config", config.to_str().unwrap()]);
        c
    });
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(30));
    let (port, tls_port) = (free_port(), free_port());
    let server = nginx(&srv_cg, dir.path(), port, tls_port);
    let tok = token();
    let paths = |p: &str, n: usize| vec![format!("/{p}/{tok}"); n];
    assert_eq!(
        get(&cli_cg, port, &["--keepalive"], &paths("ok", 10)),
        [200; 10]
    );
    assert_eq!(get(&cli_cg, port, &[], &paths("ok", 2)), [200; 2]);
    assert_eq!(
        get(&cli_cg, port, &["--keepalive"], &paths("missing", 4)),
        [404; 4]
    );
    assert_eq!(get(&cli_cg, port, &[], &paths("fail", 3)), [500; 3]);
    let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    assert_eq!(
        get(&cli_cg, port, &["--traceparent", &tp], &paths("traced", 1)),
        [200]
    );

    // chunked responses (gzip: no Content-Length), three on one connection
    let url = format!("http://127.0.0.1:{port}/chunked/{tok}");
    let curl = cli_cg
        .command("curl", &["-s", "-H", "Accept-Encoding: gzip"])
        .args([
            "-w",
            "%{http_code} %{num_connects} %header{transfer-encoding}\n",
        ])
        .args([
            "-o",
            "/dev/null",
            &url,
            "-o",
            "/dev/null",
            &url,
            "-o",
            "/dev/null",
            &url,
        ])
        .output()
        .expect("run curl");
    let answers = String::from_utf8_lossy(&curl.stdout);
    let answers: Vec<&str> = answers.lines().collect();
    assert_eq!(answers.len(), 3, "{curl:?}");
    assert!(answers[0].starts_with("200 1 "), "{answers:?}");
    assert!(
        answers[1..].iter().all(|a| a.starts_with("200 0 ")),
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|a| a.ends_with(" chunked")),
        "{answers:?}"
    );

    // HTTP inside TLS: encrypted, so no record on either side
    for _ in 0..5 {
        let url = format!("https://127.0.0.1:{tls_port}/tls/{tok}");
        let out = cli_cg
            .command(
                "curl",
                &["-sk", "-o", "/dev/null", "-w", "%{http_code}", &url],
            )
            .output()
            .expect("run curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{out:?}");
    }

    receiver.wait_for("the traced spans", Duration::from_secs(30), |got| {
        traced(got, &tok).len() >= 2
    });
    // the RED series of the nginx cgroup, each at its last (cumulative) count
    let want = BTreeMap::from([
        (format!("/ok/{tok} 2xx"), 12),
        (format!("/missing/{tok} 4xx"), 4),
        (format!("/fail/{tok} 5xx"), 3),
        (format!("/traced/{tok} 2xx"), 1),
        (format!("/chunked/{tok} 2xx"), 3),
    ]);
    let mut counts = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while counts != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        counts = red_counts(&out, srv_cg.id);
    }
    drop(server);
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    assert_eq!(counts, want, "the nginx cgroup's RED series");
    // nothing of the TLS connections, in metrics or spans
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let tls_series = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == "metric" && l["name"] == "http_client_request_duration_seconds")
        .filter(|l| l["labels"]["server.port"].as_str() == Some(tls_port.to_string().as_str()))
        .count();
    assert_eq!(tls_series, 0, "client series to the TLS port");

    // the traced request: nginx's SERVER span and the caller's CLIENT span
    // keep the application's trace id and parent
    let got = receiver.received();
    let tls_spans = got
        .traces
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|s| &s.spans)
        .filter(|s| {
            attr(&s.attributes, "url.path").is_some_and(|p| p.starts_with("/tls/"))
                || attr_text(&s.attributes, "server.port") == Some(tls_port.to_string())
        })
        .count();
    assert_eq!(tls_spans, 0, "spans of the TLS connections");
    let spans = traced(&got, &tok);
    let mut kinds: Vec<i32> = spans.iter().map(|s| s.kind).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [SpanKind::Server as i32, SpanKind::Client as i32],
        "{spans:?}"
    );
    for s in &spans {
        assert_eq!(hex(&s.trace_id), TRACE_ID, "{s:?}");
        assert_eq!(hex(&s.parent_span_id), PARENT_ID, "{s:?}");
        assert_eq!(attr(&s.attributes, "http.request.method"), Some("GET"));
    }
}

/// The spans of the `/traced/TOK` request.
fn traced<'a>(got: &'a Received, tok: &str) -> Vec<&'a Span> {
    let path = format!("/traced/{tok}");
    got.traces
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|s| &s.spans)
        .filter(|s| attr(&s.attributes, "url.path") == Some(path.as_str()))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `route class` → requests, from the server histograms of `cgroup` in the
/// JSON-lines file (each series' last count). Every route there: the
/// cgroup is this test's, so a route it did not request (say, from the
/// TLS connections) is a misparse.
fn red_counts(out: &Path, cgroup: u64) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut last: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for l in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if l["type"] != "metric" || l["name"] != "http_server_request_duration_seconds" {
            continue;
        }
        let labels = &l["labels"];
        let route = labels["http.route"].as_str().unwrap_or_default();
        if labels["cgroup.id"].as_str() != Some(cgroup.to_string().as_str()) {
            continue;
        }
        let key = format!(
            "{route} {}",
            labels["http.status_class"].as_str().unwrap_or("?")
        );
        let e = last.entry(labels.to_string()).or_insert((key, 0));
        e.1 = e.1.max(l["count"].as_u64().unwrap_or(0));
    }
    let mut sums = BTreeMap::new();
    for (key, n) in last.into_values() {
        *sums.entry(key).or_default() += n;
    }
    sums
}
