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
    collections::VecDeque,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use nix::{sys::signal::Signal, unistd::Pid};
use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader, unix::AsyncFd},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::{
    manifest::ToolSpec,
    pa,
    verify::{Checker, KernelFacts, Reject, Verdict},
};
use crate::pipeline::{Message, PipelineTx, ToolRecord};

/// Longest line passed to a parser; longer lines are cut (and counted).
pub const MAX_LINE: usize = 64 * 1024;
/// How many stderr lines are kept for failure messages.
pub const STDERR_TAIL: usize = 20;
/// A run at least this long resets the restart backoff.
const STABLE_RUN: Duration = Duration::from_secs(60);

/// How the runner supervises a tool.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// The printing interval for periodic tools.
    pub interval: Duration,
    /// Arguments appended after the manifest's.
    pub extra_args: Vec<String>,
    /// First restart delay.
    pub restart_backoff: Duration,
    /// Longest restart delay.
    pub restart_backoff_max: Duration,
    /// A run shorter than this is a failed start.
    pub min_uptime: Duration,
    /// Failed starts in a row before the tool is marked failed.
    pub max_failed_starts: u32,
    /// Mark the tool failed at once when its first run exits without
    /// printing anything (it could not attach): for the foreground, where
    /// retrying only delays the error.
    pub fail_fast: bool,
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

/// Where a supervised tool is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum ToolState {
    /// Being spawned.
    Starting,
    /// Running with this pid.
    Running(u32),
    /// Exited; waiting for the backoff before the next start.
    Restarting,
    /// Given up on, with the reason (its last stderr lines).
    Failed(String),
    /// Stopped on request.
    Stopped,
}

/// Per-tool counters, shared with the metrics and the control API.
#[derive(Debug)]
pub struct ToolStats {
    /// The tool's manifest name.
    pub tool: Arc<str>,
    /// Lines read from stdout.
    pub lines: AtomicU64,
    /// Records the parser produced.
    pub records: AtomicU64,
    /// Lines the parser could not parse (skipped).
    pub parse_errors: AtomicU64,
    /// Parsed records the kernel did not confirm, per [`Reject`] reason.
    pub rejected: [AtomicU64; Reject::ALL.len()],
    /// Lines that continued a record's text (a newline inside a string).
    pub continued_lines: AtomicU64,
    /// Lines longer than [`MAX_LINE`] (cut).
    pub truncated_lines: AtomicU64,
    /// Records dropped because the pipeline was full.
    pub dropped: AtomicU64,
    /// Times the tool was started.
    pub starts: AtomicU64,
    /// Times the tool was restarted after an unexpected exit.
    pub restarts: AtomicU64,
    /// Events the tool itself reported lost (`Lost N events` on stderr:
    /// its perf buffer overflowed before it could read them).
    pub lost_events: AtomicU64,
    state: Mutex<ToolState>,
}

impl ToolStats {
    fn new(tool: Arc<str>) -> ToolStats {
        ToolStats {
            tool,
            lines: AtomicU64::new(0),
            records: AtomicU64::new(0),
            parse_errors: AtomicU64::new(0),
            rejected: Default::default(),
            continued_lines: AtomicU64::new(0),
            truncated_lines: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            starts: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            lost_events: AtomicU64::new(0),
            state: Mutex::new(ToolState::Starting),
        }
    }

    /// The counters of tool `name`: one set per name for the agent's life,
    /// so a tool stopped and started again keeps counting (monotonic
    /// counters) and is exported once as self-metrics.
    pub fn for_tool(name: &Arc<str>) -> Arc<ToolStats> {
        static ALL: Mutex<Vec<Arc<ToolStats>>> = Mutex::new(Vec::new());
        let mut all = ALL.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = all.iter().find(|s| s.tool == *name) {
            return s.clone();
        }
        let stats = Arc::new(ToolStats::new(name.clone()));
        stats.register(crate::selfmetrics::global());
        all.push(stats.clone());
        stats
    }

