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
//! the rest).
//!
//! What this cannot see: work handed to another thread (a thread pool, an
//! event loop serving many requests on one thread: several server spans
//! on the thread contain the call, counted as `client_parent_ambiguous`),
//! and connections whose other end is not on this host.

use std::{collections::VecDeque, net::SocketAddr, sync::Arc, time::Duration};

use rustc_hash::FxHashMap as HashMap;

use super::span::{IdGen, Side, SpanIn};

pub(crate) use super::outcome::Outcome;

/// How much later than a span's end a span that ended before it may
/// arrive and still be found by the searches (ns): records are written to
/// one ring buffer as requests end, so they arrive in nearly that order.
const ORDER_SLACK: u64 = 2_000_000_000;

/// How linking is bounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LinkConfig {
    /// How long a span waits for its parent before it is emitted.
    pub(crate) hold: Duration,
    /// How long a span can be found by later spans.
    pub(crate) window: Duration,
    /// Clock tolerance of the containment tests.
    pub(crate) slack: Duration,
    /// The tolerance of a second try when nothing matched within `slack`
    /// (spans timed from when the agent read them are late by how long
    /// their record waited; a busy machine makes that milliseconds).
    pub(crate) loose_slack: Duration,
    /// Spans kept at most; beyond, the oldest is emitted early.
    pub(crate) max_spans: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            hold: Duration::from_secs(2),
            window: Duration::from_secs(10),
            slack: Duration::from_micros(500),
            loose_slack: Duration::from_millis(100),
            max_spans: 100_000,
        }
    }
}

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

struct Entry {
    span: SpanIn,
    id: u64,
    arrived_ns: u64,
    parent: Option<u64>,
    peer: Option<u64>,
    ambiguous: bool,
    /// Arrival order.
    seq: u64,
    /// The trace id handed out, for a root (or a span once emitted).
    trace: Option<u128>,
    emitted: bool,
}

/// The linker: spans in, linked spans out (see the module docs).
pub(crate) struct Linker {
    cfg: LinkConfig,
    ids: IdGen,
    spans: HashMap<u64, Entry>,
    order: VecDeque<u64>,
    pending: VecDeque<u64>,
    /// Spans not paired yet, by connection, in arrival order.
    by_conn: HashMap<(SocketAddr, SocketAddr), VecDeque<u64>>,
    /// Spans by thread, in arrival order.
    by_thread: HashMap<(u32, u32), VecDeque<u64>>,
    counts: [u64; Outcome::ALL.len()],
    seq: u64,
}

impl Linker {
    /// An empty linker.
    pub(crate) fn new(cfg: LinkConfig, ids: IdGen) -> Linker {
        Linker {
            cfg,
            ids,
            spans: HashMap::default(),
            order: VecDeque::new(),
            pending: VecDeque::new(),
            by_conn: HashMap::default(),
            by_thread: HashMap::default(),
            counts: [0; Outcome::ALL.len()],
            seq: 0,
        }
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
        self.push_span(span, now_ns).1
    }

    /// [`Linker::push`], with the id the span gets (its
    /// [`LinkedSpan::span_id`] when it is emitted).
    pub(crate) fn push_span(&mut self, span: SpanIn, now_ns: u64) -> (u64, Vec<LinkedSpan>) {
        let mut out = Vec::new();
        while self.spans.len() >= self.cfg.max_spans.max(1) {
            let Some(old) = self.order.front().copied() else {
                break;
            };
            if let Some(e) = self.spans.get(&old)
                && !e.emitted
            {
                self.count(Outcome::Evicted);
                out.push(self.emit(old));
            }
            self.order.pop_front();
            self.remove(old);
        }
        let id = self.ids.next_u64();
        self.seq += 1;
        let (conn, thread) = (span.conn(), (span.pid, span.tid));
        self.spans.insert(
            id,
            Entry {
                span,
                id,
                arrived_ns: now_ns,
                parent: None,
                peer: None,
                ambiguous: false,
                seq: self.seq,
                trace: None,
                emitted: false,
            },
        );
        self.order.push_back(id);
        self.pending.push_back(id);
        if !self.link_conn(id, conn) {
            self.by_conn.entry(conn).or_default().push_back(id);
        }
        self.link_thread(id, thread);
        self.by_thread.entry(thread).or_default().push_back(id);
        (id, out)
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
            .filter_map(|id| self.spans.get(id))
            .filter(|e| !e.emitted)
            .filter_map(|e| {
                let r = self.spans.get(&self.root(e.id))?;
                let trace = r.trace.or(r.span.traceparent.map(|tp| tp.trace_id))?;
                Some((trace, &e.span))
            })
    }

    /// Whether span `id` is held and not emitted yet.
    pub(crate) fn is_held(&self, id: u64) -> bool {
        self.spans.get(&id).is_some_and(|e| !e.emitted)
    }

