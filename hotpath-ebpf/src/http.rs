//! HTTP/1.x requests from the syscall exit hook, without kprobes.
//!
//! `count_sys_exit` calls [`on_sys_exit`] for the read and write families,
//! connect, accept and close (a bit test on the syscall number: every
//! other syscall pays one branch). At exit the arguments are still in
//! `pt_regs` and the result is known, so one hook sees the buffer and how
//! much of it was transferred.
//!
//! - A read or write whose first bytes are a request line (`GET /`, ...)
//!   starts a request on the connection `tgid << 32 | fd` (server side when
//!   read, client side when written), keeping its first
//!   [`HTTP_HEAD_LEN`] bytes. Later reads or writes in the same direction
//!   add to its size (headers split over reads, large bodies).
//! - The first bytes `HTTP/1.x NNN` in the other direction end it: one
//!   [`HttpRecord`] goes to the ring buffer.
//! - Only sockets accepted or connected since the agent started are looked
//!   at: accept and connect enter the fd in `HTTP_SOCKS` (an array slot per
//!   `tgid << 32 | fd`), close takes it out. A read or write on any other fd
//!   (files, pipes, eventfds, sockets older than the agent) costs one array
//!   load and a compare, no user-memory read and no hash lookup. A socket
//!   whose first 16 bytes are no HTTP (TLS, binary protocols) is marked
//!   ignored and costs the same from then on.
//! - The fd must be a TCP socket (checked once per connection through
//!   `task->files`).
//!
//! Whatever the kernel cannot deliver is counted in `HTTP_COUNTERS`.

use aya_ebpf::{
    bindings::{BPF_NOEXIST, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_ktime_get_ns,
        generated::{bpf_get_current_task, bpf_probe_read_kernel, bpf_probe_read_user},
    },
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
};
use hotpath_common::{
    Offset,
    http::{
        HTTP_CLIENT, HTTP_CONNS_MAX, HTTP_COUNTERS_LEN, HTTP_EVENTS_BYTES, HTTP_FLAG_COUNTED,
        HTTP_HEAD_LEN, HTTP_IDLE, HTTP_RECORD_FIXED, HTTP_SERVER, HTTP_SOCK_IGNORED,
        HTTP_SOCKS_LEN, HTTP_WAKEUP_BYTES, HttpDrop, HttpRecord, http_sock_slot,
    },
};

use crate::{AF_INET, IPPROTO_TCP, http_series::Counted, offset};

/// Set to 1 by the loader to turn the capture on.
#[unsafe(no_mangle)]
static HTTP_ENABLED: u32 = 0;

/// Set to 1 by the loader to send every request to the ring buffer; 0
/// sends those [`crate::http_sample`] picks (the RED histograms count
/// every request either way, [`crate::http_series`]).
#[unsafe(no_mangle)]
static HTTP_RECORDS_ALL: u32 = 1;

/// Whether every request goes to the ring buffer.
#[inline(always)]
fn records_all() -> bool {
    // SAFETY: reading a read-only global the loader set.
    unsafe { core::ptr::read_volatile(&HTTP_RECORDS_ALL) != 0 }
}

#[map]
static HTTP_CONNS: LruHashMap<u64, HttpRecord> = LruHashMap::with_max_entries(HTTP_CONNS_MAX, 0);

#[map]
static HTTP_EVENTS: RingBuf = RingBuf::with_byte_size(HTTP_EVENTS_BYTES, 0);

#[map]
static HTTP_COUNTERS: Array<u64> = Array::with_max_entries(HTTP_COUNTERS_LEN, 0);

#[map]
static HTTP_SOCKS: Array<u64> = Array::with_max_entries(HTTP_SOCKS_LEN, 0);

/// 1 while the agent has the capture paused (its CPU budget): transfers
/// are not looked at; sockets are still followed and forgotten, so it
/// resumes where it was (a request pending across the pause is lost, and
/// counted as `replaced_request` or `unmatched_response` after it).
#[map]
static HTTP_PAUSED: Array<u32> = Array::with_max_entries(1, 0);

