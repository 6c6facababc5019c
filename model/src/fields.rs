//! The stable field names of the event model, in one place.
//!
//! Rules, aggregation and the JSON output refer to event data by these names.
//! The process fields (`proc.pid`, `proc.tid`, `proc.ppid`, `proc.uid`,
//! `proc.comm`) are stored in dedicated [`Event`](crate::Event) members; all
//! others live in [`Event::fields`](crate::Event::fields). [`Event::get`](crate::Event::get)
//! resolves both.
//!
//! Durations are [`Value::Duration`](crate::Value::Duration) (nanoseconds),
//! whatever unit the tool printed; names therefore carry no unit.
//!
//! | name | type | meaning | set by |
//! |---|---|---|---|
//! | `proc.pid` | int | process id (tgid) | most event tools |
//! | `proc.tid` | int | thread id | exitsnoop, mountsnoop, runqslower, drsnoop |
//! | `proc.ppid` | int | parent pid | execsnoop, exitsnoop |
//! | `proc.vpid` | int | process id in its own pid namespace (1: a container's first process) | hot-path execs |
//! | `proc.uid` | int | user id | execsnoop `-U`, opensnoop `-U` |
//! | `proc.comm` | str | process name (≤ 15 bytes in the kernel) | all event tools |
//! | `proc.args` | str | command line as printed (args joined by spaces) | execsnoop |
//! | `proc.exit_code` | int | exit status (0 when killed by a signal) | exitsnoop |
//! | `proc.age` | duration | process lifetime | exitsnoop |
//! | `proc.core_dumped` | bool | the process dumped core | exitsnoop |
//! | `ret` | int | syscall return value (fd for opens, 0/-errno for exec) | execsnoop, opensnoop, statsnoop, killsnoop, sigsnoop, mountsnoop |
//! | `error` | int | errno (positive), 0 on success | opensnoop, statsnoop |
//! | `error.name` | str | symbolic errno such as `ENOENT` | mountsnoop |
//! | `file.path` | str | path as passed to the syscall | opensnoop, statsnoop |
//! | `file.flags` | int | open(2) flags (printed in octal) | opensnoop `-e` |
//! | `signal.num` | int | signal number | killsnoop, sigsnoop, exitsnoop |
//! | `signal.name` | str | signal name (`SIGTERM`, or strsignal text for exitsnoop) | sigsnoop `-n`, exitsnoop |
//! | `target.pid` | int | pid a signal was sent to | killsnoop, sigsnoop |
//! | `mount.op` | str | `mount` or `umount`; `move_mount` from the hot path | mountsnoop, hot-path mounts |
//! | `mount.source` | str | mount source (move_mount: the from path) | mountsnoop, hot-path mounts |
//! | `mount.target` | str | mount point (move_mount: the to path) | mountsnoop, hot-path mounts |
//! | `mount.fs` | str | filesystem type | mountsnoop, hot-path mounts |
//! | `mount.flags` | str | MS_* flags as printed (`0x0`, `MS_RDONLY \| MS_NOSUID`) | mountsnoop, hot-path mounts |
//! | `mount.data` | str | mount data string | mountsnoop, hot-path mounts |
//! | `mount.ns` | int | mount namespace inode | mountsnoop |
//! | `net.saddr` | ip | local address | tcplife, tcpstates |
//! | `net.sport` | int | local port | tcplife, tcpstates |
//! | `net.daddr` | ip | remote address | tcplife, tcpstates |
//! | `net.dport` | int | remote port | tcplife, tcpstates |
//! | `net.tx_bytes` | int | bytes sent (printed in KiB with 2 decimals, so ±5 bytes) | tcplife |
//! | `net.rx_bytes` | int | bytes received (same precision) | tcplife |
//! | `net.old_state` | str | TCP state before (`SYN_SENT`, ...) | tcpstates |
//! | `net.new_state` | str | TCP state after | tcpstates |
//! | `net.skaddr` | str | kernel socket address (hex) | tcpstates |
//! | `net.ip_version` | int | 4 or 6 | tcpstates `-w` |
//! | `dns.host` | str | host name looked up | gethostlatency |
//! | `latency` | duration | latency of the operation | gethostlatency, runqslower, drsnoop |
//! | `duration` | duration | session lifetime (tcplife), time spent in the old state (tcpstates) | tcplife, tcpstates |
//! | `prev.comm` | str | task that ran before (runqslower `-P`) | runqslower |
//! | `prev.tid` | int | its tid | runqslower |
//! | `mem.reclaimed_pages` | int | pages reclaimed | drsnoop |
//! | `mem.free_kb` | int | free memory in KiB | drsnoop `-e` |
//! | `http.request.method` | str | request method | HTTP capture |
//! | `url.path` | str | request path, query removed | HTTP capture |
//! | `http.route` | str | path templated (`/users/{id}`), bounded per container | HTTP capture |
//! | `http.response.status_code` | int | status code | HTTP capture |
//! | `http.status_class` | str | `2xx`, `4xx`, ... | HTTP capture |
//! | `http.request.size` / `http.response.size` | int | bytes | HTTP capture |
//! | `server.address` / `server.port` | ip / int | the serving end | HTTP capture |
//! | `client.address` / `client.port` | ip / int | the calling end | HTTP capture |
//! | `parent_span_id` | str | parent span id of an incoming `traceparent` (16 hex digits; its trace id is `trace_id`) | HTTP capture |
//! | `log.body` | str | the line a container wrote (partial lines joined, control bytes escaped) | container logs |
//! | `log.level` | str | its severity: `unknown`, `trace`, `debug`, `info`, `warn`, `error`, `fatal` | container logs |
//! | `log.pattern` | str | its pattern, variable parts masked as `<*>` | container logs |
//! | `log.stream` | str | `stdout` or `stderr` | container logs |
//! | `trace_id` | str | W3C trace id (32 hex digits) the line names; a span's trace ([`crate::span`]) | container logs, HTTP capture |
//! | `span_id` | str | span id (16 hex digits) the line names; a span's own id | container logs, HTTP capture |
//!
//! Table columns ([`TableSnapshot::columns`](crate::TableSnapshot::columns))
//! of the built-in table tools: `irq` / `softirq` (str), `syscall` (str),
//! `proc.pid`, `proc.comm`, `count` (int), `total_time` (duration), `disk`
//! (str), `random_pct`, `sequential_pct`, `kbytes` (int). Histogram label
//! keys ([`Label::key`](crate::Label::key)): `disk`, `flags`, `pid`, `tid`,
//! `pidns`, `comm`, `irq`, `softirq`, `cgroup`.
//!
//! Names given in a [`GenericSpec`](crate::GenericSpec) that are not listed
//! here are interned once ([`intern`]) and behave the same.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// Process id (tgid).
pub const PROC_PID: &str = "proc.pid";
/// Thread id.
pub const PROC_TID: &str = "proc.tid";
/// Parent process id.
pub const PROC_PPID: &str = "proc.ppid";
/// Process id in the process's own (innermost) pid namespace.
pub const PROC_VPID: &str = "proc.vpid";
/// User id.
pub const PROC_UID: &str = "proc.uid";
/// Process name.
pub const PROC_COMM: &str = "proc.comm";
/// Command line as printed.
pub const PROC_ARGS: &str = "proc.args";
/// Exit status.
pub const PROC_EXIT_CODE: &str = "proc.exit_code";
/// Process lifetime (duration).
pub const PROC_AGE: &str = "proc.age";
/// Whether the process dumped core.
pub const PROC_CORE_DUMPED: &str = "proc.core_dumped";
/// Syscall return value.
pub const RET: &str = "ret";
/// errno (positive number), 0 on success.
pub const ERROR: &str = "error";
/// Symbolic errno name.
pub const ERROR_NAME: &str = "error.name";
/// File path.
pub const FILE_PATH: &str = "file.path";
/// open(2) flags.
pub const FILE_FLAGS: &str = "file.flags";
/// Signal number.
pub const SIGNAL_NUM: &str = "signal.num";
/// Signal name.
pub const SIGNAL_NAME: &str = "signal.name";
/// Target pid of a signal.
pub const TARGET_PID: &str = "target.pid";
/// `mount` or `umount`.
pub const MOUNT_OP: &str = "mount.op";
/// Mount source.
pub const MOUNT_SOURCE: &str = "mount.source";
/// Mount point.
pub const MOUNT_TARGET: &str = "mount.target";
/// Filesystem type.
pub const MOUNT_FS: &str = "mount.fs";
/// MS_* flags as printed.
pub const MOUNT_FLAGS: &str = "mount.flags";
/// Mount data string.
pub const MOUNT_DATA: &str = "mount.data";
/// Mount namespace inode number.
pub const MOUNT_NS: &str = "mount.ns";
/// Local address.
pub const NET_SADDR: &str = "net.saddr";
/// Local port.
pub const NET_SPORT: &str = "net.sport";
/// Remote address.
pub const NET_DADDR: &str = "net.daddr";
/// Remote port.
pub const NET_DPORT: &str = "net.dport";
/// Bytes sent.
pub const NET_TX_BYTES: &str = "net.tx_bytes";
/// Bytes received.
pub const NET_RX_BYTES: &str = "net.rx_bytes";
/// TCP state before a transition.
pub const NET_OLD_STATE: &str = "net.old_state";
/// TCP state after a transition.
pub const NET_NEW_STATE: &str = "net.new_state";
/// Kernel socket address.
pub const NET_SKADDR: &str = "net.skaddr";
/// IP version (4 or 6).
pub const NET_IP_VERSION: &str = "net.ip_version";
/// Host name looked up.
pub const DNS_HOST: &str = "dns.host";
/// Latency of the operation (duration).
pub const LATENCY: &str = "latency";
/// Lifetime / time in state (duration).
pub const DURATION: &str = "duration";
/// Previous task's name.
pub const PREV_COMM: &str = "prev.comm";
/// Previous task's tid.
pub const PREV_TID: &str = "prev.tid";
/// Pages reclaimed.
pub const MEM_RECLAIMED_PAGES: &str = "mem.reclaimed_pages";
/// Free memory in KiB.
pub const MEM_FREE_KB: &str = "mem.free_kb";
/// HTTP request method (`GET`, ...), from the hot path's HTTP capture.
pub const HTTP_METHOD: &str = "http.request.method";
/// Request path as sent (query removed, control bytes escaped).
pub const URL_PATH: &str = "url.path";
/// Low-cardinality route templated from the path (`/users/{id}`).
pub const HTTP_ROUTE: &str = "http.route";
/// Response status code.
pub const HTTP_STATUS: &str = "http.response.status_code";
/// Status class: `1xx` ... `5xx`.
pub const HTTP_STATUS_CLASS: &str = "http.status_class";
/// Bytes of the request (line, headers and body).
pub const HTTP_REQUEST_SIZE: &str = "http.request.size";
/// Bytes of the response's first write (server) or read (client).
pub const HTTP_RESPONSE_SIZE: &str = "http.response.size";
/// The server's address (local for a served request, remote for a call).
pub const SERVER_ADDRESS: &str = "server.address";
/// The server's port.
pub const SERVER_PORT: &str = "server.port";
/// The client's address.
pub const CLIENT_ADDRESS: &str = "client.address";
/// The client's port.
pub const CLIENT_PORT: &str = "client.port";
/// Parent span id of an incoming `traceparent` header (16 hex digits); its
/// trace id goes in [`TRACE_ID`].
pub const TRACE_PARENT_ID: &str = "parent_span_id";

