//! Off-CPU stacks: runs the manifest's `offcputime` tool through the tool
//! runner for the sampling duration and collects the folded stacks its
//! parser makes (time blocked, in microseconds, per stack).

use std::{collections::HashMap, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{FlameError, Target, folded::FoldedLines};
use crate::{
    context::AgentContext,
    pipeline::{self, Message},
    tools::{Manifest, RunnerOptions, Supervisor, ToolsConfig},
};

/// The manifest entry used.
const TOOL: &str = "offcputime";

/// Frames of the tracing machinery itself, at the leaf of every stack.
const TRACING_FRAMES: &[&str] = &["bpf_prog_", "bpf_trace_run", "__traceiter_"];

/// Blocked time per folded stack of `target` over `duration`.
pub fn sample(
    target: &Target,
    duration: Duration,
    progress: impl FnMut(Duration),
) -> Result<FoldedLines, FlameError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| FlameError::Bpf(format!("async runtime: {e}")))?
        .block_on(collect(target, duration, progress))
}

async fn collect(
    target: &Target,
    duration: Duration,
    mut progress: impl FnMut(Duration),
) -> Result<FoldedLines, FlameError> {
    let config = ToolsConfig::default();
    let manifest = Manifest::load(&config).map_err(|e| FlameError::Bpf(e.to_string()))?;
    let (tx, mut rx) = pipeline::channel(65_536);
    let shutdown = CancellationToken::new();
    let ctx = AgentContext::new(tx, shutdown.clone());
    let supervisor = Supervisor::new(manifest, config.clone(), &ctx);
    drop(ctx);
    let mut extra = vec!["-m".to_owned(), "1".to_owned()];
    if let Target::Pid(pid) = target {
        extra.extend(["-p".to_owned(), pid.to_string()]);
    }
    let opts = RunnerOptions {
        interval: duration,
        extra_args: extra.clone(),
        fail_fast: true,
        ..RunnerOptions::from_config(&config)
    };
    let handle = supervisor
        .start(TOOL, &extra, opts, false)
        .map_err(|e| FlameError::Bpf(e.to_string()))?;
    let wanted = pids_of(target);
    let mut stacks: HashMap<String, u64> = HashMap::new();
    let start = tokio::time::Instant::now();
    let give_up = start + duration + Duration::from_secs(10);
    let mut last_stack: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Message::Record(r)) => {
                    if let Some(s) = r.record.as_stack() {
                        add(&mut stacks, s, wanted.as_deref());
                        last_stack = Some(tokio::time::Instant::now());
                    }
                }
                Some(_) => {}
                None => break,
            },
            _ = tick.tick() => {
                let now = tokio::time::Instant::now();
                progress((start + duration).saturating_duration_since(now));
                // offcputime prints its whole report when the duration ends:
                // once it has arrived and gone quiet, the run is over.
                let report_done = last_stack.is_some_and(|t| now - t > Duration::from_millis(300));
                if report_done || now >= give_up {
                    break;
                }
            }
        }
    }
    shutdown.cancel();
    let _ = handle.task.await;
    while let Ok(Message::Record(r)) = rx.try_recv() {
        if let Some(s) = r.record.as_stack() {
            add(&mut stacks, s, wanted.as_deref());
        }
    }
    let mut lines: FoldedLines = stacks.into_iter().collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(lines)
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

    #[test]
    fn tracing_frames_are_dropped_and_unwanted_pids_skipped() {
        let text = "    bpf_prog_abc_sched_switch\n    bpf_trace_run4\n    schedule\n    do_nanosleep\n    clock_nanosleep\n    outer\n    main\n    -                app (7)\n        100\n";
        let mut m = HashMap::new();
        add(&mut m, &stack(7, text, 100), Some(&[7]));
        add(&mut m, &stack(8, text, 50), Some(&[7]));
        add(&mut m, &stack(7, text, 5), None);
        assert_eq!(m.len(), 1);
        let (k, v) = m.into_iter().next().unwrap();
        assert_eq!(v, 105);
        assert!(k.starts_with("app;main;outer;clock_nanosleep"), "{k}");
        assert!(k.ends_with(";schedule"), "{k}");
    }
}
