//! The command line: every subcommand, flag and help text of `eunomia`.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

pub(crate) mod live;

/// eBPF observability and security agent.
///
/// eunomia counts syscalls and TCP connections in the kernel at near-zero cost,
/// supervises libbpf-tools tracers, says which container and pod did what,
/// evaluates security rules and exports metrics, events and alerts.
#[derive(Debug, Parser)]
#[command(
    name = "eunomia",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Log filter: error, warn, info, debug, trace, or a tracing directive
    /// such as `eunomia=debug`. Overrides RUST_LOG.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Load configuration, manifests and rules and run tool binaries even
    /// when they are not owned by root or are writable by group or others
    /// (for development; also `EUNOMIA_INSECURE_FILES=1`).
    #[arg(long, global = true)]
    pub insecure_files: bool,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// The log level when neither `--log-level` nor `RUST_LOG` says one:
    /// `info` for the agent, `warn` for every other command.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Run(_) => "info",
            _ => "warn",
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the agent in the foreground (systemd runs this).
    ///
    /// Loads the hot-path BPF programs, polls their kernel maps every
    /// interval and prints a summary of each interval. Stops on SIGINT or
    /// SIGTERM (or after --for), detaching every program it loaded.
    Run(RunArgs),
    /// List and run the supervised libbpf-tools tracers.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Show the running agent: sources, rates, drops, sinks.
    Status(StatusArgs),
    /// Print the version of eunomia and of the kernel it runs on.
    Version,
    /// Validate a configuration file, or print the documented default one.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Make a flame graph of where a process, a container or the host
    /// spends its CPU time.
    ///
    /// Samples user and kernel stacks with a perf-event BPF program on the
    /// software CPU clock (works in VMs), symbolizes them (ELF symbols, debug
    /// info, demangled Rust and C++ names; kernel from /proc/kallsyms) and
    /// renders an SVG with inferno. Without --pid, --cgroup or --container
    /// the whole host is sampled.
    Flamegraph(FlamegraphArgs),
    /// Validate and list security rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Watch every container, pod, systemd service and the host live:
    /// syscalls, errors, TCP, bytes, CPU and memory per second.
    ///
    /// A terminal view that refreshes in place: sort by any column (< >,
    /// r reverses), filter (/), drill into one workload (Enter: its
    /// syscalls and TCP peers; Esc: back), quit with q or Ctrl-C. Reads
    /// the running agent's snapshots over the control socket; without an
    /// agent it loads the hot path itself (root). --json prints one
    /// snapshot per interval as a JSON line.
    Top(crate::cli::live::TopArgs),
    /// Watch live HTTP requests: one line each with the workload (container,
    /// pod, service or process), method, path, status, duration and peer.
    ///
    /// Without an agent, this command loads the HTTP capture itself (root)
    /// and shows every request it sees, server and client side. Only
    /// connections opened after it started are followed (a keep-alive
    /// connection opened before stays unseen), and HTTP/1.x only (TLS and
    /// other protocols are ignored). Requests the capture could not deliver
    /// (a full ring buffer, a response without its request, a second
    /// request pipelined in one read) are counted on stderr, by reason.
    ///
    /// With an agent running whose HTTP capture is on (`[http] enabled =
    /// true`), its span events are read over the control socket instead:
    /// only the requests it keeps as spans (every error and slow request
    /// and `[http] sample_ratio` of the others). --standalone loads the
    /// capture here anyway, to see every request; an agent whose capture
    /// is off is not followed.
    ///
    /// --json prints each request as a JSON line (its span event, with the
    /// workload's labels).
    Http(HttpArgs),
    /// Advice from what workloads really did.
    #[command(subcommand)]
    Advise(crate::cli::live::AdviseCommand),
    /// Draw the service map of this host: who calls whom, how often, how
    /// many fail and how slow.
    ///
    /// Reads the running agent's map over the control socket (HTTP
    /// requests linked across processes and containers, TCP connections)
    /// and writes an SVG: nodes named by pod, container or service, edges
    /// labelled with requests per second, error % and p99. --json prints
    /// the edges, the latest linked spans and the link outcomes instead.
    Map(MapArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell), generated from this command line's definition.
    ///
    /// e.g. `eunomia completions bash > /etc/bash_completion.d/eunomia`
    /// (scripts/install.sh installs them).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of eunomia and its subcommands, generated
    /// from this command line's definition.
    ///
    /// e.g. `eunomia man > /usr/local/share/man/man1/eunomia.1`, or with
    /// --dir one page per subcommand too (scripts/install.sh installs them).
    Man {
        /// Write `eunomia.1` and `eunomia-SUBCOMMAND.1` pages into DIR
        /// instead of printing the main page.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `eunomia rules ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum RulesCommand {
    /// Check rules files: print each error as `file:line:col: message` with
    /// the offending text underlined (exit code 2), or list the rules loaded.
    Check(RulesCheckArgs),
}

