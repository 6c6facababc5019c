//! Types of the HTTP/1.x capture (`hotpath-ebpf/src/http.rs`): the
//! per-connection state kept in the kernel, which is also the per-request
//! record sent to user space through a ring buffer, and the counters of what the kernel
//! could not deliver.
//!
//! The capture rides on the syscall exit hook (`tp_btf/sys_exit`, the
//! program that counts syscalls): the read and write families are seen at
//! exit with their arguments still in `pt_regs`, so no other program runs
//! on any syscall.

/// Bytes of a request's beginning kept with it (request line and the first
/// headers: method, path, `traceparent` when it comes early).
pub const HTTP_HEAD_LEN: usize = 256;

/// `HTTP_CONNS`: LRU hash, `tgid << 32 | fd` → [`HttpRecord`].
pub const HTTP_CONNS_MAP: &str = "HTTP_CONNS";
/// Capacity of `HTTP_CONNS`. An evicted connection's pending request is
/// lost; its response is then counted as [`HttpDrop::Unmatched`].
pub const HTTP_CONNS_MAX: u32 = 8_192;
/// `HTTP_SOCKS`: array of [`HTTP_SOCKS_LEN`] u64, the sockets the capture
/// may follow: slot `hash(tgid << 32 | fd)` holds that key while the fd is
/// a socket accepted or connected since the agent started (with
/// [`HTTP_SOCK_IGNORED`] set once its first bytes were no HTTP). A read or
/// write on any other fd costs one array load and a compare.
pub const HTTP_SOCKS_MAP: &str = "HTTP_SOCKS";
/// Slots of `HTTP_SOCKS` (a power of two). Two live sockets in one slot:
/// the later one is followed, the earlier one no longer.
pub const HTTP_SOCKS_LEN: u32 = 1 << 16;
/// Bit of an `HTTP_SOCKS` value: the socket speaks something else than HTTP.
pub const HTTP_SOCK_IGNORED: u64 = 1 << 63;

/// The `HTTP_SOCKS` slot of `key` (`tgid << 32 | fd`).
#[inline(always)]
pub const fn http_sock_slot(key: u64) -> u32 {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) as u32 & (HTTP_SOCKS_LEN - 1)
}

/// `HTTP_EVENTS`: ring buffer of [`HttpRecord`]s.
pub const HTTP_EVENTS_MAP: &str = "HTTP_EVENTS";
/// Size of `HTTP_EVENTS` in bytes (a power of two, page aligned).
pub const HTTP_EVENTS_BYTES: u32 = 4 << 20;
/// Bytes waiting in `HTTP_EVENTS` from which a record wakes the agent;
/// below, records wait for its drain timer ([`HTTP_DRAIN_MS`]).
pub const HTTP_WAKEUP_BYTES: u32 = HTTP_EVENTS_BYTES / 4;
/// How often the agent drains `HTTP_EVENTS` without being woken (ms).
pub const HTTP_DRAIN_MS: u64 = 100;
/// `HTTP_COUNTERS`: array of u64 indexed by [`HttpDrop`].
pub const HTTP_COUNTERS_MAP: &str = "HTTP_COUNTERS";
/// Entries of `HTTP_COUNTERS`.
pub const HTTP_COUNTERS_LEN: u32 = 8;
/// `HTTP_PAUSED`: array of one u32, set to 1 by the agent to pause the
/// capture (its CPU budget) and back to 0 to resume it.
pub const HTTP_PAUSED_MAP: &str = "HTTP_PAUSED";
/// Read-only global: 1 turns the capture on (set by the loader).
pub const HTTP_ENABLED_GLOBAL: &str = "HTTP_ENABLED";

/// [`HttpRecord::kind`]: no request in flight.
pub const HTTP_IDLE: u8 = 0;
/// [`HttpRecord::kind`]: a request was read (this side serves).
pub const HTTP_SERVER: u8 = 1;
/// [`HttpRecord::kind`]: a request was written (this side calls).
pub const HTTP_CLIENT: u8 = 2;

/// [`HttpRecord::flags`]: the kernel counted the request in `HTTP_SERIES`
/// (the agent must not count it again).
pub const HTTP_FLAG_COUNTED: u8 = 1;
/// [`HttpRecord::flags`]: the request's call chain is sampled (decided in
/// the kernel: `hotpath-ebpf/src/http_sample.rs`).
pub const HTTP_FLAG_SAMPLED: u8 = 2;

