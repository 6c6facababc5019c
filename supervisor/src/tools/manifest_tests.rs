//! Unit tests of `manifest`.

use super::*;
use crate::textpos::LineIndex;

#[test]
fn line_index_gives_lines_and_columns() {
    let ix = LineIndex::new("ab\ncde\n\nf");
    assert_eq!(ix.line_col(0), (1, 1));
    assert_eq!(ix.line_col(1), (1, 2));
    assert_eq!(ix.line_col(2), (1, 3));
    assert_eq!(ix.line_col(3), (2, 1));
    assert_eq!(ix.line_col(7), (3, 1));
    assert_eq!(ix.line_col(8), (4, 1));
    assert_eq!(ix.line_col(99), (4, 2));
}

fn many_tools(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[tool]]\nname = \"t{i}\"\ndescription = \"x\"\nbinary = \"/bin/true\"\noutput = \"events\"\n[tool.format]\nformat = \"columns\"\ncolumns = [{{ name = \"n\", type = \"int\" }}]\n"
            )
        })
        .collect()
}

/// Loading is linear: 4x the entries take well under 16x the time (a
/// quadratic load, as before, took 4 s for 8,000 entries).
#[test]
fn a_manifest_of_8000_entries_loads_in_linear_time() {
    let time = |n: usize| {
        let text = many_tools(n);
        (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                let m = Manifest::parse(&text, "big.toml").unwrap();
                assert_eq!(m.tools().len(), n);
                assert!(m.get(&format!("t{}", n - 1)).is_some());
                t.elapsed()
            })
            .min()
            .unwrap()
    };
    let (small, big) = (time(2000), time(8000));
    let ratio = big.as_secs_f64() / small.as_secs_f64();
    eprintln!("2000 entries {small:?}, 8000 entries {big:?}, ratio {ratio:.1}");
    assert!(ratio < 8.0, "quadratic? {small:?} -> {big:?} ({ratio:.1}x)");
}

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, "m.toml")
}

const OK: &str = r#"
[[tool]]
name = "execsnoop"
description = "exec() calls"
binary = "execsnoop"
args = ["-T"]
parser = "execsnoop"
output = "events"
event_kind = "exec"
requires = { tracepoints = ["syscalls/sys_enter_execve"] }

[[tool]]
name = "biolatency"
description = "block I/O latency"
binary = "biolatency"
parser = "biolatency"
output = "histograms"
interval_args = ["{seconds}"]
stop_signal = "INT"
"#;

#[test]
fn the_shipped_manifest_is_valid() {
    let m = Manifest::parse(BUILTIN, BUILTIN_NAME).unwrap();
    assert!(m.get("execsnoop").is_some());
    assert!(m.tools().len() >= 50, "{}", m.tools().len());
}

