//! HTTP/1.x requests seen by the hot path (`hotpath-ebpf/src/http.rs`):
//! the `[http]` configuration, the decoding of request records, the RED
//! histograms aggregated here, the sampler that picks which requests go on
//! into the pipeline as spans (where rules, the event sinks and the OTLP
//! traces see them), and the source that runs them.

pub mod config;
pub mod red;
pub mod request;
pub mod sampler;
pub mod source;

pub use config::HttpConfig;
