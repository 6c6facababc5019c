//! Where the pipeline's output goes. One module per sink.

pub mod alertmanager;
pub mod console;
