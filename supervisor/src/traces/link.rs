//! Links request spans into traces without writing into requests:
//!
//! - **same thread**: a client request made by the thread that is serving
//!   a server request, inside that request's time, is its child (a
//!   thread's records arrive in the order it made them: its calls that
//!   arrived between its previous server span and this one are this one's);
//! - **one TCP connection**: a client span and the server span on the
//!   reversed 4-tuple, the server inside the client's time, are parent and
//!   child (both ends on this host: across processes and containers);
//! - an application's own `traceparent` is never overridden: a span that
//!   carries one keeps its trace id and parent, and eunomia links only
//!   spans below it.
//!
//! Spans arrive when they end, so children come before their parents: each
//! span is held for `hold` before it is emitted with its trace id, and kept
//! for `window` to be found by later spans. Memory is bounded by both and
//! by `max_spans`. What cannot be linked is counted by [`Outcome`].
//!
//! Cost per span does not grow with the window: a connection's index
//! holds only its spans not paired yet, a thread's is searched from its
//! newest span back to its previous server span, and both searches stop at
//! spans that ended too early to be contained (spans arrive in about the
//! order they end: the kernel's one ring buffer; [`ORDER_SLACK`] allows for
//! the rest). Spans are kept in arrival order in one ring, not a hash map:
//! a span's id gives back its arrival number ([`SpanIds`]), so finding a
//! span is an index, and spans leave from the front (about 2.5x less CPU
//! per span than a map of 100k spans keyed by random ids, whose every
//! access missed the cache).
//!
//! What this cannot see: work handed to another thread (a thread pool, an
//! event loop serving many requests on one thread: several server spans
//! on the thread contain the call, counted as `client_parent_ambiguous`),
//! and connections whose other end is not on this host.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    num::{NonZeroU64, NonZeroU128},
    sync::Arc,
};

use rustc_hash::FxHashMap as HashMap;

use super::{
    config::LinkConfig,
    index::{ConnSide, forget, other},
    span::{IdGen, Side, SpanIds, SpanIn},
};

pub(crate) use super::outcome::Outcome;

/// How much later than a span's end a span that ended before it may
/// arrive and still be found by the searches (ns): records are written to
/// one ring buffer as requests end, so they arrive in nearly that order.
const ORDER_SLACK: u64 = 2_000_000_000;

/// Spans of the other end of a connection a span is tried against at
/// most, newest first. On one connection requests follow each other, so
/// the other end is among the last few; without the bound a connection
/// whose other end is not captured (a client elsewhere, a side sampled
/// out) would be scanned over all its spans of the last seconds, for
/// every span.
const CANDIDATES: usize = 64;

/// The other end of a span's connection, found on this host.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Peer {
    /// Its span id.
    pub(crate) span_id: u64,
    /// Who it is.
    pub(crate) node: Arc<str>,
    /// Its duration.
    pub(crate) duration_ns: u64,
    /// Whether it failed.
    pub(crate) failed: bool,
}

impl Peer {
    fn of(e: &Entry) -> Peer {
        Peer {
            span_id: e.id,
            node: e.span.node.clone(),
            duration_ns: e.span.duration_ns(),
            failed: e.span.failed(),
        }
    }
}

/// A span with its place in a trace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinkedSpan {
    /// The span.
    pub(crate) span: SpanIn,
    /// Its id.
    pub(crate) span_id: u64,
    /// Its trace.
    pub(crate) trace_id: u128,
    /// Its parent: a span of this host, or the application's.
    pub(crate) parent_id: Option<u64>,
    /// The other end of its connection, when on this host.
    pub(crate) peer: Option<Peer>,
}

