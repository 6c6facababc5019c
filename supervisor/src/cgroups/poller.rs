//! The cgroup stats source: every interval it lists the cgroups that are a
//! container's or a systemd service's own cgroup, reads their usage and sends
//! one [`SampleBatch`]. Counters become deltas against the previous poll; a
//! cgroup present at the first poll only sets the baseline, one that appears
//! later counts from zero (it was created within the interval).

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use model::labels::{CGROUP_ID, CGROUP_PATH};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::stats::{CgroupStats, StatsReader};
use crate::{
    context::AgentContext,
    host::{
        cgroup::{CgroupMounts, WALK_LIMIT, walk},
        containers::{RuntimeFiles, classify},
    },
    pipeline::{Message, PipelineTx, Sample, SampleBatch, SampleValue},
};

/// Source name of the container samples.
pub const SOURCE: &str = "cgroups";
/// CPU time used (counter, seconds).
pub const CPU_SECONDS: &str = "eunomia_container_cpu_seconds_total";
/// Memory in use (gauge, bytes).
pub const MEMORY_BYTES: &str = "eunomia_container_memory_bytes";
/// Memory limit (gauge, bytes; absent when unlimited).
pub const MEMORY_LIMIT_BYTES: &str = "eunomia_container_memory_limit_bytes";
/// OOM kills (counter).
pub const OOM_EVENTS: &str = "eunomia_container_oom_events_total";
/// Block I/O bytes (counter), label `direction` = `read` | `write`.
pub const IO_BYTES: &str = "eunomia_container_io_bytes_total";
/// Tasks (gauge).
pub const PIDS: &str = "eunomia_container_pids";

/// One cgroup worth polling.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    path: String,
    /// The v2 id, when the cgroup exists in the v2 hierarchy.
    id: Option<u64>,
}

/// The cumulative counters of one cgroup at the previous poll.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    cpu_ns: u64,
    oom_kills: u64,
    io_read: u64,
    io_write: u64,
}

/// Discovers workload cgroups and turns their usage into samples.
#[derive(Debug)]
pub struct CgroupStatsPoller {
    mounts: CgroupMounts,
    reader: StatsReader,
    max_cgroups: usize,
    previous: HashMap<String, Counters>,
    first: bool,
    overflow_warned: bool,
    /// containerd's state, to tell plain containerd tasks (`/<ns>/<id>`)
    /// from other cgroups of that shape.
    containerd_state: Option<std::path::PathBuf>,
}

impl CgroupStatsPoller {
    /// A poller over the hierarchies in `mounts`, polling at most
    /// `max_cgroups` cgroups.
    pub fn new(mounts: CgroupMounts, max_cgroups: usize) -> CgroupStatsPoller {
        CgroupStatsPoller {
            reader: StatsReader::new(&mounts),
            mounts,
            max_cgroups,
            previous: HashMap::new(),
            first: true,
            overflow_warned: false,
            containerd_state: None,
        }
    }

    /// Also polls plain containerd tasks, confirmed in containerd's state
    /// directory `dir`.
    pub(crate) fn with_containerd_state(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.containerd_state = dir;
        self
    }

    /// Whether `path` is a workload's own cgroup here.
    fn is_root(&self, path: &str) -> bool {
        is_workload_root(path) || self.is_containerd_task(path)
    }

    fn is_containerd_task(&self, path: &str) -> bool {
        let files = RuntimeFiles {
            containerd_state: self.containerd_state.clone(),
            ..Default::default()
        };
        classify(path)
            .containerd_task
            .is_some_and(|(ns, id)| files.has_containerd_task(&ns, &id))
    }

