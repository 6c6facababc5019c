//! Types shared by the hot-path BPF programs (`hotpath-ebpf`) and the
//! user-space loader in `supervisor`: map names, sizes, keys and values.
//! Everything here is `#[repr(C)]` and `no_std`.
#![no_std]

// ---------------------------------------------------------------------------
// Syscalls per cgroup
// ---------------------------------------------------------------------------

/// Number of syscall numbers counted per cgroup; x86_64 syscall numbers are
/// below this. Must be a power of two (the BPF side masks with it).
pub const MAX_SYSCALLS: u32 = 512;

/// Default number of cgroup slots (including the overflow slot 0).
pub const DEFAULT_CGROUP_SLOTS: u32 = 256;

/// Slot 0 collects the syscalls of cgroups that found no free slot (the
/// slot table was full); such lookups are counted in [`Counter::CgroupSlotsFull`].
pub const OVERFLOW_SLOT: u32 = 0;

/// The counters of one cgroup slot on one CPU: `calls[nr]` syscalls returned,
/// `errors[nr]` of them with an error (`-4095..=-1`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SlotCounters {
    /// Syscalls by number.
    pub calls: [u64; MAX_SYSCALLS as usize],
    /// Failed syscalls by number.
    pub errors: [u64; MAX_SYSCALLS as usize],
}

/// `SYSCALL_COUNTERS`: `BPF_F_MMAPABLE` array of [`SlotCounters`] indexed by
/// `cpu * slots + slot`; each CPU writes only its own elements, so plain
/// increments are race free, and the supervisor reads it through mmap
/// (no syscall per poll).
pub const SYSCALL_COUNTERS_MAP: &str = "SYSCALL_COUNTERS";
/// `SLOT_OWNERS`: mmapable array, slot → cgroup id (0: free).
pub const SLOT_OWNERS_MAP: &str = "SLOT_OWNERS";
/// `CGROUP_SLOTS`: hash, cgroup id → slot.
pub const CGROUP_SLOTS_MAP: &str = "CGROUP_SLOTS";
/// `FREE_SLOTS`: queue of free slot numbers, filled by the supervisor.
pub const FREE_SLOTS_MAP: &str = "FREE_SLOTS";
/// Name of the read-only global holding the number of cgroup slots.
pub const SLOTS_GLOBAL: &str = "CGROUP_SLOT_COUNT";

/// The per-CPU "current cgroup's slot" cache entry. It remembers the last
/// task that made a syscall on the CPU by its `pt_regs` address (free in
/// the `sys_exit` arguments) and the tasks generation at that time, so a
/// task's repeated syscalls need neither a helper call nor a cgroup lookup.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct SlotCache {
    /// The cgroup whose slot is cached.
    pub cgroup_id: u64,
    /// Its slot.
    pub slot: u32,
    /// Padding.
    pub _pad: u32,
    /// The `pt_regs` address of the task last seen (its kernel stack).
    pub regs: u64,
    /// `TASKS_GENERATION` when that task was seen.
    pub generation: u64,
}

/// The global that is bumped whenever a `pt_regs` address may start to
/// stand for another cgroup: a task is created (it may reuse a dead task's
/// stack) or moved between cgroups.
pub const GENERATION_GLOBAL: &str = "TASKS_GENERATION";
/// The programs that bump it (`sched_process_fork`, `cgroup_attach_task`).
pub const TASK_CREATED_PROG: &str = "syscalls_task_created";
/// See [`TASK_CREATED_PROG`].
pub const TASK_MOVED_PROG: &str = "syscalls_task_moved";

/// `tp_btf/sys_exit` program counting syscalls and errors per cgroup.
pub const SYS_EXIT_PROG: &str = "count_sys_exit";

// ---------------------------------------------------------------------------
// Self-observability counters
// ---------------------------------------------------------------------------

/// `COUNTERS`: mmapable array of u64 indexed by [`Counter`].
pub const COUNTERS_MAP: &str = "COUNTERS";