    /// Spans whose hold is over at `now_ns`, linked; forgets spans older
    /// than the window.
    pub(crate) fn drain(&mut self, now_ns: u64) -> Vec<LinkedSpan> {
        let hold = self.cfg.hold.as_nanos() as u64;
        let mut out = Vec::new();
        while let Some(&id) = self.pending.front() {
            let ready = self
                .spans
                .get(&id)
                .is_none_or(|e| e.emitted || e.arrived_ns.saturating_add(hold) <= now_ns);
            if !ready {
                break;
            }
            self.pending.pop_front();
            if self.spans.get(&id).is_some_and(|e| !e.emitted) {
                out.push(self.emit(id));
            }
        }
        let window = self.cfg.window.as_nanos() as u64;
        while let Some(&id) = self.order.front() {
            let old = self
                .spans
                .get(&id)
                .is_none_or(|e| e.emitted && e.arrived_ns.saturating_add(window) <= now_ns);
            if !old {
                break;
            }
            self.order.pop_front();
            self.remove(id);
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
        let me = &self.spans[&id].span;
        let [strict, loose] = self.slacks();
        // a candidate ends after me.start - loose
        let early = me
            .start_ns
            .saturating_sub(loose.saturating_add(ORDER_SLACK));
        let candidates = |slack| {
            self.by_conn
                .get(&conn)
                .into_iter()
                .flat_map(|v| v.iter().rev())
                .filter_map(|o| self.spans.get(o))
                .take_while(|o| o.span.end_ns >= early)
                .filter(|o| o.span.side != me.side && o.peer.is_none())
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
        forget(&mut self.by_conn, conn, other);
        self.spans.get_mut(&id).expect("just inserted").peer = Some(other);
        self.spans.get_mut(&other).expect("found").peer = Some(id);
        let (client, server) = match self.spans[&id].span.side {
            Side::Client => (id, other),
            Side::Server => (other, id),
        };
        if self.spans[&server].span.traceparent.is_none() {
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
        let me = &self.spans[&id];
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
            .filter_map(|o| self.spans.get(o))
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
        let after = prev.map_or(0, |p| p.seq);
        let calls = |o: &&&Entry| {
            o.span.side == Side::Client
                && o.span.traceparent.is_none()
                && Self::contains(&me.span, &o.span, loose)
        };
        let mine: Vec<u64> = on_thread
            .iter()
            .filter(calls)
            .filter(|o| o.seq > after && o.parent.is_none() && !o.ambiguous)
            .map(|o| o.id)
            .collect();
        let contested: Vec<u64> = match prev {
            Some(p) if concurrent => on_thread
                .iter()
                .filter(calls)
                .filter(|o| o.parent == Some(p.id) && !o.emitted)
                .map(|o| o.id)
                .collect(),
            _ => Vec::new(),
        };
        for c in contested
            .into_iter()
            .chain(concurrent.then_some(mine.clone()).into_iter().flatten())
        {
            let e = self.spans.get_mut(&c).expect("found");
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
            match self.spans.get(&id).and_then(|e| e.parent) {
                Some(p) if self.spans.contains_key(&p) => id = p,
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
        let child_trace = self.spans[&child].trace;
        self.spans.get_mut(&child).expect("known").parent = Some(parent);
        let Some(t) = child_trace else { return };
        let root = self.root(parent);
        let r = self.spans.get_mut(&root).expect("known");
        let root_trace = r.trace.or(r.span.traceparent.map(|tp| tp.trace_id));
        match root_trace {
            None => r.trace = Some(t),
            Some(rt) if rt == t => {}
            Some(_) => self.count(Outcome::SplitTrace),
        }
    }

    /// The trace id of `id`: its root's (the application's, or one
    /// handed out now).
    fn trace_of(&mut self, id: u64) -> u128 {
        if let Some(t) = self.spans[&id].trace {
            return t;
        }
        let root = self.root(id);
        let r = &self.spans[&root];
        let t = match (r.trace, r.span.traceparent) {
            (Some(t), _) => t,
            (None, Some(tp)) => tp.trace_id,
            (None, None) => self.ids.next_u128(),
        };
        self.spans.get_mut(&root).expect("known").trace = Some(t);
        t
    }

    fn emit(&mut self, id: u64) -> LinkedSpan {
        let trace_id = self.trace_of(id);
        let e = self.spans.get_mut(&id).expect("known");
        e.emitted = true;
        e.trace = Some(trace_id);
        let (parent, peer, side, tp, ambiguous) = (
            e.parent,
            e.peer,
            e.span.side,
            e.span.traceparent,
            e.ambiguous,
        );
        let span = e.span.clone();
        let parent_id = parent.or(tp.map(|t| t.parent_id));
        let peer = peer.and_then(|p| self.spans.get(&p)).map(|p| Peer {
            span_id: p.id,
            node: p.span.node.clone(),
            duration_ns: p.span.duration_ns(),
            failed: p.span.failed(),
        });
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

    /// Forgets `id` (already taken off `order`).
    fn remove(&mut self, id: u64) {
        let Some(e) = self.spans.remove(&id) else {
            return;
        };
        if e.peer.is_none() {
            forget(&mut self.by_conn, e.span.conn(), id);
        }
        forget(&mut self.by_thread, (e.span.pid, e.span.tid), id);
    }
}

/// Takes `id` out of the index list of `key` (lists are in arrival order
/// and spans leave in about that order: the front is tried first).
fn forget<K: std::hash::Hash + Eq>(index: &mut HashMap<K, VecDeque<u64>>, key: K, id: u64) {
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

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
