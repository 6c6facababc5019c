//! Resolution with bounded caches: cgroup id → [`Workload`], cgroup path →
//! [`Workload`] (for v1-only paths) and pid → [`Workload`].
//!
//! A pid is resolved through the hot path's kernel map pid → cgroup id first
//! (filled at fork and exec and following cgroup moves, so it knows
//! processes that already exited), then through `/proc/PID/cgroup`. The
//! kernel map is asked at every lookup, so an answer is never older than
//! the pid's last move or exec; only the cgroup's resolution is cached
//! (cgroup ids are never reused). Without the hot path, pid answers are
//! cached for `pid_cache_ttl` and dropped at every exec of that pid. The
//! kernel lookup is a trait object so the resolver works with or without
//! the hot path.

use std::{
    num::NonZeroUsize,
    sync::Arc,
    time::{Duration, Instant},
};

use lru::LruCache;
use model::{Container, Pod, QosClass, Runtime, Workload};

use super::{
    EnrichConfig,
    cgroupfs::{IdLookup, V2Hierarchy},
    pods::PodDirectory,
};
use crate::host::{
    cgroup::{CgroupMounts, ProcCgroups},
    containers::{Classification, ContainerFacts, RuntimeFiles, classify},
};

/// Looks up the cgroup id a pid was last seen in by the kernel.
pub trait PidCgroupLookup: Send + Sync {
    /// The cgroup v2 id of `pid`, if the kernel map has it.
    fn cgroup_of_pid(&self, pid: u32) -> Option<u64>;
}

impl<F> PidCgroupLookup for F
where
    F: Fn(u32) -> Option<u64> + Send + Sync,
{
    fn cgroup_of_pid(&self, pid: u32) -> Option<u64> {
        self(pid)
    }
}

/// The hot path's pid map, asked alone: the resolver caches its own `/proc`
/// answers, where [`crate::context::KernelPids::cgroup_of_pid`] would read
/// `/proc` again on every miss.
impl PidCgroupLookup for crate::context::PidLookup {
    fn cgroup_of_pid(&self, pid: u32) -> Option<u64> {
        self.map()?.process(pid).map(|p| p.cgroup_id)
    }
}

/// Counters of the resolver (self-observability).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResolverStats {
    /// Cgroup lookups answered from the cache.
    pub(crate) cache_hits: u64,
    /// Cgroup lookups that had to ask cgroupfs.
    pub(crate) cache_misses: u64,
    /// Cgroup ids that resolved to no cgroup (gone).
    pub(crate) gone: u64,
    /// Pids resolved through the kernel map.
    pub pid_from_kernel: u64,
    /// Pids resolved through `/proc/PID/cgroup`.
    pub(crate) pid_from_proc: u64,
    /// Pids that could not be resolved at all.
    pub(crate) pid_unknown: u64,
}

/// How full the caches are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    /// Entries keyed by cgroup id.
    pub by_id: usize,
    /// Entries keyed by cgroup path.
    pub by_path: usize,
    /// Entries keyed by pid.
    pub(crate) by_pid: usize,
}

#[derive(Debug, Clone)]
struct Cached {
    workload: Arc<Workload>,
    at: Instant,
    /// A name could still appear (a pod or container not named yet).
    pending: bool,
}

/// Resolves cgroup ids, paths and pids to workloads.
pub struct Resolver {
    v2: Option<V2Hierarchy>,
    pods: PodDirectory,
    files: RuntimeFiles,
    kernel: Option<Arc<dyn PidCgroupLookup>>,
    by_id: LruCache<u64, Cached>,
    by_path: LruCache<Arc<str>, Cached>,
    by_pid: LruCache<u32, Cached>,
    pid_ttl: Duration,
    refresh: Duration,
    unknown: Arc<Workload>,
    stats: ResolverStats,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("v2", &self.v2)
            .field("sizes", &self.cache_sizes())
            .field("kernel_lookup", &self.kernel.is_some())
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver for this host. Without a v2 hierarchy, ids resolve to
    /// unknown and pids through their v1 paths; nothing here fails.
    pub fn new(config: &EnrichConfig) -> Resolver {
        let v2_mount = config
            .cgroup_root
            .clone()
            .or_else(|| CgroupMounts::detect().v2);
        let v2 = v2_mount.and_then(|m| match V2Hierarchy::open(&m) {
            Ok(h) => Some(h),
            Err(err) => {
                tracing::warn!("cannot open the cgroup v2 hierarchy {}: {err}", m.display());
                None
            }
        });
        let pods = PodDirectory::new(
            config.pod_logs(),
            EnrichConfig::optional(&config.container_logs_root),
            config.refresh,
        );
        let files = config.runtime_files();
        let cap = |n: usize| NonZeroUsize::new(n.max(1)).expect("at least 1");
        Resolver {
            v2,
            pods,
            files,
            kernel: None,
            by_id: LruCache::new(cap(config.cache_capacity)),
            by_path: LruCache::new(cap(config.cache_capacity)),
            by_pid: LruCache::new(cap(config.pid_cache_capacity)),
            pid_ttl: config.pid_cache_ttl,
            refresh: config.refresh,
            unknown: Arc::new(Workload::unknown(None)),
            stats: ResolverStats::default(),
        }
    }

