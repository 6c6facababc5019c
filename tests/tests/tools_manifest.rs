//! `eunomia tools list` and manifest loading: every Debian libbpf-tool has an
//! entry with its status on this kernel, and each kind of manifest mistake
//! exits 2 naming the file and line. No root needed.

use std::path::Path;

use eunomia_tests::{eunomia, temp_dir};

fn list_json(extra: &[&str]) -> Vec<serde_json::Value> {
    let out = eunomia()
        .args(["tools", "list", "--json"])
        .args(extra)
        .output()
        .expect("run eunomia");
    assert!(
        out.status.success(),
        "tools list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn row<'a>(rows: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` in tools list"))
}

/// The libbpf-tools binaries Debian's package installs, when it is installed.
fn debian_tools() -> Vec<String> {
    let Ok(out) = std::process::Command::new("dpkg")
        .args(["-L", "libbpf-tools"])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("/usr/sbin/") && l.len() > "/usr/sbin/".len())
        .map(|l| l.trim_start_matches("/usr/sbin/").to_owned())
        .collect()
}

#[test]
fn every_debian_tool_is_listed_with_a_status() {
    let rows = list_json(&[]);
    let debian = debian_tools();
    if debian.is_empty() {
        eprintln!("SKIP part: libbpf-tools is not installed");
    }
    for tool in &debian {
        let r = row(&rows, tool);
        assert!(
            ["ready", "missing_binary", "unsupported"].contains(&r["status"].as_str().unwrap()),
            "{r}"
        );
        assert!(r["running"].is_null(), "no agent, yet running is {r}");
    }
    for r in &rows {
        assert!(!r["description"].as_str().unwrap().is_empty(), "{r}");
        assert!(
            r["source"]
                .as_str()
                .unwrap()
                .contains("tools-manifest.toml")
        );
    }
}

#[test]
fn statuses_come_from_the_kernel() {
    let rows = list_json(&[]);
    if Path::new("/usr/sbin/execsnoop").exists()
        && Path::new("/sys/kernel/tracing/events/syscalls/sys_enter_execve").exists()
    {
        assert_eq!(row(&rows, "execsnoop")["status"], "ready");
    }
    let kprobes = Path::new("/sys/bus/event_source/devices/kprobe").exists()
        || Path::new("/sys/kernel/tracing/kprobe_events").exists();
    if Path::new("/usr/sbin/tcpconnect").exists() && !kprobes {
        let r = row(&rows, "tcpconnect");
        assert_eq!(r["status"], "unsupported", "{r}");
        assert!(r["reason"].as_str().unwrap().contains("kprobes"), "{r}");
    }
}

