//! `eunomia tools ...`: the supervised libbpf-tools: list them with their
//! status on this machine, run one in the foreground, stop one in the agent.

use std::{io::Write as _, path::Path};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::remote;
use crate::{
    BadInput,
    cli::{ManifestArgs, ToolsStartArgs},
    config::Config,
    control::{
        client::{self, ClientError},
        proto,
    },
    enrich::{Enricher, Resolver, WorkloadFilter},
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

/// Which tools the agent at `socket` runs; `None` (with a warning when an
/// agent should be there) when it cannot be asked.
fn agent_running(socket: &Path) -> Option<Vec<String>> {
    let asked = remote::block_on(async {
        let Some(mut client) = remote::connect_if_running(socket).await? else {
            return Ok(None);
        };
        let tools = client
            .list_tools(proto::ListToolsRequest {})
            .await
            .map_err(remote::answer_error)?
            .into_inner()
            .tools;
        Ok(Some(
            tools
                .into_iter()
                .filter(|t| t.running)
                .map(|t| t.name)
                .collect(),
        ))
    });
    asked.unwrap_or_else(|e| {
        eprintln!("eunomia: warning: AGENT column unknown: {e:#}");
        None
    })
}

/// Lists the manifest's tools, whether each can run here and whether the
/// running agent runs it.
pub fn list(json: bool, args: &ManifestArgs, socket: &Path) -> anyhow::Result<()> {
    let (_, config) = tools_config(args)?;
    let manifest = load_manifest(&config)?;
    let kernel = Kernel::new();
    let running = agent_running(socket);
    let running = running.as_deref();
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

/// Asks the running agent to start a tool, or (no agent, or
/// `--foreground`) runs it here and prints its records.
pub fn start(args: ToolsStartArgs) -> anyhow::Result<()> {
    if !args.foreground && !filter_of(&args).is_empty() {
        // Filtering needs the events here: run the tool in the foreground.
        return start_foreground(args);
    }
    if !args.foreground {
        let socket = args.socket.clone();
        let probe = remote::block_on(async move { Ok(client::connect(&socket).await) })?;
        match probe {
            Ok(_) => return remote::block_on(start_in_agent(args)),
            Err(ClientError::NoAgent(_)) => {}
            // No agent after all: run here, as without one.
            Err(e @ ClientError::Stale(_)) => {
                eprintln!(
                    "eunomia: warning: {e}; running `{}` in the foreground",
                    args.name
                );
            }
            Err(e) => {
                return Err(e).context("use --foreground to run the tool here without the agent");
            }
        }
    }
    start_foreground(args)
}

/// The selection of `--container`, `--pod` and `--namespace`.
fn filter_of(args: &ToolsStartArgs) -> WorkloadFilter {
    WorkloadFilter {
        container: args.container.clone(),
        pod: args.pod.clone(),
        namespace: args.namespace.clone(),
    }
}

fn start_foreground(args: ToolsStartArgs) -> anyhow::Result<()> {
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
    crate::agent::spawn_signal_watch(shutdown.clone(), args.run_for)?;
    // The kernel's record of processes, which the tool's records are checked
    // against (and which still knows a process that has already exited).
    let _pids = crate::hotpath::watch_pids(&config.hotpath)
        .context("loading the pid probe the tools' records are checked against")?;
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
    let pid_map = start_pid_map(&config, &tx, &shutdown);
    drop(tx);
    let mut out = Output {
        printer: RecordPrinter::new(std::io::stdout().lock(), args.json),
        enricher: config.enrich.enabled.then(|| {
            let mut resolver = Resolver::new(&config.enrich);
            if let Some(pids) = pid_map {
                resolver.set_pid_lookup(std::sync::Arc::new(move |pid| pids.cgroup_of_pid(pid)));
            }
            Enricher::new(resolver)
        }),
        filter: filter_of(&args),
    };
    if out.enricher.is_none() && !out.filter.is_empty() {
        return Err(BadInput(
            "--container, --pod and --namespace need enrich.enabled = true".into(),
        )
        .into());
    }
    let mut task = handle.task;
    let mut done = false;
    while !done {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => out.print(msg)?,
                None => break,
            },
            r = &mut task => {
                r.context("the tool's runner panicked")?;
                done = true;
            }
        }
    }
    while let Ok(msg) = rx.try_recv() {
        out.print(msg)?;
    }
    let s = &handle.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        tool = %s.tool,
        lines = load(&s.lines),
        records = load(&s.records),
        parse_errors = load(&s.parse_errors),
        rejected = s.rejected.iter().map(load).sum::<u64>(),
        continued = load(&s.continued_lines),
        restarts = load(&s.restarts),
        dropped = load(&s.dropped),
        "done"
    );
    match s.state() {
        ToolState::Failed(why) => anyhow::bail!("{} failed: {why}", s.tool),
        _ => Ok(()),
    }
}

