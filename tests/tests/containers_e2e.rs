//! Real containers, end to end: Docker, podman and plain containerd (`ctr`)
//! run a container that execs, opens and connects in a loop; a shell is
//! exec'd into it; `eunomia run` (execsnoop, opensnoop, the hot path,
//! container stats, the default rules) must name the container in every
//! event of it, in the hot-path syscall and TCP metrics, in its resource
//! metrics and in the alert for the exec'd shell.

mod containers_support;

use std::{
    path::Path,
    process::Stdio,
    thread,
    time::{Duration, Instant},
};

use containers_support::{
    IMAGE, Runtimes,
    agent::{AgentRun, args_contain, in_container},
    can_run, run, runtimes, tcp_sink,
};
use eunomia_tests::{eunomia, kernel_lock};
use serde_json::Value;

/// Which runtime a case uses.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Docker,
    Podman,
    Ctr,
}

/// A running test container.
struct Target {
    kind: Kind,
    /// The full id the cgroup carries.
    id: String,
    /// The name the runtime knows it by.
    name: String,
    /// The image name, where the runtime stores it.
    image: Option<&'static str>,
    /// The host pid of its first process (the loop's shell).
    pid: u32,
}

/// The loop every container runs: an exec with `marker` in its arguments,
/// an open, a TCP connection to the host's `port`, a pause.
fn workload(marker: &str, port: u16) -> String {
    format!(
        "while true; do /bin/true {marker}; /bin/cat /etc/hostname >/dev/null; /bin/nc 127.0.0.1 {port} </dev/null >/dev/null; /bin/sleep 0.3; done"
    )
}

fn start(rt: &Runtimes, kind: Kind, name: &str, script: &str) -> Target {
    match kind {
        Kind::Docker => {
            let id = run(rt
                .docker()
                .args(["run", "-d", "--network", "host", "--name", name, IMAGE])
                .args(["/bin/sh", "-c", script]));
            let pid = run(rt.docker().args(["inspect", "-f", "{{.State.Pid}}", &id]));
            Target {
                kind,
                id,
                name: name.into(),
                image: Some(IMAGE),
                pid: pid.parse().unwrap(),
            }
        }
        Kind::Podman => {
            let id = run(rt
                .podman()
                .args(["run", "-d", "--network", "host", "--name", name])
                .args([
                    "--ulimit",
                    "nofile=1024:1024",
                    "--ulimit",
                    "nproc=4096:4096",
                ])
                .args([IMAGE, "/bin/sh", "-c", script]));
            let id = id.lines().last().unwrap().trim().to_owned();
            let pid = run(rt.podman().args(["inspect", "-f", "{{.State.Pid}}", &id]));
            Target {
                kind,
                id,
                name: name.into(),
                image: Some(IMAGE),
                pid: pid.parse().unwrap(),
            }
        }
        Kind::Ctr => {
            run(rt
                .ctr()
                .args(["run", "-d", "--net-host", "--rootfs"])
                .arg(rt.rootfs())
                .args([name, "/bin/sh", "-c", script]));
            let tasks = run(rt.ctr().args(["tasks", "ls"]));
            let pid = tasks
                .lines()
                .find_map(|l| {
                    let mut f = l.split_whitespace();
                    (f.next() == Some(name)).then(|| f.next().unwrap().parse().unwrap())
                })
                .unwrap_or_else(|| panic!("no ctr task {name}: {tasks}"));
            Target {
                kind,
                id: name.into(),
                name: name.into(),
                image: None,
                pid,
            }
        }
    }
}