#[test]
fn text_list_shows_reasons_and_agent_column() {
    let out = eunomia().args(["tools", "list"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("STATUS") && header.contains("AGENT"),
        "{header}"
    );
    let exec = text.lines().find(|l| l.starts_with("execsnoop ")).unwrap();
    assert!(
        exec.contains(" - "),
        "agent column is `-` with no agent: {exec}"
    );
}

/// A valid user entry, to which each bad case applies one mistake.
const GOOD: &str = r#"[[tool]]
name = "lister"
description = "prints a table"
binary = "/bin/echo"
args = ["PID COMM"]
output = "events"
[tool.format]
format = "columns"
header = "PID"
columns = [
  { name = "proc.pid", type = "int" },
  { name = "proc.comm", type = "str" },
]
"#;

/// Writes `text` as `bad.toml` in a fresh directory and runs `tools list`
/// with it; returns the exit code and stderr.
fn list_with(case: &str, text: &str) -> (Option<i32>, String, String) {
    let dir = temp_dir(&format!("manifest-{case}"));
    let file = dir.join("bad.toml");
    std::fs::write(&file, text).unwrap();
    let out = eunomia()
        .args(["tools", "list", "--manifest-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        file.display().to_string(),
    )
}

#[test]
fn a_good_user_entry_is_listed() {
    let dir = temp_dir("manifest-good");
    std::fs::write(dir.join("lister.toml"), GOOD).unwrap();
    let rows = list_json(&["--manifest-dir", dir.to_str().unwrap()]);
    let r = row(&rows, "lister");
    assert_eq!(r["status"], "ready", "{r}");
    assert_eq!(r["parser"], "generic");
    assert!(
        r["source"].as_str().unwrap().ends_with("lister.toml:1"),
        "{r}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_kind_of_mistake_exits_2_with_file_and_line() {
    let cases: &[(&str, String, usize, &str)] = &[
        (
            "unknown-key",
            GOOD.replace(
                "output = \"events\"",
                "output = \"events\"\ncolour = \"red\"",
            ),
            7,
            "colour",
        ),
        (
            "missing-parser",
            GOOD[..GOOD.find("[tool.format]").unwrap()].to_owned(),
            1,
            "no parser",
        ),
        (
            "unknown-parser",
            GOOD[..GOOD.find("[tool.format]").unwrap()].to_owned() + "parser = \"nosuch\"\n",
            7,
            "unknown parser `nosuch`",
        ),
        (
            "bad-column-type",
            GOOD.replace("type = \"int\"", "type = \"number\""),
            7,
            "number",
        ),
        (
            "width-in-columns-format",
            GOOD.replace(
                "{ name = \"proc.pid\", type = \"int\" }",
                "{ name = \"proc.pid\", type = \"int\", width = 7 }",
            ),
            7,
            "width",
        ),
        (
            "output-does-not-fit",
            GOOD.replace("output = \"events\"", "output = \"histograms\""),
            6,
            "does not fit",
        ),
        (
            "duplicate-name",
            format!("{GOOD}\n{GOOD}"),
            16,
            "duplicate tool `lister`",
        ),
        (
            "toml-syntax",
            GOOD.replace("binary = \"/bin/echo\"", "binary = /bin/echo"),
            4,
            "",
        ),
        (
            "bad-signal",
            GOOD.replace(
                "output = \"events\"",
                "output = \"events\"\nstop_signal = \"SIGNOPE\"",
            ),
            7,
            "stop_signal",
        ),
    ];
    for (case, text, line, what) in cases {
        let (code, stderr, file) = list_with(case, text);
        assert_eq!(code, Some(2), "{case}: {stderr}");
        assert!(
            stderr.contains(&format!("{file}:{line}:")),
            "{case}: expected {file}:{line}: in {stderr}"
        );
        assert!(
            stderr.contains(what),
            "{case}: expected {what:?} in {stderr}"
        );
    }
}

#[test]
fn a_bad_manifest_override_and_unknown_tools_exit_2() {
    let dir = temp_dir("manifest-override");
    let file = dir.join("m.toml");
    std::fs::write(&file, "[[tools]]\nname = \"x\"\n").unwrap();
    let out = eunomia()
        .args(["tools", "list", "--manifest"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:1:", file.display())),
        "{stderr}"
    );

    let out = eunomia()
        .args(["tools", "start", "no-such-tool", "--for", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-tool"));

    // A tool that needs arguments does not start without them.
    let out = eunomia()
        .args(["tools", "start", "funclatency", "--for", "1s", "--force"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs arguments"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stop_without_agent_says_so() {
    let out = eunomia()
        .args([
            "tools",
            "stop",
            "execsnoop",
            "--socket",
            "/nonexistent/eunomia.sock",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no agent is running"));
}

#[test]
fn tools_subcommands_have_help_and_reject_unknown_flags() {
    for path in [
        &["tools", "start"][..],
        &["tools", "stop"],
        &["tools", "list"],
    ] {
        let out = eunomia().args(path).arg("--help").output().unwrap();
        assert!(out.status.success(), "{path:?}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: eunomia tools"));
        let out = eunomia()
            .args(path)
            .args(["x", "--no-such-flag"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{path:?}: {out:?}");
    }
}