/// A zeroed connection to fill before inserting (too big for the stack).
#[map]
static HTTP_SCRATCH: PerCpuArray<HttpRecord> = PerCpuArray::with_max_entries(1, 0);

// x86_64 syscall numbers.
const NR_READ: u32 = 0;
const NR_WRITE: u32 = 1;
const NR_CLOSE: u32 = 3;
const NR_READV: u32 = 19;
const NR_WRITEV: u32 = 20;
const NR_SENDFILE: u32 = 40;
const NR_CONNECT: u32 = 42;
const NR_ACCEPT: u32 = 43;
const NR_SENDTO: u32 = 44;
const NR_RECVFROM: u32 = 45;
const NR_SENDMSG: u32 = 46;
const NR_RECVMSG: u32 = 47;
const NR_ACCEPT4: u32 = 288;

/// connect's result for a non-blocking socket still connecting.
const EINPROGRESS: i64 = -115;

/// The syscalls below 64 the capture looks at, as a bit mask.
const LOW_MASK: u64 = (1 << NR_READ)
    | (1 << NR_WRITE)
    | (1 << NR_CLOSE)
    | (1 << NR_READV)
    | (1 << NR_WRITEV)
    | (1 << NR_SENDFILE)
    | (1 << NR_CONNECT)
    | (1 << NR_ACCEPT)
    | (1 << NR_SENDTO)
    | (1 << NR_RECVFROM)
    | (1 << NR_SENDMSG)
    | (1 << NR_RECVMSG);

// x86_64 `struct pt_regs`, in u64 words.
const REG_DI: usize = 14;
const REG_SI: usize = 13;

/// Whether the capture is on and `nr` is one of its syscalls.
#[inline(always)]
pub(crate) fn wanted(nr: u32) -> bool {
    // SAFETY: reading a read-only global the loader set.
    let on = unsafe { core::ptr::read_volatile(&HTTP_ENABLED) } != 0;
    on && ((nr < 64 && (LOW_MASK >> nr) & 1 == 1) || nr == NR_ACCEPT4)
}

pub(crate) fn count(why: HttpDrop) {
    if let Some(p) = HTTP_COUNTERS.get_ptr_mut(why as u32) {
        crate::add(p, 1);
    }
}

/// Where the data of a read or write is, by syscall.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Buf {
    /// The second argument is the buffer.
    Plain,
    /// The second argument is a `struct iovec *`.
    Iov,
    /// The second argument is a `struct msghdr *`.
    Msg,
    /// No buffer to look at (sendfile): bytes only.
    None,
}

/// The hook: `regs` the syscall's `pt_regs`, `nr` its number (one of
/// [`wanted`]), `ret` its result.
#[inline(never)]
pub(crate) fn on_sys_exit(regs: *const u64, nr: u32, ret: i64) -> i32 {
    // SAFETY: regs is the BTF pointer of the tracepoint; the verifier
    // checks these loads against struct pt_regs.
    let (a0, a1) = unsafe { (*regs.add(REG_DI), *regs.add(REG_SI)) };
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = pid_tgid >> 32;
    match nr {
        NR_CLOSE => forget(tgid << 32 | (a0 & 0xffff_ffff)),
        NR_CONNECT if ret == 0 || ret == EINPROGRESS => {
            follow(tgid << 32 | (a0 & 0xffff_ffff));
        }
        NR_ACCEPT | NR_ACCEPT4 if ret >= 0 => follow(tgid << 32 | ret as u64),
        _ if ret > 0 => {
            let key = tgid << 32 | (a0 & 0xffff_ffff);
            let Some(slot) = HTTP_SOCKS.get_ptr_mut(http_sock_slot(key)) else {
                return 0;
            };
            // SAFETY: a pointer into the array's value.
            if unsafe { *slot } != key {
                // not a socket we follow, or one marked ignored
                return 0;
            }
            if HTTP_PAUSED.get(0).is_some_and(|p| *p != 0) {
                return 0;
            }
            let write = matches!(
                nr,
                NR_WRITE | NR_WRITEV | NR_SENDTO | NR_SENDMSG | NR_SENDFILE
            );
            let kind = match nr {
                NR_READV | NR_WRITEV => Buf::Iov,
                NR_RECVMSG | NR_SENDMSG => Buf::Msg,
                NR_SENDFILE => Buf::None,
                _ => Buf::Plain,
            };
            if on_data(key, pid_tgid, a1, kind, ret as u64, write) == Some(false) {
                // SAFETY: as above.
                unsafe { *slot = key | HTTP_SOCK_IGNORED };
            }
        }
        _ => {}
    }
    0
}

