//! The RED histograms the kernel counts (`hotpath-ebpf/src/http_series.rs`),
//! read once per interval: the generation the kernel counts into is
//! flipped, and after a short grace (a program that read the old one is
//! done with it) the series of the old one are read and deleted from the
//! map. Each comes out as its key and histogram, for the source to fold
//! into its RED series with the route of its path.
//!
//! A program preempted for longer than the grace between reading the
//! generation and adding to its series could add to a series already read:
//! that request would be lost uncounted. Tracepoint programs run in
//! microseconds, so the grace is a thousand times that.

use std::{net::IpAddr, time::Duration};

use std::os::fd::AsFd as _;

use aya::maps::{Array, HashMap, IterableMap as _, MapData, MapError};
use hotpath_common::http::{HTTP_CLIENT, HttpSeries, HttpSeriesKey};

use super::request::addr;
use crate::hotpath::batch;

/// How long after a flip the old generation is read.
pub(crate) const GRACE: Duration = Duration::from_millis(10);

/// The kernel's series map and its generation switch.
pub(crate) struct KernelSeries {
    map: HashMap<MapData, HttpSeriesKey, HttpSeries>,
    generation: Array<MapData, u32>,
    current: u32,
    /// Batched reads failed (said once).
    one_by_one: bool,
}

/// One series as the kernel counted it.
pub(crate) struct Counted<'a> {
    /// cgroup v2 id.
    pub(crate) cgroup: u64,
    /// A call (client side) rather than a request served.
    pub(crate) client: bool,
    /// The status code's class digit (2 for 2xx).
    pub(crate) class: u8,
    /// The request line's method and path.
    pub(crate) line: &'a [u8],
    /// The server called (client side).
    pub(crate) server: Option<(IpAddr, u16)>,
    /// Requests per bucket (`super::red::BOUNDS`, then one above).
    pub(crate) counts: &'a [u64],
    /// Sum of the durations (s).
    pub(crate) sum_s: f64,
}

impl KernelSeries {
    /// The kernel's maps (the kernel counts into generation 0 at first).
    pub(crate) fn new(
        map: HashMap<MapData, HttpSeriesKey, HttpSeries>,
        generation: Array<MapData, u32>,
    ) -> KernelSeries {
        KernelSeries {
            map,
            generation,
            current: 0,
            one_by_one: false,
        }
    }

    /// Has the kernel count into the other generation from now on.
    pub(crate) fn flip(&mut self) -> Result<(), MapError> {
        self.generation.set(0, self.current ^ 1, 0)?;
        self.current ^= 1;
        Ok(())
    }

    /// The series of the generation left at the last flip (call it
    /// [`GRACE`] after), each handed to `each`, then deleted: how many.
    /// Read and deleted in batches (a system call per thousand series),
    /// else one by one.
    pub(crate) fn take(&mut self, mut each: impl FnMut(&Counted<'_>)) -> usize {
        let old = (self.current ^ 1) as u8;
        let fd = self.map.map().fd().as_fd();
        let all = batch::lookup_all::<HttpSeriesKey, HttpSeries>(fd);
        if let Err(e) = &all
            && !self.one_by_one
        {
            tracing::warn!("http: batched map reads unavailable ({e}): reading series one by one");
            self.one_by_one = true;
        }
        if let Ok(all) = all {
            let mut keys = Vec::with_capacity(all.len());
            for (k, v) in all.iter().filter(|(k, _)| k.generation == old) {
                each(&counted(k, v));
                keys.push(*k);
            }
            if let Err(e) = batch::delete_all(fd, &keys) {
                tracing::warn!("http: deleting the series read: {e}");
                for k in &keys {
                    let _ = self.map.remove(k);
                }
            }
            return keys.len();
        }
        self.take_one_by_one(old, each)
    }

    /// [`KernelSeries::take`] a series at a time (kernels without batched
    /// map operations).
    fn take_one_by_one(&mut self, old: u8, mut each: impl FnMut(&Counted<'_>)) -> usize {
        let keys: Vec<HttpSeriesKey> = self
            .map
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.generation == old)
            .collect();
        for k in &keys {
            if let Ok(v) = self.map.get(k, 0) {
                each(&counted(k, &v));
            }
            let _ = self.map.remove(k);
        }
        keys.len()
    }
}

/// A key and its histogram as [`Counted`].
pub(crate) fn counted<'a>(k: &'a HttpSeriesKey, v: &'a HttpSeries) -> Counted<'a> {
    let client = k.kind == HTTP_CLIENT;
    Counted {
        cgroup: k.cgroup_id,
        client,
        class: k.class,
        line: &k.line[..(k.line_len as usize).min(k.line.len())],
        server: client.then(|| (addr(k.family, &k.addr), k.port)),
        counts: &v.counts,
        sum_s: v.sum_ns as f64 / 1e9,
    }
}

#[cfg(test)]
mod tests {
    use hotpath_common::http::HTTP_BOUNDS_NS;

    use super::*;
    use crate::http::red::BOUNDS;

    #[test]
    fn the_kernel_buckets_are_the_metric_buckets() {
        assert_eq!(HTTP_BOUNDS_NS.len(), BOUNDS.len());
        for (ns, s) in HTTP_BOUNDS_NS.iter().zip(BOUNDS) {
            assert_eq!(*ns, (s * 1e9).round() as u64);
        }
    }

    #[test]
    fn a_key_reads_as_its_series() {
        let mut k = HttpSeriesKey {
            cgroup_id: 9,
            addr: [0; 16],
            family: 2,
            port: 8080,
            class: 5,
            kind: HTTP_CLIENT,
            generation: 1,
            line_len: 10,
            line: [0; hotpath_common::http::HTTP_LINE_LEN],
        };
        k.addr[..4].copy_from_slice(&[10, 0, 0, 7]);
        k.line[..10].copy_from_slice(b"GET /users");
        let mut v = HttpSeries {
            sum_ns: 1_500_000_000,
            ..HttpSeries::default()
        };
        v.counts[3] = 2;
        let c = counted(&k, &v);
        assert_eq!(c.line, b"GET /users");
        assert_eq!(c.server, Some(("10.0.0.7".parse().unwrap(), 8080)));
        assert_eq!((c.cgroup, c.client, c.class), (9, true, 5));
        assert_eq!(c.counts.iter().sum::<u64>(), 2);
        assert!((c.sum_s - 1.5).abs() < 1e-9);
        k.line_len = 200;
        assert_eq!(counted(&k, &v).line.len(), k.line.len());
    }
}