/// Read-only global: 1 sends every request to the ring buffer, 0 only
/// those spans need (sampled, errors, slow, a series' first).
pub const HTTP_RECORDS_ALL_GLOBAL: &str = "HTTP_RECORDS_ALL";
/// Read-only global (u64): a call chain is sampled when a random u32 is
/// below it (`ratio * 2^32`).
pub const HTTP_SAMPLE_BELOW_GLOBAL: &str = "HTTP_SAMPLE_BELOW";
/// Read-only global (u64): a request at least this slow (ns) is always
/// sent.
pub const HTTP_SLOW_NS_GLOBAL: &str = "HTTP_SLOW_NS";

/// `HTTP_SERIES`: hash, [`HttpSeriesKey`] → [`HttpSeries`]: the RED
/// histograms of every request, kept in the kernel and read (and emptied)
/// by the agent once per interval.
pub const HTTP_SERIES_MAP: &str = "HTTP_SERIES";
/// Capacity of `HTTP_SERIES` (both generations). A request of a new series
/// when it is full goes to the ring buffer, counted by the agent.
pub const HTTP_SERIES_MAX: u32 = 8_192;
/// `HTTP_SERIES_GEN`: array of one u32, the generation (0 or 1) the kernel
/// counts into; the agent flips it, then reads and deletes the other one.
pub const HTTP_SERIES_GEN_MAP: &str = "HTTP_SERIES_GEN";
/// Bytes of a request line kept in a series key: the method and the path
/// up to its query.
pub const HTTP_LINE_LEN: usize = 80;
/// Upper bounds of the duration buckets (ns): the OpenTelemetry HTTP
/// buckets (5 ms to 10 s); one more bucket above the last.
pub const HTTP_BOUNDS_NS: [u64; 14] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    75_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    750_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    7_500_000_000,
    10_000_000_000,
];

/// What a RED series is keyed by in the kernel. Every byte is set (the
/// line zero past `line_len`): the map hashes the whole key.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HttpSeriesKey {
    /// cgroup v2 id of the process.
    pub cgroup_id: u64,
    /// The server's address (client side; zero on the server side).
    pub addr: [u8; 16],
    /// AF_INET or AF_INET6 (client side; zero on the server side).
    pub family: u16,
    /// The server's port (client side; zero on the server side).
    pub port: u16,
    /// The status code's class (2 for 2xx, ...).
    pub class: u8,
    /// [`HTTP_SERVER`] or [`HTTP_CLIENT`].
    pub kind: u8,
    /// The generation (0 or 1, `HTTP_SERIES_GEN`).
    pub generation: u8,
    /// Bytes of `line` filled.
    pub line_len: u8,
    /// The request line's first bytes: method, a space, the path up to
    /// `?`, `#` or the next blank.
    pub line: [u8; HTTP_LINE_LEN],
}

/// One series' histogram (added to by every CPU, atomically).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct HttpSeries {
    /// Sum of the durations (ns).
    pub sum_ns: u64,
    /// Requests per bucket ([`HTTP_BOUNDS_NS`], then one above).
    pub counts: [u64; HTTP_BOUNDS_NS.len() + 1],
}

/// Requests the kernel saw but did not deliver (or, `SeriesFull`, could
/// not count), by reason.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpDrop {
    /// The ring buffer was full.
    RingFull = 0,
    /// A response without a request seen on its connection (the request
    /// came before the agent, its connection was evicted, or it was the
    /// second of a pipelined pair).
    Unmatched = 1,
    /// A new request came while one was pending without a response: the
    /// pending one is lost (pipelining, or a response not recognised).
    Replaced = 2,
    /// `HTTP_SERIES` was full: the request went to the ring buffer instead,
    /// for the agent to count (not a loss unless the ring was full too).
    SeriesFull = 3,
    /// Not sent: its call chain was not sampled (`HTTP_RECORDS_ALL` 0); the
    /// RED histograms count it all the same.
    SampledOut = 4,
}

impl HttpDrop {
    /// Every reason, in index order.
    pub const ALL: [HttpDrop; 5] = [
        HttpDrop::RingFull,
        HttpDrop::Unmatched,
        HttpDrop::Replaced,
        HttpDrop::SeriesFull,
        HttpDrop::SampledOut,
    ];

    /// The `reason` label.
    pub const fn name(self) -> &'static str {
        match self {
            HttpDrop::RingFull => "ring_full",
            HttpDrop::Unmatched => "unmatched_response",
            HttpDrop::Replaced => "replaced_request",
            HttpDrop::SeriesFull => "kernel_series_full",
            HttpDrop::SampledOut => "sampled_out",
        }
    }
}

