//! The supervised external tools (libbpf-tools): the manifest that describes
//! them ([`manifest`]), the check of what can run here ([`avail`]), and the
//! runner that spawns them and feeds their parsed output into the pipeline
//! ([`runner`]).

pub mod avail;
pub mod config;
pub mod manifest;
pub mod print;
pub mod runner;

pub(crate) use ::parsers as pa;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

pub use config::ToolsConfig;
pub use manifest::{Manifest, ManifestError, ToolSpec};
pub use runner::{RunnerOptions, ToolHandle, ToolState, ToolStats};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{BadInput, pipeline::PipelineTx};

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
/// their counters. Shared (cheap to clone) so the control API of a later
/// issue can start and stop tools in a running agent.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    manifest: Manifest,
    config: ToolsConfig,
    kernel: avail::Kernel,
    tx: PipelineTx,
    shutdown: CancellationToken,
    running: Mutex<HashMap<String, Running>>,
}

struct Running {
    stop: CancellationToken,
    stats: Arc<ToolStats>,
}

impl Supervisor {
    /// A supervisor sending records to `tx`; every tool stops on `shutdown`.
    pub fn new(
        manifest: Manifest,
        config: ToolsConfig,
        tx: PipelineTx,
        shutdown: CancellationToken,
    ) -> Supervisor {
        Supervisor {
            inner: Arc::new(Inner {
                manifest,
                config,
                kernel: avail::Kernel::new(),
                tx,
                shutdown,
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The manifest in use.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
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
        let inner = &self.inner;
        let spec = inner
            .manifest
            .get(name)
            .ok_or_else(|| StartError::Unknown(name.to_owned()))?;
        if let (Some(what), true) = (&spec.needs_args, extra.is_empty()) {
            return Err(StartError::NeedsArgs {
                name: name.to_owned(),
                what: what.clone(),
            });
        }
        let binary = match inner.kernel.check(spec, &inner.config.search_dirs) {
            avail::Availability::Ready(path) => path,
            avail::Availability::Unsupported(_) if force => {
                avail::find_binary(&spec.binary, &inner.config.search_dirs).expect("found by check")
            }
            other => {
                return Err(StartError::Unavailable {
                    name: name.to_owned(),
                    status: other.status(),
                });
            }
        };
        let mut running = inner.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running.get(name)
            && !matches!(r.stats.state(), ToolState::Stopped | ToolState::Failed(_))
        {
            return Err(StartError::AlreadyRunning(name.to_owned()));
        }
        let stop = inner.shutdown.child_token();
        let opts = RunnerOptions {
            extra_args: extra.to_vec(),
            ..opts
        };
        let handle = runner::spawn(spec.clone(), binary, opts, inner.tx.clone(), stop.clone());
        running.insert(
            name.to_owned(),
            Running {
                stop,
                stats: handle.stats.clone(),
            },
        );
        Ok(handle)
    }

    /// Asks `name` to stop; false when it is not running.
    pub fn stop(&self, name: &str) -> bool {
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        match running.get(name) {
            Some(r) => {
                r.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// Counters of every tool started so far.
    pub fn stats(&self) -> Vec<Arc<ToolStats>> {
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        running.values().map(|r| r.stats.clone()).collect()
    }
}

/// Starts every tool the configuration enables; each runs until `shutdown`.
/// An unknown name or a bad manifest is bad input (exit 2); a tool that
/// cannot run here is logged and skipped so the rest of the agent runs.
pub fn start_enabled(
    config: &ToolsConfig,
    tx: PipelineTx,
    shutdown: CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    if config.enabled.is_empty() {
        return Ok(Vec::new());
    }
    config
        .validate()
        .map_err(|e| BadInput(format!("configuration: {e}")))?;
    let manifest = Manifest::load(config).map_err(|e| BadInput(e.to_string()))?;
    for name in &config.enabled {
        if manifest.get(name).is_none() {
            return Err(BadInput(format!(
                "configuration: tools.enabled names `{name}`, which is not in the manifest ({})",
                manifest.files.join(", ")
            ))
            .into());
        }
    }
    let supervisor = Supervisor::new(manifest, config.clone(), tx, shutdown);
    let mut tasks = Vec::new();
    for name in &config.enabled {
        match supervisor.start(name, &[], RunnerOptions::from_config(config), false) {
            Ok(h) => tasks.push(h.task),
            Err(e) => tracing::error!("{e}; not started"),
        }
    }
    Ok(tasks)
}
