//! The command-line arguments of `eunomia top` and `eunomia advise`
//! (kept beside [`crate::cli`], which names them).

use std::{path::PathBuf, time::Duration};

use clap::{Args, Subcommand};

use crate::cli::{DEFAULT_SOCKET, parse_duration};

/// Arguments of `eunomia top`.
#[derive(Debug, Args)]
pub(crate) struct TopArgs {
    /// Print one snapshot per interval as a JSON line instead of the
    /// terminal view (for scripts).
    #[arg(long)]
    pub(crate) json: bool,
    /// Stop after this long (e.g. 30s); default: until q or Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) run_for: Option<Duration>,
    /// Show only workloads whose name, namespace, pod, kind or id contains
    /// this (also `/` in the view).
    #[arg(long, value_name = "TEXT")]
    pub(crate) filter: Option<String>,
    /// Load the hot path in this process even when an agent runs.
    #[arg(long)]
    pub(crate) standalone: bool,
    /// Without an agent: how often to refresh.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub(crate) interval: Duration,
    /// Without an agent: the configuration whose `[enrich]` and `[hotpath]`
    /// sections to use (where the runtimes keep their files).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The running agent's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, env = "EUNOMIA_SOCKET")]
    pub(crate) socket: PathBuf,
}

/// `eunomia advise ...`
#[derive(Debug, Subcommand)]
pub(crate) enum AdviseCommand {
    /// Write a seccomp profile (OCI/Docker JSON) that allows the syscalls a
    /// container really made.
    ///
    /// With an agent running, its per-container syscall counts are used:
    /// every syscall the container made since the agent started (the hot
    /// path counts them all, always on). Without one, this command loads
    /// the hot path and records for --for, then writes the profile.
    ///
    /// The profile denies every other syscall with EPERM
    /// (SCMP_ACT_ERRNO). It can only allow what was seen: code paths the
    /// container did not run while it was watched (error handling, rare
    /// requests, shutdown, a cron job, a health check not yet run) are
    /// denied when they first run. Record a representative workload, for
    /// long enough, and test the profile before enforcing it.
    ///
    /// The container runtime's own last steps run under the profile too
    /// (runc installs it, then finishes its setup and execs the
    /// container's process): when the container's start was not watched,
    /// the syscalls runc needs then are added (listed in the profile's
    /// comment field and in docs/seccomp.md).
    Seccomp(SeccompArgs),
}

/// Arguments of `eunomia advise seccomp`.
#[derive(Debug, Args)]
pub(crate) struct SeccompArgs {
    /// The container: its name, or its id (at least 4 leading characters).
    #[arg(long, value_name = "NAME|ID")]
    pub(crate) container: String,
    /// Record for this long (e.g. 60s) in this process instead of asking
    /// the running agent; required when no agent runs.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) record_for: Option<Duration>,
    /// Write the profile here (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Without an agent: the configuration whose `[enrich]` and `[hotpath]`
    /// sections to use.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The running agent's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, env = "EUNOMIA_SOCKET")]
    pub(crate) socket: PathBuf,
}
