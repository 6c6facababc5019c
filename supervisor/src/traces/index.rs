//! The linker's indexes of the spans it holds: lists of span ids in
//! arrival order, by connection and side (spans waiting for their other
//! end) and by thread.

use std::{collections::VecDeque, net::SocketAddr};

use rustc_hash::FxHashMap as HashMap;

use super::span::Side;

/// A connection and the side of the spans waiting on it for their other
/// end.
pub(super) type ConnSide = ((SocketAddr, SocketAddr), Side);

/// The other side.
pub(super) fn other(side: Side) -> Side {
    match side {
        Side::Client => Side::Server,
        Side::Server => Side::Client,
    }
}

/// Takes `id` out of the index list of `key` (lists are in arrival order
/// and spans leave in about that order: the front is tried first).
pub(super) fn forget<K: std::hash::Hash + Eq>(
    index: &mut HashMap<K, VecDeque<u64>>,
    key: K,
    id: u64,
) {
    if let Some(v) = index.get_mut(&key) {
        if v.front() == Some(&id) {
            v.pop_front();
        } else if let Some(i) = v.iter().rposition(|x| *x == id) {
            v.remove(i);
        }
        if v.is_empty() {
            index.remove(&key);
        }
    }
}
