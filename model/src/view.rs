//! The enriched event: [`ToolRecord`] (a parsed record, the tool that
//! printed it and the [`Workload`] enrichment found for it) and
//! [`EventView`], how aggregation and the log sinks read any event by the
//! stable names of its fields and labels.

use std::sync::Arc;

use crate::{
    Record, Workload,
    fields::{PROC_COMM, PROC_PID, PROC_PPID, PROC_TID, PROC_UID},
    record::Event,
    value::ValueRef,
};

/// What aggregation and the log sinks read from an event.
pub trait EventView {
    /// The tool that reported it (manifest name).
    fn tool(&self) -> &str;
    /// What happened (`exec`, `tcp_session`, ...).
    fn kind(&self) -> &str;
    /// Receive time, ns since the Unix epoch (0 when unknown).
    fn ts_ns(&self) -> u64;
    /// The field `name`, including enrichment labels such as `container.id`.
    fn get(&self, name: &str) -> Option<ValueRef<'_>>;
    /// Calls `f` for every field (for logs).
    fn for_each_field(&self, f: &mut dyn FnMut(&str, ValueRef<'_>));
}

/// A record from a supervised tool, tagged with the tool's manifest name:
/// the enriched event every stage after enrichment reads.
#[derive(Debug)]
pub struct ToolRecord {
    /// The manifest name of the tool that printed it.
    pub tool: Arc<str>,
    /// What the parser made of the output.
    pub record: Record,
    /// Who it came from: set by the enrichment stage from the record's pid.
    pub workload: Option<Arc<Workload>>,
}

impl ToolRecord {
    /// A record not enriched yet.
    pub fn new(tool: Arc<str>, record: Record) -> ToolRecord {
        ToolRecord {
            tool,
            record,
            workload: None,
        }
    }

    /// The pid of the process the record is about: an event's `proc.pid`,
    /// a folded stack's pid; histograms and tables name none.
    pub fn pid(&self) -> Option<u32> {
        match &self.record {
            Record::Event(event) => event.pid,
            Record::Stack(stack) => stack.pid,
            _ => None,
        }
    }
}

/// Calls `f` with the process members and then every field of `event`.
fn for_each_event_field(event: &Event, f: &mut dyn FnMut(&str, ValueRef<'_>)) {
    for name in [PROC_PID, PROC_TID, PROC_PPID, PROC_UID, PROC_COMM] {
        if let Some(v) = event.get(name) {
            f(name, v);
        }
    }
    for (name, v) in &event.fields {
        f(name, v.as_ref());
    }
}

/// A tool's record seen as an event: the parsed event's fields, then the
/// enrichment labels (`container.id`, `k8s.pod.name`, ...). Records that are
/// not events (histograms, tables, stacks) have no fields.
impl EventView for ToolRecord {
    fn tool(&self) -> &str {
        &self.tool
    }
    fn kind(&self) -> &str {
        self.record.as_event().map_or("", |e| e.kind.as_str())
    }
    fn ts_ns(&self) -> u64 {
        self.record.as_event().map_or(0, |e| e.ts_ns)
    }
    fn get(&self, name: &str) -> Option<ValueRef<'_>> {
        if let Some(v) = self.record.as_event().and_then(|e| e.get(name)) {
            return Some(v);
        }
        self.workload
            .as_deref()
            .and_then(|w| w.label(name))
            .map(ValueRef::Str)
    }
    fn for_each_field(&self, f: &mut dyn FnMut(&str, ValueRef<'_>)) {
        let Some(event) = self.record.as_event() else {
            return;
        };
        for_each_event_field(event, f);
        if let Some(w) = self.workload.as_deref() {
            for (k, v) in w.labels() {
                f(k, ValueRef::Str(v));
            }
        }
    }
}

impl EventView for Event {
    fn tool(&self) -> &str {
        &self.tool
    }
    fn kind(&self) -> &str {
        self.kind.as_str()
    }
    fn ts_ns(&self) -> u64 {
        self.ts_ns
    }
    fn get(&self, name: &str) -> Option<ValueRef<'_>> {
        Event::get(self, name)
    }
    fn for_each_field(&self, f: &mut dyn FnMut(&str, ValueRef<'_>)) {
        for_each_event_field(self, f);
    }
}