    /// Exports the counters as `eunomia_tool_*_total{tool}` self-metrics.
    fn register(self: &Arc<Self>, registry: &crate::selfmetrics::Registry) {
        type Field = fn(&ToolStats) -> &AtomicU64;
        const COUNTERS: [(&str, &str, Field); 7] = [
            (
                "eunomia_tool_lines_total",
                "Lines read from a tool's stdout.",
                |s| &s.lines,
            ),
            (
                "eunomia_tool_records_total",
                "Records parsed from a tool's output.",
                |s| &s.records,
            ),
            (
                "eunomia_tool_parse_errors_total",
                "Output lines that did not parse (skipped).",
                |s| &s.parse_errors,
            ),
            (
                "eunomia_tool_dropped_total",
                "Records dropped because the pipeline was full.",
                |s| &s.dropped,
            ),
            (
                "eunomia_tool_lost_events_total",
                "Events a tool reported lost (its perf buffer overflowed).",
                |s| &s.lost_events,
            ),
            (
                "eunomia_tool_starts_total",
                "Times a tool was started.",
                |s| &s.starts,
            ),
            (
                "eunomia_tool_restarts_total",
                "Times a tool was restarted after it exited unexpectedly.",
                |s| &s.restarts,
            ),
        ];
        let me = self.clone();
        registry.observe_gauge(
            "eunomia_tool_up",
            "1 while a tool runs, 0 when stopped, restarting or given up on.",
            &[("tool", &self.tool)],
            move || f64::from(u8::from(matches!(me.state(), ToolState::Running(_)))),
        );
        let me = self.clone();
        registry.observe_gauge(
            "eunomia_tool_failed",
            "1 when the agent gave up restarting a tool (it kept dying at start).",
            &[("tool", &self.tool)],
            move || f64::from(u8::from(matches!(me.state(), ToolState::Failed(_)))),
        );
        for reason in Reject::ALL {
            let me = self.clone();
            registry.observe_counter(
                "eunomia_tool_rejected_records_total",
                "Records of a tool the kernel did not confirm (pid, comm, uid or exec), dropped.",
                &[("tool", &self.tool), ("reason", reason.as_str())],
                move || me.rejected[reason.index()].load(Ordering::Relaxed),
            );
        }
        let me = self.clone();
        registry.observe_counter(
            "eunomia_tool_continued_lines_total",
            "Output lines that continued the text of the record before them (a newline in a string).",
            &[("tool", &self.tool)],
            move || me.continued_lines.load(Ordering::Relaxed),
        );
        for (name, help, field) in COUNTERS {
            let me = self.clone();
            registry.observe_counter(name, help, &[("tool", &self.tool)], move || {
                field(&me).load(Ordering::Relaxed)
            });
        }
    }

