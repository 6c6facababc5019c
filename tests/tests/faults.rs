//! The fault suite, tools and files: the real agent, inside a memory cgroup
//! (so a memory regression fails the test instead of the host), against
//! tools that flood or corrupt their stderr or report lost events, a
//! missing or planted tool, a stdout that closes, files others could write,
//! an agent stalled in a storm or killed. Each test prints its figures
//! (`FAULT <scenario>: ...`: delivered / counted lost / made, peak memory).

use std::{
    os::unix::fs::PermissionsExt as _,
    path::Path,
    time::{Duration, Instant},
};

use eunomia_tests::{
    eunomia,
    faults::*,
    kernel_tests_can_run,
    memcg::{MemCgroup, mb},
    temp_dir,
};

/// Fault 1: A tool writing stderr without ever ending the line: memory stays
/// bounded, the cut is counted and exported, `--for` is honoured.
#[test]
fn stderr_flood_without_newlines_is_bounded_cut_and_counted() {
    if !kernel_tests_can_run("stderr_flood_without_newlines_is_bounded_cut_and_counted") {
        return;
    }
    let manifest = tool("flood", "echo \"flood 0\"; yes | tr -d '\\n' >&2");
    let (dir, config) = setup("fault-stderr-flood", &manifest, &["flood"], "");
    let cg = MemCgroup::new("stderr-flood", LIMIT);
    let started = Instant::now();
    let mut agent = start_in(&cg, &config, &["--for", "6s"]);
    agent.wait_for_stderr("[cut]", Duration::from_secs(10));
    let s = wait_status(&dir, "a cut stderr line", Duration::from_secs(5), |s| {
        metric(
            s,
            "eunomia_tool_truncated_lines_total",
            &[("tool", "flood"), ("stream", "stderr")],
        )
        .is_some_and(|v| v >= 1.0)
    });
    assert_eq!(
        metric(
            &s,
            "eunomia_tool_truncated_lines_total",
            &[("tool", "flood"), ("stream", "stdout")]
        ),
        Some(0.0),
        "the stdout count is exported too"
    );
    let rss = peak_rss(&agent);
    let (code, _) = agent.finish(Duration::from_secs(20));
    let took = started.elapsed();
    let peak = cg.peak();
    println!(
        "FAULT stderr-flood: ran {:.1}s (--for 6s), agent peak RSS {:.1} MB, cgroup peak {:.1} MB, oom kills {}",
        took.as_secs_f64(),
        mb(rss),
        mb(peak),
        cg.oom_kills()
    );
    assert!(rss < PEAK_MAX, "agent peak RSS {:.1} MB", mb(rss));
    assert_eq!(code, 0, "the agent exits 0 at the end of --for");
    assert!(took < Duration::from_secs(15), "--for 6s took {took:?}");
    assert_eq!(cg.oom_kills(), 0);
    assert!(peak < PEAK_MAX, "peak {:.1} MB", mb(peak));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fault 2: Non-UTF-8 bytes and lost-events lines (both spellings) on stderr: the
/// tool keeps running (never marked failed, never restarted), the bytes are
/// decoded lossily, every lost event is counted.
#[test]
fn invalid_utf8_and_lost_events_on_stderr() {
    if !kernel_tests_can_run("invalid_utf8_and_lost_events_on_stderr") {
        return;
    }
    let script = "i=0; while :; do printf 'bad \\377\\376 byte %d\\n' $i >&2; \
                  echo \"junk $i\"; i=$((i+1)); \
                  if [ $i = 5 ]; then echo 'lost 12857 events on CPU #0' >&2; echo 'Lost 3 events on CPU #1!' >&2; fi; \
                  sleep 0.05; done";
    let (dir, config) = setup("fault-utf8", &tool("junk", script), &["junk"], "");
    let cg = MemCgroup::new("utf8", LIMIT);
    let mut agent = start_in(&cg, &config, &["--for", "6s"]);
    agent.wait_for_stderr("first output", Duration::from_secs(10));
    let s = wait_status(&dir, "40 stderr lines", Duration::from_secs(10), |s| {
        metric(s, "eunomia_tool_stderr_lines_total", &[("tool", "junk")]).is_some_and(|v| v >= 40.0)
    });
    let t = s["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "junk")
        .cloned()
        .unwrap();
    assert_eq!(t["state"], "running", "{t}");
    assert_eq!(t["starts"], 1, "never restarted: {t}");
    let lost = metric(&s, "eunomia_tool_lost_events_total", &[("tool", "junk")]);
    let stderr_lines = metric(&s, "eunomia_tool_stderr_lines_total", &[("tool", "junk")]);
    let rss = peak_rss(&agent);
    let (code, _, log) = agent.finish_with_stderr(Duration::from_secs(20));
    println!(
        "FAULT invalid-utf8: stderr lines {stderr_lines:?}, lost counted {lost:?} of 12860 made, agent peak RSS {:.1} MB, cgroup peak {:.1} MB",
        mb(rss),
        mb(cg.peak())
    );
    assert_eq!(code, 0);
    assert_eq!(lost, Some(12860.0), "both spellings counted");
    assert!(
        log.iter().any(|l| l.contains("bad \u{fffd}\u{fffd} byte")),
        "decoded lossily in the log"
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("stderr: lost") || l.contains("stderr: Lost")),
        "lost lines are counted, not logged"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fault 3: A tool whose binary is missing is a `failed` row of the status and
/// `eunomia_tool_failed{tool} = 1` (`eunomia_tool_up = 0`) from the start.
#[test]
fn a_missing_tool_is_a_status_row_and_a_series() {
    if !kernel_tests_can_run("a_missing_tool_is_a_status_row_and_a_series") {
        return;
    }
    let manifest = tool(
        "ticker",
        "i=0; while :; do echo \"ticker $i\"; i=$((i+1)); sleep 0.1; done",
    ) + &tool("ghost", "exit 0").replace("/bin/sh", "/nonexistent/ghost-tool");
    let (dir, config) = setup("fault-missing", &manifest, &["ticker", "ghost"], "");
    let cg = MemCgroup::new("missing", LIMIT);
    let mut agent = start_in(&cg, &config, &["--for", "4s"]);
    agent.wait_for_stderr("first output", Duration::from_secs(10));
    let s = status(&dir);
    let ghost = s["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ghost")
        .cloned();
    let ghost = ghost.unwrap_or_else(|| panic!("no ghost row: {s:#}"));
    assert_eq!(ghost["state"], "failed", "{ghost}");
    assert!(
        ghost["detail"].as_str().unwrap().contains("missing binary"),
        "{ghost}"
    );
    assert_eq!(
        metric(&s, "eunomia_tool_failed", &[("tool", "ghost")]),
        Some(1.0)
    );
    assert_eq!(
        metric(&s, "eunomia_tool_up", &[("tool", "ghost")]),
        Some(0.0)
    );
    assert_eq!(
        metric(&s, "eunomia_tool_up", &[("tool", "ticker")]),
        Some(1.0)
    );
    let text = eunomia()
        .args(["status", "--socket"])
        .arg(dir.join("eunomia.sock"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("ghost") && l.contains("failed")),
        "{text}"
    );
    let (code, _) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fault 4: `eunomia run | head -c 100`: the closed stdout is logged and the
/// agent exits 1, so a service manager restarts it.
#[test]
fn a_closed_stdout_is_logged_and_exits_1() {
    if !kernel_tests_can_run("a_closed_stdout_is_logged_and_exits_1") {
        return;
    }
    let (dir, config) = setup("fault-stdout", "", &[], "");
    // As `eunomia run | head -c 100`: read 100 bytes, close the pipe.
    let mut cmd = eunomia();
    cmd.args(["run", "--config"])
        .arg(&config)
        .args(["--samples", "--json"]);
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the agent kept running with its stdout closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("stdout was closed"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fault 5: Files others could write are refused, naming the path and why
/// (exit 2): a world-writable `tools.d`, a manifest owned by an ordinary
/// user, a group-writable configuration.
#[test]
fn files_others_can_write_are_refused() {
    if !kernel_tests_can_run("files_others_can_write_are_refused") {
        return;
    }
    let manifest = tool("evil", "id > /tmp/eunomia-evil-ran");
    let (dir, config) = setup("fault-trust", &manifest, &["evil"], "");
    let tools_d = dir.join("tools.d");
    let run = |extra: &[&str]| {
        eunomia()
            .args(extra)
            .args(["run", "--for", "1s", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let refused = |out: &std::process::Output, path: &Path, why: &str| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&path.display().to_string()) && err.contains(why),
            "{err}"
        );
    };
    std::fs::set_permissions(&tools_d, std::fs::Permissions::from_mode(0o1777)).unwrap();
    refused(&run(&[]), &tools_d, "writable by its group and others");
    std::fs::set_permissions(&tools_d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = tools_d.join("faults.toml");
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    refused(&run(&[]), &file, "owned by uid 65534");
    // The development switch relaxes it.
    let out = run(&["--insecure-files"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o664)).unwrap();
    refused(&run(&[]), &config, "writable by its group");
    let _ = std::fs::remove_file("/tmp/eunomia-evil-ran");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fault 6: A planted `execsnoop` in a world-writable directory on the search
/// path is refused, and `tools list` says so with the reason.
#[test]
fn a_planted_tool_binary_is_refused() {
    if !kernel_tests_can_run("a_planted_tool_binary_is_refused") {
        return;
    }
    let dir = temp_dir("fault-planted");
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let planted = bin.join("execsnoop");
    std::fs::write(&planted, "#!/bin/sh\nid > /tmp/eunomia-planted-ran\n").unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = eunomia()
        .args(["tools", "list", "--json"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let row = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|r| r["name"] == "execsnoop")
        .expect("an execsnoop row");
    assert_eq!(row["status"], "refused", "{row}");
    let reason = row["reason"].as_str().unwrap();
    assert!(
        reason.contains(&bin.display().to_string()) && reason.contains("writable by"),
        "{row}"
    );
    let out = eunomia()
        .args(["tools", "start", "execsnoop", "--foreground", "--for", "1s"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(
        !Path::new("/tmp/eunomia-planted-ran").exists(),
        "the planted binary ran"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fault 9: the real execsnoop and exitsnoop while the agent is stalled
/// (SIGSTOP) during an exec storm: their perf buffers overflow and each
/// reports lost events (`Lost N events on CPU #c!` and `lost N events on
/// CPU #c`); both are counted, so what was delivered plus what was counted
/// lost covers what was made.
#[test]
fn lost_events_of_real_tools_are_counted_when_the_agent_stalls() {
    if !kernel_tests_can_run("lost_events_of_real_tools_are_counted_when_the_agent_stalls") {
        return;
    }
    let _kernel = eunomia_tests::kernel_lock();
    let (dir, config) = setup("fault-stall", "", &["execsnoop", "exitsnoop"], "");
    // The kernel's pid map vouches for the storm's processes after they exit.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("pids = false", "pids = true")).unwrap();
    let cg = MemCgroup::new("stall", LIMIT);
    let mut agent = start_in(&cg, &config, &[]);
    for _ in 0..2 {
        agent.wait_for_stderr("first output", Duration::from_secs(30));
    }
    let before = status(&dir);
    agent.signal(libc::SIGSTOP);
    let storm = std::process::Command::new(env!("CARGO_BIN_EXE_exec-storm"))
        .args(["0", "10", "4"])
        .output()
        .unwrap();
    agent.signal(libc::SIGCONT);
    let report: serde_json::Value = serde_json::from_slice(&storm.stdout).expect("exec-storm JSON");
    let made = report["started"].as_f64().unwrap();
    // Let the tools drain what their buffers kept.
    let mut last = (0.0, 0.0);
    let mut s = status(&dir);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        s = status(&dir);
        let now = (
            tool_metric(&s, "eunomia_tool_records_total", "execsnoop"),
            tool_metric(&s, "eunomia_tool_records_total", "exitsnoop"),
        );
        if now == last {
            break;
        }
        last = now;
    }
    let rss = peak_rss(&agent);
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(30));
    let mut figures = Vec::new();
    for tool in ["execsnoop", "exitsnoop"] {
        let delta = |name: &str| tool_metric(&s, name, tool) - tool_metric(&before, name, tool);
        let (delivered, lost) = (
            delta("eunomia_tool_records_total"),
            delta("eunomia_tool_lost_events_total"),
        );
        figures.push(format!(
            "{tool} delivered {delivered} / counted lost {lost} / made {made}"
        ));
        assert!(
            lost > 0.0,
            "{tool}: nothing counted lost with the agent stalled: {figures:?}"
        );
        assert!(
            delivered + lost >= made * 0.99,
            "{tool}: delivered + lost short of made: {figures:?}"
        );
    }
    println!(
        "FAULT stalled-agent storm: {}, agent peak RSS {:.1} MB, cgroup peak {:.1} MB",
        figures.join("; "),
        mb(rss),
        mb(cg.peak())
    );
    assert_eq!(code, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fault 10: SIGKILL of the agent with its hot path and real tools running
/// leaves nothing behind: no tool process, no BPF program of the agent (the
/// kernel frees them with its descriptors), and the memory cgroup empties.
#[test]
fn sigkill_leaves_no_tool_and_no_program_behind() {
    if !kernel_tests_can_run("sigkill_leaves_no_tool_and_no_program_behind") {
        return;
    }
    let _kernel = eunomia_tests::kernel_lock();
    let (dir, config) = setup("fault-sigkill", "", &["execsnoop", "exitsnoop"], "");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("syscalls = false", "syscalls = true")
            .replace("pids = false", "pids = true"),
    )
    .unwrap();
    let cg = MemCgroup::new("sigkill", LIMIT);
    let mut agent = start_in(&cg, &config, &[]);
    for _ in 0..2 {
        agent.wait_for_stderr("first output", Duration::from_secs(30));
    }
    let tools = eunomia_tests::children_of(agent.pid());
    let progs = eunomia_tests::bpf_programs_of(agent.pid());
    assert_eq!(tools.len(), 2, "{tools:?}");
    assert!(!progs.is_empty(), "the hot path holds programs");
    let rss = peak_rss(&agent);
    agent.signal(libc::SIGKILL);
    let _ = agent.finish(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    let loaded = || -> Vec<u64> {
        eunomia_tests::bpf_programs()
            .iter()
            .filter_map(|p| p["id"].as_u64())
            .filter(|id| progs.contains(id))
            .collect()
    };
    while (tools.iter().any(|t| eunomia_tests::process_alive(*t)) || !loaded().is_empty())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let alive: Vec<_> = tools
        .iter()
        .filter(|t| eunomia_tests::process_alive(**t))
        .collect();
    println!(
        "FAULT sigkill: {} tools and {} programs before, {} tools and {} programs after, agent peak RSS {:.1} MB, cgroup peak {:.1} MB",
        tools.len(),
        progs.len(),
        alive.len(),
        loaded().len(),
        mb(rss),
        mb(cg.peak())
    );
    assert!(alive.is_empty(), "tools outlived the agent: {alive:?}");
    assert!(loaded().is_empty(), "programs left: {:?}", loaded());
    let _ = std::fs::remove_dir_all(&dir);
}
