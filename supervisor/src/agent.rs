//! The agent: starts every configured source (hot path, supervised tools),
//! runs the pipeline until SIGINT, SIGTERM or the end of `--for`, then stops
//! the sources, lets them flush their last interval, and drains the pipeline.

use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    hotpath, pipeline,
    pipeline::Message,
    rules::{ConsoleAlerts, NoLabels, RulesStage, stage::MaybeEvent},
    sinks::{alertmanager, console::Console},
    systemd, tools,
};

/// How `eunomia run` was asked to behave beyond its configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop after this long.
    pub run_for: Option<Duration>,
    /// Print summaries as JSON lines.
    pub json: bool,
    /// Syscalls per summary.
    pub top: usize,
}

/// Runs the agent to completion.
pub async fn run(config: Config, opts: RunOptions) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    // Handlers first, so a signal that arrives while loading still ends us cleanly.
    spawn_signal_watch(shutdown.clone(), opts.run_for)?;

    let (mut rules, mut sink_tasks) = start_rules(&config, &opts, &shutdown)?;
    let (tx, mut rx) = pipeline::channel(config.agent.channel_capacity);
    let mut sources = Vec::new();
    sources.extend(
        hotpath::poller::start(
            &config.hotpath,
            config.agent.poll_interval,
            tx.clone(),
            shutdown.clone(),
        )
        .context("loading the hot-path probes")?,
    );
    sources.extend(tools::start_enabled(
        &config.tools,
        tx.clone(),
        shutdown.clone(),
    )?);
    let stats = tx.stats().clone();
    drop(tx);
    systemd::ready();
    systemd::spawn_watchdog(shutdown.clone());
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            systemd::stopping();
        }
    });

    let mut console = Console::new(std::io::stdout().lock(), opts.json, opts.top);
    while let Some(msg) = rx.recv().await {
        // Rules run after enrichment. Until the enrichment stage attaches
        // container/pod labels here, events are evaluated without them.
        if let Message::Record(r) = &msg
            && let Some(event) = r.record.event()
        {
            rules.on_event(event, &NoLabels);
        }
        console.handle(&msg).context("writing to stdout")?;
    }
    let rule_stats = rules.engine().stats();
    drop(rules);
    for task in sink_tasks.drain(..) {
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
    for source in sources {
        source.await.context("a source task panicked")?;
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
///
/// OTLP logs: the export sink plugs in here by implementing
/// [`crate::rules::AlertSink`] and being added with [`RulesStage::add_sink`].
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
