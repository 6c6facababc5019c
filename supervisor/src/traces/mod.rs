//! Traces and the service map from request spans: the linker joins spans
//! into call chains without writing into requests, and the service graph
//! folds linked spans into edges client → server; the span events go on
//! to the sinks with the linked ids, sampled per trace.

pub(crate) mod config;
pub(crate) mod event;
pub(crate) mod export;
pub(crate) mod graph;
mod index;
pub(crate) mod link;
mod outcome;
pub(crate) mod sample;
pub(crate) mod span;
pub(crate) mod stage;
pub(crate) mod svg;
