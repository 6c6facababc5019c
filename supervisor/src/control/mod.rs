//! The control API of a running agent: a gRPC service (`proto/control.proto`)
//! on a Unix socket that lists, starts and stops tools, reports status and
//! streams live events and
//! workload snapshots ([`live`]). [`socket`] creates the socket safely, [`server`]
//! implements the service, [`events`] fans events out to subscribers, and
//! [`client`] is what the CLI uses to talk to the agent.

pub(crate) mod client;
pub(crate) mod events;
pub(crate) mod live;
pub(crate) mod rates;
pub(crate) mod server;
pub(crate) mod socket;

/// The generated messages and tonic client/server of `eunomia.control.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub(crate) mod proto {
    tonic::include_proto!("eunomia.control.v1");
}
