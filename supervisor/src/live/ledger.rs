//! Every syscall each container made since the ledger started, by name:
//! the hot path counts every syscall of every cgroup from the moment it is
//! attached, so the agent knows what a container did over its whole life
//! (what `eunomia advise seccomp` turns into a profile). Bounded: past
//! [`MAX_WORKLOADS`] the workload seen least recently is forgotten (and
//! counted).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

use super::snapshot::RowKind;

/// How many workloads the ledger remembers.
pub(crate) const MAX_WORKLOADS: usize = 4096;

/// What the ledger knows about one workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Recorded {
    /// The row key (container id, `service:NAME`, `host`).
    pub(crate) key: String,
    /// What it is.
    pub(crate) kind: RowKind,
    /// Its name.
    pub(crate) name: String,
    /// The full container id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) container_id: String,
    /// The container runtime.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) runtime: String,
    /// When its first syscall was counted (seconds since the Unix epoch).
    pub(crate) first_seen_unix: f64,
    /// When its last syscall was counted.
    pub(crate) last_seen_unix: f64,
    /// Calls per syscall name since the ledger started.
    pub(crate) syscalls: BTreeMap<String, u64>,
}

impl Recorded {
    /// Whether `query` names this workload: its name, or a prefix (at least
    /// 4 characters) of its container id.
    pub(crate) fn matches(&self, query: &str) -> bool {
        !query.is_empty()
            && (self.name == query
                || self.key == query
                || (query.len() >= 4 && self.container_id.starts_with(query)))
    }
}

#[derive(Debug, Default)]
struct Inner {
    workloads: HashMap<String, Recorded>,
    forgotten: u64,
}

/// The shared ledger (cheap to clone).
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    inner: Arc<Mutex<Inner>>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `calls` of `syscall` made by the workload `who` at `now_unix`.
    pub(crate) fn add(&self, who: &Recorded, syscall: &str, calls: u64, now_unix: f64) {
        let mut inner = self.lock();
        if !inner.workloads.contains_key(&who.key) && inner.workloads.len() >= MAX_WORKLOADS {
            forget_oldest(&mut inner);
        }
        let entry = inner
            .workloads
            .entry(who.key.clone())
            .or_insert_with(|| Recorded {
                first_seen_unix: now_unix,
                syscalls: BTreeMap::new(),
                ..who.clone()
            });
        if !who.name.is_empty() {
            entry.name.clone_from(&who.name);
        }
        entry.last_seen_unix = now_unix;
        *entry.syscalls.entry(syscall.to_owned()).or_default() += calls;
    }

    /// The workloads `query` names (see [`Recorded::matches`]).
    pub(crate) fn matching(&self, query: &str) -> Vec<Recorded> {
        self.lock()
            .workloads
            .values()
            .filter(|r| r.matches(query))
            .cloned()
            .collect()
    }

    /// How many workloads it remembers.
    pub(crate) fn len(&self) -> usize {
        self.lock().workloads.len()
    }

    /// How many workloads were forgotten to stay within [`MAX_WORKLOADS`].
    pub(crate) fn forgotten(&self) -> u64 {
        self.lock().forgotten
    }
}

fn forget_oldest(inner: &mut Inner) {
    let oldest = inner
        .workloads
        .values()
        .min_by(|a, b| a.last_seen_unix.total_cmp(&b.last_seen_unix))
        .map(|r| r.key.clone());
    if let Some(key) = oldest {
        inner.workloads.remove(&key);
        inner.forgotten += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: &str, name: &str) -> Recorded {
        Recorded {
            key: id.into(),
            kind: RowKind::Container,
            name: name.into(),
            container_id: id.into(),
            ..Recorded::default()
        }
    }

    #[test]
    fn accumulates_and_matches_by_name_or_id_prefix() {
        let l = Ledger::default();
        let c = container("abcdef0123", "web");
        l.add(&c, "read", 3, 1.0);
        l.add(&c, "read", 2, 2.0);
        l.add(&c, "write", 1, 3.0);
        let m = l.matching("web");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].syscalls["read"], 5);
        assert_eq!(m[0].first_seen_unix, 1.0);
        assert_eq!(m[0].last_seen_unix, 3.0);
        assert_eq!(l.matching("abcd").len(), 1);
        assert!(l.matching("abc").is_empty(), "too short a prefix");
        assert!(l.matching("").is_empty());
        assert!(l.matching("db").is_empty());
    }

    #[test]
    fn forgets_the_least_recently_seen_past_the_bound() {
        let l = Ledger::default();
        for i in 0..=MAX_WORKLOADS {
            l.add(&container(&format!("id{i:05}"), ""), "read", 1, i as f64);
        }
        assert_eq!(l.forgotten(), 1);
        assert!(l.matching("id00000").is_empty());
        assert_eq!(l.matching("id00001").len(), 1);
    }
}