    /// Reads every workload cgroup once and returns the samples.
    pub fn poll(&mut self) -> Vec<Sample> {
        let targets = self.discover();
        let mut samples = Vec::with_capacity(targets.len() * 7);
        let mut seen = HashMap::with_capacity(targets.len());
        for target in &targets {
            let stats = self.reader.read(&target.path);
            let now = counters(&stats);
            let before = match self.previous.get(&target.path) {
                Some(before) => Some(*before),
                None if self.first => None,
                None => Some(Counters::default()),
            };
            push_samples(&mut samples, target, &stats, before, now);
            seen.insert(target.path.clone(), now);
        }
        self.previous = seen;
        self.first = false;
        samples
    }

    /// The cgroups that are a container's or a service's own cgroup, from
    /// the v2 hierarchy and the v1 memory (or first) hierarchy, by path.
    fn discover(&mut self) -> Vec<Target> {
        let mut targets: Vec<Target> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        if let Some(v2) = &self.mounts.v2 {
            for (path, id) in walk(v2, WALK_LIMIT) {
                if self.is_root(&path) {
                    index.insert(path.clone(), targets.len());
                    targets.push(Target { path, id: Some(id) });
                }
            }
        }
        let v1 = self
            .mounts
            .v1_mount("memory")
            .or_else(|| self.mounts.v1.first().map(|m| m.mount_point.as_path()));
        if let Some(v1) = v1 {
            for (path, _) in walk(v1, WALK_LIMIT) {
                if self.is_root(&path) && !index.contains_key(&path) {
                    index.insert(path.clone(), targets.len());
                    targets.push(Target { path, id: None });
                }
            }
        }
        if targets.len() > self.max_cgroups {
            if !self.overflow_warned {
                tracing::warn!(
                    found = targets.len(),
                    max = self.max_cgroups,
                    "more workload cgroups than enrich.max_stats_cgroups; polling the first"
                );
                self.overflow_warned = true;
            }
            targets.truncate(self.max_cgroups);
        }
        targets
    }
}

/// Whether `path` is a container's own cgroup (not one nested inside it) or
/// a systemd service's.
fn is_workload_root(path: &str) -> bool {
    let here = classify(path);
    if here.container.is_some() {
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        return classify(parent).container.is_none();
    }
    here.pod.is_none() && path.ends_with(".service")
}

fn counters(stats: &CgroupStats) -> Counters {
    Counters {
        cpu_ns: stats.cpu_ns.unwrap_or(0),
        oom_kills: stats.oom_kills.unwrap_or(0),
        io_read: stats.io_read_bytes.unwrap_or(0),
        io_write: stats.io_write_bytes.unwrap_or(0),
    }
}

/// Appends one cgroup's samples: gauges always, counter deltas when there is
/// a baseline.
fn push_samples(
    out: &mut Vec<Sample>,
    target: &Target,
    stats: &CgroupStats,
    before: Option<Counters>,
    now: Counters,
) {
    let key = match target.id {
        Some(id) => (CGROUP_ID, id.to_string()),
        None => (CGROUP_PATH, target.path.clone()),
    };
    let mut push = |metric, extra: Option<(&'static str, &str)>, value| {
        let mut labels = vec![key.clone()];
        labels.extend(extra.map(|(k, v)| (k, v.to_owned())));
        out.push(Sample {
            metric,
            labels,
            value,
        });
    };
    let gauges = [
        (MEMORY_BYTES, stats.memory_bytes),
        (MEMORY_LIMIT_BYTES, stats.memory_limit_bytes),
        (PIDS, stats.pids),
    ];
    for (metric, value) in gauges {
        if let Some(v) = value {
            push(metric, None, SampleValue::Gauge(v as f64));
        }
    }
    let Some(before) = before else {
        return;
    };
    let delta = |now: u64, before: u64| now.checked_sub(before).unwrap_or(now);
    if stats.cpu_ns.is_some() {
        let ns = delta(now.cpu_ns, before.cpu_ns);
        push(CPU_SECONDS, None, SampleValue::DeltaF64(ns as f64 / 1e9));
    }
    if stats.oom_kills.is_some() {
        let n = delta(now.oom_kills, before.oom_kills);
        push(OOM_EVENTS, None, SampleValue::Delta(n));
    }
    if stats.io_read_bytes.is_some() {
        let n = delta(now.io_read, before.io_read);
        push(IO_BYTES, Some(("direction", "read")), SampleValue::Delta(n));
        let n = delta(now.io_write, before.io_write);
        push(
            IO_BYTES,
            Some(("direction", "write")),
            SampleValue::Delta(n),
        );
    }
}

