//! `eunomia advise seccomp` with real Docker: a container's workload is
//! watched, its profile written; a new container started with
//! `--security-opt seccomp=profile.json` runs the same workload, and a
//! syscall the workload never made (`mkdir`, `link`) is refused with EPERM, while
//! the same command works without the profile.
//!
//! Two sources: a recording (`--for`, no agent) of a container that was
//! already running (so the runtime's own syscalls come from the built-in
//! list), and the running agent's counts of a container it saw start.

mod containers_support;

use std::{path::Path, process::Stdio, thread, time::Duration};

use containers_support::{IMAGE, Runtimes, agent::AgentRun, can_run, run, runtimes, wait_for};
use eunomia_tests::{eunomia, kernel_lock, temp_dir};
use serde_json::Value;

/// Writes a file, lists a directory, reads a file, prints a line.
const WORKLOAD: &str = "i=0; while true; do i=$((i+1)); echo \"tick $i\" > /tmp/t; /bin/cat /tmp/t; /bin/ls / >/dev/null; /bin/sleep 0.3; done";

fn docker_run(rt: &Runtimes, name: &str, extra: &[&str]) -> String {
    run(rt
        .docker()
        .args(["run", "-d", "--network", "host", "--name", name])
        .args(extra)
        .args([IMAGE, "/bin/sh", "-c", WORKLOAD]))
}

fn remove(rt: &Runtimes, name: &str) {
    let _ = rt
        .docker()
        .args(["rm", "-f", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `docker exec NAME CMD...`: (success, stdout+stderr).
fn exec(rt: &Runtimes, name: &str, cmd: &[&str]) -> (bool, String) {
    let out = rt.docker().args(["exec", name]).args(cmd).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn allowed(profile: &Value) -> Vec<String> {
    profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["names"].as_array().unwrap().iter())
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// Checks the profile's shape, then that a container confined by it runs
/// the workload and that each of `denied` (a busybox applet and its
/// arguments, whose syscalls are in `never`) fails with EPERM.
fn enforce(rt: &Runtimes, profile_path: &Path, name: &str, never: &[&str], denied: &[&[&str]]) {
    let text = std::fs::read_to_string(profile_path).unwrap();
    let profile: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO", "{text}");
    assert_eq!(profile["defaultErrnoRet"], 1, "{text}");
    assert_eq!(
        profile["architectures"],
        serde_json::json!(["SCMP_ARCH_X86_64"])
    );
    let names = allowed(&profile);
    for needed in ["execve", "openat", "write", "getdents64", "wait4"] {
        assert!(
            names.iter().any(|n| n == needed),
            "{needed} allowed: {names:?}"
        );
    }
    for never in never {
        assert!(
            !names.iter().any(|n| n == never),
            "{never} never made: {names:?}"
        );
    }
    let confined = format!("{name}-confined");
    let opt = format!("seccomp={}", profile_path.display());
    docker_run(rt, &confined, &["--security-opt", &opt]);
    let result = std::panic::catch_unwind(|| {
        wait_for(
            Duration::from_secs(20),
            "the confined container's workload",
            || {
                let out = rt.docker().args(["logs", &confined]).output().unwrap();
                String::from_utf8_lossy(&out.stdout).contains("tick 5")
            },
        );
        let state = run(rt
            .docker()
            .args(["inspect", "-f", "{{.State.Running}}", &confined]));
        assert_eq!(state, "true");
        for cmd in denied {
            let mut argv = vec!["/bin/busybox"];
            argv.extend_from_slice(cmd);
            let (ok, text) = exec(rt, &confined, &argv);
            assert!(
                !ok && text.contains("Operation not permitted"),
                "{cmd:?} refused with EPERM: {text}"
            );
        }
        let (ok, text) = exec(rt, &confined, &["/bin/cat", "/etc/hostname"]);
        assert!(
            ok && !text.trim().is_empty(),
            "the workload's own syscalls work in exec too: {text}"
        );
    });
    remove(rt, &confined);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn a_recorded_profile_runs_the_workload_and_refuses_the_rest() {
    if !can_run("a_recorded_profile_runs_the_workload_and_refuses_the_rest") {
        return;
    }
    let _k = kernel_lock();
    let rt = runtimes();
    let dir = temp_dir("advise-recorded");
    let name = format!("seccomp-rec-{}", std::process::id());
    docker_run(rt, &name, &[]);
    thread::sleep(Duration::from_secs(1));
    let result = std::panic::catch_unwind(|| {
        let config = dir.join("eunomia.toml");
        std::fs::write(&config, format!("[enrich]\n{}", rt.enrich_toml())).unwrap();
        let profile = dir.join("profile.json");
        let out = eunomia()
            .args([
                "advise",
                "seccomp",
                "--container",
                &name,
                "--for",
                "4s",
                "-o",
            ])
            .arg(&profile)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "advise seccomp failed: {stderr}");
        assert!(
            stderr.contains("syscalls allowed for container"),
            "{stderr}"
        );
        // Without the profile the same commands work (the refusal is the profile's).
        for cmd in [
            &["mkdir", "/tmp/allowed"][..],
            &["ln", "/tmp/t", "/tmp/link"],
        ] {
            let mut argv = vec!["/bin/busybox"];
            argv.extend_from_slice(cmd);
            let (ok, text) = exec(rt, &name, &argv);
            assert!(ok, "{cmd:?} works unconfined: {text}");
        }
        enforce(
            rt,
            &profile,
            &name,
            &["mkdir", "mkdirat", "link", "linkat", "ptrace", "mount"],
            &[&["mkdir", "/tmp/denied"], &["ln", "/tmp/t", "/tmp/denied"]],
        );
    });
    remove(rt, &name);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn the_agents_counts_make_a_working_profile() {
    if !can_run("the_agents_counts_make_a_working_profile") {
        return;
    }
    let _k = kernel_lock();
    let rt = runtimes();
    let dir = temp_dir("advise-agent");
    let agent = AgentRun::start(&dir, rt, "");
    let name = format!("seccomp-agent-{}", std::process::id());
    docker_run(rt, &name, &[]);
    let result = std::panic::catch_unwind(|| {
        thread::sleep(Duration::from_secs(3));
        let profile = dir.join("profile.json");
        let out = eunomia()
            .args(["advise", "seccomp", "--container", &name, "-o"])
            .arg(&profile)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "advise seccomp failed: {stderr}");
        assert!(stderr.contains("counted by the running agent"), "{stderr}");
        // Unknown containers are bad input, named.
        let out = eunomia()
            .args(["advise", "seccomp", "--container", "no-such-container"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-container"));
        // The agent saw the container start: what runc did in the container's
        // cgroup to set it up (mount, pivot_root, mkdirat, ...) is in the
        // record too (docs/seccomp.md); a link was never made.
        enforce(
            rt,
            &profile,
            &name,
            &["link", "linkat", "ptrace"],
            &[&["ln", "/tmp/t", "/tmp/denied"]],
        );
    });
    remove(rt, &name);
    let code = agent.stop();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    assert_eq!(code, 0);
}
