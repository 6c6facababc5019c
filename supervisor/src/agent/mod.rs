//! The agent: starts the sinks, the rules and every configured source (hot
//! path, cgroup statistics, supervised tools), then runs each pipeline
//! message through the stages ([`stages`]: enrich → traces → rules →
//! aggregate → event sinks → console) until SIGINT, SIGTERM or the end of `--for`. On shutdown the sources
//! flush their last interval, the pipeline drains, and the sinks export one
//! last time.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

mod stages;

use stages::{Stages, traces_stage};

use crate::{
    aggregate::Aggregator,
    cgroups,
    config::Config,
    context::AgentContext,
    control::{self, events::EventHub, server::ControlContext, socket::SocketError},
    enrich::{EnrichConfig, Enricher, Resolver, kubelet},
    hotpath,
    pipeline::{self, Message, PipelineStats},
    reload::{self, Overrides, Reloader},
    rules::{ConsoleAlerts, RulesConfig, RulesStage},
    selfmetrics::Registry,
    sinks::{self, Publisher, SinkBook, SinkContext, console::Console},
    systemd,
    tools::{self, Supervisor},
};

/// How `eunomia run` was asked to behave beyond its configuration.
#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    /// Stop after this long.
    pub(crate) run_for: Option<Duration>,
    /// Print summaries as JSON lines.
    pub(crate) json: bool,
    /// Also print every sample batch as a JSON line.
    pub(crate) samples: bool,
    /// Syscalls per summary.
    pub(crate) top: usize,
    /// The configuration file given (`None`: default path or defaults);
    /// read again on SIGHUP.
    pub(crate) config_path: Option<PathBuf>,
    /// Command-line overrides, applied again on reload.
    pub(crate) overrides: Overrides,
}

/// Runs the agent to completion.
pub(crate) async fn run(config: Config, opts: RunOptions) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    // Handlers first, so a signal that arrives while loading still ends us cleanly.
    spawn_signal_watch(shutdown.clone(), opts.run_for)?;

    let started = std::time::Instant::now();
    // Before anything is attached: what `config check` checks, and one
    // agent per control socket.
    crate::preflight::check(&config)?;
    let bound = bind_control(&config)?;
    // The manifest before the rules: its generic tools' columns are fields
    // of the rules.
    crate::config::load_manifest(&config.tools)?;
    let (tx, mut rx) = pipeline::channel(config.agent.channel_capacity);
    let mut ctx = AgentContext::new(tx, shutdown.clone());
    let registry = ctx.registry.clone();
    let RulesStart {
        stage: mut rules,
        reloader: rules_task,
        trigger: rules_tx,
    } = start_rules(&config, &opts, &ctx)?;
    let aggregator = Aggregator::new(&config.aggregate, vec![registry.clone()]).shared();
    for setting in &config.env {
        tracing::info!("{setting}");
    }
    let publisher = Publisher::new(aggregator.clone());
    let sink_ctx = SinkContext {
        snapshots: publisher.subscribe(),
        registry: registry.clone(),
        stop: CancellationToken::new(),
        resource_attributes: config.agent.resource_attributes.clone(),
        book: SinkBook::default(),
    };
    let mut sinks = sinks::start(&config.sinks, &sink_ctx)
        .await
        .context("starting the sinks")?;
    for alerts in sinks.alerts.drain(..) {
        rules.add_sink(alerts);
    }
    let publishing = publisher.spawn(publish_interval(&config), sink_ctx.stop.clone());

    register_pipeline_stats(&registry, ctx.tx.stats());
    let stats = ctx.tx.stats().clone();
    let (mut sources, supervisor) = start_sources(&config, &mut ctx)?;
    let enricher = match config.enrich.enabled {
        true => Some(start_enricher(&config.enrich, &ctx, &mut sources)?),
        false => None,
    };
    // The sources hold the pipeline's senders now: it ends when they stop.
    drop(ctx);
    // --- control API and SIGHUP reload (issue 9) ---
    let events = EventHub::default();
    let live = crate::live::LiveHub::default();
    live.register(&registry);
    let map = crate::traces::stage::MapHandle::default();
    let control = start_control(
        &config,
        &opts,
        bound,
        ControlContext {
            supervisor: supervisor.clone(),
            events: events.clone(),
            registry: registry.clone(),
            pipeline: stats.clone(),
            sinks: sink_ctx.book.clone(),
            started,
            config_path: shown_config_path(opts.config_path.as_deref()),
            sources: source_names(&config),
            shutdown: shutdown.clone(),
            rates: Default::default(),
            live: live.clone(),
            map: map.clone(),
        },
        rules_tx,
    )?;
    // --- end control API ---
    notify_systemd(&shutdown);
    crate::memory::spawn_trimmer(shutdown.clone());

    let mut stages = Stages {
        enricher,
        self_interval: config.agent.poll_interval,
        rules,
        aggregator,
        console: Console::new(console_out(&config), opts.json, opts.top).with_samples(opts.samples),
        events: sinks.events.clone(),
        live: events,
        view: crate::live::LiveView::new(live.ledger().clone()),
        snapshots: live,
        traces: traces_stage(&config, &registry, map),
    };
    // held span events leave the traces stage between messages too
    let mut release = tokio::time::interval(Duration::from_millis(250));
    release.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let handled = tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => stages.handle(msg),
                None => break,
            },
            _ = release.tick() => stages.release(),
        };
        if let Err(err) = handled {
            // Every source stops (their threads too, which the runtime waits
            // for when it is dropped) before the error ends the agent.
            shutdown.cancel();
            return Err(err);
        }
    }
    for source in sources {
        source.await.context("a source task panicked")?;
    }
    if let Some(control) = control {
        control.await.context("the control API panicked")?;
    }
    let sinks = Exporters {
        sinks,
        publisher,
        publishing,
        stop: sink_ctx.stop,
        rules_task,
    };
    finish(stages, sinks, &stats).await
}