/// What the source reads (from `[enrich]`: its `container_stats`,
/// `cgroup_root`, `max_stats_cgroups` and the runtimes' roots).
#[derive(Debug, Clone)]
pub struct StatsSettings {
    /// The cgroup v2 mount; detected when unset.
    pub(crate) cgroup_root: Option<PathBuf>,
    /// Workload cgroups polled at most.
    pub(crate) max_cgroups: usize,
    /// The runtimes' files (containerd's tasks are workload roots).
    pub(crate) files: RuntimeFiles,
}

/// Starts the source. Each poll runs on the blocking pool (it reads many
/// small files); on shutdown it polls once more and stops.
pub fn start(
    settings: &StatsSettings,
    interval: Duration,
    ctx: &AgentContext,
) -> Option<JoinHandle<()>> {
    let mut mounts = CgroupMounts::detect();
    if let Some(root) = &settings.cgroup_root {
        mounts.v2 = Some(root.clone());
    }
    if mounts.v2.is_none() && mounts.v1.is_empty() {
        tracing::warn!("no cgroup hierarchy mounted; container metrics are off");
        return None;
    }
    let poller = CgroupStatsPoller::new(mounts, settings.max_cgroups)
        .with_containerd_state(settings.files.containerd_state.clone());
    Some(tokio::spawn(poll_loop(
        poller,
        interval,
        ctx.tx.clone(),
        ctx.shutdown.clone(),
    )))
}

async fn poll_loop(
    mut poller: CgroupStatsPoller,
    interval: Duration,
    tx: PipelineTx,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    let mut since = Instant::now();
    loop {
        let last = tokio::select! {
            _ = ticker.tick() => false,
            _ = shutdown.cancelled() => true,
        };
        let polled = tokio::task::spawn_blocking(move || {
            let samples = poller.poll();
            (poller, samples)
        })
        .await;
        let Ok((back, samples)) = polled else {
            tracing::error!("the cgroup stats poll panicked; container metrics stop");
            return;
        };
        poller = back;
        tx.send(Message::Samples(SampleBatch {
            source: SOURCE,
            interval_s: since.elapsed().as_secs_f64(),
            samples,
        }));
        since = Instant::now();
        if last {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e8c1a9b2d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

    #[test]
    fn workload_roots() {
        assert!(is_workload_root(&format!("/docker/{ID}")));
        assert!(!is_workload_root(&format!("/docker/{ID}/child")));
        assert!(is_workload_root("/system.slice/nginx.service"));
        assert!(!is_workload_root("/system.slice"));
        assert!(!is_workload_root("/system.slice/nginx.service/sub"));
    }

    #[test]
    fn first_poll_is_a_baseline_later_ones_deltas() {
        let target = Target {
            path: "/x.service".into(),
            id: Some(5),
        };
        let stats = CgroupStats {
            cpu_ns: Some(3_000_000_000),
            memory_bytes: Some(10),
            ..CgroupStats::default()
        };
        let now = counters(&stats);
        let mut out = Vec::new();
        push_samples(&mut out, &target, &stats, None, now);
        assert_eq!(out.len(), 1, "only the memory gauge: {out:?}");
        out.clear();
        let before = Counters {
            cpu_ns: 1_000_000_000,
            ..Counters::default()
        };
        push_samples(&mut out, &target, &stats, Some(before), now);
        let cpu = out.iter().find(|s| s.metric == CPU_SECONDS).unwrap();
        assert_eq!(cpu.value, SampleValue::DeltaF64(2.0));
        assert_eq!(cpu.label(CGROUP_ID), Some("5"));
    }
}