/// Follows the socket `key` from now on (a new fd: what an older one of the
/// same number held is forgotten).
#[inline(always)]
fn follow(key: u64) {
    if let Some(slot) = HTTP_SOCKS.get_ptr_mut(http_sock_slot(key)) {
        // SAFETY: a pointer into the array's value.
        let old = unsafe { *slot };
        unsafe { *slot = key };
        if old & !HTTP_SOCK_IGNORED == key {
            let _ = HTTP_CONNS.remove(&key);
        }
    }
}

/// The fd of `key` was closed.
///
/// The hook runs at the syscall's exit, after the kernel freed the fd
/// number: another thread of the process may already hold it again, a
/// socket it accepted or connected (and followed) in between. That socket
/// is left alone; its own `follow` forgot what the closed one left.
#[inline(always)]
fn forget(key: u64) {
    if let Some(slot) = HTTP_SOCKS.get_ptr_mut(http_sock_slot(key)) {
        // SAFETY: a pointer into the array's value.
        if unsafe { *slot } & !HTTP_SOCK_IGNORED == key && !reopened_as_socket(key) {
            unsafe { *slot = 0 };
            let _ = HTTP_CONNS.remove(&key);
        }
    }
}

/// Whether the fd of `key`, just closed, is a socket again (reused by
/// another thread before the close's exit hook ran).
#[inline(never)]
fn reopened_as_socket(key: u64) -> bool {
    socket_of(key & 0xffff_ffff).is_some()
}

/// Reads a `T` from user memory.
#[inline(always)]
fn user<T: Copy + Default>(addr: u64) -> T {
    let mut v = T::default();
    // SAFETY: the helper checks the address; on failure `v` stays default.
    unsafe {
        bpf_probe_read_user(
            &mut v as *mut T as *mut _,
            core::mem::size_of::<T>() as u32,
            addr as *const _,
        )
    };
    v
}

/// Reads a `T` from kernel memory.
#[inline(always)]
fn kernel<T: Copy + Default>(addr: u64) -> T {
    let mut v = T::default();
    // SAFETY: as `user`.
    unsafe {
        bpf_probe_read_kernel(
            &mut v as *mut T as *mut _,
            core::mem::size_of::<T>() as u32,
            addr as *const _,
        )
    };
    v
}

/// The user address of the data and how many bytes of it were transferred.
#[inline(always)]
fn data_at(arg: u64, kind: Buf, ret: u64) -> (u64, u64) {
    let iov = match kind {
        Buf::Plain => return (arg, ret),
        Buf::None => return (0, ret),
        Buf::Iov => arg,
        // struct msghdr: name, namelen (+pad), iov, iovlen, ...
        Buf::Msg => user::<u64>(arg + 16),
    };
    let v: [u64; 2] = user(iov);
    (v[0], if v[1] < ret { v[1] } else { ret })
}

/// What the first bytes of a transfer are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Head {
    Request,
    /// A status line with its code.
    Response(u16),
    Other,
}