    /// Uses `lookup` (the hot path's pid → cgroup id map) before `/proc`.
    pub fn set_pid_lookup(&mut self, lookup: Arc<dyn PidCgroupLookup>) {
        self.kernel = Some(lookup);
    }

    /// Takes pod and container names from `pods` (the kubelet's list, kept
    /// current by [`super::kubelet`]'s task) before the node's files.
    pub(crate) fn set_kubelet(&mut self, pods: super::kubelet::SharedKubeletPods) {
        self.pods.set_kubelet(pods);
    }

    /// The workload of the cgroup with v2 id `id`; unknown when it is gone.
    pub fn by_cgroup_id(&mut self, id: u64) -> Arc<Workload> {
        if let Some(hit) = self.by_id.get(&id)
            && is_fresh(hit, self.refresh)
        {
            self.stats.cache_hits += 1;
            return hit.workload.clone();
        }
        self.stats.cache_misses += 1;
        let lookup = match self.v2.as_mut() {
            Some(v2) => v2.path_of(id),
            None => IdLookup::Gone,
        };
        let entry = match lookup {
            IdLookup::Found(path) => self.build(Some(id), path),
            IdLookup::Gone => {
                self.stats.gone += 1;
                // A cgroup gone keeps what was known of it while it lived
                // (its container, waiting for a name): what it did before
                // it went is still reported, labelled.
                match self.by_id.peek(&id) {
                    Some(known) => Cached {
                        workload: known.workload.clone(),
                        at: Instant::now(),
                        pending: false,
                    },
                    None => cached(Workload::unknown(Some(id)), false),
                }
            }
        };
        let workload = entry.workload.clone();
        self.by_id.put(id, entry);
        workload
    }

    /// The workload of a cgroup known only by its path (v1 hierarchies, or
    /// sources that read cgroupfs by path).
    pub(crate) fn by_path(&mut self, path: &str) -> Arc<Workload> {
        if let Some(hit) = self.by_path.get(path)
            && is_fresh(hit, self.refresh)
        {
            self.stats.cache_hits += 1;
            return hit.workload.clone();
        }
        self.stats.cache_misses += 1;
        let path: Arc<str> = Arc::from(path);
        let entry = self.build(None, path.clone());
        let workload = entry.workload.clone();
        self.by_path.put(path, entry);
        workload
    }

    /// The workload process `pid` runs (or ran) in.
    pub fn by_pid(&mut self, pid: u32) -> Arc<Workload> {
        if let Some(workload) = self.by_kernel_pid(pid) {
            return workload;
        }
        if let Some(hit) = self.by_pid.get(&pid)
            && hit.at.elapsed() < self.pid_ttl
        {
            return hit.workload.clone();
        }
        let workload = self.resolve_proc_pid(pid);
        self.forget_expired_pids();
        self.by_pid.put(
            pid,
            Cached {
                workload: workload.clone(),
                at: Instant::now(),
                pending: false,
            },
        );
        workload
    }

    /// Drops the least recently used pids whose entries outlived the TTL, so
    /// the cache holds about one TTL of pids, not its capacity, under churn.
    fn forget_expired_pids(&mut self) {
        while self
            .by_pid
            .peek_lru()
            .is_some_and(|(_, c)| c.at.elapsed() >= self.pid_ttl)
        {
            self.by_pid.pop_lru();
        }
    }

    /// Forgets what is cached about `pid`: it exec'd (a process moved into
    /// a container, e.g. by `docker exec`, is in its new cgroup by then).
    pub(crate) fn forget_pid(&mut self, pid: u32) {
        self.by_pid.pop(&pid);
    }

