//! The conventions an operator brings (issue 20): `tools start` of a tool
//! the agent already runs, `--follow` of table tools printed as the
//! foreground prints them, one JSON schema across `run --json`, the
//! JSON-lines sink, alerts and `tools start --json`/`--follow --json`, a
//! stdout that stays JSON when a sink writes there, no INFO lines from
//! foreground commands unless asked, errors said once, rules with one name
//! each, and completions and man pages generated from the command line.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use eunomia_tests::{Agent, eunomia, kernel_lock, kernel_tests_can_run, temp_dir};
use serde_json::Value;

const LISTENING: &str = "control API listening";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A test agent's configuration: fast polling and tool intervals, the
/// control socket in `dir`, `extra` appended.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("eunomia.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\npoll_interval = \"1s\"\ncontrol_socket = {:?}\n\n[tools]\ninterval = \"1s\"\n{extra}",
            dir.join("eunomia.sock").display().to_string(),
        ),
    )
    .unwrap();
    path
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

/// Every line of `lines` as a JSON object; panics on one that is not.
fn json_lines(lines: &[String], what: &str) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{what}: not a JSON line ({e}): {l:?}"));
            assert!(v.is_object(), "{what}: not an object: {l}");
            v
        })
        .collect()
}

/// The keys every object of the schema has, and those of a tool record.
fn assert_schema(v: &Value, what: &str) {
    assert!(v["type"].is_string(), "{what}: no `type`: {v}");
    assert!(
        v["ts_ns"].as_u64().is_some_and(|t| t > 0),
        "{what}: no `ts_ns`: {v}"
    );
    assert!(
        v.get("record").is_none(),
        "{what}: a second type key `record`: {v}"
    );
    if matches!(
        v["type"].as_str(),
        Some("event" | "alert" | "table" | "histogram")
    ) {
        assert!(v["tool"].is_string(), "{what}: no `tool`: {v}");
    }
}

#[test]
fn follow_attaches_to_a_running_table_tool_and_prints_like_the_foreground() {
    let test = "follow_attaches_to_a_running_table_tool_and_prints_like_the_foreground";
    if !kernel_tests_can_run(test) {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("conventions-follow");
    let config = write_config(&dir, "enabled = []\n\n[rules]\nconsole = false\n");
    let socket = dir.join("eunomia.sock");
    let mut cmd = eunomia();
    cmd.env_remove("EUNOMIA_SOCKET")
        .args(["run", "--config"])
        .arg(&config);
    let mut agent = Agent::spawn(cmd);
    agent.wait_for_stderr(LISTENING, Duration::from_secs(30));

    // The start message says the state the tool settled in.
    let out = cli(&socket, &["tools", "start", "syscount"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("`syscount` started in the agent: running (pid "),
        "{}",
        text(&out.stderr)
    );

    // Following a tool the agent already runs: exit 0, the table printed as
    // the foreground prints it.
    let mut follow = Agent::start(&[
        "tools",
        "start",
        "syscount",
        "--follow",
        "--for",
        "8s",
        "--socket",
        socket.to_str().unwrap(),
    ]);
    follow.wait_for_stderr(
        "already running in the agent: running",
        Duration::from_secs(10),
    );
    let lines = follow.stdout_until(Duration::from_secs(8), |l| {
        l.iter()
            .any(|x| x.starts_with('[') && x.contains("] syscount"))
            && l.iter().any(|x| x.starts_with("syscall "))
    });
    assert!(
        lines
            .iter()
            .any(|x| x.starts_with("syscall ") && x.contains("count")),
        "no table header among {lines:?}"
    );
    let (code, _) = follow.finish(Duration::from_secs(15));
    assert_eq!(code, 0, "the follower of a running tool");

    // The JSON of the stream is the foreground's JSON, with the same keys.
    let follow = cli(
        &socket,
        &[
            "tools", "start", "syscount", "--follow", "--json", "--for", "4s",
        ],
    );
    assert!(follow.status.success(), "{}", text(&follow.stderr));
    let followed = json_lines(
        &text(&follow.stdout)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
        "--follow --json",
    );
    let table = followed
        .iter()
        .find(|v| v["type"] == "table")
        .unwrap_or_else(|| panic!("no table record followed: {followed:?}"));
    assert_schema(table, "--follow --json");
    assert_eq!(table["tool"], "syscount");

    let fg = eunomia()
        .args([
            "tools",
            "start",
            "syscount",
            "--foreground",
            "--json",
            "--interval",
            "1s",
            "--for",
            "4s",
        ])
        .output()
        .unwrap();
    assert!(fg.status.success(), "{}", text(&fg.stderr));
    let fg = json_lines(
        &text(&fg.stdout)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
        "tools start --json",
    );
    let fg_table = fg.iter().find(|v| v["type"] == "table").expect("a table");
    assert_schema(fg_table, "tools start --json");
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(fg_table), keys(table), "foreground and followed keys");
    assert_eq!(fg_table["columns"], table["columns"]);

    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);
}

