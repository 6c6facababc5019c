//! The eunomia agent as a library: the command-line interface, the hot-path
//! loader, and the commands the `eunomia` binary dispatches to.
//!
//! Errors that mean "the user gave bad input" are wrapped in [`BadInput`] so the
//! binary maps them to exit code 2; every other error is a runtime failure
//! (exit code 1).

pub mod agent;
pub mod aggregate;
pub mod budget;
pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod control;
pub mod enrich;
pub mod flamegraph;
pub mod host;
pub mod hotpath;
pub mod http;
pub mod live;
pub mod logging;
pub mod logs;
pub mod memory;
pub mod overhead;
pub mod pipeline;
pub mod preflight;
pub mod reload;
pub mod rules;
pub mod schema;
pub mod seccomp;
pub mod selfmetrics;
pub mod sinks;
pub mod standalone;
pub mod sync;
pub mod systemd;
#[cfg(test)]
mod testing;
pub mod textpos;
pub mod tools;
pub mod top;
pub mod traces;
pub mod trust;

/// An error caused by what the user gave us (arguments, config, manifest,
/// rules): the binary exits with code 2 when one is anywhere in the chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);
