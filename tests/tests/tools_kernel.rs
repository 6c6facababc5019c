//! `eunomia tools start` with real libbpf-tools on the real kernel: what the
//! test does shows up as parsed events (exec, open, TCP session, block I/O
//! histogram); a tool killed with SIGKILL is restarted; no tool outlives a
//! killed eunomia. Needs root.

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    path::Path,
    process::Command,
    time::Duration,
};

use eunomia_tests::{Agent, children_of, kernel_lock, kernel_tests_can_run, process_alive};

fn events(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect()
}

fn can_run(test: &str, tool: &str) -> bool {
    if !kernel_tests_can_run(test) {
        return false;
    }
    let bin = format!("/usr/sbin/{tool}");
    if !Path::new(&bin).exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: {bin} is missing (install libbpf-tools)");
        }
        eprintln!("SKIP {test}: {bin} is missing (install libbpf-tools)");
        return false;
    }
    true
}

/// Starts `eunomia tools start TOOL ARGS...` and waits until the tool can
/// report events: its first output line (the header, printed once its
/// programs are attached) and then [`settle`].
fn start(tool: &str, args: &[&str]) -> Agent {
    // INFO lines (`first output`) only when asked.
    let mut argv = vec!["--log-level", "info", "tools", "start", tool, "--json"];
    argv.extend_from_slice(args);
    let mut agent = Agent::start(&argv);
    agent.wait_for_stderr("first output", Duration::from_secs(20));
    settle();
    agent
}

/// libbpf-tools print their header after attaching but before they open
/// their perf buffer; an event in between has nowhere to go and is lost
/// (on a busy machine that window lasts a while). Waits it out.
fn settle() {
    std::thread::sleep(Duration::from_secs(1));
}

fn run_true(n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| {
            let mut child = Command::new("/bin/true").spawn().expect("spawn /bin/true");
            let pid = child.id();
            assert!(child.wait().unwrap().success());
            pid
        })
        .collect()
}

fn exec_pids(evs: &[serde_json::Value]) -> Vec<u32> {
    evs.iter()
        .filter(|e| e["kind"] == "exec" && e["proc.comm"] == "true")
        .filter_map(|e| e["proc.pid"].as_u64())
        .map(|p| p as u32)
        .collect()
}

#[test]
fn execsnoop_sees_50_execs_of_true() {
    if !can_run("execsnoop_sees_50_execs_of_true", "execsnoop") {
        return;
    }
    let _serial = kernel_lock();
    let agent = start("execsnoop", &["--for", "120s"]);
    let pids = run_true(50);
    let mut left = pids.clone();
    let (code, lines) = agent.stop_when(Duration::from_secs(30), |l| {
        let seen = exec_pids(&events(&l[l.len() - 1..]));
        left.retain(|p| !seen.contains(p));
        left.is_empty()
    });
    assert_eq!(code, 0);
    let evs = events(&lines);
    let seen = exec_pids(&evs);
    let missing: Vec<_> = pids.iter().filter(|p| !seen.contains(p)).collect();
    assert!(missing.is_empty(), "no exec event for pids {missing:?}");
    for e in evs.iter().filter(|e| {
        e["proc.pid"]
            .as_u64()
            .is_some_and(|p| pids.contains(&(p as u32)))
    }) {
        assert_eq!(e["tool"], "execsnoop");
        assert_eq!(e["proc.ppid"], u64::from(std::process::id()), "{e}");
        assert!(
            e["proc.args"].as_str().unwrap().starts_with("/bin/true"),
            "{e}"
        );
    }
}

