use std::net::SocketAddr;

use super::*;
use crate::traces::span::TraceParent;

const MS: u64 = 1_000_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A span of `node` (pid, tid) from `start` to `end` ms.
fn span(
    side: Side,
    node: &str,
    pid_tid: (u32, u32),
    ms: (u64, u64),
    local: &str,
    remote: &str,
) -> SpanIn {
    SpanIn {
        side,
        pid: pid_tid.0,
        tid: pid_tid.1,
        start_ns: ms.0 * MS,
        end_ns: ms.1 * MS,
        local: addr(local),
        remote: addr(remote),
        status: 200,
        traceparent: None,
        node: node.into(),
        sampled: false,
    }
}

/// The tests' times are in ms: a loose slack to their scale.
fn cfg() -> LinkConfig {
    LinkConfig {
        loose_slack: std::time::Duration::from_millis(3),
        ..LinkConfig::default()
    }
}

fn linker() -> Linker {
    Linker::new(cfg(), IdGen::seeded(7))
}

/// frontend serves a user, calls api; api calls data. Arrival in end order.
fn chain() -> Vec<SpanIn> {
    use Side::*;
    vec![
        span(
            Server,
            "data",
            (3, 31),
            (22, 48),
            "10.0.0.3:80",
            "10.0.0.2:4000",
        ),
        span(
            Client,
            "api",
            (2, 21),
            (20, 50),
            "10.0.0.2:4000",
            "10.0.0.3:80",
        ),
        span(
            Server,
            "api",
            (2, 21),
            (12, 58),
            "10.0.0.2:80",
            "10.0.0.1:5000",
        ),
        span(
            Client,
            "frontend",
            (1, 11),
            (10, 60),
            "10.0.0.1:5000",
            "10.0.0.2:80",
        ),
        span(
            Server,
            "frontend",
            (1, 11),
            (0, 100),
            "10.0.0.1:80",
            "192.168.1.9:6000",
        ),
    ]
}

fn run(l: &mut Linker, spans: Vec<SpanIn>) -> Vec<LinkedSpan> {
    let mut out = Vec::new();
    for s in spans {
        let now = s.end_ns;
        out.extend(l.push(s, now));
    }
    out.extend(l.flush());
    out
}

fn by_node<'a>(out: &'a [LinkedSpan], node: &str, side: Side) -> &'a LinkedSpan {
    out.iter()
        .find(|s| &*s.span.node == node && s.span.side == side)
        .unwrap()
}

fn count(l: &Linker, o: Outcome) -> u64 {
    l.counts().find(|(x, _)| *x == o).unwrap().1
}

#[test]
fn one_trace_runs_through_every_service() {
    let mut l = linker();
    let out = run(&mut l, chain());
    assert_eq!(out.len(), 5);
    let t = out[0].trace_id;
    assert!(out.iter().all(|s| s.trace_id == t), "{out:#?}");
    let fe_s = by_node(&out, "frontend", Side::Server);
    let fe_c = by_node(&out, "frontend", Side::Client);
    let api_s = by_node(&out, "api", Side::Server);
    let api_c = by_node(&out, "api", Side::Client);
    let data_s = by_node(&out, "data", Side::Server);
    assert_eq!(fe_s.parent_id, None);
    assert_eq!(fe_c.parent_id, Some(fe_s.span_id));
    assert_eq!(api_s.parent_id, Some(fe_c.span_id));
    assert_eq!(api_c.parent_id, Some(api_s.span_id));
    assert_eq!(data_s.parent_id, Some(api_c.span_id));
    assert_eq!(fe_c.peer.as_ref().unwrap().node.as_ref(), "api");
    assert_eq!(api_c.peer.as_ref().unwrap().duration_ns, 26 * MS);
    assert_eq!(count(&l, Outcome::ServerParentClient), 2);
    assert_eq!(count(&l, Outcome::ServerNoParent), 1);
    assert_eq!(count(&l, Outcome::ClientServerOnHost), 2);
    assert_eq!(count(&l, Outcome::ClientParentThread), 2);
    assert!(l.is_empty() || l.len() <= 5);
}

