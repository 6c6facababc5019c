//! HTTP/1.x requests seen by the hot path (`hotpath-ebpf/src/http.rs`):
//! the `[http]` configuration, the decoding of request records, and the
//! source that sends one event per request into the pipeline (where rules
//! see it and aggregation turns it into the `http.*.request.duration`
//! histograms).

pub mod config;
pub mod request;
pub mod source;

pub use config::HttpConfig;
