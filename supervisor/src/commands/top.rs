//! `eunomia top`: the live per-workload view. Snapshots come from the
//! running agent (control socket) or, without one, from a hot path loaded
//! here; they are drawn in the terminal (refreshing in place, restored on
//! exit) or printed as JSON lines with `--json`.

use std::{
    io::Write as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use ratatui::{
    DefaultTerminal,
    crossterm::event::{self, Event, KeyEventKind},
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::remote;
use crate::{
    BadInput,
    cli::live::TopArgs,
    config::Config,
    live::Ledger,
    top::{
        App,
        app::Action,
        feed::{self, Update},
        render,
    },
};

/// Runs `eunomia top`.
pub(crate) fn top(args: TopArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let shutdown = CancellationToken::new();
    let (tx, rx) = mpsc::channel(8);
    let source = rt.block_on(start_feed(&args, tx, shutdown.clone()))?;
    let stop = Arc::new(AtomicBool::new(false));
    rt.spawn(watch_signals(stop.clone(), shutdown.clone()));
    let deadline = args.run_for.map(|d| Instant::now() + d);
    let result = if args.json {
        rt.block_on(print_json(rx, deadline, shutdown.clone()))
    } else {
        let mut app = App::new(source);
        app.filter = args.filter.clone().unwrap_or_default().to_lowercase();
        run_tui(&mut app, rx, deadline, &stop)
    };
    shutdown.cancel();
    rt.shutdown_timeout(Duration::from_secs(5));
    result
}

/// Connects to the agent, or loads the hot path here; returns where the
/// snapshots come from.
async fn start_feed(
    args: &TopArgs,
    tx: mpsc::Sender<Update>,
    shutdown: CancellationToken,
) -> anyhow::Result<String> {
    if !args.standalone
        && let Some(client) = remote::connect_if_running(&args.socket).await?
    {
        tokio::spawn(feed::from_agent(client, tx));
        return Ok(format!("agent {}", args.socket.display()));
    }
    let config = Config::load(args.config.as_deref()).map_err(|e| BadInput(e.to_string()))?;
    feed::standalone(&config, args.interval, Ledger::default(), tx, shutdown);
    Ok("hot path loaded here (no agent)".to_owned())
}

/// SIGTERM and SIGINT (outside the terminal's raw mode) end the view.
async fn watch_signals(stop: Arc<AtomicBool>, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    stop.store(true, Ordering::Relaxed);
    shutdown.cancel();
}

/// `--json`: one snapshot per line until the deadline, a signal, or the
/// end of the feed (an error unless we were stopping).
async fn print_json(
    mut rx: mpsc::Receiver<Update>,
    deadline: Option<Instant>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let until = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    loop {
        let update = tokio::select! {
            _ = &mut until => return Ok(()),
            _ = shutdown.cancelled() => return Ok(()),
            u = rx.recv() => u,
        };
        match update {
            Some(Update::Snapshot(s, _)) => {
                let mut out = std::io::stdout().lock();
                serde_json::to_writer(&mut out, &s)?;
                writeln!(out)?;
                out.flush()?;
            }
            Some(Update::Ended(why)) if !shutdown.is_cancelled() => anyhow::bail!("{why}"),
            _ => return Ok(()),
        }
    }
}

/// The terminal view until q, Ctrl-C, a signal or the deadline; the
/// terminal is restored whatever happens (also on a panic: ratatui's hook).
fn run_tui(
    app: &mut App,
    rx: mpsc::Receiver<Update>,
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let result = ui_loop(&mut terminal, app, rx, deadline, stop);
    ratatui::try_restore().context("restoring the terminal")?;
    result
}

fn ui_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    mut rx: mpsc::Receiver<Update>,
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    loop {
        while let Ok(update) = rx.try_recv() {
            match update {
                Update::Snapshot(s, lagged) => {
                    app.lagged += lagged;
                    app.update(*s);
                }
                // Nothing was ever shown: fail like --json would.
                Update::Ended(why) if app.snapshots == 0 => anyhow::bail!("{why}"),
                Update::Ended(why) => app.error = Some(why),
            }
        }
        terminal.draw(|f| render::draw(f, app)).context("drawing")?;
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        if event::poll(Duration::from_millis(200)).context("reading the terminal")?
            && let Event::Key(key) = event::read().context("reading the terminal")?
            && key.kind == KeyEventKind::Press
            && app.key(key) == Action::Quit
        {
            return Ok(());
        }
    }
}
