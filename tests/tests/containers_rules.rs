//! The default rules against real container lifecycles: starting and
//! stopping containers of Docker, podman and containerd (runc's setup
//! mounts, the shim starting the image's entrypoint shell) raises no alert,
//! in the agent's output or in a real Alertmanager; a shell `docker exec`'d
//! into a running container raises exactly one, naming the container.

mod containers_support;

use std::{
    path::Path,
    process::{Child, Stdio},
    thread,
    time::{Duration, Instant},
};

use containers_support::{IMAGE, Runtimes, can_run, run, runtimes, wait_for};
use eunomia_tests::{
    alertmanager::{ALERTMANAGER, Alertmanager},
    eunomia, kernel_lock,
};
use serde_json::Value;

const SHELL_RULE: &str = "Shell spawned in a container";

/// `eunomia run` with the default tools and rules, alerts to `am`.
struct AgentRun {
    child: Child,
    stdout: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

impl AgentRun {
    fn start(dir: &Path, rt: &Runtimes, am: &Alertmanager) -> AgentRun {
        let config = dir.join("eunomia.toml");
        std::fs::write(
            &config,
            format!(
                "[enrich]\n{}[rules]\nwatch_interval = \"0s\"\n\
                 [sinks.alertmanager]\nurl = \"{}\"\nflush_interval = \"200ms\"\nresolve_timeout = \"10m\"\n",
                rt.enrich_toml(),
                am.url()
            ),
        )
        .unwrap();
        let (stdout, stderr) = (dir.join("stdout"), dir.join("stderr"));
        let child = eunomia()
            .args(["run", "--json", "--for", "300s", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn eunomia run");
        let agent = AgentRun {
            child,
            stdout,
            stderr,
        };
        wait_for(Duration::from_secs(60), "the tools attached", || {
            std::fs::read_to_string(&agent.stderr)
                .is_ok_and(|s| s.matches("first output after").count() >= 3)
        });
        // Attached means printing; give the kernel side a moment more.
        thread::sleep(Duration::from_secs(1));
        agent
    }

    /// The alerts about containers (the machine is shared: other
    /// processes of the host may alert at the same time).
    fn alerts(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "alert" && v["container.id"].is_string())
            .collect()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for AgentRun {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts one container of each runtime (their entrypoint is a shell),
/// lets them run, stops and removes them.
fn lifecycles(rt: &Runtimes, tag: &str) {
    let script = "while true; do /bin/cat /etc/hostname >/dev/null; /bin/sleep 0.2; done";
    let docker = run(rt
        .docker()
        .args(["run", "-d", "--network", "host", "--name"])
        .arg(format!("life-docker-{tag}"))
        .args([IMAGE, "/bin/sh", "-c", script]));
    let podman = run(rt
        .podman()
        .args(["run", "-d", "--network", "host", "--name"])
        .arg(format!("life-podman-{tag}"))
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ])
        .args([IMAGE, "/bin/sh", "-c", script]));
    let ctr = format!("life-ctr-{tag}");
    run(rt
        .ctr()
        .args(["run", "-d", "--net-host", "--rootfs"])
        .arg(rt.rootfs())
        .args([&ctr, "/bin/sh", "-c", script]));
    thread::sleep(Duration::from_secs(3));
    run(rt.docker().args(["rm", "-f", &docker]));
    let podman_id = podman.lines().last().unwrap_or_default().trim().to_owned();
    run(rt.podman().args(["rm", "-f", "-t", "0", &podman_id]));
    run(rt.ctr().args(["tasks", "kill", "-s", "SIGKILL", &ctr]));
    thread::sleep(Duration::from_millis(500));
    let _ = rt.ctr().args(["tasks", "delete", "-f", &ctr]).output();
    run(rt.ctr().args(["containers", "delete", &ctr]));
}

#[test]
fn container_lifecycles_are_quiet_and_an_exec_shell_alerts_once() {
    let test = "container_lifecycles_are_quiet_and_an_exec_shell_alerts_once";
    if !can_run(test) {
        return;
    }
    assert!(
        Path::new(ALERTMANAGER).exists() || std::env::var("CI").as_deref() != Ok("true"),
        "{test}: install prometheus-alertmanager"
    );
    if !Path::new(ALERTMANAGER).exists() {
        eprintln!("SKIP {test}: no {ALERTMANAGER}");
        return;
    }
    let _serial = kernel_lock();
    let rt = runtimes();
    let dir = tempfile::Builder::new()
        .prefix("eunomia-container-rules-")
        .tempdir()
        .unwrap();
    let am = Alertmanager::start();
    let agent = AgentRun::start(dir.path(), rt, &am);
    let tag = std::process::id().to_string();

    lifecycles(rt, &tag);
    // Let the last events pass the pipeline and the Alertmanager flush.
    thread::sleep(Duration::from_secs(3));
    let alerts = agent.alerts();
    assert!(
        alerts.is_empty(),
        "starting and stopping containers alerted: {alerts:#?}\n{}",
        agent.stderr()
    );
    assert!(
        container_alerts(&am).is_empty(),
        "Alertmanager: {:#?}",
        container_alerts(&am)
    );

    // A shell exec'd into a running container: exactly one alert.
    let name = format!("exec-docker-{tag}");
    let id = run(rt
        .docker()
        .args(["run", "-d", "--network", "host", "--name", &name, IMAGE])
        .args(["/bin/sleep", "600"]));
    thread::sleep(Duration::from_secs(1));
    run(rt
        .docker()
        .args(["exec", &id, "/bin/sh", "-c", "/bin/cat /etc/hostname"]));
    wait_for(Duration::from_secs(20), "the shell alert", || {
        !agent.alerts().is_empty() && !container_alerts(&am).is_empty()
    });
    thread::sleep(Duration::from_secs(2));
    let _ = rt.docker().args(["rm", "-f", &id]).output();
    let alerts = agent.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert["rule"], SHELL_RULE, "{alert:#}");
    assert_eq!(alert["container.id"], id.as_str(), "{alert:#}");
    assert_eq!(alert["container.name"], name.as_str(), "{alert:#}");
    // from the hot path: the shell's pid in the container's pid namespace,
    // not 1 (the entrypoint's) and not its pid on the host
    assert_eq!(alert["tool"], "hotpath.exec", "{alert:#}");
    let vpid = alert["proc.vpid"].as_u64().unwrap_or(0);
    assert!(
        vpid > 1 && alert["proc.pid"].as_u64() != Some(vpid),
        "{alert:#}"
    );
    let output = alert["output"].as_str().unwrap_or_default();
    assert!(
        output.contains(&name) && !output.contains("<NA>") && !output.contains("()"),
        "alert text: {output}"
    );
    let in_am = container_alerts(&am);
    assert_eq!(in_am.len(), 1, "Alertmanager: {in_am:#?}");
    assert_eq!(in_am[0]["labels"]["alertname"], SHELL_RULE, "{in_am:#?}");
}

/// The alerts in Alertmanager about containers.
fn container_alerts(am: &Alertmanager) -> Vec<Value> {
    let mut alerts = am.alerts();
    alerts.retain(|a| a["labels"]["container_id"].is_string());
    alerts
}
