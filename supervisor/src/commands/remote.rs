//! Helpers of the commands that talk to a running agent over its control
//! socket (`tools list|start|stop`, `status`).

use std::{future::Future, path::Path, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::{
    BadInput,
    control::{
        client::{self, Client, ClientError},
        proto,
    },
};

/// Runs `f` on a small single-threaded runtime.
pub(crate) fn block_on<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?
        .block_on(f)
}

/// Connects to the agent at `socket`; every failure is an error.
pub(crate) async fn connect(socket: &Path) -> anyhow::Result<Client> {
    Ok(client::connect(socket).await?)
}

/// Connects to the agent at `socket`, or `None` when no agent runs there
/// (no socket file). A stale socket or a permission problem is an error.
pub(crate) async fn connect_if_running(socket: &Path) -> anyhow::Result<Option<Client>> {
    match client::connect(socket).await {
        Ok(c) => Ok(Some(c)),
        Err(ClientError::NoAgent(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// An error the agent answered with, as the CLI reports it: the agent's
/// message; a request naming an unknown tool or lacking arguments is bad
/// input (exit 2).
pub(crate) fn answer_error(status: tonic::Status) -> anyhow::Error {
    let msg = status.message().to_owned();
    match status.code() {
        tonic::Code::NotFound | tonic::Code::InvalidArgument => BadInput(msg).into(),
        tonic::Code::Unavailable if msg.is_empty() => {
            anyhow::anyhow!("the agent went away: {status}")
        }
        _ => anyhow::anyhow!("the agent refused: {msg}"),
    }
}

/// A tool's counters as one JSON object.
pub(crate) fn counters_json(c: &proto::ToolCounters) -> serde_json::Value {
    serde_json::json!({
        "name": c.name,
        "state": c.state,
        "detail": (!c.detail.is_empty()).then_some(&c.detail),
        "lines": c.lines,
        "records": c.records,
        "parse_errors": c.parse_errors,
        "rejected": c.rejected,
        "continued": c.continued,
        "dropped": c.dropped,
        "starts": c.starts,
        "restarts": c.restarts,
    })
}

/// The header of [`counters_row`].
pub(crate) const COUNTERS_HEADER: &str = "TOOL             STATE            LINES      RECORDS    PARSE_ERR  REJECTED   DROPPED    RESTARTS";

/// A tool's counters as one table row.
pub(crate) fn counters_row(c: &proto::ToolCounters) -> String {
    let state = match (c.state.as_str(), c.detail.as_str()) {
        ("running", pid) => format!("running({pid})"),
        (s, _) => s.to_owned(),
    };
    format!(
        "{:<16} {state:<16} {:<10} {:<10} {:<10} {:<10} {:<10} {}",
        c.name, c.lines, c.records, c.parse_errors, c.rejected, c.dropped, c.restarts
    )
}

/// Streams the agent's events that `request` selects and hands each line
/// (one JSON object) to `show` until `run_for`, Ctrl-C or the agent ends
/// the stream. Lines missed by a slow reader are reported on stderr as
/// `what`; a reader gone from stdout (`| head`) ends the stream quietly.
pub(crate) async fn follow(
    client: &mut Client,
    request: proto::StreamEventsRequest,
    run_for: Option<Duration>,
    what: &str,
    mut show: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut stream = client
        .stream_events(request)
        .await
        .map_err(answer_error)?
        .into_inner();
    let shutdown = CancellationToken::new();
    crate::agent::spawn_signal_watch(shutdown.clone(), run_for)?;
    loop {
        let line = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = stream.message() => match m.map_err(answer_error)? {
                Some(line) => line,
                None => return Ok(()),
            },
        };
        if line.lagged > 0 {
            eprintln!(
                "eunomia: {} {what} missed (this reader was too slow)",
                line.lagged
            );
        }
        if let Err(err) = show(&line.json) {
            let broken_pipe = err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
            return if broken_pipe { Ok(()) } else { Err(err) };
        }
    }
}

/// One streamed line as the JSON object it must be.
pub(crate) fn json_object(
    line: &str,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(line)
        .with_context(|| format!("the agent sent a line that is not a JSON object: {line}"))
}

/// `r`, an error writing to stdout with that context (a closed pipe is
/// left bare so [`follow`] can tell it).
pub(crate) fn written(r: std::io::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        r => Ok(r?),
    }
}
