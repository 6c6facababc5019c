//! `eunomia top` used as a person uses it: two real Docker containers (a
//! busy one that execs and connects in a loop, an idle one), then
//! - standalone (no agent): `eunomia top --json` prints one snapshot per
//!   interval whose rows name the containers, with syscall rates, CPU and
//!   the busy one's TCP peer;
//! - against a running agent, in a real terminal (tmux): the rows of both
//!   containers appear, busiest first; `<` `r` sort by name both ways; `/`
//!   filters; Enter drills into the busy container (its syscalls and TCP
//!   peers); Esc goes back; `q` and Ctrl-C quit, leaving the terminal's
//!   settings as they were.

mod containers_support;

use std::{process::Stdio, time::Duration};

use containers_support::{IMAGE, agent::AgentRun, can_run, run, runtimes, tcp_sink};
use eunomia_tests::{eunomia, eunomia_bin, kernel_lock, temp_dir, test_socket, tmux::Tmux};
use serde_json::Value;

/// Lines of `pane` that name `what`.
fn line_of<'a>(pane: &'a str, what: &str) -> Option<(usize, &'a str)> {
    pane.lines().enumerate().find(|(_, l)| l.contains(what))
}

#[test]
fn top_shows_sorts_filters_and_drills_into_real_containers() {
    if !can_run("top_shows_sorts_filters_and_drills_into_real_containers") {
        return;
    }
    let _k = kernel_lock();
    let rt = runtimes();
    let dir = temp_dir("top-tui");
    let pid = std::process::id();
    let (busy, idle) = (format!("top-busy-{pid}"), format!("top-idle-{pid}"));
    let port = tcp_sink();
    let busy_loop = format!(
        "while true; do /bin/cat /etc/hostname >/dev/null; /bin/nc 127.0.0.1 {port} </dev/null >/dev/null; /bin/sleep 0.1; done"
    );
    for (name, script) in [
        (&busy, busy_loop.as_str()),
        (&idle, "while true; do /bin/sleep 2; done"),
    ] {
        run(rt
            .docker()
            .args(["run", "-d", "--network", "host", "--name", name, IMAGE])
            .args(["/bin/sh", "-c", script]));
    }
    let result = std::panic::catch_unwind(|| {
        standalone_json(&dir, rt, &busy, &idle, port);
        in_a_terminal(&dir, rt, &busy, &idle, port);
    });
    for name in [&busy, &idle] {
        let _ = rt
            .docker()
            .args(["rm", "-f", name])
            .stdout(Stdio::null())
            .status();
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// `eunomia top --json --standalone`: the hot path loaded by top itself.
fn standalone_json(
    dir: &std::path::Path,
    rt: &containers_support::Runtimes,
    busy: &str,
    idle: &str,
    port: u16,
) {
    let config = dir.join("top.toml");
    std::fs::write(&config, format!("[enrich]\n{}", rt.enrich_toml())).unwrap();
    let out = eunomia()
        .args([
            "top",
            "--json",
            "--standalone",
            "--for",
            "8s",
            "--interval",
            "1s",
            "--config",
        ])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .expect("run eunomia top --json");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "eunomia top --json failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshots: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        snapshots.len() >= 4,
        "one snapshot per second: {}",
        snapshots.len()
    );
    let rows = |name: &str| -> Vec<Value> {
        snapshots
            .iter()
            .flat_map(|s| s["rows"].as_array().cloned().unwrap_or_default())
            .filter(|r| r["name"] == name)
            .collect()
    };
    let (b, i) = (rows(busy), rows(idle));
    assert!(
        !b.is_empty() && !i.is_empty(),
        "both containers have rows:\n{stdout}"
    );
    assert!(
        b.iter()
            .all(|r| r["kind"] == "container" && r["runtime"] == "docker")
    );
    assert!(
        b.iter().any(|r| r["syscalls_per_s"].as_f64() > Some(50.0)),
        "{b:?}"
    );
    assert!(
        b.iter().any(|r| r["cpu_percent"].as_f64().is_some()),
        "{b:?}"
    );
    let peer = format!("127.0.0.1:{port}");
    assert!(
        b.iter().any(|r| r["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["peer"] == peer.as_str())),
        "the busy container's TCP peer {peer}: {b:?}"
    );
    assert!(
        b.iter()
            .any(|r| r["tcp_connects_per_s"].as_f64() > Some(0.0))
    );
    assert!(snapshots.iter().all(|s| {
        s["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "host")
    }));
    let busy_max = b
        .iter()
        .filter_map(|r| r["syscalls_per_s"].as_f64())
        .fold(0.0, f64::max);
    let idle_max = i
        .iter()
        .filter_map(|r| r["syscalls_per_s"].as_f64())
        .fold(0.0, f64::max);
    assert!(busy_max > idle_max, "busy {busy_max} > idle {idle_max}");
}

/// The terminal view against a running agent.
fn in_a_terminal(
    dir: &std::path::Path,
    rt: &containers_support::Runtimes,
    busy: &str,
    idle: &str,
    port: u16,
) {
    let agent = AgentRun::start(dir, rt, "");
    let d = dir.display();
    let command = format!(
        "for i in 1 2; do stty -g > {d}/stty.before.$i; {} top; s=$?; stty -g > {d}/stty.after.$i; echo TOP-EXITED-$i $s; read x; done; sleep 300",
        eunomia_bin().display()
    );
    let socket = test_socket();
    let term = Tmux::start(
        "top",
        &command,
        &[("EUNOMIA_SOCKET", socket.to_str().unwrap())],
        220,
        50,
    );
    let both = |p: &str| p.contains(busy) && p.contains(idle);
    let pane = term.wait_for(Duration::from_secs(30), "rows of both containers", both);
    assert!(pane.contains("from agent"), "{pane}");
    assert!(pane.contains("sort: SYSC/s desc"), "{pane}");
    let (_, bl) = line_of(&pane, busy).unwrap();
    let (_, il) = line_of(&pane, idle).unwrap();
    assert!(
        bl.contains("container") && il.contains("container"),
        "{pane}"
    );
    // Busiest first (a refresh or two until both had a full interval).
    term.wait_for(
        Duration::from_secs(10),
        "busy above idle",
        |p| matches!((line_of(p, busy), line_of(p, idle)), (Some((b, _)), Some((i, _))) if b < i),
    );
    // Sort by name, ascending then descending.
    term.keys(&["<", "<", "<"]);
    term.wait_for(Duration::from_secs(5), "sorted by name", |p| {
        p.contains("sort: NAME asc")
            && matches!((line_of(p, busy), line_of(p, idle)), (Some((b, _)), Some((i, _))) if b < i)
    });
    term.keys(&["r"]);
    term.wait_for(Duration::from_secs(5), "sorted by name, descending", |p| {
        p.contains("sort: NAME desc")
            && matches!((line_of(p, busy), line_of(p, idle)), (Some((b, _)), Some((i, _))) if b > i)
    });
    // Filter.
    term.keys(&["/"]);
    term.type_text("idle");
    term.keys(&["Enter"]);
    term.wait_for(Duration::from_secs(5), "only the idle container", |p| {
        p.contains("filter: idle") && p.contains(idle) && !p.contains(busy)
    });
    term.keys(&["Escape"]);
    term.wait_for(Duration::from_secs(5), "the filter cleared", both);
    // Drill into the busy container.
    term.keys(&["/"]);
    term.type_text(busy);
    term.keys(&["Enter"]);
    term.wait_for(Duration::from_secs(5), "only the busy container", |p| {
        p.contains(busy) && !p.contains(idle)
    });
    term.keys(&["Enter"]);
    let peer = format!("127.0.0.1:{port}");
    let pane = term.wait_for(
        Duration::from_secs(10),
        "the busy container's syscalls and peers",
        |p| p.contains(&format!("container {busy}")) && p.contains("execve") && p.contains(&peer),
    );
    assert!(
        pane.contains("TCP peers") && pane.contains("SYSCALL"),
        "{pane}"
    );
    term.keys(&["Escape"]);
    term.wait_for(Duration::from_secs(5), "back to the table", |p| {
        p.contains("SYSC/s") && p.contains(busy)
    });
    // q quits and restores the terminal.
    term.keys(&["q"]);
    let pane = term.wait_for(Duration::from_secs(10), "top exited on q", |p| {
        p.contains("TOP-EXITED-1 0")
    });
    assert!(
        !pane.contains("SYSC/s"),
        "the alternate screen is left:\n{pane}"
    );
    // Ctrl-C too (Enter starts it again).
    term.keys(&["Enter"]);
    term.wait_for(Duration::from_secs(30), "top running again", |p| {
        p.contains(busy)
    });
    term.keys(&["C-c"]);
    term.wait_for(Duration::from_secs(10), "top exited on Ctrl-C", |p| {
        p.contains("TOP-EXITED-2 0")
    });
    for i in 1..=2 {
        let before = std::fs::read_to_string(dir.join(format!("stty.before.{i}"))).unwrap();
        let after = std::fs::read_to_string(dir.join(format!("stty.after.{i}"))).unwrap();
        assert_eq!(before, after, "terminal settings restored after run {i}");
    }
    assert!(term.alive());
    drop(term);
    assert_eq!(agent.stop(), 0);
}
