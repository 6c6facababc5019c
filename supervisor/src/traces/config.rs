//! How long request spans are held for linking, how long they can be
//! found, and how much the linker and the service map hold.

use std::time::Duration;

use super::link::LinkConfig;

/// The bounds of the traces stage.
#[derive(Debug, Clone, PartialEq)]
pub struct TracesConfig {
    /// How long a span waits for its parent (and the rest of its trace)
    /// before it is linked, sampled and handed to the sinks.
    pub hold: Duration,
    /// How long a span can be found by later spans (at least `hold`).
    pub window: Duration,
    /// Spans held at most; beyond, the oldest goes early (`evicted`).
    pub max_spans: usize,
    /// Edges of the service map at most; beyond, counted
    /// (`eunomia_service_graph_edges_overflow_total`).
    pub max_edges: usize,
}

impl Default for TracesConfig {
    fn default() -> Self {
        let link = LinkConfig::default();
        TracesConfig {
            hold: link.hold,
            window: link.window,
            max_spans: link.max_spans,
            max_edges: 2048,
        }
    }
}

impl TracesConfig {
    /// The linker's bounds.
    pub fn link(&self) -> LinkConfig {
        LinkConfig {
            hold: self.hold,
            window: self.window,
            max_spans: self.max_spans,
            ..LinkConfig::default()
        }
    }
}
