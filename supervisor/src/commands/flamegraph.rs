//! `eunomia flamegraph`: samples a process, a cgroup/container or the host,
//! and writes an SVG flame graph (or folded stacks) with a summary; with
//! `--diff`, a differential graph against an earlier recording. Everything
//! the user named (target, output file, earlier recording) is checked
//! before sampling starts.

use std::{
    fs::File,
    io::{BufWriter, IsTerminal as _, Write as _},
    path::Path,
    time::Duration,
};

use anyhow::Context as _;

use crate::{
    BadInput,
    cli::FlamegraphArgs,
    config::Config,
    flamegraph::{
        FlameError, Target, diff, folded, offcpu, render,
        sampler::{self, SampleOptions},
        symbolize::Symbolizer,
    },
};

/// Runs the command.
pub(crate) fn flamegraph(args: FlamegraphArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref()).map_err(|e| BadInput(e.to_string()))?;
    let target = target_of(&args, &config).map_err(|e| BadInput(e.to_string()))?;
    check_writable(&args.output).map_err(|e| BadInput(e.to_string()))?;
    let before = match &args.diff {
        Some(path) => Some(diff::read_before(path).map_err(|e| BadInput(e.to_string()))?),
        None => None,
    };
    let (lines, title, unit) = if args.off_cpu {
        off_cpu(&args, &config, &target)?
    } else {
        on_cpu(&args, &target)?
    };
    match &before {
        Some(before) => write_diff(&args, before, &lines, &title, unit)?,
        None => {
            write_lines(&args, &lines, &title, unit)?;
            print_summary(&args, &lines, unit);
        }
    }
    Ok(())
}

/// On-CPU: the stacks the profiler sampled, symbolized and folded.
fn on_cpu(
    args: &FlamegraphArgs,
    target: &Target,
) -> anyhow::Result<(folded::FoldedLines, String, &'static str)> {
    let mut symbolizer = Symbolizer::new();
    if let Target::Pid(pid) = target {
        symbolizer.remember_process(*pid);
    }
    let opts = SampleOptions {
        freq: args.freq,
        duration: args.duration,
        user_only: args.user_only,
        unwind: args.unwind,
    };
    let what = target.describe();
    let profile = sampler::sample(target, &opts, |left| show_progress(&what, left))?;
    clear_progress();
    if profile.target_exited {
        eprintln!("eunomia: {what} went away during sampling; rendering what was sampled");
    }
    if profile.total() == 0 {
        return Err(FlameError::Empty(format!(
            "{what} did not run on a CPU during {:?} (is it idle? try --off-cpu)",
            profile.elapsed
        ))
        .into());
    }
    if profile.lost > 0 {
        eprintln!(
            "eunomia: {} stack samples lost (ring buffer full; try a lower --freq)",
            profile.lost
        );
    }
    let lines = folded::fold(&profile, &mut symbolizer);
    if args.cost {
        print_cost(&profile);
    }
    let title = format!(
        "eunomia on-CPU: {what} — {:.0}s at {} Hz",
        profile.elapsed.as_secs_f64(),
        args.freq
    );
    Ok((lines, title, "samples"))
}

/// Off-CPU: where the target blocks, from one run of offcputime; what the
/// tool wrote on stderr summarised in a few lines.
fn off_cpu(
    args: &FlamegraphArgs,
    config: &Config,
    target: &Target,
) -> anyhow::Result<(folded::FoldedLines, String, &'static str)> {
    let what = target.describe();
    let run = offcpu::sample(target, args.duration, &config.tools, |left| {
        show_progress(&what, left)
    })?;
    clear_progress();
    print_warnings(&run);
    if run.lines.is_empty() {
        return Err(
            FlameError::Empty(format!("{what} did not block during {:?}", args.duration)).into(),
        );
    }
    let title = format!(
        "eunomia off-CPU: {what} — {:.0}s (microseconds blocked)",
        args.duration.as_secs_f64()
    );
    Ok((run.lines, title, "microseconds blocked"))
}

/// offcputime's stderr, one line per kind of message.
fn print_warnings(run: &offcpu::OffCpu) {
    const SHOWN: usize = 3;
    let total: u64 = run.warnings.iter().map(|w| w.count).sum();
    if total > 0 {
        let kinds: Vec<String> = run
            .warnings
            .iter()
            .take(SHOWN)
            .map(|w| format!("{}x {}", w.count, w.example))
            .collect();
        let more = run.warnings.len().saturating_sub(SHOWN);
        let more = if more > 0 {
            format!("; {more} more kinds")
        } else {
            String::new()
        };
        eprintln!(
            "eunomia: offcputime wrote {total} stderr lines: {}{more}",
            kinds.join("; ")
        );
    }
    if run.unparsed > 0 {
        eprintln!(
            "eunomia: {} offcputime output lines were not understood",
            run.unparsed
        );
    }
}

