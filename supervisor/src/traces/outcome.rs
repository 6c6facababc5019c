//! What linking found for each span, counted per outcome
//! (`eunomia_trace_links_total{outcome}`).

/// What linking found for a span (`eunomia_trace_links_total{outcome}`).
/// A server span counts one outcome, a client span two (its server end,
/// its parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    /// Server span whose client span is on this host (its parent).
    ServerParentClient,
    /// Server span that kept the application's `traceparent`.
    ServerParentTraceparent,
    /// Server span whose caller is not on this host (a root).
    ServerNoParent,
    /// Client span whose server span is on this host.
    ClientServerOnHost,
    /// Client span whose server is elsewhere.
    ClientServerNotOnHost,
    /// Client span made while its thread served a request (its parent).
    ClientParentThread,
    /// Client span that kept the application's `traceparent`.
    ClientParentTraceparent,
    /// Client span inside several requests served on its thread: unlinked.
    ClientParentAmbiguous,
    /// Client span made outside any served request on its thread.
    ClientNoParent,
    /// A link joined two parts already emitted under different trace ids.
    SplitTrace,
    /// Emitted before its hold because `max_spans` was reached.
    Evicted,
}

impl Outcome {
    /// Every outcome, in label order.
    pub(crate) const ALL: [Outcome; 11] = [
        Outcome::ServerParentClient,
        Outcome::ServerParentTraceparent,
        Outcome::ServerNoParent,
        Outcome::ClientServerOnHost,
        Outcome::ClientServerNotOnHost,
        Outcome::ClientParentThread,
        Outcome::ClientParentTraceparent,
        Outcome::ClientParentAmbiguous,
        Outcome::ClientNoParent,
        Outcome::SplitTrace,
        Outcome::Evicted,
    ];

    /// The `outcome` label value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Outcome::ServerParentClient => "server_parent_client",
            Outcome::ServerParentTraceparent => "server_parent_traceparent",
            Outcome::ServerNoParent => "server_no_parent",
            Outcome::ClientServerOnHost => "client_server_on_host",
            Outcome::ClientServerNotOnHost => "client_server_not_on_host",
            Outcome::ClientParentThread => "client_parent_thread",
            Outcome::ClientParentTraceparent => "client_parent_traceparent",
            Outcome::ClientParentAmbiguous => "client_parent_ambiguous",
            Outcome::ClientNoParent => "client_no_parent",
            Outcome::SplitTrace => "split_trace",
            Outcome::Evicted => "evicted",
        }
    }
}