fn classify(b: &[u8; 16], n: u64) -> Head {
    if n >= 12 && b[..7] == *b"HTTP/1." && b[8] == b' ' {
        let d = |c: u8| c.wrapping_sub(b'0');
        let (x, y, z) = (d(b[9]), d(b[10]), d(b[11]));
        if (1..=5).contains(&x) && y < 10 && z < 10 {
            return Head::Response(x as u16 * 100 + y as u16 * 10 + z as u16);
        }
        return Head::Other;
    }
    // the method's length, where its space is
    let len = match [b[0], b[1], b[2], b[3]] {
        [b'G', b'E', b'T', b' '] | [b'P', b'U', b'T', b' '] => 3,
        [b'P', b'O', b'S', b'T'] | [b'H', b'E', b'A', b'D'] => 4,
        [b'P', b'A', b'T', b'C'] if b[4] == b'H' => 5,
        [b'T', b'R', b'A', b'C'] if b[4] == b'E' => 5,
        [b'D', b'E', b'L', b'E'] if b[4] == b'T' && b[5] == b'E' => 6,
        [b'O', b'P', b'T', b'I'] if b[4..7] == *b"ONS" => 7,
        _ => return Head::Other,
    };
    let target = b[len + 1];
    if n > len as u64 + 1 && b[len] == b' ' && (target == b'/' || target == b'*' || target == b'h')
    {
        Head::Request
    } else {
        Head::Other
    }
}

/// One read or write of `ret` bytes on connection `key`. `Some(false)`
/// when the socket's first bytes (at least 16 of them) were no HTTP.
///
/// Reading user memory is the capture's main cost (about 150 ns a read
/// in this VM, most of it the helper's fixed work: hardened usercopy's
/// checks of the destination), so each transfer is read once where a
/// request may start: straight into the head it would keep.
#[inline(always)]
fn on_data(key: u64, pid_tgid: u64, arg: u64, kind: Buf, ret: u64, write: bool) -> Option<bool> {
    let (addr, n) = data_at(arg, kind, ret);
    let conn = HTTP_CONNS.get_ptr_mut(&key);
    if addr == 0 {
        // sendfile: bytes only
        if let Some(c) = conn {
            // SAFETY: a pointer into the map value; this task's own connection.
            more_bytes(unsafe { &mut *c }, write, ret);
        }
        return Some(true);
    }
    let Some(c) = conn else {
        return first_bytes(key, pid_tgid, addr, n, ret, write);
    };
    // SAFETY: as above.
    let c = unsafe { &mut *c };
    if c.kind == HTTP_IDLE {
        let m = read_head(&mut c.head, addr, n);
        match classify(first16(&c.head), n) {
            Head::Request => start(c, pid_tgid, m, ret, side(write)),
            Head::Response(_) => count(HttpDrop::Unmatched),
            Head::Other => {}
        }
        return Some(true);
    }
    let mut b = [0u8; 16];
    let m = if n < 16 { n } else { 16 };
    // SAFETY: the helper checks the address; m <= 16.
    unsafe { bpf_probe_read_user(b.as_mut_ptr() as *mut _, m as u32, addr as *const _) };
    match (classify(&b, n), write, c.kind) {
        (Head::Request, ..) => {
            count(HttpDrop::Replaced);
            let m = read_head(&mut c.head, addr, n);
            start(c, pid_tgid, m, ret, side(write));
        }
        (Head::Response(status), true, HTTP_SERVER)
        | (Head::Response(status), false, HTTP_CLIENT) => emit(c, pid_tgid, ret, status),
        (Head::Response(_), ..) => count(HttpDrop::Unmatched),
        (Head::Other, ..) => more_bytes(c, write, ret),
    }
    Some(true)
}

/// The first bytes seen on a followed socket: a request line starts
/// following the connection (its head read once, into the record that
/// becomes the connection's). `Some(false)` when at least 16 bytes are no
/// HTTP, or the socket is no TCP one.
#[inline(always)]
fn first_bytes(key: u64, pid_tgid: u64, addr: u64, n: u64, ret: u64, write: bool) -> Option<bool> {
    let scratch = HTTP_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's scratch entry.
    let m = read_head(unsafe { &mut (*scratch).head }, addr, n);
    match classify(first16(unsafe { &(*scratch).head }), n) {
        Head::Request => {}
        Head::Response(_) => {
            count(HttpDrop::Unmatched);
            return Some(true);
        }
        Head::Other => return Some(n < 16),
    }
    let Some(c) = new_conn(key) else {
        // not a TCP socket (a Unix socket, UDP, ...): never again
        return Some(false);
    };
    // SAFETY: a pointer into the map value; this task's own connection.
    start(unsafe { &mut *c }, pid_tgid, m, ret, side(write));
    Some(true)
}

