//! The control API of a running agent, through the CLI: list tools, start
//! one and follow its events, stop it, read the status; the stale-socket
//! and permission cases; SIGHUP reloads; SIGTERM removes the socket and
//! leaves no program or child behind. Each test uses its own socket.

use std::{
    os::unix::{fs::PermissionsExt as _, net::UnixListener},
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use eunomia_tests::{
    Agent, bpf_programs, bpf_programs_of, children_of, eunomia, eunomia_bin, kernel_lock,
    kernel_tests_can_run, temp_dir,
};

const LISTENING: &str = "control API listening";

/// A configuration for a test agent: fast polling, no console alerts, the
/// control socket in `dir`, manifest additions from `dir/tools.d`, `enabled`
/// tools.
fn write_config(dir: &Path, enabled: &[&str]) -> PathBuf {
    write_config_polling(dir, enabled, "1s")
}

fn write_config_polling(dir: &Path, enabled: &[&str], poll: &str) -> PathBuf {
    let path = dir.join("eunomia.toml");
    let enabled: Vec<String> = enabled.iter().map(|t| format!("{t:?}")).collect();
    std::fs::write(
        &path,
        format!(
            "[agent]\npoll_interval = {poll:?}\ncontrol_socket = {:?}\n\n[tools]\nenabled = [{}]\nmanifest_dirs = [{:?}]\n\n[rules]\nconsole = false\n",
            dir.join("eunomia.sock").display().to_string(),
            enabled.join(", "),
            dir.join("tools.d").display().to_string(),
        ),
    )
    .unwrap();
    path
}

/// `eunomia run --config CONFIG`, its socket from the configuration.
fn start_agent(config: &Path) -> Agent {
    let mut cmd = eunomia();
    cmd.env_remove("EUNOMIA_SOCKET")
        .args(["run", "--config"])
        .arg(config);
    Agent::spawn(cmd)
}

/// `eunomia ARGS... --socket SOCKET`, waited for.
fn cli(socket: &Path, args: &[&str]) -> Output {
    eunomia()
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .expect("run eunomia")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The agent's status as JSON.
fn status(socket: &Path) -> serde_json::Value {
    let out = cli(socket, &["status", "--json"]);
    assert!(out.status.success(), "status failed: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// The counters of `tool` in the status, if the agent ever started it.
fn tool_status(socket: &Path, tool: &str) -> Option<serde_json::Value> {
    status(socket)["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == tool)
        .cloned()
}

/// Polls until `tool`'s state is `state`.
fn wait_tool_state(socket: &Path, tool: &str, state: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let t = tool_status(socket, tool);
        if t.as_ref().is_some_and(|t| t["state"] == state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{tool} not {state} in {timeout:?}: {t:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The AGENT column of `tool` in `tools list`.
fn agent_column(socket: &Path, tool: &str) -> String {
    let out = cli(socket, &["tools", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let row = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(tool))
        .unwrap_or_else(|| panic!("{tool} not listed:\n{stdout}"));
    // NAME, STATUS (one word for ready tools), AGENT.
    row.split_whitespace().nth(2).unwrap().to_owned()
}

fn assert_programs_gone(ids: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let still: Vec<u64> = bpf_programs()
            .iter()
            .filter_map(|p| p["id"].as_u64())
            .filter(|id| ids.contains(id))
            .collect();
        if still.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "programs {still:?} still loaded");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM: exit 0 in time, socket removed, no program or child left.
fn stop_agent(agent: Agent, socket: &Path) {
    let pid = agent.pid();
    let ids = bpf_programs_of(pid);
    assert!(!ids.is_empty(), "the agent holds no BPF program");
    let started = Instant::now();
    agent.signal(libc::SIGTERM);
    let (code, _, stderr) = agent.finish_with_stderr(Duration::from_secs(30));
    assert_eq!(
        code,
        0,
        "exit code after SIGTERM; stderr:\n{}",
        stderr.join("\n")
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        !socket.exists(),
        "control socket {} left behind",
        socket.display()
    );
    assert_programs_gone(&ids);
    assert!(
        children_of(pid).is_empty(),
        "children left: {:?}",
        children_of(pid)
    );
}

#[test]
fn control_tools_start_follow_stop_and_status() {
    if !kernel_tests_can_run("control_tools_start_follow_stop_and_status") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("control-tools");
    let config = write_config(&dir, &[]);
    let socket = dir.join("eunomia.sock");
    let mut agent = start_agent(&config);
    agent.wait_for_stderr(LISTENING, Duration::from_secs(30));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode");

    assert_eq!(agent_column(&socket, "execsnoop"), "no");

    // Start execsnoop through the agent and follow its events.
    let mut follow = Agent::start(&[
        "tools",
        "start",
        "execsnoop",
        "--follow",
        "--json",
        "--for",
        "40s",
        "--socket",
        socket.to_str().unwrap(),
    ]);
    follow.wait_for_stderr("started in the agent", Duration::from_secs(10));
    // A new /bin/true every 300 ms until one shows: on a busy host the
    // stream never pauses, and an exec made before the subscription took
    // effect is not in it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ours = Vec::new();
    let mut seen = None;
    while seen.is_none() && Instant::now() < deadline {
        let child = Command::new("/bin/true").spawn().unwrap();
        ours.push(u64::from(child.id()));
        child.wait_with_output().unwrap();
        let round = Instant::now() + Duration::from_millis(300);
        while Instant::now() < round {
            let Some(line) = follow.next_stdout(Duration::from_millis(300)) else {
                break;
            };
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
            assert_eq!(v["type"], "event", "{line}");
            assert_eq!(v["tool"], "execsnoop", "{line}");
            assert_eq!(v["kind"], "exec", "{line}");
            if v["proc.pid"].as_u64().is_some_and(|p| ours.contains(&p)) {
                seen = Some(v);
                break;
            }
        }
    }
    let seen = seen.expect("the followed stream shows our /bin/true exec");
    assert_eq!(seen["proc.comm"], "true");
    drop(follow);

    assert_eq!(agent_column(&socket, "execsnoop"), "yes");
    let t = tool_status(&socket, "execsnoop").expect("execsnoop in status");
    assert_eq!(t["state"], "running", "{t}");
    assert!(t["records"].as_u64().unwrap() > 0, "{t}");
    let s = status(&socket);
    assert!(s["pipeline"]["sent"].as_u64().unwrap() > 0, "{s}");
    assert!(s["uptime_s"].as_f64().unwrap() > 0.0, "{s}");
    assert_eq!(s["pid"], agent.pid());
    assert!(
        s["self_metrics"].as_array().is_some_and(|m| !m.is_empty()),
        "{s}"
    );
    let out = cli(&socket, &["status"]);
    assert!(
        text(&out.stdout).contains("execsnoop"),
        "{}",
        text(&out.stdout)
    );

    // Starting it twice is fine (it runs, as asked) and says so with its
    // real state; an unknown tool is bad input, to start or to stop.
    let out = cli(&socket, &["tools", "start", "execsnoop"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("already running in the agent: running (pid "),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&socket, &["tools", "start", "no-such-tool"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = cli(&socket, &["tools", "stop", "no-such-tool"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unknown tool `no-such-tool`"),
        "{}",
        text(&out.stderr)
    );

    // Stop it: the agent has no child left.
    let out = cli(&socket, &["tools", "stop", "execsnoop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "execsnoop: stopped");
    assert_eq!(agent_column(&socket, "execsnoop"), "no");
    assert!(children_of(agent.pid()).is_empty(), "tool still a child");
    let out = cli(&socket, &["tools", "stop", "execsnoop"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stopping a stopped tool: {}",
        text(&out.stderr)
    );

    // Start it again, followed, and leave both running: SIGTERM stops the
    // tool and ends the follower's stream.
    let mut follow = Agent::start(&[
        "tools",
        "start",
        "execsnoop",
        "--follow",
        "--socket",
        socket.to_str().unwrap(),
    ]);
    follow.wait_for_stderr("started in the agent", Duration::from_secs(10));
    wait_tool_state(&socket, "execsnoop", "running", Duration::from_secs(10));
    let up = status(&socket)["self_metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "eunomia_tool_up" && m["labels"]["tool"] == "execsnoop")
        .cloned();
    assert_eq!(
        up.map(|m| m["value"].clone()),
        Some(1.0.into()),
        "eunomia_tool_up"
    );
    stop_agent(agent, &socket);
    let (code, _) = follow.finish(Duration::from_secs(10));
    assert_eq!(code, 0, "the follower ends with the agent");
}

#[test]
fn control_stale_socket_and_missing_permission_are_explained() {
    if !kernel_tests_can_run("control_stale_socket_and_missing_permission_are_explained") {
        return;
    }
    let dir = temp_dir("control-errors");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    // A socket file nobody listens on: what a killed agent leaves.
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    for args in [vec!["status"], vec!["tools", "stop", "execsnoop"]] {
        let out = cli(&stale, &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("no agent answers"), "{args:?}: {err}");
    }
    // `tools start` says so and runs the tool here, as without an agent
    // (an unknown name then fails as bad input).
    let out = cli(&stale, &["tools", "start", "no-such-tool"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no agent answers"));
    assert!(text(&out.stderr).contains("in the foreground"));
    let out = cli(&stale, &["tools", "list"]);
    assert!(
        out.status.success(),
        "tools list still lists: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("no agent answers"));

    // No socket at all.
    let out = cli(&dir.join("none.sock"), &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no agent is running"),
        "{}",
        text(&out.stderr)
    );

    // A listening root socket (mode 0600) asked by `nobody`.
    let live = dir.join("live.sock");
    let _listener = UnixListener::bind(&live).unwrap();
    std::fs::set_permissions(&live, std::fs::Permissions::from_mode(0o600)).unwrap();
    let Some(out) = as_nobody(&["status", "--socket", live.to_str().unwrap()]) else {
        return;
    };
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied"), "{err}");
}

/// Runs eunomia as `nobody` with setpriv; `None` (with the reason) when
/// that is impossible here.
fn as_nobody(args: &[&str]) -> Option<Output> {
    if !Path::new("/usr/bin/setpriv").exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "setpriv (util-linux) is missing"
        );
        eprintln!("SKIP permission case: setpriv is missing");
        return None;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(eunomia_bin())
        .args(args)
        .output()
        .expect("run setpriv");
    Some(out)
}

#[test]
fn control_socket_that_is_not_ours_is_refused() {
    if !kernel_tests_can_run("control_socket_that_is_not_ours_is_refused") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("control-refuse");
    let config = write_config(&dir, &[]);
    let file = dir.join("eunomia.sock");
    std::fs::write(&file, "not a socket").unwrap();
    let out = eunomia()
        .env_remove("EUNOMIA_SOCKET")
        .args(["run", "--for", "30s", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a socket");
}

#[test]
fn control_sighup_reloads_tools_and_keeps_state_on_errors() {
    if !kernel_tests_can_run("control_sighup_reloads_tools_and_keeps_state_on_errors") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("control-reload");
    let config = write_config(&dir, &[]);
    let socket = dir.join("eunomia.sock");
    // A stale socket of a dead agent is replaced.
    drop(UnixListener::bind(&socket).unwrap());
    let mut agent = start_agent(&config);
    agent.wait_for_stderr(LISTENING, Duration::from_secs(30));
    assert!(tool_status(&socket, "execsnoop").is_none());

    // A tool added to [tools] enabled starts.
    write_config(&dir, &["execsnoop"]);
    agent.signal(libc::SIGHUP);
    agent.wait_for_stderr("configuration reloaded", Duration::from_secs(10));
    wait_tool_state(&socket, "execsnoop", "running", Duration::from_secs(10));
    let rules = agent
        .stderr_seen
        .iter()
        .any(|l| l.contains("rules reloaded"))
        || agent
            .stderr_lines(Duration::from_secs(2))
            .iter()
            .any(|l| l.contains("rules reloaded"));
    assert!(rules, "one SIGHUP also reloads the rules");

    // A bad file: everything stays, the error names file:line:col.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}bogus_key = 1\n")).unwrap();
    let bad_line = good.lines().count() + 1;
    agent.signal(libc::SIGHUP);
    agent.wait_for_stderr(
        "keeping the configuration in force",
        Duration::from_secs(10),
    );
    let at = format!("{}:{bad_line}:1", config.display());
    assert!(
        agent.stderr_seen.iter().any(|l| l.contains(&at)),
        "no {at} in:\n{}",
        agent.stderr_seen.join("\n")
    );
    wait_tool_state(&socket, "execsnoop", "running", Duration::from_secs(1));

    // Removed from enabled: stopped. A setting that needs a restart is
    // named as such.
    write_config_polling(&dir, &[], "2s");
    agent.signal(libc::SIGHUP);
    agent.wait_for_stderr("no longer enabled", Duration::from_secs(10));
    wait_tool_state(&socket, "execsnoop", "stopped", Duration::from_secs(10));
    agent.wait_for_stderr("configuration reloaded", Duration::from_secs(10));
    let restart = "[agent] changed: takes effect after a restart";
    assert!(
        agent.stderr_seen.iter().any(|l| l.contains(restart)),
        "no {restart:?} in:\n{}",
        agent.stderr_seen.join("\n")
    );

    // A manifest entry added: unknown before the reload, startable after.
    std::fs::create_dir_all(dir.join("tools.d")).unwrap();
    std::fs::write(dir.join("tools.d/ticker.toml"), eunomia_tests::TICKER_TOOL).unwrap();
    let out = cli(&socket, &["tools", "start", "ticker"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    agent.signal(libc::SIGHUP);
    agent.wait_for_stderr("configuration reloaded", Duration::from_secs(10));
    let out = cli(&socket, &["tools", "start", "ticker"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_tool_state(&socket, "ticker", "running", Duration::from_secs(10));
    stop_agent(agent, &socket);
}
