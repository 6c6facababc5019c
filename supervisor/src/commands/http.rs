//! `eunomia http`: live HTTP requests, one line each — time, side,
//! workload (container, pod, service or process), method, path, status,
//! duration, the other end — or their span events as JSON lines
//! (`--json`).
//!
//! With an agent running whose HTTP capture is on, these are the requests
//! it keeps as spans (every error and slow request and `http.sample_ratio`
//! of the others). Without one (or with `--standalone`, or when the
//! agent's capture is off), the capture is loaded here and every request
//! it delivers is shown; requests it could not deliver are counted on
//! stderr.

use std::io::Write;

use anyhow::Context as _;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::remote;
use crate::{
    BadInput,
    cli::HttpArgs,
    config::Config,
    control::{client::Client, proto},
    http::source::TOOL,
    pipeline::ToolRecord,
};

/// How often the capture loaded here reports what it could not deliver.
const INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `eunomia http`.
pub(crate) fn http(args: HttpArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        match agent_to_follow(&args).await? {
            Some(client) => follow(client, &args).await,
            None => capture_here(&args).await,
        }
    })
}

/// The running agent to follow: none with `--standalone`, when no agent
/// runs, or when its HTTP capture is off (said on stderr).
async fn agent_to_follow(args: &HttpArgs) -> anyhow::Result<Option<Client>> {
    if args.standalone {
        return Ok(None);
    }
    let Some(mut client) = remote::connect_if_running(&args.socket).await? else {
        eprintln!(
            "eunomia: no agent at {}: loading the HTTP capture here",
            args.socket.display()
        );
        return Ok(None);
    };
    let status = client
        .status(proto::StatusRequest {})
        .await
        .map_err(remote::answer_error)?
        .into_inner();
    if status
        .sources
        .iter()
        .any(|s| s == model::metrics::HTTP_SOURCE)
    {
        return Ok(Some(client));
    }
    eprintln!(
        "eunomia: the agent at {} does not capture HTTP ([http] enabled = false): loading the HTTP capture here",
        args.socket.display()
    );
    Ok(None)
}

/// The agent's span events of HTTP requests.
async fn follow(mut client: Client, args: &HttpArgs) -> anyhow::Result<()> {
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
            false => row(&with_comm(remote::json_object(line)?)),
        };
        remote::written(writeln!(out, "{text}").and_then(|()| out.flush()))
    })
    .await
}

/// The HTTP capture loaded in this process: every request it delivers.
async fn capture_here(args: &HttpArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref()).map_err(|e| BadInput(e.to_string()))?;
    let shutdown = CancellationToken::new();
    crate::agent::spawn_signal_watch(shutdown.clone(), args.run_for)?;
    let ready = || {
        eprintln!(
            "eunomia: HTTP capture attached: every request on connections opened from now on"
        );
        match args.json {
            true => Ok(()),
            false => remote::written(writeln!(std::io::stdout(), "{}", header())),
        }
    };
    let show = |r: &ToolRecord| {
        let wanted = args.container.as_deref().is_none_or(|prefix| {
            r.workload
                .as_ref()
                .and_then(|w| w.container.as_ref())
                .is_some_and(|c| c.id.starts_with(prefix))
        });
        if !wanted {
            return Ok(());
        }
        let obj = crate::schema::tool_record_object(r);
        let text = match args.json {
            true => Value::Object(obj).to_string(),
            false => row(&with_comm(obj)),
        };
        let mut out = std::io::stdout().lock();
        remote::written(writeln!(out, "{text}").and_then(|()| out.flush()))
    };
    let lost = |n: &crate::standalone::NotShown| eprintln!("eunomia: {}", not_shown(n));
    let result = crate::standalone::http(&config, INTERVAL, shutdown, ready, show, lost).await;
    match result {
        Err(err) if broken_pipe(&err) => Ok(()),
        Err(err) => Err(err.context(
            "`eunomia http` without an agent loads the HTTP capture itself (root and a kernel with BTF), or follows an agent whose capture is on ([http] enabled, the default)",
        )),
        ok => ok,
    }
}

/// What the capture could not deliver, as a line for stderr.
fn not_shown(n: &crate::standalone::NotShown) -> String {
    let total: u64 = n.iter().map(|(_, c)| c).sum();
    let why: Vec<String> = n.iter().map(|(r, c)| format!("{r} {c}")).collect();
    let flood = ["ring_full", "pipeline_busy", "pipeline_full"];
    let hint = match n.iter().any(|(r, _)| flood.contains(&r.as_str())) {
        true => "more requests than this view can print; ",
        false => "",
    };
    format!(
        "{total} requests not shown ({}: {hint}eunomia_http_dropped_total in docs/metrics.md)",
        why.join(", ")
    )
}

/// Whether `err` is stdout closed by its reader (`| head`).
fn broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `obj` with `proc.comm` from `/proc` when it names no workload and no
/// command (a host process; the request events carry only its pid), so the
/// line can name the program while it runs.
fn with_comm(mut obj: Map<String, Value>) -> Map<String, Value> {
    let named = ["container.name", "k8s.pod.name", "service", "proc.comm"]
        .iter()
        .any(|k| obj.get(*k).is_some_and(|v| !v.is_null()));
    let pid = obj.get("proc.pid").and_then(Value::as_u64);
    if let (false, Some(pid)) = (named, pid)
        && let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm"))
    {
        obj.insert("proc.comm".into(), comm.trim_end().into());
    }
    obj
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

    #[test]
    fn requests_not_shown_are_counted_by_reason() {
        let flood = vec![("pipeline_busy".into(), 900), ("ring_full".into(), 100)];
        assert_eq!(
            not_shown(&flood),
            "1000 requests not shown (pipeline_busy 900, ring_full 100: more requests than \
             this view can print; eunomia_http_dropped_total in docs/metrics.md)"
        );
        let unmatched = vec![("unmatched_response".into(), 2)];
        assert_eq!(
            not_shown(&unmatched),
            "2 requests not shown (unmatched_response 2: eunomia_http_dropped_total in docs/metrics.md)"
        );
    }
}
