//! One interval's view of every workload: rates per second of syscalls,
//! errors, TCP connections and bytes, with CPU and memory. Serialised as one
//! JSON object (the control API's `SnapshotLine` and `eunomia top --json`).

use serde::{Deserialize, Serialize};

/// Every workload seen in one poll interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the interval ended (seconds since the Unix epoch).
    pub unix_s: f64,
    /// How long the interval was, in seconds.
    pub interval_s: f64,
    /// One row per workload, busiest (syscalls/s) first.
    pub rows: Vec<Row>,
}

/// What kind of workload a row is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowKind {
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
    pub fn as_str(self) -> &'static str {
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
pub struct Row {
    /// Stable key: the container id, `service:NAME`, `host` or `other`.
    pub key: String,
    /// What it is.
    pub kind: RowKind,
    /// Its name: the container's name (short id when it has none), the
    /// service's, or `host`.
    pub name: String,
    /// The Kubernetes namespace of its pod, or the containerd namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The pod's name, for a pod's container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// The container runtime.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    /// The full container id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_id: String,
    /// Syscalls per second.
    pub syscalls_per_s: f64,
    /// Syscalls that returned an error, per second.
    pub errors_per_s: f64,
    /// Every syscall made in the interval, busiest first.
    pub syscalls: Vec<Rate>,
    /// Outbound TCP connections established per second.
    pub tcp_connects_per_s: f64,
    /// Inbound TCP connections accepted per second.
    pub tcp_accepts_per_s: f64,
    /// Failed TCP connect attempts per second.
    pub tcp_failures_per_s: f64,
    /// TCP resets per second.
    pub tcp_resets_per_s: f64,
    /// Bytes received per second (of TCP sessions that closed).
    pub bytes_in_per_s: f64,
    /// Bytes sent per second (of TCP sessions that closed).
    pub bytes_out_per_s: f64,
    /// CPU use in percent of one CPU.
    pub cpu_percent: Option<f64>,
    /// Memory in use, bytes.
    pub memory_bytes: Option<f64>,
    /// HTTP requests (none until the agent sees HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpRates>,
    /// The TCP peers of the interval, busiest first.
    pub peers: Vec<Peer>,
}

impl Row {
    /// The names of the busiest `n` syscalls, comma-separated.
    pub fn top_syscalls(&self, n: usize) -> String {
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
pub struct Rate {
    /// The syscall's name.
    pub name: String,
    /// Calls per second.
    pub per_s: f64,
    /// Calls that failed, per second.
    pub errors_per_s: f64,
}

/// One TCP peer of a workload in one interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Peer {
    /// `ADDR:PORT` for connections the workload made, `*:PORT` for
    /// connections it accepted on its port PORT.
    pub peer: String,
    /// `out` (connect) or `in` (accept).
    pub direction: String,
    /// Connections per second.
    pub connections_per_s: f64,
    /// Failed connects per second.
    pub failures_per_s: f64,
    /// Resets per second.
    pub resets_per_s: f64,
    /// Bytes received per second.
    pub bytes_in_per_s: f64,
    /// Bytes sent per second.
    pub bytes_out_per_s: f64,
}

/// HTTP rates of a workload (the column hook for when the agent sees HTTP).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRates {
    /// Requests per second.
    pub requests_per_s: f64,
    /// Responses with status 5xx, in percent of the requests.
    pub error_percent: f64,
    /// The 99th percentile of the request durations, milliseconds.
    pub p99_ms: f64,
}
