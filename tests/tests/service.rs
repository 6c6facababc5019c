//! The agent as a service: configuration checking, systemd notification,
//! the unit file, the install script and the deployment files.

use std::{
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use eunomia_tests::{Agent, eunomia, eunomia_bin, kernel_lock, kernel_tests_can_run, temp_dir};

/// The repository root (this crate lives in `tests/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

#[test]
fn config_check_accepts_the_documented_default() {
    let out = eunomia()
        .args(["config", "check"])
        .arg(repo().join("deploy/eunomia.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
}

#[test]
fn config_default_prints_the_shipped_file() {
    let out = eunomia().args(["config", "default"]).output().unwrap();
    assert!(out.status.success());
    let shipped = std::fs::read_to_string(repo().join("deploy/eunomia.toml")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), shipped);
}

#[test]
fn config_errors_exit_2_with_file_line_and_problem() {
    let dir = temp_dir("service-badconfig");
    let cases = [
        (
            "unknown.toml",
            "[agent]\npoll_interval = \"5s\"\nflavour = 1\n",
            "unknown.toml:3:1: unknown field",
        ),
        (
            "type.toml",
            "[agent]\nchannel_capacity = \"big\"\n",
            "type.toml:2:",
        ),
        ("syntax.toml", "[agent\n", "syntax.toml:1:"),
        (
            "range.toml",
            "[agent]\npoll_interval = \"1ms\"\n",
            "poll_interval",
        ),
    ];
    for (name, text, expect) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        for args in [vec!["config", "check"], vec!["run", "--config"]] {
            let out = eunomia().args(&args).arg(&path).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} {name}: {stderr}");
            assert!(stderr.contains(name), "{name}: file not named: {stderr}");
            assert!(
                stderr.contains(expect),
                "{name}: {expect:?} missing: {stderr}"
            );
        }
    }
}

#[test]
fn missing_config_file_is_reported() {
    let out = eunomia()
        .args(["config", "check", "/nonexistent/eunomia.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/eunomia.toml"));
}

#[test]
fn agent_notifies_systemd_ready_then_stopping() {
    if !kernel_tests_can_run("agent_notifies_systemd_ready_then_stopping") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("service-notify");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let agent = Agent::start_with_env(&["run"], &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    let mut buf = [0u8; 256];
    let n = recv(&sock, &mut buf).expect("READY notification");
    assert_eq!(buf[..n].trim_ascii(), b"READY=1");
    agent.signal(libc::SIGTERM);
    let n = recv(&sock, &mut buf).expect("STOPPING notification");
    assert_eq!(buf[..n].trim_ascii(), b"STOPPING=1");
    let (code, _) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
}

/// `recv`, retried when a signal meant for another part of the test process
/// interrupts it (EINTR).
fn recv(sock: &UnixDatagram, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match sock.recv(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[test]
fn unit_file_verifies() {
    let unit = std::fs::read_to_string(repo().join("deploy/eunomia.service")).unwrap();
    let dir = temp_dir("service-unit");
    let path = dir.join("eunomia.service");
    let bin = eunomia_bin();
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/eunomia", bin.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(unit.contains("Type=notify"));
}

#[test]
fn install_script_installs_and_uninstalls_into_a_staging_root() {
    let root = temp_dir("service-install");
    let run = |args: &[&str]| {
        Command::new("bash")
            .arg(repo().join("scripts/install.sh"))
            .args(args)
            .env("DESTDIR", &root)
            .current_dir(repo())
            .output()
            .unwrap()
    };
    let out = run(&["--binary", eunomia_bin().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "usr/local/bin/eunomia",
        "etc/eunomia/eunomia.toml",
        "etc/eunomia/eunomia.toml.default",
        "etc/systemd/system/eunomia.service",
    ] {
        assert!(root.join(f).exists(), "{f} not installed");
    }
    // Completions and man pages, generated from the command line: each
    // names the subcommands.
    for f in [
        "usr/local/share/bash-completion/completions/eunomia",
        "usr/local/share/zsh/site-functions/_eunomia",
        "usr/local/share/fish/vendor_completions.d/eunomia.fish",
        "usr/local/share/man/man1/eunomia.1",
    ] {
        let text = std::fs::read_to_string(root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        for sub in ["run", "tools", "status", "flamegraph", "rules"] {
            assert!(text.contains(sub), "{f} does not mention `{sub}`");
        }
    }
    assert!(
        root.join("usr/local/share/man/man1/eunomia-tools-start.1")
            .exists()
            || root
                .join("usr/local/share/man/man1/eunomia-tools.1")
                .exists(),
        "no subcommand man page"
    );
    // A user's config survives a reinstall.
    std::fs::write(
        root.join("etc/eunomia/eunomia.toml"),
        "[agent]\npoll_interval = \"3s\"\n",
    )
    .unwrap();
    assert!(
        run(&["--binary", eunomia_bin().to_str().unwrap()])
            .status
            .success()
    );
    let kept = std::fs::read_to_string(root.join("etc/eunomia/eunomia.toml")).unwrap();
    assert!(kept.contains("3s"), "user config overwritten");

    let out = run(&["--uninstall", "--purge"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!root.join("usr/local/bin/eunomia").exists());
    assert!(!root.join("etc/eunomia").exists());
    assert!(!root.join("etc/systemd/system/eunomia.service").exists());
}

#[test]
fn deployment_yaml_parses() {
    let files = [
        "deploy/kubernetes/namespace.yaml",
        "deploy/kubernetes/rbac.yaml",
        "deploy/kubernetes/configmap.yaml",
        "deploy/kubernetes/daemonset.yaml",
        "deploy/otel-collector.yaml",
    ];
    for f in files {
        let out = Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1])))",
            ])
            .arg(repo().join(f))
            .output()
            .expect("python3 with yaml (python3-yaml, from scripts/setup.sh)");
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn daemonset_config_map_is_a_valid_agent_config() {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, yaml; sys.stdout.write(yaml.safe_load(open(sys.argv[1]))['data']['eunomia.toml'])",
        ])
        .arg(repo().join("deploy/kubernetes/configmap.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = temp_dir("service-cm");
    let path = dir.join("eunomia.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    let check = eunomia()
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
