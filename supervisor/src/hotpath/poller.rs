//! The hot-path source: a task that owns the loaded programs, reads their maps
//! every poll interval and sends the deltas into the pipeline as samples. On
//! shutdown it polls once more (the last, partial interval), then drops the
//! programs, which detaches them.
//!
//! Each poll sends up to three batches, the syscall batch last (the console
//! prints an interval's summary when it arrives): `hotpath.self` (map-full
//! and recursion-miss counters, map sizes, evictions), `hotpath.tcp`, and
//! `hotpath.syscalls`.
//!
//! With `syscalls = "sampled"` the syscall probe (`count_sys_exit`) is
//! attached for [`SAMPLED_FRACTION`] of each of [`SAMPLE_WINDOWS`] equal
//! parts of the interval and detached in between (with no syscall probe
//! attached, the kernel takes syscalls off its tracing path). The counts are
//! scaled by the interval over the time the probe was attached and carry the
//! label `estimate = "sampled"`.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use aya::maps::{HashMap as BpfHashMap, MapData};
use hotpath_common::{Counter, SockInfo, TCP_SOCKS_MAP};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use hotpath_common::SYS_EXIT_PROG;

use super::{
    Hotpath, HotpathConfig, HotpathError, HttpMaps, PidCgroups, Probe, SAMPLED_FRACTION,
    SyscallCounting,
    mmap::MmapArray,
    syscalls::{SyscallTable, syscall_name},
    tcp::TcpTable,
};
use crate::{
    context::{AgentContext, PidLookup},
    pipeline::{Message, PipelineTx, Sample, SampleBatch, SampleValue},
};
use model::metrics::{
    EVICTIONS_METRIC, MAP_ENTRIES_METRIC, MAP_FULL_METRIC, RECURSION_MISSES_METRIC, SELF_SOURCE,
    SYSCALL_ERRORS_METRIC, SYSCALLS_METRIC, SYSCALLS_SOURCE, TCP_SOURCE, TCP_UNTRACKED_METRIC,
};

/// How many windows sampled syscall counting opens per poll interval.
pub(crate) const SAMPLE_WINDOWS: u32 = 10;
/// The label sampled syscall counts carry.
pub(crate) const ESTIMATE_LABEL: (&str, &str) = ("estimate", "sampled");

const MODE_EXACT: u8 = 1;
const MODE_SAMPLED: u8 = 2;

/// Switches the running hot path's syscall counting between exact and
/// sampled from its next interval on (the CPU budget degrades and recovers
/// this way). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct SyscallControl(Arc<AtomicU8>);

impl SyscallControl {
    /// Asks for `mode`; `Off` is not a mode to switch to at run time and
    /// is ignored.
    pub(crate) fn request(&self, mode: SyscallCounting) {
        let m = match mode {
            SyscallCounting::Exact => MODE_EXACT,
            SyscallCounting::Sampled => MODE_SAMPLED,
            SyscallCounting::Off => return,
        };
        self.0.store(m, Ordering::Relaxed);
    }

    /// The mode asked for since the last call (0: none).
    fn take(&self) -> u8 {
        self.0.swap(0, Ordering::Relaxed)
    }
}

/// The running hot-path source.
pub(crate) struct HotpathSource {
    /// The poller; it ends after the last poll on shutdown.
    pub(crate) task: JoinHandle<()>,
    /// The kernel's pid map, when the pid probe is attached, for the stages
    /// started after the hot path (enrichment, tool record checks).
    pub(crate) pids: PidLookup,
    /// Switches syscall counting at run time.
    pub(crate) counting: SyscallControl,
    /// The exec events' reader, when the exec probe is attached.
    pub(crate) execs: Option<JoinHandle<()>>,
    /// The HTTP capture's maps, for the HTTP source, when it is on.
    pub(crate) http: Option<HttpMaps>,
    /// The mount events' reader, when `sys_exit` reports mounts.
    pub(crate) mounts: Option<JoinHandle<()>>,
}

