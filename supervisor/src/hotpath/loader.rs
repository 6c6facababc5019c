//! Loads the BPF object embedded at build time (see `build.rs`) into the kernel
//! and attaches the configured programs. Every program stays attached while
//! the [`Hotpath`] lives; dropping it closes the links and programs, so
//! nothing of eunomia's remains loaded after the agent exits.

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, MapData, Queue},
    programs::{
        BtfTracePoint, ProgramError, RawTracePoint, TracePoint,
        raw_trace_point::RawTracePointLinkId, tp_btf::BtfTracePointLinkId,
        trace_point::TracePointLinkId,
    },
};
use hotpath_common::{
    BENCH_EXIT_FLOOR_PROG, BENCH_EXIT_RAW_FLOOR_PROG, BENCH_FLOOR_PROG, BENCH_TCP_FLOOR_PROG,
    CGROUP_SLOTS_MAP, DIR_OVERFLOW, EXEC_EVENT_PROG, EXEC_PROG, EXIT_PROG, FAMILY_PATHS, FORK_PROG,
    FREE_SLOTS_MAP, FlowKey, FlowStats, MAX_SYSCALLS, MOUNTS_ENABLED_GLOBAL, NEWLINES_MAP,
    OFFSETS_GLOBAL, PID_CGROUPS_MAP, PID_MOVED_PROG, PID_RENAMED_PROG, SLOT_OWNERS_MAP,
    SLOTS_GLOBAL, STRING_PROGS, SYS_EXIT_PROG, SYSCALL_COUNTERS_MAP, TASK_CREATED_PROG,
    TASK_MOVED_PROG, TCP_FLOWS_MAP, TCP_RECV_RESET_PROG, TCP_SEND_RESET_PROG, TCP_STATE_PROG,
};

use hotpath_common::http::{
    HTTP_ENABLED_GLOBAL, HTTP_RECORDS_ALL_GLOBAL, HTTP_SAMPLE_BELOW_GLOBAL, HTTP_SLOW_NS_GLOBAL,
};

use super::maps::{map_err, missing};
use super::{HotpathConfig, HttpCapture, offsets, pids::PidCgroups};

/// The BPF object built from `hotpath-ebpf` (empty when built with AYA_BUILD_SKIP=1).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/hotpath"));

