//! Reloading the agent's configuration on SIGHUP without a restart: the
//! configuration file and the tools manifest are read again; the
//! `[tools] enabled` set is diffed (new tools start, removed ones stop),
//! the manifest and `[tools]` settings apply to tools started afterwards,
//! and the rules reload. The hot-path maps stay as they are; changed
//! settings that only take effect at start-up are logged as such. A file
//! with errors keeps everything in force and logs the errors
//! (`file:line:col: message`).

use std::{path::PathBuf, time::Duration};

use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    rules::RulesConfig,
    tools::{RunnerOptions, Supervisor},
};

/// Settings the command line overrides, applied again to every reloaded
/// configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// `--interval`: `agent.poll_interval`.
    pub(crate) interval: Option<Duration>,
    /// `--socket`: `agent.control_socket`.
    pub(crate) socket: Option<PathBuf>,
}

impl Overrides {
    /// Applies the overrides to `config`.
    pub(crate) fn apply(&self, config: &mut Config) {
        if let Some(interval) = self.interval {
            config.agent.poll_interval = interval;
        }
        if let Some(socket) = &self.socket {
            config.agent.control_socket = socket.clone();
        }
    }
}

/// What a reload acts on.
pub(crate) struct Reloader {
    /// The configuration file (`None`: the default path or the defaults).
    pub(crate) path: Option<PathBuf>,
    /// Command-line overrides.
    pub(crate) overrides: Overrides,
    /// The configuration in force.
    pub(crate) current: Config,
    /// The agent's tools.
    pub(crate) supervisor: Supervisor,
    /// Where a new `[rules]` section goes (the rules reloader), when rules
    /// are enabled.
    pub(crate) rules: Option<watch::Sender<RulesConfig>>,
}

/// Installs the SIGHUP handler and reloads on every SIGHUP until `shutdown`.
pub(crate) fn spawn(
    mut reloader: Reloader,
    shutdown: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    reloader.reload();
                }
            }
        }
    }))
}

impl Reloader {
    /// Reads the configuration and manifest again and applies them, or logs
    /// why not and keeps the old ones.
    pub(crate) fn reload(&mut self) {
        let mut new = match Config::load(self.path.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{e}");
                tracing::error!("configuration reload failed: keeping the configuration in force");
                return;
            }
        };
        self.overrides.apply(&mut new);
        let manifest = match crate::config::load_manifest(&new.tools) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("{e}");
                tracing::error!("configuration reload failed: keeping the configuration in force");
                return;
            }
        };
        log_restart_needed(&self.current, &new);
        self.supervisor.reconfigure(manifest, new.tools.clone());
        self.apply_enabled(&new);
        if let Some(rules) = &self.rules {
            rules.send_replace(new.rules.clone());
        }
        self.current = new;
        tracing::info!("configuration reloaded");
    }

    /// Stops the tools no longer enabled and starts the newly enabled ones.
    fn apply_enabled(&self, new: &Config) {
        let old = &self.current.tools.enabled;
        for name in old.iter().filter(|n| !new.tools.enabled.contains(n)) {
            if self.supervisor.stop(name).is_some() {
                tracing::info!(tool = %name, "no longer enabled: stopping");
            }
        }
        let opts = RunnerOptions::from_config(&new.tools);
        for name in new.tools.enabled.iter().filter(|n| !old.contains(n)) {
            match self.supervisor.start(name, &[], opts.clone(), false) {
                Ok(_) => tracing::info!(tool = %name, "newly enabled: started"),
                Err(e) => tracing::error!("{e}; not started"),
            }
        }
    }
}

/// Logs every changed section that only applies at start-up.
fn log_restart_needed(old: &Config, new: &Config) {
    let differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let sections: [(&str, bool); 6] = [
        ("agent", differs(&old.agent, &new.agent)),
        ("hotpath", differs(&old.hotpath, &new.hotpath)),
        ("aggregate", differs(&old.aggregate, &new.aggregate)),
        ("sinks", differs(&old.sinks, &new.sinks)),
        ("enrich", differs(&old.enrich, &new.enrich)),
        (
            "rules.enabled, rules.console, rules.dedup_window",
            (old.rules.enabled, old.rules.console, old.rules.dedup_window)
                != (new.rules.enabled, new.rules.console, new.rules.dedup_window),
        ),
    ];
    for (section, changed) in sections {
        if changed {
            tracing::warn!("[{section}] changed: takes effect after a restart of the agent");
        }
    }
}
