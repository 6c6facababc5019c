//! HTTP/1.x requests seen by the hot path (`hotpath-ebpf/src/http.rs`):
//! the `[http]` configuration, the decoding of request records, the RED
//! histograms (counted in the kernel, read by [`series`]; here only the
//! requests the kernel could not count), and the source that runs them
//! and sends the requests the kernel recorded on as span events (linked
//! and sampled per trace by `crate::traces`, then seen by rules, the event
//! sinks and the OTLP traces).

pub(crate) mod config;
pub(crate) mod pause;
pub(crate) mod red;
pub(crate) mod request;
pub(crate) mod series;
pub(crate) mod source;

pub(crate) use config::HttpConfig;
