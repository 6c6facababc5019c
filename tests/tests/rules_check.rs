//! `eunomia rules check`: the default rules pass and are listed; errors are
//! printed as `file:line:col: message` with the text underlined, exit 2.

use std::path::PathBuf;

use eunomia_tests::eunomia;

fn default_rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rules/default.toml")
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eunomia-rules-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn default_rules_check_and_are_listed() {
    let out = eunomia()
        .args(["rules", "check"])
        .arg(default_rules())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for name in [
        "Shell spawned in a container",
        "Sensitive file opened",
        "Write below a binary directory",
        "Process executed from a temporary directory",
        "Outbound connection to a suspicious port",
        "New listening socket in a container",
        "Privilege change via setuid binary",
        "Mount inside a container",
        "Kill signal to another user's process",
    ] {
        assert!(stdout.contains(name), "{name} missing from:\n{stdout}");
    }
    assert!(stdout.contains("9 rules OK"), "{stdout}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn errors_name_file_line_and_column_and_exit_2() {
    let path = temp_file(
        "bad.toml",
        "[[rule]]\nname = \"x\"\ncondition = '''\n  event.kind = exec\n  and proc.comn = bash'''\nseverity = \"warning\"\noutput = \"{proc.comm}\"\n\n[[rule]]\nname = \"y\"\ncondition = 'event.kind = open and net.dport = http'\nseverity = \"warning\"\noutput = \"o\"\n",
    );
    let out = eunomia()
        .args(["rules", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    let want = format!(
        "{p}:5:7: unknown field `proc.comn` (did you mean `proc.comm`?)\n      and proc.comn = bash'''\n          ^^^^^^^^^\n"
    );
    assert!(stderr.contains(&want), "want:\n{want}\ngot:\n{stderr}");
    assert!(
        stderr.contains(&format!("{p}:11:48: `http` is not an integer")),
        "{stderr}"
    );
    assert!(stderr.contains("2 errors in the rules"), "{stderr}");
}

#[test]
fn user_files_can_use_the_default_macros_with_defaults() {
    let path = temp_file(
        "mine.toml",
        "[[rule]]\nname = \"curl in a container\"\ncondition = 'spawned_process and proc.comm = curl and in_container'\nseverity = \"notice\"\noutput = \"curl in {container.id}\"\n",
    );
    let alone = eunomia()
        .args(["rules", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(alone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&alone.stderr).contains("--with-defaults"));
    let with = eunomia()
        .args(["rules", "check", "--with-defaults", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(with.status.success(), "{with:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&with.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|v| v["rule"] == "curl in a container" && v["kinds"][0] == "exec")
    );
}

#[test]
fn missing_file_is_bad_input() {
    let out = eunomia()
        .args(["rules", "check", "/nonexistent/rules.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rules.toml: cannot read"));
}
