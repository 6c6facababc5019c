//! Container logs end to end: a real Docker container writes known lines at
//! a known rate (plain, JSON with levels and trace ids, multi-line, lines
//! longer than Docker's 16 KiB split, stderr) into a json-file log that
//! rotates every 60 KB; the agent is stopped and started again in the
//! middle. Every line must arrive once, in order per stream, with the
//! container's labels; the pattern counts must match what was written; a
//! rule on a `panic:` line must fire in a real Alertmanager; a malformed
//! log file must be counted, not stop anything.

mod containers_support;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use containers_support::{IMAGE, Runtimes, can_run, cri_pod::CriPod, run, runtimes, wait_for};
use eunomia_tests::{eunomia, kernel_lock};
use serde_json::Value;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const RULE: &str = "Panic in a container log";
const LINES: usize = 300;
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const LONG: usize = 20_000;

/// The real Alertmanager on a free port, clustering off.
struct Alertmanager {
    child: Child,
    port: u16,
}

impl Alertmanager {
    fn start(dir: &Path) -> Alertmanager {
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-alertmanager");
        let am = Alertmanager { child, port };
        wait_for(Duration::from_secs(30), "Alertmanager ready", || {
            reqwest::blocking::get(format!("{}/-/ready", am.url()))
                .is_ok_and(|r| r.status().is_success())
        });
        am
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn alerts(&self, rule: &str) -> Vec<Value> {
        reqwest::blocking::get(format!("{}/api/v2/alerts", self.url()))
            .and_then(|r| r.json::<Vec<Value>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["labels"]["alertname"] == rule)
            .collect()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `eunomia run` writing JSON lines to `jsonl`.
struct Run {
    child: Child,
    jsonl: PathBuf,
    stderr: PathBuf,
}

impl Run {
    fn start(dir: &Path, config: &Path, name: &str) -> Run {
        let jsonl = dir.join(format!("{name}.jsonl"));
        let stderr = dir.join(format!("{name}.stderr"));
        let child = eunomia()
            .args(["run", "--for", "300s", "--interval", "1s", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join(format!("{name}.stdout"))).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn eunomia run");
        let run = Run {
            child,
            jsonl: jsonl.clone(),
            stderr,
        };
        // The JSON-lines sink writes its first metrics once everything runs.
        wait_for(Duration::from_secs(60), "the agent running", || {
            std::fs::read_to_string(&jsonl).is_ok_and(|s| s.contains("\"type\":\"metric\""))
        });
        run
    }

    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.jsonl)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn stop(mut self) -> i32 {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("the agent did not stop:\n{}", self.stderr());
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The container's script: per round a plain line, a JSON line (level
/// error, trace and span ids) and a stderr line; every 50 rounds two lines
/// in one write and a line longer than Docker's 16 KiB split; one `panic:`.
fn script() -> String {
    format!(
        r#"i=0
while [ $i -lt {LINES} ]; do
  echo "plain line seq=$i of the test"
  echo '{{"level":"error","msg":"request failed '$i'","trace_id":"{TRACE}","span_id":"{SPAN}"}}'
  echo "WARN stderr seq=$i" >&2
  if [ $((i % 50)) -eq 0 ]; then
    printf "multi seq=%d first\nmulti seq=%d second\n" $i $i
    printf "long seq=%d %0{LONG}d\n" $i 0
  fi
  if [ $i -eq 150 ]; then echo "panic: payment failed seq=$i"; fi
  i=$((i+1))
  /bin/busybox usleep 10000
done"#
    )
}

/// What the script writes to stdout, in order.
fn expected_stdout() -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..LINES {
        out.push(format!("plain line seq={i} of the test"));
        out.push(format!(
            r#"{{"level":"error","msg":"request failed {i}","trace_id":"{TRACE}","span_id":"{SPAN}"}}"#
        ));
        if i % 50 == 0 {
            out.push(format!("multi seq={i} first"));
            out.push(format!("multi seq={i} second"));
            out.push(format!("long seq={i} {}", "0".repeat(LONG)));
        }
        if i == 150 {
            out.push(format!("panic: payment failed seq={i}"));
        }
    }
    out
}

fn write_config(dir: &Path, rt: &Runtimes, am: &Alertmanager) -> PathBuf {
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[[rule]]\nname = \"{RULE}\"\ncondition = 'event.kind = log and log.body startswith \"panic:\"'\n\
             severity = \"critical\"\noutput = \"panic in {{container}}: {{log.body}}\"\n"
        ),
    )
    .unwrap();
    let config = dir.join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[tools]\nenabled = []\n\
             [enrich]\n{}pod_logs_root = \"{}\"\n\
             [logs]\ncheckpoint_file = \"{}\"\npoll_interval = \"100ms\"\ndiscover_interval = \"300ms\"\n\
             read_existing = true\nrate_limit = 100000\nburst = 100000\n\
             [rules]\nwatch_interval = \"0s\"\ndefaults = false\nfiles = [\"{}\"]\n\
             [sinks.alertmanager]\nurl = \"{}\"\nflush_interval = \"200ms\"\nresolve_timeout = \"10m\"\n",
            rt.enrich_toml(),
            rt.base.join("pods").display(),
            dir.join("state/logs.json").display(),
            rules.display(),
            am.url()
        ),
    )
    .unwrap();
    config
}

