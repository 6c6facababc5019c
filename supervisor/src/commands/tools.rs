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
    context::{AgentContext, PidLookup},
    control::{
        client::{self, ClientError},
        proto,
    },
    enrich::{Enricher, Resolver, WorkloadFilter},
    pipeline::{self, Message},
    tools::{
        Manifest, RunnerOptions, Supervisor, ToolState, ToolsConfig,
        avail::{self, Availability, ToolStatus},
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
pub(crate) fn list(json: bool, args: &ManifestArgs, socket: &Path) -> anyhow::Result<()> {
    let (_, config) = tools_config(args)?;
    let manifest = load_manifest(&config)?;
    let kernel = crate::host::kernel::Kernel::new();
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
        let avail = avail::check(&kernel, spec, &config.search_dirs);
        let agent = running.map(|r| r.iter().any(|n| *n == *spec.name));
        if json {
            let row = ToolStatus {
                name: spec.name.to_string(),
                description: spec.description.clone(),
                status: avail.code(),
                reason: match &avail {
                    Availability::Unsupported(why) | Availability::Refused(why) => {
                        Some(why.clone())
                    }
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
            Availability::Refused(_) => "refused",
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
        if let Availability::Unsupported(why) | Availability::Refused(why) = &avail {
            writeln!(out, "{:<16} └ {why}", "")?;
        }
    }
    Ok(())
}

/// Asks the running agent to start a tool, or (no agent, or
/// `--foreground`) runs it here and prints its records.
pub(crate) fn start(args: ToolsStartArgs) -> anyhow::Result<()> {
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
    let (tx, mut rx) = pipeline::channel(config.agent.channel_capacity);
    let mut ctx = AgentContext::new(tx, shutdown.clone());
    // Before the tool: the kernel's record of processes, which its records
    // are checked against and enriched from (it still knows a process that
    // has already exited).
    let kind = manifest.get(&args.name).and_then(|t| t.event_kind);
    ctx.pids = start_pid_map(&config, kind, &ctx);
    let supervisor = Supervisor::new(manifest, tools.clone(), &ctx);
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
    let pids = ctx.pids.clone();
    drop(ctx);
    let mut out = Output {
        printer: RecordPrinter::new(std::io::stdout().lock(), args.json),
        enricher: config.enrich.enabled.then(|| {
            let mut resolver = Resolver::new(&config.enrich);
            resolver.set_pid_lookup(std::sync::Arc::new(pids));
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
    kind: Option<crate::tools::pa::EventKind>,
    ctx: &AgentContext,
) -> PidLookup {
    if !config.hotpath.pids {
        tracing::warn!(
            "hotpath.pids = false: the tool's records are checked against /proc only \
             (records of processes that already exited are rejected)"
        );
        return PidLookup::default();
    }
    let mut pids_only = crate::hotpath::HotpathConfig {
        syscalls: crate::hotpath::SyscallCounting::Off,
        tcp: false,
        execs: false,
        mounts: false,
        ..config.hotpath.clone()
    };
    pids_only.check_strings_of(kind);
    let interval = config.agent.poll_interval;
    match crate::hotpath::poller::start(&pids_only, interval, ctx) {
        Ok(started) => started.map(|s| s.pids).unwrap_or_default(),
        Err(e) => {
            tracing::warn!("no kernel pid map ({e}); containers are resolved from /proc");
            PidLookup::default()
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
pub(crate) fn stop(name: &str, socket: &Path) -> anyhow::Result<()> {
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

/// `tools start` with an agent: asks it to start the tool (one it already
/// runs is fine), says the state the tool settled in, then (with `--follow`)
/// prints the tool's live records until `--for` or Ctrl-C, as the
/// foreground mode prints them.
async fn start_in_agent(args: ToolsStartArgs) -> anyhow::Result<()> {
    let mut client = remote::connect(&args.socket).await?;
    let asked = client
        .start_tool(proto::StartToolRequest {
            name: args.name.clone(),
            args: args.args.clone(),
            force: args.force,
        })
        .await;
    let verb = match asked {
        Ok(_) => "started in the agent",
        Err(s) if s.code() == tonic::Code::AlreadyExists => "already running in the agent",
        Err(s) => return Err(remote::answer_error(s)),
    };
    let tool = settled_state(&mut client, &args.name).await?;
    eprintln!("eunomia: `{}` {verb}: {}", args.name, state_text(&tool));
    if tool.state == "failed" {
        anyhow::bail!("`{}` failed in the agent: {}", args.name, tool.detail);
    }
    if !args.follow {
        return Ok(());
    }
    follow(&mut client, &args).await
}

/// The tool's counters once it has left `starting` (or after 5 s).
async fn settled_state(
    client: &mut crate::control::client::Client,
    name: &str,
) -> anyhow::Result<proto::ToolCounters> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let status = client
            .status(proto::StatusRequest {})
            .await
            .map_err(remote::answer_error)?
            .into_inner();
        let tool = status.tools.into_iter().find(|t| t.name == name);
        match tool {
            Some(t) if t.state != "starting" || tokio::time::Instant::now() >= deadline => {
                return Ok(t);
            }
            None if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("the agent does not list `{name}` after starting it")
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// `running (pid 42)`, `failed: why`, `restarting`, ...
fn state_text(t: &proto::ToolCounters) -> String {
    match (t.state.as_str(), t.detail.as_str()) {
        (s, "") => s.to_owned(),
        ("running", pid) => format!("running (pid {pid})"),
        (s, detail) => format!("{s}: {detail}"),
    }
}

/// Prints the tool's records from the agent's stream until `--for`, Ctrl-C
/// or the agent ends the stream.
async fn follow(
    client: &mut crate::control::client::Client,
    args: &ToolsStartArgs,
) -> anyhow::Result<()> {
    let mut printer = RecordPrinter::new(std::io::stdout().lock(), args.json);
    let request = proto::StreamEventsRequest {
        tools: vec![args.name.clone()],
        ..Default::default()
    };
    remote::follow(client, request, args.run_for, "records", |line| {
        remote::written(printer.print_object(&remote::json_object(line)?))
    })
    .await
}
