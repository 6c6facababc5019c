//! The fold from enriched sample batches to [`Snapshot`]s. Hot-path syscall
//! and TCP deltas add up per workload over the interval; cgroup batches set
//! each workload's CPU and memory; the syscall batch, which the hot path
//! sends last in each poll, closes the interval and yields the snapshot.
//! Every syscall delta also goes into the [`Ledger`].

use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use super::{
    ledger::{Ledger, Recorded},
    snapshot::{Peer, Rate, Row, RowKind, Snapshot},
};
use model::{
    labels::{
        CGROUP_ID, CONTAINER_ID, CONTAINER_NAME, CONTAINER_RUNTIME, CONTAINERD_NAMESPACE,
        K8S_NAMESPACE, K8S_POD_NAME, SERVICE,
    },
    metrics::{
        BYTES_METRIC, CONNECT_FAILURES_METRIC, CONNECTIONS_METRIC, RESETS_METRIC,
        SYSCALL_ERRORS_METRIC, SYSCALLS_METRIC, SYSCALLS_SOURCE,
    },
};

use crate::{
    cgroups::poller::{CPU_SECONDS, MEMORY_BYTES},
    pipeline::{Sample, SampleBatch, SampleValue},
};

/// Rows kept for workloads that were quiet, this many intervals after their
/// last activity (then they go: containers that stopped).
const KEEP_QUIET: u64 = 3;

/// Who a sample belongs to.
#[derive(Debug, Clone, Default)]
struct Identity {
    key: String,
    kind: RowKind,
    name: String,
    namespace: String,
    pod: String,
    runtime: String,
    container_id: String,
}

/// The workload of an enriched sample.
fn identity(s: &Sample) -> Identity {
    if let Some(id) = s.label(CONTAINER_ID) {
        let short = &id[..id.len().min(12)];
        let pod = s.label(K8S_POD_NAME).unwrap_or_default();
        return Identity {
            key: id.to_owned(),
            kind: RowKind::Container,
            name: s.label(CONTAINER_NAME).unwrap_or(short).to_owned(),
            namespace: s
                .label(K8S_NAMESPACE)
                .or(s.label(CONTAINERD_NAMESPACE))
                .unwrap_or_default()
                .to_owned(),
            pod: pod.to_owned(),
            runtime: s.label(CONTAINER_RUNTIME).unwrap_or_default().to_owned(),
            container_id: id.to_owned(),
        };
    }
    if let Some(service) = s.label(SERVICE) {
        return Identity {
            key: format!("service:{service}"),
            kind: RowKind::Service,
            name: service.to_owned(),
            ..Identity::default()
        };
    }
    let (key, kind) = match s.label(CGROUP_ID) {
        Some("other") => ("other", RowKind::Other),
        _ => ("host", RowKind::Host),
    };
    Identity {
        key: key.into(),
        kind,
        name: key.into(),
        ..Identity::default()
    }
}

/// One peer's counters over the interval.
#[derive(Debug, Default, Clone)]
struct PeerAcc {
    direction: &'static str,
    connections: u64,
    failures: u64,
    resets: u64,
    bytes_in: u64,
    bytes_out: u64,
}

/// One workload's counters over the interval.
#[derive(Debug, Default)]
struct Acc {
    syscalls: HashMap<String, (u64, u64)>,
    connects: u64,
    accepts: u64,
    failures: u64,
    resets: u64,
    bytes_in: u64,
    bytes_out: u64,
    peers: HashMap<String, PeerAcc>,
}

/// A workload's CPU and memory at the last cgroup poll.
#[derive(Debug, Default, Clone, Copy)]
struct Resources {
    cpu_percent: Option<f64>,
    memory_bytes: Option<f64>,
}

/// Folds batches into snapshots (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct LiveView {
    acc: HashMap<String, Acc>,
    /// Every workload seen lately, with the interval it was last active in.
    known: HashMap<String, (Identity, u64)>,
    resources: HashMap<String, Resources>,
    ledger: Ledger,
    intervals: u64,
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn delta(s: &Sample) -> u64 {
    match s.value {
        SampleValue::Delta(n) => n,
        _ => 0,
    }
}

impl LiveView {
    /// A view recording syscalls into `ledger`.
    pub(crate) fn new(ledger: Ledger) -> LiveView {
        LiveView {
            ledger,
            ..LiveView::default()
        }
    }

    /// Takes in one enriched batch; returns the snapshot when the batch
    /// closes an interval (the hot path's syscall batch).
    pub(crate) fn ingest(&mut self, batch: &SampleBatch) -> Option<Snapshot> {
        let now = now_unix();
        for s in &batch.samples {
            self.sample(s, now);
        }
        (batch.source == SYSCALLS_SOURCE).then(|| self.close(batch.interval_s, now))
    }