#[test]
fn the_order_of_processes_records_does_not_matter() {
    let mut l = linker();
    let mut spans = chain();
    // data's and api's records read before the frontend's, in the other
    // order across processes (each thread's own order kept)
    spans.swap(0, 1);
    spans.swap(2, 3);
    let out = run(&mut l, spans);
    let t = out[0].trace_id;
    assert!(out.iter().all(|s| s.trace_id == t), "{out:#?}");
    assert_eq!(out.iter().filter(|s| s.parent_id.is_none()).count(), 1);
}

#[test]
fn two_requests_make_two_traces() {
    let mut l = linker();
    let mut spans = chain();
    // the same chain 200 ms later, new connections
    for s in chain() {
        let mut s = s;
        s.start_ns += 200 * MS;
        s.end_ns += 200 * MS;
        s.local.set_port(s.local.port() + 1);
        s.remote.set_port(s.remote.port() + 1);
        spans.push(s);
    }
    let out = run(&mut l, spans);
    let traces: std::collections::HashSet<_> = out.iter().map(|s| s.trace_id).collect();
    assert_eq!(traces.len(), 2);
}

#[test]
fn the_applications_traceparent_is_kept() {
    let mut l = linker();
    let mut spans = chain();
    let app = TraceParent {
        trace_id: std::num::NonZeroU128::new(0xabc).unwrap(),
        parent_id: 0x123,
    };
    let own = TraceParent {
        trace_id: std::num::NonZeroU128::new(0xabc).unwrap(),
        parent_id: 0x456,
    };
    spans[4].traceparent = Some(app); // frontend got one from its caller
    spans[2].traceparent = Some(own); // the frontend app propagated its own
    let out = run(&mut l, spans);
    let fe_s = by_node(&out, "frontend", Side::Server);
    let api_s = by_node(&out, "api", Side::Server);
    let data_s = by_node(&out, "data", Side::Server);
    assert_eq!((fe_s.trace_id, fe_s.parent_id), (0xabc, Some(0x123)));
    assert_eq!((api_s.trace_id, api_s.parent_id), (0xabc, Some(0x456)));
    assert_eq!(data_s.trace_id, 0xabc);
    // the api's server end still pairs with the frontend's call (the map)
    assert_eq!(
        by_node(&out, "frontend", Side::Client)
            .peer
            .as_ref()
            .unwrap()
            .node
            .as_ref(),
        "api"
    );
    assert_eq!(count(&l, Outcome::ServerParentTraceparent), 2);
}

#[test]
fn work_handed_to_another_thread_is_not_linked() {
    let mut l = linker();
    let mut spans = chain();
    spans[1].tid = 22; // api calls data from a pool thread
    let out = run(&mut l, spans);
    let api_c = by_node(&out, "api", Side::Client);
    assert_eq!(api_c.parent_id, None);
    assert_ne!(api_c.trace_id, by_node(&out, "api", Side::Server).trace_id);
    // data's server span still joins the call that caused it
    assert_eq!(by_node(&out, "data", Side::Server).trace_id, api_c.trace_id);
    assert_eq!(count(&l, Outcome::ClientNoParent), 1);
}

#[test]
fn a_call_inside_two_requests_of_one_thread_is_ambiguous() {
    use Side::*;
    let mut l = linker();
    let spans = vec![
        span(
            Client,
            "api",
            (2, 21),
            (20, 30),
            "10.0.0.2:4000",
            "10.0.0.9:80",
        ),
        span(
            Server,
            "api",
            (2, 21),
            (10, 40),
            "10.0.0.2:80",
            "10.0.0.1:5000",
        ),
        span(
            Server,
            "api",
            (2, 21),
            (15, 45),
            "10.0.0.2:80",
            "10.0.0.1:5001",
        ),
    ];
    let out = run(&mut l, spans);
    assert_eq!(by_node(&out, "api", Client).parent_id, None);
    assert_eq!(count(&l, Outcome::ClientParentAmbiguous), 1);
    assert_eq!(count(&l, Outcome::ClientServerNotOnHost), 1);
}

