//! The names of the samples the hot path sends: its sources and metrics.
//! The hot path writes them; aggregation, the console and the sinks read
//! them.

/// Source name of the syscall samples.
pub const SYSCALLS_SOURCE: &str = "hotpath.syscalls";
/// Source name of the TCP samples.
pub const TCP_SOURCE: &str = "hotpath.tcp";
/// Source name of the hot path's own counters.
pub const SELF_SOURCE: &str = "hotpath.self";
/// Syscalls per cgroup and syscall.
pub const SYSCALLS_METRIC: &str = "eunomia_syscalls_total";
/// Failed syscalls per cgroup and syscall.
pub const SYSCALL_ERRORS_METRIC: &str = "eunomia_syscall_errors_total";
/// Kernel-side map-full conditions, by map.
pub const MAP_FULL_METRIC: &str = "eunomia_hotpath_map_full_total";
/// Runs the kernel skipped because the program was already running on the CPU.
pub const RECURSION_MISSES_METRIC: &str = "eunomia_hotpath_recursion_misses_total";
/// Entries in a kernel map (gauge).
pub const MAP_ENTRIES_METRIC: &str = "eunomia_hotpath_map_entries";
/// Entries removed by the supervisor (dead cgroups, idle flows, exited pids).
pub const EVICTIONS_METRIC: &str = "eunomia_hotpath_evictions_total";
/// TCP sessions that closed without having been seen opening.
pub const TCP_UNTRACKED_METRIC: &str = "eunomia_tcp_untracked_sessions_total";

/// New connections, by direction (active: connect; passive: accept).
pub const CONNECTIONS_METRIC: &str = "eunomia_tcp_connections_total";
/// Connect attempts that failed.
pub const CONNECT_FAILURES_METRIC: &str = "eunomia_tcp_connect_failures_total";
/// Resets sent or received.
pub const RESETS_METRIC: &str = "eunomia_tcp_resets_total";
/// Sessions closed.
pub const CLOSED_METRIC: &str = "eunomia_tcp_sessions_closed_total";
/// Bytes of closed sessions, `direction` tx or rx.
pub const BYTES_METRIC: &str = "eunomia_tcp_bytes_total";
/// Session durations, log2 µs histogram.
pub const DURATION_METRIC: &str = "eunomia_tcp_connection_duration_seconds";

/// Source name of the HTTP capture's samples.
pub const HTTP_SOURCE: &str = "hotpath.http";
/// Duration of requests served (OpenTelemetry `http.server.request.duration`).
pub const HTTP_SERVER_DURATION_METRIC: &str = "http_server_request_duration_seconds";
/// Duration of requests made (OpenTelemetry `http.client.request.duration`).
pub const HTTP_CLIENT_DURATION_METRIC: &str = "http_client_request_duration_seconds";
/// Requests (or their spans) the HTTP capture did not deliver, by reason.
pub const HTTP_DROPPED_METRIC: &str = "eunomia_http_dropped_total";
/// Request records the kernel delivered.
pub const HTTP_RECORDS_METRIC: &str = "eunomia_http_records_total";
/// Spans (request events) sent into the pipeline, by why they were kept.
pub const HTTP_SPANS_METRIC: &str = "eunomia_http_spans_total";
/// Requests whose route was folded into `other` (route bound per container).
pub const HTTP_ROUTE_OVERFLOW_METRIC: &str = "eunomia_http_route_overflow_total";