    fn sample(&mut self, s: &Sample, now: f64) {
        match s.metric {
            SYSCALLS_METRIC
            | SYSCALL_ERRORS_METRIC
            | CONNECTIONS_METRIC
            | CONNECT_FAILURES_METRIC
            | RESETS_METRIC
            | BYTES_METRIC => self.count(s, now),
            CPU_SECONDS | MEMORY_BYTES => self.resource(s),
            _ => {}
        }
    }

    fn seen(&mut self, s: &Sample) -> String {
        let id = identity(s);
        let key = id.key.clone();
        self.known.insert(key.clone(), (id, self.intervals));
        key
    }

    fn count(&mut self, s: &Sample, now: f64) {
        let key = self.seen(s);
        let n = delta(s);
        if s.metric == SYSCALLS_METRIC
            && let Some((id, _)) = self.known.get(&key)
        {
            self.ledger.add(
                &recorded(id),
                s.label("syscall").unwrap_or("unknown"),
                n,
                now,
            );
        }
        let acc = self.acc.entry(key).or_default();
        let syscall = || s.label("syscall").unwrap_or("unknown").to_owned();
        match s.metric {
            SYSCALLS_METRIC => acc.syscalls.entry(syscall()).or_default().0 += n,
            SYSCALL_ERRORS_METRIC => acc.syscalls.entry(syscall()).or_default().1 += n,
            _ => tcp(acc, s, n),
        }
    }

    fn resource(&mut self, s: &Sample) {
        let key = self.seen(s);
        let r = self.resources.entry(key).or_default();
        match (s.metric, &s.value) {
            (CPU_SECONDS, SampleValue::DeltaF64(secs)) => r.cpu_percent = Some(*secs),
            (MEMORY_BYTES, SampleValue::Gauge(bytes)) => r.memory_bytes = Some(*bytes),
            _ => {}
        }
    }

    /// Ends the interval: rates over `interval_s`, quiet workloads kept a
    /// few intervals, stopped ones dropped.
    fn close(&mut self, interval_s: f64, now: f64) -> Snapshot {
        let dt = interval_s.max(1e-3);
        let acc = std::mem::take(&mut self.acc);
        let intervals = self.intervals;
        self.known
            .retain(|_, (_, last)| intervals.saturating_sub(*last) <= KEEP_QUIET);
        let resources = &self.resources;
        let mut rows: Vec<Row> = self
            .known
            .iter()
            .map(|(key, (id, _))| row(id, acc.get(key), resources.get(key), dt))
            .collect();
        self.resources.retain(|k, _| self.known.contains_key(k));
        rows.sort_by(|a, b| b.syscalls_per_s.total_cmp(&a.syscalls_per_s));
        self.intervals += 1;
        Snapshot {
            unix_s: now,
            interval_s,
            rows,
        }
    }
}

/// Adds one TCP sample to the interval's counters, and to its peer's.
fn tcp(acc: &mut Acc, s: &Sample, n: u64) {
    let role = s.label("role").or(s.label("direction")).unwrap_or_default();
    let (peer, direction) = match role {
        "active" => (
            format!(
                "{}:{}",
                s.label("net.daddr").unwrap_or("?"),
                s.label("net.dport").unwrap_or("?")
            ),
            "out",
        ),
        "passive" => (format!("*:{}", s.label("net.lport").unwrap_or("?")), "in"),
        _ => ("other".to_owned(), "?"),
    };
    let p = acc.peers.entry(peer).or_default();
    p.direction = direction;
    match s.metric {
        CONNECTIONS_METRIC if direction == "in" => {
            acc.accepts += n;
            p.connections += n;
        }
        CONNECTIONS_METRIC => {
            acc.connects += n;
            p.connections += n;
        }
        CONNECT_FAILURES_METRIC => {
            acc.failures += n;
            p.failures += n;
        }
        RESETS_METRIC => {
            acc.resets += n;
            p.resets += n;
        }
        BYTES_METRIC if s.label("direction") == Some("rx") => {
            acc.bytes_in += n;
            p.bytes_in += n;
        }
        BYTES_METRIC => {
            acc.bytes_out += n;
            p.bytes_out += n;
        }
        _ => {}
    }
}

fn recorded(id: &Identity) -> Recorded {
    Recorded {
        key: id.key.clone(),
        kind: id.kind,
        name: id.name.clone(),
        container_id: id.container_id.clone(),
        runtime: id.runtime.clone(),
        ..Recorded::default()
    }
}

