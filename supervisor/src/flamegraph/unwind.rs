//! DWARF unwinding in user space: the profiler copies the user registers and
//! the top of the user stack of each sample; framehop walks that copy with
//! the `.eh_frame` tables of the binaries the process has mapped (frame
//! pointers and instruction analysis where a table is missing). Also decides
//! which processes need it ([`UnwindMode`]).

use std::{
    collections::HashMap, ops::Range, os::unix::fs::MetadataExt as _, path::PathBuf, sync::Arc,
    time::Duration,
};

use framehop::{
    ExplicitModuleSectionInfo, Module, Unwinder as _,
    x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64},
};
use hotpath_common::profile::StackSample;

use super::elf::{Bytes, ElfInfo};

/// How user stacks are unwound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum UnwindMode {
    /// Per binary: frame pointers where the program keeps them in every
    /// function (leaves too), DWARF (`.eh_frame`) where it does not.
    #[default]
    Auto,
    /// Frame pointers, walked in the kernel (cheapest; loses callers in
    /// code built without them).
    Fp,
    /// DWARF: a copy of the user stack unwound in user space with the
    /// binaries' `.eh_frame` tables.
    Dwarf,
}

/// Most frames kept per stack (as many as the kernel's frame-pointer walk).
const MAX_FRAMES: usize = 127;

/// Whether the program `pid` runs keeps frame pointers in its functions
/// (then the kernel's frame-pointer walk serves it); `false` when it cannot
/// be read.
pub(crate) fn process_has_frame_pointers(pid: u32) -> bool {
    ElfInfo::open(&PathBuf::from(format!("/proc/{pid}/exe"))).is_ok_and(|e| e.frame_pointers)
}

/// What unwinding cost and found.
#[derive(Debug, Default, Clone)]
pub(crate) struct UnwindStats {
    /// Samples unwound.
    pub(crate) samples: u64,
    /// Frames found in all.
    pub(crate) frames: u64,
    /// Stack bytes copied by the kernel in all.
    pub(crate) stack_bytes: u64,
    /// Samples whose user stack could not be read at all.
    pub(crate) unreadable: u64,
    /// CPU time spent unwinding (not reading maps or files): this thread's
    /// CPU clock, so time the thread waited for a CPU does not count.
    pub(crate) time: Duration,
    /// CPU time each sample took, in ns (saturating), for the median.
    pub(crate) each_ns: Vec<u32>,
}

impl UnwindStats {
    /// The median time one sample took to unwind: the steady cost, without
    /// the first samples' one-off work (parsing each binary's tables).
    pub(crate) fn median(&self) -> Option<Duration> {
        let mut v = self.each_ns.clone();
        v.sort_unstable();
        v.get(v.len() / 2)
            .map(|&ns| Duration::from_nanos(ns.into()))
    }
}

/// Unwinds copied stacks; keeps one unwinder per process and one parsed
/// file per (device, inode).
#[derive(Default)]
pub(crate) struct DwarfUnwinder {
    processes: HashMap<u32, Process>,
    files: HashMap<(u64, u64), Option<Arc<ElfInfo>>>,
    cache: CacheX86_64,
    /// What unwinding cost so far.
    pub(crate) stats: UnwindStats,
}

/// The modules of one process.
struct Process {
    unwinder: UnwinderX86_64<Bytes>,
    /// Executable ranges known.
    code: Vec<Range<u64>>,
    /// Whether the memory map was re-read after an address outside `code`.
    refreshed: bool,
}

