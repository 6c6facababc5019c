//! The supervised external tools (libbpf-tools): the manifest that describes
//! them ([`manifest`]), the check of what can run here ([`avail`]), and the
//! runner that spawns them and feeds their parsed output into the pipeline
//! ([`runner`]).

pub(crate) mod avail;
pub(crate) mod columns;
pub(crate) mod config;
pub(crate) mod facts;
pub(crate) mod manifest;
mod manifest_check;
mod output;
pub(crate) mod print;
pub(crate) mod runner;
pub(crate) mod stats;
pub(crate) mod stderr;
pub mod verify;

pub(crate) use ::parsers as pa;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
};

pub use config::ToolsConfig;
pub use manifest::{Manifest, ManifestError, ToolSpec};
pub use runner::{RunnerOptions, ToolHandle};
pub use stats::{StatsBook, ToolState, ToolStats};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    BadInput,
    context::{AgentContext, PidLookup},
    pipeline::PipelineTx,
};

/// Why a tool cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No manifest entry of that name.
    #[error("no tool named `{0}` in the manifest (see `eunomia tools list`)")]
    Unknown(String),
    /// Already supervised.
    #[error("tool `{0}` is already running")]
    AlreadyRunning(String),
    /// Binary missing or kernel lacking something.
    #[error("tool `{name}` cannot run here: {status}")]
    Unavailable {
        /// The tool.
        name: String,
        /// `missing binary` or `unsupported: ...`.
        status: String,
    },
    /// The agent is stopping.
    #[error("the agent is shutting down")]
    ShuttingDown,
    /// The tool needs arguments the caller did not give.
    #[error("tool `{name}` needs arguments: {what} (pass them after `--`)")]
    NeedsArgs {
        /// The tool.
        name: String,
        /// What to pass.
        what: String,
    },
}

/// The tools the agent supervises: starts and stops them by name and keeps
/// their counters. Shared (cheap to clone) between the agent, its control
/// API and its configuration reloader.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    /// The manifest and `[tools]` settings that tools started from now on use.
    setup: RwLock<(Arc<Manifest>, ToolsConfig)>,
    kernel: crate::host::kernel::Kernel,
    /// `None` once closed: the pipeline can then end.
    tx: Mutex<Option<PipelineTx>>,
    /// The kernel's pid map the tools' records are checked against.
    pids: PidLookup,
    /// Every tool's counters.
    book: StatsBook,
    shutdown: CancellationToken,
    running: Mutex<HashMap<String, Running>>,
}

struct Running {
    stop: CancellationToken,
    stats: Arc<ToolStats>,
}

