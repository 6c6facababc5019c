//! Helpers of the flame graph tests: the workloads they profile (built
//! from tests/fixtures/*.c or the tests crate), running `eunomia
//! flamegraph`, and reading folded stacks.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use eunomia_tests::eunomia;

/// Starts the hot-loop workload for `secs` seconds; returns it and its pid.
pub(crate) fn start_hot_loop(secs: u32) -> (Child, u32) {
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
pub(crate) fn flamegraph(args: &[&str]) -> (i32, String, String) {
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
pub(crate) fn self_counts(folded: &str) -> Vec<(String, u64)> {
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

/// Builds tests/fixtures/sleepy.c with frame pointers into `dir`.
pub(crate) fn build_sleepy(dir: &Path) -> PathBuf {
    cc(dir, "sleepy", &["-O1", "-g", "-fno-omit-frame-pointer"])
}

/// Compiles tests/fixtures/NAME.c with `flags` into `dir`.
pub(crate) fn cc(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/{name}.c"));
    let bin = dir.join(name);
    let out = Command::new("cc")
        .args(flags)
        .arg("-o")
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

/// Builds tests/fixtures/nofp.c at -O2 into `dir`, without frame pointers
/// (or with them when `fp`).
pub(crate) fn build_nofp(dir: &Path) -> PathBuf {
    cc(dir, "nofp", &["-O2", "-g", "-fomit-frame-pointer"])
}

/// Starts a workload that prints its pid first; returns it and the pid.
pub(crate) fn start_printing_pid(bin: &Path, secs: u32) -> (Child, String) {
    let mut child = Command::new(bin)
        .arg(secs.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start workload");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read pid");
    (child, line.trim().to_owned())
}

/// The folded stack with the most samples whose leaf is `leaf`.
pub(crate) fn heaviest_with_leaf(folded: &str, leaf: &str) -> Option<(String, u64)> {
    folded
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(st, n)| (st.to_owned(), n.parse::<u64>().expect("count")))
        .filter(|(st, _)| st.rsplit(';').next() == Some(leaf))
        .max_by_key(|(_, n)| *n)
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
