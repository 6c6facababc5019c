//! The command line: every subcommand, flag and help text of `eunomia`.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

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

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
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
}

/// Arguments of `eunomia run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file (TOML). Without it the built-in defaults apply.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Stop after this long (e.g. `5s`, `2m`); default: run until signalled.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub run_for: Option<Duration>,
    /// How often to poll the kernel maps (e.g. `1s`); overrides the
    /// configuration's `agent.poll_interval` (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// How many syscalls to show in each interval's summary.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub top: usize,
    /// Print each interval's summary as one JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `eunomia tools ...`.
#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// List every tool of the manifest and whether it can run here.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `eunomia status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// The running agent's control socket.
    #[arg(long, value_name = "PATH", default_value = "/run/eunomia/eunomia.sock")]
    pub socket: PathBuf,
}

/// Parses a human duration such as `5s`, `250ms` or `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
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