/// The enrichment stage, with the kubelet's pod list kept current by a
/// background task when a kubelet URL is configured.
fn start_enricher(
    config: &EnrichConfig,
    ctx: &AgentContext,
    sources: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<Enricher> {
    let mut resolver = Resolver::new(config);
    // Exited processes resolve through the hot path's pid -> cgroup map.
    resolver.set_pid_lookup(Arc::new(ctx.pids.clone()));
    let pods = kubelet::SharedKubeletPods::default();
    if let Some(task) =
        kubelet::start(config, pods.clone(), ctx.shutdown.clone()).context("enrich.kubelet")?
    {
        sources.push(task);
        resolver.set_kubelet(pods);
    }
    Ok(Enricher::new(resolver))
}

/// Starts the hot path (whose pid map, when attached, goes into `ctx` for
/// the stages started after it), the cgroup statistics and the enabled
/// tools; the supervisor lets go of the pipeline on shutdown.
fn start_sources(
    config: &Config,
    ctx: &mut AgentContext,
) -> anyhow::Result<(Vec<JoinHandle<()>>, Supervisor)> {
    let interval = config.agent.poll_interval;
    let mut sources = Vec::new();
    let mut hotpath = config.hotpath.clone();
    hotpath.check_strings_of(tools::enabled_event_kinds(&config.tools));
    hotpath.http = config.http.capture();
    let started =
        hotpath::poller::start(&hotpath, interval, ctx).context("loading the hot-path probes")?;
    let mut counting = None;
    let mut http_pause = None;
    if let Some(source) = started {
        sources.push(source.task);
        sources.extend(source.execs);
        sources.extend(source.mounts);
        ctx.pids = source.pids;
        counting = Some(source.counting);
        if let Some(maps) = source.http {
            match crate::http::source::start(maps, &config.http, interval, ctx) {
                Ok((_, pause)) => {
                    http_pause = Some(pause);
                    tracing::info!("HTTP capture on");
                }
                Err(err) => tracing::warn!("HTTP capture unavailable: {err}"),
            }
        }
    }
    if let Some(stats) = crate::config::container_stats(&config.enrich) {
        sources.extend(cgroups::start(&stats, interval, ctx));
    }
    sources.extend(crate::logs::start(
        &config.logs,
        config.enrich.runtime_files(),
        config.enrich.pod_logs(),
        interval,
        ctx,
    ));
    let (supervisor, tasks) = tools::start_enabled(&config.tools, ctx)?;
    sources.extend(tasks);
    // BPF statistics cost every program run on the machine: in one interval
    // of ten, or in each when a budget needs fresh figures
    let stats_every = if config.agent.cpu_budget.is_some() {
        1
    } else {
        crate::overhead::STATS_EVERY
    };
    let (overhead, task) = crate::overhead::start(interval, stats_every, supervisor.clone(), ctx);
    sources.push(task);
    if let Some(percent) = config.agent.cpu_budget {
        let counting = counting.filter(|_| hotpath.syscalls.on());
        sources.push(crate::budget::start(
            percent,
            interval,
            overhead,
            counting.map(|c| (c, hotpath.syscalls)),
            http_pause,
            supervisor.clone(),
            ctx,
        ));
    }
    let closing = supervisor.clone();
    let stop = ctx.shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        closing.close();
    });
    Ok((sources, supervisor))
}

