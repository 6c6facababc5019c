//! The one model of what flows through eunomia, owned here and read by every
//! stage: a pure library (no I/O, no async, no logging, no panics on any
//! input), so the parsers that produce it can be fuzzed and benchmarked alone.
//!
//! - [`Record`]: what a parser emits, over [`Event`] (one thing happened,
//!   with the process members `pid`, `tid`, `ppid`, `uid`, `comm` and typed
//!   [`Value`] fields under the stable names of [`fields`]),
//!   [`HistogramSnapshot`], [`TableSnapshot`] and [`FoldedStack`].
//! - [`Value`] / [`ValueRef`]: the one value type (owned / borrowed).
//! - [`fields`], [`labels`] and [`metrics`]: every field name, label key
//!   and hot-path sample name.
//! - [`span`]: an HTTP request as a span (an event of kind `http_server` or
//!   `http_client` with trace and span ids), read and written by [`span::SpanContext`];
//!   [`request::HttpRequest`]: the compact request every captured request is
//!   until its trace is kept (then it becomes that span event).
//! - [`Workload`]: who an event came from (container, pod, service), as
//!   enrichment finds it; read through [`Labels`].
//! - [`ToolRecord`] and [`EventView`]: the enriched event and how rules,
//!   aggregation and sinks read it.
//!
//! Records carry the time the tool printed ([`ToolTime`]) and a `ts_ns`
//! the caller stamps with the wall-clock receive time ([`Record::set_ts_ns`]).

pub mod escape;
pub mod fields;
pub mod labels;
pub mod metrics;
mod record;
pub mod request;
mod smallstr;
pub mod span;
mod value;
mod view;
mod workload;

pub use labels::{Labels, NoLabels};
pub use record::{
    Bucket, Comm, Event, EventKind, Fields, FoldedStack, HistogramSnapshot, Label, Record,
    TableSnapshot, ToolTime, Unit,
};
pub use smallstr::SmallStr;
pub use value::{Value, ValueRef};
pub use view::{EventView, ToolRecord};
pub use workload::{Container, Pod, QosClass, Runtime, Workload};