#[test]
fn opensnoop_sees_a_unique_path() {
    if !can_run("opensnoop_sees_a_unique_path", "opensnoop") {
        return;
    }
    let _serial = kernel_lock();
    let path = std::env::temp_dir().join(format!(
        "eunomia-opensnoop-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::write(&path, b"x").unwrap();
    let agent = start("opensnoop", &["--for", "120s"]);
    for _ in 0..3 {
        drop(std::fs::File::open(&path).unwrap());
    }
    let wanted = path.to_str().unwrap().to_owned();
    let mut opens = 0;
    let (code, lines) = agent.stop_when(Duration::from_secs(30), |l| {
        let last = events(&l[l.len() - 1..]);
        opens += last
            .iter()
            .filter(|e| e["file.path"] == wanted.as_str())
            .count();
        opens >= 3
    });
    assert_eq!(code, 0);
    let _ = std::fs::remove_file(&path);
    let hits: Vec<_> = events(&lines)
        .into_iter()
        .filter(|e| e["file.path"] == path.to_str().unwrap())
        .collect();
    assert!(
        hits.len() >= 3,
        "{} opens of {} seen",
        hits.len(),
        path.display()
    );
    for e in &hits {
        assert_eq!(e["kind"], "open");
        assert_eq!(e["proc.pid"], u64::from(std::process::id()), "{e}");
    }
}

#[test]
fn tcplife_sees_a_loopback_session() {
    if !can_run("tcplife_sees_a_loopback_session", "tcplife") {
        return;
    }
    let _serial = kernel_lock();
    let agent = start("tcplife", &["--for", "120s"]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        s.write_all(&buf[..n].repeat(4)).unwrap();
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(&[7u8; 1000]).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), 4000);
    drop(c);
    server.join().unwrap();
    let port = u64::from(port);
    let on_port = |e: &serde_json::Value| {
        e["kind"] == "tcp_session" && (e["net.sport"] == port || e["net.dport"] == port)
    };
    let (code, lines) = agent.stop_when(Duration::from_secs(30), |l| {
        events(&l[l.len() - 1..]).iter().any(on_port)
    });
    assert_eq!(code, 0);
    let sessions: Vec<_> = events(&lines)
        .into_iter()
        .filter(|e| e["kind"] == "tcp_session")
        .filter(|e| e["net.sport"] == port || e["net.dport"] == port)
        .collect();
    assert!(
        !sessions.is_empty(),
        "no tcp_session on port {port}: {lines:?}"
    );
    for e in &sessions {
        assert_eq!(e["net.saddr"], "127.0.0.1", "{e}");
        assert_eq!(e["proc.pid"], u64::from(std::process::id()), "{e}");
    }
}

#[test]
fn biolatency_prints_histogram_blocks() {
    if !can_run("biolatency_prints_histogram_blocks", "biolatency") {
        return;
    }
    let _serial = kernel_lock();
    let agent = start("biolatency", &["--for", "4s", "--interval", "1s"]);
    let path = Path::new("/var/tmp").join(format!("eunomia-biolatency-{}", std::process::id()));
    for _ in 0..3 {
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![1u8; 4 << 20]).unwrap();
        f.sync_all().unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = std::fs::remove_file(&path);
    let (code, lines) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    let hists: Vec<_> = events(&lines)
        .into_iter()
        .filter(|r| r["type"] == "histogram")
        .collect();
    assert!(
        hists.len() >= 2,
        "{} histogram blocks: {lines:?}",
        hists.len()
    );
    let total: u64 = hists
        .iter()
        .flat_map(|h| h["buckets"].as_array().unwrap().clone())
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert!(total > 0, "histograms with no I/O: {hists:?}");
    assert!(hists.iter().all(|h| h["unit"] == "usecs"), "{hists:?}");
}

#[test]
fn a_sigkilled_tool_is_restarted_and_events_resume() {
    if !can_run(
        "a_sigkilled_tool_is_restarted_and_events_resume",
        "execsnoop",
    ) {
        return;
    }
    let _serial = kernel_lock();
    let mut agent = start("execsnoop", &["--for", "10s"]);
    let kids = children_of(agent.pid());
    assert_eq!(kids.len(), 1, "{kids:?}");
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(kids[0] as i32, libc::SIGKILL) }, 0);
    agent.wait_for_stderr("; restarting in", Duration::from_secs(5));
    agent.wait_for_stderr("first output", Duration::from_secs(20));
    settle();
    let new_kids = children_of(agent.pid());
    assert_eq!(new_kids.len(), 1);
    assert_ne!(new_kids, kids);
    let pids = run_true(10);
    let (code, lines, stderr) = agent.finish_with_stderr(Duration::from_secs(20));
    assert_eq!(code, 0);
    let seen = exec_pids(&events(&lines));
    assert!(
        pids.iter().all(|p| seen.contains(p)),
        "after the restart: {pids:?} not all in {seen:?}"
    );
    let done = stderr
        .iter()
        .find(|l| l.contains(" done "))
        .expect("final counters");
    assert!(done.contains("restarts=1"), "{done}");
}

#[test]
fn no_tool_outlives_a_killed_eunomia() {
    if !can_run("no_tool_outlives_a_killed_eunomia", "execsnoop") {
        return;
    }
    let _serial = kernel_lock();
    let agent = start("execsnoop", &[]);
    let kids = children_of(agent.pid());
    assert_eq!(kids.len(), 1, "{kids:?}");
    agent.signal(libc::SIGKILL);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while process_alive(kids[0]) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !process_alive(kids[0]),
        "execsnoop {} outlived eunomia",
        kids[0]
    );
}
