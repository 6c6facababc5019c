//! The stages every pipeline message goes through, in order: enrich, the
//! traces stage (which holds span events until their links are known),
//! then the live view, rules, aggregation, the event sinks and the console.

use std::time::Duration;

use anyhow::Context as _;

use crate::{
    aggregate::SharedAggregator,
    config::Config,
    control::events::EventHub,
    enrich::Enricher,
    pipeline::Message,
    rules::RulesStage,
    selfmetrics::Registry,
    sinks::{self, console::Console},
};

/// The traces stage, bounded by `[traces]`, sampling by `[http]`.
pub(super) fn traces_stage(
    config: &Config,
    registry: &Registry,
    map: crate::traces::stage::MapHandle,
) -> crate::traces::stage::TracesStage {
    let h = &config.http;
    let sampling = crate::traces::sample::SampleConfig {
        ratio: h.agent_ratio(),
        slow: h.slow_threshold,
        cap: h.max_spans_per_second,
    };
    crate::traces::stage::TracesStage::new(
        registry,
        map,
        config.agent.poll_interval,
        &config.traces,
        sampling,
    )
}

/// The stages every message goes through, in order.
pub(super) struct Stages<W: std::io::Write> {
    pub(super) enricher: Option<Enricher>,
    /// How often the enricher reports its own counters.
    pub(super) self_interval: Duration,
    pub(super) rules: RulesStage,
    pub(super) aggregator: SharedAggregator,
    pub(super) console: Console<W>,
    pub(super) events: sinks::EventSinks,
    /// Live events for the control API's subscribers.
    pub(super) live: EventHub,
    /// Interval snapshots of every workload (`eunomia top`) and the
    /// syscall ledger (`eunomia advise seccomp`).
    pub(super) view: crate::live::LiveView,
    pub(super) snapshots: crate::live::LiveHub,
    /// Spans linked into traces, the service map (`eunomia map`).
    pub(super) traces: crate::traces::stage::TracesStage,
}

impl<W: std::io::Write> Stages<W> {
    /// One message from the sources: enriched, then through the traces
    /// stage (which holds span events and releases those whose hold is
    /// over), then through the later stages.
    pub(super) fn handle(&mut self, mut msg: Message) -> anyhow::Result<()> {
        if let Some(enricher) = self.enricher.as_mut() {
            enricher.enrich(&mut msg);
            if let Some(own) = enricher.self_batch_due(self.self_interval) {
                self.aggregate(&Message::Samples(own));
            }
        }
        let now = crate::host::now_ns();
        let rest = self.traces.on_message(msg, now);
        self.release()?;
        match rest {
            Some(msg) => self.after_traces(&msg),
            None => Ok(()),
        }
    }

    /// The span events the traces stage lets go now, and the service-graph
    /// samples when due.
    pub(super) fn release(&mut self) -> anyhow::Result<()> {
        let now = crate::host::now_ns();
        let released = self.traces.release(now);
        if let Some(graph) = self.traces.due(now) {
            self.aggregate(&Message::Samples(graph));
        }
        for record in released {
            self.after_traces(&Message::Record(record))?;
        }
        Ok(())
    }

    /// The stages after the traces stage.
    pub(super) fn after_traces(&mut self, msg: &Message) -> anyhow::Result<()> {
        if let Message::Record(r) = msg {
            self.live.publish(r);
        }
        if let Message::Samples(batch) = msg
            && let Some(snapshot) = self.view.ingest(batch)
        {
            self.snapshots.publish(snapshot);
        }
        if let Message::Record(r) = msg
            && let Some(event) = r.record.as_event()
        {
            match r.workload.as_deref() {
                Some(workload) => self.rules.on_event(event, workload),
                None => self.rules.on_event(event, &model::NoLabels),
            }
        }
        self.aggregate(msg);
        self.events.offer(msg);
        self.console.handle(msg).context("writing to stdout")
    }

    pub(super) fn aggregate(&self, msg: &Message) {
        crate::sync::lock(&self.aggregator).ingest(msg);
    }
}