#[test]
fn a_server_outside_the_clients_time_is_not_its_child() {
    use Side::*;
    let mut l = linker();
    let spans = vec![
        // keep-alive: the server span of the previous request on the connection
        span(
            Server,
            "api",
            (2, 21),
            (1, 5),
            "10.0.0.2:80",
            "10.0.0.1:5000",
        ),
        span(
            Client,
            "fe",
            (1, 11),
            (40, 60),
            "10.0.0.1:5000",
            "10.0.0.2:80",
        ),
    ];
    let out = run(&mut l, spans);
    assert!(
        out.iter()
            .all(|s| s.parent_id.is_none() && s.peer.is_none())
    );
}

#[test]
fn children_emitted_before_their_parent_keep_one_trace() {
    let cfg = LinkConfig {
        hold: std::time::Duration::ZERO,
        ..cfg()
    };
    let mut l = Linker::new(cfg, IdGen::seeded(1));
    let mut out = Vec::new();
    for s in chain() {
        let now = s.end_ns;
        out.extend(l.push(s, now));
        out.extend(l.drain(now));
    }
    let t = out[0].trace_id;
    assert!(out.iter().all(|s| s.trace_id == t), "{out:#?}");
    assert_eq!(count(&l, Outcome::SplitTrace), 0);
}

#[test]
fn memory_is_bounded() {
    let cfg = LinkConfig {
        max_spans: 100,
        ..cfg()
    };
    let mut l = Linker::new(cfg, IdGen::seeded(1));
    let mut emitted = 0;
    for i in 0..1000u64 {
        let mut s = span(
            Side::Server,
            "x",
            (1, 1),
            (i, i + 1),
            "10.0.0.1:80",
            "10.0.0.2:1",
        );
        s.remote.set_port(i as u16 + 1);
        emitted += l.push(s, i * MS).len();
        assert!(l.len() <= 100);
    }
    assert_eq!(count(&l, Outcome::Evicted), 900);
    emitted += l.drain(5000 * MS).len();
    assert_eq!(emitted, 1000);
    assert!(l.drain(100_000 * MS).is_empty());
    assert!(l.is_empty());
}

#[test]
fn late_records_still_link_and_a_tight_server_takes_a_loose_call() {
    use Side::*;
    let mut l = linker();
    let spans = vec![
        // the server's record was read 3 ms late: it seems to end after its client
        span(
            Server,
            "api",
            (2, 21),
            (13, 53),
            "10.0.0.2:80",
            "10.0.0.1:5000",
        ),
        span(
            Client,
            "fe",
            (1, 11),
            (10, 50),
            "10.0.0.1:5000",
            "10.0.0.2:80",
        ),
        // keep-alive thread: request k ends at 100, request k+1 runs 101..200;
        // its call (101.5..102) arrives before it, near request k's end
        span(Server, "fe", (1, 11), (0, 100), "10.0.0.1:80", "10.0.0.9:1"),
        span(
            Client,
            "fe",
            (1, 11),
            (102, 103),
            "10.0.0.1:5001",
            "10.0.0.3:80",
        ),
        span(
            Server,
            "fe",
            (1, 11),
            (101, 200),
            "10.0.0.1:80",
            "10.0.0.9:1",
        ),
    ];
    let out = run(&mut l, spans);
    let api = by_node(&out, "api", Server);
    let first = out
        .iter()
        .find(|s| s.span.side == Client && s.span.start_ns == 10 * MS)
        .unwrap();
    assert_eq!(api.parent_id, Some(first.span_id));
    let call = out.iter().find(|s| s.span.start_ns == 102 * MS).unwrap();
    let second = out
        .iter()
        .find(|s| s.span.side == Server && s.span.start_ns == 101 * MS)
        .unwrap();
    assert_eq!(call.parent_id, Some(second.span_id));
}

