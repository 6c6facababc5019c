//! `eunomia flamegraph` against the real kernel: a workload with a known hot
//! function is profiled, and the SVG and folded stacks show it on top.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
};

use eunomia_tests::{eunomia, kernel_lock, kernel_tests_can_run, temp_dir};

const HOT: &str = "eunomia_test_hot_spin";

/// Starts the hot-loop workload for `secs` seconds; returns it and its pid.
fn start_hot_loop(secs: u32) -> (Child, u32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hot-loop"))
        .arg(secs.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start hot-loop");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read pid");
    let pid = line.trim().parse().expect("pid line");
    (child, pid)
}

/// Runs `eunomia flamegraph ARGS` and returns (exit code, stdout, stderr).
fn flamegraph(args: &[&str]) -> (i32, String, String) {
    let out = eunomia()
        .arg("flamegraph")
        .args(args)
        .output()
        .expect("run eunomia flamegraph");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Samples per innermost frame of a folded file, largest first.
fn self_counts(folded: &str) -> Vec<(String, u64)> {
    let mut counts = std::collections::HashMap::<String, u64>::new();
    for line in folded.lines() {
        let (stack, n) = line.rsplit_once(' ').expect("`stack count` line");
        let leaf = stack.rsplit(';').next().unwrap_or(stack);
        *counts.entry(leaf.to_owned()).or_default() += n.parse::<u64>().expect("count");
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    v
}

#[test]
fn hot_function_has_the_largest_share() {
    if !kernel_tests_can_run("hot_function_has_the_largest_share") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("flame-hot");
    let svg = dir.join("hot.svg");
    let folded = dir.join("hot.folded");
    let (mut child, pid) = start_hot_loop(10);
    let pid = pid.to_string();
    let (code, stdout, stderr) = flamegraph(&["--pid", &pid, "--for", "3s", "-o", s(&svg)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("samples"), "{stdout}");
    let (code, _, stderr) = flamegraph(&[
        "--pid",
        &pid,
        "--for",
        "2s",
        "--folded",
        "--freq",
        "99",
        "-o",
        s(&folded),
    ]);
    let _ = child.kill();
    assert_eq!(code, 0, "{stderr}");

    let text = std::fs::read_to_string(&svg).expect("svg written");
    assert!(
        text.starts_with("<?xml"),
        "not SVG: {}",
        &text[..text.len().min(80)]
    );
    assert!(text.contains("<svg") && text.trim_end().ends_with("</svg>"));
    assert!(text.contains(HOT), "hot function missing from the SVG");

    let counts = self_counts(&std::fs::read_to_string(&folded).expect("folded written"));
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    // Loose: on a loaded 2-CPU machine the workload gets a fraction of a CPU.
    assert!(total >= 10, "too few samples: {counts:?}");
    assert!(
        counts[0].0.contains(HOT),
        "top frame is not {HOT}: {counts:?}"
    );
    assert!(
        counts[0].1 * 2 > total,
        "{HOT} under half the samples: {counts:?}"
    );
}

#[test]
fn process_exiting_during_sampling_still_renders() {
    if !kernel_tests_can_run("process_exiting_during_sampling_still_renders") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("flame-exit");
    let svg = dir.join("short.svg");
    let (mut child, pid) = start_hot_loop(1);
    let (code, _, stderr) = flamegraph(&["--pid", &pid.to_string(), "--for", "5s", "-o", s(&svg)]);
    let _ = child.wait();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("went away"), "{stderr}");
    assert!(std::fs::read_to_string(&svg).unwrap().contains(HOT));
}

/// Builds tests/fixtures/sleepy.c with frame pointers into `dir`.
fn build_sleepy(dir: &Path) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sleepy.c");
    let bin = dir.join("sleepy");
    let out = Command::new("cc")
        .args(["-O1", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("cc (gcc, from build-essential)");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

#[test]
fn off_cpu_graph_shows_where_a_process_sleeps() {
    if !kernel_tests_can_run("off_cpu_graph_shows_where_a_process_sleeps") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("flame-off");
    let mut child = Command::new(build_sleepy(&dir))
        .arg("15")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sleepy");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid = line.trim().to_owned();
    let svg = dir.join("off.svg");
    let folded = dir.join("off.folded");
    let (code, stdout, stderr) =
        flamegraph(&["--off-cpu", "--pid", &pid, "--for", "2s", "-o", s(&svg)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("microseconds blocked"), "{stdout}");
    let (code, _, stderr) = flamegraph(&[
        "--off-cpu",
        "--pid",
        &pid,
        "--for",
        "2s",
        "--folded",
        "-o",
        s(&folded),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg") && text.contains("eunomia_test_sleepy_outer"));
    let folded = std::fs::read_to_string(&folded).unwrap();
    let (stack, us) = folded
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(st, n)| (st, n.parse::<u64>().unwrap()))
        .max_by_key(|(_, n)| *n)
        .expect("some stacks");
    assert!(
        stack.contains("main;eunomia_test_sleepy_outer;clock_nanosleep"),
        "heaviest stack: {stack}"
    );
    // It sleeps nearly all the time: most of the 2 s are in that stack.
    assert!(us > 1_000_000, "only {us} us blocked in {stack}");
}

#[test]
fn missing_pid_is_bad_input() {
    let (code, _, stderr) = flamegraph(&["--pid", "4194303", "-o", "/dev/null"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no process with pid 4194303"), "{stderr}");
}

#[test]
fn two_targets_are_refused() {
    let (code, _, stderr) = flamegraph(&["--pid", "1", "--cgroup", "/", "-o", "/dev/null"]);
    assert_eq!(code, 2, "{stderr}");
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
