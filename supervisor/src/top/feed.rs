//! Where `eunomia top` gets its snapshots: the running agent's
//! `StreamSnapshots`, or a hot path loaded by this process
//! ([`crate::standalone`]) when no agent runs.

use std::time::Duration;

use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    control::{client::Client, proto},
    live::{Ledger, Snapshot},
};

/// What the feed delivers.
#[derive(Debug)]
pub(crate) enum Update {
    /// The next snapshot, and how many the agent could not deliver before it.
    Snapshot(Box<Snapshot>, u64),
    /// The feed ended, with why.
    Ended(String),
}

/// Streams the agent's snapshots into `tx` until either side goes away.
pub(crate) async fn from_agent(mut client: Client, tx: mpsc::Sender<Update>) {
    let stream = client
        .stream_snapshots(proto::StreamSnapshotsRequest {})
        .await;
    let mut stream = match stream {
        Ok(s) => s.into_inner(),
        Err(e) => {
            let _ = tx
                .send(Update::Ended(format!("the agent refused: {}", e.message())))
                .await;
            return;
        }
    };
    loop {
        let end = match stream.message().await {
            Ok(Some(line)) => match serde_json::from_str::<Snapshot>(&line.json) {
                Ok(s) => {
                    if tx
                        .send(Update::Snapshot(Box::new(s), line.lagged))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                Err(e) => format!("the agent sent a snapshot this version cannot read: {e}"),
            },
            Ok(None) => "the agent closed the stream (it stopped)".to_owned(),
            Err(e) => format!("the agent went away: {}", e.message()),
        };
        let _ = tx.send(Update::Ended(end)).await;
        return;
    }
}

/// Loads the hot path here and feeds its snapshots into `tx` every
/// `interval` until `shutdown`.
pub(crate) fn standalone(
    config: &Config,
    interval: Duration,
    ledger: Ledger,
    tx: mpsc::Sender<Update>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let (snap_tx, mut snap_rx) = mpsc::channel(4);
    let enrich = config.enrich.clone();
    let hotpath = config.hotpath.clone();
    let ended = tx.clone();
    tokio::spawn(async move {
        while let Some(s) = snap_rx.recv().await {
            if tx.send(Update::Snapshot(Box::new(s), 0)).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        let r =
            crate::standalone::run(&enrich, &hotpath, interval, ledger, snap_tx, shutdown).await;
        let why = match r {
            Ok(()) => "stopped".to_owned(),
            Err(e) => format!("cannot load the hot path: {e}"),
        };
        let _ = ended.send(Update::Ended(why)).await;
    })
}
