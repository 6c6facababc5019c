//! Newlines in the strings processes pass to the syscalls opensnoop,
//! statsnoop and mountsnoop print (open, openat, newfstatat, statx, mount,
//! umount), counted per process and in all: a tool's record that spans
//! several lines is believed only as far as these counts allow.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user_str_bytes},
    macros::{map, tracepoint},
    maps::{Array, PerCpuArray},
    programs::TracePointContext,
};
use hotpath_common::{FAMILY_MOUNTS, FAMILY_PATHS, NEWLINE_FAMILIES};

use crate::{add, pids::pid_entry};

// ---------------------------------------------------------------------------
// Newlines in the strings of traced syscalls
// ---------------------------------------------------------------------------

/// Longest string read (mountsnoop prints paths up to PATH_MAX).
const STR_MAX: usize = 4096;
/// opensnoop and statsnoop print at most NAME_MAX bytes of a path.
const PATH_SHOWN: usize = 256;
/// mountsnoop prints at most 512 bytes of the data argument.
const DATA_SHOWN: usize = 512;

#[map]
static STR_BUF: PerCpuArray<[u8; STR_MAX]> = PerCpuArray::with_max_entries(1, 0);
#[map]
static NEWLINES: Array<u64> = Array::with_max_entries(NEWLINE_FAMILIES, 0);

/// Syscall argument `n` of a `syscalls:sys_enter_*` record (the ABI of
/// these tracepoints: 8 bytes of common fields, the number, then 6 args).
#[inline(always)]
fn syscall_arg(ctx: &TracePointContext, n: usize) -> u64 {
    // SAFETY: tracepoint records are readable; bpf_probe_read_kernel checks.
    unsafe { ctx.read_at::<u64>(16 + 8 * n).unwrap_or(0) }
}

/// Newlines in the first `MAX` bytes of the user string at `ptr`.
#[inline(always)]
fn newlines_in<const MAX: usize>(ptr: u64) -> u32 {
    let Some(buf) = STR_BUF.get_ptr_mut(0) else {
        return 0;
    };
    if ptr == 0 {
        return 0;
    }
    // SAFETY: this CPU's scratch buffer; nothing else runs on it meanwhile.
    let dest = unsafe { &mut (&mut *buf)[..MAX] };
    // SAFETY: the helper checks the user address.
    let len = match unsafe { bpf_probe_read_user_str_bytes(ptr as *const u8, dest) } {
        Ok(s) => s.len(),
        Err(_) => return 0,
    };
    // SAFETY: the buffer was just written; read as words below.
    count_newlines(unsafe { &*buf }, len.min(MAX), MAX / 8)
}

/// Newlines in the first `len` bytes of `buf`, eight bytes at a time (a
/// byte-wise loop over 4 KiB strings is more than the verifier accepts):
/// whole words in a loop with one exit, then the last partial word.
#[inline(always)]
fn count_newlines(buf: &[u8; STR_MAX], len: usize, words: usize) -> u32 {
    let full = len / 8;
    let mut n = 0u32;
    let mut i = 0usize;
    while i < words && i < STR_MAX / 8 {
        if i >= full {
            break;
        }
        n += newlines_in_word(word_at(buf, i));
        i += 1;
    }
    let rem = len % 8;
    if rem > 0 && full < words && full < STR_MAX / 8 {
        n += newlines_in_word(word_at(buf, full) & ((1u64 << (rem * 8)) - 1));
    }
    n
}

/// Word `i` of `buf` (`i < STR_MAX / 8`).
#[inline(always)]
fn word_at(buf: &[u8; STR_MAX], i: usize) -> u64 {
    // SAFETY: callers keep i below STR_MAX / 8, inside the buffer.
    unsafe { core::ptr::read_unaligned(buf.as_ptr().add(i * 8) as *const u64) }
}

/// How many bytes of `w` are `\n` (no branches).
#[inline(always)]
fn newlines_in_word(w: u64) -> u32 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = w ^ 0x0a0a_0a0a_0a0a_0a0a;
    // the high bit of each byte that is zero in x, i.e. a newline in w
    let zeros = !(((x & LOW7) + LOW7) | x) & HIGH;
    ((zeros >> 7).wrapping_mul(0x0101_0101_0101_0101) >> 56) as u32
}

/// Adds `n` newlines of `family` to the calling process and the total.
#[inline(always)]
fn note_newlines(family: u32, n: u32) {
    if n == 0 {
        return;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if let Some(p) = pid_entry(tgid, 0) {
        // SAFETY: pointers into the map value; atomic adds.
        unsafe {
            let field = if family == FAMILY_PATHS {
                &raw mut (*p).path_newlines
            } else {
                &raw mut (*p).mount_newlines
            };
            atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(field, n);
            (*p).newline_ns = bpf_ktime_get_ns();
        }
    }
    if let Some(total) = NEWLINES.get_ptr_mut(family) {
        add(total, u64::from(n));
    }
}

macro_rules! string_probe {
    ($name:ident, $tp:literal, $family:expr, [$(($arg:expr, $max:expr)),*]) => {
        #[doc = concat!("`syscalls:", $tp, "`: counts newlines in its strings.")]
        #[tracepoint(category = "syscalls", name = $tp)]
        pub fn $name(ctx: TracePointContext) -> i32 {
            let mut n = 0;
            $( n += newlines_in::<$max>(syscall_arg(&ctx, $arg)); )*
            note_newlines($family, n);
            0
        }
    };
}

string_probe!(
    strings_openat,
    "sys_enter_openat",
    FAMILY_PATHS,
    [(1, PATH_SHOWN)]
);
string_probe!(
    strings_open,
    "sys_enter_open",
    FAMILY_PATHS,
    [(0, PATH_SHOWN)]
);
string_probe!(
    strings_newfstatat,
    "sys_enter_newfstatat",
    FAMILY_PATHS,
    [(1, PATH_SHOWN)]
);
string_probe!(
    strings_statx,
    "sys_enter_statx",
    FAMILY_PATHS,
    [(1, PATH_SHOWN)]
);
string_probe!(
    strings_mount,
    "sys_enter_mount",
    FAMILY_MOUNTS,
    [(0, STR_MAX), (1, STR_MAX), (2, PATH_SHOWN), (4, DATA_SHOWN)]
);
string_probe!(
    strings_umount,
    "sys_enter_umount",
    FAMILY_MOUNTS,
    [(0, STR_MAX)]
);