static EXEC_IDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `exec`s `argv` into the container (the runtime's own exec).
fn exec(rt: &Runtimes, t: &Target, argv: &[&str]) {
    match t.kind {
        Kind::Docker => run(rt.docker().arg("exec").arg(&t.id).args(argv)),
        Kind::Podman => run(rt.podman().arg("exec").arg(&t.id).args(argv)),
        Kind::Ctr => run(rt
            .ctr()
            .args(["tasks", "exec", "--exec-id"])
            .arg(format!(
                "sh{}-{}",
                std::process::id(),
                EXEC_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ))
            .arg(&t.id)
            .args(argv)),
    };
}

fn remove(rt: &Runtimes, t: &Target) {
    let _ = match t.kind {
        Kind::Docker => rt.docker().args(["rm", "-f", &t.id]).output(),
        Kind::Podman => rt.podman().args(["rm", "-f", "-t", "0", &t.id]).output(),
        Kind::Ctr => {
            let _ = rt
                .ctr()
                .args(["tasks", "kill", "-s", "SIGKILL", &t.id])
                .output();
            thread::sleep(Duration::from_millis(300));
            let _ = rt.ctr().args(["tasks", "delete", "-f", &t.id]).output();
            rt.ctr().args(["containers", "delete", &t.id]).output()
        }
    };
}

/// The labels every signal of `t` must carry (a JSON event, or a metric's
/// `labels` object).
fn assert_names(what: &str, v: &Value, t: &Target) {
    let runtime = match t.kind {
        Kind::Docker => "docker",
        Kind::Podman => "podman",
        Kind::Ctr => "containerd",
    };
    assert_eq!(v["container.id"], t.id.as_str(), "{what}: {v}");
    assert_eq!(v["container.runtime"], runtime, "{what}: {v}");
    assert_eq!(v["container.name"], t.name.as_str(), "{what}: {v}");
    if let Some(image) = t.image {
        assert_eq!(v["container.image.name"], image, "{what}: {v}");
    }
    if t.kind == Kind::Ctr {
        assert_eq!(
            v["containerd.namespace"],
            containers_support::CTR_NAMESPACE,
            "{what}: {v}"
        );
    }
}

fn metric_of<'a>(metrics: &'a [Value], name: &str, t: &Target) -> Option<&'a Value> {
    metrics
        .iter()
        .find(|m| m["name"] == name && m["labels"]["container.id"] == t.id.as_str())
}

