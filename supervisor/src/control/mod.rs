//! The control API of a running agent: a gRPC service (`proto/control.proto`)
//! on a Unix socket that lists, starts and stops tools, reports status and
//! streams live events and
//! workload snapshots ([`live`]). [`socket`] creates the socket safely, [`server`]
//! implements the service, [`events`] fans events out to subscribers, and
//! [`client`] is what the CLI uses to talk to the agent.

pub mod client;
pub mod events;
pub mod live;
pub mod rates;
pub mod server;
pub mod socket;

/// The generated messages and tonic client/server of `eunomia.control.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("eunomia.control.v1");
}
