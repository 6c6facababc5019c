//! The demo system of `service_map.rs` (`demo_support`) with the kernel's
//! sampling: `[http] records = "sampled"` (the default) at `sample_ratio =
//! 0.5`. The kernel sends records only for the call chains it sampled
//! (both ends of each connection drawing the same lot, each call taking
//! the decision of the request its thread serves) and for failed requests
//! with the requests that made them. So the traces exported are, for each
//! user request: the whole chain (8 spans) when sampled; when it failed, at
//! least its spine (the load's call, the frontend's server and client
//! spans, the api's server span and its call to data, data's server span),
//! the auth branch only when sampled; nothing else, and no span whose
//! parent is missing. The RED histograms count every request all the same.

mod containers_support;
mod demo_support;

use std::time::Duration;

use containers_support::{can_run, runtimes, wait_for};
use demo_support::{
    Demo, FAIL_EVERY, N, brief, chain_complete, otlp_spans, start_agent, user_traces,
};
use eunomia_tests::{kernel_lock, otlp::OtlpReceiver, prom::free_port};
use serde_json::Value;

#[test]
fn kernel_sampling_keeps_chains_whole_and_failures_with_their_spine() {
    if !can_run("kernel_sampling_keeps_chains_whole_and_failures_with_their_spine") {
        return;
    }
    let _k = kernel_lock();
    let rt = runtimes();
    let demo = Demo::start(rt);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let receiver = OtlpReceiver::start();
    let (agent, _socket) = start_agent(&demo, dir.path(), "sample_ratio = 0.5", port, &receiver);
    let auth = demo.node("auth");
    let (ok, failed) = demo.load("frontend", N);
    let injected = N / FAIL_EVERY;
    assert_eq!((ok, failed), (N - injected, injected));
    let (fe, api, data) = (demo.node("frontend"), demo.node("api"), demo.node("data"));

    // the RED histograms count every request the frontend served
    let served = || -> u64 {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
            .and_then(|r| r.text())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
            .filter(|l| l.contains(&format!("container_name=\"{fe}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    wait_for(
        Duration::from_secs(30),
        "the frontend's requests counted",
        || served() >= N,
    );
    assert_eq!(served(), N, "every request counted, none twice");
    std::thread::sleep(Duration::from_secs(4)); // the linker's hold, the export
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);

    let otlp = otlp_spans(&receiver.received());
    let user = user_traces(&otlp, &fe);
    let failed_trace = |t: &[&Value]| {
        t.iter()
            .any(|s| s["node"] == fe.as_str() && s["kind"] == "server" && s["error"] == true)
    };
    let whole = |t: &[&Value]| t.len() == 8 && chain_complete(t, &fe, &api, &auth, &data);
    let wrong: Vec<Vec<String>> = user
        .iter()
        .filter(|t| !(whole(t) || (failed_trace(t) && spine(t, &fe, &api, &data) && parents_in(t))))
        .map(|t| brief(t))
        .collect();
    assert!(
        wrong.is_empty(),
        "traces cut where they should not be: {wrong:#?}"
    );
    let failed = user.iter().filter(|t| failed_trace(t)).count() as u64;
    let sampled_ok = user.iter().filter(|t| !failed_trace(t) && whole(t)).count() as u64;
    println!(
        "kernel sampling at 0.5: {sampled_ok} of {} good user requests exported whole, {failed} of {injected} failed ones ({} of them whole), {} spans in all",
        N - injected,
        user.iter().filter(|t| failed_trace(t) && whole(t)).count(),
        otlp.len()
    );
    assert_eq!(failed, injected, "every failed request is exported");
    assert!(
        sampled_ok > 0 && sampled_ok < N - injected,
        "some good requests sampled, some not: {sampled_ok} of {}",
        N - injected
    );
    drop(demo);
}

/// Whether a trace holds the spine of a failed request, each span with its
/// parent: the frontend's server and client spans, the api's server span,
/// its call to data, and data's server span.
fn spine(t: &[&Value], fe: &str, api: &str, data: &str) -> bool {
    let one = |node: &str, kind: &str| -> Option<&Value> {
        let v: Vec<&Value> = t
            .iter()
            .copied()
            .filter(|s| s["node"] == node && s["kind"] == kind)
            .collect();
        (v.len() == 1).then(|| v[0])
    };
    let id = |s: &Value| s["span_id"].as_str().unwrap_or("").to_owned();
    let parent = |s: &Value| s["parent_id"].as_str().unwrap_or("").to_owned();
    let (Some(fe_s), Some(fe_c), Some(api_s), Some(data_s)) = (
        one(fe, "server"),
        one(fe, "client"),
        one(api, "server"),
        one(data, "server"),
    ) else {
        return false;
    };
    parent(fe_c) == id(fe_s)
        && parent(api_s) == id(fe_c)
        && t.iter().any(|c| {
            c["node"] == api
                && c["kind"] == "client"
                && parent(c) == id(api_s)
                && parent(data_s) == id(c)
        })
}

/// Whether every span but one (the root) has its parent in the trace.
fn parents_in(t: &[&Value]) -> bool {
    let ids: Vec<&str> = t.iter().filter_map(|s| s["span_id"].as_str()).collect();
    t.iter()
        .filter(|s| !s["parent_id"].as_str().is_some_and(|p| ids.contains(&p)))
        .count()
        == 1
}
