//! TCP sessions per (cgroup, direction, port/peer): opens, closes,
//! failures, resets, bytes and durations at close, from tp_btf
//! `inet_sock_set_state` and the `tcp:tcp_*_reset` tracepoints.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_ktime_get_ns, generated::bpf_skc_to_tcp_sock},
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use hotpath_common::{
    Counter, DIR_ACTIVE, DIR_OVERFLOW, DIR_PASSIVE, DURATION_BUCKETS, FlowKey, FlowStats, Offset,
    SockInfo,
};

use crate::{
    AF_INET, IPPROTO_TCP, TCP_FLOWS, TCP_SOCKS, add, cgroup_v2_id, count, field, load, offset,
};

const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;
const TCP_CLOSE: i32 = 7;
const TCP_LISTEN: i32 = 10;

/// The cgroup v2 id of the socket's owner: `sk->sk_cgrp_data.cgroup->kn->id`.
#[inline(always)]
fn sock_cgroup(sk: u64) -> u64 {
    offset(Offset::SockCgroup)
        .and_then(|o| cgroup_v2_id(load(sk, o)))
        .unwrap_or(0)
}

/// The stats of `key`, creating them; the overflow key when the map is full.
#[inline(always)]
fn flow(key: &FlowKey) -> Option<*mut FlowStats> {
    if let Some(p) = TCP_FLOWS.get_ptr_mut(key) {
        return Some(p);
    }
    let _ = TCP_FLOWS.insert(key, &FlowStats::ZERO, BPF_NOEXIST as u64);
    if let Some(p) = TCP_FLOWS.get_ptr_mut(key) {
        // ours, or another CPU's that won the race
        return Some(p);
    }
    count(Counter::TcpFlowsFull);
    let overflow = FlowKey {
        direction: DIR_OVERFLOW,
        ..FlowKey::default()
    };
    TCP_FLOWS.get_ptr_mut(&overflow)
}

#[inline(always)]
fn log2_bucket(v: u64) -> usize {
    if v == 0 {
        return 0;
    }
    // floor(log2 v) + 1, without a loop.
    let mut v = v;
    let mut r = 1usize;
    if v >= 1 << 32 {
        v >>= 32;
        r += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        r += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        r += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        r += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        r += 2;
    }
    if v >= 1 << 1 {
        r += 1;
    }
    if r >= DURATION_BUCKETS {
        DURATION_BUCKETS - 1
    } else {
        r
    }
}

/// `inet_sock_set_state` (BTF): args are `(const struct sock *sk, int
/// oldstate, int newstate)`. Most transitions (FIN_WAIT*, CLOSE_WAIT, ...)
/// are filtered out before any memory read.
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn tcp_set_state(ctx: BtfTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    let old: i32 = ctx.arg(1);
    let new: i32 = ctx.arg(2);
    if sk != 0 {
        let _ = on_tcp_state(sk, old, new);
    }
    0
}

/// Reads a field of `sk` at the BTF offset `which`.
#[inline(always)]
fn sk_field<T: Copy>(sk: u64, which: Offset) -> Option<T> {
    Some(load(sk, offset(which)?))
}

#[inline(always)]
fn is_tcp(sk: u64) -> bool {
    sk_field::<u16>(sk, Offset::SockProtocol) == Some(IPPROTO_TCP)
}

/// Dispatches one state change. Only four transitions do any work: a
/// session opens (SYN_SENT or SYN_RECV → ESTABLISHED), a connect fails
/// (SYN_SENT → CLOSE), an established session closes (→ CLOSE).
fn on_tcp_state(sk: u64, old: i32, new: i32) -> Option<()> {
    match (old, new) {
        (TCP_SYN_SENT, TCP_ESTABLISHED) => opened(sk, DIR_ACTIVE),
        // A passive open, usually in softirq context.
        (TCP_SYN_RECV, TCP_ESTABLISHED) => opened(sk, DIR_PASSIVE),
        (TCP_SYN_SENT, TCP_CLOSE) => {
            let f = flow(&flow_key(sk, DIR_ACTIVE)?)?;
            add(unsafe { &raw mut (*f).failed }, 1);
            Some(())
        }
        (_, TCP_CLOSE) if old != TCP_LISTEN && old != TCP_CLOSE && old != TCP_SYN_RECV => {
            closed(sk)
        }
        _ => None,
    }
}

