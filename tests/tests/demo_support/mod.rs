//! The demo microservice system of `service_map.rs` and
//! `service_map_sampled.rs`: real Docker containers on a Docker network
//! (`scripts/demo/demo-svc.rs`, built static into `FROM scratch` images):
//! frontend → api → {auth, data}, data failing every 5th request, and
//! `pool`, a service that hands its call to data to a thread pool; and
//! what the tests read of the agent (`eunomia map --json`, the OTLP
//! spans, whether a trace has the whole chain).

// shared by two test crates, each using part of it
#![allow(dead_code)]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use eunomia_tests::{
    Agent, eunomia,
    otlp::{OtlpReceiver, Received, attr},
};
use serde_json::Value;

use crate::containers_support::{DEMO_IMAGE, Runtimes, demo_image, run, wait_for};

/// User requests sent to the frontend.
pub const N: u64 = 40;
/// Requests sent to the pool service.
pub const POOL_N: u64 = 20;
/// data fails every FAIL_EVERY-th request.
pub const FAIL_EVERY: u64 = 5;

/// The demo containers and network; removed on drop (also when a test fails).
pub struct Demo<'a> {
    rt: &'a Runtimes,
    prefix: String,
    net: String,
    bin: PathBuf,
    ips: HashMap<&'static str, String>,
}

impl Drop for Demo<'_> {
    fn drop(&mut self) {
        for name in ["frontend", "api", "auth", "data", "pool"] {
            let _ = self
                .rt
                .docker()
                .args(["rm", "-f", &format!("{}-{name}", self.prefix)])
                .output();
        }
        let _ = self.rt.docker().args(["network", "rm", &self.net]).output();
    }
}

impl<'a> Demo<'a> {
    pub fn start(rt: &'a Runtimes) -> Demo<'a> {
        let bin = demo_image(rt);
        let pid = std::process::id();
        let subnet = format!("10.{}.{}", 200 + pid % 50, (pid / 50) % 250);
        let prefix = format!("demo{pid}");
        let net = format!("{prefix}-net");
        let mut demo = Demo {
            rt,
            prefix,
            net,
            bin,
            ips: HashMap::new(),
        };
        run(rt.docker().args([
            "network",
            "create",
            "--subnet",
            &format!("{subnet}.0/24"),
            &demo.net,
        ]));
        let ip = |n| format!("{subnet}.{n}");
        let fail = FAIL_EVERY.to_string();
        let services: [(&str, u8, Vec<String>); 5] = [
            ("data", 10, vec!["--fail-every".into(), fail]),
            ("auth", 11, vec![]),
            (
                "api",
                12,
                vec![
                    "--call".into(),
                    format!("auth={}:8080", ip(11)),
                    "--call".into(),
                    format!("data={}:8080", ip(10)),
                ],
            ),
            (
                "frontend",
                13,
                vec!["--call".into(), format!("api={}:8080", ip(12))],
            ),
            (
                "pool",
                14,
                vec![
                    "--call".into(),
                    format!("data={}:8080", ip(10)),
                    "--pool".into(),
                    "2".into(),
                ],
            ),
        ];
        for (name, n, args) in services {
            run(rt
                .docker()
                .args(["run", "-d", "--name", &format!("{}-{name}", demo.prefix)])
                .args(["--network", &demo.net, "--ip", &ip(n)])
                .arg(DEMO_IMAGE)
                .args(["serve", "--port", "8080"])
                .args(&args));
            demo.ips.insert(name, ip(n));
        }
        for name in ["data", "auth", "api", "frontend", "pool"] {
            let addr = format!("{}:8080", demo.ips[name]);
            wait_for(Duration::from_secs(20), name, || {
                std::net::TcpStream::connect(&addr).is_ok()
            });
        }
        demo
    }

    pub fn node(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// `demo-svc load` against `name`: (ok, failed).
    pub fn load(&self, name: &str, n: u64) -> (u64, u64) {
        let out = run(Command::new(&self.bin).args([
            "load",
            "--addr",
            &format!("{}:8080", self.ips[name]),
            "--requests",
            &n.to_string(),
        ]));
        let v: Value = serde_json::from_str(out.trim()).expect("load output");
        (v["ok"].as_u64().unwrap(), v["failed"].as_u64().unwrap())
    }
}

/// An agent following the demo system: `http` the `[http]` section's
/// settings, a Prometheus endpoint on `port`, OTLP to `receiver`, its
/// control socket in `dir`. Returns once its capture sees a request to
/// auth in the map (tried once a second: a request the kernel samples out
/// is not in the map).
pub fn start_agent(
    demo: &Demo<'_>,
    dir: &Path,
    http: &str,
    port: u16,
    receiver: &OtlpReceiver,
) -> (Agent, PathBuf) {
    let socket = dir.join("eunomia.sock");
    let config = dir.join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\npoll_interval = \"1s\"\n[http]\nenabled = true\n{http}\nmax_spans_per_second = 100000\n[enrich]\n{}\n[sinks.prometheus]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n[sinks.otlp]\nendpoint = \"{}\"\nexport_interval = \"500ms\"\nlogs = false\n",
            demo.rt.enrich_toml(),
            receiver.endpoint()
        ),
    )
    .unwrap();
    let mut agent = Agent::start(&[
        "run",
        "--for",
        "240s",
        "--config",
        config.to_str().unwrap(),
        "--socket",
        socket.to_str().unwrap(),
    ]);
    agent.wait_for_stderr("control API listening", Duration::from_secs(30));
    let auth = demo.node("auth");
    wait_for(Duration::from_secs(60), "HTTP capture attached", || {
        demo.load("auth", 1);
        std::thread::sleep(Duration::from_millis(500));
        map_json(&socket)["map"]["edges"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["server"] == auth.as_str()))
    });
    (agent, socket)
}

