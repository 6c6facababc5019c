//! The live view without an agent: loads the hot path (syscalls, TCP, pid
//! map), polls cgroup stats and enriches like the agent does, and folds
//! everything into snapshots. Used by `eunomia top` and `eunomia advise
//! seccomp --for` when no agent runs; the programs are detached when it
//! returns. [`http`] is the same for `eunomia http`: the HTTP capture
//! alone, every request it delivers handed to the caller.

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

/// Messages buffered between the HTTP capture and the printer: a burst of
/// requests waits here rather than being dropped (the source keeps a
/// quarter free, see `http::source`).
const HTTP_CHANNEL: usize = 16_384;

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
    resolver.set_pid_lookup(Arc::new(ctx.pids.clone()));
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

/// Requests (or their span events) the HTTP capture run by [`http`] did
/// not deliver, by reason (`eunomia_http_dropped_total`).
pub(crate) type NotShown = Vec<(String, u64)>;

/// The HTTP capture without an agent (`eunomia http`): loads the hot path
/// with its `sys_exit` program and HTTP capture on (nothing else that
/// reports events), runs the HTTP source, and hands every request it
/// delivers, enriched with its workload, to `show` until `shutdown` (or
/// `show` fails). `ready` is called once the capture is attached;
/// `lost` after each interval in which requests were not delivered, with
/// the new counts by reason, and once more at the end.
pub(crate) async fn http(
    config: &crate::config::Config,
    interval: Duration,
    shutdown: CancellationToken,
    ready: impl FnOnce() -> anyhow::Result<()>,
    mut show: impl FnMut(&crate::pipeline::ToolRecord) -> anyhow::Result<()>,
    mut lost: impl FnMut(&NotShown),
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let (tx, mut rx) = pipeline::channel(HTTP_CHANNEL);
    let mut ctx = AgentContext::new(tx, shutdown.clone());
    let hotpath = HotpathConfig {
        // the capture rides on the syscall probe's `sys_exit` program
        syscalls: match config.hotpath.syscalls {
            hotpath::SyscallCounting::Off => hotpath::SyscallCounting::Exact,
            on => on,
        },
        tcp: false,
        execs: false,
        mounts: false,
        path_strings: false,
        mount_strings: false,
        // a live view shows every request
        http: Some(hotpath::HttpCapture::EVERY_REQUEST),
        ..config.hotpath.clone()
    };
    let source = hotpath::poller::start(&hotpath, interval, &ctx)
        .context("loading the HTTP capture")?
        .context("loading the HTTP capture: no probe loaded")?;
    let maps = source
        .http
        .context("the HTTP capture did not attach (its sys_exit program is not loaded)")?;
    let mut tasks = vec![source.task];
    ctx.pids = source.pids;
    let (http, _pause) = crate::http::source::start(maps, &config.http, interval, &ctx)
        .context("starting the HTTP source")?;
    tasks.push(http);
    let mut resolver = Resolver::new(&config.enrich);
    resolver.set_pid_lookup(Arc::new(ctx.pids.clone()));
    let registry = ctx.registry.clone();
    drop(ctx);
    let mut enricher = Enricher::new(resolver);
    let mut reported = NotShown::new();
    let mut result = ready();
    while let Some(mut msg) = rx.recv().await {
        match &msg {
            Message::Requests(_) if result.is_ok() => {
                enricher.enrich(&mut msg);
                if let Message::Requests(requests) = msg {
                    for r in requests {
                        result = show(&crate::http::request::unlinked_event(r));
                        if result.is_err() {
                            break;
                        }
                    }
                }
            }
            Message::Samples(b) if b.source == model::metrics::HTTP_SOURCE => {
                report_lost(&registry, &mut reported, &mut lost);
            }
            _ => {}
        }
        if result.is_err() {
            shutdown.cancel();
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    report_lost(&registry, &mut reported, &mut lost);
    result
}

/// Calls `lost` with what grew in `eunomia_http_dropped_total` since
/// `reported` (which it then updates), if anything did.
fn report_lost(
    registry: &crate::selfmetrics::Registry,
    reported: &mut NotShown,
    lost: &mut impl FnMut(&NotShown),
) {
    let now: NotShown = registry
        .read()
        .into_iter()
        .filter(|p| p.name == model::metrics::HTTP_DROPPED_METRIC && p.value > 0.0)
        .filter_map(|p| {
            let reason = p.labels.iter().find(|(k, _)| *k == "reason")?.1.clone();
            Some((reason, p.value as u64))
        })
        .collect();
    let new: NotShown = now
        .iter()
        .filter_map(|(reason, n)| {
            let before = reported
                .iter()
                .find(|(r, _)| r == reason)
                .map_or(0, |x| x.1);
            (*n > before).then(|| (reason.clone(), n - before))
        })
        .collect();
    if !new.is_empty() {
        lost(&new);
    }
    *reported = now;
}