/// Why the hot path could not be loaded or attached.
#[derive(Debug, thiserror::Error)]
pub enum HotpathError {
    /// The binary was built with AYA_BUILD_SKIP=1 and carries no BPF object.
    #[error(
        "this binary was built without its BPF programs (AYA_BUILD_SKIP=1); rebuild without it"
    )]
    NotBuilt,
    /// The kernel refused the object or a program.
    #[error("loading the hot-path BPF object: {0} (eunomia needs root and a kernel with BTF)")]
    Load(#[from] aya::EbpfError),
    /// A program could not be loaded or attached.
    #[error("program {program}: {source}")]
    Program {
        /// The program's name.
        program: &'static str,
        /// What the kernel or aya said.
        #[source]
        source: ProgramError,
    },
    /// A map the loader expected is missing or has the wrong type.
    #[error("map {map}: {source}")]
    Map {
        /// The map's name.
        map: &'static str,
        /// What aya said.
        #[source]
        source: aya::maps::MapError,
    },
    /// Mapping a map into memory failed.
    #[error("mmap of map {map}: {source}")]
    Mmap {
        /// The map's name.
        map: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Every requested probe failed to attach.
    #[error("no hot-path probe could be attached: {0}")]
    NothingAttached(String),
    /// Syscall counting cannot be sampled now.
    #[error("sampled syscall counting: {0}")]
    Sampling(&'static str),
}

/// Which probe a program belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Syscalls per cgroup.
    Syscalls,
    /// TCP sessions.
    Tcp,
    /// pid → cgroup.
    Pids,
    /// uid changes (setuid family syscall tracepoints), for tools whose
    /// records carry a uid other than at exec.
    Uids,
    /// Newlines in the paths of open and stat syscalls (for opensnoop and
    /// statsnoop records).
    PathStrings,
    /// Newlines in the strings of mount and umount (for mountsnoop).
    MountStrings,
    /// One event per exec (`sched_process_exec`, ring buffer).
    Execs,
}

/// Where a program attaches.
#[derive(Clone, Copy)]
enum Hook {
    BtfTp(&'static str),
    Tp(&'static str, &'static str),
    RawTp(&'static str),
}

/// An attachment, kept so that it can be undone ([`Hotpath::set_attached`]).
enum Link {
    BtfTp(BtfTracePointLinkId),
    Tp(TracePointLinkId),
    RawTp(RawTracePointLinkId),
}

/// Every program the agent may attach, with its probe and hook.
const PROGRAMS: [(&str, Probe, Hook); 21] = [
    // the cache invalidators first, so the cache is never trusted unguarded
    (
        TASK_CREATED_PROG,
        Probe::Syscalls,
        Hook::BtfTp("sched_process_fork"),
    ),
    (
        TASK_MOVED_PROG,
        Probe::Syscalls,
        Hook::BtfTp("cgroup_attach_task"),
    ),
    (SYS_EXIT_PROG, Probe::Syscalls, Hook::BtfTp("sys_exit")),
    (
        TCP_STATE_PROG,
        Probe::Tcp,
        Hook::BtfTp("inet_sock_set_state"),
    ),
    (
        TCP_RECV_RESET_PROG,
        Probe::Tcp,
        Hook::Tp("tcp", "tcp_receive_reset"),
    ),
    (
        TCP_SEND_RESET_PROG,
        Probe::Tcp,
        Hook::Tp("tcp", "tcp_send_reset"),
    ),
    (
        FORK_PROG,
        Probe::Pids,
        Hook::Tp("sched", "sched_process_fork"),
    ),
    (
        EXEC_PROG,
        Probe::Pids,
        Hook::Tp("sched", "sched_process_exec"),
    ),
    (
        EXIT_PROG,
        Probe::Pids,
        Hook::Tp("sched", "sched_process_exit"),
    ),
    (
        PID_MOVED_PROG,
        Probe::Pids,
        Hook::BtfTp("cgroup_attach_task"),
    ),
    (PID_RENAMED_PROG, Probe::Pids, Hook::BtfTp("task_rename")),
    (
        "uid_setuid",
        Probe::Uids,
        Hook::Tp("syscalls", "sys_exit_setuid"),
    ),
    (
        "uid_setreuid",
        Probe::Uids,
        Hook::Tp("syscalls", "sys_exit_setreuid"),
    ),
    (
        "uid_setresuid",
        Probe::Uids,
        Hook::Tp("syscalls", "sys_exit_setresuid"),
    ),
    string_prog(0),
    string_prog(1),
    string_prog(2),
    string_prog(3),
    string_prog(4),
    string_prog(5),
    (
        EXEC_EVENT_PROG,
        Probe::Execs,
        Hook::BtfTp("sched_process_exec"),
    ),
];

/// Entry `i` of [`STRING_PROGS`] as a program of [`PROGRAMS`].
const fn string_prog(i: usize) -> (&'static str, Probe, Hook) {
    let (name, tracepoint, family) = STRING_PROGS[i];
    let probe = if family == FAMILY_PATHS {
        Probe::PathStrings
    } else {
        Probe::MountStrings
    };
    (name, probe, Hook::Tp("syscalls", tracepoint))
}

/// The loaded hot-path programs and their maps.
pub struct Hotpath {
    pub(super) ebpf: Ebpf,
    /// Number of cgroup slots of the syscall table.
    pub(crate) slots: u32,
    /// Number of possible CPUs (the syscall table has `cpus * slots` elements).
    pub(crate) cpus: u32,
    /// The programs attached, with their probe.
    pub(crate) attached: Vec<(&'static str, Probe)>,
    /// Programs that could not be attached here, and why.
    pub(crate) unavailable: Vec<(&'static str, String)>,
    /// The programs in `attached` with their probe, hook and live
    /// attachment (None while detached by [`Hotpath::set_attached`]).
    links: Vec<(&'static str, Probe, Hook, Option<Link>)>,
    pub(super) pids: Option<PidCgroups>,
}

impl Hotpath {
    /// Loads the embedded object and attaches the programs of every probe
    /// `config` turns on. A program whose hook this kernel lacks is
    /// reported in [`Hotpath::unavailable`], not fatal.
    pub fn load(config: &HotpathConfig) -> Result<Self, HotpathError> {
        let mut hp = Self::load_object(
            config.cgroup_slots,
            config.http,
            config.mounts_from_sys_exit(),
        )?;
        let btf = Btf::from_sys_fs().ok();
        let wanted = |p: Probe| match p {
            Probe::Syscalls => config.syscalls.on(),
            Probe::Tcp => config.tcp,
            Probe::Pids => config.pids,
            Probe::Uids => config.pids && config.uid_changes,
            Probe::PathStrings => config.pids && config.path_strings,
            Probe::MountStrings => config.pids && config.mount_strings,
            Probe::Execs => config.execs,
        };
        for (name, probe, hook) in PROGRAMS {
            if !wanted(probe) {
                continue;
            }
            if name == SYS_EXIT_PROG
                && let Some((guard, _)) = hp
                    .unavailable
                    .iter()
                    .find(|(n, _)| [TASK_CREATED_PROG, TASK_MOVED_PROG].contains(n))
            {
                // its per-CPU cache would never be invalidated
                let why = format!("needs {guard}, which is not available");
                tracing::warn!("hot-path program {name} is not available here: {why}");
                hp.unavailable.push((name, why));
                continue;
            }
            if let Err(err) = hp.attach(name, probe, hook, btf.as_ref()) {
                tracing::warn!("hot-path program {name} is not available here: {err}");
                hp.unavailable.push((name, err.to_string()));
            }
        }
        if hp.attached.is_empty() && !hp.unavailable.is_empty() {
            let why: Vec<String> = hp
                .unavailable
                .iter()
                .map(|(n, e)| format!("{n}: {e}"))
                .collect();
            return Err(HotpathError::NothingAttached(why.join("; ")));
        }
        if config.pids && hp.attached.iter().any(|(_, p)| *p == Probe::Pids) {
            let map = hp
                .ebpf
                .take_map(PID_CGROUPS_MAP)
                .ok_or_else(|| missing(PID_CGROUPS_MAP))?;
            let map = BpfHashMap::try_from(map).map_err(map_err(PID_CGROUPS_MAP))?;
            let families = [Probe::PathStrings, Probe::MountStrings]
                .map(|f| hp.attached.iter().any(|(_, p)| *p == f));
            let newlines = hp
                .ebpf
                .take_map(NEWLINES_MAP)
                .ok_or_else(|| missing(NEWLINES_MAP))?;
            let newlines = aya::maps::Array::try_from(newlines).map_err(map_err(NEWLINES_MAP))?;
            hp.pids = Some(PidCgroups::new(map, newlines, families));
        }
        Ok(hp)
    }

    /// Loads the object and attaches only one of the benchmark's empty
    /// programs: `bench_floor` (raw tracepoint `sys_enter`, the floor of any
    /// syscall probe), `bench_exit_floor` (tp_btf `sys_exit`),
    /// `bench_exit_raw_floor` (raw tracepoint `sys_exit`) or
    /// `bench_tcp_floor` (tp_btf `inet_sock_set_state`, the floor of the
    /// TCP probe), for `scripts/bench-overhead.sh`.
    pub fn load_bench(program: &str) -> Result<Self, HotpathError> {
        let (name, probe, hook) = match program {
            BENCH_EXIT_FLOOR_PROG => (
                BENCH_EXIT_FLOOR_PROG,
                Probe::Syscalls,
                Hook::BtfTp("sys_exit"),
            ),
            BENCH_EXIT_RAW_FLOOR_PROG => (
                BENCH_EXIT_RAW_FLOOR_PROG,
                Probe::Syscalls,
                Hook::RawTp("sys_exit"),
            ),
            BENCH_TCP_FLOOR_PROG => (
                BENCH_TCP_FLOOR_PROG,
                Probe::Tcp,
                Hook::BtfTp("inet_sock_set_state"),
            ),
            _ => (BENCH_FLOOR_PROG, Probe::Syscalls, Hook::RawTp("sys_enter")),
        };
        let mut hp = Self::load_object(2, None, false)?;
        let btf = Btf::from_sys_fs().ok();
        hp.attach(name, probe, hook, btf.as_ref())
            .map_err(|source| HotpathError::Program {
                program: name,
                source,
            })?;
        Ok(hp)
    }

    fn load_object(
        slots: u32,
        http: Option<HttpCapture>,
        mounts: bool,
    ) -> Result<Self, HotpathError> {
        if OBJECT.is_empty() {
            return Err(HotpathError::NotBuilt);
        }
        raise_memlock_limit();
        let cpus = aya::util::nr_cpus().map_or(1, |n| n.max(1)) as u32;
        // Offsets are read-only globals, constants to the verifier.
        let offsets = offsets::compute();
        let capture = http.unwrap_or(HttpCapture::EVERY_REQUEST);
        let every = capture.every_request;
        let mut ebpf = EbpfLoader::new()
            .override_global(SLOTS_GLOBAL, &slots, true)
            .override_global(OFFSETS_GLOBAL, &offsets, true)
            .override_global(HTTP_ENABLED_GLOBAL, &u32::from(http.is_some()), true)
            .override_global(HTTP_RECORDS_ALL_GLOBAL, &u32::from(every), true)
            .override_global(HTTP_SAMPLE_BELOW_GLOBAL, &capture.sample_below, true)
            .override_global(HTTP_SLOW_NS_GLOBAL, &capture.slow_ns, true)
            .override_global(MOUNTS_ENABLED_GLOBAL, &u32::from(mounts), true)
            .map_max_entries(SYSCALL_COUNTERS_MAP, cpus * slots)
            .map_max_entries(SLOT_OWNERS_MAP, slots)
            .map_max_entries(CGROUP_SLOTS_MAP, slots)
            .map_max_entries(FREE_SLOTS_MAP, slots)
            .load(OBJECT)?;
        // Every slot but the overflow slot 0 is free.
        {
            let mut free: Queue<&mut MapData, u32> = Queue::try_from(
                ebpf.map_mut(FREE_SLOTS_MAP)
                    .ok_or_else(|| missing(FREE_SLOTS_MAP))?,
            )
            .map_err(map_err(FREE_SLOTS_MAP))?;
            for slot in 1..slots {
                free.push(slot, 0).map_err(map_err(FREE_SLOTS_MAP))?;
            }
        }
        // The overflow flow key always exists, so a full map diverts there.
        {
            let mut flows: BpfHashMap<&mut MapData, FlowKey, FlowStats> = BpfHashMap::try_from(
                ebpf.map_mut(TCP_FLOWS_MAP)
                    .ok_or_else(|| missing(TCP_FLOWS_MAP))?,
            )
            .map_err(map_err(TCP_FLOWS_MAP))?;
            let overflow = FlowKey {
                direction: DIR_OVERFLOW,
                ..FlowKey::default()
            };
            flows
                .insert(overflow, FlowStats::ZERO, 0)
                .map_err(map_err(TCP_FLOWS_MAP))?;
        }
        Ok(Self {
            ebpf,
            slots,
            cpus,
            attached: Vec::new(),
            unavailable: Vec::new(),
            links: Vec::new(),
            pids: None,
        })
    }

    /// Loads program `name` of `probe`, attaches it to `hook` and records it
    /// in `attached`.
    fn attach(
        &mut self,
        name: &'static str,
        probe: Probe,
        hook: Hook,
        btf: Option<&Btf>,
    ) -> Result<(), ProgramError> {
        load_program(&mut self.ebpf, name, hook, btf)?;
        let link = link(&mut self.ebpf, name, hook)?;
        self.links.push((name, probe, hook, Some(link)));
        self.attached.push((name, probe));
        Ok(())
    }

    /// Detaches (`on = false`) or re-attaches (`on = true`) the programs of
    /// `probe`, which stay loaded with their maps intact: counting pauses
    /// and resumes. `scripts/bench-overhead.sh` (through `bench-tcp`)
    /// toggles the TCP probe this way to compare with and without it in
    /// alternating windows of one run.
    pub fn set_attached(&mut self, probe: Probe, on: bool) -> Result<(), HotpathError> {
        self.set_links(|_, p| p == probe, on)
    }

    /// Detaches or re-attaches the one program `name` (sampled syscall
    /// counting toggles `count_sys_exit` and keeps its cache invalidators).
    pub(crate) fn set_program_attached(
        &mut self,
        name: &str,
        on: bool,
    ) -> Result<(), HotpathError> {
        self.set_links(|n, _| n == name, on)
    }

    fn set_links(
        &mut self,
        which: impl Fn(&str, Probe) -> bool,
        on: bool,
    ) -> Result<(), HotpathError> {
        let Self { ebpf, links, .. } = self;
        for (name, _, hook, live) in links.iter_mut().filter(|l| which(l.0, l.1)) {
            let result = match (on, live.take()) {
                (false, Some(l)) => unlink(ebpf, name, l),
                (true, None) => link(ebpf, name, *hook).map(|l| *live = Some(l)),
                (_, l) => {
                    *live = l;
                    Ok(())
                }
            };
            result.map_err(|source| HotpathError::Program {
                program: name,
                source,
            })?;
        }
        Ok(())
    }

    /// The loaded object, for the pollers that read its maps.
    pub(crate) fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    /// The loaded object, mutably (for map updates).
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Whether any program of `probe` is attached.
    pub(crate) fn has(&self, probe: Probe) -> bool {
        self.attached.iter().any(|(_, p)| *p == probe)
    }
}

const _: () = assert!(MAX_SYSCALLS.is_power_of_two());

/// Loads program `name` for `hook` (the verifier runs here).
fn load_program(
    ebpf: &mut Ebpf,
    name: &'static str,
    hook: Hook,
    btf: Option<&Btf>,
) -> Result<(), ProgramError> {
    let program = ebpf
        .program_mut(name)
        .ok_or(ProgramError::UnexpectedProgramType)?;
    match hook {
        Hook::BtfTp(tp) => {
            let btf = btf.ok_or(ProgramError::UnexpectedProgramType)?;
            let p: &mut BtfTracePoint = program.try_into()?;
            p.load(tp, btf)?;
        }
        Hook::Tp(..) => <&mut TracePoint>::try_from(program)?.load()?,
        Hook::RawTp(_) => <&mut RawTracePoint>::try_from(program)?.load()?,
    }
    Ok(())
}

/// Attaches the loaded program `name` to `hook`.
fn link(ebpf: &mut Ebpf, name: &'static str, hook: Hook) -> Result<Link, ProgramError> {
    let program = ebpf
        .program_mut(name)
        .ok_or(ProgramError::UnexpectedProgramType)?;
    let link = match hook {
        Hook::BtfTp(_) => Link::BtfTp(<&mut BtfTracePoint>::try_from(program)?.attach()?),
        Hook::Tp(category, tp) => {
            Link::Tp(<&mut TracePoint>::try_from(program)?.attach(category, tp)?)
        }
        Hook::RawTp(tp) => Link::RawTp(<&mut RawTracePoint>::try_from(program)?.attach(tp)?),
    };
    tracing::debug!(program = name, "attached");
    Ok(link)
}

/// Undoes `link` of program `name`; the program stays loaded.
fn unlink(ebpf: &mut Ebpf, name: &'static str, link: Link) -> Result<(), ProgramError> {
    let program = ebpf
        .program_mut(name)
        .ok_or(ProgramError::UnexpectedProgramType)?;
    match link {
        Link::BtfTp(id) => <&mut BtfTracePoint>::try_from(program)?.detach(id),
        Link::Tp(id) => <&mut TracePoint>::try_from(program)?.detach(id),
        Link::RawTp(id) => <&mut RawTracePoint>::try_from(program)?.detach(id),
    }
}

/// Older kernels charge BPF memory to RLIMIT_MEMLOCK; newer ones (like this
/// one) use memcg accounting. Raising the limit may fail; that is fine.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        tracing::debug!("could not raise RLIMIT_MEMLOCK; continuing (memcg accounting)");
    }
}
