//! What the host is: its name, asked the same way by every part that needs
//! it (the OTLP resource, the Alertmanager `instance` label).

/// The host name (the UTS namespace's node name); `unknown` if it cannot be
/// read.
pub fn hostname() -> String {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| u.nodename().to_str().map(str::to_owned))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