/// A rule on every `/bin/true` exec.
const TRUE_RULE: &str = "[[rule]]\nname = \"true ran\"\ncondition = 'event.kind = exec and proc.comm = \"true\"'\nseverity = \"notice\"\noutput = \"true ran (pid {proc.pid})\"\n";

/// `eunomia run --config CONFIG ARGS...` for 6 s while `/bin/true` runs
/// every 100 ms; its stdout and stderr lines.
fn run_with_execs(config: &Path, args: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut cmd = eunomia();
    cmd.env_remove("EUNOMIA_SOCKET")
        .args(["run", "--for", "6s", "--config"])
        .arg(config)
        .args(args);
    let mut agent = Agent::spawn(cmd);
    agent.wait_for_stderr("first output", Duration::from_secs(30));
    for _ in 0..20 {
        Command::new("/bin/true").status().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, stdout, stderr) = agent.finish_with_stderr(Duration::from_secs(60));
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    (stdout, stderr)
}

#[test]
fn run_json_and_the_json_lines_sink_share_one_schema_and_keep_stdout_json() {
    let test = "run_json_and_the_json_lines_sink_share_one_schema_and_keep_stdout_json";
    if !kernel_tests_can_run(test) {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("conventions-json");
    let rules = dir.join("true.toml");
    std::fs::write(&rules, TRUE_RULE).unwrap();
    let base = format!(
        "enabled = [\"execsnoop\"]\n\n[rules]\nconsole = true\nfiles = [{:?}]\n",
        rules.display().to_string()
    );

    // `run --json`: summaries and alerts, every line JSON of the schema.
    let config = write_config(&dir, &base);
    let (stdout, stderr) = run_with_execs(&config, &["--json"]);
    let lines = json_lines(&stdout, "run --json");
    for v in &lines {
        assert_schema(v, "run --json");
    }
    assert!(lines.iter().any(|v| v["type"] == "summary"), "{stdout:?}");
    let alert = lines
        .iter()
        .find(|v| v["type"] == "alert" && v["rule"] == "true ran")
        .unwrap_or_else(|| panic!("no alert in {stdout:?}\nstderr:\n{}", stderr.join("\n")));
    assert_eq!(alert["tool"], "execsnoop");
    assert_eq!(alert["kind"], "exec");
    assert_eq!(alert["proc.comm"], "true");

    // The JSON-lines sink on stdout: stdout is JSON lines only (for `jq`);
    // the human summary and the alert lines go to stderr.
    let config = write_config(
        &dir,
        &format!("{base}\n[sinks.jsonl]\nenabled = true\npath = \"-\"\ninterval = \"1s\"\n"),
    );
    let (stdout, stderr) = run_with_execs(&config, &[]);
    let lines = json_lines(&stdout, "JSON-lines sink");
    for v in &lines {
        assert_schema(v, "JSON-lines sink");
    }
    assert!(lines.iter().any(|v| v["type"] == "metric"), "{stdout:?}");
    let event = lines
        .iter()
        .find(|v| v["type"] == "event" && v["proc.comm"] == "true")
        .unwrap_or_else(|| panic!("no /bin/true event in {stdout:?}"));
    for key in ["tool", "kind", "proc.pid", "proc.comm"] {
        assert!(
            event.get(key).is_some() && alert.get(key).is_some(),
            "`{key}` in the event {event} and the alert {alert}"
        );
    }
    let stderr = stderr.join("\n");
    assert!(
        stderr.contains("syscalls: "),
        "summary on stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("ALERT NOTICE [true ran]"),
        "alert on stderr:\n{stderr}"
    );
}

/// A tool added through a manifest: a shell printing its pid, its comm
/// (`sh`, as the kernel knows it, so its records are verified) and a
/// counter every 100 ms.
const COUNTER_TOOL: &str = r#"
[[tool]]
name = "ticker"
description = "A script that prints a numbered line every 100 ms"
binary = "/bin/sh"
args = ["-c", "echo 'PID COMM N'; i=0; while :; do echo \"$$ sh $i\"; i=$((i+1)); sleep 0.1; done"]
output = "events"
[tool.format]
format = "columns"
header = "PID"
columns = [
  { name = "proc.pid", type = "int" },
  { name = "proc.comm", type = "str" },
  { name = "ticker.n", type = "int" },
]
"#;

/// A manifest directory holding [`COUNTER_TOOL`].
fn ticker_dir(test: &str) -> PathBuf {
    let dir = temp_dir(test);
    std::fs::write(dir.join("ticker.toml"), COUNTER_TOOL).unwrap();
    dir
}

#[test]
fn foreground_commands_log_no_info_unless_asked() {
    let dir = ticker_dir("conventions-quiet");
    let run = |extra: &[&str]| {
        let out = eunomia()
            .args(extra)
            .args(["tools", "start", "ticker", "--for", "2s", "--manifest-dir"])
            .arg(&dir)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("TICKER.N"),
            "{}",
            text(&out.stdout)
        );
        text(&out.stderr)
    };
    let quiet = run(&[]);
    assert!(!quiet.contains("INFO"), "INFO lines unasked:\n{quiet}");
    let asked = run(&["--log-level", "info"]);
    assert!(
        asked.contains("INFO"),
        "--log-level info shows INFO:\n{asked}"
    );
}