impl DwarfUnwinder {
    /// An unwinder with empty caches.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Frame addresses of `sample`'s user stack, innermost first, ready for
    /// symbolizing (return addresses minus one). Empty when the sample has
    /// no user context (a kernel thread).
    pub(crate) fn unwind(&mut self, sample: &StackSample) -> Vec<u64> {
        if sample.ip == 0 {
            return Vec::new();
        }
        let len = (sample.len as usize).min(sample.stack.len());
        self.stats.samples += 1;
        self.stats.stack_bytes += len as u64;
        if len == 0 {
            self.stats.unreadable += 1;
        }
        self.ensure_process(sample.tgid, sample.ip);
        let started = thread_cpu_time();
        let Some(process) = self.processes.get(&sample.tgid) else {
            return vec![sample.ip];
        };
        let stack = &sample.stack[..len];
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            let off = usize::try_from(addr.checked_sub(sample.sp).ok_or(())?).map_err(|_| ())?;
            let word = stack.get(off..off + 8).ok_or(())?;
            Ok(u64::from_le_bytes(word.try_into().map_err(|_| ())?))
        };
        let regs = UnwindRegsX86_64::new(sample.ip, sample.sp, sample.bp);
        let mut frames = Vec::new();
        let mut iter =
            process
                .unwinder
                .iter_frames(sample.ip, regs, &mut self.cache, &mut read_stack);
        while let Ok(Some(frame)) = iter.next() {
            frames.push(frame.address_for_lookup());
            if frames.len() == MAX_FRAMES {
                break;
            }
        }
        self.stats.frames += frames.len() as u64;
        let took = thread_cpu_time().saturating_sub(started);
        self.stats.time += took;
        self.stats
            .each_ns
            .push(u32::try_from(took.as_nanos()).unwrap_or(u32::MAX));
        frames
    }

    /// Builds the unwinder of `pid` on its first sample, and once more when
    /// it runs code outside every module known (a library loaded later).
    fn ensure_process(&mut self, pid: u32, ip: u64) {
        let stale = match self.processes.get(&pid) {
            None => true,
            Some(p) => !p.refreshed && !p.code.iter().any(|r| r.contains(&ip)),
        };
        if !stale {
            return;
        }
        let refreshed = self.processes.contains_key(&pid);
        let mut process = Process {
            unwinder: UnwinderX86_64::new(),
            code: Vec::new(),
            refreshed,
        };
        for m in executable_mappings(pid) {
            let Some(info) = self.file(pid, &m) else {
                continue;
            };
            if let Some(module) = module(&m, &info) {
                process.code.push(m.range.clone());
                process.unwinder.add_module(module);
            }
        }
        self.processes.insert(pid, process);
    }

    /// The parsed file behind mapping `m` of `pid`, read once per file.
    fn file(&mut self, pid: u32, m: &Mapping) -> Option<Arc<ElfInfo>> {
        let path = PathBuf::from(format!(
            "/proc/{pid}/map_files/{:x}-{:x}",
            m.range.start, m.range.end
        ));
        let meta = std::fs::metadata(&path).ok()?;
        self.files
            .entry((meta.dev(), meta.ino()))
            .or_insert_with(|| match ElfInfo::open(&path) {
                Ok(info) => Some(Arc::new(info)),
                Err(e) => {
                    tracing::debug!("{}: {e}", m.path);
                    None
                }
            })
            .clone()
    }
}

/// The CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec the call writes.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The framehop module of one executable mapping.
fn module(m: &Mapping, info: &ElfInfo) -> Option<Module<Bytes>> {
    let bias = info.bias(m.range.start, m.offset)?;
    let data = |s: &Option<super::elf::Section>| s.as_ref().and_then(|s| s.data.clone());
    let svma = |s: &Option<super::elf::Section>| s.as_ref().map(|s| s.svma.clone());
    let sections = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: svma(&info.text),
        text: data(&info.text),
        got_svma: info.got.clone(),
        eh_frame_svma: svma(&info.eh_frame),
        eh_frame: data(&info.eh_frame),
        eh_frame_hdr_svma: svma(&info.eh_frame_hdr),
        eh_frame_hdr: data(&info.eh_frame_hdr),
        debug_frame: data(&info.debug_frame),
        stubs_svma: None,
        stub_helper_svma: None,
        unwind_info: None,
        text_segment_svma: None,
        text_segment: None,
    };
    Some(Module::new(m.path.clone(), m.range.clone(), bias, sections))
}

