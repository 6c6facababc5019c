//! The enrichment stage: every message passes here between the sources and
//! the rest of the pipeline. Samples that carry a `cgroup.id` (or
//! `cgroup.path`) label get the workload's labels appended; records from
//! tools that name a pid get the workload attached.

use crate::pipeline::{Message, Sample, SampleBatch, ToolRecord};

use super::{
    resolver::Resolver,
    workload::{CGROUP_ID, CGROUP_PATH, CONTAINER_ID, SERVICE},
};

/// The stage; owns the resolver and its caches.
#[derive(Debug)]
pub struct Enricher {
    resolver: Resolver,
}

impl Enricher {
    /// A stage resolving through `resolver`.
    pub fn new(resolver: Resolver) -> Enricher {
        Enricher { resolver }
    }

    /// The resolver, e.g. to wire the hot path's pid lookup.
    pub fn resolver(&mut self) -> &mut Resolver {
        &mut self.resolver
    }

    /// Enriches one message in place.
    pub fn enrich(&mut self, msg: &mut Message) {
        match msg {
            Message::Samples(batch) => self.enrich_batch(batch),
            Message::Record(record) => self.enrich_record(record),
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
    pub fn enrich_record(&mut self, record: &mut ToolRecord) {
        if record.workload.is_some() {
            return;
        }
        if let Some(pid) = record.pid() {
            record.workload = Some(self.resolver.by_pid(pid));
        }
    }
}
