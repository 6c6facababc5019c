//! `eunomia status`: asks the running agent for its state over the control
//! socket. Until the control API exists, it reports whether an agent's socket
//! is there.

use crate::cli::StatusArgs;

/// Reports the running agent's state, or that none is running.
pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    if !args.socket.exists() {
        anyhow::bail!(
            "no agent is running (no control socket at {}); start one with `eunomia run`",
            args.socket.display()
        );
    }
    anyhow::bail!(
        "a control socket exists at {}, but this build has no control API client yet",
        args.socket.display()
    )
}
