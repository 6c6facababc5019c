//! `eunomia run`: the agent in the foreground. Loads the hot path, polls its
//! maps every interval, prints a summary of each interval, and on SIGINT,
//! SIGTERM or the end of `--for` prints the last (partial) interval and
//! detaches every program before exiting.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    cli::RunArgs,
    hotpath::{
        Hotpath,
        syscalls::{SyscallCounts, SyscallReader},
    },
};

/// Runs the agent until a signal or the end of `--for`.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.config {
        anyhow::bail!(crate::BadInput(format!(
            "{}: configuration files are not supported by this build yet",
            path.display()
        )));
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<()> {
    // Handlers first, so a signal that arrives while loading still ends us cleanly.
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let hotpath = Hotpath::load().context("loading the hot-path probes")?;
    let reader = SyscallReader::new(&hotpath)?;
    tracing::info!(interval = ?args.interval, "hot path attached; polling");
    let deadline = args.run_for.map(|d| tokio::time::Instant::now() + d);
    let mut ticker = tokio::time::interval(args.interval);
    ticker.tick().await; // the first tick is immediate

    let mut previous = reader.read()?;
    let mut since = Instant::now();
    loop {
        let last = tokio::select! {
            _ = ticker.tick() => false,
            _ = sigint.recv() => true,
            _ = sigterm.recv() => true,
            _ = sleep_until(deadline) => true,
        };
        let now = reader.read()?;
        report(&now.delta_since(&previous), since.elapsed(), &args)?;
        if last {
            break;
        }
        previous = now;
        since = Instant::now();
    }
    drop(hotpath);
    tracing::info!("detached; exiting");
    Ok(())
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// One interval's summary, as printed with `--json`.
#[derive(Debug, Serialize)]
struct IntervalSummary {
    interval_s: f64,
    syscalls_total: u64,
    syscalls_per_s: f64,
    top: Vec<TopEntry>,
}

#[derive(Debug, Serialize)]
struct TopEntry {
    syscall: &'static str,
    count: u64,
}

/// Prints one interval's summary to stdout.
fn report(delta: &SyscallCounts, elapsed: Duration, args: &RunArgs) -> anyhow::Result<()> {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let summary = IntervalSummary {
        interval_s: secs,
        syscalls_total: delta.total(),
        syscalls_per_s: delta.total() as f64 / secs,
        top: delta
            .top(args.top)
            .into_iter()
            .map(|(syscall, count)| TopEntry { syscall, count })
            .collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", format_summary(&summary));
    }
    Ok(())
}

fn format_summary(s: &IntervalSummary) -> String {
    let top: Vec<String> = s
        .top
        .iter()
        .map(|t| format!("{} {}", t.syscall, t.count))
        .collect();
    format!(
        "syscalls: {} in {:.1}s ({:.0}/s) | top: {}",
        s.syscalls_total,
        s.interval_s,
        s.syscalls_per_s,
        top.join(", ")
    )
}