/// The line a container wrote.
pub const LOG_BODY: &str = "log.body";
/// Its severity word.
pub const LOG_LEVEL: &str = "log.level";
/// Its pattern.
pub const LOG_PATTERN: &str = "log.pattern";
/// `stdout` or `stderr`.
pub const LOG_STREAM: &str = "log.stream";
/// W3C trace id (hex).
pub const TRACE_ID: &str = "trace_id";
/// Span id (hex).
pub const SPAN_ID: &str = "span_id";

/// Every name documented above, in table order.
pub const ALL: &[&str] = &[
    PROC_PID,
    PROC_TID,
    PROC_PPID,
    PROC_VPID,
    PROC_UID,
    PROC_COMM,
    PROC_ARGS,
    PROC_EXIT_CODE,
    PROC_AGE,
    PROC_CORE_DUMPED,
    RET,
    ERROR,
    ERROR_NAME,
    FILE_PATH,
    FILE_FLAGS,
    SIGNAL_NUM,
    SIGNAL_NAME,
    TARGET_PID,
    MOUNT_OP,
    MOUNT_SOURCE,
    MOUNT_TARGET,
    MOUNT_FS,
    MOUNT_FLAGS,
    MOUNT_DATA,
    MOUNT_NS,
    NET_SADDR,
    NET_SPORT,
    NET_DADDR,
    NET_DPORT,
    NET_TX_BYTES,
    NET_RX_BYTES,
    NET_OLD_STATE,
    NET_NEW_STATE,
    NET_SKADDR,
    NET_IP_VERSION,
    DNS_HOST,
    LATENCY,
    DURATION,
    PREV_COMM,
    PREV_TID,
    MEM_RECLAIMED_PAGES,
    MEM_FREE_KB,
    HTTP_METHOD,
    URL_PATH,
    HTTP_ROUTE,
    HTTP_STATUS,
    HTTP_STATUS_CLASS,
    HTTP_REQUEST_SIZE,
    HTTP_RESPONSE_SIZE,
    SERVER_ADDRESS,
    SERVER_PORT,
    CLIENT_ADDRESS,
    CLIENT_PORT,
    TRACE_PARENT_ID,
    LOG_BODY,
    LOG_LEVEL,
    LOG_PATTERN,
    LOG_STREAM,
    TRACE_ID,
    SPAN_ID,
];

/// Returns a `'static` name equal to `name`: one of the constants above when
/// it matches, otherwise a copy leaked once per distinct name (bounded by the
/// names a manifest declares).
pub fn intern(name: &str) -> &'static str {
    if let Some(known) = ALL.iter().find(|k| **k == name) {
        return known;
    }
    static EXTRA: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let set = EXTRA.get_or_init(Default::default);
    let mut set = match set.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(s) = set.get(name) {
        return s;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// Whether `name` is a well-formed field name: non-empty, ASCII lowercase
/// letters, digits, `_` and `.`, starting with a letter.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intern_reuses() {
        assert!(std::ptr::eq(intern("proc.pid"), PROC_PID));
        let a = intern("custom.thing");
        let b = intern(&String::from("custom.thing"));
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn names_are_valid_and_unique() {
        let set: HashSet<_> = ALL.iter().collect();
        assert_eq!(set.len(), ALL.len());
        assert!(ALL.iter().all(|n| is_valid_name(n)));
        assert!(!is_valid_name("Proc"));
        assert!(!is_valid_name(""));
    }
}