fn attribution_holds(kind: Kind, test: &str) {
    if !can_run(test) {
        return;
    }
    let _serial = kernel_lock();
    let rt = runtimes();
    let dir = tempfile::Builder::new()
        .prefix("eunomia-containers-")
        .tempdir()
        .unwrap();
    let port = tcp_sink();
    let tag = format!("{kind:?}-{}", std::process::id()).to_lowercase();
    let (marker, exec_marker) = (format!("loop-{tag}"), format!("exec-{tag}"));
    let agent = AgentRun::start(dir.path(), rt, "");
    let t = start(
        rt,
        kind,
        &format!("eunomia-{tag}"),
        &workload(&marker, port),
    );
    // Give the loop a few rounds, then exec a shell into the container.
    thread::sleep(Duration::from_secs(2));
    let exec_script = format!("/bin/true {exec_marker}; /bin/cat /etc/hostname");
    exec(rt, &t, &["/bin/sh", "-c", &exec_script]);
    let wanted = [
        "eunomia_syscalls_total",
        "eunomia_tcp_connections_total",
        "eunomia_container_cpu_seconds_total",
    ];
    let done = || {
        let metrics = agent.metrics();
        let events = agent.events();
        wanted.iter().all(|m| metric_of(&metrics, m, &t).is_some())
            && events
                .iter()
                .any(|e| in_container(e) && args_contain(e, &exec_marker))
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut execs = 1;
    while !done() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(500));
        // A line execsnoop lost (its output is shared with every other
        // process of the machine) is not what this test is about: exec
        // again every few seconds until one is seen; all are checked.
        if execs < 5 && Instant::now() + Duration::from_secs(40 - 8 * execs) > deadline {
            exec(rt, &t, &["/bin/sh", "-c", &exec_script]);
            execs += 1;
        }
    }
    let (events, metrics, alerts) = (agent.events(), agent.metrics(), agent.alerts());
    let dump = agent.dump();
    assert_eq!(agent.stop(), 0, "{dump}");
    let (fg_json, fg_table) = foreground(rt, &t, dir.path(), &format!("fg-{tag}"));
    remove(rt, &t);

    // Every exec of the loop (marker in its arguments, or the loop shell
    // as parent), and every open of those processes.
    let loop_execs: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "exec")
        .filter(|e| in_container(e) && (args_contain(e, &marker) || e["proc.ppid"] == t.pid))
        .collect();
    assert!(
        loop_execs.len() >= 3,
        "too few exec events of the loop ({}):\n{dump}",
        loop_execs.len()
    );
    for e in &loop_execs {
        assert_names("loop exec event", e, &t);
    }
    let loop_pids: Vec<&Value> = loop_execs.iter().map(|e| &e["proc.pid"]).collect();
    let opens: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "open" && loop_pids.contains(&&e["proc.pid"]))
        .collect();
    assert!(!opens.is_empty(), "no open event of the loop:\n{dump}");
    for e in &opens {
        assert_names("open event", e, &t);
    }
    // The exec'd shell and its child, from their first event.
    let exec_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "exec" && in_container(e) && args_contain(e, &exec_marker))
        .collect();
    assert!(
        exec_events.iter().any(|e| e["proc.comm"] == "sh"),
        "no exec event of the exec'd shell: {exec_events:?}\n{dump}"
    );
    for e in &exec_events {
        assert_names("exec'd shell event", e, &t);
    }
    // The hot path's and the cgroup poller's metrics.
    for name in wanted {
        let m = metric_of(&metrics, name, &t)
            .unwrap_or_else(|| panic!("no {name} of container {}:\n{dump}", t.id));
        assert_names(name, &m["labels"], &t);
    }
    // The alert for the exec'd shell names the container.
    let shell_alert = alerts
        .iter()
        .find(|a| {
            a["rule"] == "Shell spawned in a container"
                && a["proc.args"]
                    .as_str()
                    .is_some_and(|s| s.contains(&exec_marker))
        })
        .unwrap_or_else(|| panic!("no shell alert; alerts: {alerts:?}\n{dump}"));
    assert_names("shell alert", shell_alert, &t);
    let output = shell_alert["output"].as_str().unwrap_or_default();
    assert!(
        output.contains(&t.name),
        "the alert text names the container: {output}"
    );
    // Foreground `tools start --container`: only this container's events,
    // enriched like the agent's, the exec'd shell among them.
    assert!(fg_json.len() >= 3, "too few foreground events: {fg_json:?}");
    for e in &fg_json {
        assert_names("foreground --json event", e, &t);
    }
    assert!(
        fg_json
            .iter()
            .any(|e| e["proc.comm"] == "sh" && args_contain(e, &format!("fg-{tag}"))),
        "no foreground event of the exec'd shell: {fg_json:?}"
    );
    let header = fg_table.first().map(String::as_str).unwrap_or_default();
    assert!(
        header.contains("CONTAINER") && header.contains("POD"),
        "table header: {header:?}"
    );
    assert!(
        fg_table.len() >= 2 && fg_table[1..].iter().all(|l| l.contains(&t.name)),
        "table rows not all of {}: {fg_table:#?}",
        t.name
    );
}

/// Runs `eunomia tools start execsnoop --container NAME` in the foreground,
/// as JSON and as a table, while a shell with `marker` is exec'd into the
/// container; returns the JSON events and the table's lines.
fn foreground(rt: &Runtimes, t: &Target, dir: &Path, marker: &str) -> (Vec<Value>, Vec<String>) {
    let config = dir.join("eunomia.toml");
    let run_one = |json: bool| {
        let out = dir.join(if json { "fg.json" } else { "fg.txt" });
        let mut cmd = eunomia();
        cmd.args(["tools", "start", "execsnoop", "--foreground", "--for", "6s"])
            .args(["--container", &t.name, "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null());
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd.spawn().expect("eunomia tools start");
        thread::sleep(Duration::from_secs(3));
        exec(
            rt,
            t,
            &[
                "/bin/sh",
                "-c",
                &format!("/bin/true {marker}; /bin/sleep 0.2"),
            ],
        );
        let status = child.wait().unwrap();
        assert!(status.success(), "tools start: {status}");
        std::fs::read_to_string(&out).unwrap_or_default()
    };
    let json = run_one(true)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let table = run_one(false).lines().map(str::to_owned).collect();
    (json, table)
}

#[test]
fn docker_containers_are_named_everywhere() {
    attribution_holds(Kind::Docker, "docker_containers_are_named_everywhere");
}

#[test]
fn podman_containers_are_named_everywhere() {
    attribution_holds(Kind::Podman, "podman_containers_are_named_everywhere");
}

#[test]
fn containerd_containers_are_named_everywhere() {
    attribution_holds(Kind::Ctr, "containerd_containers_are_named_everywhere");
}