/// A span held, with what linking found for it. Ids are never zero, so
/// the optional ones take no room beyond the id (the ring holds
/// `max_spans` of these: its size is the linker's memory and cache
/// traffic per span; the arrival number is not kept, the id gives it).
struct Entry {
    span: SpanIn,
    id: u64,
    arrived_ns: u64,
    parent: Option<NonZeroU64>,
    peer: Option<NonZeroU64>,
    /// The peer, when it left before this span was emitted.
    peer_left: Option<Peer>,
    ambiguous: bool,
    /// The trace id handed out, for a root (or a span once emitted).
    trace: Option<NonZeroU128>,
    emitted: bool,
}

impl Entry {
    fn parent(&self) -> Option<u64> {
        self.parent.map(NonZeroU64::get)
    }

    fn peer(&self) -> Option<u64> {
        self.peer.map(NonZeroU64::get)
    }

    /// The trace id handed out, else the application's.
    fn trace_or_traceparent(&self) -> Option<u128> {
        self.trace
            .map(NonZeroU128::get)
            .or(self.span.traceparent.map(|tp| tp.trace_id.get()))
    }
}

/// The linker: spans in, linked spans out (see the module docs).
pub(crate) struct Linker {
    cfg: LinkConfig,
    /// Trace ids.
    ids: IdGen,
    /// Span ids, from arrival numbers and back.
    span_ids: SpanIds,
    /// The spans held, in arrival order: `spans[i]` is number `base + i`
    /// (spans leave from the front only: evicted, or past the window).
    spans: VecDeque<Entry>,
    /// The arrival number of `spans[0]`.
    base: u64,
    /// The arrival number of the first span not emitted by [`Linker::drain`] yet.
    pending: u64,
    /// Spans not paired yet, by connection and side, in arrival order.
    by_conn: HashMap<ConnSide, VecDeque<u64>>,
    /// Spans by thread, in arrival order.
    by_thread: HashMap<(u32, u32), VecDeque<u64>>,
    counts: [u64; Outcome::ALL.len()],
}

impl Linker {
    /// An empty linker.
    pub(crate) fn new(cfg: LinkConfig, mut ids: IdGen) -> Linker {
        Linker {
            cfg,
            span_ids: SpanIds::new(ids.next_u64()),
            ids,
            spans: VecDeque::new(),
            base: 1,
            pending: 1,
            by_conn: HashMap::default(),
            by_thread: HashMap::default(),
            counts: [0; Outcome::ALL.len()],
        }
    }

    /// How span ids are handed out.
    pub(crate) fn span_ids(&self) -> SpanIds {
        self.span_ids
    }

    /// Where span `id` is in `spans`, when held.
    fn index(&self, id: u64) -> Option<usize> {
        let i = self.span_ids.seq(id).wrapping_sub(self.base);
        (i < self.spans.len() as u64).then_some(i as usize)
    }

    /// Span `id`, when held.
    fn get(&self, id: u64) -> Option<&Entry> {
        self.index(id).map(|i| &self.spans[i])
    }

