//! A real Alertmanager (Debian's `/usr/bin/prometheus-alertmanager`) started
//! for a test on a free loopback port, clustering off, with a temporary
//! configuration and storage, and read through its v2 API.

use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::prom::{free_port, wait_ready};

/// The Debian binary (installed by `scripts/setup.sh`).
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A running Alertmanager, killed on drop.
pub struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts it with a route to a receiver that does nothing, and waits
    /// until it is ready.
    pub fn start() -> Alertmanager {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
        )
        .expect("write alertmanager.yml");
        let port = free_port();
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus-alertmanager (installed by scripts/setup.sh)");
        let am = Alertmanager {
            child,
            port,
            _dir: dir,
        };
        wait_ready(&am.url(), "alertmanager");
        am
    }

    /// `http://127.0.0.1:PORT`, what the agent's `[alertmanager] url` takes.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The active alerts (`GET /api/v2/alerts`); none while it cannot be read.
    pub fn alerts(&self) -> Vec<Value> {
        reqwest::blocking::get(format!("{}/api/v2/alerts", self.url()))
            .and_then(|r| r.json::<Vec<Value>>())
            .unwrap_or_default()
    }

    /// The active alerts whose `alertname` is `rule`.
    pub fn alerts_named(&self, rule: &str) -> Vec<Value> {
        let mut alerts = self.alerts();
        alerts.retain(|a| a["labels"]["alertname"] == rule);
        alerts
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
