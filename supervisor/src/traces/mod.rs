//! Traces and the service map from request spans: the linker joins spans
//! into call chains without writing into requests, and the service graph
//! folds linked spans into edges client → server.

pub(crate) mod event;
pub(crate) mod graph;
pub(crate) mod link;
pub(crate) mod span;
pub(crate) mod stage;
pub(crate) mod svg;