/// The spans exported by trace id, those of user requests only (a trace
/// holding the frontend's server span).
pub fn user_traces<'a>(otlp: &'a [Value], fe: &str) -> Vec<Vec<&'a Value>> {
    let mut traces: HashMap<&str, Vec<&Value>> = HashMap::new();
    for s in otlp {
        traces
            .entry(s["trace_id"].as_str().unwrap_or(""))
            .or_default()
            .push(s);
    }
    traces
        .into_values()
        .filter(|t| t.iter().any(|s| s["node"] == fe && s["kind"] == "server"))
        .collect()
}

pub fn map_json(socket: &Path) -> Value {
    let out = eunomia()
        .args(["map", "--json", "--socket"])
        .arg(socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("map JSON")
}

/// The agent's counts of what it could not deliver of the HTTP capture
/// (`eunomia_http_dropped_total` series above zero), for failure messages.
pub fn http_drops(port: u16) -> Vec<String> {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .and_then(|r| r.text())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("eunomia_http_dropped_total") && !l.ends_with(" 0"))
        .map(str::to_owned)
        .collect()
}

/// The map's edges, one short line each (a failure message's first
/// lines survive where a long one is cut).
pub fn edges_brief(map: &Value) -> String {
    let edges = map["map"]["edges"].as_array().cloned().unwrap_or_default();
    edges
        .iter()
        .map(|e| {
            format!(
                "{} -> {} [{}]: {} requests, {} failed",
                e["client"].as_str().unwrap_or("?"),
                e["server"].as_str().unwrap_or("?"),
                e["connection_type"].as_str().unwrap_or("?"),
                count(Some(e), "requests"),
                count(Some(e), "failed")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn edge<'v>(map: &'v Value, client: &str, server: &str) -> Option<&'v Value> {
    map["map"]["edges"]
        .as_array()?
        .iter()
        .find(|e| e["client"] == client && e["server"] == server && e["connection_type"] == "")
}

pub fn count(e: Option<&Value>, key: &str) -> u64 {
    e.and_then(|e| e[key].as_u64()).unwrap_or(0)
}

/// The spans the receiver got, as `eunomia map --json` shows spans
/// (`node` the resource's `service.name`), with `error` their status.
pub fn otlp_spans(got: &Received) -> Vec<Value> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut out = Vec::new();
    for rs in got.traces.iter().flat_map(|r| &r.resource_spans) {
        let attrs = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let node = attr(attrs, "service.name").unwrap_or("");
        for s in rs.scope_spans.iter().flat_map(|s| &s.spans) {
            out.push(serde_json::json!({
                "trace_id": hex(&s.trace_id),
                "span_id": hex(&s.span_id),
                "parent_id": (!s.parent_span_id.is_empty()).then(|| hex(&s.parent_span_id)),
                "node": node,
                "kind": if s.kind == 2 { "server" } else { "client" },
                "error": s.status.as_ref().is_some_and(|st| st.code == 2),
                "tid": null, "local": null, "remote": null, "duration_ns": s.end_time_unix_nano - s.start_time_unix_nano,
            }));
        }
    }
    out
}

/// One line per span, to show a trace that is not right.
pub fn brief(t: &[&Value]) -> Vec<String> {
    t.iter()
        .map(|s| {
            format!(
                "{} {} tid {} {}→{} id {} parent {} dur {}",
                s["node"],
                s["kind"],
                s["tid"],
                s["local"],
                s["remote"],
                s["span_id"],
                s["parent_id"],
                s["duration_ns"]
            )
        })
        .collect()
}

/// Whether one trace holds the frontend's server and client spans, the
/// api's server span and its two calls, auth's and data's server spans,
/// each with its parent in the trace.
pub fn chain_complete(t: &[&Value], fe: &str, api: &str, auth: &str, data: &str) -> bool {
    let find = |node: &str, kind: &str| -> Vec<&Value> {
        t.iter()
            .copied()
            .filter(|s| s["node"] == node && s["kind"] == kind)
            .collect()
    };
    let id = |s: &Value| s["span_id"].as_str().unwrap_or("").to_owned();
    let parent = |s: &Value| s["parent_id"].as_str().unwrap_or("").to_owned();
    let (fe_s, fe_c, api_s, api_c, auth_s, data_s) = (
        find(fe, "server"),
        find(fe, "client"),
        find(api, "server"),
        find(api, "client"),
        find(auth, "server"),
        find(data, "server"),
    );
    if [&fe_s, &fe_c, &api_s, &auth_s, &data_s]
        .iter()
        .any(|v| v.len() != 1)
        || api_c.len() != 2
    {
        return false;
    }
    parent(fe_c[0]) == id(fe_s[0])
        && parent(api_s[0]) == id(fe_c[0])
        && api_c.iter().all(|c| parent(c) == id(api_s[0]))
        && api_c.iter().any(|c| parent(auth_s[0]) == id(c))
        && api_c.iter().any(|c| parent(data_s[0]) == id(c))
}
