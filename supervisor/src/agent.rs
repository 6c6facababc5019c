//! The agent: starts the sinks, the rules and every configured source (hot
//! path, cgroup statistics, supervised tools), then runs each pipeline
//! message through the stages — enrich → rules → aggregate → console/logs —
//! until SIGINT, SIGTERM or the end of `--for`. On shutdown the sources
//! flush their last interval, the pipeline drains, and the sinks export one
//! last time.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::{
    signal::unix::{SignalKind, signal},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::{
    aggregate::{Aggregator, SharedAggregator},
    cgroups,
    config::Config,
    enrich::{EnrichConfig, Enricher, Resolver, kubelet},
    hotpath,
    pipeline::{self, Message, PipelineStats},
    rules::{ConsoleAlerts, NoLabels, RulesStage},
    selfmetrics::{self, Registry},
    sinks::{self, alertmanager, console::Console},
    systemd, tools,
};

/// How `eunomia run` was asked to behave beyond its configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop after this long.
    pub run_for: Option<Duration>,
    /// Print summaries as JSON lines.
    pub json: bool,
    /// Also print every sample batch as a JSON line.
    pub samples: bool,
    /// Syscalls per summary.
    pub top: usize,
}

/// Runs the agent to completion.
pub async fn run(config: Config, opts: RunOptions) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    // Handlers first, so a signal that arrives while loading still ends us cleanly.
    spawn_signal_watch(shutdown.clone(), opts.run_for)?;

    let (rules, alert_tasks) = start_rules(&config, &opts, &shutdown)?;
    let registry = selfmetrics::global().clone();
    let aggregator = Aggregator::new(&config.aggregate, vec![registry.clone()]).shared();
    let sinks_stop = CancellationToken::new();
    let sinks = sinks::start(&config.sinks, &aggregator, &registry, &sinks_stop)
        .await
        .context("starting the sinks")?;

    let (tx, mut rx) = pipeline::channel(config.agent.channel_capacity);
    register_pipeline_stats(&registry, tx.stats());
    let stats = tx.stats().clone();
    let mut sources = start_sources(&config, &tx, &shutdown)?;
    drop(tx);
    let enricher = match config.enrich.enabled {
        true => Some(start_enricher(&config.enrich, &mut sources, &shutdown)?),
        false => None,
    };
    notify_systemd(&shutdown);

    let mut stages = Stages {
        enricher,
        self_interval: config.agent.poll_interval,
        rules,
        aggregator,
        console: Console::new(std::io::stdout().lock(), opts.json, opts.top)
            .with_samples(opts.samples),
        events: sinks.event_sinks(),
    };
    while let Some(mut msg) = rx.recv().await {
        stages.handle(&mut msg)?;
    }
    for source in sources {
        source.await.context("a source task panicked")?;
    }
    finish(stages, sinks, sinks_stop, alert_tasks, &stats).await
}

/// The stages every message goes through, in order.
struct Stages<W: std::io::Write> {
    enricher: Option<Enricher>,
    /// How often the enricher reports its own counters.
    self_interval: Duration,
    rules: RulesStage,
    aggregator: SharedAggregator,
    console: Console<W>,
    events: sinks::EventSinks,
}

impl<W: std::io::Write> Stages<W> {
    fn handle(&mut self, msg: &mut Message) -> anyhow::Result<()> {
        if let Some(enricher) = self.enricher.as_mut() {
            enricher.enrich(msg);
            if let Some(own) = enricher.self_batch_due(self.self_interval) {
                self.aggregate(&Message::Samples(own));
            }
        }
        if let Message::Record(r) = &*msg
            && let Some(event) = r.record.as_event()
        {
            match r.workload.as_deref() {
                Some(workload) => self.rules.on_event(event, workload),
                None => self.rules.on_event(event, &NoLabels),
            }
        }
        self.aggregate(msg);
        self.events.offer(msg);
        self.console.handle(msg).context("writing to stdout")
    }

