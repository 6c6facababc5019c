//! The live-view side of the control API: `StreamSnapshots` sends each
//! interval's snapshot of every workload as JSON, `WorkloadSyscalls` the
//! syscalls a container made since the agent started.

use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::proto;
use crate::live::LiveHub;

/// Copies snapshots from the hub to one subscriber until it goes away or
/// the agent stops; snapshots it missed are counted in the next one.
pub(crate) async fn forward(
    hub: LiveHub,
    tx: mpsc::Sender<Result<proto::SnapshotLine, Status>>,
    shutdown: CancellationToken,
) {
    let mut rx = hub.subscribe();
    let mut lagged = 0u64;
    loop {
        let snapshot = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tx.closed() => return,
            s = rx.recv() => s,
        };
        match snapshot {
            Ok(s) => {
                let line = proto::SnapshotLine {
                    json: serde_json::to_string(&*s).unwrap_or_default(),
                    lagged: std::mem::take(&mut lagged),
                };
                if tx.send(Ok(line)).await.is_err() {
                    return;
                }
            }
            Err(RecvError::Lagged(n)) => lagged += n,
            Err(RecvError::Closed) => return,
        }
    }
}

/// The workloads `container` names in the ledger, as a JSON array; an
/// empty query is invalid.
pub(crate) fn workload_syscalls(
    hub: &LiveHub,
    container: &str,
) -> Result<proto::WorkloadSyscallsResponse, Status> {
    if container.trim().is_empty() {
        return Err(Status::invalid_argument("name a container (name or id)"));
    }
    let found = hub.ledger().matching(container);
    let json = serde_json::to_string(&found).map_err(|e| Status::internal(e.to_string()))?;
    Ok(proto::WorkloadSyscallsResponse { json })
}