/// A keep-alive connection and a busy thread: what each new span searches
/// stays small however many spans the window holds (the connection's index
/// holds its unpaired spans only, the thread's is searched back to its
/// previous server span), and the links are still right.
#[test]
fn searches_do_not_grow_with_the_window() {
    use Side::*;
    let mut l = linker();
    let mut out = Vec::new();
    for i in 0..20_000u64 {
        let t = i * 10;
        // the server answers first, the client reads it after
        for s in [
            span(
                Server,
                "nginx",
                (2, 2),
                (t + 1, t + 4),
                "10.0.0.2:80",
                "10.0.0.1:5000",
            ),
            span(
                Client,
                "wrk",
                (1, 1),
                (t, t + 5),
                "10.0.0.1:5000",
                "10.0.0.2:80",
            ),
        ] {
            let now = s.end_ns;
            out.extend(l.push(s, now));
        }
        out.extend(l.drain(t * MS));
    }
    let unpaired: usize = l.by_conn.values().map(VecDeque::len).sum();
    assert!(unpaired <= 1, "{unpaired} unpaired spans indexed");
    out.extend(l.flush());
    assert_eq!(out.len(), 40_000);
    let linked = out.iter().filter(|s| s.peer.is_some()).count();
    assert_eq!(linked, 40_000, "every span has its other end");
    let servers_with_parent = out
        .iter()
        .filter(|s| s.span.side == Server && s.parent_id.is_some())
        .count();
    assert_eq!(servers_with_parent, 20_000);
}

#[test]
fn a_connection_whose_other_end_is_missing_is_not_scanned_whole() {
    use Side::*;
    let mut l = linker();
    let mut out = Vec::new();
    // a keep-alive connection whose client is elsewhere: every server span
    // waits for a client span that never comes (1 ms apart, so all of
    // them lie within the searches' reach)
    let server = |t: u64| {
        span(
            Server,
            "web",
            (2, 2),
            (t, t + 1),
            "10.0.0.2:80",
            "10.0.0.9:5000",
        )
    };
    for t in 0..2_000u64 {
        let s = server(t);
        out.extend(l.push(s, t * MS));
    }
    // the searches look at the newest CANDIDATES waiting spans of the
    // other side only: a client span now pairs with the newest, and one
    // whose server is further back than that is not paired
    let client = |t: u64| {
        span(
            Client,
            "far",
            (1, 1),
            (t, t + 2),
            "10.0.0.9:5000",
            "10.0.0.2:80",
        )
    };
    out.extend(l.push(client(1_999), 2_001 * MS));
    out.extend(l.push(client(1_000 - 1), 2_001 * MS));
    out.extend(l.flush());
    let far: Vec<_> = out.iter().filter(|s| &*s.span.node == "far").collect();
    let peers: Vec<_> = far.iter().map(|s| s.peer.is_some()).collect();
    assert_eq!(peers, [true, false], "{far:?}");
    assert_eq!(
        far[0].peer.as_ref().map(|p| p.duration_ns),
        Some(MS),
        "paired with the server span within it"
    );
}

#[test]
fn a_client_whose_server_span_was_evicted_first_still_names_it() {
    let cfg = LinkConfig {
        max_spans: 2,
        ..cfg()
    };
    let mut l = Linker::new(cfg, IdGen::seeded(3));
    // data's server span, then api's call to it: paired; then two more
    // spans evict both, the server span first
    let spans = chain();
    let mut out = Vec::new();
    for s in spans.into_iter().take(4) {
        let now = s.end_ns;
        out.extend(l.push(s, now));
    }
    let data = by_node(&out, "data", Side::Server);
    let api = by_node(&out, "api", Side::Client);
    let peer = api.peer.as_ref().expect("its server is on this host");
    assert_eq!((&*peer.node, peer.span_id), ("data", data.span_id));
    assert_eq!(data.peer.as_ref().map(|p| p.span_id), Some(api.span_id));
    assert_eq!(data.parent_id, Some(api.span_id));
    assert_eq!(count(&l, Outcome::ClientServerOnHost), 1);
    assert_eq!(count(&l, Outcome::Evicted), 2);
}

#[test]
fn a_held_span_stays_small() {
    // the ring holds max_spans (100k by default) of these: every byte is
    // 100 kB of memory and cache traffic per span (304 bytes before ids
    // took no room of their own)
    let size = std::mem::size_of::<Entry>();
    assert!(size <= 240, "Entry is {size} bytes");
}