/// One workload's row from its counters.
fn row(id: &Identity, acc: Option<&Acc>, res: Option<&Resources>, dt: f64) -> Row {
    let rate = |n: u64| n as f64 / dt;
    let mut r = Row {
        key: id.key.clone(),
        kind: id.kind,
        name: id.name.clone(),
        namespace: id.namespace.clone(),
        pod: id.pod.clone(),
        runtime: id.runtime.clone(),
        container_id: id.container_id.clone(),
        cpu_percent: res.and_then(|r| r.cpu_percent).map(|s| s / dt * 100.0),
        memory_bytes: res.and_then(|r| r.memory_bytes),
        ..Row::default()
    };
    let Some(acc) = acc else { return r };
    let mut syscalls: Vec<Rate> = acc
        .syscalls
        .iter()
        .map(|(name, (calls, errors))| Rate {
            name: name.clone(),
            per_s: rate(*calls),
            errors_per_s: rate(*errors),
        })
        .collect();
    syscalls.sort_by(|a, b| b.per_s.total_cmp(&a.per_s).then(a.name.cmp(&b.name)));
    r.syscalls_per_s = syscalls.iter().map(|s| s.per_s).sum();
    r.errors_per_s = syscalls.iter().map(|s| s.errors_per_s).sum();
    r.syscalls = syscalls;
    r.tcp_connects_per_s = rate(acc.connects);
    r.tcp_accepts_per_s = rate(acc.accepts);
    r.tcp_failures_per_s = rate(acc.failures);
    r.tcp_resets_per_s = rate(acc.resets);
    r.bytes_in_per_s = rate(acc.bytes_in);
    r.bytes_out_per_s = rate(acc.bytes_out);
    let mut peers: Vec<Peer> = acc
        .peers
        .iter()
        .map(|(peer, p)| Peer {
            peer: peer.clone(),
            direction: p.direction.to_owned(),
            connections_per_s: rate(p.connections),
            failures_per_s: rate(p.failures),
            resets_per_s: rate(p.resets),
            bytes_in_per_s: rate(p.bytes_in),
            bytes_out_per_s: rate(p.bytes_out),
        })
        .collect();
    peers.sort_by(|a, b| {
        (b.connections_per_s + b.failures_per_s)
            .total_cmp(&(a.connections_per_s + a.failures_per_s))
            .then(a.peer.cmp(&b.peer))
    });
    r.peers = peers;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::metrics::TCP_SOURCE;

    fn sample(metric: &'static str, labels: &[(&'static str, &str)], v: SampleValue) -> Sample {
        Sample {
            metric,
            labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            value: v,
        }
    }

    fn batch(source: &'static str, samples: Vec<Sample>) -> SampleBatch {
        SampleBatch {
            source,
            interval_s: 2.0,
            samples,
        }
    }

    const WEB: [(&str, &str); 3] = [
        (CGROUP_ID, "7"),
        (CONTAINER_ID, "abcdef0123456789"),
        (CONTAINER_NAME, "web"),
    ];

    #[test]
    fn rows_per_workload_with_rates_peers_and_resources() {
        let mut view = LiveView::default();
        let cpu = sample(CPU_SECONDS, &WEB, SampleValue::DeltaF64(1.0));
        let mem = sample(MEMORY_BYTES, &WEB, SampleValue::Gauge(4096.0));
        assert!(view.ingest(&batch("cgroups", vec![cpu, mem])).is_none());
        let mut l = WEB.to_vec();
        l.extend([
            ("direction", "active"),
            ("net.daddr", "10.0.0.1"),
            ("net.dport", "80"),
        ]);
        let conn = sample(CONNECTIONS_METRIC, &l, SampleValue::Delta(4));
        assert!(view.ingest(&batch(TCP_SOURCE, vec![conn])).is_none());
        let mut read = WEB.to_vec();
        read.push(("syscall", "read"));
        let host = [(CGROUP_ID, "1"), ("syscall", "write")];
        let samples = vec![
            sample(SYSCALLS_METRIC, &read, SampleValue::Delta(20)),
            sample(SYSCALL_ERRORS_METRIC, &read, SampleValue::Delta(2)),
            sample(SYSCALLS_METRIC, &host, SampleValue::Delta(6)),
        ];
        let snap = view
            .ingest(&batch(SYSCALLS_SOURCE, samples))
            .expect("closes");
        assert_eq!(snap.rows.len(), 2);
        let web = &snap.rows[0];
        assert_eq!((web.name.as_str(), web.kind), ("web", RowKind::Container));
        assert_eq!(web.syscalls_per_s, 10.0);
        assert_eq!(web.errors_per_s, 1.0);
        assert_eq!(web.top_syscalls(3), "read");
        assert_eq!(web.tcp_connects_per_s, 2.0);
        assert_eq!(web.peers[0].peer, "10.0.0.1:80");
        assert_eq!(web.cpu_percent, Some(50.0));
        assert_eq!(web.memory_bytes, Some(4096.0));
        assert_eq!(snap.rows[1].name, "host");
        assert_eq!(snap.rows[1].syscalls_per_s, 3.0);
        assert_eq!(view.ledger.matching("web")[0].syscalls["read"], 20);
        // Quiet rows stay a few intervals, then go.
        for _ in 0..KEEP_QUIET {
            let snap = view.ingest(&batch(SYSCALLS_SOURCE, vec![])).unwrap();
            assert_eq!(snap.rows.len(), 2);
        }
        assert!(
            view.ingest(&batch(SYSCALLS_SOURCE, vec![]))
                .unwrap()
                .rows
                .is_empty()
        );
    }
}
