//! The control service the agent serves on its Unix socket: tools (list,
//! start, stop), status, and the live event stream.

use std::{
    path::PathBuf,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use tokio::{
    sync::{broadcast::error::RecvError, mpsc},
    task::JoinHandle,
};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{
    events::{EventFilter, EventHub},
    proto::{self, control_server::ControlServer},
    socket,
};
use crate::{
    pipeline::PipelineStats,
    selfmetrics::Registry,
    tools::{RunnerOptions, StartError, Supervisor, ToolState, ToolStats, avail::Availability},
};

/// What the control service reads and acts on.
#[derive(Clone)]
pub(crate) struct ControlContext {
    /// The agent's tools.
    pub(crate) supervisor: Supervisor,
    /// Live events.
    pub(crate) events: EventHub,
    /// The agent's self-metrics.
    pub(crate) registry: Arc<Registry>,
    /// The pipeline channel's counters.
    pub(crate) pipeline: Arc<PipelineStats>,
    /// When the agent started.
    pub(crate) started: Instant,
    /// The configuration file in use, if any.
    pub(crate) config_path: Option<PathBuf>,
    /// The sources the agent runs (besides tools).
    pub(crate) sources: Vec<String>,
    /// Ends every open event stream.
    pub(crate) shutdown: CancellationToken,
    /// Recent message rates per source.
    pub(crate) rates: super::rates::RateWindow,
    /// Interval snapshots of every workload and the syscall ledger.
    pub(crate) live: crate::live::LiveHub,
    /// Every running sink's stats.
    pub(crate) sinks: crate::sinks::SinkBook,
    /// The service map and the latest linked spans.
    pub(crate) map: crate::traces::stage::MapHandle,
}

/// Serves the control API on `bound` (from [`socket::bind`], called early
/// so a second agent stops before it attaches anything) until `shutdown`;
/// the socket is removed when the returned task ends.
pub(crate) fn serve(
    bound: (tokio::net::UnixListener, socket::SocketGuard),
    ctx: ControlContext,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let (listener, guard) = bound;
    tracing::info!(socket = %guard.path().display(), "control API listening");
    ctx.rates
        .spawn_sampler(ctx.pipeline.clone(), shutdown.clone());
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_service(ControlServer::new(ctx))
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
            .await;
        if let Err(e) = served {
            tracing::error!("control API: {e}");
        }
        drop(guard);
    })
}