/// The hot path's pid → cgroup map alone (no syscall or TCP probe), so
/// that the foreground names processes that exited before `/proc` was read,
/// and ones that moved into a container just before they exec'd. Without
/// it (BPF not loadable, or `hotpath.pids = false`) `/proc` is read.
fn start_pid_map(
    config: &Config,
    tx: &pipeline::PipelineTx,
    shutdown: &CancellationToken,
) -> Option<crate::hotpath::PidCgroups> {
    if !(config.enrich.enabled && config.hotpath.pids) {
        return None;
    }
    let pids_only = crate::hotpath::HotpathConfig {
        syscalls: false,
        tcp: false,
        ..config.hotpath.clone()
    };
    let interval = config.agent.poll_interval;
    match crate::hotpath::poller::start(&pids_only, interval, tx.clone(), shutdown.clone()) {
        Ok(_) => crate::hotpath::pid_cgroups(),
        Err(e) => {
            tracing::warn!("no kernel pid map ({e}); containers are resolved from /proc");
            None
        }
    }
}

/// The foreground's output: records enriched like the agent's (container
/// and pod of each pid), selected, printed.
struct Output<W: std::io::Write> {
    printer: RecordPrinter<W>,
    enricher: Option<Enricher>,
    filter: WorkloadFilter,
}

impl<W: std::io::Write> Output<W> {
    fn print(&mut self, mut msg: Message) -> anyhow::Result<()> {
        if let Some(enricher) = &mut self.enricher {
            enricher.enrich(&mut msg);
        }
        let Message::Record(r) = msg else {
            return Ok(());
        };
        if !self.filter.matches(r.workload.as_deref()) {
            return Ok(());
        }
        let workload = self.enricher.as_ref().and(r.workload.as_deref());
        match self.printer.print_enriched(&r.record, workload) {
            Ok(()) => Ok(()),
            // The reader went away (`| head`): stop quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            Err(e) => Err(e).context("writing to stdout"),
        }
    }
}

/// Asks the running agent to stop a tool and prints the state it ended in.
pub fn stop(name: &str, socket: &Path) -> anyhow::Result<()> {
    remote::block_on(async {
        let mut client = remote::connect(socket).await?;
        let r = client
            .stop_tool(proto::StopToolRequest { name: name.into() })
            .await
            .map_err(remote::answer_error)?
            .into_inner();
        let state = r.tool.map_or_else(|| "stopped".into(), |t| t.state);
        println!("{name}: {state}");
        Ok(())
    })
}

/// `tools start` with an agent: asks it to start the tool, then (with
/// `--follow`) prints the tool's live events until `--for` or Ctrl-C.
async fn start_in_agent(args: ToolsStartArgs) -> anyhow::Result<()> {
    let mut client = remote::connect(&args.socket).await?;
    let started = client
        .start_tool(proto::StartToolRequest {
            name: args.name.clone(),
            args: args.args.clone(),
            force: args.force,
        })
        .await
        .map_err(remote::answer_error)?
        .into_inner();
    let state = started.tool.map_or_else(String::new, |t| t.state);
    eprintln!("eunomia: `{}` started in the agent ({state})", args.name);
    if !args.follow {
        return Ok(());
    }
    let mut stream = client
        .stream_events(proto::StreamEventsRequest {
            tools: vec![args.name.clone()],
            ..Default::default()
        })
        .await
        .map_err(remote::answer_error)?
        .into_inner();
    let shutdown = CancellationToken::new();
    crate::agent::spawn_signal_watch(shutdown.clone(), args.run_for)?;
    let mut out = std::io::stdout().lock();
    loop {
        let line = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = stream.message() => match m.map_err(remote::answer_error)? {
                Some(line) => line,
                None => return Ok(()),
            },
        };
        if line.lagged > 0 {
            eprintln!(
                "eunomia: {} events missed (this reader was too slow)",
                line.lagged
            );
        }
        let written = match args.json {
            true => writeln!(out, "{}", line.json),
            false => writeln!(out, "{}", event_text(&line.json)),
        };
        match written.and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e).context("writing to stdout"),
        }
    }
}

/// One event of the stream as `kind key=value ...` (JSON keys in order,
/// without the timestamp and tool).
fn event_text(json: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(json) else {
        return json.to_owned();
    };
    let mut words = vec![
        map.get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("event")
            .to_owned(),
    ];
    for (k, v) in &map {
        if matches!(k.as_str(), "ts_ns" | "tool" | "kind") {
            continue;
        }
        match v {
            serde_json::Value::String(s) => words.push(format!("{k}={s}")),
            other => words.push(format!("{k}={other}")),
        }
    }
    words.join(" ")
}
