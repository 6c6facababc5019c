//! Talking to systemd when it runs us as a `Type=notify` service: READY once
//! the probes are attached, STOPPING on shutdown, and watchdog pings when the
//! unit sets `WatchdogSec=`. Outside systemd every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// Tells systemd the agent is up (probes attached, sources started).
pub(crate) fn ready() {
    notify(&[NotifyState::Ready]);
}

/// Tells systemd the agent is stopping.
pub(crate) fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// Pings the watchdog at half its period until `shutdown`, when the unit
/// asked for one.
pub(crate) fn spawn_watchdog(shutdown: CancellationToken) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = (timeout / 2).max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = tick.tick() => notify(&[NotifyState::Watchdog]),
                _ = shutdown.cancelled() => return,
            }
        }
    });
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify: {e}");
    }
}
