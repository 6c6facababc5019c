//! The runner: spawns one tool, parses its stdout line by line as it
//! arrives, logs its stderr, restarts it with capped exponential backoff when
//! it exits unexpectedly, marks it failed when it keeps dying right after
//! start, and stops it with its manifest signal (then SIGKILL after a timeout).
//!
//! The tool's stdout is a pseudo-terminal in raw mode, not a pipe: the
//! libbpf-tools print with stdio, which buffers 4 KiB blocks on a pipe and
//! would hold events back for seconds; on a terminal stdio flushes each line.
//! The pty is always drained: records the pipeline cannot take are dropped
//! and counted, so a slow consumer neither blocks the tool nor grows memory.
//!
//! No child outlives eunomia: each runs in its own process group with
//! `PR_SET_PDEATHSIG = SIGKILL`, and is killed when its runner is dropped.

use std::{
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    path::PathBuf,
    process::Stdio,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::{io::unix::AsyncFd, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{
    manifest::ToolSpec,
    output::Output,
    stats::{ToolState, ToolStats},
};
use crate::{context::PidLookup, pipeline::PipelineTx};

/// Longest line passed to a parser; longer lines are cut (and counted).
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// A run at least this long resets the restart backoff.
const STABLE_RUN: Duration = Duration::from_secs(60);

/// How the runner supervises a tool.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// The printing interval for periodic tools.
    pub(crate) interval: Duration,
    /// Arguments appended after the manifest's.
    pub(crate) extra_args: Vec<String>,
    /// First restart delay.
    pub(crate) restart_backoff: Duration,
    /// Longest restart delay.
    pub(crate) restart_backoff_max: Duration,
    /// A run shorter than this is a failed start.
    pub(crate) min_uptime: Duration,
    /// Failed starts in a row before the tool is marked failed.
    pub(crate) max_failed_starts: u32,
    /// Mark the tool failed at once when its first run exits without
    /// printing anything (it could not attach): for the foreground, where
    /// retrying only delays the error.
    pub(crate) fail_fast: bool,
}

impl RunnerOptions {
    /// Options from the `[tools]` configuration.
    pub fn from_config(c: &super::ToolsConfig) -> RunnerOptions {
        RunnerOptions {
            interval: c.interval,
            extra_args: Vec::new(),
            restart_backoff: c.restart_backoff,
            restart_backoff_max: c.restart_backoff_max,
            min_uptime: c.min_uptime,
            max_failed_starts: c.max_failed_starts,
            fail_fast: false,
        }
    }
}

/// A supervised tool: its counters and its task. Cancel the token given to
/// [`spawn`] to stop it, then await `task`.
#[derive(Debug)]
pub struct ToolHandle {
    /// Counters and state.
    pub stats: Arc<ToolStats>,
    /// Ends when the tool is stopped or marked failed.
    pub task: JoinHandle<()>,
}

/// Where a tool's records go: the pipeline, checked against the kernel's
/// record of processes.
#[derive(Clone)]
pub(crate) struct Outlet {
    /// The pipeline.
    pub(crate) tx: PipelineTx,
    /// The kernel's pid map (else `/proc`), to confirm records.
    pub(crate) pids: PidLookup,
}

/// Starts supervising `spec` (binary at `binary`) with its counters `stats`:
/// records go to `outlet` until `stop` is cancelled.
pub(crate) fn spawn(
    spec: ToolSpec,
    binary: PathBuf,
    opts: RunnerOptions,
    outlet: Outlet,
    stop: CancellationToken,
    stats: Arc<ToolStats>,
) -> ToolHandle {
    let task = tokio::spawn(supervise(spec, binary, opts, outlet, stop, stats.clone()));
    ToolHandle { stats, task }
}

async fn supervise(
    spec: ToolSpec,
    binary: PathBuf,
    opts: RunnerOptions,
    outlet: Outlet,
    stop: CancellationToken,
    stats: Arc<ToolStats>,
) {
    let argv = spec.argv(opts.interval, &opts.extra_args);
    let mut failed_starts = 0u32;
    let mut consecutive_restarts = 0u32;
    let mut runs = 0u32;
    loop {
        runs = runs.saturating_add(1);
        let lines_before = stats.lines.load(Ordering::Relaxed);
        stats.set_state(ToolState::Starting);
        let started = Instant::now();
        let outcome = run_once(&spec, &binary, &argv, &outlet, &stop, &stats).await;
        let uptime = started.elapsed();
        let (reason, tail) = match outcome {
            Outcome::Stopped => {
                stats.set_state(ToolState::Stopped);
                tracing::info!(tool = %spec.name, "stopped");
                return;
            }
            Outcome::SpawnFailed(e) => (format!("cannot start {}: {e}", binary.display()), vec![]),
            Outcome::Exited {
                clean: true,
                status,
                ..
            } if spec.rerun && uptime >= opts.min_uptime => {
                // One report done (its duration was the interval): next run.
                tracing::debug!(tool = %spec.name, "{status}: report done, running again");
                failed_starts = 0;
                continue;
            }
            Outcome::Exited { status, stderr, .. } => (status, stderr),
        };
        let silent = stats.lines.load(Ordering::Relaxed) == lines_before;
        if opts.fail_fast && runs == 1 && silent {
            failed_starts = opts.max_failed_starts;
        } else if uptime < opts.min_uptime {
            failed_starts += 1;
        } else {
            failed_starts = 0;
        }
        if uptime >= STABLE_RUN {
            consecutive_restarts = 0;
        }
        if failed_starts >= opts.max_failed_starts {
            let detail = if tail.is_empty() {
                reason.clone()
            } else {
                format!("{reason}; stderr:\n{}", tail.join("\n"))
            };
            tracing::error!(
                tool = %spec.name,
                failed_starts,
                "{reason} right after start; not restarting{}",
                if tail.is_empty() { String::new() } else { format!("; last stderr lines:\n  {}", tail.join("\n  ")) }
            );
            stats.set_state(ToolState::Failed(detail));
            return;
        }
        let delay = backoff(&opts, consecutive_restarts);
        tracing::warn!(
            tool = %spec.name,
            "{reason} after {:.1}s; restarting in {:?}",
            uptime.as_secs_f64(),
            delay
        );
        stats.set_state(ToolState::Restarting);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => {
                stats.set_state(ToolState::Stopped);
                return;
            }
        }
        consecutive_restarts = consecutive_restarts.saturating_add(1);
        stats.restarts.fetch_add(1, Ordering::Relaxed);
    }
}

