//! TCP sessions: reads the kernel's flow table (cgroup, direction,
//! port/peer → counters and a duration histogram), turns successive reads
//! into samples, and evicts flows that stayed idle for a whole interval (the
//! kernel re-creates a flow's entry when it sees it again).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use aya::maps::{HashMap as BpfHashMap, MapData};
use hotpath_common::{DIR_ACTIVE, DIR_OVERFLOW, DIR_PASSIVE, FlowKey, FlowStats, TCP_FLOWS_MAP};

use super::{Hotpath, HotpathError};
use crate::pipeline::{Sample, SampleValue};
use model::metrics::{
    BYTES_METRIC, CLOSED_METRIC, CONNECT_FAILURES_METRIC, CONNECTIONS_METRIC, DURATION_METRIC,
    RESETS_METRIC,
};

/// The user-space side of the flow table.
#[derive(Default)]
pub(crate) struct TcpTable {
    prev: HashMap<FlowKey, FlowStats>,
    /// Flows evicted so far.
    pub(crate) evicted: u64,
    /// Entries in the kernel map at the last poll.
    pub(crate) entries: usize,
}

fn sub(a: u64, b: u64) -> u64 {
    a.wrapping_sub(b)
}

impl TcpTable {
    /// Reads the flow table; returns the samples of what changed.
    pub(crate) fn poll(&mut self, hotpath: &mut Hotpath) -> Result<Vec<Sample>, HotpathError> {
        let map = hotpath
            .ebpf_mut()
            .map_mut(TCP_FLOWS_MAP)
            .ok_or(HotpathError::Map {
                map: TCP_FLOWS_MAP,
                source: aya::maps::MapError::InvalidName {
                    name: TCP_FLOWS_MAP.into(),
                },
            })?;
        let mut flows: BpfHashMap<&mut MapData, FlowKey, FlowStats> = BpfHashMap::try_from(map)
            .map_err(|source| HotpathError::Map {
                map: TCP_FLOWS_MAP,
                source,
            })?;
        let now: Vec<(FlowKey, FlowStats)> = flows.iter().filter_map(Result::ok).collect();
        self.entries = now.len();
        let mut samples = Vec::new();
        let mut seen = HashMap::with_capacity(now.len());
        for (key, stats) in now {
            let before = self.prev.get(&key);
            let d = delta(&stats, before.unwrap_or(&FlowStats::ZERO));
            if d == FlowStats::ZERO {
                if before.is_some() && key.direction != DIR_OVERFLOW {
                    // Idle for a whole interval: free the entry. (A session
                    // event racing with this removal re-creates it.)
                    let _ = flows.remove(&key);
                    self.evicted += 1;
                    continue;
                }
            } else {
                samples.extend(flow_samples(&key, &d));
            }
            seen.insert(key, stats);
        }
        self.prev = seen;
        Ok(samples)
    }
}

/// `now - before`, field by field.
pub(crate) fn delta(now: &FlowStats, before: &FlowStats) -> FlowStats {
    let mut d = FlowStats {
        opened: sub(now.opened, before.opened),
        failed: sub(now.failed, before.failed),
        resets: sub(now.resets, before.resets),
        closed: sub(now.closed, before.closed),
        bytes_tx: sub(now.bytes_tx, before.bytes_tx),
        bytes_rx: sub(now.bytes_rx, before.bytes_rx),
        ..FlowStats::ZERO
    };
    for (i, b) in d.duration_us.iter_mut().enumerate() {
        *b = sub(now.duration_us[i], before.duration_us[i]);
    }
    d
}

/// The direction label of a flow.
pub(crate) fn direction_name(direction: u8) -> &'static str {
    match direction {
        DIR_ACTIVE => "active",
        DIR_PASSIVE => "passive",
        _ => "other",
    }
}

/// The remote address of a flow key.
pub(crate) fn peer_addr(key: &FlowKey) -> IpAddr {
    if key.family == 10 {
        IpAddr::V6(Ipv6Addr::from(key.daddr))
    } else {
        IpAddr::V4(Ipv4Addr::new(
            key.daddr[0],
            key.daddr[1],
            key.daddr[2],
            key.daddr[3],
        ))
    }
}

/// Labels of a flow: cgroup, direction, and the port/peer.
fn flow_labels(key: &FlowKey) -> Vec<(&'static str, String)> {
    let mut labels = vec![
        (
            "cgroup.id",
            if key.direction == DIR_OVERFLOW {
                "other".to_owned()
            } else {
                key.cgroup_id.to_string()
            },
        ),
        ("direction", direction_name(key.direction).to_owned()),
    ];
    match key.direction {
        DIR_ACTIVE => {
            labels.push(("net.daddr", peer_addr(key).to_string()));
            labels.push(("net.dport", key.dport.to_string()));
        }
        DIR_PASSIVE => labels.push(("net.lport", key.lport.to_string())),
        _ => {}
    }
    labels
}

/// The samples of one flow's increase.
fn flow_samples(key: &FlowKey, d: &FlowStats) -> Vec<Sample> {
    let labels = flow_labels(key);
    let mut out = Vec::new();
    let mut counter = |metric, n: u64| {
        if n > 0 {
            out.push(Sample {
                metric,
                labels: labels.clone(),
                value: SampleValue::Delta(n),
            });
        }
    };
    counter(CONNECTIONS_METRIC, d.opened);
    counter(CONNECT_FAILURES_METRIC, d.failed);
    counter(RESETS_METRIC, d.resets);
    counter(CLOSED_METRIC, d.closed);
    for (dir, n) in [("tx", d.bytes_tx), ("rx", d.bytes_rx)] {
        if n > 0 || d.closed > 0 {
            let mut l = labels.clone();
            // the session direction moves to `role`; `direction` is tx/rx here
            l[1] = ("role", direction_name(key.direction).to_owned());
            l.push(("direction", dir.to_owned()));
            out.push(Sample {
                metric: BYTES_METRIC,
                labels: l,
                value: SampleValue::Delta(n),
            });
        }
    }
    if d.duration_us.iter().any(|&c| c > 0) {
        out.push(Sample {
            metric: DURATION_METRIC,
            labels,
            value: SampleValue::Log2Histogram {
                unit: "us",
                counts: d.duration_us.to_vec(),
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_an_outbound_flow() {
        let key = FlowKey {
            cgroup_id: 42,
            daddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            dport: 8080,
            direction: DIR_ACTIVE,
            family: 2,
            ..FlowKey::default()
        };
        let mut before = FlowStats::ZERO;
        before.opened = 1;
        let mut now = before;
        now.opened = 4;
        now.closed = 3;
        now.bytes_tx = 300;
        now.duration_us[5] = 3;
        let s = flow_samples(&key, &delta(&now, &before));
        let conn = s.iter().find(|s| s.metric == CONNECTIONS_METRIC).unwrap();
        assert_eq!(conn.value, SampleValue::Delta(3));
        assert_eq!(conn.label("net.daddr"), Some("127.0.0.1"));
        assert_eq!(conn.label("net.dport"), Some("8080"));
        assert_eq!(conn.label("direction"), Some("active"));
        let tx = s
            .iter()
            .find(|s| s.metric == BYTES_METRIC && s.label("direction") == Some("tx"))
            .unwrap();
        assert_eq!(tx.value, SampleValue::Delta(300));
        assert_eq!(tx.label("role"), Some("active"));
        assert!(s.iter().any(|s| s.metric == DURATION_METRIC));
    }
}