/// The log events of container `id`, in the order written.
fn log_events(lines: &[Value], id: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|v| v["type"] == "event" && v["kind"] == "log" && v["container.id"] == id)
        .cloned()
        .collect()
}

/// The largest value of the pattern counter of `id` (the runs count anew).
fn pattern_count(lines: &[Value], id: &str, level: &str, pattern: &str) -> f64 {
    lines
        .iter()
        .filter(|v| {
            v["type"] == "metric"
                && v["name"] == "eunomia_container_log_messages_total"
                && v["labels"]["container.id"] == id
                && v["labels"]["level"] == level
                && v["labels"]["pattern"] == pattern
        })
        .filter_map(|v| v["value"].as_f64())
        .fold(0.0, f64::max)
}

#[test]
fn docker_logs_arrive_once_in_order_across_rotation_and_restart() {
    let test = "docker_logs_arrive_once_in_order_across_rotation_and_restart";
    if !can_run(test) {
        return;
    }
    if !Path::new(ALERTMANAGER).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: install prometheus-alertmanager"
        );
        eprintln!("SKIP {test}: no {ALERTMANAGER}");
        return;
    }
    let _serial = kernel_lock();
    let rt = runtimes();
    let dir = tempfile::Builder::new()
        .prefix("eunomia-logs-")
        .tempdir()
        .unwrap();
    let am = Alertmanager::start(dir.path());
    let config = write_config(dir.path(), rt, &am);
    // A malformed log file next to the real ones.
    let fake = "f".repeat(64);
    let fake_dir = rt.docker_containers().join(&fake);
    std::fs::create_dir_all(&fake_dir).unwrap();
    std::fs::write(
        fake_dir.join(format!("{fake}-json.log")),
        "garbage\n{\"log\":\"fake ok\\n\",\"stream\":\"stdout\",\"time\":\"2024-05-01T10:00:00Z\"}\n{\"log\":1}\n",
    )
    .unwrap();
    let with_jsonl = |name: &str| {
        let text = std::fs::read_to_string(&config).unwrap()
            + &format!(
                "[sinks.jsonl]\npath = \"{}\"\ninterval = \"1s\"\n",
                dir.path().join(format!("{name}.jsonl")).display()
            );
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let first = Run::start(dir.path(), &with_jsonl("first"), "first");
    let name = format!("logs-{}", std::process::id());
    let id = run(rt
        .docker()
        .args(["run", "-d", "--name", &name])
        .args(["--log-driver", "json-file"])
        .args(["--log-opt", "max-size=60k", "--log-opt", "max-file=50"])
        .args([IMAGE, "/bin/sh", "-c", &script()]))
    .trim()
    .to_owned();
    // The agent stops in the middle of the output and starts again.
    thread::sleep(Duration::from_millis(2500));
    let first_stderr = first.stderr();
    let first_lines = {
        let code = first.stop_and_lines();
        assert_eq!(code.0, 0, "first run:\n{first_stderr}");
        code.1
    };
    thread::sleep(Duration::from_secs(1));
    let second = Run::start(dir.path(), &with_jsonl("second"), "second");
    let _ = run(rt.docker().args(["wait", &id]));
    // The file did rotate (Docker keeps the rotated copies).
    let rotated = std::fs::read_dir(rt.docker_containers().join(&id))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-json.log."))
        .count();
    assert!(rotated >= 2, "docker rotated the log {rotated} times");
    let want_stdout = expected_stdout();
    wait_for(Duration::from_secs(60), "the last lines", || {
        let got = log_events(&second.lines(), &id);
        got.iter()
            .filter(|e| e["log.stream"] == "stderr")
            .any(|e| e["log.body"] == format!("WARN stderr seq={}", LINES - 1))
            && got
                .iter()
                .any(|e| e["log.body"] == *want_stdout.last().unwrap())
    });
    // Let the last alerts and metrics out.
    thread::sleep(Duration::from_secs(2));
    let second_stderr = second.stderr();
    let (code, second_lines) = second.stop_and_lines();
    assert_eq!(code, 0, "second run:\n{second_stderr}");
    let _ = run(rt.docker().args(["rm", "-f", &id]));

    let firsts = log_events(&first_lines, &id);
    let seconds = log_events(&second_lines, &id);
    assert!(
        !firsts.is_empty() && !seconds.is_empty(),
        "both runs read lines: {} + {}",
        firsts.len(),
        seconds.len()
    );
    eprintln!(
        "{test}: {} lines before the restart, {} after, {rotated} rotated files",
        firsts.len(),
        seconds.len()
    );
    let all: Vec<&Value> = firsts.iter().chain(&seconds).collect();
    let stream = |s: &str| -> Vec<String> {
        all.iter()
            .filter(|e| e["log.stream"] == s)
            .map(|e| e["log.body"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let stdout = stream("stdout");
    assert_eq!(
        stdout.len(),
        want_stdout.len(),
        "stdout lines: every line once"
    );
    for (i, (got, want)) in stdout.iter().zip(&want_stdout).enumerate() {
        assert_eq!(got, want, "stdout line {i} (of {})", want_stdout.len());
    }
    let want_stderr: Vec<String> = (0..LINES).map(|i| format!("WARN stderr seq={i}")).collect();
    assert_eq!(
        stream("stderr"),
        want_stderr,
        "stderr: every line once, in order"
    );
    for e in &all {
        assert_eq!(e["container.name"], name.as_str(), "{e}");
        assert_eq!(e["container.runtime"], "docker", "{e}");
        assert_eq!(e["container.image.name"], IMAGE, "{e}");
    }
    let json = all
        .iter()
        .find(|e| {
            e["log.body"]
                .as_str()
                .is_some_and(|b| b.contains("request failed 7\""))
        })
        .expect("a JSON line");
    assert_eq!(json["log.level"], "error", "{json}");
    assert_eq!(json["trace_id"], TRACE, "{json}");
    assert_eq!(json["span_id"], SPAN, "{json}");
    assert_eq!(json["log.pattern"], "request failed <*>", "{json}");
    let warn = all.iter().find(|e| e["log.stream"] == "stderr").unwrap();
    assert_eq!(warn["log.level"], "warn", "{warn}");
    // Pattern counts: what each run read, adding up to what was written.
    let count = |level, pattern| {
        pattern_count(&first_lines, &id, level, pattern)
            + pattern_count(&second_lines, &id, level, pattern)
    };
    assert_eq!(count("error", "request failed <*>"), LINES as f64);
    assert_eq!(
        count("unknown", "plain line seq=<*> of the test"),
        LINES as f64
    );
    assert_eq!(count("warn", "WARN stderr seq=<*>"), LINES as f64);
    // The malformed file: counted, its good line read.
    let malformed: f64 = first_lines
        .iter()
        .filter(|v| {
            v["name"] == "eunomia_logs_malformed_lines_total" && v["labels"]["format"] == "docker"
        })
        .filter_map(|v| v["value"].as_f64())
        .fold(0.0, f64::max);
    assert_eq!(malformed, 2.0, "garbage and a record without its fields");
    assert!(
        first_lines.iter().any(|v| v["kind"] == "log"
            && v["container.id"] == fake.as_str()
            && v["log.body"] == "fake ok"),
        "the good line of the malformed file"
    );
    // The rule on the panic line, in Alertmanager, once.
    wait_for(
        Duration::from_secs(20),
        "the panic alert in Alertmanager",
        || !am.alerts(RULE).is_empty(),
    );
    let alerts = am.alerts(RULE);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(
        alerts[0]["labels"]["container_id"],
        id.as_str(),
        "{alerts:#?}"
    );
    let _ = std::fs::remove_dir_all(&fake_dir);
}

#[test]
fn cri_pod_logs_arrive_once_in_order_with_split_lines_joined() {
    let test = "cri_pod_logs_arrive_once_in_order_with_split_lines_joined";
    if !can_run(test) {
        return;
    }
    if !Path::new(ALERTMANAGER).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: install prometheus-alertmanager"
        );
        eprintln!("SKIP {test}: no {ALERTMANAGER}");
        return;
    }
    let _serial = kernel_lock();
    let rt = runtimes();
    let dir = tempfile::Builder::new()
        .prefix("eunomia-logs-cri-")
        .tempdir()
        .unwrap();
    let am = Alertmanager::start(dir.path());
    let config = write_config(dir.path(), rt, &am);
    let text = std::fs::read_to_string(&config).unwrap()
        + &format!(
            "[sinks.jsonl]\npath = \"{}\"\ninterval = \"1s\"\n",
            dir.path().join("cri.jsonl").display()
        );
    std::fs::write(&config, text).unwrap();
    let agent = Run::start(dir.path(), &config, "cri");
    // Lines over containerd's 16 KiB line size are written as partial lines.
    let n = 100;
    let script = format!(
        r#"i=0
while [ $i -lt {n} ]; do
  echo "cri line seq=$i"
  echo "E0501 10:00:00.000000 1 x.go:1] cri error seq=$i" >&2
  if [ $((i % 20)) -eq 0 ]; then printf "cri long seq=%d %0{LONG}d
" $i 0; fi
  i=$((i+1))
  /bin/busybox usleep 10000
done
sleep 1000"#
    );
    let pod = CriPod::start(rt, "shop", "logs-0", "app", &script);
    let mut want_stdout = Vec::new();
    for i in 0..n {
        want_stdout.push(format!("cri line seq={i}"));
        if i % 20 == 0 {
            want_stdout.push(format!("cri long seq={i} {}", "0".repeat(LONG)));
        }
    }
    let last = format!("E0501 10:00:00.000000 1 x.go:1] cri error seq={}", n - 1);
    wait_for(Duration::from_secs(60), "the pod's last line", || {
        log_events(&agent.lines(), &pod.app)
            .iter()
            .any(|e| e["log.body"] == last.as_str())
    });
    thread::sleep(Duration::from_millis(500));
    let stderr = agent.stderr();
    let (code, lines) = agent.stop_and_lines();
    assert_eq!(code, 0, "{stderr}");
    let events = log_events(&lines, &pod.app);
    let stream = |s: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["log.stream"] == s)
            .map(|e| e["log.body"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        stream("stdout"),
        want_stdout,
        "stdout: once, in order, split lines joined"
    );
    let want_stderr: Vec<String> = (0..n)
        .map(|i| format!("E0501 10:00:00.000000 1 x.go:1] cri error seq={i}"))
        .collect();
    assert_eq!(stream("stderr"), want_stderr);
    for e in &events {
        assert_eq!(e["k8s.pod.name"], "logs-0", "{e}");
        assert_eq!(e["k8s.namespace.name"], "shop", "{e}");
        assert_eq!(e["k8s.pod.uid"], pod.uid.as_str(), "{e}");
        assert_eq!(e["container.name"], "app", "{e}");
        assert_eq!(e["container.image.name"], IMAGE, "{e}");
    }
    let klog = events.iter().find(|e| e["log.stream"] == "stderr").unwrap();
    assert_eq!(klog["log.level"], "error", "klog severity: {klog}");
    assert_eq!(
        pattern_count(&lines, &pod.app, "unknown", "cri line seq=<*>"),
        n as f64
    );
    // containerd did split the long lines (tag P), and they were joined.
    let file = rt
        .base
        .join(format!("pods/shop_logs-0_{}/app/0.log", pod.uid));
    let raw = std::fs::read_to_string(&file).unwrap();
    let partials = raw
        .lines()
        .filter(|l| l.split(' ').nth(2) == Some("P"))
        .count();
    assert!(
        partials >= n / 20,
        "{partials} partial lines in {}",
        file.display()
    );
    drop(pod);
}

impl Run {
    /// Stops the agent; its exit code and everything it wrote.
    fn stop_and_lines(self) -> (i32, Vec<Value>) {
        let jsonl = self.jsonl.clone();
        let code = self.stop();
        let lines = std::fs::read_to_string(jsonl)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (code, lines)
    }
}
