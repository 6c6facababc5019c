//! The client side of the control API, for the CLI: connects to the agent's
//! socket and tells apart "no agent", "stale socket" and "not allowed".

use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use super::proto::control_client::ControlClient;

/// A connected client.
pub(crate) type Client = ControlClient<Channel>;

/// Why the agent cannot be reached.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// No socket file: no agent runs (with this socket).
    #[error("no agent is running (no control socket at {0}); start one with `eunomia run`")]
    NoAgent(PathBuf),
    /// The socket exists but nobody listens: the agent died without
    /// removing it.
    #[error(
        "the control socket {0} exists but no agent answers (a stale socket of an agent that died); \
         start the agent again, or remove the file"
    )]
    Stale(PathBuf),
    /// The caller may not use the socket (it is root's, mode 0600).
    #[error(
        "permission denied on the control socket {0}: the agent's control API is for root; run as root"
    )]
    Permission(PathBuf),
    /// Anything else when connecting.
    #[error("cannot connect to the agent at {path}: {source}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC channel could not be set up.
    #[error("cannot talk to the agent at {path}: {source}")]
    Transport {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Classifies an error of connecting to `path`.
fn classify(path: &Path, e: std::io::Error) -> ClientError {
    let path = path.to_owned();
    match e.kind() {
        ErrorKind::NotFound => ClientError::NoAgent(path),
        ErrorKind::ConnectionRefused => ClientError::Stale(path),
        ErrorKind::PermissionDenied => ClientError::Permission(path),
        _ => ClientError::Connect { path, source: e },
    }
}

/// Connects to the agent listening on `path`.
pub(crate) async fn connect(path: &Path) -> Result<Client, ClientError> {
    // Probe once directly, for a precise error (the channel's is vaguer).
    drop(
        tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| classify(path, e))?,
    );
    let socket = path.to_owned();
    // The URI is required by the API but unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://eunomia.local")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                tokio::net::UnixStream::connect(socket)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await
        .map_err(|source| ClientError::Transport {
            path: path.to_owned(),
            source,
        })?;
    Ok(ControlClient::new(channel))
}