/// Loads and attaches the configured probes, then spawns the poller. Returns
/// `None` when every probe is turned off.
pub(crate) fn start(
    config: &HotpathConfig,
    interval: Duration,
    ctx: &AgentContext,
) -> Result<Option<HotpathSource>, HotpathError> {
    if !config.any() {
        return Ok(None);
    }
    let mut hotpath = Hotpath::load(config)?;
    let execs = hotpath
        .take_exec_events()
        .and_then(|ring| super::execs::start(ring, ctx));
    if config.mounts && !config.syscalls.on() {
        tracing::warn!(
            "mounts are not reported: they ride on the syscall probe, which [hotpath] syscalls turns off (enable mountsnoop to see them)"
        );
    }
    let mounts = hotpath
        .take_mount_events(config.mounts_from_sys_exit())
        .and_then(|ring| super::mounts::start(ring, ctx));
    let http = hotpath.take_http(config.http.is_some())?;
    let mut poller = Poller::new(hotpath, config.pid_grace, interval)?;
    poller.http = http.as_ref().map(|m| m.paused_flag.clone());
    poller.mounts = mounts.is_some();
    if config.syscalls == SyscallCounting::Sampled
        && poller.syscalls.is_some()
        && let Err(err) = poller.start_sampling()
    {
        tracing::warn!("{err}; syscalls are counted exactly");
    }
    let pids = match &poller.pids {
        Some(p) => PidLookup::kernel(Arc::new(p.clone())),
        None => PidLookup::default(),
    };
    let counting = poller.control.clone();
    let names: Vec<&str> = poller.hotpath.attached.iter().map(|(n, _)| *n).collect();
    tracing::info!(?interval, programs = ?names, "hot path attached; polling");
    let task = tokio::spawn(poll_loop(
        poller,
        interval,
        ctx.tx.clone(),
        ctx.shutdown.clone(),
    ));
    Ok(Some(HotpathSource {
        task,
        pids,
        counting,
        execs,
        http,
        mounts,
    }))
}

/// Everything one poll needs, and the previous values for the deltas.
pub(crate) struct Poller {
    hotpath: Hotpath,
    syscalls: Option<SyscallTable>,
    tcp: Option<TcpTable>,
    pids: Option<PidCgroups>,
    counters: MmapArray<u64>,
    prev_counters: Vec<u64>,
    prev_misses: HashMap<&'static str, u64>,
    pid_grace: Duration,
    sweep_every: u64,
    polls: u64,
    pid_entries: Option<usize>,
    tcp_socks: Option<usize>,
    pids_evicted: u64,
    prev_evicted: [u64; 3],
    /// Sampled syscall counting: how long the probe was attached since
    /// the last poll (None when counting is exact).
    sampled_on: Option<Duration>,
    /// Mode switches asked for from outside.
    control: SyscallControl,
    /// Set while the HTTP capture runs: it rides on the syscall probe,
    /// which must stay attached unless the flag says the capture is paused.
    http: Option<Arc<AtomicBool>>,
    /// Mounts are reported from the syscall probe: sampled, they are seen
    /// only while it is attached.
    mounts: bool,
}

impl Poller {
    /// Prepares the readers of a loaded hot path.
    pub(crate) fn new(
        hotpath: Hotpath,
        pid_grace: Duration,
        interval: Duration,
    ) -> Result<Self, HotpathError> {
        let syscalls = if hotpath.has(Probe::Syscalls) {
            Some(SyscallTable::new(&hotpath)?)
        } else {
            None
        };
        let tcp = hotpath.has(Probe::Tcp).then(TcpTable::default);
        let counters = hotpath.map_counters()?;
        let prev_counters = vec![0; counters.len()];
        // Sweep exited pids about twice per grace period.
        let sweep_every = (pid_grace.as_secs_f64() / 2.0 / interval.as_secs_f64().max(0.1))
            .ceil()
            .max(1.0) as u64;
        Ok(Self {
            pids: hotpath.pid_cgroups(),
            hotpath,
            syscalls,
            tcp,
            counters,
            prev_counters,
            prev_misses: HashMap::new(),
            pid_grace,
            sweep_every,
            polls: 0,
            pid_entries: None,
            tcp_socks: None,
            pids_evicted: 0,
            prev_evicted: [0; 3],
            sampled_on: None,
            control: SyscallControl::default(),
            http: None,
            mounts: false,
        })
    }

    /// Switches syscall counting to sampled: the probe is detached until
    /// the next [`Poller::sample_window`].
    pub(crate) fn start_sampling(&mut self) -> Result<(), HotpathError> {
        if self
            .http
            .as_ref()
            .is_some_and(|paused| !paused.load(Ordering::Relaxed))
        {
            return Err(HotpathError::Sampling(
                "HTTP capture runs in the syscall probe, which must stay attached while it is not paused",
            ));
        }
        self.hotpath.set_program_attached(SYS_EXIT_PROG, false)?;
        self.sampled_on = Some(Duration::ZERO);
        if self.mounts {
            tracing::warn!(
                fraction = SAMPLED_FRACTION,
                "syscalls sampled: mounts are seen only while the syscall probe is attached (enable mountsnoop to see every mount)"
            );
        }
        Ok(())
    }

