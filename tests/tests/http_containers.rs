//! HTTP requests served by a real Docker container: the demo service
//! (`scripts/demo/demo-svc.rs`, static, `FROM scratch`) started after the
//! agent and called N times from the host right away. The RED histograms
//! of its cgroup carry the container's `container.id` and `container.name`
//! and count exactly N (its first requests included: none is left without
//! the container's labels); the OTLP spans of its requests carry the
//! container as resource attributes; and `eunomia http --standalone
//! --json`, run beside the agent, names the container in every request
//! (and with `--container`, shows its requests and not its callers'). A
//! container removed right after its requests keeps them: with a 4 s poll
//! interval its histograms are most often sent after it is gone, and
//! still carry its name (the resolver's cache, filled by its span events).

mod containers_support;
mod hotpath_support;
mod http_support;

use std::{collections::BTreeMap, os::unix::fs::MetadataExt as _, time::Duration};

use containers_support::{DEMO_IMAGE, can_run, demo_image, run, runtimes, wait_for};
use eunomia_tests::{
    Agent, eunomia, kernel_lock,
    otlp::{OtlpReceiver, Received, attr, attr_text},
    prom::free_port,
};
use opentelemetry_proto::tonic::{common::v1::KeyValue, trace::v1::span::SpanKind};
use serde_json::Value;

/// Requests sent; every `FAIL_EVERY`th fails with 500.
const N: usize = 12;
const FAIL_EVERY: usize = 4;

/// A container removed on drop (also when the test fails).
struct Container<'a> {
    rt: &'a containers_support::Runtimes,
    id: String,
    name: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.rt.docker().args(["rm", "-f", &self.id]).output();
    }
}

/// The cgroup v2 id (inode) of the container's first process.
fn cgroup_id(pid: &str) -> u64 {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line");
    let dir = eunomia_tests::cgroup2_root().join(path.trim_start_matches('/'));
    std::fs::metadata(dir).unwrap().ino()
}

/// Sends the N requests from the host (no keep-alive: one connection
/// each, as the first requests of a new container come); returns the
/// statuses.
fn call(port: u16, tok: &str) -> Vec<u64> {
    let paths: Vec<String> = (1..=N).map(|i| format!("/{tok}/{i}")).collect();
    http_support::get_here(port, &[], &paths)
}