/// `restart_backoff * 2^n`, at most `restart_backoff_max`.
pub(crate) fn backoff(opts: &RunnerOptions, n: u32) -> Duration {
    opts.restart_backoff
        .saturating_mul(1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX))
        .min(opts.restart_backoff_max)
}

enum Outcome {
    /// Stopped because `stop` was cancelled.
    Stopped,
    /// Could not be spawned.
    SpawnFailed(std::io::Error),
    /// Exited on its own.
    Exited {
        /// With status 0.
        clean: bool,
        /// How, in words.
        status: String,
        /// Its last stderr lines.
        stderr: Vec<String>,
    },
}

async fn run_once(
    spec: &ToolSpec,
    binary: &std::path::Path,
    argv: &[String],
    outlet: &Outlet,
    stop: &CancellationToken,
    stats: &Arc<ToolStats>,
) -> Outcome {
    if stop.is_cancelled() {
        return Outcome::Stopped;
    }
    let (master, slave) = match open_raw_pty() {
        Ok(p) => p,
        Err(e) => return Outcome::SpawnFailed(e),
    };
    let mut cmd = tokio::process::Command::new(binary);
    cmd.args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died between fork and prctl: do not run orphaned.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    // Close our copy of the pty's slave side, or reading the master never
    // sees the end of the tool's output.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return Outcome::SpawnFailed(e),
    };
    let pid = child.id().unwrap_or(0);
    stats.starts.fetch_add(1, Ordering::Relaxed);
    stats.set_state(ToolState::Running(pid));
    tracing::info!(tool = %spec.name, pid, argv = ?argv, "started {}", binary.display());

    let tail: super::stderr::Tail = Arc::default();
    let stderr_task = child.stderr.take().map(|err| {
        tokio::spawn(super::stderr::read(
            err,
            spec.name.clone(),
            stats.clone(),
            tail.clone(),
        ))
    });

    let mut out = Output::new(spec, &outlet.tx, stats, &outlet.pids);
    // SAFETY: `master` is an open descriptor owned by the AsyncFd from here
    // on; nothing else closes or replaces it.
    let stopped = match unsafe { AsyncFd::register(master) } {
        Ok(fd) => read_until_end(&fd, &mut out, spec, pid, stop, &mut child).await,
        Err(e) => {
            tracing::error!(tool = %spec.name, "cannot poll the tool's output: {e}");
            let _ = child.start_kill();
            stop.is_cancelled()
        }
    };
    out.finish();

    let status = if stopped {
        // Output ended after the stop signal; give the process what is left
        // of its stop timeout to exit.
        match tokio::time::timeout(spec.stop_timeout, child.wait()).await {
            Ok(s) => s.ok(),
            Err(_) => {
                kill_group(pid, Signal::SIGKILL);
                let _ = child.start_kill();
                child.wait().await.ok()
            }
        }
    } else {
        child.wait().await.ok()
    };
    if let Some(task) = stderr_task {
        // The pipe closes with the process (unless a grandchild keeps it).
        let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
    }
    if stopped {
        return Outcome::Stopped;
    }
    let clean = status.is_some_and(|s| s.success());
    let status = match status {
        Some(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(sig)) => format!(
                "was killed by {}",
                Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.to_string())
            ),
            _ => "exited".into(),
        },
        None => "exited (status unknown)".into(),
    };
    let stderr = crate::sync::lock(&tail).iter().cloned().collect();
    Outcome::Exited {
        clean,
        status,
        stderr,
    }
}

