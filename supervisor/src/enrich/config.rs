//! The `[enrich]` section of the configuration: where to look for cgroups,
//! pods and container names, how much to cache, and the container resource
//! metrics.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::host::containers::RuntimeFiles;

/// Enrichment and container-metrics settings. Paths set to `""` turn that
/// source of names off.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichConfig {
    /// Attach container, pod and service labels to events and samples.
    pub enabled: bool,
    /// The cgroup v2 mount; detected from `/proc/self/mountinfo` when unset.
    pub cgroup_root: Option<PathBuf>,
    /// Cgroups whose resolution is kept (LRU).
    pub cache_capacity: usize,
    /// Processes whose cgroup is kept (LRU).
    pub pid_cache_capacity: usize,
    /// How long a pid's cgroup is trusted before it is looked up again
    /// (processes move, pids are reused).
    #[serde(with = "humantime_serde")]
    pub pid_cache_ttl: Duration,
    /// How long a resolution that lacks a pod or container name is kept
    /// before it is tried again; also the least time between two listings
    /// of the pod directories.
    #[serde(with = "humantime_serde")]
    pub refresh: Duration,
    /// The kubelet's pod log directories (`<namespace>_<name>_<uid>`).
    pub pod_logs_root: PathBuf,
    /// The kubelet's container log symlinks (`<pod>_<ns>_<container>-<id>.log`).
    pub container_logs_root: PathBuf,
    /// Docker's per-container directories (`<id>/config.v2.json`).
    pub docker_root: PathBuf,
    /// Podman's storage root (`overlay-containers/containers.json`).
    pub podman_root: PathBuf,
    /// containerd's state directory (task bundles with their annotations:
    /// plain containerd and CRI pods).
    pub containerd_state: PathBuf,
    /// The kubelet's pod list, e.g. `https://127.0.0.1:10250/pods`; unset
    /// means the local files are the only source of pod names.
    pub kubelet_url: Option<String>,
    /// Bearer token for the kubelet (a service account token), read before
    /// every request (tokens rotate).
    pub kubelet_token_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the kubelet's serving certificate.
    pub kubelet_ca_file: Option<PathBuf>,
    /// Accept any kubelet certificate (kubelets often serve a self-signed
    /// one); off by default.
    pub kubelet_insecure_tls: bool,
    /// How often the kubelet's pod list is fetched.
    #[serde(with = "humantime_serde")]
    pub kubelet_refresh: Duration,
    /// Poll per-container and per-service resource usage from cgroupfs.
    pub container_stats: bool,
    /// At most this many cgroups are polled for resource usage.
    pub max_stats_cgroups: usize,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cgroup_root: None,
            cache_capacity: 4096,
            pid_cache_capacity: 16384,
            pid_cache_ttl: Duration::from_secs(2),
            refresh: Duration::from_secs(5),
            pod_logs_root: "/var/log/pods".into(),
            container_logs_root: "/var/log/containers".into(),
            docker_root: "/var/lib/docker/containers".into(),
            podman_root: "/var/lib/containers/storage".into(),
            containerd_state: "/run/containerd".into(),
            kubelet_url: None,
            kubelet_token_file: None,
            kubelet_ca_file: None,
            kubelet_insecure_tls: false,
            kubelet_refresh: Duration::from_secs(30),
            container_stats: true,
            max_stats_cgroups: 2048,
        }
    }
}

impl EnrichConfig {
    /// Checks ranges; the message names the offending key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.cache_capacity == 0 || self.pid_cache_capacity == 0 {
            return Err(
                "enrich.cache_capacity and enrich.pid_cache_capacity must be at least 1".into(),
            );
        }
        if self.max_stats_cgroups == 0 {
            return Err("enrich.max_stats_cgroups must be at least 1".into());
        }
        if let Some(url) = &self.kubelet_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "enrich.kubelet_url = {url:?} is not an http(s) URL"
            ));
        }
        Ok(())
    }

    /// `path` unless it is empty (turned off).
    pub(crate) fn optional(path: &std::path::Path) -> Option<PathBuf> {
        (!path.as_os_str().is_empty()).then(|| path.to_owned())
    }

    /// The runtimes' file roots this section names (an empty path: off).
    pub(crate) fn runtime_files(&self) -> RuntimeFiles {
        RuntimeFiles {
            docker_root: Self::optional(&self.docker_root),
            podman_root: Self::optional(&self.podman_root),
            containerd_state: Self::optional(&self.containerd_state),
        }
    }

    /// The kubelet's pod log directories, unless turned off.
    pub(crate) fn pod_logs(&self) -> Option<PathBuf> {
        Self::optional(&self.pod_logs_root)
    }
}
