//! The source over real files: Docker and CRI logs, partial lines,
//! rotation by rename and copy-truncate, a restart from the checkpoints,
//! malformed lines, the rate limit.

use std::{io::Write as _, path::Path};

use tokio::sync::mpsc;

use super::*;
use crate::pipeline;

struct Fixture {
    dir: tempfile::TempDir,
    config: LogsConfig,
    files: RuntimeFiles,
    pods: PathBuf,
    registry: Arc<Registry>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = LogsConfig {
            checkpoint_file: dir.path().join("state/cp.json"),
            read_existing: true,
            ..LogsConfig::default()
        };
        let files = RuntimeFiles {
            docker_root: Some(dir.path().join("docker")),
            podman_root: Some(dir.path().join("podman")),
            containerd_state: Some(dir.path().join("containerd")),
        };
        Fixture {
            pods: dir.path().join("pods"),
            dir,
            config,
            files,
            registry: Registry::new(),
        }
    }

    fn source(&self) -> (LogSource, mpsc::Receiver<Message>) {
        let (tx, rx) = pipeline::channel(100_000);
        (
            LogSource::new(
                &self.config,
                self.files.clone(),
                Some(self.pods.clone()),
                tx,
                &self.registry,
            ),
            rx,
        )
    }

    fn docker_log(&self, id: &str) -> PathBuf {
        let dir = self.dir.path().join("docker").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(format!("{id}-json.log"))
    }

    fn counter(&self, name: &str, label: (&str, &str)) -> f64 {
        self.registry
            .read()
            .iter()
            .filter(|p| {
                p.name == name && p.labels.iter().any(|(k, v)| *k == label.0 && v == label.1)
            })
            .map(|p| p.value)
            .sum()
    }
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn docker_line(text: &str) -> String {
    format!(
        "{}\n",
        serde_json::json!({"log": format!("{text}\n"), "stream": "stdout", "time": "2024-05-01T10:00:00Z"})
    )
}