/// Kernel-side counters of conditions that lose or divert data.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// A new cgroup found no free syscall slot (counted in the overflow slot).
    CgroupSlotsFull = 0,
    /// A TCP socket could not be tracked (`TCP_SOCKS` full).
    TcpSocksFull = 1,
    /// A TCP flow key found `TCP_FLOWS` full (counted in the overflow key).
    TcpFlowsFull = 2,
    /// A pid could not be recorded in `PID_CGROUPS`.
    PidCgroupsFull = 3,
    /// A TCP session ended that was not tracked (opened before the agent).
    TcpUntracked = 4,
    /// An exec event found the `EXEC_EVENTS` ring buffer full.
    ExecEventsFull = 5,
    /// A mount event found the `MOUNT_EVENTS` ring buffer full.
    MountEventsFull = 6,
}

/// Number of entries of `COUNTERS`.
pub const COUNTERS_LEN: u32 = 8;

impl Counter {
    /// Every counter, in index order.
    pub const ALL: [Counter; 7] = [
        Counter::CgroupSlotsFull,
        Counter::TcpSocksFull,
        Counter::TcpFlowsFull,
        Counter::PidCgroupsFull,
        Counter::TcpUntracked,
        Counter::ExecEventsFull,
        Counter::MountEventsFull,
    ];

    /// The map or condition it counts, as exported in the `map` label.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::CgroupSlotsFull => "cgroup_slots",
            Counter::TcpSocksFull => "tcp_socks",
            Counter::TcpFlowsFull => "tcp_flows",
            Counter::PidCgroupsFull => "pid_cgroups",
            Counter::TcpUntracked => "tcp_untracked",
            Counter::ExecEventsFull => "exec_events",
            Counter::MountEventsFull => "mount_events",
        }
    }
}

// ---------------------------------------------------------------------------
// Offsets computed at load time (tracepoint formats, kernel BTF)
// ---------------------------------------------------------------------------

/// `OFFSETS`: a read-only global array of u32 indexed by [`Offset`], set by
/// the loader before the programs are loaded (so the verifier sees constants).
/// A value of [`OFFSET_UNKNOWN`] means "not available here".
pub const OFFSETS_GLOBAL: &str = "OFFSETS";
/// Marks an offset the loader could not find.
pub const OFFSET_UNKNOWN: u32 = u32::MAX;

