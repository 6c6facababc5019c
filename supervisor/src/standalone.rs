//! The live view without an agent: loads the hot path (syscalls, TCP, pid
//! map), polls cgroup stats and enriches like the agent does, and folds
//! everything into snapshots. Used by `eunomia top` and `eunomia advise
//! seccomp --for` when no agent runs; the programs are detached when it
//! returns.

use std::{sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    cgroups,
    context::AgentContext,
    enrich::{EnrichConfig, Enricher, Resolver},
    hotpath::{self, HotpathConfig, HotpathError},
    live::{Ledger, LiveView, Snapshot},
    pipeline::{self, Message},
};

/// Messages buffered between the sources and the fold.
const CHANNEL: usize = 1024;

/// Runs the sources until `shutdown`, sending one snapshot per `interval`
/// to `out` and recording syscalls into `ledger`. Fails when the hot path
/// cannot be loaded (not root, no BTF, built without BPF).
pub(crate) async fn run(
    enrich: &EnrichConfig,
    hotpath: &HotpathConfig,
    interval: Duration,
    ledger: Ledger,
    out: mpsc::Sender<Snapshot>,
    shutdown: CancellationToken,
) -> Result<(), HotpathError> {
    let (tx, mut rx) = pipeline::channel(CHANNEL);
    let mut ctx = AgentContext::new(tx, shutdown.clone());
    let mut sources = Vec::new();
    let config = HotpathConfig {
        path_strings: false,
        mount_strings: false,
        execs: false,
        mounts: false,
        ..hotpath.clone()
    };
    if let Some(source) = hotpath::poller::start(&config, interval, &ctx)? {
        sources.push(source.task);
        ctx.pids = source.pids;
    }
    if let Some(stats) = crate::config::container_stats(enrich) {
        sources.extend(cgroups::start(&stats, interval, &ctx));
    }
    let mut resolver = Resolver::new(enrich);
    if let Some(pids) = ctx.pids.map().cloned() {
        resolver.set_pid_lookup(Arc::new(move |pid| pids.cgroup_of_pid(pid)));
    }
    // The sources hold the only senders: the loop ends when they stop.
    drop(ctx);
    let mut enricher = Enricher::new(resolver);
    let mut view = LiveView::new(ledger);
    while let Some(mut msg) = rx.recv().await {
        enricher.enrich(&mut msg);
        if let Message::Samples(batch) = &msg
            && let Some(snapshot) = view.ingest(batch)
            && out.send(snapshot).await.is_err()
        {
            shutdown.cancel();
        }
    }
    for source in sources {
        let _ = source.await;
    }
    Ok(())
}
