//! Live records for `StreamEvents`: the agent's consume loop publishes each
//! enriched record (events, histograms, tables, stacks) into a bounded broadcast; each subscriber filters by tool,
//! kind and container. Publishing costs nothing while nobody subscribes, and
//! never blocks: a subscriber that falls behind loses the oldest events and
//! is told how many.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::pipeline::ToolRecord;

/// How many events the broadcast holds for the slowest subscriber.
pub(crate) const CAPACITY: usize = 4096;

/// One published event, rendered once for every subscriber.
#[derive(Debug)]
pub(crate) struct LiveEvent {
    /// The tool that printed it.
    pub(crate) tool: Arc<str>,
    /// Its kind, e.g. `exec`.
    pub(crate) kind: String,
    /// The container it came from, if known.
    pub(crate) container_id: Option<String>,
    /// The event with its workload labels as one JSON object.
    pub(crate) json: String,
}

/// The publishing side, shared by the consume loop and the control server.
#[derive(Debug, Clone)]
pub(crate) struct EventHub {
    tx: broadcast::Sender<Arc<LiveEvent>>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new(CAPACITY)
    }
}

impl EventHub {
    /// A hub keeping at most `capacity` events per lagging subscriber.
    pub(crate) fn new(capacity: usize) -> EventHub {
        EventHub {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Publishes `record` (any record: events, histograms, tables, stacks)
    /// when someone listens.
    pub(crate) fn publish(&self, record: &ToolRecord) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        if let Some(event) = render(record) {
            let _ = self.tx.send(Arc::new(event));
        }
    }

    /// A new subscriber, seeing events published from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }

    /// How many subscribers listen now.
    pub(crate) fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// `record` in the one JSON schema ([`crate::schema`]): events, histograms,
/// tables and stacks alike, with the workload labels.
fn render(record: &ToolRecord) -> Option<LiveEvent> {
    let obj = crate::schema::tool_record_object(record);
    // Events filter by their kind; other records by their type.
    let kind = match record.record.as_event() {
        Some(e) => e.kind.as_str().to_owned(),
        None => crate::schema::record_type(&record.record).to_owned(),
    };
    let container_id = record
        .workload
        .as_ref()
        .and_then(|w| w.container.as_ref().map(|c| c.id.clone()));
    Some(LiveEvent {
        tool: record.tool.clone(),
        kind,
        container_id,
        json: Value::Object(obj).to_string(),
    })
}

/// What a subscriber wants to see.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventFilter {
    /// Only these tools (empty: all).
    pub(crate) tools: Vec<String>,
    /// Only these kinds (empty: all).
    pub(crate) kinds: Vec<String>,
    /// Only containers whose id starts with this (empty: all).
    pub(crate) container_id: String,
}

impl EventFilter {
    /// Whether `e` passes.
    pub(crate) fn matches(&self, e: &LiveEvent) -> bool {
        (self.tools.is_empty() || self.tools.iter().any(|t| **t == *e.tool))
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && (self.container_id.is_empty()
                || e.container_id
                    .as_deref()
                    .is_some_and(|id| id.starts_with(&self.container_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(tool: &str) -> ToolRecord {
        let mut e = parsers::Event::new(tool.into(), parsers::EventKind::Exec);
        e.pid = Some(42);
        ToolRecord::new(tool.into(), parsers::Record::Event(e))
    }

    #[tokio::test]
    async fn publishes_only_with_subscribers_and_filters() {
        let hub = EventHub::new(8);
        hub.publish(&exec("execsnoop")); // nobody listens: dropped
        let mut rx = hub.subscribe();
        hub.publish(&exec("execsnoop"));
        let e = rx.recv().await.unwrap();
        assert_eq!(&*e.tool, "execsnoop");
        assert_eq!(e.kind, "exec");
        let v: Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(v["proc.pid"], 42);
        let f = EventFilter {
            tools: vec!["opensnoop".into()],
            ..Default::default()
        };
        assert!(!f.matches(&e));
        let f = EventFilter {
            kinds: vec!["exec".into()],
            ..Default::default()
        };
        assert!(f.matches(&e));
        let f = EventFilter {
            container_id: "abc".into(),
            ..Default::default()
        };
        assert!(!f.matches(&e), "no container: filtered out");
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_how_many_it_lost() {
        let hub = EventHub::new(2);
        let mut rx = hub.subscribe();
        for _ in 0..5 {
            hub.publish(&exec("execsnoop"));
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 3),
            other => panic!("expected lag, got {other:?}"),
        }
    }
}
