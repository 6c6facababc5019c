//! The sink contract, checked for every sink the factory builds from its
//! config section: an export to a live peer counts a success and one to a
//! dead peer a failure (in the one stats type `eunomia status` reads); items
//! offered past a full queue are dropped and counted; offering events and
//! alerts never blocks the pipeline, even with the peer gone; and every sink
//! ends within its deadline after `stop`. Prometheus is pulled, not pushed:
//! it counts served scrapes and has nothing to fail or drop.
//!
//! No kernel, no root: the peers are local (the tests' OTLP receiver, a
//! minimal HTTP server) or a closed port.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::Arc,
    time::{Duration, Instant},
};

use eunomia::{
    aggregate::{AggregateConfig, Aggregator},
    pipeline::{Message, ToolRecord},
    rules,
    sinks::{
        self, Publisher, SinkBook, SinkContext, SinksConfig, alertmanager::AlertmanagerConfig,
        stats::StatsView,
    },
};
use eunomia_tests::otlp::OtlpReceiver;
use tokio_util::sync::CancellationToken;

/// How long a sink may take to end after `stop` (its timeouts are set to
/// one second below).
const DEADLINE: Duration = Duration::from_secs(10);
/// Items offered to each sink: far more than its queue.
const FLOOD: usize = 20_000;

/// A local HTTP server answering every request with `status` (for the
/// remote-write and Alertmanager peers); its address.
fn http_peer(status: u16) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream, status));
        }
    });
    addr
}

fn answer(mut stream: TcpStream, status: u16) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let Ok(n) = stream.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        req.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&req);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
    }
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

/// A loopback address nothing listens on.
fn dead_peer() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// An enriched exec event, as the pipeline hands it on.
fn event() -> ToolRecord {
    let mut e = parsers::Event::new("execsnoop".into(), parsers::EventKind::Exec);
    e.pid = Some(7);
    e.comm = Some("sh".into());
    ToolRecord::new("execsnoop".into(), parsers::Record::Event(e))
}

/// An alert of a one-rule set.
fn alert() -> Arc<rules::Alert> {
    let set = rules::load_str(
        "t.toml",
        "[[rule]]\nname = \"r\"\ncondition = 'event.kind = exec'\nseverity = \"warning\"\noutput = \"exec\"\n",
    )
    .unwrap()
    .set;
    let e = parsers::Event::new("execsnoop".into(), parsers::EventKind::Exec);
    let ctx = rules::Ctx::bare(&e);
    Arc::new(rules::Alert::new(&set.rules()[0], &ctx, 1, 0))
}

/// What one run of a sink showed.
struct Run {
    /// Its stats after it ended.
    stats: StatsView,
    /// The longest time one offer of an event or alert took.
    slowest_offer: Duration,
    /// How long it took to end after `stop`.
    shutdown: Duration,
}

/// Starts the sinks `config` enables through the factory, offers
/// [`FLOOD`] events and alerts, waits `settle`, stops them, and returns
/// the stats of sink `name`.
async fn run(name: &str, config: SinksConfig, settle: Duration) -> Run {
    let mut aggregator = Aggregator::new(&AggregateConfig::default(), vec![]);
    aggregator.ingest_event(&event());
    let publisher = Publisher::new(aggregator.shared());
    let ctx = SinkContext {
        snapshots: publisher.subscribe(),
        registry: eunomia::selfmetrics::Registry::new(),
        stop: CancellationToken::new(),
        resource_attributes: Default::default(),
        book: SinkBook::default(),
    };
    let mut started = sinks::start(&config, &ctx).await.expect("the sink starts");
    let msg = Message::Record(event());
    let alert = alert();
    let mut slowest_offer = Duration::ZERO;
    for _ in 0..FLOOD {
        let t = Instant::now();
        started.events.offer(&msg);
        for a in &mut started.alerts {
            a.send(&alert);
        }
        slowest_offer = slowest_offer.max(t.elapsed());
    }
    if name == "prometheus" {
        scrape(&config.prometheus.listen);
    }
    tokio::time::sleep(settle).await;
    drop(started.alerts);
    let t = Instant::now();
    ctx.stop.cancel();
    for task in started.tasks {
        tokio::time::timeout(DEADLINE, task)
            .await
            .unwrap_or_else(|_| panic!("{name} did not end within {DEADLINE:?} of stop"))
            .expect("the sink task does not panic");
    }
    let shutdown = t.elapsed();
    let stats = ctx
        .book
        .views()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("{name} reports its stats"));
    Run {
        stats,
        slowest_offer,
        shutdown,
    }
}

fn scrape(addr: &SocketAddr) {
    let mut s = TcpStream::connect(addr).expect("the Prometheus endpoint listens");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    assert!(body.contains("eunomia_process_execs_total"), "{body}");
}

