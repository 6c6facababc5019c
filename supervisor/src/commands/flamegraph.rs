//! `eunomia flamegraph`: samples a process, a cgroup/container or the host,
//! and writes an SVG flame graph (or folded stacks) with a summary.

use std::{
    fs::File,
    io::{BufWriter, IsTerminal as _, Write as _},
    time::Duration,
};

use anyhow::Context as _;

use crate::{
    BadInput,
    cli::FlamegraphArgs,
    flamegraph::{
        FlameError, Target, folded, offcpu, render,
        sampler::{self, SampleOptions},
        symbolize::Symbolizer,
    },
};

/// Runs the command.
pub fn flamegraph(args: FlamegraphArgs) -> anyhow::Result<()> {
    let target = target_of(&args).map_err(|e| BadInput(e.to_string()))?;
    if args.off_cpu {
        return off_cpu(&args, &target);
    }
    let mut symbolizer = Symbolizer::new();
    if let Target::Pid(pid) = target {
        symbolizer.remember_process(pid);
    }
    let opts = SampleOptions {
        freq: args.freq,
        duration: args.duration,
        user_only: args.user_only,
    };
    let what = target.describe();
    let profile = sampler::sample(&target, &opts, |left| show_progress(&what, left))?;
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
    let lines = folded::fold(&profile, &mut symbolizer);
    write_output(&args, &target, &lines, &profile)?;
    print_summary(&args, &lines, "samples");
    Ok(())
}

/// Off-CPU: where the target blocks, from the supervised offcputime tool.
fn off_cpu(args: &FlamegraphArgs, target: &Target) -> anyhow::Result<()> {
    let what = target.describe();
    let lines = offcpu::sample(target, args.duration, |left| show_progress(&what, left))?;
    clear_progress();
    if lines.is_empty() {
        return Err(
            FlameError::Empty(format!("{what} did not block during {:?}", args.duration)).into(),
        );
    }
    let title = format!(
        "eunomia off-CPU: {what} — {:.0}s (microseconds blocked)",
        args.duration.as_secs_f64()
    );
    write_lines(args, &lines, &title, "us")?;
    print_summary(args, &lines, "microseconds blocked");
    Ok(())
}

/// The target the flags name; the host when none is given.
fn target_of(args: &FlamegraphArgs) -> Result<Target, FlameError> {
    match (&args.pid, &args.cgroup, &args.container) {
        (Some(pid), _, _) => Target::pid(*pid),
        (_, Some(path), _) => Target::cgroup(path),
        (_, _, Some(id)) => Target::container(id),
        _ => Ok(Target::Host),
    }
}

fn write_output(
    args: &FlamegraphArgs,
    target: &Target,
    lines: &folded::FoldedLines,
    profile: &sampler::RawProfile,
) -> anyhow::Result<()> {
    let title = format!(
        "eunomia on-CPU: {} — {:.0}s at {} Hz",
        target.describe(),
        profile.elapsed.as_secs_f64(),
        args.freq
    );
    write_lines(args, lines, &title, "samples")
}

/// Writes folded text (`--folded`) or the SVG to the output file.
fn write_lines(
    args: &FlamegraphArgs,
    lines: &folded::FoldedLines,
    title: &str,
    count_name: &str,
) -> anyhow::Result<()> {
    let file = File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut out = BufWriter::new(file);
    if args.folded {
        out.write_all(folded::to_text(lines).as_bytes())?;
    } else {
        render::svg(lines, title, count_name, &mut out)?;
    }
    out.flush()
        .with_context(|| format!("writing {}", args.output.display()))
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
