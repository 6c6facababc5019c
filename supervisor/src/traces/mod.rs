//! Traces and the service map from request spans: the linker joins spans
//! into call chains without writing into requests, and the service graph
//! folds linked spans into edges client → server; the span events go on
//! to the sinks with the linked ids, sampled per trace.

pub mod config;
pub mod event;
pub mod export;
pub mod graph;
pub mod link;
pub mod sample;
pub mod span;
pub mod stage;
pub mod svg;
