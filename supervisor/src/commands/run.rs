//! `eunomia run`: loads the configuration, applies the command-line overrides
//! and runs the agent (see [`crate::agent`]).

use anyhow::Context as _;

use crate::{
    BadInput,
    agent::{self, RunOptions},
    cli::RunArgs,
    config::Config,
    reload::Overrides,
};

/// Runs the agent until a signal or the end of `--for`.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref()).map_err(|e| BadInput(e.to_string()))?;
    let overrides = Overrides {
        interval: args.interval,
        socket: args.socket.clone(),
    };
    overrides.apply(&mut config);
    let opts = RunOptions {
        config_path: args.config.clone(),
        overrides,
        run_for: args.run_for,
        json: args.json,
        samples: args.samples,
        top: args.top,
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(agent::run(config, opts))
        .map_err(stdout_closed_is_a_failure)
}

/// The agent's stdout closing (`eunomia run | head`) stops it: that is a
/// failure (exit 1, logged, so a supervisor restarts it), unlike for the
/// one-shot commands where the reader going away is the user's choice.
fn stdout_closed_is_a_failure(err: anyhow::Error) -> anyhow::Error {
    let closed = err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if !closed {
        return err;
    }
    tracing::error!("stdout was closed by its reader: {err:#}; stopping");
    anyhow::anyhow!("stdout was closed by its reader ({err:#})")
}