#[test]
fn container_requests_carry_the_container_in_metrics_spans_and_the_live_view() {
    if !can_run("container_requests_carry_the_container_in_metrics_spans_and_the_live_view") {
        return;
    }
    let _k = kernel_lock();
    let rt = runtimes();
    demo_image(rt);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let config = dir.path().join("eunomia.toml");
    let receiver = OtlpReceiver::start();
    std::fs::write(
        &config,
        format!(
            "[agent]\npoll_interval = \"500ms\"\n[tools]\nenabled = []\n\
             [http]\nenabled = true\nsample_ratio = 1.0\nmax_spans_per_second = 100000\n\
             [enrich]\n{}\n\
             [sinks.jsonl]\nenabled = true\npath = \"{}\"\ninterval = \"500ms\"\n\
             [sinks.otlp]\nendpoint = \"{}\"\nexport_interval = \"500ms\"\nlogs = false\n",
            rt.enrich_toml(),
            out.display(),
            receiver.endpoint()
        ),
    )
    .unwrap();
    let mut agent = Agent::start(&["run", "--for", "180s", "--config", config.to_str().unwrap()]);
    agent.wait_for_stderr("HTTP capture on", Duration::from_secs(60));
    // the live view, with its own capture, beside the agent
    let mut live = Agent::spawn({
        let mut c = eunomia();
        c.args([
            "http",
            "--standalone",
            "--json",
            "--for",
            "120s",
            "--config",
        ])
        .arg(&config);
        c
    });
    live.wait_for_stderr("HTTP capture attached", Duration::from_secs(60));

    // the container starts now, and is called as soon as it listens
    let port = free_port();
    let name = format!("http-web-{}", std::process::id());
    let id = run(rt
        .docker()
        .args([
            "run",
            "-d",
            "--network",
            "host",
            "--name",
            &name,
            DEMO_IMAGE,
        ])
        .args(["serve", "--port", &port.to_string()])
        .args(["--fail-every", &FAIL_EVERY.to_string()]));
    let web = Container { rt, id, name };
    let pid = run(rt
        .docker()
        .args(["inspect", "-f", "{{.State.Pid}}", &web.id]));
    let cgroup = cgroup_id(&pid);
    wait_for(Duration::from_secs(20), "the container listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let tok = http_token();
    let statuses = call(port, &tok);
    let failed = N / FAIL_EVERY;
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), failed);
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), N - failed);

    // the live view: every request, named by the container
    let ours = |l: &str| l.contains(&format!("/{tok}/"));
    let (code, lines) = live.stop_when(Duration::from_secs(30), |l| {
        l.iter().filter(|l| ours(l)).count() >= 2 * N
    });
    assert_eq!(code, 0);
    let served: Vec<Value> = lines
        .iter()
        .filter(|l| ours(l))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .filter(|v: &Value| v["kind"] == "http_server")
        .collect();
    assert_eq!(served.len(), N, "{lines:#?}");
    for v in &served {
        assert_eq!(v["container.name"], web.name.as_str(), "{v}");
        assert_eq!(v["container.id"], web.id.as_str(), "{v}");
    }

    // the spans at the OTLP receiver, with the container as resource
    receiver.wait_for("the container's spans", Duration::from_secs(30), |got| {
        server_spans(got, &tok).len() >= N
    });
    let got = receiver.received();
    let spans = server_spans(&got, &tok);
    assert_eq!(spans.len(), N);
    for (res, status) in &spans {
        assert_eq!(attr(res, "container.id"), Some(web.id.as_str()), "{res:?}");
        assert_eq!(
            attr(res, "container.name"),
            Some(web.name.as_str()),
            "{res:?}"
        );
        assert_eq!(
            attr(res, "service.name"),
            Some(web.name.as_str()),
            "{res:?}"
        );
        assert!(["200", "500"].contains(&status.as_str()), "{status}");
    }

    // the RED histograms: exactly N in the container's series, none of its
    // requests in a series without the container
    let read = || -> Vec<Value> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let mut series = BTreeMap::new();
    wait_for(
        Duration::from_secs(20),
        "the container's RED series",
        || {
            series = red_series(&read(), cgroup, &tok);
            series.values().sum::<u64>() >= N as u64
        },
    );
    // a late request would show now
    std::thread::sleep(Duration::from_secs(2));
    series = red_series(&read(), cgroup, &tok);
    let key = |class: &str| (web.id.clone(), web.name.clone(), class.to_owned());
    let want = BTreeMap::from([
        (key("2xx"), (N - failed) as u64),
        (key("5xx"), failed as u64),
    ]);
    assert_eq!(series, want);

    // `--container` (an id prefix): the container's requests, not its
    // callers' on the host
    let mut only = Agent::spawn({
        let mut c = eunomia();
        c.args(["http", "--standalone", "--json", "--for", "120s"])
            .args(["--container", &web.id[..12], "--config"])
            .arg(&config);
        c
    });
    only.wait_for_stderr("HTTP capture attached", Duration::from_secs(60));
    let again = format!("{tok}x");
    assert_eq!(call(port, &again).len(), N);
    let ours = |l: &str| l.contains(&format!("/{again}/"));
    let (code, lines) = only.stop_when(Duration::from_secs(30), |l| {
        l.iter().filter(|l| ours(l)).count() >= N
    });
    assert_eq!(code, 0);
    let shown: Vec<Value> = lines
        .iter()
        .filter(|l| ours(l))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(shown.len(), N, "{lines:#?}");
    assert!(
        shown
            .iter()
            .all(|v| v["kind"] == "http_server" && v["container.id"] == web.id.as_str()),
        "{shown:#?}"
    );

    drop(web);
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);
}