/// The offsets the BPF programs need.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offset {
    /// `sched_process_fork`: `child_pid`.
    ForkChildPid = 0,
    /// BTF: `struct sock`, `__sk_common.skc_family`.
    SockFamily = 1,
    /// BTF: `struct sock`, `__sk_common.skc_dport` (network order).
    SockDport = 2,
    /// BTF: `struct sock`, `__sk_common.skc_num` (local port, host order).
    SockNum = 3,
    /// BTF: `struct sock`, `__sk_common.skc_daddr`.
    SockDaddr = 4,
    /// BTF: `struct sock`, `__sk_common.skc_v6_daddr`.
    SockDaddrV6 = 5,
    /// BTF: `struct sock`, `sk_protocol`.
    SockProtocol = 6,
    /// `tcp_receive_reset`: `skaddr`.
    RecvResetSkaddr = 10,
    /// `tcp_send_reset`: `skaddr`.
    SendResetSkaddr = 11,
    /// BTF: `struct tcp_sock`, `bytes_acked`.
    TcpBytesAcked = 12,
    /// BTF: `struct tcp_sock`, `bytes_received`.
    TcpBytesReceived = 13,
    /// BTF: `struct sock`, `sk_cgrp_data.cgroup`.
    SockCgroup = 14,
    /// BTF: `struct cgroup`, `kn`.
    CgroupKn = 15,
    /// BTF: `struct kernfs_node`, `id`.
    KernfsId = 16,
    /// BTF: `struct task_struct`, `cgroups`.
    TaskCgroups = 17,
    /// BTF: `struct css_set`, `dfl_cgrp`.
    CssSetDflCgrp = 18,
    /// BTF: `struct task_struct`, `pid` (the thread id).
    TaskPid = 19,
    /// BTF: `struct task_struct`, `mm`.
    TaskMm = 21,
    /// BTF: `struct mm_struct`, `arg_start`.
    MmArgStart = 22,
    /// BTF: `struct mm_struct`, `arg_end`.
    MmArgEnd = 23,
    /// BTF: `struct task_struct`, `real_parent`.
    TaskRealParent = 24,
    /// BTF: `struct task_struct`, `tgid` (the process id).
    TaskTgid = 25,
    /// BTF: `struct task_struct`, `files`.
    TaskFiles = 7,
    /// BTF: `struct files_struct`, `fdt`.
    FilesFdt = 8,
    /// BTF: `struct fdtable`, `fd`.
    FdtableFd = 9,
    /// BTF: `struct fdtable`, `max_fds`.
    FdtableMaxFds = 20,
    /// BTF: `struct file`, `private_data`.
    FilePrivate = 26,
    /// BTF: `struct socket`, `sk`.
    SocketSk = 27,
    /// BTF: `struct socket`, `file` (a socket's file points back at it).
    SocketFile = 28,
    /// BTF: `struct sock`, `__sk_common.skc_rcv_saddr` (local IPv4).
    SockRcvSaddr = 29,
    /// BTF: `struct sock`, `__sk_common.skc_v6_rcv_saddr` (local IPv6).
    SockV6RcvSaddr = 30,
    /// BTF: `struct task_struct`, `thread_pid` (its `struct pid`).
    TaskThreadPid = 31,
    /// BTF: `struct pid`, `level` (the depth of its innermost pid namespace).
    PidLevel = 32,
    /// BTF: `struct pid`, `numbers` (one `struct upid` per level).
    PidNumbers = 33,
    /// BTF: `struct upid`, `nr` (the pid in that level's namespace).
    UpidNr = 34,
    /// BTF: the size of `struct upid` (the stride of `pid.numbers`).
    UpidSize = 35,
}

/// Number of entries of `OFFSETS`.
pub const OFFSETS_LEN: u32 = 36;

// ---------------------------------------------------------------------------
// TCP
// ---------------------------------------------------------------------------

/// `TCP_SOCKS`: hash, socket address → [`SockInfo`] for sockets in flight.
pub const TCP_SOCKS_MAP: &str = "TCP_SOCKS";
/// `TCP_FLOWS`: hash, [`FlowKey`] → [`FlowStats`].
pub const TCP_FLOWS_MAP: &str = "TCP_FLOWS";
/// Default capacity of `TCP_SOCKS`.
pub const TCP_SOCKS_MAX: u32 = 65_536;
/// Default capacity of `TCP_FLOWS` (including the overflow key).
pub const TCP_FLOWS_MAX: u32 = 8_192;

/// `FlowKey::direction` of connections this host opened (`connect`).
pub const DIR_ACTIVE: u8 = 0;
/// `FlowKey::direction` of connections this host accepted.
pub const DIR_PASSIVE: u8 = 1;
/// `FlowKey::direction` of the overflow key (flows that found the map full).
pub const DIR_OVERFLOW: u8 = 255;

/// Number of buckets of the session-duration histogram: bucket 0 counts
/// durations below 1 µs, bucket `i` durations in `[2^(i-1), 2^i)` µs, the
/// last one everything longer.
pub const DURATION_BUCKETS: usize = 40;

/// What TCP sessions are aggregated by. Outbound (`DIR_ACTIVE`): the remote
/// address and port, `lport` 0. Inbound (`DIR_PASSIVE`): the local port,
/// remote address and port zero.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// cgroup v2 id of the socket's owner (0 when unknown).
    pub cgroup_id: u64,
    /// Remote address (IPv4 in the first 4 bytes when `family` is AF_INET).
    pub daddr: [u8; 16],
    /// Remote port (outbound only).
    pub dport: u16,
    /// Local port (inbound only).
    pub lport: u16,
    /// `DIR_ACTIVE`, `DIR_PASSIVE` or `DIR_OVERFLOW`.
    pub direction: u8,
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u8,
    /// Padding.
    pub _pad: [u8; 2],
}