#[test]
fn valid_entries_load_with_defaults() {
    let m = parse(OK).unwrap();
    let b = m.get("biolatency").unwrap();
    assert_eq!(b.stop_signal, Signal::SIGINT);
    assert_eq!(b.stop_timeout, DEFAULT_STOP_TIMEOUT);
    assert_eq!(
        b.argv(Duration::from_millis(1500), &["-m".into()]),
        ["2", "-m"]
    );
    assert_eq!(b.origin.line, 12);
    assert_eq!(m.get("execsnoop").unwrap().requires.tracepoints.len(), 1);
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn unknown_key_names_line() {
    let e = err(&OK.replace("output = \"events\"", "output = \"events\"\ncolour = 1"));
    assert!(e.starts_with("m.toml:9:"), "{e}");
    assert!(e.contains("colour"), "{e}");
}

#[test]
fn unknown_parser_names_line() {
    let e = err(&OK.replace("parser = \"execsnoop\"", "parser = \"nope\""));
    assert!(e.starts_with("m.toml:7:"), "{e}");
    assert!(e.contains("unknown parser `nope`"), "{e}");
}

#[test]
fn missing_parser_names_the_entry() {
    let e = err(&OK.replace("parser = \"execsnoop\"\n", ""));
    assert!(e.starts_with("m.toml:2:"), "{e}");
    assert!(e.contains("no parser"), "{e}");
}

#[test]
fn duplicate_name_names_both_lines() {
    let e = err(&OK.replace("name = \"biolatency\"", "name = \"execsnoop\""));
    assert!(e.starts_with("m.toml:13:"), "{e}");
    assert!(e.contains("already defined at line 2"), "{e}");
}

#[test]
fn bad_signal_and_interval_are_rejected() {
    let e = err(&OK.replace("\"INT\"", "\"SIGFOO\""));
    assert!(e.starts_with("m.toml:19:"), "{e}");
    let e = err(&OK.replace("[\"{seconds}\"]", "[\"1\"]"));
    assert!(e.contains("{seconds}"), "{e}");
}

#[test]
fn bad_tracepoint_is_rejected() {
    let e = err(&OK.replace("syscalls/sys_enter_execve", "sys_enter_execve"));
    assert!(e.starts_with("m.toml:10:"), "{e}");
}

const GENERIC: &str = r#"
[[tool]]
name = "lister"
description = "prints pids"
binary = "/bin/sh"
args = ["-c", "echo PID COMM; echo 1 init"]
output = "events"
[tool.format]
format = "columns"
header = "PID"
columns = [
  { name = "proc.pid", type = "int" },
  { name = "proc.comm", type = "str" },
]
"#;

#[test]
fn generic_formats_load_and_parse() {
    let m = parse(GENERIC).unwrap();
    let t = m.get("lister").unwrap();
    assert_eq!(t.parser_label(), "generic");
    let mut p = t.new_parser();
    let (recs, errs) = pa::parse_all(p.as_mut(), b"PID COMM\n1 init\n");
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(recs[0].as_event().unwrap().pid, Some(1));
}

#[test]
fn a_format_that_does_not_fit_is_rejected_with_its_line() {
    let e = err(&GENERIC.replace("type = \"int\"", "type = \"integer\""));
    assert!(e.starts_with("m.toml:8:"), "{e}");
    assert!(e.contains("integer"), "{e}");
    let e = err(&GENERIC.replace("format = \"columns\"", "format = \"histogram\""));
    assert!(e.starts_with("m.toml:8:"), "{e}");
    let e = err(&GENERIC.replace("output = \"events\"", "output = \"tables\""));
    assert!(e.starts_with("m.toml:7:"), "{e}");
    assert!(e.contains("does not fit"), "{e}");
    let e = err(&GENERIC.replace(
        "  { name = \"proc.comm\"",
        "  { colour = 1, name = \"proc.comm\"",
    ));
    assert!(e.starts_with("m.toml:13:"), "{e}");
}

#[test]
fn user_directories_add_and_replace_entries() {
    let dir = std::env::temp_dir().join(format!("eunomia-manifest-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.toml"), GENERIC).unwrap();
    std::fs::write(
        dir.join("b.toml"),
        OK.replace("\"-T\"]", "\"-T\", \"-x\"]")
            .replace("name = \"biolatency\"", "name = \"biolatency2\""),
    )
    .unwrap();
    std::fs::write(dir.join("ignored.txt"), "not toml").unwrap();
    let config = ToolsConfig {
        manifest_dirs: vec![dir.clone(), dir.join("missing")],
        ..ToolsConfig::default()
    };
    let m = Manifest::load(&config).unwrap();
    assert!(m.get("lister").is_some());
    assert!(m.get("biolatency2").is_some());
    let exec = m.get("execsnoop").unwrap();
    assert_eq!(exec.args, ["-T", "-x"]);
    assert!(exec.origin.file.ends_with("b.toml"));
    // The same name in two user files is ambiguous.
    std::fs::write(dir.join("c.toml"), GENERIC).unwrap();
    let e = Manifest::load(&config).unwrap_err().to_string();
    assert!(e.contains("c.toml:2:") && e.contains("a.toml:2"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
