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
    /// Reused by [`SpanExport::release`]: the traces of a release, each
    /// one's spans chained by index, the traces by id.
    traces: Vec<Trace>,
    next: Vec<usize>,
    index: HashMap<u128, usize>,
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
            traces: Vec::new(),
            next: Vec::new(),
            index: HashMap::default(),
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
            self.records.resize_with(i, || None);
            self.records.push_back(Some(request));
        } else {
            self.records[i] = Some(request);
        }
    }

    /// Where the request of span `id` is in `records`, when in its range.
    fn index(&self, id: u64) -> Option<usize> {
        let i = self.ids.seq(id).wrapping_sub(self.base);
        usize::try_from(i).ok().filter(|i| *i < self.records.len())
    }

    /// The request of span `id`, no longer held: moved out when `keep`,
    /// else dropped where it is (None then too).
    fn take(&mut self, id: u64, keep: bool) -> Option<HttpRequest> {
        let i = self.index(id)?;
        let slot = &mut self.records[i];
        let request = match keep {
            true => slot.take(),
            false => {
                *slot = None;
                None
            }
        };
        while self.records.front().is_some_and(Option::is_none) {
            self.records.pop_front();
            self.base += 1;
        }
        request
    }

    /// Whether the request of span `id` is held.
    fn is_held(&self, id: u64) -> bool {
        self.index(id).is_some_and(|i| self.records[i].is_some())
    }

    /// Whether a span alone keeps its trace whatever was decided (an
    /// error, or slow): only such held spans change a decision. Spans the
    /// kernel sampled are not counted here: with `records = "sampled"`
    /// nearly every span held is one, and looking through all of them at
    /// every release cost 80 % of the agent's CPU.
    pub(crate) fn is_notable(&self, s: &SpanIn) -> bool {
        self.sampler.config().alarm(s).is_some()
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
        // the traces in order of their first span; each one's spans as a
        // chain through `next` (no allocation per trace)
        let (mut traces, mut next, mut index) = (
            std::mem::take(&mut self.traces),
            std::mem::take(&mut self.next),
            std::mem::take(&mut self.index),
        );
        next.clear();
        next.resize(spans.len(), usize::MAX);
        for (i, s) in spans.iter().enumerate() {
            let t = *index.entry(s.trace_id).or_insert_with(|| {
                traces.push(Trace {
                    id: s.trace_id,
                    notable: None,
                    first: i,
                    last: i,
                    spans: 0,
                });
                traces.len() - 1
            });
            let t = &mut traces[t];
            t.notable = t.notable.max(cfg.notable(&s.span));
            if t.spans > 0 {
                next[t.last] = i;
            }
            t.last = i;
            t.spans += 1;
        }
        for (trace, span) in held {
            if let Some(&i) = index.get(&trace) {
                traces[i].notable = traces[i].notable.max(cfg.notable(span));
            }
        }
        let mut out = Vec::new();
        for t in traces.drain(..) {
            let decision = self.sampler.decide(t.id, t.notable, t.spans, now_ns);
            let mut i = t.first;
            while i != usize::MAX {
                let s = &spans[i];
                i = next[i];
                if !self.is_held(s.span_id) {
                    continue;
                }
                match decision {
                    Ok(k) => {
                        self.kept[k as usize].inc();
                        if let Some(request) = self.take(s.span_id, true) {
                            out.push(span_event(&self.tool, request, s));
                        }
                    }
                    Err(why) => {
                        self.dropped[why as usize].inc();
                        self.take(s.span_id, false);
                    }
                }
            }
        }
        index.clear();
        (self.traces, self.next, self.index) = (traces, next, index);
        out
    }
}

/// One trace among the spans released at once.
struct Trace {
    id: u128,
    /// The strongest reason among its known spans.
    notable: Option<Kept>,
    /// Its first and last span (indexes).
    first: usize,
    last: usize,
    /// How many.
    spans: u64,
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