/// Counters of one flow key (updated with atomic adds).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowStats {
    /// Connections established.
    pub opened: u64,
    /// Connect attempts that failed (SYN_SENT → CLOSE).
    pub failed: u64,
    /// Resets sent or received on tracked sockets.
    pub resets: u64,
    /// Established sessions that closed.
    pub closed: u64,
    /// Bytes sent and acknowledged, of closed sessions.
    pub bytes_tx: u64,
    /// Bytes received, of closed sessions.
    pub bytes_rx: u64,
    /// Session durations (established to close), log2 µs buckets.
    pub duration_us: [u64; DURATION_BUCKETS],
}

impl FlowStats {
    /// All zero.
    pub const ZERO: FlowStats = FlowStats {
        opened: 0,
        failed: 0,
        resets: 0,
        closed: 0,
        bytes_tx: 0,
        bytes_rx: 0,
        duration_us: [0; DURATION_BUCKETS],
    };
}

/// An established socket, from ESTABLISHED to its close.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct SockInfo {
    /// The flow it counts in.
    pub key: FlowKey,
    /// When it became ESTABLISHED.
    pub established_ns: u64,
}

/// The `inet_sock_set_state` program (tp_btf: typed `struct sock *`, no
/// trace record to fill, state filter before any read).
pub const TCP_STATE_PROG: &str = "tcp_set_state";
/// The `tcp:tcp_receive_reset` program.
pub const TCP_RECV_RESET_PROG: &str = "tcp_recv_reset";
/// The `tcp:tcp_send_reset` program.
pub const TCP_SEND_RESET_PROG: &str = "tcp_send_reset";

// ---------------------------------------------------------------------------
// pid → cgroup
// ---------------------------------------------------------------------------

/// `PID_CGROUPS`: LRU hash, pid (thread id) → [`PidInfo`].
pub const PID_CGROUPS_MAP: &str = "PID_CGROUPS";
/// Default capacity of `PID_CGROUPS`.
pub const PID_CGROUPS_MAX: u32 = 32_768;

/// What the kernel knows of a task: where it is, who it is, and whether it
/// is gone. Tool records are checked against it (a line printed by a tool
/// names a process only as far as these facts confirm it).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct PidInfo {
    /// cgroup v2 id, updated at fork, exec and every cgroup move.
    pub cgroup_id: u64,
    /// `bpf_ktime_get_ns()` at exit, 0 while alive.
    pub exited_ns: u64,
    /// `bpf_ktime_get_ns()` at the last exec; 0 if none was seen.
    pub exec_ns: u64,
    /// `bpf_ktime_get_ns()` at the exec before the last one; 0 if none.
    pub exec_prev_ns: u64,
    /// `bpf_ktime_get_ns()` when the entry was made (fork, or the first
    /// exec seen of a task older than the agent).
    pub start_ns: u64,
    /// Real uid at fork or exec.
    pub uid: u32,
    /// Real uid when the entry was last updated (exit, rename, move).
    pub uid_last: u32,
    /// Parent process id at fork (0 if unknown).
    pub ppid: u32,
    /// Bit flags: [`PID_FLAG_RENAMED`].
    pub flags: u32,
    /// Newlines in the paths this process passed to the traced open and
    /// stat syscalls (kept by `tgid`; see [`NEWLINES_MAP`]).
    pub path_newlines: u32,
    /// Newlines in the strings this process passed to mount and umount.
    pub mount_newlines: u32,
    /// `bpf_ktime_get_ns()` of the last such string with a newline.
    pub newline_ns: u64,
    /// Real uid before the last exec (a record of the old program may be
    /// read after the exec).
    pub uid_prev: u32,
    /// Padding.
    pub _pad: u32,
    /// `comm` at exec (inherited from the parent at fork).
    pub comm: [u8; 16],
    /// `comm` before the last exec (a wrapper such as `env` execs again at
    /// once, before the tool's record of the first exec is read).
    pub comm_prev: [u8; 16],
    /// `comm` after the last rename (`prctl(PR_SET_NAME)`, `/proc/PID/comm`);
    /// equal to `comm` when never renamed.
    pub comm_now: [u8; 16],
    /// The name another thread of this process (keyed by its tid) last
    /// gave itself: tools print a thread's `comm` with the process id.
    pub comm_thread: [u8; 16],
}

