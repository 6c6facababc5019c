//! The enrichment stage: every message passes here between the sources and
//! the rest of the pipeline. Samples that carry a `cgroup.id` (or
//! `cgroup.path`) label get the workload's labels appended; records from
//! tools that name a pid, and HTTP requests, get the workload attached.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use model::{
    Workload,
    labels::{CGROUP_ID, CGROUP_PATH, CONTAINER_ID, SERVICE},
    request::HttpRequest,
};

use crate::pipeline::{Message, Sample, SampleBatch, SampleValue, ToolRecord};

use super::resolver::{Resolver, ResolverStats};

/// Source name of the stage's own counters.
pub(crate) const SELF_SOURCE: &str = "enrich.self";
/// Entries in the resolver's caches (gauge), label `cache`.
pub(crate) const CACHE_ENTRIES: &str = "eunomia_enrich_cache_entries";
/// Cgroup lookups (counter), label `result` = `hit` | `miss`.
pub(crate) const LOOKUPS: &str = "eunomia_enrich_lookups_total";
/// Lookups that found nothing (counter), label `what` = `cgroup` | `pid`.
pub(crate) const UNRESOLVED: &str = "eunomia_enrich_unresolved_total";
/// Pid lookups (counter), label `via` = `kernel` | `proc`.
pub(crate) const PID_LOOKUPS: &str = "eunomia_enrich_pid_lookups_total";

/// The stage; owns the resolver and its caches.
#[derive(Debug)]
pub struct Enricher {
    resolver: Resolver,
    reported: ResolverStats,
    reported_at: Instant,
}

impl Enricher {
    /// A stage resolving through `resolver`.
    pub fn new(resolver: Resolver) -> Enricher {
        Enricher {
            resolver,
            reported: ResolverStats::default(),
            reported_at: Instant::now(),
        }
    }

    /// The stage's own counters since the last report, once `every` has
    /// passed since then (self-observability); `None` before.
    pub(crate) fn self_batch_due(&mut self, every: Duration) -> Option<SampleBatch> {
        let elapsed = self.reported_at.elapsed();
        if elapsed < every {
            return None;
        }
        self.reported_at = Instant::now();
        let now = self.resolver.stats().clone();
        let before = std::mem::replace(&mut self.reported, now.clone());
        let sizes = self.resolver.cache_sizes();
        let gauge = |cache: &str, n: usize| Sample {
            metric: CACHE_ENTRIES,
            labels: vec![("cache", cache.to_owned())],
            value: SampleValue::Gauge(n as f64),
        };
        let delta = |metric, key: &'static str, value: &str, n: u64, m: u64| Sample {
            metric,
            labels: vec![(key, value.to_owned())],
            value: SampleValue::Delta(n.saturating_sub(m)),
        };
        let samples = vec![
            gauge("cgroup", sizes.by_id),
            gauge("path", sizes.by_path),
            gauge("pid", sizes.by_pid),
            delta(LOOKUPS, "result", "hit", now.cache_hits, before.cache_hits),
            delta(
                LOOKUPS,
                "result",
                "miss",
                now.cache_misses,
                before.cache_misses,
            ),
            delta(UNRESOLVED, "what", "cgroup", now.gone, before.gone),
            delta(
                UNRESOLVED,
                "what",
                "pid",
                now.pid_unknown,
                before.pid_unknown,
            ),
            delta(
                PID_LOOKUPS,
                "via",
                "kernel",
                now.pid_from_kernel,
                before.pid_from_kernel,
            ),
            delta(
                PID_LOOKUPS,
                "via",
                "proc",
                now.pid_from_proc,
                before.pid_from_proc,
            ),
        ];
        Some(SampleBatch {
            source: SELF_SOURCE,
            interval_s: elapsed.as_secs_f64(),
            samples,
        })
    }

    /// Enriches one message in place.
    pub fn enrich(&mut self, msg: &mut Message) {
        match msg {
            Message::Samples(batch) => self.enrich_batch(batch),
            Message::Record(record) => self.enrich_record(record),
            Message::Requests(requests) => self.enrich_requests(requests),
        }
    }

    /// Attaches the workload of each request's cgroup (the kernel read it
    /// with the request: no pid lookup), by its pid when that cgroup is
    /// gone. Requests of one cgroup in a row share one lookup.
    fn enrich_requests(&mut self, requests: &mut [HttpRequest]) {
        let mut last: Option<(u64, Arc<Workload>)> = None;
        for r in requests.iter_mut().filter(|r| r.workload.is_none()) {
            let workload = match &last {
                Some((id, w)) if *id == r.cgroup_id => w.clone(),
                _ => {
                    let w = self.resolver.by_cgroup_id(r.cgroup_id);
                    if !w.is_known() {
                        r.workload = Some(self.resolver.by_pid(r.pid));
                        continue;
                    }
                    last = Some((r.cgroup_id, w.clone()));
                    w
                }
            };
            r.workload = Some(workload);
        }
    }

    fn enrich_batch(&mut self, batch: &mut SampleBatch) {
        for sample in &mut batch.samples {
            self.enrich_sample(sample);
        }
    }

    /// Appends the workload labels of the sample's cgroup; a sample already
    /// labelled with a container or service is left alone.
    pub fn enrich_sample(&mut self, sample: &mut Sample) {
        if sample.label(CONTAINER_ID).is_some() || sample.label(SERVICE).is_some() {
            return;
        }
        let workload = if let Some(id) = sample.label(CGROUP_ID).and_then(|v| v.parse().ok()) {
            self.resolver.by_cgroup_id(id)
        } else if let Some(path) = sample.label(CGROUP_PATH) {
            let path = path.to_owned();
            self.resolver.by_path(&path)
        } else {
            return;
        };
        sample
            .labels
            .extend(workload.labels().map(|(k, v)| (k, v.to_owned())));
    }

    /// Attaches the workload of the record's process.
    pub(crate) fn enrich_record(&mut self, record: &mut ToolRecord) {
        if record.workload.is_some() {
            return;
        }
        if let Some(pid) = record.pid() {
            if is_exec(record) {
                // A process exec'd into a container moved there after its
                // fork: what was cached about the pid is older than that.
                self.resolver.forget_pid(pid);
            }
            record.workload = Some(self.resolver.by_pid(pid));
        }
    }
}

/// Whether the record is an exec event.
fn is_exec(record: &ToolRecord) -> bool {
    matches!(&record.record, parsers::Record::Event(e) if e.kind == parsers::EventKind::Exec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::EnrichConfig;

    #[test]
    fn samples_without_cgroup_labels_pass_unchanged_and_self_counters_report() {
        let mut enricher = Enricher::new(Resolver::new(&EnrichConfig::default()));
        let mut sample = Sample {
            metric: "m",
            labels: vec![("syscall", "read".into())],
            value: SampleValue::Delta(1),
        };
        enricher.enrich_sample(&mut sample);
        assert_eq!(sample.labels.len(), 1);
        // An id no cgroup has: resolves to unknown, adds nothing.
        let mut sample = Sample {
            labels: vec![(CGROUP_ID, u64::MAX.to_string())],
            ..sample
        };
        enricher.enrich_sample(&mut sample);
        assert_eq!(sample.labels.len(), 1);
        let batch = enricher.self_batch_due(Duration::ZERO).unwrap();
        let miss = batch
            .samples
            .iter()
            .find(|s| s.metric == LOOKUPS && s.label("result") == Some("miss"))
            .unwrap();
        assert_eq!(miss.value, SampleValue::Delta(1));
        assert!(enricher.self_batch_due(Duration::from_secs(3600)).is_none());
    }
}