/// A config with only the sink `name` on, sending to `peer`, with small
/// queues and one-second timeouts.
fn config(name: &str, peer: SocketAddr) -> SinksConfig {
    let mut c = SinksConfig::default();
    let url = format!("http://{peer}");
    match name {
        "otlp" => {
            c.otlp.enabled = true;
            c.otlp.endpoint = url;
            c.otlp.export_interval = Duration::from_millis(200);
            c.otlp.timeout = Duration::from_secs(1);
            c.otlp.shutdown_timeout = Duration::from_secs(1);
            c.otlp.logs_queue = 16;
        }
        "prometheus" => {
            c.prometheus.enabled = true;
            c.prometheus.listen = dead_peer();
        }
        "remote_write" => {
            c.remote_write.enabled = true;
            c.remote_write.url = format!("{url}/api/v1/write");
            c.remote_write.interval = Duration::from_millis(200);
            c.remote_write.timeout = Duration::from_secs(1);
        }
        "jsonl" => {
            c.jsonl.enabled = true;
            c.jsonl.queue = 16;
            c.jsonl.interval = Duration::from_millis(200);
        }
        "alertmanager" => {
            c.alertmanager = Some(AlertmanagerConfig {
                enabled: true,
                url,
                resolve_timeout: Duration::from_secs(300),
                flush_interval: Duration::from_millis(200),
                timeout: Duration::from_secs(1),
                queue: 16,
            });
        }
        other => panic!("no sink {other}"),
    }
    c
}

/// The contract's common part: offers never wait (an offer that waited for
/// the peer would take its one-second timeout; the bound leaves room for a
/// busy shared machine), and the sink ends in time.
fn assert_never_blocks_and_ends(name: &str, r: &Run) {
    assert!(
        r.slowest_offer < Duration::from_millis(500),
        "{name}: one offer took {:?}",
        r.slowest_offer
    );
    assert!(
        r.shutdown < DEADLINE,
        "{name}: shutdown took {:?}",
        r.shutdown
    );
}

const PUSH_SINKS: [&str; 3] = ["otlp", "remote_write", "alertmanager"];

#[test]
fn every_push_sink_counts_success_with_a_live_peer() {
    // The receiver runs its own runtime: start it before ours.
    let receiver = OtlpReceiver::start();
    let otlp: SocketAddr = receiver
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for name in PUSH_SINKS {
        let peer = match name {
            "otlp" => otlp,
            _ => http_peer(200),
        };
        let r = rt.block_on(run(name, config(name, peer), Duration::from_millis(800)));
        println!("{name}: {:?}", r.stats);
        assert!(r.stats.exports_ok > 0, "{name}: no success counted");
        assert!(r.stats.up, "{name}: down with a live peer");
        assert!(r.stats.last_success.is_some(), "{name}");
        assert_never_blocks_and_ends(name, &r);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_push_sink_counts_failure_and_drops_and_never_blocks_with_the_peer_gone() {
    for name in PUSH_SINKS {
        let r = run(name, config(name, dead_peer()), Duration::from_millis(1500)).await;
        println!("{name}: {:?}", r.stats);
        assert!(r.stats.exports_failed > 0, "{name}: no failure counted");
        assert!(!r.stats.up && r.stats.last_error.is_some(), "{name}");
        assert!(
            r.stats.dropped > 0,
            "{name}: {FLOOD} items past a queue of 16 and none dropped"
        );
        assert_never_blocks_and_ends(name, &r);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jsonl_sink_counts_writes_failures_and_drops() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config("jsonl", dead_peer());
    c.jsonl.path = dir.path().join("out.jsonl");
    let r = run("jsonl", c.clone(), Duration::from_millis(500)).await;
    println!("jsonl: {:?}", r.stats);
    assert!(r.stats.up && r.stats.last_success.is_some());
    assert!(r.stats.dropped > 0, "{FLOOD} events past a queue of 16");
    assert!(std::fs::metadata(&c.jsonl.path).unwrap().len() > 0);
    assert_never_blocks_and_ends("jsonl", &r);
    // A device that refuses every write: the failure is counted.
    c.jsonl.path = "/dev/full".into();
    let r = run("jsonl", c, Duration::from_millis(500)).await;
    println!("jsonl on /dev/full: {:?}", r.stats);
    assert!(!r.stats.up && r.stats.last_error.is_some());
    assert_never_blocks_and_ends("jsonl", &r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prometheus_sink_counts_scrapes_and_ends_in_time() {
    let r = run(
        "prometheus",
        config("prometheus", dead_peer()),
        Duration::from_millis(100),
    )
    .await;
    println!("prometheus: {:?}", r.stats);
    assert_eq!(r.stats.exports_ok, 1, "one scrape served");
    assert!(r.stats.up);
    assert_never_blocks_and_ends("prometheus", &r);
}
