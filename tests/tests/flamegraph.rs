//! `eunomia flamegraph` against the real kernel: a workload with a known hot
//! function is profiled, and the SVG and folded stacks show it on top.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
};

mod containers_support;
mod flamegraph_support;

use eunomia_tests::{kernel_lock, kernel_tests_can_run, temp_dir};
use flamegraph_support::*;

const HOT: &str = "eunomia_test_hot_spin";

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
    // Kernel frames are marked as on-CPU: after the user frames, every one.
    let frames: Vec<&str> = stack.split(';').collect();
    let first_kernel = frames
        .iter()
        .position(|f| f.ends_with("_[k]"))
        .unwrap_or_else(|| panic!("no kernel frame marked: {stack}"));
    assert!(
        frames[first_kernel..].iter().all(|f| f.ends_with("_[k]")),
        "{stack}"
    );
    assert!(stack.ends_with("schedule_[k]"), "{stack}");
    // offcputime's stderr is summed up in at most one line per run.
    assert!(
        stderr.lines().filter(|l| l.contains("offcputime")).count() <= 1,
        "{stderr}"
    );
    // It sleeps nearly all the time: most of the 2 s are in that stack.
    assert!(us > 1_000_000, "only {us} us blocked in {stack}");
}

#[test]
fn jit_code_is_named_from_the_perf_map() {
    if !kernel_tests_can_run("jit_code_is_named_from_the_perf_map") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("flame-jit");
    let (mut child, pid) = start_printing_pid(&cc(&dir, "jit", &["-O2"]), 30);
    let perf_map = format!("/tmp/perf-{pid}.map");
    let out = dir.join("jit.folded");
    let (code, _, stderr) = flamegraph(&[
        "--pid",
        &pid,
        "--for",
        "2s",
        "--freq",
        "199",
        "--folded",
        "-o",
        s(&out),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&perf_map);
    assert_eq!(code, 0, "{stderr}");
    let counts = self_counts(&std::fs::read_to_string(&out).expect("folded written"));
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(counts[0].0, "eunomia_jit_hot_loop", "{counts:?}");
    assert!(counts[0].1 * 2 > total, "{counts:?}");
}

const NOFP_CHAIN: &str = "main;eunomia_nofp_outer;eunomia_nofp_middle;eunomia_nofp_hot_inner";

#[test]
fn dwarf_unwinding_recovers_callers_that_frame_pointers_lose() {
    if !kernel_tests_can_run("dwarf_unwinding_recovers_callers_that_frame_pointers_lose") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("flame-dwarf");
    let (mut child, pid) = start_printing_pid(&build_nofp(&dir), 30);
    let run = |mode: &str| {
        let out = dir.join(format!("{mode}.folded"));
        let (code, stdout, stderr) = flamegraph(&[
            "--pid",
            &pid,
            "--for",
            "2s",
            "--freq",
            "199",
            "--folded",
            "--user-only",
            "--cost",
            "--unwind",
            mode,
            "-o",
            s(&out),
        ]);
        assert_eq!(code, 0, "--unwind {mode}: {stderr}");
        (
            std::fs::read_to_string(&out).expect("folded written"),
            stdout,
        )
    };
    let (dwarf, dwarf_out) = run("dwarf");
    let (auto, auto_out) = run("auto");
    let (fp, _) = run("fp");
    let _ = child.kill();
    let _ = child.wait();

    let leaf = "eunomia_nofp_hot_inner";
    let (stack, n) = heaviest_with_leaf(&dwarf, leaf).expect("hot_inner sampled");
    println!("dwarf: {stack} {n}\n{dwarf_out}");
    assert!(stack.contains(NOFP_CHAIN), "dwarf lost callers: {stack}");
    assert!(
        stack.contains("__libc_start"),
        "dwarf stops before libc: {stack}"
    );
    let total: u64 = dwarf
        .lines()
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum();
    assert!(
        n * 2 > total,
        "full chain in under half the samples:\n{dwarf}"
    );
    assert!(dwarf_out.contains("unwind=dwarf"), "{dwarf_out}");

    let (stack, _) = heaviest_with_leaf(&auto, leaf).expect("hot_inner sampled (auto)");
    assert!(stack.contains(NOFP_CHAIN), "auto lost callers: {stack}");
    assert!(
        auto_out.contains("unwind=dwarf"),
        "auto chose fp: {auto_out}"
    );

    let (stack, _) = heaviest_with_leaf(&fp, leaf).expect("hot_inner sampled (fp)");
    println!("fp: {stack}");
    assert!(
        !fp.contains(NOFP_CHAIN),
        "frame pointers found the whole chain in a binary without them:\n{fp}"
    );
}

/// `--unwind auto` on a binary with the given compiler flags: which mode it
/// chose (`fp` or `dwarf`) and the heaviest stack ending in the hot function.
fn auto_choice(dir: &Path, name: &str, flags: &[&str]) -> (String, String) {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    let (mut child, pid) = start_printing_pid(&cc(&sub, "nofp", flags), 30);
    let out = dir.join(format!("{name}.folded"));
    let (code, stdout, stderr) = flamegraph(&[
        "--pid",
        &pid,
        "--for",
        "2s",
        "--freq",
        "199",
        "--folded",
        "--user-only",
        "--cost",
        "-o",
        s(&out),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 0, "{stderr}");
    let mode = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("unwind="))
        .unwrap_or_else(|| panic!("no cost line: {stdout}"))
        .to_owned();
    let folded = std::fs::read_to_string(&out).expect("folded written");
    let (stack, _) = heaviest_with_leaf(&folded, "eunomia_nofp_hot_inner")
        .unwrap_or_else(|| panic!("hot_inner not sampled: {folded}"));
    (mode, stack)
}

#[test]
fn auto_unwinding_walks_frame_pointers_only_where_every_function_keeps_one() {
    if !kernel_tests_can_run(
        "auto_unwinding_walks_frame_pointers_only_where_every_function_keeps_one",
    ) {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("flame-autofp");
    // Frame pointers in every function, leaves too (GCC 12 ignores
    // -mno-omit-leaf-frame-pointer at -O2; -O0 keeps them all): the
    // kernel's walk is complete, and cheapest.
    let (mode, stack) = auto_choice(&dir, "allfp", &["-O0", "-g", "-fno-omit-frame-pointer"]);
    assert_eq!(mode, "fp", "{stack}");
    assert!(
        stack.contains("eunomia_nofp_outer;eunomia_nofp_middle;eunomia_nofp_hot_inner"),
        "{stack}"
    );
    // GCC's -fno-omit-frame-pointer alone leaves leaves without a frame, so
    // a frame-pointer walk would skip the leaf's caller: auto copies stacks.
    let (mode, stack) = auto_choice(&dir, "leafnofp", &["-O2", "-g", "-fno-omit-frame-pointer"]);
    assert_eq!(mode, "dwarf", "{stack}");
    assert!(stack.contains(NOFP_CHAIN), "{stack}");
}

/// Removes a docker container when the test ends, also when it fails.
struct RemoveContainer(String);

impl Drop for RemoveContainer {
    fn drop(&mut self) {
        let _ = containers_support::runtimes()
            .docker()
            .args(["rm", "-f", &self.0])
            .output();
    }
}

#[test]
fn container_is_found_by_name() {
    if !containers_support::can_run("container_is_found_by_name") {
        return;
    }
    let rt = containers_support::runtimes();
    let _serial = kernel_lock();
    let dir = temp_dir("flame-container");
    let name = format!("eunomia-flame-{}", std::process::id());
    let _ = rt.docker().args(["rm", "-f", &name]).output();
    containers_support::run(rt.docker().args([
        "run",
        "-d",
        "--name",
        &name,
        containers_support::IMAGE,
        "/bin/sh",
        "-c",
        "while :; do :; done",
    ]));
    let _remove = RemoveContainer(name.clone());
    let config = dir.join("eunomia.toml");
    std::fs::write(&config, format!("[enrich]\n{}", rt.enrich_toml())).unwrap();
    let out = dir.join("container.folded");
    let (code, stdout, stderr) = flamegraph(&[
        "--container",
        &name,
        "--config",
        s(&config),
        "--for",
        "2s",
        "--freq",
        "99",
        "--folded",
        "-o",
        s(&out),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("samples"), "{stdout}");
    let folded = std::fs::read_to_string(&out).expect("folded written");
    let commands: std::collections::BTreeSet<&str> =
        folded.lines().filter_map(|l| l.split(';').next()).collect();
    // Only the container's busy shell was sampled.
    assert_eq!(
        commands.into_iter().collect::<Vec<_>>(),
        vec!["sh"],
        "{folded}"
    );

    let (code, _, stderr) = flamegraph(&[
        "--container",
        "eunomia-no-such-container",
        "--config",
        s(&config),
        "-o",
        s(&out),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no running container named"), "{stderr}");
}

#[test]
fn unwritable_output_fails_before_sampling() {
    let started = std::time::Instant::now();
    let (code, _, stderr) = flamegraph(&["--for", "30s", "-o", "/nonexistent-eunomia-dir/out.svg"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot write /nonexistent-eunomia-dir/out.svg"),
        "{stderr}"
    );
    let dir = temp_dir("flame-out");
    let (code, _, stderr) = flamegraph(&["--for", "30s", "-o", s(&dir)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is a directory"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "sampled before checking -o"
    );
}

#[test]
fn bad_before_file_is_named_with_its_line() {
    let dir = temp_dir("flame-badbefore");
    let before = dir.join("before.folded");
    std::fs::write(&before, "app;main 10\nnot a folded line\n").unwrap();
    let (code, _, stderr) = flamegraph(&[
        "--for",
        "30s",
        "--diff",
        s(&before),
        "-o",
        s(&dir.join("d.svg")),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("before.folded:2:1"), "{stderr}");
}

#[test]
fn differential_graph_shows_what_grew() {
    if !kernel_tests_can_run("differential_graph_shows_what_grew") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("flame-diff");
    // "Before": the same program, all its time in one other function.
    let before = dir.join("before.folded");
    std::fs::write(&before, "hot-loop;main;eunomia_test_before_deploy 500\n").unwrap();
    let (mut child, pid) = start_hot_loop(10);
    let pid = pid.to_string();
    let svg = dir.join("diff.svg");
    let folded = dir.join("diff.folded");
    let (code, stdout, stderr) = flamegraph(&[
        "--pid",
        &pid,
        "--for",
        "2s",
        "--diff",
        s(&before),
        "-o",
        s(&svg),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("{HOT} +")), "{stdout}");
    assert!(
        stdout.contains("eunomia_test_before_deploy -100.0 pts"),
        "{stdout}"
    );
    let (code, _, stderr) = flamegraph(&[
        "--pid",
        &pid,
        "--for",
        "1s",
        "--diff",
        s(&before),
        "--folded",
        "-o",
        s(&folded),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.contains("<svg") && text.contains(HOT),
        "hot function missing"
    );
    // The graph has the shape of the new recording, coloured by change: red
    // (grew) for the hot function, which was absent before.
    assert!(
        text.contains("rgb(255,"),
        "no red frame in the differential SVG"
    );
    // Differential folded lines: `stack before after`; the old stack is
    // all before, the hot one all after.
    let diff = std::fs::read_to_string(&folded).unwrap();
    let cols = |needle: &str| -> (u64, u64) {
        let line = diff
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {diff}"));
        let mut f = line.rsplitn(3, ' ');
        let after = f.next().unwrap().parse().unwrap();
        let before = f.next().unwrap().parse().unwrap();
        (before, after)
    };
    let (b, a) = cols("eunomia_test_before_deploy");
    assert!(b > 0 && a == 0, "{b} {a}");
    let (b, a) = cols(HOT);
    assert!(b == 0 && a > 0, "{b} {a}");
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
