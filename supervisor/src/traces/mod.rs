//! Traces and the service map from request spans: the linker joins spans
//! into call chains without writing into requests, and the service graph
//! folds linked spans into edges client → server.

pub mod event;
pub mod graph;
pub mod link;
pub mod span;
pub mod stage;
pub mod svg;
