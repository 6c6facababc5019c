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

/// Requests the kernel saw but could not deliver, by reason.
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
}

impl HttpDrop {
    /// Every reason, in index order.
    pub const ALL: [HttpDrop; 3] = [HttpDrop::RingFull, HttpDrop::Unmatched, HttpDrop::Replaced];

    /// The `reason` label.
    pub const fn name(self) -> &'static str {
        match self {
            HttpDrop::RingFull => "ring_full",
            HttpDrop::Unmatched => "unmatched_response",
            HttpDrop::Replaced => "replaced_request",
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
    /// Padding.
    pub _pad: [u8; 3],
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
}