/// Bytes after a request's first ones in its direction (headers split over
/// reads, a body) add to its size.
#[inline(always)]
fn more_bytes(c: &mut HttpRecord, write: bool, ret: u64) {
    if (c.kind == HTTP_SERVER && !write) || (c.kind == HTTP_CLIENT && write) {
        c.req_bytes += ret;
    }
}

/// The side of a request whose line was written (client) or read (server).
#[inline(always)]
fn side(write: bool) -> u8 {
    if write { HTTP_CLIENT } else { HTTP_SERVER }
}

/// Reads the first `min(n, HTTP_HEAD_LEN)` bytes at `addr` into `head`:
/// how many.
#[inline(always)]
fn read_head(head: &mut [u8; HTTP_HEAD_LEN], addr: u64, n: u64) -> u64 {
    let m = if n < HTTP_HEAD_LEN as u64 {
        n
    } else {
        HTTP_HEAD_LEN as u64
    };
    // SAFETY: m <= HTTP_HEAD_LEN, the size of `head`.
    unsafe { bpf_probe_read_user(head.as_mut_ptr() as *mut _, m as u32, addr as *const _) };
    m
}

const _: () = assert!(HTTP_HEAD_LEN >= 16);

/// The first 16 bytes of a head, what [`classify`] looks at.
#[inline(always)]
fn first16(head: &[u8; HTTP_HEAD_LEN]) -> &[u8; 16] {
    // SAFETY: HTTP_HEAD_LEN >= 16; [u8; 16] has alignment 1.
    unsafe { &*(head.as_ptr() as *const [u8; 16]) }
}

/// A request begins: its time, thread and size; its first `m` bytes are
/// in the head already.
#[inline(always)]
fn start(c: &mut HttpRecord, pid_tgid: u64, m: u64, ret: u64, kind: u8) {
    c.kind = kind;
    // SAFETY: helper without preconditions.
    c.start_ns = unsafe { bpf_ktime_get_ns() };
    c.tid = pid_tgid as u32;
    c.req_bytes = ret;
    c.head_len = m as u32;
    c.flags = 0;
    if !records_all() {
        crate::http_sample::start(c, pid_tgid as u32);
    }
}

/// The response to the pending request: counted in its RED series, and
/// the connection's record, filled in place, to user space (only the
/// filled part of its head) when every record goes there, when its span is
/// wanted ([`crate::http_sample::send`]), or when the kernel could not
/// count it.
#[inline(always)]
fn emit(c: &mut HttpRecord, pid_tgid: u64, ret: u64, status: u16) {
    // SAFETY: helper without preconditions.
    c.end_ns = unsafe { bpf_ktime_get_ns() };
    c.resp_bytes = ret;
    c.pid = (pid_tgid >> 32) as u32;
    c.status = status;
    let dur = c.end_ns.wrapping_sub(c.start_ns);
    let counted = crate::http_series::count(c, dur, status);
    if counted != Counted::No {
        c.flags |= HTTP_FLAG_COUNTED;
    }
    // (the decision's bookkeeping runs whatever the other reasons)
    let wanted = records_all()
        || crate::http_sample::send(c, pid_tgid as u32, status, dur)
        || counted == Counted::No;
    if wanted {
        output(c);
    } else {
        count(HttpDrop::SampledOut);
    }
    c.kind = HTTP_IDLE;
}

/// The filled part of `c` to the ring buffer.
#[inline(always)]
fn output(c: &HttpRecord) {
    let head = c.head_len as usize;
    let len = HTTP_RECORD_FIXED
        + if head < HTTP_HEAD_LEN {
            head
        } else {
            HTTP_HEAD_LEN
        };
    // SAFETY: len <= size_of::<HttpRecord>(), all of it plain data.
    let bytes = unsafe { core::slice::from_raw_parts(c as *const HttpRecord as *const u8, len) };
    if HTTP_EVENTS.output::<[u8]>(bytes, wakeup(len)).is_err() {
        count(HttpDrop::RingFull);
    }
}

