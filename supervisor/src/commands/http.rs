//! `eunomia http`: the live HTTP requests the running agent sees, one line
//! each — time, side, workload (container, pod, service or process), method,
//! path, status, duration, the other end — or their span events as JSON
//! lines (`--json`). These are the requests the agent keeps as spans:
//! every error and slow request and `http.sample_ratio` of the others
//! (`[http] sample_ratio = 1.0` shows them all).

use std::io::Write;

use anyhow::Context as _;
use serde_json::{Map, Value};

use super::remote;
use crate::{cli::HttpArgs, control::proto, http::source::TOOL};

/// Runs `eunomia http`.
pub(crate) fn http(args: HttpArgs) -> anyhow::Result<()> {
    remote::block_on(follow(args))
}

async fn follow(args: HttpArgs) -> anyhow::Result<()> {
    let mut client = remote::connect(&args.socket)
        .await
        .context("`eunomia http` shows what a running agent sees (start it with `eunomia run`)")?;
    let mut out = std::io::stdout().lock();
    if !args.json {
        remote::written(writeln!(out, "{}", header()))?;
    }
    let request = proto::StreamEventsRequest {
        tools: vec![TOOL.into()],
        container_id: args.container.clone().unwrap_or_default(),
        ..Default::default()
    };
    remote::follow(&mut client, request, args.run_for, "requests", |line| {
        let text = match args.json {
            true => line.to_owned(),
            false => row(&remote::json_object(line)?),
        };
        remote::written(writeln!(out, "{text}").and_then(|()| out.flush()))
    })
    .await
}

/// The column titles.
pub(crate) fn header() -> String {
    format!(
        "{:<12} {:<6} {:<24} {:<7} {:<40} {:>6} {:>10}  {}",
        "TIME", "SIDE", "WORKLOAD", "METHOD", "PATH", "STATUS", "DURATION", "PEER"
    )
}

/// One request as a line of text (values are the agent's, already escaped).
pub(crate) fn row(obj: &Map<String, Value>) -> String {
    let s = |k: &str| match obj.get(k) {
        Some(Value::String(v)) => v.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    let client = obj.get("kind").and_then(Value::as_str) == Some("http_client");
    let workload = ["container.name", "k8s.pod.name", "service", "proc.comm"]
        .iter()
        .map(|k| s(k))
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| format!("pid {}", s("proc.pid")));
    let (peer, port) = match client {
        true => (s("server.address"), s("server.port")),
        false => (s("client.address"), s("client.port")),
    };
    let ms = obj.get("duration").and_then(Value::as_u64).unwrap_or(0) as f64 / 1e6;
    let secs = obj.get("ts_ns").and_then(Value::as_u64).unwrap_or(0) / 1_000_000_000;
    let time = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
    );
    let time = time.to_string();
    format!(
        "{:<12} {:<6} {:<24} {:<7} {:<40} {:>6} {:>8.1}ms  {}{}",
        time.get(11..19).unwrap_or(&time),
        if client { "client" } else { "server" },
        cut(&workload, 24),
        s("http.request.method"),
        cut(&s("url.path"), 40),
        s("http.response.status_code"),
        ms,
        if client { "-> " } else { "<- " },
        format_args!("{peer}:{port}"),
    )
}

/// `text` cut to `n` characters (with `…`).
fn cut(text: &str, n: usize) -> String {
    match text.chars().count() > n {
        true => text.chars().take(n - 1).chain(['…']).collect(),
        false => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_one_line() {
        let obj: Map<String, Value> = serde_json::from_str(
            r#"{"kind":"http_server","ts_ns":1700000000123456789,"container.name":"web",
                "http.request.method":"GET","url.path":"/users/42","http.response.status_code":404,
                "duration":1500000,"client.address":"10.0.0.9","client.port":51000,"proc.pid":7}"#,
        )
        .unwrap();
        let line = row(&obj);
        assert!(line.starts_with("22:13:20     server web "), "{line}");
        assert!(line.contains(" GET     /users/42 "), "{line}");
        assert!(line.contains("404      1.5ms  <- 10.0.0.9:51000"), "{line}");
        let obj: Map<String, Value> = serde_json::from_str(
            r#"{"kind":"http_client","proc.pid":7,"server.address":"1.2.3.4","server.port":80,
                "url.path":"/a/very/long/path/that/goes/on/and/on/and/on/forever"}"#,
        )
        .unwrap();
        let line = row(&obj);
        assert!(line.contains("client pid 7 "), "{line}");
        assert!(
            line.contains("/a/very/long/path/that/goes/on/and/on/a…"),
            "{line}"
        );
        assert!(line.ends_with("-> 1.2.3.4:80"), "{line}");
        assert_eq!(header().split_whitespace().count(), 8);
    }
}