/// The target the flags name; the host when none is given.
fn target_of(args: &FlamegraphArgs, config: &Config) -> Result<Target, FlameError> {
    match (&args.pid, &args.cgroup, &args.container) {
        (Some(pid), _, _) => Target::pid(*pid),
        (_, Some(path), _) => Target::cgroup(path),
        (_, _, Some(name)) => Target::container(name, &config.enrich),
        _ => Ok(Target::Host),
    }
}

/// Fails now, not after sampling, when `path` cannot be written: a missing
/// directory, a directory, a read-only file system, no permission. A file
/// made only to check is removed again.
fn check_writable(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!("cannot write {}: it is a directory", path.display());
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Writes folded text (`--folded`) or the SVG to the output file.
fn write_lines(
    args: &FlamegraphArgs,
    lines: &folded::FoldedLines,
    title: &str,
    count_name: &str,
) -> anyhow::Result<()> {
    let text: Vec<String> = lines.iter().map(|(s, n)| format!("{s} {n}")).collect();
    write_text(args, &text, title, count_name)
}

/// Writes folded text lines (`--folded`) or their SVG to the output file.
fn write_text(
    args: &FlamegraphArgs,
    text: &[String],
    title: &str,
    count_name: &str,
) -> anyhow::Result<()> {
    let file = File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut out = BufWriter::new(file);
    if args.folded {
        for line in text {
            writeln!(out, "{line}")?;
        }
    } else {
        render::svg_of_text(text, title, count_name, &mut out)?;
    }
    out.flush()
        .with_context(|| format!("writing {}", args.output.display()))
}

/// The differential graph (or, with `--folded`, its `stack before after`
/// lines) and what changed most.
fn write_diff(
    args: &FlamegraphArgs,
    before: &folded::FoldedLines,
    after: &folded::FoldedLines,
    title: &str,
    unit: &str,
) -> anyhow::Result<()> {
    let text = diff::differential(before, after).context("differential folding")?;
    let before_path = args.diff.as_deref().unwrap_or(Path::new("?"));
    let title = format!(
        "{title}, compared with {} (red: grew, blue: shrank)",
        before_path.display()
    );
    write_text(args, &text, &title, unit)?;
    let changes: Vec<String> = diff::biggest_changes(before, after, 5)
        .iter()
        .map(|(f, d)| format!("{f} {d:+.1} pts"))
        .collect();
    println!(
        "wrote {}: {} {unit} now, {} before ({}); changed most: {}",
        args.output.display(),
        after.iter().map(|(_, n)| n).sum::<u64>(),
        before.iter().map(|(_, n)| n).sum::<u64>(),
        before_path.display(),
        if changes.is_empty() {
            "nothing".to_owned()
        } else {
            changes.join(", ")
        }
    );
    Ok(())
}

fn print_summary(args: &FlamegraphArgs, lines: &folded::FoldedLines, unit: &str) {
    let s = folded::summarize(lines, 5);
    let top: Vec<String> = s
        .top_self
        .iter()
        .map(|(f, n)| format!("{f} {:.1}%", 100.0 * *n as f64 / s.samples as f64))
        .collect();
    println!(
        "wrote {}: {} {unit}, {} distinct stacks; top functions: {}",
        args.output.display(),
        s.samples,
        s.distinct,
        top.join(", ")
    );
}

/// What sampling cost, per sample: in the kernel (per sample taken, and per
/// run of the program, most of which find another process on the CPU),
/// unwinding (mean, and median: the steady cost), stack bytes copied.
fn print_cost(p: &sampler::RawProfile) {
    let per = |d: Duration, n: u64| {
        if n == 0 || d.is_zero() {
            "n/a".to_owned()
        } else {
            format!("{:.0}", d.as_nanos() as f64 / n as f64)
        }
    };
    let (ktime, kruns) = p.kernel;
    let median = p
        .unwind
        .median()
        .map_or("n/a".to_owned(), |d| d.as_nanos().to_string());
    println!(
        "cost: unwind={} kernel_ns_per_sample={} kernel_ns_per_run={} kernel_runs={kruns} unwind_ns_per_sample={} unwind_median_ns={median} stack_bytes_per_sample={} samples={} lost={}",
        if p.dwarf { "dwarf" } else { "fp" },
        per(ktime, p.total()),
        per(ktime, kruns),
        per(p.unwind.time, p.unwind.samples),
        p.unwind
            .stack_bytes
            .checked_div(p.unwind.samples)
            .unwrap_or(0),
        p.total(),
        p.lost
    );
}

/// A countdown on the terminal; nothing when stderr is not one.
fn show_progress(what: &str, left: Duration) {
    if std::io::stderr().is_terminal() {
        eprint!("\rsampling {what}: {:>3}s left ", left.as_secs());
    }
}

fn clear_progress() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
}
