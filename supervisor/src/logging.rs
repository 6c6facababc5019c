//! Logging setup: `tracing` to the systemd journal when systemd runs us
//! (`JOURNAL_STREAM` is set), plain text on stderr otherwise; filtered by
//! `--log-level` or `RUST_LOG`. The default is `info` for the agent
//! (`eunomia run`) and `warn` for the commands a person runs in a terminal,
//! whose output is their answer, not a log.

use std::io::IsTerminal as _;

use tracing_subscriber::{
    EnvFilter, Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

/// Installs the global subscriber. `level` (from `--log-level`) wins over
/// `RUST_LOG`, which wins over `default`.
pub fn init(level: Option<&str>, default: &str) -> anyhow::Result<()> {
    let filter = match level {
        Some(level) => EnvFilter::try_new(level)
            .map_err(|e| crate::BadInput(format!("invalid --log-level {level:?}: {e}")))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
    };
    let journal = std::env::var_os("JOURNAL_STREAM")
        .and_then(|_| tracing_journald::layer().ok())
        .map(|layer| layer.with_syslog_identifier("eunomia".to_owned()));
    let stderr = journal.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
    });
    tracing_subscriber::registry()
        .with(journal.map(|j| j.boxed()))
        .with(stderr)
        .with(filter)
        .init();
    Ok(())
}
