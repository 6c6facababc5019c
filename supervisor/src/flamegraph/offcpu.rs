//! Off-CPU stacks: runs the manifest's `offcputime` tool once for the
//! sampling duration, parses the stacks it prints (time blocked, in
//! microseconds, per stack) and makes them look like the on-CPU graph's:
//! the tracing machinery's frames dropped, kernel frames marked `_[k]`,
//! mangled Rust and C++ names demangled. What it writes on stderr is
//! summarised (distinct messages, counted), not printed line by line.

use std::{
    collections::{HashMap, HashSet},
    io::Read,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{FlameError, Target, folded::FoldedLines};
use crate::tools::{Manifest, ToolsConfig, avail::find_binary, stderr::LineSplitter};

/// The manifest entry used.
const TOOL: &str = "offcputime";

/// Frames of the tracing machinery itself, at the leaf of every stack.
const TRACING_FRAMES: &[&str] = &["bpf_prog_", "bpf_trace_run", "__traceiter_"];

/// Longest output line read; longer ones are cut.
const MAX_LINE: usize = 4096;

/// What one run of offcputime gave.
#[derive(Debug, Default)]
pub(crate) struct OffCpu {
    /// Blocked microseconds per folded stack, largest first.
    pub(crate) lines: FoldedLines,
    /// What it wrote on stderr: distinct messages (numbers as `N`) with an
    /// example and how often, most frequent first.
    pub(crate) warnings: Vec<Warning>,
    /// Output lines the parser refused.
    pub(crate) unparsed: u64,
}

/// One kind of stderr message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Warning {
    /// The first line of this kind.
    pub(crate) example: String,
    /// Lines of this kind.
    pub(crate) count: u64,
}

/// Blocked time per folded stack of `target` over `duration`.
pub(crate) fn sample(
    target: &Target,
    duration: Duration,
    config: &ToolsConfig,
    mut progress: impl FnMut(Duration),
) -> Result<OffCpu, FlameError> {
    let manifest = Manifest::load(config).map_err(|e| FlameError::Bpf(e.to_string()))?;
    let spec = manifest
        .get(TOOL)
        .ok_or_else(|| FlameError::Bpf(format!("the tools manifest has no {TOOL}")))?;
    let binary = find_binary(&spec.binary, &config.search_dirs).ok_or_else(|| {
        FlameError::Bpf(format!(
            "{} not found (Debian: apt-get install libbpf-tools)",
            spec.binary
        ))
    })?;
    crate::trust::check_with_dir(&binary)
        .map_err(|e| FlameError::Bpf(format!("{}: {}", e.path.display(), e.why)))?;
    let mut extra = vec!["-m".to_owned(), "1".to_owned()];
    if let Target::Pid(pid) = target {
        extra.extend(["-p".to_owned(), pid.to_string()]);
    }
    let mut child = KillOnDrop(
        Command::new(&binary)
            .args(spec.argv(duration, &extra))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| FlameError::Bpf(format!("starting {}: {e}", binary.display())))?,
    );
    let stdout = child.0.stdout.take().expect("piped");
    let stderr = child.0.stderr.take().expect("piped");
    let parser = spec.new_parser();
    let wanted = pids_of(target);
    let out_task = std::thread::spawn(move || read_stacks(stdout, parser, wanted.as_deref()));
    let err_task = std::thread::spawn(move || summarise(stderr));
    let status = wait(&mut child.0, duration, &mut progress)?;
    let (stacks, unparsed) = out_task.join().unwrap_or_default();
    let warnings = err_task.join().unwrap_or_default();
    if !status.is_some_and(|s| s.success()) && stacks.is_empty() {
        let why = warnings
            .first()
            .map(|w| format!(": {}", w.example))
            .unwrap_or_default();
        return Err(FlameError::Bpf(format!("{TOOL} failed{why}")));
    }
    let kernel = KernelNames::load();
    let mut lines: FoldedLines = stacks
        .into_iter()
        .map(|(stack, n)| (like_on_cpu(&stack, &kernel), n))
        .fold(HashMap::new(), |mut m, (s, n)| {
            *m.entry(s).or_default() += n;
            m
        })
        .into_iter()
        .collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(OffCpu {
        lines,
        warnings,
        unparsed,
    })
}