/// A connection the capture follows (the value of `HTTP_CONNS`): a TCP
/// socket of a process (by its fd) on which an HTTP/1.x message was seen,
/// with its request in flight. At the response the fields after `head_len`
/// are filled in place and the record's first [`HTTP_RECORD_FIXED`] +
/// `head_len` bytes go to the ring buffer as they are (the head last, so
/// only its filled part is sent).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HttpRecord {
    /// When the request's first bytes were read or written (`bpf_ktime_get_ns`).
    pub start_ns: u64,
    /// When the response's first bytes were written (server) or read (client).
    pub end_ns: u64,
    /// cgroup v2 id of the process.
    pub cgroup_id: u64,
    /// Bytes of the pending request so far.
    pub req_bytes: u64,
    /// Bytes of the response's first write or read.
    pub resp_bytes: u64,
    /// Local address (IPv4 in the first 4 bytes).
    pub laddr: [u8; 16],
    /// Remote address.
    pub raddr: [u8; 16],
    /// Local port.
    pub lport: u16,
    /// Remote port.
    pub rport: u16,
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u16,
    /// The response's status code.
    pub status: u16,
    /// Process id.
    pub pid: u32,
    /// The thread that read or wrote the request.
    pub tid: u32,
    /// [`HTTP_IDLE`], [`HTTP_SERVER`] or [`HTTP_CLIENT`] (in a record sent:
    /// the side).
    pub kind: u8,
    /// [`HTTP_FLAG_COUNTED`], [`HTTP_FLAG_SAMPLED`].
    pub flags: u8,
    /// Requests started on the connection (wrapping): the n-th request a
    /// client writes is the n-th its server reads, so both ends name it
    /// alike.
    pub seq: u16,
    /// Bytes of `head` filled.
    pub head_len: u32,
    /// The request's first bytes.
    pub head: [u8; HTTP_HEAD_LEN],
}

/// Bytes of an [`HttpRecord`] before its head: a record in the ring buffer
/// is these and then `head_len` bytes.
pub const HTTP_RECORD_FIXED: usize = core::mem::offset_of!(HttpRecord, head);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)] plain data, padding explicit.
    unsafe impl aya::Pod for super::HttpRecord {}
    // SAFETY: as above, no implicit padding (checked below).
    unsafe impl aya::Pod for super::HttpSeriesKey {}
    unsafe impl aya::Pod for super::HttpSeries {}
}

const _: () = assert!(core::mem::size_of::<HttpSeriesKey>() == 32 + HTTP_LINE_LEN);
const _: () = assert!(HTTP_LINE_LEN <= HTTP_HEAD_LEN && HTTP_LINE_LEN < 256);

/// How many of a request head's first bytes a RED series is keyed by:
/// the method and path, up to the second blank, `?`, `#` or the line's
/// end, at most [`HTTP_LINE_LEN`]. Runs in the kernel
/// (`hotpath-ebpf/src/http_series.rs` copies that many bytes as whole
/// words). One loop that only finds the end: templating identifiers there
/// too, with a segment's state carried from byte to byte, is more than the
/// verifier can follow.
#[inline(always)]
pub fn series_line_len(head: &[u8; HTTP_HEAD_LEN], head_len: u32) -> usize {
    let mut end = 0;
    let mut blanks = 0;
    while end < HTTP_LINE_LEN && (end as u32) < head_len {
        let b = head[end];
        if b == b' ' {
            blanks += 1;
        }
        if blanks == 2 || b == b'?' || b == b'#' || b == b'\r' || b == b'\n' {
            break;
        }
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::{format, string::String};

    use super::*;

    fn line_of(request: &str) -> String {
        let mut head = [b'x'; HTTP_HEAD_LEN];
        head[..request.len()].copy_from_slice(request.as_bytes());
        let n = series_line_len(&head, request.len() as u32);
        String::from_utf8_lossy(&head[..n]).into_owned()
    }

    #[test]
    fn series_lines_hold_the_method_and_path() {
        let cases = [
            ("GET /users/17 HTTP/1.1\r\n", "GET /users/17"),
            (
                "GET /users/18/posts/2?x=1 HTTP/1.1\r\n",
                "GET /users/18/posts/2",
            ),
            ("POST /api/v1/orders HTTP/1.1\r\n", "POST /api/v1/orders"),
            ("GET / HTTP/1.1\r\n", "GET /"),
            ("GET /a#frag HTTP/1.1\r\n", "GET /a"),
            ("GET /a\r\n", "GET /a"),
            ("OPTIONS * HTTP/1.1\r\n", "OPTIONS *"),
            ("GET /12", "GET /12"),
        ];
        for (request, want) in cases {
            assert_eq!(line_of(request), want, "{request:?}");
        }
        let long = format!("GET /{} HTTP/1.1\r\n", "a/".repeat(60));
        let got = line_of(&long);
        assert_eq!(got.len(), HTTP_LINE_LEN);
        assert!(long.starts_with(&got));
    }
}
