//! Each running sink's health for `eunomia status`: where it sends, when it
//! last succeeded, its last error. Backlog and drops come from the sink's
//! self-metrics (`eunomia_sink_buffer_batches`,
//! `eunomia_sink_dropped_items_total`), so status and metrics agree.

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::SystemTime,
};

/// One sink's health, updated by the sink as it works.
#[derive(Debug)]
pub struct SinkHealth {
    /// The sink's name, as in the `sink` label (`otlp`, `prometheus`, ...).
    pub name: &'static str,
    /// Where it sends (or listens).
    pub target: String,
    state: Mutex<State>,
}

#[derive(Debug, Default, Clone)]
struct State {
    last_success: Option<SystemTime>,
    last_error: Option<(SystemTime, String)>,
}

/// A copy of one sink's health.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthView {
    /// The sink.
    pub name: &'static str,
    /// Where it sends.
    pub target: String,
    /// Whether the last attempt succeeded (true before the first attempt).
    pub up: bool,
    /// When it last delivered (or served).
    pub last_success: Option<SystemTime>,
    /// Its last error and when.
    pub last_error: Option<(SystemTime, String)>,
}

impl SinkHealth {
    /// Records a delivery.
    pub fn success(&self) {
        self.lock().last_success = Some(SystemTime::now());
    }

    /// Records a failure.
    pub fn failure(&self, error: impl std::fmt::Display) {
        self.lock().last_error = Some((SystemTime::now(), error.to_string()));
    }

    /// A copy for status.
    pub fn view(&self) -> HealthView {
        let s = self.lock().clone();
        let up = match (&s.last_success, &s.last_error) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(ok), Some((err, _))) => ok >= err,
        };
        HealthView {
            name: self.name,
            target: self.target.clone(),
            up,
            last_success: s.last_success,
            last_error: s.last_error,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn all_sinks() -> &'static Mutex<Vec<Arc<SinkHealth>>> {
    static ALL: OnceLock<Mutex<Vec<Arc<SinkHealth>>>> = OnceLock::new();
    ALL.get_or_init(Default::default)
}

/// Registers a started sink (replacing an earlier one of the same name).
pub fn register(name: &'static str, target: impl Into<String>) -> Arc<SinkHealth> {
    let h = Arc::new(SinkHealth {
        name,
        target: target.into(),
        state: Mutex::new(State::default()),
    });
    let mut all = all_sinks().lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|s| s.name != name);
    all.push(h.clone());
    h
}

/// Every registered sink's health, in start order.
pub fn all() -> Vec<HealthView> {
    let all = all_sinks().lock().unwrap_or_else(|p| p.into_inner());
    all.iter().map(|s| s.view()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_follows_the_last_attempt() {
        let h = register("test-health", "somewhere");
        assert!(h.view().up);
        h.failure("connection refused");
        let v = h.view();
        assert!(!v.up);
        assert_eq!(v.last_error.unwrap().1, "connection refused");
        std::thread::sleep(std::time::Duration::from_millis(2));
        h.success();
        assert!(h.view().up);
        assert!(all().iter().any(|v| v.name == "test-health"));
    }
}