/// The server spans of this run's requests: their resource attributes and
/// status code.
fn server_spans(got: &Received, tok: &str) -> Vec<(Vec<KeyValue>, String)> {
    let mut spans = Vec::new();
    for rs in got.traces.iter().flat_map(|r| &r.resource_spans) {
        let res = rs
            .resource
            .as_ref()
            .map(|r| r.attributes.clone())
            .unwrap_or_default();
        for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
            let ours =
                attr(&span.attributes, "url.path").is_some_and(|p| p.contains(&format!("/{tok}/")));
            if ours && span.kind == SpanKind::Server as i32 {
                let status =
                    attr_text(&span.attributes, "http.response.status_code").unwrap_or_default();
                spans.push((res.clone(), status));
            }
        }
    }
    spans
}

/// Requests counted in the server RED histograms of `cgroup` on this run's
/// route, by (`container.id`, `container.name`, status class): each
/// series' last count (they are cumulative), summed.
fn red_series(lines: &[Value], cgroup: u64, tok: &str) -> BTreeMap<(String, String, String), u64> {
    let mut last: BTreeMap<String, ((String, String, String), u64)> = BTreeMap::new();
    for l in lines
        .iter()
        .filter(|l| l["type"] == "metric" && l["name"] == "http_server_request_duration_seconds")
    {
        let labels = &l["labels"];
        let ours = labels["cgroup.id"].as_str() == Some(cgroup.to_string().as_str())
            && labels["http.route"]
                .as_str()
                .is_some_and(|r| r.contains(tok));
        if !ours {
            continue;
        }
        let text = |k: &str| labels[k].as_str().unwrap_or("").to_owned();
        let key = (
            text("container.id"),
            text("container.name"),
            text("http.status_class"),
        );
        let count = l["count"].as_u64().unwrap_or(0);
        let e = last.entry(labels.to_string()).or_insert((key, 0));
        e.1 = e.1.max(count);
    }
    let mut sums = BTreeMap::new();
    for (key, count) in last.into_values() {
        *sums.entry(key).or_default() += count;
    }
    sums
}

/// A route segment unique to this run (letters: never templated).
fn http_token() -> String {
    std::process::id()
        .to_string()
        .bytes()
        .map(|d| (b'a' + (d - b'0')) as char)
        .collect()
}

#[test]
fn a_container_removed_before_the_interval_ends_keeps_its_requests() {
    if !can_run("a_container_removed_before_the_interval_ends_keeps_its_requests") {
        return;
    }
    let _k = kernel_lock();
    let rt = runtimes();
    demo_image(rt);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let config = dir.path().join("eunomia.toml");
    // a long interval: the histograms are sent after the container is gone
    std::fs::write(
        &config,
        format!(
            "[agent]\npoll_interval = \"4s\"\n[tools]\nenabled = []\n[http]\nenabled = true\n\
             [enrich]\n{}\n[sinks.jsonl]\nenabled = true\npath = \"{}\"\ninterval = \"1s\"\n",
            rt.enrich_toml(),
            out.display(),
        ),
    )
    .unwrap();
    let mut agent = Agent::start(&["run", "--for", "120s", "--config", config.to_str().unwrap()]);
    agent.wait_for_stderr("HTTP capture on", Duration::from_secs(60));
    let port = free_port();
    let name = format!("http-brief-{}", std::process::id());
    let id = run(rt
        .docker()
        .args([
            "run",
            "-d",
            "--network",
            "host",
            "--name",
            &name,
            DEMO_IMAGE,
        ])
        .args(["serve", "--port", &port.to_string()]));
    let web = Container { rt, id, name };
    let pid = run(rt
        .docker()
        .args(["inspect", "-f", "{{.State.Pid}}", &web.id]));
    let cgroup = cgroup_id(&pid);
    wait_for(Duration::from_secs(20), "the container listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let tok = http_token();
    assert_eq!(call(port, &tok), [200; N]);
    let (id, name) = (web.id.clone(), web.name.clone());
    drop(web);
    let read = || -> Vec<Value> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let mut series = BTreeMap::new();
    wait_for(
        Duration::from_secs(20),
        "the container's RED series",
        || {
            series = red_series(&read(), cgroup, &tok);
            series.values().sum::<u64>() >= N as u64
        },
    );
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);
    let want = BTreeMap::from([((id, name, "2xx".to_owned()), N as u64)]);
    assert_eq!(series, want);
}