/// Reads the pty until the tool's output ends. On `stop`, sends the stop
/// signal and keeps reading the final output until it ends or the stop
/// timeout passes (then SIGKILL). Returns whether it was stopped.
async fn read_until_end(
    fd: &AsyncFd<OwnedFd>,
    out: &mut Output<'_>,
    spec: &ToolSpec,
    pid: u32,
    stop: &CancellationToken,
    child: &mut tokio::process::Child,
) -> bool {
    let mut buf = vec![0u8; 16 * 1024];
    let mut stopping: Option<tokio::time::Instant> = None;
    loop {
        let deadline = async {
            match stopping {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = read_some(fd, &mut buf) => match r {
                Ok(0) => return stopping.is_some(),
                Ok(n) => out.bytes(&buf[..n]),
                Err(e) => {
                    tracing::debug!(tool = %spec.name, "output ended: {e}");
                    return stopping.is_some();
                }
            },
            // a record that may continue on the next line waits that long
            _ = tokio::time::sleep(out.hold_for()), if out.holding() => out.release(),
            _ = stop.cancelled(), if stopping.is_none() => {
                tracing::debug!(tool = %spec.name, signal = %spec.stop_signal, "stopping");
                kill_group(pid, spec.stop_signal);
                stopping = Some(tokio::time::Instant::now() + spec.stop_timeout);
            }
            _ = deadline => {
                tracing::warn!(tool = %spec.name, "did not stop within {:?}; killing it", spec.stop_timeout);
                kill_group(pid, Signal::SIGKILL);
                let _ = child.start_kill();
                return true;
            }
        }
    }
}

/// One read from the pty master; `Ok(0)` at the end (EIO once the slave
/// side is closed by every process).
async fn read_some(fd: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        let mut guard = fd.readable().await?;
        let r = guard.try_io(|inner| {
            // SAFETY: buf is valid for writes of buf.len() bytes.
            let n = unsafe {
                libc::read(
                    inner.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match r {
            Ok(Ok(n)) => return Ok(n),
            Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
}

fn kill_group(pid: u32, sig: Signal) {
    if pid == 0 {
        return;
    }
    // The child leads its own process group (process_group(0)).
    let _ = nix::sys::signal::killpg(Pid::from_raw(pid as i32), sig);
}

/// A pty pair in raw mode (no `\r\n` translation, no echo); the master is
/// non-blocking and close-on-exec.
fn open_raw_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    // SAFETY: openpty writes two descriptors; the other arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openpty returned two open descriptors that we now own.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // SAFETY: termios is plain data; the calls get valid descriptors/pointers.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(slave.as_raw_fd(), &mut t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        for fd in [master.as_raw_fd(), slave.as_raw_fd()] {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        if libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((master, slave))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_one_set_per_tool_and_exported() {
        let name: Arc<str> = Arc::from("stats-test-tool");
        let registry = crate::selfmetrics::Registry::new();
        let book = super::super::stats::StatsBook::new(registry.clone());
        let a = book.for_tool(&name);
        a.records.fetch_add(5, Ordering::Relaxed);
        let b = book.for_tool(&name);
        assert!(Arc::ptr_eq(&a, &b));
        let exported = registry
            .read()
            .into_iter()
            .filter(|p| p.name == "eunomia_tool_records_total")
            .filter(|p| p.labels.iter().any(|(_, v)| v == "stats-test-tool"))
            .count();
        assert_eq!(exported, 1);
    }

    fn opts() -> RunnerOptions {
        RunnerOptions {
            interval: Duration::from_secs(1),
            extra_args: vec![],
            restart_backoff: Duration::from_millis(500),
            restart_backoff_max: Duration::from_secs(4),
            min_uptime: Duration::from_secs(2),
            max_failed_starts: 3,
            fail_fast: false,
        }
    }

    /// A tool printing as fast as it can into a pipeline nobody reads: it
    /// is never blocked, records beyond the queue are dropped and counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pipeline_drops_and_counts_without_blocking_the_tool() {
        let text = r#"
[[tool]]
name = "flood"
description = "prints numbered lines as fast as it can, then exits"
binary = "/bin/sh"
args = ["-c", "i=0; while [ $i -lt 20000 ]; do echo \"$i x\"; i=$((i+1)); done"]
output = "events"
[tool.format]
format = "columns"
columns = [{ name = "n", type = "int" }, { name = "proc.comm", type = "str" }]
"#;
        let m = crate::tools::Manifest::parse(text, "t.toml").unwrap();
        let spec = m.get("flood").unwrap().clone();
        let (tx, rx) = crate::pipeline::channel(16);
        let stop = CancellationToken::new();
        let o = RunnerOptions {
            max_failed_starts: 1,
            min_uptime: Duration::from_millis(1),
            ..opts()
        };
        let stats = Arc::new(ToolStats::new(spec.name.clone()));
        let outlet = Outlet {
            tx,
            pids: PidLookup::default(),
        };
        let h = spawn(spec, "/bin/sh".into(), o, outlet, stop.clone(), stats);
        // The tool exits after its 20000 lines; wait for that, then stop.
        let deadline = Instant::now() + Duration::from_secs(30);
        while h.stats.lines.load(Ordering::Relaxed) < 20000 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
        h.task.await.unwrap();
        let s = &h.stats;
        assert_eq!(s.lines.load(Ordering::Relaxed), 20000);
        assert_eq!(s.records.load(Ordering::Relaxed), 20000);
        assert_eq!(s.dropped.load(Ordering::Relaxed), 20000 - 16);
        assert_eq!(s.parse_errors.load(Ordering::Relaxed), 0);
        assert_eq!(rx.len(), 16);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let o = opts();
        assert_eq!(backoff(&o, 0), Duration::from_millis(500));
        assert_eq!(backoff(&o, 1), Duration::from_secs(1));
        assert_eq!(backoff(&o, 3), Duration::from_secs(4));
        assert_eq!(backoff(&o, 40), Duration::from_secs(4));
    }
}
