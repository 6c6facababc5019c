//! The rules stage of the agent: the [`Engine`] with its alert sinks, and
//! the reload task that recompiles the rules on SIGHUP or when a rules file
//! changes. A reload with errors keeps the rules in force and logs every
//! error (`file:line:col: message`).

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use model::Labels;

use crate::selfmetrics::Registry;
use parsers::Event;
use serde::Deserialize;
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{Alert, AlertSink, Engine, RuleErrors, RuleSet, load, load_paths, load_with_defaults};

/// `[rules]` of the agent's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RulesConfig {
    /// Evaluate rules at all.
    pub(crate) enabled: bool,
    /// Load the built-in default rules before `files`.
    pub(crate) defaults: bool,
    /// Rules files and directories (`*.toml`), loaded in order after the
    /// defaults.
    pub(crate) files: Vec<PathBuf>,
    /// Alerts of the same finding within this window are counted, not sent.
    #[serde(with = "humantime_serde")]
    pub(crate) dedup_window: Duration,
    /// How often to look for changed rules files (`0s`: only on SIGHUP).
    #[serde(with = "humantime_serde")]
    pub(crate) watch_interval: Duration,
    /// Print alerts on stdout (JSON lines with `--json`).
    pub(crate) console: bool,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            enabled: true,
            defaults: true,
            files: Vec::new(),
            dedup_window: Duration::from_secs(60),
            watch_interval: Duration::from_secs(2),
            console: true,
        }
    }
}

impl RulesConfig {
    /// Compiles the configured rules.
    pub(crate) fn load(&self) -> Result<Arc<RuleSet>, RuleErrors> {
        if !self.enabled {
            return Ok(Arc::new(RuleSet::empty()));
        }
        let loaded = if self.defaults {
            load_with_defaults(&self.files)?
        } else {
            load_paths(&self.files)?
        };
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        Ok(Arc::new(loaded.set))
    }
}

/// The engine, its sinks and the receiving end of reloads.
pub(crate) struct RulesStage {
    engine: Engine,
    sinks: Vec<Box<dyn AlertSink>>,
    updates: Option<watch::Receiver<Arc<RuleSet>>>,
    buf: Vec<Alert>,
    registry: Arc<Registry>,
}

impl RulesStage {
    /// A stage evaluating `set`, counting its alerts in `registry`.
    pub(crate) fn new(set: Arc<RuleSet>, dedup_window: Duration, registry: Arc<Registry>) -> Self {
        RulesStage {
            engine: Engine::new(set, dedup_window),
            sinks: Vec::new(),
            updates: None,
            buf: Vec::new(),
            registry,
        }
    }

    /// Adds a destination for alerts (console, Alertmanager, OTLP logs).
    pub(crate) fn add_sink(&mut self, sink: Box<dyn AlertSink>) {
        self.sinks.push(sink);
    }

    /// Takes reloaded rule sets from `rx`.
    pub(crate) fn follow(&mut self, rx: watch::Receiver<Arc<RuleSet>>) {
        self.updates = Some(rx);
    }

    /// The engine (rules in force, counters).
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Evaluates the rules on `event` and hands the alerts to every sink.
    pub(crate) fn on_event(&mut self, event: &Event, labels: &dyn Labels) {
        if let Some(rx) = &mut self.updates
            && rx.has_changed().unwrap_or(false)
        {
            let set = rx.borrow_and_update().clone();
            self.engine.replace(set);
        }
        self.engine
            .on_event(event, labels, Instant::now(), &mut self.buf);
        for alert in self.buf.drain(..) {
            self.registry
                .counter(
                    "eunomia_rules_alerts_total",
                    "Alerts the rules emitted (after deduplication and rate limits).",
                    &[("rule", &alert.rule), ("severity", alert.severity.as_str())],
                )
                .inc();
            let alert = Arc::new(alert);
            for sink in &mut self.sinks {
                sink.send(&alert);
            }
        }
    }
}

/// Starts the task that reloads the rules whenever `trigger` sees a new
/// `[rules]` configuration (the agent's reloader sends one per SIGHUP) and,
/// every `watch_interval`, when a rules file changed; reloaded sets arrive
/// on the returned receiver.
pub(crate) fn spawn_reloader(
    config: RulesConfig,
    initial: Arc<RuleSet>,
    mut trigger: watch::Receiver<RulesConfig>,
    shutdown: CancellationToken,
) -> (watch::Receiver<Arc<RuleSet>>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(initial);
    let task = tokio::spawn(async move {
        let mut config = config;
        let mut stamp = files_stamp(&config.files);
        let mut triggered = true;
        loop {
            let poll = (!config.watch_interval.is_zero()).then_some(config.watch_interval);
            let why = tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = trigger.changed(), if triggered => {
                    if changed.is_err() {
                        // The agent's reloader is gone: only file changes from here on.
                        triggered = false;
                        continue;
                    }
                    config = trigger.borrow_and_update().clone();
                    stamp = files_stamp(&config.files);
                    "SIGHUP"
                }
                _ = sleep_or_forever(poll) => {
                    let now = files_stamp(&config.files);
                    if now == stamp {
                        continue;
                    }
                    stamp = now;
                    "a rules file changed"
                }
            };
            reload(&config, &tx, why).await;
        }
    });
    (rx, task)
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Recompiles the rules; installs them or logs why not.
async fn reload(config: &RulesConfig, tx: &watch::Sender<Arc<RuleSet>>, why: &str) {
    let cfg = config.clone();
    match tokio::task::spawn_blocking(move || cfg.load()).await {
        Ok(Ok(set)) => {
            tracing::info!(rules = set.rules().len(), reason = why, "rules reloaded");
            let _ = tx.send(set);
        }
        Ok(Err(errors)) => {
            for e in &errors.0 {
                tracing::error!("{e}");
            }
            tracing::error!(
                errors = errors.0.len(),
                reason = why,
                "rules reload failed: keeping the rules in force"
            );
        }
        Err(e) => tracing::error!(error = %e, "rules reload panicked"),
    }
}

/// The names, sizes and modification times of the rules files (cheap to
/// compare, catches edits, additions and removals).
fn files_stamp(paths: &[PathBuf]) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let files = load::expand_paths(paths).unwrap_or_default();
    files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let mtime = meta.and_then(|m| m.modified().ok());
            (f, len, mtime)
        })
        .collect()
}