/// The sources the configuration turns on, for `eunomia status`.
fn source_names(config: &Config) -> Vec<String> {
    let h = &config.hotpath;
    [
        (h.syscalls.on(), "hotpath.syscalls"),
        (h.tcp, "hotpath.tcp"),
        (h.pids, "hotpath.pids"),
        (h.syscalls.on() && config.http.enabled, "hotpath.http"),
        (config.enrich.enabled, "cgroups"),
        (true, "tools"),
        (config.logs.enabled, "logs"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name.to_owned())
    .collect()
}

/// Binds the control socket; another agent answering there is bad usage
/// (exit 2, naming its pid), so a second agent never attaches a second hot
/// path and tool set.
fn bind_control(
    config: &Config,
) -> anyhow::Result<(tokio::net::UnixListener, control::socket::SocketGuard)> {
    match control::socket::bind(&config.agent.control_socket) {
        Ok(bound) => Ok(bound),
        Err(e @ SocketError::InUse { .. }) => Err(crate::BadInput(e.to_string()).into()),
        Err(e) => Err(e).context("creating the control socket (agent.control_socket, --socket)"),
    }
}

/// The configuration file `eunomia status` shows: absolute, or the default
/// file when it was read, or none (built-in defaults).
fn shown_config_path(given: Option<&std::path::Path>) -> Option<PathBuf> {
    match given {
        Some(p) => Some(std::path::absolute(p).unwrap_or_else(|_| p.to_owned())),
        None => {
            let default = std::path::Path::new(crate::config::DEFAULT_PATH);
            default.exists().then(|| default.to_owned())
        }
    }
}

/// Serves the control API on the socket bound at start and installs the
/// SIGHUP reloader. The returned task ends, and removes the socket, on
/// shutdown.
fn start_control(
    config: &Config,
    opts: &RunOptions,
    bound: (tokio::net::UnixListener, control::socket::SocketGuard),
    ctx: ControlContext,
    rules_tx: Option<watch::Sender<RulesConfig>>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let shutdown = ctx.shutdown.clone();
    let reloader = Reloader {
        path: opts.config_path.clone(),
        overrides: opts.overrides.clone(),
        current: config.clone(),
        supervisor: ctx.supervisor.clone(),
        rules: rules_tx,
    };
    reload::spawn(reloader, shutdown.clone()).context("installing the SIGHUP handler")?;
    Ok(Some(control::server::serve(bound, ctx, shutdown)))
}

/// READY now, STOPPING on shutdown, and watchdog pings in between.
fn notify_systemd(shutdown: &CancellationToken) {
    systemd::ready();
    systemd::spawn_watchdog(shutdown.clone());
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        systemd::stopping();
    });
}

/// The metric publisher, the sinks, and the task that reloads the rules.
struct Exporters {
    sinks: sinks::Sinks,
    publisher: Publisher,
    publishing: JoinHandle<()>,
    stop: CancellationToken,
    rules_task: Option<JoinHandle<()>>,
}

/// How often the publisher collects a metric snapshot: as often as the
/// most frequent periodic sink exports, and at least every poll interval
/// for Prometheus scrapes.
fn publish_interval(config: &Config) -> Duration {
    let s = &config.sinks;
    [
        (s.otlp.enabled, s.otlp.export_interval),
        (s.remote_write.enabled, s.remote_write.interval),
        (s.jsonl.enabled && s.jsonl.metrics, s.jsonl.interval),
        (true, config.agent.poll_interval),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, every)| every)
    .min()
    .unwrap_or(config.agent.poll_interval)
    .max(Duration::from_millis(100))
}