    /// The current state.
    pub fn state(&self) -> ToolState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the tool is starting, running or restarting (not stopped
    /// and not given up on).
    pub fn is_active(&self) -> bool {
        !matches!(self.state(), ToolState::Stopped | ToolState::Failed(_))
    }

    fn set_state(&self, s: ToolState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = s;
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

/// The count of a libbpf-tools `Lost N events on CPU #C!` stderr line.
fn lost_events(line: &str) -> Option<u64> {
    line.trim_start()
        .strip_prefix("Lost ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Starts supervising `spec` (binary at `binary`): records go to `tx` until
/// `stop` is cancelled.
pub fn spawn(
    spec: ToolSpec,
    binary: PathBuf,
    opts: RunnerOptions,
    tx: PipelineTx,
    stop: CancellationToken,
) -> ToolHandle {
    let stats = ToolStats::for_tool(&spec.name);
    let task = tokio::spawn(supervise(spec, binary, opts, tx, stop, stats.clone()));
    ToolHandle { stats, task }
}

async fn supervise(
    spec: ToolSpec,
    binary: PathBuf,
    opts: RunnerOptions,
    tx: PipelineTx,
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
        let outcome = run_once(&spec, &binary, &argv, &tx, &stop, &stats).await;
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
pub fn backoff(opts: &RunnerOptions, n: u32) -> Duration {
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
    tx: &PipelineTx,
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

    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
    let stderr_task = child.stderr.take().map(|err| {
        let tail = tail.clone();
        let tool = spec.name.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            let mut n = 0u32;
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(lost) = lost_events(&line) {
                    stats.lost_events.fetch_add(lost, Ordering::Relaxed);
                    continue;
                }
                n = n.saturating_add(1);
                // Enough to see why a tool fails, without flooding the log
                // when a tool warns on every event.
                if n <= STDERR_TAIL as u32 {
                    tracing::warn!(tool = %tool, "stderr: {line}");
                } else {
                    tracing::debug!(tool = %tool, "stderr: {line}");
                }
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        })
    });

    let mut out = Output::new(spec, tx, stats);
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
    let stderr = tail
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect();
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
            _ = tokio::time::sleep(super::verify::HOLD), if out.checker.holding() => out.release(),
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

/// Splits output into lines, parses them and sends the records.
struct Output<'a> {
    parser: Box<dyn pa::ToolParser>,
    tool: Arc<str>,
    tx: &'a PipelineTx,
    stats: &'a ToolStats,
    pending: Vec<u8>,
    /// Inside an over-long line whose head was already passed on.
    skipping: bool,
    records: Vec<pa::Record>,
    checker: Checker,
    logged_errors: u32,
    started: Instant,
    seen_output: bool,
}

impl<'a> Output<'a> {
    fn new(spec: &ToolSpec, tx: &'a PipelineTx, stats: &'a ToolStats) -> Output<'a> {
        Output {
            parser: spec.new_parser(),
            tool: spec.name.clone(),
            tx,
            stats,
            pending: Vec::with_capacity(4096),
            skipping: false,
            records: Vec::new(),
            checker: Checker::new(Arc::new(KernelFacts::new(crate::hotpath::pid_cgroups()))),
            logged_errors: 0,
            started: Instant::now(),
            seen_output: false,
        }
    }

    fn bytes(&mut self, mut data: &[u8]) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            let (head, rest) = (&data[..i], &data[i + 1..]);
            data = rest;
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.pending.is_empty() {
                self.line(head);
            } else {
                let mut line = std::mem::take(&mut self.pending);
                line.extend_from_slice(head);
                self.line(&line);
                line.clear();
                self.pending = line;
            }
        }
        if self.skipping {
            return;
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() > MAX_LINE {
            let line = std::mem::take(&mut self.pending);
            self.stats.truncated_lines.fetch_add(1, Ordering::Relaxed);
            self.line(&line[..MAX_LINE]);
            self.skipping = true;
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !self.seen_output {
            // Tools print their banner or header once their programs are
            // attached: from here on, what happens is seen.
            self.seen_output = true;
            tracing::info!(
                tool = %self.tool,
                "first output after {:.2}s",
                self.started.elapsed().as_secs_f64()
            );
        }
        self.stats.lines.fetch_add(1, Ordering::Relaxed);
        let mut notes = Vec::new();
        self.checker
            .line(self.parser.as_mut(), line, &mut self.records, &mut |o| {
                notes.push(o)
            });
        self.count(notes);
        self.flush();
    }

    /// Sends what the checker holds back (no continuation came in time).
    fn release(&mut self) {
        let mut notes = Vec::new();
        self.checker
            .release(&mut self.records, &mut |o| notes.push(o));
        self.count(notes);
        self.flush();
    }

    /// Counts (and logs, a few times) what the checker did not accept.
    fn count(&mut self, notes: Vec<Verdict>) {
        for note in notes {
            match note {
                Verdict::Rejected(r) => {
                    self.stats.rejected[r.index()].fetch_add(1, Ordering::Relaxed);
                    self.log(format_args!("record rejected ({})", r.as_str()));
                }
                Verdict::Continued | Verdict::Joined => {
                    self.stats.continued_lines.fetch_add(1, Ordering::Relaxed);
                }
                Verdict::Unparsable(e) => {
                    self.stats.parse_errors.fetch_add(1, Ordering::Relaxed);
                    self.log(format_args!("unparsable line skipped: {e}"));
                }
            }
        }
    }

    /// Warns about the first ten lines skipped, then only at debug level.
    fn log(&mut self, what: std::fmt::Arguments<'_>) {
        if self.logged_errors < 10 {
            self.logged_errors += 1;
            tracing::warn!(tool = %self.tool, "{what}");
        } else {
            tracing::debug!(tool = %self.tool, "{what}");
        }
    }

    fn finish(&mut self) {
        if !self.pending.is_empty() && !self.skipping {
            let line = std::mem::take(&mut self.pending);
            self.line(&line);
        }
        self.release();
        self.parser.finish(&mut self.records);
        self.flush();
    }

    fn flush(&mut self) {
        if self.records.is_empty() {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        for mut record in self.records.drain(..) {
            record.set_ts_ns(now);
            self.stats.records.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .tx
                .send(Message::Record(ToolRecord::new(self.tool.clone(), record)));
            if !sent {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_event_lines_are_counted() {
        assert_eq!(lost_events("Lost 17 events on CPU #1!"), Some(17));
        assert_eq!(lost_events("  Lost 3 events"), Some(3));
        assert_eq!(lost_events("Lost track of time"), None);
        assert_eq!(lost_events("failed to attach"), None);
    }

    #[test]
    fn stats_are_one_set_per_tool_and_exported() {
        let name: Arc<str> = Arc::from("stats-test-tool");
        let a = ToolStats::for_tool(&name);
        a.records.fetch_add(5, Ordering::Relaxed);
        let b = ToolStats::for_tool(&name);
        assert!(Arc::ptr_eq(&a, &b));
        let exported = crate::selfmetrics::global()
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
        let h = spawn(spec, "/bin/sh".into(), o, tx, stop.clone());
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
