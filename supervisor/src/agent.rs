//! The agent: starts every configured source (hot path, supervised tools),
//! runs the pipeline until SIGINT, SIGTERM or the end of `--for`, then stops
//! the sources, lets them flush their last interval, and drains the pipeline.

use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::{config::Config, hotpath, pipeline, sinks::console::Console, systemd, tools};

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

    let mut console =
        Console::new(std::io::stdout().lock(), opts.json, opts.top).with_samples(opts.samples);
    while let Some(msg) = rx.recv().await {
        console.handle(&msg).context("writing to stdout")?;
    }
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
