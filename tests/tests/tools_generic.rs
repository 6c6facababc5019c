//! The runner with a tool added only in a user manifest directory and
//! described by a generic format (a shell script printing columns): events
//! flow, a killed tool is restarted, a failing tool is reported with its
//! stderr, no child outlives eunomia, and `eunomia run` starts enabled tools.
//! No root needed.

use std::{path::PathBuf, time::Duration};

use eunomia_tests::{Agent, children_of, eunomia, process_alive, temp_dir};

/// A tool that fails at once, saying why on stderr (written beside
/// [`eunomia_tests::TICKER_TOOL`] in the test's manifest directory).
const BROKEN_TOOL: &str = r#"
[[tool]]
name = "broken"
description = "Fails at once, saying why on stderr"
binary = "/bin/sh"
args = ["-c", "echo 'cannot attach: no such thing' >&2; exit 3"]
output = "events"
[tool.format]
format = "columns"
columns = [{ name = "text", type = "rest" }]
"#;

fn manifest_dir(test: &str) -> PathBuf {
    let dir = temp_dir(test);
    std::fs::write(
        dir.join("ticker.toml"),
        format!("{}{BROKEN_TOOL}", eunomia_tests::TICKER_TOOL),
    )
    .unwrap();
    dir
}

fn events(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "event")
        .collect()
}

#[test]
fn a_generic_tool_from_a_user_directory_prints_events() {
    let dir = manifest_dir("generic-events");
    let agent = Agent::start(&[
        "tools",
        "start",
        "ticker",
        "--for",
        "120s",
        "--json",
        "--manifest-dir",
        dir.to_str().unwrap(),
    ]);
    let mut n = 0;
    let (code, lines) = agent.stop_when(Duration::from_secs(60), |l| {
        n += events(&l[l.len() - 1..]).len();
        n >= 8
    });
    assert_eq!(code, 0);
    let evs = events(&lines);
    assert!(evs.len() >= 8, "only {} events: {lines:?}", evs.len());
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["tool"], "ticker");
        assert_eq!(e["proc.comm"], "sh");
        assert_eq!(e["ticker.n"], i as u64, "events in order, none lost");
        assert!(e["proc.pid"].as_u64().unwrap() > 1);
    }
    // The text table too.
    let out = eunomia()
        .args(["tools", "start", "ticker", "--for", "1s", "--manifest-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().next().unwrap().starts_with("TIME"), "{text}");
    assert!(text.lines().next().unwrap().contains("TICKER.N"), "{text}");
    assert!(text.lines().nth(1).unwrap().contains(" sh "), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_killed_tool_is_restarted_and_events_resume() {
    let dir = manifest_dir("generic-restart");
    // INFO lines (`first output`) only when asked.
    let mut agent = Agent::start(&[
        "--log-level",
        "info",
        "tools",
        "start",
        "ticker",
        "--for",
        "6s",
        "--json",
        "--manifest-dir",
        dir.to_str().unwrap(),
    ]);
    agent.wait_for_stderr("first output", Duration::from_secs(10));
    let before = agent.stdout_until(Duration::from_secs(5), |l| events(l).len() >= 3);
    let first_pid = events(&before)[0]["proc.pid"].as_u64().unwrap() as u32;
    assert_eq!(children_of(agent.pid()), [first_pid]);
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(first_pid as i32, libc::SIGKILL) }, 0);
    agent.wait_for_stderr("; restarting in", Duration::from_secs(5));
    let after = agent.stdout_until(Duration::from_secs(5), |l| {
        events(l)
            .iter()
            .any(|e| e["proc.pid"].as_u64() != Some(u64::from(first_pid)))
    });
    let resumed: Vec<_> = events(&after)
        .into_iter()
        .filter(|e| e["proc.pid"].as_u64() != Some(u64::from(first_pid)))
        .collect();
    assert!(
        !resumed.is_empty(),
        "no events after the restart: {after:?}"
    );
    assert_eq!(resumed[0]["ticker.n"], 0, "a new run starts from 0");
    let (code, _) = agent.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tool_that_fails_at_start_is_reported_with_its_stderr() {
    let dir = manifest_dir("generic-broken");
    let out = eunomia()
        .args(["tools", "start", "broken", "--for", "5s", "--manifest-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exited with status 3"), "{stderr}");
    assert!(stderr.contains("cannot attach: no such thing"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_child_is_left_when_eunomia_is_killed() {
    let dir = manifest_dir("generic-orphan");
    // INFO lines (`first output`) only when asked.
    let mut agent = Agent::start(&[
        "--log-level",
        "info",
        "tools",
        "start",
        "ticker",
        "--manifest-dir",
        dir.to_str().unwrap(),
    ]);
    agent.wait_for_stderr("first output", Duration::from_secs(10));
    let kids = children_of(agent.pid());
    assert_eq!(kids.len(), 1, "{kids:?}");
    agent.signal(libc::SIGKILL);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while process_alive(kids[0]) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!process_alive(kids[0]), "tool {} outlived eunomia", kids[0]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_stops_the_tool_and_exits_0() {
    let dir = manifest_dir("generic-sigint");
    // INFO lines (`first output`) only when asked.
    let mut agent = Agent::start(&[
        "--log-level",
        "info",
        "tools",
        "start",
        "ticker",
        "--json",
        "--manifest-dir",
        dir.to_str().unwrap(),
    ]);
    agent.wait_for_stderr("first output", Duration::from_secs(10));
    let kids = children_of(agent.pid());
    let before = agent.stdout_until(Duration::from_secs(5), |l| !events(l).is_empty());
    assert!(!events(&before).is_empty());
    agent.signal(libc::SIGINT);
    let (code, _) = agent.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    assert!(kids.iter().all(|k| !process_alive(*k)), "{kids:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_agent_starts_enabled_tools() {
    let dir = manifest_dir("generic-agent");
    // Not in the manifest directory: every *.toml there is a manifest.
    let config = temp_dir("generic-agent-config").join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[hotpath]\nsyscalls = false\n\n[tools]\nenabled = [\"ticker\"]\nmanifest_dirs = [{:?}]\n",
            dir.display().to_string()
        ),
    )
    .unwrap();
    let mut agent = Agent::start(&["run", "--config", config.to_str().unwrap(), "--for", "2s"]);
    agent.wait_for_stderr("first output", Duration::from_secs(10));
    let kids = children_of(agent.pid());
    assert_eq!(kids.len(), 1, "{kids:?}");
    let (code, _) = agent.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    assert!(!process_alive(kids[0]));

    // An unknown tool in the configuration is bad input.
    std::fs::write(
        &config,
        "[hotpath]\nsyscalls = false\n\n[tools]\nenabled = [\"nosuch\"]\n",
    )
    .unwrap();
    let out = eunomia()
        .args(["run", "--config", config.to_str().unwrap(), "--for", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(config.parent().unwrap());
}