/// Arguments of `eunomia rules check`.
#[derive(Debug, Args)]
pub(crate) struct RulesCheckArgs {
    /// Rules files or directories (their `*.toml` files, in name order).
    #[arg(value_name = "FILE", required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Load the built-in default rules first, as the agent does, so the
    /// files may use their lists and macros.
    #[arg(long)]
    pub(crate) with_defaults: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `eunomia flamegraph`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").args(["pid", "cgroup", "container"])))]
pub(crate) struct FlamegraphArgs {
    /// Profile this process (all its threads).
    #[arg(long, value_name = "PID")]
    pub(crate) pid: Option<u32>,
    /// Profile every process of this cgroup v2 directory (absolute, or
    /// relative to the v2 root, e.g. `system.slice/nginx.service`).
    #[arg(long, value_name = "PATH")]
    pub(crate) cgroup: Option<PathBuf>,
    /// Profile this container: its name, id, or an id prefix of at least 4
    /// digits (docker, podman, containerd, CRI; names from the runtimes'
    /// files where `--config`'s `[enrich]` section says they are).
    #[arg(long, value_name = "NAME|ID")]
    pub(crate) container: Option<String>,
    /// Configuration file whose `[enrich]` section applies (default
    /// /etc/eunomia/eunomia.toml when it exists).
    #[arg(long, short, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// How long to sample.
    #[arg(long = "for", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Samples per second per CPU.
    #[arg(long, value_name = "HZ", default_value_t = 49, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) freq: u64,
    /// Off-CPU time (where it blocks) instead of on-CPU time.
    #[arg(long)]
    pub(crate) off_cpu: bool,
    /// Only user-space frames (skip kernel stacks).
    #[arg(long)]
    pub(crate) user_only: bool,
    /// How user stacks are unwound: `fp` walks frame pointers in the kernel;
    /// `dwarf` copies the top 16 KiB of each sampled user stack and unwinds
    /// it with the binaries' `.eh_frame` tables (complete stacks for
    /// optimized code built without frame pointers); `auto` picks per
    /// program.
    #[arg(long, value_enum, default_value_t = crate::flamegraph::unwind::UnwindMode::Auto)]
    pub(crate) unwind: crate::flamegraph::unwind::UnwindMode,
    /// Also print what sampling cost: kernel time per sample (needs
    /// `sysctl kernel.bpf_stats_enabled=1`), unwinding time per sample and
    /// stack bytes copied.
    #[arg(long)]
    pub(crate) cost: bool,
    /// Write folded stacks (`frame;frame count` lines) instead of SVG.
    #[arg(long)]
    pub(crate) folded: bool,
    /// Compare with an earlier recording (folded stacks, as `--folded`
    /// writes them): a differential flame graph, red where stacks grew,
    /// blue where they shrank (the earlier one scaled to the same total).
    /// With `--folded`, writes `stack before after` lines.
    #[arg(long, value_name = "BEFORE.folded")]
    pub(crate) diff: Option<PathBuf>,
    /// The output file.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: PathBuf,
}

/// Arguments of `eunomia run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Configuration file (TOML). Without it the built-in defaults apply.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Stop after this long (e.g. `5s`, `2m`); default: run until signalled.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) run_for: Option<Duration>,
    /// How often to poll the kernel maps (e.g. `1s`); overrides the
    /// configuration's `agent.poll_interval` (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) interval: Option<Duration>,
    /// How many syscalls to show in each interval's summary.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub(crate) top: usize,
    /// Print each interval's summary as one JSON object per line.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also print every sample batch the sources produce (per-cgroup
    /// syscalls, TCP sessions, hot-path drop counters) as one JSON object
    /// per line: `{"source", "interval_s", "samples": [...]}`.
    #[arg(long)]
    pub(crate) samples: bool,
    /// The control API's socket; overrides `agent.control_socket`
    /// (default /run/eunomia/eunomia.sock).
    #[arg(long, value_name = "PATH", env = "EUNOMIA_SOCKET")]
    pub(crate) socket: Option<PathBuf>,
}

/// `eunomia tools ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ToolsCommand {
    /// List every tool of the manifest and whether it can run here.
    ///
    /// STATUS is `ready`, `missing binary` or `unsupported` (with the reason,
    /// read from the running kernel: tracepoints, kprobes, fentry, BTF).
    /// AGENT says whether the running agent has the tool started (`-` when
    /// no agent answers).
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        manifest: ManifestArgs,
        /// The running agent's control socket.
        #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, env = "EUNOMIA_SOCKET")]
        socket: PathBuf,
    },
    /// Start a tool in the running agent, or run it here.
    ///
    /// With a running agent, asks it to start the tool (its events then
    /// flow through the agent's pipeline; --follow also prints them here).
    /// Without one, or with --foreground, runs the tool in the foreground
    /// and prints its parsed records (a table, or JSON lines with --json)
    /// until --for ends or Ctrl-C; a tool that exits is restarted. Arguments
    /// after `--` are passed to the tool.
    Start(ToolsStartArgs),
    /// Ask the running agent to stop a tool.
    Stop {
        /// The tool's manifest name.
        name: String,
        /// The running agent's control socket.
        #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, env = "EUNOMIA_SOCKET")]
        socket: PathBuf,
    },
}