    /// Back to exact syscall counting: the probe stays attached.
    pub(crate) fn stop_sampling(&mut self) -> Result<(), HotpathError> {
        self.hotpath.set_program_attached(SYS_EXIT_PROG, true)?;
        self.sampled_on = None;
        Ok(())
    }

    /// Switches to the mode [`SyscallControl::request`] asked for, if any
    /// (between intervals, so each interval is counted one way).
    fn apply_requested_mode(&mut self) {
        if self.syscalls.is_none() {
            return;
        }
        let result = match (self.control.take(), self.sampled()) {
            (MODE_SAMPLED, false) => self.start_sampling().map(|()| "sampled"),
            (MODE_EXACT, true) => self.stop_sampling().map(|()| "exact"),
            _ => return,
        };
        match result {
            Ok(mode) => tracing::info!(mode, "syscall counting switched"),
            Err(err) => tracing::warn!("switching syscall counting: {err}"),
        }
    }

    /// Whether syscall counting is sampled.
    pub(crate) fn sampled(&self) -> bool {
        self.sampled_on.is_some()
    }

    /// Attaches the syscall probe for `length`, or until `shutdown`. The
    /// time counted is from the end of the attach to the start of the
    /// detach (both take a while: every thread's syscall path is switched).
    async fn sample_window(&mut self, length: Duration, shutdown: &CancellationToken) {
        if let Err(err) = self.hotpath.set_program_attached(SYS_EXIT_PROG, true) {
            tracing::warn!("sampled syscall counting: attaching: {err}");
            return;
        }
        let start = Instant::now();
        tokio::select! {
            _ = tokio::time::sleep(length) => {}
            _ = shutdown.cancelled() => {}
        }
        let on = start.elapsed();
        if let Err(err) = self.hotpath.set_program_attached(SYS_EXIT_PROG, false) {
            tracing::warn!("sampled syscall counting: detaching: {err}");
        }
        if let Some(total) = &mut self.sampled_on {
            *total += on;
        }
    }

    /// The factor sampled counts are multiplied by (1 when exact), and
    /// starts the next interval's count of attached time.
    fn take_scale(&mut self, interval_s: f64) -> f64 {
        match self.sampled_on.as_mut().map(std::mem::take) {
            None => 1.0,
            Some(on) if on.is_zero() => 0.0,
            Some(on) => interval_s / on.as_secs_f64(),
        }
    }

    /// Reads every map once; returns the batches to send, syscalls last.
    pub(crate) fn poll(&mut self, interval_s: f64) -> Vec<SampleBatch> {
        self.polls += 1;
        let mut batches = Vec::new();
        let mut tcp_samples = Vec::new();
        if let Some(tcp) = &mut self.tcp {
            match tcp.poll(&mut self.hotpath) {
                Ok(s) => tcp_samples = s,
                Err(err) => tracing::warn!("polling the TCP flows: {err}"),
            }
        }
        let mut sys_samples = Vec::new();
        let (scale, sampled) = (self.take_scale(interval_s), self.sampled());
        if let Some(table) = &mut self.syscalls {
            let (deltas, idle) = table.poll();
            let scaled = |n: u64| (n as f64 * scale).round() as u64;
            for d in deltas {
                let cgroup = d.cgroup_id.map_or("other".to_owned(), |c| c.to_string());
                let mut labels = vec![
                    ("cgroup.id", cgroup),
                    ("syscall", syscall_name(d.nr).to_owned()),
                ];
                if sampled {
                    labels.push((ESTIMATE_LABEL.0, ESTIMATE_LABEL.1.to_owned()));
                }
                if d.calls > 0 {
                    sys_samples.push(Sample {
                        metric: SYSCALLS_METRIC,
                        labels: labels.clone(),
                        value: SampleValue::Delta(scaled(d.calls)),
                    });
                }
                if d.errors > 0 {
                    sys_samples.push(Sample {
                        metric: SYSCALL_ERRORS_METRIC,
                        labels,
                        value: SampleValue::Delta(scaled(d.errors)),
                    });
                }
            }
            if !idle.is_empty() {
                let live = crate::host::cgroup::live_ids();
                for (slot, cgroup) in idle {
                    if !live.contains(&cgroup)
                        && let Err(err) = table.evict(&mut self.hotpath, slot, cgroup)
                    {
                        tracing::warn!("freeing the syscall slot of cgroup {cgroup}: {err}");
                    }
                }
            }
        }
        if self.polls.is_multiple_of(self.sweep_every) {
            self.sweep();
        }
        batches.push(SampleBatch {
            source: SELF_SOURCE,
            interval_s,
            samples: self.self_samples(),
        });
        if self.tcp.is_some() {
            batches.push(SampleBatch {
                source: TCP_SOURCE,
                interval_s,
                samples: tcp_samples,
            });
        }
        batches.push(SampleBatch {
            source: SYSCALLS_SOURCE,
            interval_s,
            samples: sys_samples,
        });
        batches
    }

