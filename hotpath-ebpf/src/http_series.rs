//! The RED histograms of every HTTP request, kept in the kernel: one
//! [`HttpSeries`] per (cgroup, side, status class, method and path, and
//! the server for calls) in `HTTP_SERIES`, added to at each response, so
//! a request needs no record in user space to be counted. The agent reads
//! them once per interval: it flips `HTTP_SERIES_GEN`, then reads and
//! deletes the series of the generation it left (`supervisor/src/http/series.rs`).
//!
//! The path is the request's own, as far as [`HTTP_LINE_LEN`] bytes (the
//! agent makes routes of it, `/users/{id}`): a service with many distinct
//! paths has many series. When the map is full a request is not counted
//! here and goes to the ring buffer for the agent to count, so nothing is
//! lost while the ring has room.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    macros::map,
    maps::{Array, HashMap, PerCpuArray},
};
use hotpath_common::http::{
    HTTP_BOUNDS_NS, HTTP_CLIENT, HTTP_HEAD_LEN, HTTP_LINE_LEN, HTTP_SERIES_MAX, HttpDrop,
    HttpRecord, HttpSeries, HttpSeriesKey, series_line_len,
};

use crate::add;

#[map]
static HTTP_SERIES: HashMap<HttpSeriesKey, HttpSeries> =
    HashMap::with_max_entries(HTTP_SERIES_MAX, 0);

#[map]
static HTTP_SERIES_GEN: Array<u32> = Array::with_max_entries(1, 0);

/// The key being built (too big for the stack beside the rest).
#[map]
static HTTP_SERIES_KEY: PerCpuArray<HttpSeriesKey> = PerCpuArray::with_max_entries(1, 0);

/// How a request was counted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// In a series that was there.
    Known,
    /// In a new series (its first request in this generation).
    New,
    /// Not: the map is full (counted as [`HttpDrop::SeriesFull`]).
    No,
}

/// Counts the request of `c` (its response: `status` after `dur` ns).
#[inline(never)]
pub(crate) fn count(c: &HttpRecord, dur: u64, status: u16) -> Counted {
    let Some(k) = HTTP_SERIES_KEY.get_ptr_mut(0) else {
        return Counted::No;
    };
    // SAFETY: this CPU's scratch entry.
    let k = unsafe { &mut *k };
    k.cgroup_id = c.cgroup_id;
    if c.kind == HTTP_CLIENT {
        k.addr = c.raddr;
        k.family = c.family;
        k.port = c.rport;
    } else {
        k.addr = [0; 16];
        k.family = 0;
        k.port = 0;
    }
    k.class = (status / 100) as u8;
    k.kind = c.kind;
    k.generation = HTTP_SERIES_GEN.get(0).map_or(0, |g| (*g & 1) as u8);
    k.line_len = line(k, &c.head, series_line_len(&c.head, c.head_len));
    let b = bucket(dur);
    if add_to(k, b, dur) {
        return Counted::Known;
    }
    let mut v = HttpSeries::default();
    v.sum_ns = dur;
    if let Some(n) = v.counts.get_mut(b) {
        *n = 1;
    }
    if HTTP_SERIES.insert(&*k, &v, BPF_NOEXIST as u64).is_ok() {
        return Counted::New;
    }
    // another CPU inserted it first, or the map is full
    if add_to(k, b, dur) {
        return Counted::Known;
    }
    crate::http::count(HttpDrop::SeriesFull);
    Counted::No
}

/// Adds one request to the series `k` if it exists.
#[inline(always)]
fn add_to(k: &HttpSeriesKey, b: usize, dur: u64) -> bool {
    let Some(v) = HTTP_SERIES.get_ptr_mut(k) else {
        return false;
    };
    // SAFETY: a pointer into the map value; every CPU adds atomically.
    let v = unsafe { &mut *v };
    if let Some(n) = v.counts.get_mut(b) {
        add(n, 1);
    }
    add(&mut v.sum_ns, dur);
    true
}

/// The bucket of `dur` ns: the first bound at least `dur`, or one past
/// the last.
#[inline(always)]
fn bucket(dur: u64) -> usize {
    let mut b = 0;
    while b < HTTP_BOUNDS_NS.len() && HTTP_BOUNDS_NS[b] < dur {
        b += 1;
    }
    b
}

/// Words of [`HttpSeriesKey::line`].
const LINE_WORDS: usize = HTTP_LINE_LEN / 8;
const _: () = assert!(HTTP_LINE_LEN % 8 == 0);

/// Fills `k.line` with the first `end` bytes of `head` (the rest zero), a
/// word at a time: how many.
#[inline(always)]
fn line(k: &mut HttpSeriesKey, head: &[u8; HTTP_HEAD_LEN], end: usize) -> u8 {
    // SAFETY: `head` starts 8-aligned in `HttpRecord` (repr(C), after five
    // u64 fields and 8-byte multiples), `line` in `HttpSeriesKey`
    // likewise; both are plain bytes.
    let (src, dst) = unsafe {
        (
            &*(head.as_ptr() as *const [u64; LINE_WORDS]),
            &mut *(k.line.as_mut_ptr() as *mut [u64; LINE_WORDS]),
        )
    };
    let mut w = 0;
    while w < LINE_WORDS {
        let from = w * 8;
        dst[w] = if from + 8 <= end {
            src[w]
        } else if from < end {
            src[w] & ((1u64 << ((end - from) * 8)) - 1)
        } else {
            0
        };
        w += 1;
    }
    end as u8
}

const _: () = assert!(core::mem::offset_of!(HttpRecord, head) % 8 == 0);
const _: () = assert!(core::mem::offset_of!(HttpSeriesKey, line) % 8 == 0);