/// `NEWLINES`: array of [`NEWLINE_FAMILIES`] u64, newlines seen in the
/// strings of the traced syscalls per family, in total. A tool's record
/// that spans several lines is believed only as far as these counts allow.
pub const NEWLINES_MAP: &str = "NEWLINES";
/// Families of string syscalls: [`FAMILY_PATHS`], [`FAMILY_MOUNTS`].
pub const NEWLINE_FAMILIES: u32 = 2;
/// open, openat, newfstatat, statx: what opensnoop and statsnoop print.
pub const FAMILY_PATHS: u32 = 0;
/// mount, umount: what mountsnoop prints.
pub const FAMILY_MOUNTS: u32 = 1;
/// The string-checking programs, with their tracepoint (`syscalls/NAME`)
/// and family.
pub const STRING_PROGS: [(&str, &str, u32); 6] = [
    ("strings_openat", "sys_enter_openat", FAMILY_PATHS),
    ("strings_open", "sys_enter_open", FAMILY_PATHS),
    ("strings_newfstatat", "sys_enter_newfstatat", FAMILY_PATHS),
    ("strings_statx", "sys_enter_statx", FAMILY_PATHS),
    ("strings_mount", "sys_enter_mount", FAMILY_MOUNTS),
    ("strings_umount", "sys_enter_umount", FAMILY_MOUNTS),
];

/// [`PidInfo::flags`]: the task renamed itself since its exec.
pub const PID_FLAG_RENAMED: u32 = 1;

/// The `sched_process_fork` program.
pub const FORK_PROG: &str = "pid_fork";
/// The `sched_process_exec` program.
pub const EXEC_PROG: &str = "pid_exec";
/// The `sched_process_exit` program.
pub const EXIT_PROG: &str = "pid_exit";
/// The `cgroup_attach_task` program of the pid map: a task's new cgroup.
pub const PID_MOVED_PROG: &str = "pid_moved";
/// The `task_rename` program: a task's new `comm`.
pub const PID_RENAMED_PROG: &str = "pid_renamed";

// ---------------------------------------------------------------------------
// Benchmark-only programs
// ---------------------------------------------------------------------------

/// An empty raw tracepoint program for `sys_enter`: the cost floor of any
/// syscall probe (never attached by the agent).
pub const BENCH_FLOOR_PROG: &str = "bench_floor";
/// An empty tp_btf program for `sys_exit` (where the syscall probe runs), for
/// the benchmark's comparison of the two hooks.
pub const BENCH_EXIT_FLOOR_PROG: &str = "bench_exit_floor";
/// An empty raw tracepoint program for `sys_exit`: separates the hook
/// (enter or exit) from the program kind (raw or BTF) in the benchmark.
pub const BENCH_EXIT_RAW_FLOOR_PROG: &str = "bench_exit_raw_floor";
/// An empty `inet_sock_set_state` (tp_btf) program: the floor of the TCP
/// probe, only for the benchmark.
pub const BENCH_TCP_FLOOR_PROG: &str = "bench_tcp_floor";

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all these are #[repr(C)] plain data with no padding holes that
    // could leak uninitialised bytes (padding is explicit).
    unsafe impl aya::Pod for super::SlotCounters {}
    unsafe impl aya::Pod for super::SlotCache {}
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::FlowStats {}
    unsafe impl aya::Pod for super::SockInfo {}
    unsafe impl aya::Pod for super::PidInfo {}
    unsafe impl aya::Pod for super::ExecEvent {}
    unsafe impl aya::Pod for super::MountEvent {}
}

pub mod http;
pub mod profile;

// ---------------------------------------------------------------------------
// Exec events
// ---------------------------------------------------------------------------