/// The flow `sk` counts in. The owner is the cgroup recorded in the socket
/// when it was created (accepted sockets inherit the listener's), so it is
/// right in softirq context too, where the current task is unrelated.
#[inline(always)]
fn flow_key(sk: u64, direction: u8) -> Option<FlowKey> {
    if !is_tcp(sk) {
        return None;
    }
    let family: u16 = sk_field(sk, Offset::SockFamily)?;
    let mut key = FlowKey {
        cgroup_id: sock_cgroup(sk),
        direction,
        family: family as u8,
        ..FlowKey::default()
    };
    if direction == DIR_PASSIVE {
        key.lport = sk_field(sk, Offset::SockNum)?;
        return Some(key);
    }
    key.dport = u16::from_be(sk_field(sk, Offset::SockDport)?);
    if family == AF_INET {
        let a: u32 = sk_field(sk, Offset::SockDaddr)?;
        key.daddr[..4].copy_from_slice(&a.to_ne_bytes());
    } else {
        let a: [u64; 2] = sk_field(sk, Offset::SockDaddrV6)?;
        key.daddr[..8].copy_from_slice(&a[0].to_ne_bytes());
        key.daddr[8..].copy_from_slice(&a[1].to_ne_bytes());
    }
    Some(key)
}

/// A session became ESTABLISHED: remember when and where it counts (one
/// hash insert, removed at close), and count it opened.
#[inline(always)]
fn opened(sk: u64, direction: u8) -> Option<()> {
    let info = SockInfo {
        key: flow_key(sk, direction)?,
        // SAFETY: helper without preconditions.
        established_ns: unsafe { bpf_ktime_get_ns() },
    };
    if TCP_SOCKS.insert(&sk, &info, 0).is_err() {
        count(Counter::TcpSocksFull);
    }
    let f = flow(&info.key)?;
    add(unsafe { &raw mut (*f).opened }, 1);
    Some(())
}

/// An established session closed: its duration, bytes and the close.
#[inline(always)]
fn closed(sk: u64) -> Option<()> {
    // SAFETY: copied out at once.
    let Some(info) = (unsafe { TCP_SOCKS.get(&sk) }).copied() else {
        count(Counter::TcpUntracked);
        return None;
    };
    let _ = TCP_SOCKS.remove(&sk);
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let us = now.saturating_sub(info.established_ns) / 1000;
    let (tx, rx) = session_bytes(sk);
    let f = flow(&info.key)?;
    // SAFETY: pointers into the flow's map value.
    unsafe {
        add(&raw mut (*f).closed, 1);
        add(&raw mut (*f).bytes_tx, tx);
        add(&raw mut (*f).bytes_rx, rx);
        let b = log2_bucket(us);
        if b < DURATION_BUCKETS {
            add(&raw mut (*f).duration_us[b], 1);
        }
    }
    Some(())
}

/// Bytes acknowledged and received of a TCP socket, as tcplife reports them.
#[inline(always)]
fn session_bytes(sk: u64) -> (u64, u64) {
    // SAFETY: sk is the tracepoint's BTF-typed socket; the helper checks it
    // is a full TCP socket and returns a typed `struct tcp_sock *` or null.
    let tp = unsafe { bpf_skc_to_tcp_sock(sk as *mut _) } as u64;
    if tp == 0 {
        return (0, 0);
    }
    let read = |which| offset(which).map_or(0, |o| load::<u64>(tp, o));
    (read(Offset::TcpBytesAcked), read(Offset::TcpBytesReceived))
}

fn count_reset(ctx: &TracePointContext, which: Offset) -> Option<()> {
    let sk: u64 = field(ctx, which)?;
    if sk == 0 {
        return None;
    }
    // SAFETY: copied out at once.
    let key = unsafe { TCP_SOCKS.get(&sk)?.key };
    let f = flow(&key)?;
    add(unsafe { &raw mut (*f).resets }, 1);
    Some(())
}

/// `tcp:tcp_receive_reset`.
#[tracepoint(category = "tcp", name = "tcp_receive_reset")]
pub fn tcp_recv_reset(ctx: TracePointContext) -> i32 {
    let _ = count_reset(&ctx, Offset::RecvResetSkaddr);
    0
}

/// `tcp:tcp_send_reset`.
#[tracepoint(category = "tcp", name = "tcp_send_reset")]
pub fn tcp_send_reset(ctx: TracePointContext) -> i32 {
    let _ = count_reset(&ctx, Offset::SendResetSkaddr);
    0
}