    /// Span `id`, when held.
    fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.index(id).map(|i| &mut self.spans[i])
    }

    /// Span `id`, known to be held.
    fn entry(&self, id: u64) -> &Entry {
        self.get(id).expect("held")
    }

    #[cfg(test)]
    /// Spans held now.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    #[cfg(test)]
    /// Whether no span is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Counts per outcome so far.
    pub(crate) fn counts(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL
            .iter()
            .copied()
            .zip(self.counts.iter().copied())
    }

    fn count(&mut self, o: Outcome) {
        self.counts[o as usize] += 1;
    }

    /// Takes one finished span that arrived at `now_ns`; returns spans
    /// emitted early to stay within `max_spans`.
    #[cfg(test)]
    pub(crate) fn push(&mut self, span: SpanIn, now_ns: u64) -> Vec<LinkedSpan> {
        let mut out = Vec::new();
        self.push_span(span, now_ns, &mut out);
        out
    }

    /// [`Linker::push`], the spans emitted early appended to `out`;
    /// returns the id the span gets (its [`LinkedSpan::span_id`] when it
    /// is emitted).
    pub(crate) fn push_span(
        &mut self,
        span: SpanIn,
        now_ns: u64,
        out: &mut Vec<LinkedSpan>,
    ) -> u64 {
        while self.spans.len() >= self.cfg.max_spans.max(1) {
            let Some(&Entry { id, emitted, .. }) = self.spans.front() else {
                break;
            };
            if !emitted {
                self.count(Outcome::Evicted);
                out.push(self.emit(id));
            }
            self.pop_front();
        }
        let seq = self.base + self.spans.len() as u64;
        let id = self.span_ids.id(seq);
        let (conn, thread) = (span.conn(), (span.pid, span.tid));
        self.spans.push_back(Entry {
            span,
            id,
            arrived_ns: now_ns,
            parent: None,
            peer: None,
            peer_left: None,
            ambiguous: false,
            trace: None,
            emitted: false,
        });
        if !self.link_conn(id, conn) {
            let side = self.entry(id).span.side;
            self.by_conn.entry((conn, side)).or_default().push_back(id);
        }
        self.link_thread(id, thread);
        self.by_thread.entry(thread).or_default().push_back(id);
        id
    }

    /// Of the spans `ids`, those still held whose trace has an id already
    /// (a part of it was emitted, or it carries the application's), with
    /// that id: what else is known of a trace when its first spans leave
    /// the hold.
    pub(crate) fn held_in_traces<'a>(
        &'a self,
        ids: &'a [u64],
    ) -> impl Iterator<Item = (u128, &'a SpanIn)> + 'a {
        ids.iter()
            .filter_map(|id| self.get(*id))
            .filter(|e| !e.emitted)
            .filter_map(|e| {
                let trace = self.get(self.root(e.id))?.trace_or_traceparent()?;
                Some((trace, &e.span))
            })
    }

    /// Whether span `id` is held and not emitted yet.
    pub(crate) fn is_held(&self, id: u64) -> bool {
        self.get(id).is_some_and(|e| !e.emitted)
    }

    /// Spans whose hold is over at `now_ns`, linked; forgets spans older
    /// than the window.
    pub(crate) fn drain(&mut self, now_ns: u64) -> Vec<LinkedSpan> {
        let hold = self.cfg.hold.as_nanos() as u64;
        let mut out = Vec::new();
        self.pending = self.pending.max(self.base);
        while let Some(&Entry {
            id,
            emitted,
            arrived_ns,
            ..
        }) = self.spans.get((self.pending - self.base) as usize)
        {
            if !emitted && arrived_ns.saturating_add(hold) > now_ns {
                break;
            }
            self.pending += 1;
            if !emitted {
                out.push(self.emit(id));
            }
        }
        let window = self.cfg.window.as_nanos() as u64;
        while let Some(e) = self.spans.front() {
            if !e.emitted || e.arrived_ns.saturating_add(window) > now_ns {
                break;
            }
            self.pop_front();
        }
        out
    }

    /// Every span not yet emitted (at shutdown).
    pub(crate) fn flush(&mut self) -> Vec<LinkedSpan> {
        self.drain(u64::MAX)
    }

    /// Whether `inner` lies within `outer`, give or take `slack` ns.
    fn contains(outer: &SpanIn, inner: &SpanIn, slack: u64) -> bool {
        outer.start_ns <= inner.start_ns.saturating_add(slack)
            && inner.end_ns <= outer.end_ns.saturating_add(slack)
    }

    /// The strict and the loose slack, in ns.
    fn slacks(&self) -> [u64; 2] {
        [
            self.cfg.slack.as_nanos() as u64,
            self.cfg.loose_slack.as_nanos() as u64,
        ]
    }

    /// Pairs `id` with the other end of its connection: within the strict
    /// slack, else within the loose one; the nearest in time wins. False
    /// when it found none (`id` waits in the connection's index).
    fn link_conn(&mut self, id: u64, conn: (SocketAddr, SocketAddr)) -> bool {
        let me = &self.entry(id).span;
        let [strict, loose] = self.slacks();
        // a candidate ends after me.start - loose
        let early = me
            .start_ns
            .saturating_sub(loose.saturating_add(ORDER_SLACK));
        let waiting = (conn, other(me.side));
        let candidates = |slack| {
            self.by_conn
                .get(&waiting)
                .into_iter()
                .flat_map(|v| v.iter().rev())
                .filter_map(|o| self.get(*o))
                .take_while(|o| o.span.end_ns >= early)
                .take(CANDIDATES)
                .filter(|o| o.peer.is_none())
                .filter(move |o| match me.side {
                    Side::Client => Self::contains(me, &o.span, slack),
                    Side::Server => Self::contains(&o.span, me, slack),
                })
                .min_by_key(|o| {
                    o.span.start_ns.abs_diff(me.start_ns) + o.span.end_ns.abs_diff(me.end_ns)
                })
                .map(|o| o.id)
        };
        let Some(other) = candidates(strict).or_else(|| candidates(loose)) else {
            return false;
        };
        forget(&mut self.by_conn, waiting, other);
        self.get_mut(id).expect("just inserted").peer = NonZeroU64::new(other);
        self.get_mut(other).expect("found").peer = NonZeroU64::new(id);
        let (client, server) = match self.entry(id).span.side {
            Side::Client => (id, other),
            Side::Server => (other, id),
        };
        if self.entry(server).span.traceparent.is_none() {
            self.set_parent(server, client);
        }
        true
    }

    /// Links a server span to the client calls its thread made while
    /// serving it: a thread's records arrive in the order it made them, so
    /// those are the thread's calls that arrived after its previous server
    /// span (and lie within this one's time, give or take the loose
    /// slack). When the previous server span overlaps this one, the thread
    /// serves several requests at once (an event loop): its calls are
    /// ambiguous and stay unlinked.
    fn link_thread(&mut self, id: u64, thread: (u32, u32)) {
        let me = self.entry(id);
        if me.span.side != Side::Server {
            return;
        }
        let [_, loose] = self.slacks();
        // newest first: the calls since its previous server span, that
        // span, and (when the two overlap) the calls before it that could
        // lie within this one
        let early = me
            .span
            .start_ns
            .saturating_sub(loose.saturating_add(ORDER_SLACK));
        let mut prev: Option<&Entry> = None;
        let mut on_thread: Vec<&Entry> = Vec::new();
        for o in self
            .by_thread
            .get(&thread)
            .into_iter()
            .flat_map(|v| v.iter().rev())
            .filter_map(|o| self.get(*o))
        {
            if o.id == id {
                continue;
            }
            if o.span.end_ns < early {
                break;
            }
            if prev.is_none() && o.span.side == Side::Server {
                prev = Some(o);
                if o.span.end_ns <= me.span.start_ns.saturating_add(loose) {
                    break;
                }
                continue;
            }
            on_thread.push(o);
        }
        let concurrent =
            prev.is_some_and(|p| p.span.end_ns > me.span.start_ns.saturating_add(loose));
        let seq = |e: &Entry| self.span_ids.seq(e.id);
        let after = prev.map_or(0, seq);
        let calls = |o: &&&Entry| {
            o.span.side == Side::Client
                && o.span.traceparent.is_none()
                && Self::contains(&me.span, &o.span, loose)
        };
        let mine: Vec<u64> = on_thread
            .iter()
            .filter(calls)
            .filter(|o| seq(o) > after && o.parent.is_none() && !o.ambiguous)
            .map(|o| o.id)
            .collect();
        let contested: Vec<u64> = match prev {
            Some(p) if concurrent => on_thread
                .iter()
                .filter(calls)
                .filter(|o| o.parent() == Some(p.id) && !o.emitted)
                .map(|o| o.id)
                .collect(),
            _ => Vec::new(),
        };
        for c in contested
            .into_iter()
            .chain(concurrent.then_some(mine.clone()).into_iter().flatten())
        {
            let e = self.get_mut(c).expect("found");
            e.parent = None;
            e.ambiguous = true;
        }
        if !concurrent {
            for c in mine {
                self.set_parent(c, id);
            }
        }
    }

    /// The root above `id` (bounded walk).
    fn root(&self, mut id: u64) -> u64 {
        for _ in 0..64 {
            match self.get(id).and_then(Entry::parent) {
                Some(p) if self.index(p).is_some() => id = p,
                _ => break,
            }
        }
        id
    }

    /// Makes `parent` the parent of the root `child`; a trace id already
    /// handed out below `child` is adopted by the parent's tree.
    fn set_parent(&mut self, child: u64, parent: u64) {
        if self.root(parent) == child {
            return;
        }
        let child_trace = self.entry(child).trace;
        self.get_mut(child).expect("known").parent = NonZeroU64::new(parent);
        let Some(t) = child_trace else { return };
        let root = self.root(parent);
        let r = self.get_mut(root).expect("known");
        match r.trace_or_traceparent() {
            None => r.trace = Some(t),
            Some(rt) if rt == t.get() => {}
            Some(_) => self.count(Outcome::SplitTrace),
        }
    }

    /// The trace id of `id`: its root's (the application's, or one
    /// handed out now).
    fn trace_of(&mut self, id: u64) -> u128 {
        if let Some(t) = self.entry(id).trace {
            return t.get();
        }
        let root = self.root(id);
        let t = match self.entry(root).trace_or_traceparent() {
            Some(t) => t,
            None => self.ids.next_u128(),
        };
        self.get_mut(root).expect("known").trace = NonZeroU128::new(t);
        t
    }

    fn emit(&mut self, id: u64) -> LinkedSpan {
        let trace_id = self.trace_of(id);
        let e = self.get_mut(id).expect("known");
        e.emitted = true;
        e.trace = NonZeroU128::new(trace_id);
        let (parent, peer, side, tp, ambiguous) = (
            e.parent(),
            e.peer(),
            e.span.side,
            e.span.traceparent,
            e.ambiguous,
        );
        let span = e.span.clone();
        let parent_id = parent.or(tp.map(|t| t.parent_id));
        let peer = match peer.and_then(|p| self.get(p)) {
            Some(p) => Some(Peer::of(p)),
            None => self.get_mut(id).and_then(|e| e.peer_left.take()),
        };
        let outcomes: &[Outcome] = match side {
            Side::Server if parent.is_some() => &[Outcome::ServerParentClient],
            Side::Server if tp.is_some() => &[Outcome::ServerParentTraceparent],
            Side::Server => &[Outcome::ServerNoParent],
            Side::Client => &[],
        };
        for o in outcomes {
            self.count(*o);
        }
        if side == Side::Client {
            self.count(match peer {
                Some(_) => Outcome::ClientServerOnHost,
                None => Outcome::ClientServerNotOnHost,
            });
            self.count(match (parent, tp, ambiguous) {
                (Some(_), _, _) => Outcome::ClientParentThread,
                (None, Some(_), _) => Outcome::ClientParentTraceparent,
                (None, None, true) => Outcome::ClientParentAmbiguous,
                (None, None, false) => Outcome::ClientNoParent,
            });
        }
        LinkedSpan {
            span,
            span_id: id,
            trace_id,
            parent_id,
            peer,
        }
    }

    /// Forgets the oldest span.
    fn pop_front(&mut self) {
        let Some(e) = self.spans.pop_front() else {
            return;
        };
        self.base += 1;
        match e.peer() {
            None => forget(&mut self.by_conn, (e.span.conn(), e.span.side), e.id),
            // it leaves first (evicted): its peer still names it
            Some(p) => {
                if let Some(p) = self.get_mut(p)
                    && !p.emitted
                {
                    p.peer_left = Some(Peer::of(&e));
                }
            }
        }
        forget(&mut self.by_thread, (e.span.pid, e.span.tid), e.id);
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