/// The running agent's control socket.
pub(crate) const DEFAULT_SOCKET: &str = "/run/eunomia/eunomia.sock";

/// Where the tools manifest comes from.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ManifestArgs {
    /// Configuration file whose `[tools]` section applies (default
    /// /etc/eunomia/eunomia.toml when it exists).
    #[arg(long, short, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Use this manifest instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub(crate) manifest: Option<PathBuf>,
    /// Also read every `*.toml` in this directory (repeatable); entries
    /// replace built-in ones of the same name.
    #[arg(long = "manifest-dir", value_name = "DIR")]
    pub(crate) manifest_dirs: Vec<PathBuf>,
}

/// Arguments of `eunomia http`.
#[derive(Debug, Args)]
pub(crate) struct HttpArgs {
    /// Stop after this long (e.g. `5s`); default: until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) run_for: Option<Duration>,
    /// One JSON object per request and line.
    #[arg(long)]
    pub(crate) json: bool,
    /// Only requests of this container (a prefix of its id).
    #[arg(long, value_name = "ID")]
    pub(crate) container: Option<String>,
    /// Load the HTTP capture in this process even when an agent runs, to
    /// see every request rather than the agent's sampled spans.
    #[arg(long)]
    pub(crate) standalone: bool,
    /// Without an agent: the configuration whose `[enrich]`, `[hotpath]`
    /// and `[http]` sections to use (where the runtimes keep their files).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The running agent's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, env = "EUNOMIA_SOCKET")]
    pub(crate) socket: PathBuf,
}

/// Arguments of `eunomia tools start`.
#[derive(Debug, Args)]
pub(crate) struct ToolsStartArgs {
    /// The tool's manifest name (see `eunomia tools list`).
    pub(crate) name: String,
    /// Stop after this long (e.g. `5s`); default: until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) run_for: Option<Duration>,
    /// One JSON object per record and line.
    #[arg(long)]
    pub(crate) json: bool,
    /// The printing interval of histogram and table tools.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
    pub(crate) interval: Duration,
    /// Run even when the tool looks unsupported on this kernel.
    #[arg(long)]
    pub(crate) force: bool,
    /// Run in the foreground even when an agent is running.
    #[arg(long)]
    pub(crate) foreground: bool,
    /// With an agent: after starting the tool, print its live events (JSON
    /// lines with --json) until --for ends or Ctrl-C.
    #[arg(long, conflicts_with = "foreground")]
    pub(crate) follow: bool,
    /// Only events of this container: its name, id, or an id prefix of at
    /// least 4 digits (in the foreground).
    #[arg(long, value_name = "NAME|ID")]
    pub(crate) container: Option<String>,
    /// Only events of this Kubernetes pod: its name or uid (in the foreground).
    #[arg(long, value_name = "NAME")]
    pub(crate) pod: Option<String>,
    /// Only events of pods in this Kubernetes namespace (in the foreground).
    #[arg(long, value_name = "NAME")]
    pub(crate) namespace: Option<String>,
    /// The running agent's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, env = "EUNOMIA_SOCKET")]
    pub(crate) socket: PathBuf,
    #[command(flatten)]
    pub(crate) manifest: ManifestArgs,
    /// Arguments passed to the tool after the manifest's.
    #[arg(last = true, value_name = "TOOL_ARGS")]
    pub(crate) args: Vec<String>,
}

/// `eunomia config ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate FILE (default: /etc/eunomia/eunomia.toml, or the built-in
    /// defaults when it does not exist); errors name the line and column.
    Check {
        /// The configuration file.
        file: Option<PathBuf>,
    },
    /// Print the documented default configuration file.
    Default,
}

/// Arguments of `eunomia map`.
#[derive(Debug, Args)]
pub(crate) struct MapArgs {
    /// Where the SVG goes (default: stdout).
    #[arg(short, long, value_name = "FILE.svg")]
    pub(crate) output: Option<PathBuf>,
    /// Print the map, the latest spans and the link outcomes as one JSON
    /// object instead.
    #[arg(long)]
    pub(crate) json: bool,
    /// The running agent's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, env = "EUNOMIA_SOCKET")]
    pub(crate) socket: PathBuf,
}

/// Arguments of `eunomia status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub(crate) json: bool,
    /// The running agent's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, env = "EUNOMIA_SOCKET")]
    pub(crate) socket: PathBuf,
}

/// Parses a human duration such as `5s`, `250ms` or `1m30s`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 5s, 250ms, 2m)"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse_and_zero_is_rejected() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("five").is_err());
    }
}