    /// The current cache sizes.
    pub fn cache_sizes(&self) -> CacheSizes {
        CacheSizes {
            by_id: self.by_id.len(),
            by_path: self.by_path.len(),
            by_pid: self.by_pid.len(),
        }
    }

    /// The resolver's counters.
    pub fn stats(&self) -> &ResolverStats {
        &self.stats
    }

    /// The kernel map's answer, asked every time (it follows moves and
    /// execs); `None` without the hot path or when its cgroup is unknown.
    fn by_kernel_pid(&mut self, pid: u32) -> Option<Arc<Workload>> {
        let id = self.kernel.as_ref()?.cgroup_of_pid(pid)?;
        let workload = self.by_cgroup_id(id);
        workload.is_known().then(|| {
            self.stats.pid_from_kernel += 1;
            workload
        })
    }

    fn resolve_proc_pid(&mut self, pid: u32) -> Arc<Workload> {
        let Some(proc) = ProcCgroups::read(pid) else {
            self.stats.pid_unknown += 1;
            return self.unknown.clone();
        };
        self.stats.pid_from_proc += 1;
        self.resolve_proc(&proc)
    }

    /// The v2 path decides, unless it names nothing and a v1 path names a
    /// container (runtimes on hybrid hosts that only manage v1 cgroups).
    fn resolve_proc(&mut self, proc: &ProcCgroups) -> Arc<Workload> {
        let from_v2 =
            proc.v2.as_deref().map(
                |path| match self.v2.as_ref().and_then(|v2| v2.id_of(path)) {
                    Some(id) => self.by_cgroup_id(id),
                    None => self.by_path(path),
                },
            );
        if let Some(w) = &from_v2
            && (w.container.is_some() || w.pod.is_some() || w.service.is_some())
        {
            return w.clone();
        }
        let candidates: Vec<String> = proc.v1_candidates().map(str::to_owned).collect();
        for path in &candidates {
            let w = self.by_path(path);
            if w.container.is_some() || w.pod.is_some() {
                return w;
            }
        }
        match (from_v2, candidates.first()) {
            (Some(w), _) => w,
            (None, Some(path)) => self.by_path(path),
            (None, None) => self.unknown.clone(),
        }
    }

    /// The workload of the cgroup at `path`, with names where known.
    fn build(&mut self, cgroup_id: Option<u64>, path: Arc<str>) -> Cached {
        let Classification {
            container,
            pod,
            service,
            containerd_task,
        } = classify(&path);
        let container = match (container, containerd_task) {
            (Some((runtime, id)), _) => Some(self.container(runtime, id)),
            (None, Some((namespace, id))) => self.containerd_task(namespace, id),
            (None, None) => None,
        };
        let pod = pod.map(|(uid, qos)| self.pod(uid, qos, container.as_ref()));
        let container = container.map(|(c, _)| c);
        let pending = !is_named(pod.as_ref(), container.as_ref());
        let workload = Workload {
            cgroup_id,
            cgroup_path: Some(path),
            container,
            pod,
            service,
        };
        cached(workload, pending)
    }

    /// A container the cgroup path names, with what its runtime's files
    /// (or the kubelet's names) say about it.
    fn container(&mut self, runtime: Runtime, id: String) -> (Container, Option<ContainerFacts>) {
        // A bare id under a pod could be any CRI runtime's.
        let runtime = self.pods.container_runtime(&id).unwrap_or(runtime);
        let facts = match runtime {
            Runtime::Docker => self.files.docker(&id),
            Runtime::Podman => self.files.podman(&id),
            Runtime::Containerd => self
                .files
                .containerd_namespace_of(&id)
                .and_then(|ns| self.files.containerd(&ns, &id)),
            Runtime::CriO => None,
        };
        let facts_ref = facts.as_ref();
        let sandbox = facts_ref.is_some_and(|f| f.sandbox);
        let name = match facts_ref.and_then(|f| f.name.clone()) {
            Some(name) => Some(name),
            None if sandbox => None,
            None => self.pods.container_name(&id),
        };
        let container = Container {
            name,
            image: facts_ref.and_then(|f| f.image.clone()),
            namespace: None,
            sandbox,
            runtime,
            id,
        };
        (container, facts)
    }