#[test]
fn a_bad_configuration_is_reported_once() {
    let dir = temp_dir("conventions-bad-config");
    let config = dir.join("bad.toml");
    std::fs::write(&config, "[agent]\npoll_interval = 5\n").unwrap();
    for args in [vec!["config", "check"], vec!["run", "--config"]] {
        let out = eunomia().args(&args).arg(&config).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert_eq!(
            err.matches("expected a duration").count(),
            1,
            "{args:?}:\n{err}"
        );
        assert_eq!(err.matches("bad.toml:2:17").count(), 1, "{args:?}:\n{err}");
        assert!(
            !err.contains("line 2, column 17"),
            "position said twice:\n{err}"
        );
        assert_eq!(err.matches("error").count(), 1, "{args:?}:\n{err}");
    }
}

#[test]
fn two_rules_of_one_name_are_an_error_with_their_position() {
    let dir = temp_dir("conventions-dup-rules");
    let rules = dir.join("dup.toml");
    std::fs::write(&rules, format!("{TRUE_RULE}{TRUE_RULE}")).unwrap();
    let out = eunomia()
        .args(["rules", "check"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("dup.toml:7:8") && err.contains("second rule named `true ran`"),
        "{err}"
    );
}

#[test]
fn completions_and_man_page_are_generated_from_the_command_line() {
    for shell in ["bash", "zsh", "fish"] {
        let out = eunomia().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for sub in [
            "run",
            "tools",
            "status",
            "flamegraph",
            "completions",
            "follow",
        ] {
            assert!(script.contains(sub), "{shell} completions lack `{sub}`");
        }
    }
    let out = eunomia().arg("man").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH eunomia"),
        "{page}"
    );
    for sub in ["run", "tools", "status", "flamegraph", "rules"] {
        assert!(page.contains(sub), "the man page lacks `{sub}`");
    }
    let dir = temp_dir("conventions-man");
    let out = eunomia().args(["man", "--dir"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    for page in ["eunomia.1", "eunomia-tools.1", "eunomia-tools-start.1"] {
        assert!(dir.join(page).exists(), "{page} not written");
    }
}

#[test]
fn a_manifest_column_misspelling_a_standard_field_is_refused_at_its_place() {
    let dir = temp_dir("conventions-manifest-field");
    std::fs::write(
        dir.join("bad.toml"),
        "[[tool]]\nname = \"t\"\ndescription = \"d\"\nbinary = \"/bin/true\"\n\
         output = \"events\"\n[tool.format]\nformat = \"columns\"\n\
         columns = [{ name = \"proc.pidd\", type = \"int\" }]\n",
    )
    .unwrap();
    let out = eunomia()
        .args(["tools", "list", "--manifest-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.toml:8:21") && err.contains("`proc.pid`"),
        "{err}"
    );
}

#[test]
fn rules_test_the_columns_of_a_tool_added_through_a_manifest() {
    let test = "rules_test_the_columns_of_a_tool_added_through_a_manifest";
    if !kernel_tests_can_run(test) {
        return;
    }
    let _serial = kernel_lock();
    let tools = ticker_dir("conventions-manifest-tools");
    let dir = temp_dir("conventions-manifest-rule");
    let rules = dir.join("ticker-rule.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"ticker counted\"\ncondition = 'event.kind = generic and ticker.n = 3'\n\
         severity = \"info\"\noutput = \"ticker at {ticker.n}\"\n",
    )
    .unwrap();
    let config = write_config(
        &dir,
        &format!(
            "enabled = [\"ticker\"]\nmanifest_dirs = [{:?}]\n\n[rules]\nconsole = true\nfiles = [{:?}]\n",
            tools.display().to_string(),
            rules.display().to_string()
        ),
    );
    let out = eunomia()
        .env_remove("EUNOMIA_SOCKET")
        .args(["run", "--json", "--for", "4s", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    let alerts: Vec<Value> = json_lines(&stdout, "run --json")
        .into_iter()
        .filter(|v| v["type"] == "alert" && v["rule"] == "ticker counted")
        .collect();
    assert_eq!(alerts.len(), 1, "{stdout:?}\n{}", text(&out.stderr));
    assert_eq!(alerts[0]["output"], "ticker at 3");
    assert_eq!(alerts[0]["ticker.n"], 3);
}