/// Ring buffer of [`ExecEvent`]s.
pub const EXEC_EVENTS_MAP: &str = "EXEC_EVENTS";
/// Its size in bytes (about 900 events).
pub const EXEC_EVENTS_BYTES: u32 = 256 * 1024;
/// `exec_event` (tp_btf `sched_process_exec`): one [`ExecEvent`] per exec.
pub const EXEC_EVENT_PROG: &str = "exec_event";
/// Bytes of the arguments an exec event carries at most.
pub const EXEC_ARGS_LEN: usize = 256;

/// One successful exec, seen at `sched_process_exec` (in the new program's
/// context; no syscall hook).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExecEvent {
    /// Process id (tgid).
    pub pid: u32,
    /// Parent's process id (from the pid map; 0 if unknown).
    pub ppid: u32,
    /// Real uid after the exec.
    pub uid: u32,
    /// Bytes of `args` read (NUL-separated argv, cut at [`EXEC_ARGS_LEN`]).
    pub args_len: u32,
    /// The process id in its own (innermost) pid namespace: 1 for a
    /// container's first process; 0 if unknown.
    pub vpid: u32,
    /// Padding.
    pub _pad: u32,
    /// The whole length of argv in bytes (more than `args_len` when cut).
    pub args_full: u64,
    /// cgroup v2 id.
    pub cgroup_id: u64,
    /// The new comm.
    pub comm: [u8; 16],
    /// argv, NUL-separated.
    pub args: [u8; EXEC_ARGS_LEN],
}

// ---------------------------------------------------------------------------
// Mount events
// ---------------------------------------------------------------------------

/// Ring buffer of [`MountEvent`]s.
pub const MOUNT_EVENTS_MAP: &str = "MOUNT_EVENTS";
/// Its size in bytes (about 300 events).
pub const MOUNT_EVENTS_BYTES: u32 = 256 * 1024;
/// Read-only global set to 1 by the loader to report mounts from the
/// `sys_exit` program.
pub const MOUNTS_ENABLED_GLOBAL: &str = "MOUNTS_ENABLED";
/// Bytes of a mount's source and target kept at most (with the NUL).
pub const MOUNT_PATH_LEN: usize = 256;
/// Bytes of a mount's filesystem type kept at most (with the NUL).
pub const MOUNT_FS_LEN: usize = 32;
/// Bytes of a mount's data string kept at most (with the NUL).
pub const MOUNT_DATA_LEN: usize = 128;

/// [`MountEvent::op`]: `mount(2)`.
pub const MOUNT_OP_MOUNT: u32 = 0;
/// [`MountEvent::op`]: `umount2(2)` (`target`, `flags`).
pub const MOUNT_OP_UMOUNT: u32 = 1;
/// [`MountEvent::op`]: `move_mount(2)` (`source` = from path, `target` =
/// to path, `flags`): the new mount API's step that attaches a mount.
pub const MOUNT_OP_MOVE: u32 = 2;

/// One mount, umount or move_mount, seen as it returns (the `sys_exit`
/// program; arguments read from the saved registers and user memory).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MountEvent {
    /// Process id (tgid).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Real uid.
    pub uid: u32,
    /// [`MOUNT_OP_MOUNT`], [`MOUNT_OP_UMOUNT`] or [`MOUNT_OP_MOVE`].
    pub op: u32,
    /// The syscall's result (0 or -errno).
    pub ret: i64,
    /// The flags argument.
    pub flags: u64,
    /// cgroup v2 id.
    pub cgroup_id: u64,
    /// comm.
    pub comm: [u8; 16],
    /// Source (mount) or from path (move_mount), NUL-terminated; empty for
    /// a null pointer.
    pub source: [u8; MOUNT_PATH_LEN],
    /// Target (mount, umount) or to path (move_mount), NUL-terminated.
    pub target: [u8; MOUNT_PATH_LEN],
    /// Filesystem type (mount), NUL-terminated.
    pub fs: [u8; MOUNT_FS_LEN],
    /// Data string (mount), NUL-terminated.
    pub data: [u8; MOUNT_DATA_LEN],
}
