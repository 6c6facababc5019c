//! A real Prometheus (Debian's `/usr/bin/prometheus`) started for a test with
//! a temporary configuration and storage on a free loopback port, and
//! queried through its HTTP API.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The Debian binary.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits (at most 30 s) until `URL/-/ready` answers with success, as
/// Prometheus and Alertmanager do once they serve; panics naming `what`.
pub fn wait_ready(url: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reqwest::blocking::get(format!("{url}/-/ready")).is_ok_and(|r| r.status().is_success()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not become ready");
}

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `scrape_configs` (YAML list items, may be
    /// empty) and the remote-write receiver on; waits until it is ready.
    pub fn start(scrape_configs: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        let body = if scrape_configs.is_empty() {
            "global:\n  scrape_interval: 1s\n".to_owned()
        } else {
            format!("global:\n  scrape_interval: 1s\nscrape_configs:\n{scrape_configs}")
        };
        std::fs::write(&config, body).expect("write prometheus.yml");
        let port = free_port();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file(dir.path())))
            .spawn()
            .expect("spawn prometheus (installed by scripts/setup.sh)");
        let p = Prometheus {
            child,
            port,
            _dir: dir,
        };
        wait_ready(&p.url(), "prometheus");
        p
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The remote-write receiver's URL.
    pub fn remote_write_url(&self) -> String {
        format!("{}/api/v1/write", self.url())
    }

    /// Runs an instant query; returns the `data.result` array.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let resp: serde_json::Value = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/query", self.url()))
            .query(&[("query", promql)])
            .send()
            .and_then(|r| r.json())
            .expect("prometheus query");
        assert_eq!(resp["status"], "success", "{resp}");
        resp["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `promql` until `pred` holds for its result; panics with the
    /// last result after `timeout`.
    pub fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.query(promql);
            if pred(&r) {
                return r;
            }
            if Instant::now() > deadline {
                panic!("prometheus: {promql} did not match within {timeout:?}; last result: {r:?}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The numeric value of one instant-vector result.
pub fn value_of(r: &serde_json::Value) -> f64 {
    r["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

fn log_file(dir: &Path) -> std::fs::File {
    std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log")
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