    /// Removes exited pids past their grace period; counts TCP sockets in flight.
    fn sweep(&mut self) {
        if let Some(p) = &self.pids {
            let (left, removed) = p.sweep(self.pid_grace);
            self.pid_entries = Some(left);
            self.pids_evicted += removed as u64;
        }
        if self.tcp.is_some()
            && let Some(map) = self.hotpath.ebpf().map(TCP_SOCKS_MAP)
            && let Ok(socks) = BpfHashMap::<&MapData, u64, SockInfo>::try_from(map)
        {
            self.tcp_socks = Some(socks.keys().filter_map(Result::ok).count());
        }
    }

    fn self_samples(&mut self) -> Vec<Sample> {
        let mut out = Vec::new();
        for c in Counter::ALL {
            let i = c as usize;
            let now = self.counters.get(i);
            let d = now.wrapping_sub(self.prev_counters[i]);
            self.prev_counters[i] = now;
            let (metric, labels) = match c {
                Counter::TcpUntracked => (TCP_UNTRACKED_METRIC, vec![]),
                _ => (MAP_FULL_METRIC, vec![("map", c.name().to_owned())]),
            };
            out.push(Sample {
                metric,
                labels,
                value: SampleValue::Delta(d),
            });
        }
        for (program, now) in self.hotpath.recursion_misses() {
            let before = self.prev_misses.insert(program, now).unwrap_or(0);
            out.push(Sample {
                metric: RECURSION_MISSES_METRIC,
                labels: vec![("program", program.to_owned())],
                value: SampleValue::Delta(now.wrapping_sub(before)),
            });
        }
        let mut gauge = |map: &str, n: usize| {
            out.push(Sample {
                metric: MAP_ENTRIES_METRIC,
                labels: vec![("map", map.to_owned())],
                value: SampleValue::Gauge(n as f64),
            })
        };
        if let Some(t) = &self.syscalls {
            gauge("cgroup_slots", t.used_slots());
        }
        if let Some(t) = &self.tcp {
            gauge("tcp_flows", t.entries);
        }
        if let Some(n) = self.tcp_socks {
            gauge("tcp_socks", n);
        }
        if let Some(n) = self.pid_entries {
            gauge("pid_cgroups", n);
        }
        let evicted = [
            (
                "cgroup_slots",
                self.syscalls.as_ref().map_or(0, |t| t.evicted),
            ),
            ("tcp_flows", self.tcp.as_ref().map_or(0, |t| t.evicted)),
            ("pid_cgroups", self.pids_evicted),
        ];
        for (i, (map, now)) in evicted.into_iter().enumerate() {
            let d = now - self.prev_evicted[i];
            self.prev_evicted[i] = now;
            out.push(Sample {
                metric: EVICTIONS_METRIC,
                labels: vec![("map", map.to_owned())],
                value: SampleValue::Delta(d),
            });
        }
        out
    }
}

async fn poll_loop(
    mut poller: Poller,
    interval: Duration,
    tx: PipelineTx,
    shutdown: CancellationToken,
) {
    let windows = SAMPLE_WINDOWS;
    let part = interval / windows;
    let mut ticker = tokio::time::interval(part);
    ticker.tick().await; // the first tick is immediate
    let mut since = Instant::now();
    let mut ticks = 0u32;
    loop {
        if poller.sampled() {
            poller
                .sample_window(part.mul_f64(SAMPLED_FRACTION), &shutdown)
                .await;
        }
        let last = tokio::select! {
            _ = ticker.tick() => false,
            _ = shutdown.cancelled() => true,
        };
        ticks += 1;
        if !last && !ticks.is_multiple_of(windows) {
            continue;
        }
        let elapsed = since.elapsed().as_secs_f64();
        since = Instant::now();
        let batches = poller.poll(elapsed);
        for batch in batches {
            tx.send(Message::Samples(batch));
        }
        if last {
            break;
        }
        poller.apply_requested_mode();
    }
    drop(poller);
    tracing::info!("hot path detached");
}
