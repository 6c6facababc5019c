//! Empty programs on the probes' hooks, only for the benchmark
//! (`scripts/bench-overhead.sh`): the floor cost of each hook.

use aya_ebpf::{
    macros::{btf_tracepoint, raw_tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext},
};

/// An empty `sys_enter` program: the floor cost of any syscall probe.
/// Only the benchmark attaches it.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn bench_floor(_ctx: RawTracePointContext) -> i32 {
    0
}

/// An empty `sys_exit` (BTF) program: the floor on the exit side, where
/// `count_sys_exit` runs. Only the benchmark attaches it.
#[btf_tracepoint(function = "sys_exit")]
pub fn bench_exit_floor(_ctx: BtfTracePointContext) -> i32 {
    0
}

/// An empty raw `sys_exit` program: with the two above, tells whether a
/// difference is the hook's or the program kind's. Only the benchmark
/// attaches it.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn bench_exit_raw_floor(_ctx: RawTracePointContext) -> i32 {
    0
}

/// An empty `inet_sock_set_state` program: the floor cost of any probe on
/// that hook. Only the benchmark attaches it.
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn bench_tcp_floor(_ctx: BtfTracePointContext) -> i32 {
    0
}
