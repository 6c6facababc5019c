//! HTTP/1.x requests seen by the hot path (`hotpath-ebpf/src/http.rs`):
//! the `[http]` configuration, the decoding of request records, the RED
//! histograms aggregated here, the sampler that picks which requests go on
//! into the pipeline as spans (where rules, the event sinks and the OTLP
//! traces see them), and the source that runs them.

pub(crate) mod config;
pub(crate) mod red;
pub(crate) mod request;
pub(crate) mod sampler;
pub(crate) mod source;

pub(crate) use config::HttpConfig;
