//! What the linker needs of one request span, independent of where it came
//! from (the HTTP source's events today), and the ids it hands out.

use std::{
    hash::{BuildHasher, RandomState},
    net::SocketAddr,
    num::NonZeroU128,
    sync::Arc,
};

/// Which end of a request a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    /// This host served the request.
    Server,
    /// This host made the request.
    Client,
}

/// A W3C `traceparent` the application put into its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TraceParent {
    /// The trace id (non-zero: a span's optional traceparent takes no
    /// room beyond it).
    pub(crate) trace_id: NonZeroU128,
    /// The span id of the application's span that made the request.
    pub(crate) parent_id: u64,
}

impl TraceParent {
    /// The ids of a `traceparent` header (trace id, parent span id, big
    /// endian as written); None when either is zero.
    pub(crate) fn from_bytes(trace_id: [u8; 16], parent_id: [u8; 8]) -> Option<TraceParent> {
        let parent_id = u64::from_be_bytes(parent_id);
        let trace_id = NonZeroU128::new(u128::from_be_bytes(trace_id))?;
        (parent_id != 0).then_some(TraceParent {
            trace_id,
            parent_id,
        })
    }
}

/// One finished request, as the linker sees it. Times are in one clock
/// for every span (nanoseconds).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpanIn {
    /// Server or client.
    pub(crate) side: Side,
    /// Process id (host namespace).
    pub(crate) pid: u32,
    /// Thread that read the request (server) or wrote it (client).
    pub(crate) tid: u32,
    /// When the request started.
    pub(crate) start_ns: u64,
    /// When the response was complete.
    pub(crate) end_ns: u64,
    /// This end of the connection.
    pub(crate) local: SocketAddr,
    /// The other end.
    pub(crate) remote: SocketAddr,
    /// HTTP status code (0: none).
    pub(crate) status: u16,
    /// The application's own trace context, if the request carried one.
    pub(crate) traceparent: Option<TraceParent>,
    /// Who this end is: container, pod or service name (or the process).
    pub(crate) node: Arc<str>,
    /// The kernel sampled its call chain (`HttpRequest::sampled`).
    pub(crate) sampled: bool,
}

impl SpanIn {
    /// The connection as `(client address, server address)`, the same for
    /// both ends of one TCP connection.
    pub(crate) fn conn(&self) -> (SocketAddr, SocketAddr) {
        match self.side {
            Side::Client => (self.local, self.remote),
            Side::Server => (self.remote, self.local),
        }
    }

    /// Duration in nanoseconds.
    pub(crate) fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// Whether the request failed (a 5xx, or no status at all).
    pub(crate) fn failed(&self) -> bool {
        self.status >= 500 || self.status == 0
    }
}

/// The splitmix64 increment.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The inverse of an odd `a` modulo 2^64 (Newton's iteration).
const fn inverse(a: u64) -> u64 {
    let mut x = a;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}

const M1: u64 = 0xbf58_476d_1ce4_e5b9;
const M2: u64 = 0x94d0_49bb_1331_11eb;

/// splitmix64's output function: a bijection of u64 that maps only 0 to 0.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(M1);
    z = (z ^ (z >> 27)).wrapping_mul(M2);
    z ^ (z >> 31)
}

/// The inverse of [`mix`].
fn unmix(mut z: u64) -> u64 {
    z ^= (z >> 31) ^ (z >> 62);
    z = z.wrapping_mul(inverse(M2));
    z ^= (z >> 27) ^ (z >> 54);
    z = z.wrapping_mul(inverse(M1));
    z ^ (z >> 30) ^ (z >> 60)
}

/// Span ids from the linker's arrival numbers, both ways: random-looking
/// and unique (splitmix64 over a per-process random key, as [`IdGen`]),
/// and the number back from an id with no table (the linker keeps its
/// spans in arrival order and finds one by its id in O(1)). Never zero
/// for numbers below 2^63.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanIds {
    key: u64,
}

impl SpanIds {
    /// Ids keyed by `seed`: the one number whose id would be zero is at or
    /// above 2^63.
    pub(crate) fn new(seed: u64) -> SpanIds {
        let zero_at = seed | (1 << 63);
        SpanIds {
            key: zero_at.wrapping_mul(GOLDEN).wrapping_neg(),
        }
    }

    /// The id of arrival number `seq`.
    pub(crate) fn id(self, seq: u64) -> u64 {
        mix(self.key.wrapping_add(seq.wrapping_mul(GOLDEN)))
    }

    /// The arrival number of `id` (any u64 gives one: callers check it).
    pub(crate) fn seq(self, id: u64) -> u64 {
        unmix(id)
            .wrapping_sub(self.key)
            .wrapping_mul(inverse(GOLDEN))
    }
}

/// Hands out random, non-zero span and trace ids (splitmix64 over a
/// per-process random seed; ids need to be unique, not secret).
#[derive(Debug)]
pub(crate) struct IdGen {
    state: u64,
}

impl Default for IdGen {
    fn default() -> Self {
        IdGen {
            state: RandomState::new().hash_one(std::time::SystemTime::now()),
        }
    }
}

impl IdGen {
    #[cfg(test)]
    /// A generator with a fixed seed (tests).
    pub(crate) fn seeded(seed: u64) -> IdGen {
        IdGen { state: seed }
    }

    /// The next 64-bit id, never zero.
    pub(crate) fn next_u64(&mut self) -> u64 {
        loop {
            self.state = self.state.wrapping_add(GOLDEN);
            let z = mix(self.state);
            if z != 0 {
                return z;
            }
        }
    }

    /// The next 128-bit trace id, never zero.
    pub(crate) fn next_u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_bytes() {
        use model::span::from_hex;
        let t = TraceParent::from_bytes(
            from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            from_hex("00f067aa0ba902b7").unwrap(),
        )
        .unwrap();
        assert_eq!(t.trace_id.get(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(t.parent_id, 0x00f067aa0ba902b7);
        assert!(TraceParent::from_bytes([0; 16], [1; 8]).is_none());
    }

    #[test]
    fn span_ids_give_back_their_number() {
        for seed in [0, 1, 7, u64::MAX, 0x1234_5678_9abc_def0] {
            let ids = SpanIds::new(seed);
            let a: Vec<u64> = (0..1000).map(|n| ids.id(n)).collect();
            let set: std::collections::HashSet<_> = a.iter().collect();
            assert_eq!(set.len(), a.len());
            for (n, id) in a.iter().enumerate() {
                assert_ne!(*id, 0);
                assert_eq!(ids.seq(*id), n as u64);
            }
            let zero_at = ids.seq(0);
            assert!(zero_at >= 1 << 63, "{zero_at}");
            assert_eq!(ids.id(zero_at), 0);
        }
        assert_ne!(SpanIds::new(1).id(5), SpanIds::new(2).id(5));
    }

    #[test]
    fn ids_are_distinct_and_non_zero() {
        let mut g = IdGen::seeded(0);
        let a: Vec<u64> = (0..1000).map(|_| g.next_u64()).collect();
        let set: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(set.len(), a.len());
        assert!(a.iter().all(|x| *x != 0));
    }
}