/// Kills the tool if sampling ends early (an error, a panic).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for the tool to print its report and exit (it runs for
/// `duration`), showing progress; kills it 10 s after it should have ended.
fn wait(
    child: &mut Child,
    duration: Duration,
    progress: &mut impl FnMut(Duration),
) -> Result<Option<std::process::ExitStatus>, FlameError> {
    let start = Instant::now();
    let give_up = duration + Duration::from_secs(10);
    let mut shown = None;
    loop {
        let left = duration.saturating_sub(start.elapsed());
        if shown != Some(left.as_secs()) {
            shown = Some(left.as_secs());
            progress(left);
        }
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) if start.elapsed() > give_up => {
                tracing::warn!("{TOOL} did not end {give_up:?} after it started; stopping it");
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(FlameError::Bpf(format!("waiting for {TOOL}: {e}"))),
        }
    }
}

/// Parses the tool's stdout into folded stacks of the wanted processes
/// (without the tracing frames); also counts refused lines.
fn read_stacks(
    mut out: impl Read,
    mut parser: Box<dyn parsers::ToolParser>,
    wanted: Option<&[u32]>,
) -> (HashMap<String, u64>, u64) {
    let mut stacks = HashMap::new();
    let mut unparsed = 0u64;
    let mut records = Vec::new();
    let mut on_line = |line: &[u8], _cut: bool| {
        if parser.feed(line, &mut records).is_err() {
            unparsed += 1;
        }
    };
    let mut split = LineSplitter::new(MAX_LINE);
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = out.read(&mut buf) {
        if n == 0 {
            break;
        }
        split.push(&buf[..n], &mut on_line);
    }
    split.finish(&mut on_line);
    parser.finish(&mut records);
    for r in &records {
        if let Some(s) = r.as_stack() {
            add(&mut stacks, s, wanted);
        }
    }
    (stacks, unparsed)
}

/// Adds one stack (without the tracing frames) when its process is wanted.
fn add(stacks: &mut HashMap<String, u64>, s: &parsers::FoldedStack, wanted: Option<&[u32]>) {
    if let (Some(wanted), Some(pid)) = (wanted, s.pid)
        && !wanted.contains(&pid)
    {
        return;
    }
    let frames: Vec<&str> = s
        .frames()
        .filter(|f| !TRACING_FRAMES.iter().any(|p| f.starts_with(p)))
        .collect();
    *stacks.entry(frames.join(";")).or_default() += s.count;
}

/// Reads stderr to its end; groups lines that differ only in their numbers.
fn summarise(mut err: impl Read) -> Vec<Warning> {
    let mut kinds: HashMap<String, Warning> = HashMap::new();
    let mut on_line = |line: &[u8], _cut: bool| {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let key: String = text
            .chars()
            .map(|c| if c.is_ascii_digit() { 'N' } else { c })
            .collect();
        kinds
            .entry(key)
            .or_insert_with(|| Warning {
                example: text.escape_debug().to_string(),
                count: 0,
            })
            .count += 1;
    };
    let mut split = LineSplitter::new(MAX_LINE);
    let mut buf = vec![0u8; 8 * 1024];
    while let Ok(n) = err.read(&mut buf) {
        if n == 0 {
            break;
        }
        split.push(&buf[..n], &mut on_line);
    }
    split.finish(&mut on_line);
    let mut out: Vec<Warning> = kinds.into_values().collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.example.cmp(&b.example))
    });
    out
}

/// The names of the kernel's functions (/proc/kallsyms), to tell the
/// kernel part of a stack from the user part.
#[derive(Debug, Default)]
pub(crate) struct KernelNames(HashSet<String>);

impl KernelNames {
    /// The running kernel's text symbols; empty when unreadable.
    pub(crate) fn load() -> KernelNames {
        let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        KernelNames(
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split_whitespace();
                    let (_, kind, name) = (f.next()?, f.next()?, f.next()?);
                    matches!(kind, "t" | "T").then(|| name.to_owned())
                })
                .collect(),
        )
    }

    fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