    fn aggregate(&self, msg: &Message) {
        match self.aggregator.lock() {
            Ok(mut a) => a.ingest(msg),
            Err(poisoned) => poisoned.into_inner().ingest(msg),
        }
    }
}

/// The enrichment stage, with the kubelet's pod list kept current by a
/// background task when a kubelet URL is configured.
fn start_enricher(
    config: &EnrichConfig,
    sources: &mut Vec<JoinHandle<()>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Enricher> {
    let mut resolver = Resolver::new(config);
    // Exited processes resolve through the hot path's pid -> cgroup map.
    if let Some(pids) = hotpath::pid_cgroups() {
        resolver.set_pid_lookup(Arc::new(move |pid| pids.cgroup_of_pid(pid)));
    }
    let pods = kubelet::SharedKubeletPods::default();
    if let Some(task) =
        kubelet::start(config, pods.clone(), shutdown.clone()).context("enrich.kubelet")?
    {
        sources.push(task);
        resolver.set_kubelet(pods);
    }
    Ok(Enricher::new(resolver))
}

/// Starts the hot path, the cgroup statistics and the enabled tools.
fn start_sources(
    config: &Config,
    tx: &pipeline::PipelineTx,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let interval = config.agent.poll_interval;
    let mut sources = Vec::new();
    sources.extend(
        hotpath::poller::start(&config.hotpath, interval, tx.clone(), shutdown.clone())
            .context("loading the hot-path probes")?,
    );
    sources.extend(cgroups::start(
        &config.enrich,
        interval,
        tx.clone(),
        shutdown.clone(),
    ));
    sources.extend(tools::start_enabled(
        &config.tools,
        tx.clone(),
        shutdown.clone(),
    )?);
    Ok(sources)
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

/// After the pipeline drained: flush the alert sinks and the exporters.
async fn finish<W: std::io::Write>(
    stages: Stages<W>,
    sinks: sinks::Sinks,
    sinks_stop: CancellationToken,
    alert_tasks: Vec<JoinHandle<()>>,
    stats: &Arc<PipelineStats>,
) -> anyhow::Result<()> {
    let rule_stats = stages.rules.engine().stats();
    drop(stages);
    for task in alert_tasks {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            tracing::warn!("an alert sink did not finish flushing in 10s");
        }
    }
    tracing::info!(
        events = rule_stats.events,
        alerts = rule_stats.alerts,
        duplicates = rule_stats.limits.duplicates,
        rate_limited = rule_stats.limits.rate_limited,
        "rules stage"
    );
    sinks_stop.cancel();
    drop(sinks.otlp_logs);
    drop(sinks.jsonl);
    for task in sinks.tasks {
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

/// Compiles the rules, starts their reloader and the alert sinks.
fn start_rules(
    config: &Config,
    opts: &RunOptions,
    shutdown: &CancellationToken,
) -> anyhow::Result<(RulesStage, Vec<tokio::task::JoinHandle<()>>)> {
    let set = config
        .rules
        .load()
        .map_err(|e| crate::BadInput(format!("the rules have errors:\n{e}")))?;
    tracing::info!(rules = set.rules().len(), "rules loaded");
    let mut stage = RulesStage::new(set.clone(), config.rules.dedup_window);
    let mut tasks = Vec::new();
    if config.rules.enabled {
        let (rx, task) =
            crate::rules::stage::spawn_reloader(config.rules.clone(), set, shutdown.clone())
                .context("installing the SIGHUP handler")?;
        stage.follow(rx);
        tasks.push(task);
    }
    if config.rules.console {
        stage.add_sink(Box::new(ConsoleAlerts::new(std::io::stdout(), opts.json)));
    }
    if let Some(am) = &config.sinks.alertmanager {
        let (sink, task) = alertmanager::start(am).context("starting the Alertmanager sink")?;
        stage.add_sink(Box::new(sink));
        tasks.push(task);
    }
    Ok((stage, tasks))
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

/// Cancels `shutdown` on SIGINT, SIGTERM or after `run_for`.
fn spawn_signal_watch(
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