/// The agent drains the ring on a timer: a record wakes it only when it
/// fills the ring past a quarter (once per drain). A wakeup per record,
/// the default when the agent has caught up, costs an irq_work, a
/// self-IPI: several µs on a virtual machine, more than the rest of the
/// capture.
#[inline(always)]
fn wakeup(len: usize) -> u64 {
    // producer minus consumer position, before this record
    let waiting = HTTP_EVENTS.query(BPF_RB_AVAIL_DATA as u64);
    // with the ring's 8-byte header, rounded up to 8
    let record = (len as u64 + 8 + 7) & !7;
    let threshold = HTTP_WAKEUP_BYTES as u64;
    if waiting < threshold && waiting + record >= threshold {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

/// Starts following `key` if its fd is a TCP socket: its addresses and
/// the process's cgroup.
#[inline(never)]
fn new_conn(key: u64) -> Option<*mut HttpRecord> {
    let sk = socket_of(key & 0xffff_ffff)?;
    let protocol: u16 = kernel(sk + offset(Offset::SockProtocol)? as u64);
    let family: u16 = kernel(sk + offset(Offset::SockFamily)? as u64);
    if protocol != IPPROTO_TCP as u16 || (family != AF_INET && family != 10) {
        return None;
    }
    let c = HTTP_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's scratch entry.
    let c = unsafe { &mut *c };
    c.kind = HTTP_IDLE;
    c.seq = 0;
    c.family = family;
    // SAFETY: helper without preconditions.
    c.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    c.lport = kernel(sk + offset(Offset::SockNum)? as u64);
    c.rport = u16::from_be(kernel(sk + offset(Offset::SockDport)? as u64));
    if family == AF_INET {
        let l: u32 = kernel(sk + offset(Offset::SockRcvSaddr)? as u64);
        let r: u32 = kernel(sk + offset(Offset::SockDaddr)? as u64);
        c.laddr = [0; 16];
        c.raddr = [0; 16];
        c.laddr[..4].copy_from_slice(&l.to_ne_bytes());
        c.raddr[..4].copy_from_slice(&r.to_ne_bytes());
    } else {
        c.laddr = kernel(sk + offset(Offset::SockV6RcvSaddr)? as u64);
        c.raddr = kernel(sk + offset(Offset::SockDaddrV6)? as u64);
    }
    let _ = HTTP_CONNS.insert(&key, c, BPF_NOEXIST as u64);
    HTTP_CONNS.get_ptr_mut(&key)
}

/// The `struct sock *` of the current task's `fd`, if it is a socket:
/// `current->files->fdt->fd[fd]->private_data`, checked by the socket's
/// back pointer to its file.
#[inline(always)]
fn socket_of(fd: u64) -> Option<u64> {
    // SAFETY: helper without preconditions.
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = kernel(task + offset(Offset::TaskFiles)? as u64);
    let fdt: u64 = kernel(files + offset(Offset::FilesFdt)? as u64);
    let max: u32 = kernel(fdt + offset(Offset::FdtableMaxFds)? as u64);
    if files == 0 || fdt == 0 || fd >= max as u64 {
        return None;
    }
    let fds: u64 = kernel(fdt + offset(Offset::FdtableFd)? as u64);
    let file: u64 = kernel(fds + fd * 8);
    if file == 0 {
        return None;
    }
    let sock: u64 = kernel(file + offset(Offset::FilePrivate)? as u64);
    if sock == 0 {
        return None;
    }
    let back: u64 = kernel(sock + offset(Offset::SocketFile)? as u64);
    if back != file {
        return None;
    }
    let sk: u64 = kernel(sock + offset(Offset::SocketSk)? as u64);
    (sk != 0).then_some(sk)
}