impl Supervisor {
    /// A supervisor sending records into the context's pipeline, with its
    /// counters in the context's registry; every tool stops on its shutdown.
    pub fn new(manifest: Manifest, config: ToolsConfig, ctx: &AgentContext) -> Supervisor {
        Supervisor {
            inner: Arc::new(Inner {
                setup: RwLock::new((Arc::new(manifest), config)),
                kernel: crate::host::kernel::Kernel::new(),
                tx: Mutex::new(Some(ctx.tx.clone())),
                pids: ctx.pids.clone(),
                book: StatsBook::new(ctx.registry.clone()),
                shutdown: ctx.shutdown.clone(),
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The manifest in use.
    pub(crate) fn manifest(&self) -> Arc<Manifest> {
        self.setup().0
    }

    /// The manifest and `[tools]` settings in use.
    pub(crate) fn setup(&self) -> (Arc<Manifest>, ToolsConfig) {
        let s = crate::sync::read(&self.inner.setup);
        (s.0.clone(), s.1.clone())
    }

    /// Replaces the manifest and settings for tools started from now on
    /// (running tools keep theirs).
    pub(crate) fn reconfigure(&self, manifest: Manifest, config: ToolsConfig) {
        *crate::sync::write(&self.inner.setup) = (Arc::new(manifest), config);
    }

    /// Whether the tool `spec` describes can run here, with the reason when
    /// it cannot.
    pub(crate) fn availability(&self, spec: &ToolSpec) -> avail::Availability {
        let (_, config) = self.setup();
        avail::check(&self.inner.kernel, spec, &config.search_dirs)
    }

    /// Starts `name` with `extra` arguments; `force` skips the availability
    /// check (the binary must still exist). Returns the tool's task.
    pub fn start(
        &self,
        name: &str,
        extra: &[String],
        opts: RunnerOptions,
        force: bool,
    ) -> Result<ToolHandle, StartError> {
        let (manifest, config) = self.setup();
        let spec = manifest
            .get(name)
            .ok_or_else(|| StartError::Unknown(name.to_owned()))?;
        if let (Some(what), true) = (&spec.needs_args, extra.is_empty()) {
            return Err(StartError::NeedsArgs {
                name: name.to_owned(),
                what: what.clone(),
            });
        }
        let binary = match avail::check(&self.inner.kernel, spec, &config.search_dirs) {
            avail::Availability::Ready(path) => path,
            avail::Availability::Unsupported(_) if force => {
                avail::find_binary(&spec.binary, &config.search_dirs).expect("found by check")
            }
            other => {
                return Err(StartError::Unavailable {
                    name: name.to_owned(),
                    status: other.status(),
                });
            }
        };
        let mut running = crate::sync::lock(&self.inner.running);
        if running.get(name).is_some_and(|r| r.stats.is_active()) {
            return Err(StartError::AlreadyRunning(name.to_owned()));
        }
        let tx = crate::sync::lock(&self.inner.tx)
            .clone()
            .ok_or(StartError::ShuttingDown)?;
        let stop = self.inner.shutdown.child_token();
        let opts = RunnerOptions {
            extra_args: extra.to_vec(),
            ..opts
        };
        let outlet = runner::Outlet {
            tx,
            pids: self.inner.pids.clone(),
        };
        let stats = self.inner.book.for_tool(&spec.name);
        let handle = runner::spawn(spec.clone(), binary, opts, outlet, stop.clone(), stats);
        running.insert(
            name.to_owned(),
            Running {
                stop,
                stats: handle.stats.clone(),
            },
        );
        Ok(handle)
    }

    /// Asks `name` to stop; its counters when it was active, `None` when it
    /// was not running.
    pub(crate) fn stop(&self, name: &str) -> Option<Arc<ToolStats>> {
        let running = crate::sync::lock(&self.inner.running);
        let r = running.get(name).filter(|r| r.stats.is_active())?;
        r.stop.cancel();
        Some(r.stats.clone())
    }

    /// Records `name` as failed with `reason` without starting it (its
    /// binary is missing or the kernel lacks what it needs), so it is a row
    /// of `eunomia status` and `eunomia_tool_failed{tool} = 1` from the start.
    pub(crate) fn mark_failed(&self, name: &str, reason: String) {
        let stats = self.inner.book.for_tool(&Arc::from(name));
        stats.fail(reason);
        let stop = CancellationToken::new();
        stop.cancel();
        let mut running = crate::sync::lock(&self.inner.running);
        running.insert(name.to_owned(), Running { stop, stats });
    }

    /// Counters of every tool started so far, by name.
    pub(crate) fn stats(&self) -> Vec<Arc<ToolStats>> {
        let running = crate::sync::lock(&self.inner.running);
        let mut all: Vec<_> = running.values().map(|r| r.stats.clone()).collect();
        all.sort_by(|a, b| a.tool.cmp(&b.tool));
        all
    }

    /// Counters of `name`, if it was ever started.
    pub(crate) fn tool_stats(&self, name: &str) -> Option<Arc<ToolStats>> {
        let running = crate::sync::lock(&self.inner.running);
        running.get(name).map(|r| r.stats.clone())
    }

    /// Names of the tools starting, running or restarting now.
    pub(crate) fn active(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .stats()
            .iter()
            .filter(|s| s.is_active())
            .map(|s| s.tool.to_string())
            .collect();
        names.sort();
        names
    }

    /// Refuses further starts and lets go of the pipeline, so it can end
    /// once the running tools have stopped.
    pub(crate) fn close(&self) {
        crate::sync::lock(&self.inner.tx).take();
    }
}

/// Loads the manifest of `config` and checks every name of `enabled` in it.
/// Errors are bad input (exit code 2 at start-up).
pub(crate) fn load_checked(config: &ToolsConfig) -> Result<Manifest, BadInput> {
    config
        .validate()
        .map_err(|e| BadInput(format!("configuration: {e}")))?;
    let manifest = Manifest::load(config).map_err(|e| BadInput(e.to_string()))?;
    for name in &config.enabled {
        if manifest.get(name).is_none() {
            return Err(BadInput(format!(
                "configuration: tools.enabled names `{name}`, which is not in the manifest ({})",
                manifest.files.join(", ")
            )));
        }
    }
    Ok(manifest)
}

/// Makes the agent's supervisor and starts every tool the configuration
/// enables; each runs until `shutdown`. An unknown name or a bad manifest is
/// bad input (exit 2); a tool that cannot run here is logged and skipped so
/// the rest of the agent runs.
/// The event kinds the enabled tools report (which string checks the hot
/// path must make for them); tools the manifest does not have are left out.
pub(crate) fn enabled_event_kinds(config: &ToolsConfig) -> Vec<pa::EventKind> {
    let Ok(manifest) = Manifest::load(config) else {
        return Vec::new();
    };
    config
        .enabled
        .iter()
        .filter_map(|name| manifest.get(name)?.event_kind)
        .collect()
}

pub(crate) fn start_enabled(
    config: &ToolsConfig,
    ctx: &AgentContext,
) -> anyhow::Result<(Supervisor, Vec<JoinHandle<()>>)> {
    let manifest = if config.enabled.is_empty() {
        // Tools may still be started through the control API; a broken
        // manifest then shows in its answers, not at start-up.
        Manifest::load(config).unwrap_or_else(|e| {
            tracing::warn!("tools manifest: {e}");
            Manifest::builtin()
        })
    } else {
        load_checked(config)?
    };
    let supervisor = Supervisor::new(manifest, config.clone(), ctx);
    let mut tasks = Vec::new();
    for name in &config.enabled {
        match supervisor.start(name, &[], RunnerOptions::from_config(config), false) {
            Ok(h) => tasks.push(h.task),
            Err(e) => {
                tracing::error!("{e}; not started");
                supervisor.mark_failed(name, e.to_string());
            }
        }
    }
    Ok((supervisor, tasks))
}