/// A tool's counters in the API's form.
pub(crate) fn counters(s: &ToolStats) -> proto::ToolCounters {
    let (state, detail) = match s.state() {
        ToolState::Starting => ("starting", String::new()),
        ToolState::Running(pid) => ("running", pid.to_string()),
        ToolState::Restarting => ("restarting", String::new()),
        ToolState::Failed(why) => ("failed", why),
        ToolState::Stopped => ("stopped", String::new()),
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    proto::ToolCounters {
        name: s.tool.to_string(),
        state: state.into(),
        detail,
        lines: load(&s.lines),
        records: load(&s.records),
        parse_errors: load(&s.parse_errors),
        restarts: load(&s.restarts),
        dropped: load(&s.dropped),
        starts: load(&s.starts),
        rejected: s.rejected.iter().map(load).sum(),
        continued: load(&s.continued_lines),
    }
}

fn start_status(e: StartError) -> Status {
    match e {
        StartError::Unknown(_) => Status::not_found(e.to_string()),
        StartError::AlreadyRunning(_) => Status::already_exists(e.to_string()),
        StartError::NeedsArgs { .. } => Status::invalid_argument(e.to_string()),
        StartError::Unavailable { .. } => Status::failed_precondition(e.to_string()),
        StartError::ShuttingDown => Status::unavailable(e.to_string()),
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::EventLine, Status>> + Send>>;
type SnapshotStream = Pin<Box<dyn Stream<Item = Result<proto::SnapshotLine, Status>> + Send>>;

#[tonic::async_trait]
impl proto::control_server::Control for ControlContext {
    async fn list_tools(
        &self,
        _: Request<proto::ListToolsRequest>,
    ) -> Result<Response<proto::ListToolsResponse>, Status> {
        let sup = self.supervisor.clone();
        let tools = tokio::task::spawn_blocking(move || {
            let manifest = sup.manifest();
            manifest
                .tools()
                .iter()
                .map(|spec| {
                    let avail = sup.availability(spec);
                    let stats = sup.tool_stats(&spec.name);
                    proto::ToolInfo {
                        name: spec.name.to_string(),
                        description: spec.description.clone(),
                        availability: avail.code().into(),
                        reason: match avail {
                            Availability::Unsupported(why) | Availability::Refused(why) => why,
                            _ => String::new(),
                        },
                        running: stats.as_ref().is_some_and(|s| s.is_active()),
                        counters: stats.as_deref().map(counters),
                    }
                })
                .collect()
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(proto::ListToolsResponse { tools }))
    }

    async fn start_tool(
        &self,
        req: Request<proto::StartToolRequest>,
    ) -> Result<Response<proto::StartToolResponse>, Status> {
        let req = req.into_inner();
        let (_, config) = self.supervisor.setup();
        let handle = self
            .supervisor
            .start(
                &req.name,
                &req.args,
                RunnerOptions::from_config(&config),
                req.force,
            )
            .map_err(start_status)?;
        tracing::info!(tool = %req.name, args = ?req.args, "started through the control API");
        Ok(Response::new(proto::StartToolResponse {
            tool: Some(counters(&handle.stats)),
        }))
    }

    async fn stop_tool(
        &self,
        req: Request<proto::StopToolRequest>,
    ) -> Result<Response<proto::StopToolResponse>, Status> {
        let name = req.into_inner().name;
        if self.supervisor.manifest().get(&name).is_none() {
            return Err(Status::not_found(format!(
                "unknown tool `{name}`: no tool of that name in the manifest; see `eunomia tools list`"
            )));
        }
        let stats = self.supervisor.stop(&name).ok_or_else(|| {
            Status::not_found(format!("tool `{name}` is not running in the agent"))
        })?;
        tracing::info!(tool = %name, "stop requested through the control API");
        // Give it its stop timeout (and some) to end; report the state it is in.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while stats.is_active() && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(Response::new(proto::StopToolResponse {
            tool: Some(counters(&stats)),
        }))
    }

    async fn status(
        &self,
        _: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        Ok(Response::new(self.status_now()))
    }

    type StreamEventsStream = EventStream;

    async fn stream_events(
        &self,
        req: Request<proto::StreamEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let req = req.into_inner();
        let filter = EventFilter {
            tools: req.tools,
            kinds: req.kinds,
            container_id: req.container_id,
        };
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(forward(
            self.events.clone(),
            filter,
            tx,
            self.shutdown.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type StreamSnapshotsStream = SnapshotStream;

    async fn stream_snapshots(
        &self,
        _: Request<proto::StreamSnapshotsRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(super::live::forward(
            self.live.clone(),
            tx,
            self.shutdown.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn workload_syscalls(
        &self,
        req: Request<proto::WorkloadSyscallsRequest>,
    ) -> Result<Response<proto::WorkloadSyscallsResponse>, Status> {
        super::live::workload_syscalls(&self.live, &req.into_inner().container).map(Response::new)
    }

    async fn service_map(
        &self,
        _req: Request<proto::ServiceMapRequest>,
    ) -> Result<Response<proto::ServiceMapResponse>, Status> {
        Ok(Response::new(proto::ServiceMapResponse {
            json: self.map.json(),
        }))
    }
}

impl ControlContext {
    fn status_now(&self) -> proto::StatusResponse {
        let metrics: Vec<proto::SelfMetric> = self
            .registry
            .read()
            .into_iter()
            .map(|p| proto::SelfMetric {
                name: p.name.into(),
                labels: p.labels.into_iter().map(|(k, v)| (k.into(), v)).collect(),
                value: p.value,
            })
            .collect();
        proto::StatusResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: u64::from(std::process::id()),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            config: self
                .config_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            sources: self.sources.clone(),
            pipeline_sent: self.pipeline.sent.load(Ordering::Relaxed),
            pipeline_dropped: self.pipeline.dropped_full.load(Ordering::Relaxed),
            tools: self
                .supervisor
                .stats()
                .iter()
                .map(|s| counters(s))
                .collect(),
            sinks: sink_statuses(&self.sinks),
            source_rates: self
                .rates
                .rates(&self.pipeline, self.started)
                .into_iter()
                .map(|(source, messages, per_second)| proto::SourceRate {
                    source: source.into(),
                    messages,
                    per_second,
                })
                .collect(),
            metrics,
            event_subscribers: self.events.subscribers() as u64,
        }
    }
}

/// Every running sink's stats: health, backlog and drops.
fn sink_statuses(sinks: &crate::sinks::SinkBook) -> Vec<proto::SinkStatus> {
    let unix = |t: Option<std::time::SystemTime>| {
        t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64())
    };
    sinks
        .views()
        .into_iter()
        .map(|h| {
            let (err_at, err) = h.last_error.clone().unzip();
            proto::SinkStatus {
                name: h.name.into(),
                target: h.target.clone(),
                up: h.up,
                last_success_unix: unix(h.last_success),
                last_error: err.unwrap_or_default(),
                last_error_unix: unix(err_at),
                backlog: h.backlog,
                dropped: h.dropped,
            }
        })
        .collect()
}

/// Copies the events `filter` passes from the hub to one subscriber until
/// it goes away or the agent stops; a lag is reported with the next event.
async fn forward(
    hub: EventHub,
    filter: EventFilter,
    tx: mpsc::Sender<Result<proto::EventLine, Status>>,
    shutdown: CancellationToken,
) {
    let mut rx = hub.subscribe();
    let mut lagged = 0u64;
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tx.closed() => return,
            e = rx.recv() => e,
        };
        match event {
            Ok(e) if filter.matches(&e) => {
                let line = proto::EventLine {
                    json: e.json.clone(),
                    lagged: std::mem::take(&mut lagged),
                };
                if tx.send(Ok(line)).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "an event subscriber lags behind");
                lagged += n;
            }
            Err(RecvError::Closed) => return,
        }
    }
}