/// After the pipeline drained: a last snapshot, then the sinks flush and end.
async fn finish<W: std::io::Write>(
    stages: Stages<W>,
    exporters: Exporters,
    stats: &Arc<PipelineStats>,
) -> anyhow::Result<()> {
    let rule_stats = stages.rules.engine().stats();
    let mut stages = stages;
    let (spans, graph) = stages.traces.finish(crate::host::now_ns());
    for record in spans {
        stages.after_traces(&Message::Record(record))?;
    }
    stages.aggregate(&Message::Samples(graph));
    drop(stages);
    if let Some(task) = exporters.rules_task
        && tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
    {
        tracing::warn!("the rules reloader did not finish in 10s");
    }
    tracing::info!(
        events = rule_stats.events,
        alerts = rule_stats.alerts,
        duplicates = rule_stats.limits.duplicates,
        rate_limited = rule_stats.limits.rate_limited,
        "rules stage"
    );
    exporters.publisher.publish();
    exporters.stop.cancel();
    exporters
        .publishing
        .await
        .context("the metric publisher panicked")?;
    for task in exporters.sinks.tasks {
        task.await.context("a sink task panicked")?;
    }
    let dropped = stats
        .dropped_full
        .load(std::sync::atomic::Ordering::Relaxed);
    if dropped > 0 {
        tracing::warn!(dropped, "pipeline messages dropped because it was full");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Where the console summaries and alerts go: stdout, unless the JSON-lines
/// sink writes there (then stderr, so stdout stays JSON lines for `jq`).
fn console_out(config: &Config) -> Box<dyn std::io::Write + Send> {
    match config.sinks.jsonl.writes_stdout() {
        true => Box::new(std::io::stderr()),
        false => Box::new(std::io::stdout()),
    }
}

/// The rules stage and what reloads it.
struct RulesStart {
    stage: RulesStage,
    /// Follows `[rules]` changes and rule-file edits until shutdown.
    reloader: Option<JoinHandle<()>>,
    /// Where the configuration reloader sends a new `[rules]` section.
    trigger: Option<watch::Sender<RulesConfig>>,
}

/// Compiles the rules, starts their reloader and the console alerts (the
/// other alert sinks come from the sink factory).
fn start_rules(
    config: &Config,
    opts: &RunOptions,
    ctx: &AgentContext,
) -> anyhow::Result<RulesStart> {
    let set = config
        .rules
        .load()
        .map_err(|e| crate::BadInput(format!("the rules have errors:\n{e}")))?;
    tracing::info!(rules = set.rules().len(), "rules loaded");
    let mut stage = RulesStage::new(set.clone(), config.rules.dedup_window, ctx.registry.clone());
    let mut task = None;
    let mut trigger = None;
    if config.rules.enabled {
        // The configuration reloader sends the `[rules]` section on SIGHUP.
        let (tx, rules_rx) = watch::channel(config.rules.clone());
        let (rx, reloader) = crate::rules::stage::spawn_reloader(
            config.rules.clone(),
            set,
            rules_rx,
            ctx.shutdown.clone(),
        );
        stage.follow(rx);
        task = Some(reloader);
        trigger = Some(tx);
    }
    if config.rules.console {
        stage.add_sink(Box::new(ConsoleAlerts::new(console_out(config), opts.json)));
    }
    Ok(RulesStart {
        stage,
        reloader: task,
        trigger,
    })
}

/// Exports the pipeline channel's counters as self-metrics.
fn register_pipeline_stats(registry: &Registry, stats: &std::sync::Arc<PipelineStats>) {
    let sent = stats.clone();
    registry.observe_counter(
        "eunomia_pipeline_messages_total",
        "Messages sources put into the pipeline channel.",
        &[],
        move || sent.sent.load(std::sync::atomic::Ordering::Relaxed),
    );
    let dropped = stats.clone();
    registry.observe_counter(
        "eunomia_pipeline_dropped_total",
        "Messages dropped before aggregation, by reason.",
        &[("reason", "channel_full")],
        move || {
            dropped
                .dropped_full
                .load(std::sync::atomic::Ordering::Relaxed)
        },
    );
}

/// Cancels `shutdown` on SIGINT, SIGTERM or after `run_for` (also used by
/// the foreground commands).
pub(crate) fn spawn_signal_watch(
    shutdown: CancellationToken,
    run_for: Option<Duration>,
) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::spawn(async move {
        let deadline = async {
            match run_for {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sigint.recv() => tracing::info!("SIGINT: stopping"),
            _ = sigterm.recv() => tracing::info!("SIGTERM: stopping"),
            _ = deadline => tracing::debug!("--for elapsed: stopping"),
        }
        shutdown.cancel();
    });
    Ok(())
}
