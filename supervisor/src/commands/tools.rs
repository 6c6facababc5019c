//! `eunomia tools ...`: the supervised libbpf-tools: list them with their
//! status on this machine, run one in the foreground, stop one in the agent.

use std::{io::Write as _, path::Path, time::Duration};

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::{
    BadInput,
    cli::{ManifestArgs, ToolsStartArgs},
    config::Config,
    pipeline::{self, Message},
    tools::{
        Manifest, RunnerOptions, Supervisor, ToolState, ToolsConfig,
        avail::{Availability, Kernel, ToolStatus},
        print::RecordPrinter,
    },
};

/// The `[tools]` configuration with the command line's manifest overrides.
fn tools_config(args: &ManifestArgs) -> anyhow::Result<(Config, ToolsConfig)> {
    let config = Config::load(args.config.as_deref()).map_err(|e| BadInput(e.to_string()))?;
    let mut tools = config.tools.clone();
    if let Some(m) = &args.manifest {
        tools.manifest = Some(m.clone());
    }
    for dir in &args.manifest_dirs {
        if !dir.is_dir() {
            return Err(
                BadInput(format!("--manifest-dir {}: not a directory", dir.display())).into(),
            );
        }
        tools.manifest_dirs.push(dir.clone());
    }
    tools
        .validate()
        .map_err(|e| BadInput(format!("configuration: {e}")))?;
    Ok((config, tools))
}

fn load_manifest(tools: &ToolsConfig) -> anyhow::Result<Manifest> {
    Ok(Manifest::load(tools).map_err(|e| BadInput(e.to_string()))?)
}

/// Lists the manifest's tools and whether each can run here.
pub fn list(json: bool, args: &ManifestArgs) -> anyhow::Result<()> {
    let (_, config) = tools_config(args)?;
    let manifest = load_manifest(&config)?;
    let kernel = Kernel::new();
    // The control API (a later issue) will say which tools the agent runs;
    // until then `running` is unknown.
    let running: Option<&[String]> = None;
    let mut out = std::io::stdout().lock();
    if !json {
        writeln!(
            out,
            "{:<16} {:<15} {:<5} DESCRIPTION",
            "NAME", "STATUS", "AGENT"
        )?;
    }
    for spec in manifest.tools() {
        let avail = kernel.check(spec, &config.search_dirs);
        let agent = running.map(|r| r.iter().any(|n| *n == *spec.name));
        if json {
            let row = ToolStatus {
                name: spec.name.to_string(),
                description: spec.description.clone(),
                status: avail.code(),
                reason: match &avail {
                    Availability::Unsupported(why) => Some(why.clone()),
                    _ => None,
                },
                binary: match &avail {
                    Availability::Ready(p) => Some(p.display().to_string()),
                    _ => Some(spec.binary.clone()),
                },
                output: spec.output.as_str(),
                parser: spec.parser_label(),
                running: agent,
                source: spec.origin.to_string(),
            };
            serde_json::to_writer(&mut out, &row)?;
            writeln!(out)?;
            continue;
        }
        let word = match &avail {
            Availability::Ready(_) => "ready",
            Availability::MissingBinary => "missing binary",
            Availability::Unsupported(_) => "unsupported",
        };
        let agent = match agent {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        writeln!(
            out,
            "{:<16} {word:<15} {agent:<5} {}",
            spec.name, spec.description
        )?;
        if let Availability::Unsupported(why) = &avail {
            writeln!(out, "{:<16} └ {why}", "")?;
        }
    }
    Ok(())
}

/// Runs a tool in the foreground (no agent) and prints its records.
pub fn start(args: ToolsStartArgs) -> anyhow::Result<()> {
    if !args.foreground && args.socket.exists() {
        anyhow::bail!(
            "an agent's control socket exists at {}, but this build cannot ask the agent to \
             start `{}` yet; use --foreground to run it here",
            args.socket.display(),
            args.name
        );
    }
    let (config, tools) = tools_config(&args.manifest)?;
    let manifest = load_manifest(&tools)?;
    if manifest.get(&args.name).is_none() {
        return Err(BadInput(format!(
            "no tool named `{}` in the manifest ({}); see `eunomia tools list`",
            args.name,
            manifest.files.join(", ")
        ))
        .into());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(foreground(args, config, tools, manifest))
}

async fn foreground(
    args: ToolsStartArgs,
    config: Config,
    tools: ToolsConfig,
    manifest: Manifest,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    watch_signals(shutdown.clone(), args.run_for)?;
    let (tx, mut rx) = pipeline::channel(config.agent.channel_capacity);
    let supervisor = Supervisor::new(manifest, tools.clone(), tx.clone(), shutdown.clone());
    let opts = RunnerOptions {
        interval: args.interval,
        // In the foreground a tool that cannot attach is reported at once.
        fail_fast: true,
        ..RunnerOptions::from_config(&tools)
    };
    let handle = supervisor
        .start(&args.name, &args.args, opts, args.force)
        .map_err(|e| match e {
            crate::tools::StartError::Unknown(_) | crate::tools::StartError::NeedsArgs { .. } => {
                anyhow::Error::new(BadInput(e.to_string()))
            }
            other => anyhow::Error::new(other),
        })?;
    drop(tx);
    let mut printer = RecordPrinter::new(std::io::stdout().lock(), args.json);
    let mut task = handle.task;
    let mut done = false;
    while !done {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => print(&mut printer, msg)?,
                None => break,
            },
            r = &mut task => {
                r.context("the tool's runner panicked")?;
                done = true;
            }
        }
    }
    while let Ok(msg) = rx.try_recv() {
        print(&mut printer, msg)?;
    }
    let s = &handle.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        tool = %s.tool,
        lines = load(&s.lines),
        records = load(&s.records),
        parse_errors = load(&s.parse_errors),
        restarts = load(&s.restarts),
        dropped = load(&s.dropped),
        "done"
    );
    match s.state() {
        ToolState::Failed(why) => anyhow::bail!("{} failed: {why}", s.tool),
        _ => Ok(()),
    }
}

fn print<W: std::io::Write>(p: &mut RecordPrinter<W>, msg: Message) -> anyhow::Result<()> {
    if let Message::Record(r) = msg {
        match p.print(&r.record) {
            Ok(()) => {}
            // The reader went away (`| head`): stop quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            Err(e) => return Err(e).context("writing to stdout"),
        }
    }
    Ok(())
}

/// Cancels `shutdown` on SIGINT, SIGTERM or after `run_for`.
fn watch_signals(shutdown: CancellationToken, run_for: Option<Duration>) -> anyhow::Result<()> {
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

/// Asks the running agent to stop a tool.
pub fn stop(name: &str, socket: &Path) -> anyhow::Result<()> {
    if !socket.exists() {
        anyhow::bail!(
            "no agent is running (no control socket at {}), so no `{name}` to stop; \
             a foreground `eunomia tools start` stops with Ctrl-C",
            socket.display()
        );
    }
    anyhow::bail!(
        "a control socket exists at {}, but this build cannot ask the agent to stop `{name}` yet",
        socket.display()
    )
}