/// One executable, file-backed mapping of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    range: Range<u64>,
    offset: u64,
    path: String,
}

/// The executable, file-backed mappings of `pid` (from /proc/PID/maps).
fn executable_mappings(pid: u32) -> Vec<Mapping> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .lines()
        .filter_map(parse_exec_mapping)
        .collect()
}

/// One line of /proc/PID/maps when it maps a file with execute permission.
fn parse_exec_mapping(line: &str) -> Option<Mapping> {
    let mut f = line.split_whitespace();
    let (start, end) = f.next()?.split_once('-')?;
    let perms = f.next()?;
    let offset = u64::from_str_radix(f.next()?, 16).ok()?;
    let (_dev, inode) = (f.next()?, f.next()?);
    let path: String = f.collect::<Vec<_>>().join(" ");
    if !perms.contains('x') || inode == "0" || !path.starts_with('/') {
        return None;
    }
    Some(Mapping {
        range: u64::from_str_radix(start, 16).ok()?..u64::from_str_radix(end, 16).ok()?,
        offset,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_mappings_only() {
        let m = parse_exec_mapping(
            "7f01000-7f02000 r-xp 00028000 08:01 1234 /usr/lib/x86_64-linux-gnu/libc.so.6",
        )
        .unwrap();
        assert_eq!(m.range, 0x7f01000..0x7f02000);
        assert_eq!(m.offset, 0x28000);
        assert!(m.path.ends_with("libc.so.6"));
        assert!(parse_exec_mapping("7f01000-7f02000 r--p 00000000 08:01 1234 /lib/x").is_none());
        assert!(parse_exec_mapping("7f01000-7f02000 r-xp 00000000 00:00 0 [vdso]").is_none());
    }

    /// A real stack of this process: the unwinder, given this thread's
    /// registers and a copy of its stack, finds the test's callers.
    #[test]
    #[inline(never)]
    fn unwinds_this_threads_stack() {
        let frames = capture_and_unwind();
        let mut sym = super::super::symbolize::Symbolizer::new();
        let names = sym.user_frames(std::process::id(), &frames);
        let joined = names.join(";");
        assert!(frames.len() >= 3, "{names:?}");
        assert!(joined.contains("capture_and_unwind"), "{joined}");
        assert!(joined.contains("unwinds_this_threads_stack"), "{joined}");
    }

    #[inline(never)]
    fn capture_and_unwind() -> Vec<u64> {
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads three registers and the address of a label.
        unsafe {
            std::arch::asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                ip = out(reg) ip,
                sp = out(reg) sp,
                bp = out(reg) bp,
            );
        }
        // SAFETY: all-zero bytes are a valid StackSample (integers and arrays).
        let mut sample: Box<StackSample> = unsafe { Box::new_zeroed().assume_init() };
        sample.tgid = std::process::id();
        (sample.ip, sample.sp, sample.bp) = (ip, sp, bp);
        // Copy what lies above sp in this thread's stack, as the kernel does,
        // up to the end of the stack's mapping.
        let end = std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .filter_map(|l| {
                let (s, e) = l.split_whitespace().next()?.split_once('-')?;
                Some(u64::from_str_radix(s, 16).ok()?..u64::from_str_radix(e, 16).ok()?)
            })
            .find(|r| r.contains(&sp))
            .expect("the stack is mapped")
            .end;
        let want = ((end - sp) as usize).min(sample.stack.len());
        // SAFETY: [sp, sp + want) lies in this thread's mapped stack.
        let src = unsafe { std::slice::from_raw_parts(sp as *const u8, want) };
        sample.stack[..want].copy_from_slice(src);
        sample.len = want as u64;
        let mut unwinder = DwarfUnwinder::new();
        std::hint::black_box(unwinder.unwind(&sample))
    }
}
