//! Which HTTP requests go to user space as records when not every one
//! does (`HTTP_RECORDS_ALL` 0): the RED histograms count every request in
//! the kernel ([`crate::http_series`]), so a record is only needed for a
//! span. The decision is made per call chain on this host, so the spans
//! that are sent link into whole traces, and both ends of a connection
//! make it alike without waiting for each other:
//!
//! - a request is named by its client's address and port and its number
//!   on the connection ([`HttpRecord::seq`]): both ends know both, so each
//!   draws the same lot from their hash (`HTTP_SAMPLE_BELOW`);
//! - a call made while its thread serves a request takes that request's
//!   decision instead; when it differs from the call's own lot, the call
//!   leaves it in `HTTP_PEERS` for its server side, which looks when the
//!   request arrives and again when it answers (its read may come before
//!   the call's write has returned, the program runs at syscall exit);
//! - an error (5xx) or a slow request (`HTTP_SLOW_NS`) is always sent,
//!   and so is the server request whose thread made it (the enclosing
//!   span): a trace that failed keeps its spine.
//!
//! Both tables are arrays indexed by a hash (a slot holds its owner's key
//! to check): one load or store each, no hash-map update per request. A
//! collision loses a decision: a trace may then lose a span, nothing else.

use aya_ebpf::{macros::map, maps::Array};
use hotpath_common::http::{HTTP_CLIENT, HTTP_FLAG_SAMPLED, HTTP_SERVER, HttpRecord};

/// Read-only global set by the loader: a request's lot (the high 32 bits
/// of its hash) samples it when below this (`ratio * 2^32`).
#[unsafe(no_mangle)]
static HTTP_SAMPLE_BELOW: u64 = 0;

/// Read-only global set by the loader: a request at least this slow (ns)
/// is always sent.
#[unsafe(no_mangle)]
static HTTP_SLOW_NS: u64 = u64::MAX;

/// Slots of each table (a power of two).
const SLOTS: u32 = 1 << 14;

/// Per thread (slot by tid): `tid << 32 | bits`, the decision for the
/// server request the thread handles.
#[map]
static HTTP_THREADS: Array<u64> = Array::with_max_entries(SLOTS, 0);

/// Per request (slot by its hash): the hash with the decision in its low
/// bit, left by a call whose decision is not its own lot, for its server
/// side.
#[map]
static HTTP_PEERS: Array<u64> = Array::with_max_entries(SLOTS, 0);

/// [`HTTP_THREADS`] bit: the thread's server request is sampled.
const SAMPLED: u64 = 1;
/// [`HTTP_THREADS`] bit: a call it made failed or was slow.
const KEEP: u64 = 2;

#[inline(always)]
fn slot(x: u64) -> u32 {
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as u32 & (SLOTS - 1)
}

/// An address and port as one u64 (the address folded to 32 bits).
#[inline(always)]
fn endpoint(addr: &[u8; 16], port: u16) -> u64 {
    let w = |i: usize| u32::from_ne_bytes([addr[i], addr[i + 1], addr[i + 2], addr[i + 3]]);
    (port as u64) << 32 | (w(0) ^ w(4) ^ w(8) ^ w(12)) as u64
}

/// The name of request `seq` of the client at `endpoint`: a hash both
/// ends compute alike; its low bit is left for a decision.
#[inline(always)]
fn request_hash(endpoint: u64, seq: u16) -> u64 {
    (endpoint ^ (seq as u64) << 48).wrapping_mul(0x9e37_79b9_7f4a_7c15) & !1
}

/// The request's own lot.
#[inline(always)]
fn lot(h: u64) -> bool {
    // SAFETY: a read-only global the loader set.
    let below = unsafe { core::ptr::read_volatile(&HTTP_SAMPLE_BELOW) };
    (h >> 32) < below
}

/// The request `h` of the connection `c` (its server end).
#[inline(always)]
fn served(c: &HttpRecord) -> u64 {
    request_hash(endpoint(&c.raddr, c.rport), c.seq)
}

/// A request starts on `c` (its side in `c.kind`) on thread `tid`: numbers
/// it and sets or clears [`HTTP_FLAG_SAMPLED`] in `c.flags`.
#[inline(never)]
pub(crate) fn start(c: &mut HttpRecord, tid: u32) {
    c.seq = c.seq.wrapping_add(1);
    let sampled = if c.kind == HTTP_SERVER {
        let h = served(c);
        let sampled = take_mark(h).unwrap_or_else(|| lot(h));
        if let Some(t) = HTTP_THREADS.get_ptr_mut(slot(tid as u64)) {
            // SAFETY: a pointer into the array's value.
            unsafe { *t = (tid as u64) << 32 | sampled as u64 };
        }
        sampled
    } else {
        let h = request_hash(endpoint(&c.laddr, c.lport), c.seq);
        let own = lot(h);
        let sampled = match HTTP_THREADS.get(slot(tid as u64)) {
            Some(t) if *t >> 32 == tid as u64 => *t & SAMPLED != 0,
            _ => own,
        };
        if sampled != own
            && let Some(p) = HTTP_PEERS.get_ptr_mut(slot(h))
        {
            // SAFETY: as above.
            unsafe { *p = h | sampled as u64 };
        }
        sampled
    };
    c.flags = if sampled { HTTP_FLAG_SAMPLED } else { 0 };
}

/// The decision a call left for request `h`, if any (taken away).
#[inline(always)]
fn take_mark(h: u64) -> Option<bool> {
    let p = HTTP_PEERS.get_ptr_mut(slot(h))?;
    // SAFETY: a pointer into the array's value.
    unsafe {
        if *p & !1 != h {
            return None;
        }
        let sampled = *p & 1 != 0;
        *p = 0;
        Some(sampled)
    }
}

/// The request of `c` got its response (`status` after `dur` ns) on
/// thread `tid`: whether it goes to user space (`c.flags` updated when a
/// call's decision came late).
#[inline(never)]
pub(crate) fn send(c: &mut HttpRecord, tid: u32, status: u16, dur: u64) -> bool {
    // SAFETY: a read-only global.
    let slow = unsafe { core::ptr::read_volatile(&HTTP_SLOW_NS) };
    let failed = status >= 500 || dur >= slow;
    if c.kind == HTTP_SERVER
        && let Some(sampled) = take_mark(served(c))
    {
        c.flags = (c.flags & !HTTP_FLAG_SAMPLED) | if sampled { HTTP_FLAG_SAMPLED } else { 0 };
    }
    let sampled = c.flags & HTTP_FLAG_SAMPLED != 0;
    let Some(t) = HTTP_THREADS.get_ptr_mut(slot(tid as u64)) else {
        return failed || sampled;
    };
    // SAFETY: a pointer into the array's value.
    let t = unsafe { &mut *t };
    let mine = *t >> 32 == tid as u64;
    if c.kind == HTTP_CLIENT {
        if failed && mine {
            *t |= KEEP;
        }
        return failed || sampled;
    }
    let keep = mine && *t & KEEP != 0;
    if mine {
        *t = 0;
    }
    failed || keep || sampled
}