fn bodies(rx: &mut mpsc::Receiver<Message>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(msg) = rx.try_recv() {
        if let Message::Record(r) = msg {
            let ev = r.record.as_event().unwrap();
            out.push(
                ev.field(fields::LOG_BODY)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    out
}

#[test]
fn docker_lines_through_rename_truncate_and_restart_arrive_once_in_order() {
    let fx = Fixture::new();
    let log = fx.docker_log("abc");
    append(&log, &docker_line("one"));
    let (mut src, mut rx) = fx.source();
    src.discover();
    src.poll_all();
    assert_eq!(bodies(&mut rx), ["one"]);
    // Rotation by rename: the rest of the old file, then the new one.
    append(&log, &docker_line("two"));
    std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    append(&log, &docker_line("three"));
    src.poll_all();
    src.poll_all();
    src.poll_all();
    assert_eq!(bodies(&mut rx), ["two", "three"]);
    // Copy-truncate.
    std::fs::write(&log, "").unwrap();
    src.poll_all();
    append(&log, &docker_line("four"));
    src.poll_all();
    assert_eq!(bodies(&mut rx), ["four"]);
    src.save();
    drop(src);
    // Restart: lines written while the agent was down, across a rotation.
    append(&log, &docker_line("five"));
    std::fs::rename(&log, log.with_extension("log.2")).unwrap();
    append(&log, &docker_line("six"));
    let (mut src, mut rx) = fx.source();
    src.discover();
    for _ in 0..3 {
        src.poll_all();
    }
    assert_eq!(bodies(&mut rx), ["five", "six"]);
    let rotations: f64 = fx
        .registry
        .read()
        .iter()
        .filter(|p| p.name == super::super::stats::ROTATIONS)
        .map(|p| p.value)
        .sum();
    assert_eq!(rotations, 1.0, "one rename seen while running");
    assert_eq!(
        fx.counter(super::super::stats::TRUNCATED, ("what", "file")),
        1.0
    );
}

#[test]
fn cri_partial_lines_join_and_malformed_lines_are_counted() {
    let fx = Fixture::new();
    let dir = fx.dir.path().join("pods/shop_web-0_u1/app");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("0.log");
    append(
        &log,
        "2024-05-01T10:00:00.1Z stdout P {\"level\":\"error\",\n\
         garbage\n\
         2024-05-01T10:00:00.2Z stderr F WARN disk 91% full\n\
         2024-05-01T10:00:00.3Z stdout F \"msg\":\"boom 7\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n",
    );
    let (mut src, mut rx) = fx.source();
    src.discover();
    src.poll_all();
    let mut events = Vec::new();
    while let Ok(Message::Record(r)) = rx.try_recv() {
        assert_eq!(
            r.workload.as_ref().unwrap().label("k8s.pod.name"),
            Some("web-0")
        );
        events.push(r.record.as_event().unwrap().clone());
    }
    assert_eq!(events.len(), 2, "{events:?}");
    let get = |i: usize, f: &str| {
        events[i]
            .field(f)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    assert_eq!(get(0, fields::LOG_LEVEL).as_deref(), Some("warn"));
    assert_eq!(get(0, fields::LOG_STREAM).as_deref(), Some("stderr"));
    assert_eq!(
        get(0, fields::LOG_PATTERN).as_deref(),
        Some("WARN disk <*> full")
    );
    assert_eq!(get(1, fields::LOG_LEVEL).as_deref(), Some("error"));
    assert_eq!(get(1, fields::LOG_PATTERN).as_deref(), Some("boom <*>"));
    assert_eq!(
        get(1, fields::TRACE_ID).as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(
        events[1].ts_ns, 1_714_557_600_100_000_000,
        "the first part's time"
    );
    assert_eq!(
        fx.counter(super::super::stats::MALFORMED, ("format", "cri")),
        1.0
    );
    // Pattern counts go out as samples.
    src.report(Duration::from_secs(1));
    let Ok(Message::Samples(batch)) = rx.try_recv() else {
        panic!("no pattern counts")
    };
    assert!(batch.samples.iter().any(|s| s.metric == MESSAGES
        && s.label("pattern") == Some("boom <*>")
        && s.label("level") == Some("error")
        && s.value == SampleValue::Delta(1)));
}

#[test]
fn a_flooding_container_is_sampled_and_counted() {
    let mut fx = Fixture::new();
    fx.config.rate_limit = 10;
    fx.config.burst = 10;
    fx.config.sample_1_in = 10;
    let log = fx.docker_log("flood");
    let text: String = (0..110)
        .map(|i| docker_line(&format!("line {i}")))
        .collect();
    append(&log, &text);
    let (mut src, mut rx) = fx.source();
    src.discover();
    src.poll_all();
    let got = bodies(&mut rx);
    assert_eq!(got.len(), 20, "10 in the burst, 1 in 10 of the other 100");
    assert_eq!(
        fx.counter(super::super::stats::DROPPED, ("reason", "rate_limit")),
        90.0
    );
    src.report(Duration::from_secs(1));
    let Ok(Message::Samples(batch)) = rx.try_recv() else {
        panic!("no pattern counts")
    };
    let counted: u64 = batch
        .samples
        .iter()
        .map(|s| match s.value {
            SampleValue::Delta(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(counted, 110, "patterns count every line");
}

#[test]
fn two_rotations_while_stopped_lose_nothing() {
    let fx = Fixture::new();
    let log = fx.docker_log("rot");
    append(&log, &docker_line("a"));
    let (mut src, mut rx) = fx.source();
    src.discover();
    src.poll_all();
    assert_eq!(bodies(&mut rx), ["a"]);
    src.save();
    drop(src);
    // Docker's rotation, twice: .1 -> .2, current -> .1.
    let (one, two) = (log.with_extension("log.1"), log.with_extension("log.2"));
    append(&log, &docker_line("b"));
    std::fs::rename(&log, &one).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    append(&log, &docker_line("c"));
    std::fs::rename(&one, &two).unwrap();
    std::fs::rename(&log, &one).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    append(&log, &docker_line("d"));
    let (mut src, mut rx) = fx.source();
    src.discover();
    for _ in 0..4 {
        src.poll_all();
    }
    assert_eq!(bodies(&mut rx), ["b", "c", "d"]);
    // And twice between two polls while running.
    append(&log, &docker_line("e"));
    std::fs::rename(&one, &two).unwrap();
    std::fs::rename(&log, &one).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    append(&log, &docker_line("f"));
    std::fs::rename(&one, &two).unwrap();
    std::fs::rename(&log, &one).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    append(&log, &docker_line("g"));
    for _ in 0..4 {
        src.poll_all();
    }
    assert_eq!(bodies(&mut rx), ["e", "f", "g"]);
}

#[test]
fn a_line_split_across_a_rotation_survives_a_restart_between_its_parts() {
    let fx = Fixture::new();
    let log = fx.docker_log("split");
    let part = serde_json::json!({"log": "first half ", "stream": "stdout", "time": "2024-05-01T10:00:00Z"});
    append(
        &log,
        &format!("{}\n{part}\n", docker_line("before").trim_end()),
    );
    let (mut src, mut rx) = fx.source();
    src.discover();
    src.poll_all();
    std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    append(&log, "");
    src.poll_all(); // notices the rotation; the first half waits
    assert_eq!(bodies(&mut rx), ["before"]);
    src.save();
    drop(src);
    append(&log, &docker_line("second half"));
    let (mut src, mut rx) = fx.source();
    src.discover();
    for _ in 0..3 {
        src.poll_all();
    }
    assert_eq!(bodies(&mut rx), ["first half second half"]);
}