    /// A plain containerd task at `/<namespace>/<id>`, if containerd's
    /// state has it.
    fn containerd_task(
        &mut self,
        namespace: String,
        id: String,
    ) -> Option<(Container, Option<ContainerFacts>)> {
        let facts = self.files.containerd(&namespace, &id)?;
        let container = Container {
            name: facts.name.clone(),
            image: facts.image.clone(),
            namespace: Some(namespace),
            sandbox: false,
            runtime: Runtime::Containerd,
            id,
        };
        Some((container, Some(facts)))
    }

    /// The pod `uid`, named by the container's CRI annotations or else by
    /// the kubelet and the node's files.
    fn pod(
        &mut self,
        uid: String,
        qos: QosClass,
        container: Option<&(Container, Option<ContainerFacts>)>,
    ) -> Pod {
        let annotated = container
            .and_then(|(_, facts)| facts.as_ref())
            .and_then(|f| f.pod.as_ref())
            .filter(|p| p.uid.as_deref().is_none_or(|u| u == uid))
            .filter(|p| p.name.is_some() && p.namespace.is_some());
        let (namespace, name) = match annotated {
            Some(p) => (p.namespace.clone(), p.name.clone()),
            None => match self.pods.pod(&uid) {
                Some(n) => (Some(n.namespace), Some(n.name)),
                None => (None, None),
            },
        };
        Pod {
            qos,
            namespace,
            name,
            uid,
        }
    }
}

/// Whether the pod and container (where present) have names; a pod
/// sandbox has none to wait for.
fn is_named(pod: Option<&Pod>, container: Option<&Container>) -> bool {
    pod.is_none_or(|p| p.name.is_some()) && container.is_none_or(|c| c.name.is_some() || c.sandbox)
}

fn cached(workload: Workload, pending: bool) -> Cached {
    Cached {
        workload: Arc::new(workload),
        at: Instant::now(),
        pending,
    }
}

/// Resolutions stay valid (cgroup ids are never reused) unless a name may
/// still appear; those are retried after `refresh`.
fn is_fresh(entry: &Cached, refresh: Duration) -> bool {
    !entry.pending || entry.at.elapsed() < refresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_past_their_ttl_leave_the_cache_before_it_fills() {
        let config = EnrichConfig {
            pid_cache_ttl: Duration::from_millis(50),
            ..EnrichConfig::default()
        };
        let mut r = Resolver::new(&config);
        // Pids above the kernel's maximum: never a live process.
        r.by_pid(4_194_400);
        r.by_pid(4_194_401);
        assert_eq!(r.cache_sizes().by_pid, 2);
        std::thread::sleep(Duration::from_millis(60));
        r.by_pid(4_194_402);
        assert_eq!(r.cache_sizes().by_pid, 1, "the two expired pids are gone");
    }

    #[test]
    fn a_cgroup_gone_keeps_the_workload_known_while_it_lived() {
        use std::os::unix::fs::MetadataExt as _;
        let id = "4f1d0c2a9b3e".repeat(5) + "abcd";
        let Some(root) = CgroupMounts::detect().v2 else {
            assert!(
                std::env::var_os("CI").is_none(),
                "no cgroup v2 hierarchy in CI"
            );
            eprintln!("skipped: no cgroup v2 hierarchy here");
            return;
        };
        let dir = root.join(format!("eunomia-resolver-{}.slice", std::process::id()));
        let scope = dir.join(format!("docker-{id}.scope"));
        if let Err(e) = std::fs::create_dir_all(&scope) {
            assert!(std::env::var_os("CI").is_none(), "cgroupfs in CI: {e}");
            eprintln!("skipped: cannot make a cgroup (needs root): {e}");
            return;
        }
        let cgroup_id = std::fs::metadata(&scope).unwrap().ino();
        let config = EnrichConfig {
            refresh: Duration::from_millis(10),
            ..EnrichConfig::default()
        };
        let mut r = Resolver::new(&config);
        let alive = r.by_cgroup_id(cgroup_id);
        let _ = std::fs::remove_dir(&scope);
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(
            alive.container.as_ref().map(|c| c.id.as_str()),
            Some(id.as_str()),
            "{alive:?}"
        );
        // no runtime knows it, so its name may still appear: asked again
        std::thread::sleep(Duration::from_millis(20));
        let gone = r.by_cgroup_id(cgroup_id);
        assert_eq!(
            gone.container.as_ref().map(|c| c.id.as_str()),
            Some(id.as_str())
        );
        assert_eq!(r.stats.gone, 1, "the second lookup found the cgroup gone");
    }
}