/// A stack as offcputime folds it (`comm;user...;kernel...`, root first)
/// written as the on-CPU graph writes one: the innermost run of kernel
/// functions marked `_[k]`, the rest demangled.
fn like_on_cpu(stack: &str, kernel: &KernelNames) -> String {
    let frames: Vec<&str> = stack.split(';').collect();
    let kernel_from = frames
        .iter()
        .rposition(|f| !kernel.contains(f))
        .map_or(1.min(frames.len()), |i| i + 1)
        .max(1);
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| match i {
            0 => (*f).to_owned(),
            i if i >= kernel_from => format!("{f}_[k]"),
            _ => demangle(f),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// A Rust or C++ symbol name demangled (as blazesym shows it on-CPU), or
/// the name as it is.
fn demangle(name: &str) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return format!("{d:#}");
    }
    if name.starts_with("_Z")
        && let Ok(sym) = cpp_demangle::Symbol::new(name)
        && let Ok(d) = sym.demangle()
    {
        return d;
    }
    name.to_owned()
}

/// The processes of a cgroup target (read now); `None`: every process.
fn pids_of(target: &Target) -> Option<Vec<u32>> {
    match target {
        Target::Cgroup { path, .. } => Some(
            std::fs::read_to_string(path.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect(),
        ),
        Target::Pid(_) | Target::Host => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(pid: u32, text: &str, count: u64) -> parsers::FoldedStack {
        let mut recs = Vec::new();
        let mut p = parsers::builtin("offcputime").unwrap();
        for line in text.lines() {
            p.feed(line.as_bytes(), &mut recs).unwrap();
        }
        p.finish(&mut recs);
        let mut s = recs[0].as_stack().unwrap().clone();
        s.pid = Some(pid);
        s.count = count;
        s
    }

    const REPORT: &str = "    bpf_prog_abc_sched_switch\n    bpf_trace_run4\n    schedule\n    do_nanosleep\n    clock_nanosleep\n    outer\n    main\n    -                app (7)\n        100\n";

    #[test]
    fn tracing_frames_are_dropped_and_unwanted_pids_skipped() {
        let mut m = HashMap::new();
        add(&mut m, &stack(7, REPORT, 100), Some(&[7]));
        add(&mut m, &stack(8, REPORT, 50), Some(&[7]));
        add(&mut m, &stack(7, REPORT, 5), None);
        assert_eq!(m.len(), 1);
        let (k, v) = m.into_iter().next().unwrap();
        assert_eq!(v, 105);
        assert!(k.starts_with("app;main;outer;clock_nanosleep"), "{k}");
        assert!(k.ends_with(";schedule"), "{k}");
    }

    #[test]
    fn the_tools_output_is_parsed_from_a_stream() {
        let (stacks, unparsed) =
            read_stacks(REPORT.as_bytes(), parsers::builtin(TOOL).unwrap(), None);
        assert_eq!(unparsed, 0);
        assert_eq!(stacks.len(), 1, "{stacks:?}");
        assert_eq!(stacks.values().sum::<u64>(), 100);
    }

    #[test]
    fn kernel_frames_are_marked_like_on_cpu() {
        let kernel = KernelNames(
            ["schedule", "do_nanosleep", "__x64_sys_clock_nanosleep"]
                .map(String::from)
                .into(),
        );
        assert_eq!(
            like_on_cpu(
                "app;main;_ZN4core3fmt5write17h0123456789abcdefE;__x64_sys_clock_nanosleep;do_nanosleep;schedule",
                &kernel
            ),
            "app;main;core::fmt::write;__x64_sys_clock_nanosleep_[k];do_nanosleep_[k];schedule_[k]"
        );
        // A kernel thread: every frame after the command is the kernel's.
        assert_eq!(
            like_on_cpu("kworker/0:1;schedule", &kernel),
            "kworker/0:1;schedule_[k]"
        );
        assert_eq!(like_on_cpu("app;main", &kernel), "app;main");
        assert_eq!(like_on_cpu("app", &kernel), "app");
    }

    #[test]
    fn warnings_are_grouped_not_repeated() {
        let err = "libbpf: failed to find stack 12\nlibbpf: failed to find stack 13\nWARN: something else\n";
        let w = summarise(err.as_bytes());
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].count, 2);
        assert_eq!(w[0].example, "libbpf: failed to find stack 12");
        assert_eq!(w[1].count, 1);
    }

    #[test]
    fn kallsyms_has_schedule() {
        let k = KernelNames::load();
        // As root (CI, the kernel tests) kallsyms lists names; elsewhere it may
        // be empty, which only means no frame is marked.
        if !k.0.is_empty() {
            assert!(k.contains("schedule"));
        }
    }
}
