//! The span events on their way to the sinks: every HTTP request is held
//! here (compact) while the linker holds its span; when its whole trace is
//! sampled ([`super::sample`]) it becomes a span event with the linked
//! trace id, span id and parent (the application's own `traceparent` kept,
//! see [`super::link`]) and goes on; otherwise it is only counted. Every span goes on or is counted:
//! `eunomia_http_spans_total{reason}` (kept: sampled, error, slow) and
//! `eunomia_http_dropped_total{reason}` (sampled_out, span_rate_limited),
//! self-metrics that `eunomia status` shows.

use std::{collections::VecDeque, time::Duration};

use rustc_hash::FxHashMap as HashMap;

use model::{
    Record,
    metrics::{HTTP_DROPPED_METRIC, HTTP_SPANS_METRIC},
    request::{HttpRequest, TOOL},
    span::SpanContext,
};

use super::{
    link::LinkedSpan,
    sample::{Kept, SampleConfig, Skipped, TraceSampler},
    span::{SpanIds, SpanIn},
};
use crate::{
    pipeline::ToolRecord,
    selfmetrics::{Counter, Registry},
};

/// Requests held, and the sampler deciding which go on.
pub(crate) struct SpanExport {
    /// The requests held, in their spans' arrival order: `records[i]` is
    /// that of span number `base + i` (None once released).
    records: VecDeque<Option<HttpRequest>>,
    base: u64,
    /// The linker's span ids, to find a span's number.
    ids: SpanIds,
    tool: std::sync::Arc<str>,
    sampler: TraceSampler,
    kept: [Counter; 3],
    dropped: [Counter; 2],
}

impl SpanExport {
    /// Sampling by `cfg`, decisions remembered for `window`, requests
    /// held by the span ids of the linker that hands out `ids`.
    pub(crate) fn new(
        registry: &Registry,
        cfg: SampleConfig,
        window: Duration,
        ids: SpanIds,
    ) -> SpanExport {
        let kept = |k: Kept| {
            registry.counter(
                HTTP_SPANS_METRIC,
                "HTTP requests sent on as spans, by why their trace was kept.",
                &[("reason", k.name())],
            )
        };
        let dropped = |s: Skipped| {
            registry.counter(
                HTTP_DROPPED_METRIC,
                "HTTP requests (or their spans) not delivered, by reason.",
                &[("reason", s.name())],
            )
        };
        SpanExport {
            records: VecDeque::new(),
            base: 0,
            ids,
            tool: TOOL.into(),
            sampler: TraceSampler::new(cfg, window),
            kept: [Kept::Sampled, Kept::Slow, Kept::Error].map(kept),
            dropped: [Skipped::SampledOut, Skipped::RateLimited].map(dropped),
        }
    }

    /// Holds the request of the span the linker calls `id`.
    pub(crate) fn hold(&mut self, id: u64, request: HttpRequest) {
        let seq = self.ids.seq(id);
        if self.records.is_empty() {
            self.base = seq;
        }
        // the linker hands out numbers in order: this is the back
        while seq < self.base {
            self.records.push_front(None);
            self.base -= 1;
        }
        let i = (seq - self.base) as usize;
        if i >= self.records.len() {
            self.records.resize_with(i + 1, || None);
        }
        self.records[i] = Some(request);
    }

    /// The request of span `id`, no longer held.
    fn take(&mut self, id: u64) -> Option<HttpRequest> {
        let i = self.ids.seq(id).wrapping_sub(self.base);
        let request = self.records.get_mut(usize::try_from(i).ok()?)?.take();
        while self.records.front().is_some_and(Option::is_none) {
            self.records.pop_front();
            self.base += 1;
        }
        request
    }

    /// Whether a span alone keeps its trace (an error, or slow): only
    /// such held spans change a decision.
    pub(crate) fn is_notable(&self, s: &SpanIn) -> bool {
        self.sampler.config().notable(s).is_some()
    }

    /// The events of `spans` (just emitted by the linker) whose trace is
    /// kept, with their linked ids; `held` are the notable spans the linker
    /// still holds with their trace (what else is known of each trace).
    pub(crate) fn release<'a>(
        &mut self,
        spans: &[LinkedSpan],
        held: impl Iterator<Item = (u128, &'a SpanIn)>,
        now_ns: u64,
    ) -> Vec<ToolRecord> {
        if spans.is_empty() {
            return Vec::new();
        }
        let cfg = *self.sampler.config();
        let mut traces: Vec<(u128, Option<Kept>, Vec<&LinkedSpan>)> = Vec::new();
        let mut index: HashMap<u128, usize> = HashMap::default();
        for s in spans {
            let i = *index.entry(s.trace_id).or_insert_with(|| {
                traces.push((s.trace_id, None, Vec::new()));
                traces.len() - 1
            });
            traces[i].1 = traces[i].1.max(cfg.notable(&s.span));
            traces[i].2.push(s);
        }
        for (trace, span) in held {
            if let Some(&i) = index.get(&trace) {
                traces[i].1 = traces[i].1.max(cfg.notable(span));
            }
        }
        let mut out = Vec::new();
        for (trace, notable, members) in traces {
            let decision = self
                .sampler
                .decide(trace, notable, members.len() as u64, now_ns);
            for s in members {
                let Some(request) = self.take(s.span_id) else {
                    continue;
                };
                match decision {
                    Ok(k) => {
                        self.kept[k as usize].inc();
                        out.push(span_event(&self.tool, request, s));
                    }
                    Err(why) => self.dropped[why as usize].inc(),
                }
            }
        }
        out
    }
}

/// The span event of `request`, with the linked ids of its span `s`.
fn span_event(tool: &std::sync::Arc<str>, request: HttpRequest, s: &LinkedSpan) -> ToolRecord {
    let ids = SpanContext {
        trace_id: s.trace_id.to_be_bytes(),
        span_id: s.span_id.to_be_bytes(),
        parent_span_id: s.parent_id.map(u64::to_be_bytes),
    };
    let event = request.to_event(tool.clone(), &ids);
    ToolRecord {
        tool: tool.clone(),
        record: Record::Event(event),
        workload: request.workload,
    }
}
