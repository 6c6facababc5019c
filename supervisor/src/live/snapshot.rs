//! One interval's view of every workload: rates per second of syscalls,
//! errors, TCP connections and bytes, with CPU and memory. Serialised as one
//! JSON object (the control API's `SnapshotLine` and `eunomia top --json`).

use serde::{Deserialize, Serialize};

/// Every workload seen in one poll interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    /// When the interval ended (seconds since the Unix epoch).
    pub(crate) unix_s: f64,
    /// How long the interval was, in seconds.
    pub(crate) interval_s: f64,
    /// One row per workload, busiest (syscalls/s) first.
    pub(crate) rows: Vec<Row>,
}

/// What kind of workload a row is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RowKind {
    /// A container (docker, containerd, podman, CRI; a pod's containers
    /// carry the pod's name and namespace).
    Container,
    /// A systemd service.
    Service,
    /// Everything else on the host (processes outside containers and
    /// services).
    #[default]
    Host,
    /// Cgroups the kernel tables had no room for (counted, not named).
    Other,
}

impl RowKind {
    /// The lowercase name shown in the UI.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RowKind::Container => "container",
            RowKind::Service => "service",
            RowKind::Host => "host",
            RowKind::Other => "other",
        }
    }
}

/// One workload in one interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Row {
    /// Stable key: the container id, `service:NAME`, `host` or `other`.
    pub(crate) key: String,
    /// What it is.
    pub(crate) kind: RowKind,
    /// Its name: the container's name (short id when it has none), the
    /// service's, or `host`.
    pub(crate) name: String,
    /// The Kubernetes namespace of its pod, or the containerd namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) namespace: String,
    /// The pod's name, for a pod's container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) pod: String,
    /// The container runtime.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) runtime: String,
    /// The full container id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) container_id: String,
    /// Syscalls per second.
    pub(crate) syscalls_per_s: f64,
    /// Syscalls that returned an error, per second.
    pub(crate) errors_per_s: f64,
    /// Every syscall made in the interval, busiest first.
    pub(crate) syscalls: Vec<Rate>,
    /// Outbound TCP connections established per second.
    pub(crate) tcp_connects_per_s: f64,
    /// Inbound TCP connections accepted per second.
    pub(crate) tcp_accepts_per_s: f64,
    /// Failed TCP connect attempts per second.
    pub(crate) tcp_failures_per_s: f64,
    /// TCP resets per second.
    pub(crate) tcp_resets_per_s: f64,
    /// Bytes received per second (of TCP sessions that closed).
    pub(crate) bytes_in_per_s: f64,
    /// Bytes sent per second (of TCP sessions that closed).
    pub(crate) bytes_out_per_s: f64,
    /// CPU use in percent of one CPU.
    pub(crate) cpu_percent: Option<f64>,
    /// Memory in use, bytes.
    pub(crate) memory_bytes: Option<f64>,
    /// HTTP requests (none until the agent sees HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) http: Option<HttpRates>,
    /// The TCP peers of the interval, busiest first.
    pub(crate) peers: Vec<Peer>,
}

impl Row {
    /// The names of the busiest `n` syscalls, comma-separated.
    pub(crate) fn top_syscalls(&self, n: usize) -> String {
        self.syscalls
            .iter()
            .take(n)
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One syscall's rate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Rate {
    /// The syscall's name.
    pub(crate) name: String,
    /// Calls per second.
    pub(crate) per_s: f64,
    /// Calls that failed, per second.
    pub(crate) errors_per_s: f64,
}

/// One TCP peer of a workload in one interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Peer {
    /// `ADDR:PORT` for connections the workload made, `*:PORT` for
    /// connections it accepted on its port PORT.
    pub(crate) peer: String,
    /// `out` (connect) or `in` (accept).
    pub(crate) direction: String,
    /// Connections per second.
    pub(crate) connections_per_s: f64,
    /// Failed connects per second.
    pub(crate) failures_per_s: f64,
    /// Resets per second.
    pub(crate) resets_per_s: f64,
    /// Bytes received per second.
    pub(crate) bytes_in_per_s: f64,
    /// Bytes sent per second.
    pub(crate) bytes_out_per_s: f64,
}

/// HTTP rates of a workload (the column hook for when the agent sees HTTP).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct HttpRates {
    /// Requests per second.
    pub(crate) requests_per_s: f64,
    /// Responses with status 5xx, in percent of the requests.
    pub(crate) error_percent: f64,
    /// The 99th percentile of the request durations, milliseconds.
    pub(crate) p99_ms: f64,
}
