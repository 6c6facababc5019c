//! What the unwinder needs from an ELF file, read once per file: where its
//! code and unwind tables (`.text`, `.eh_frame`, `.eh_frame_hdr`,
//! `.debug_frame`) are, as zero-copy views of the mapped file, its load
//! segments (to place it in a process), and whether its functions keep
//! frame pointers.

use std::{fs::File, ops::Range, path::Path, sync::Arc};

use memmap2::Mmap;
use object::{Object as _, ObjectSection as _, ObjectSegment as _, ObjectSymbol as _, SymbolKind};

/// A byte range of a mapped file, shared: the section data the unwinder reads.
#[derive(Clone)]
pub(crate) struct Bytes {
    map: Arc<Mmap>,
    range: Range<usize>,
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

/// A section: its address as stated in the file and its bytes.
#[derive(Clone)]
pub(crate) struct Section {
    /// Stated virtual addresses.
    pub(crate) svma: Range<u64>,
    /// The bytes (empty for sections without file data, like `.bss`).
    pub(crate) data: Option<Bytes>,
}

/// One loadable segment: file offset and stated address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Offset in the file.
    pub(crate) offset: u64,
    /// Bytes in the file.
    pub(crate) filesz: u64,
    /// Stated virtual address.
    pub(crate) vaddr: u64,
    /// Whether it holds code (PF_X).
    pub(crate) executable: bool,
}

/// The parts of one ELF file that unwinding needs.
pub(crate) struct ElfInfo {
    /// `.text`.
    pub(crate) text: Option<Section>,
    /// `.eh_frame`.
    pub(crate) eh_frame: Option<Section>,
    /// `.eh_frame_hdr`.
    pub(crate) eh_frame_hdr: Option<Section>,
    /// `.debug_frame` (unwind tables kept with debug info).
    pub(crate) debug_frame: Option<Section>,
    /// `.got`.
    pub(crate) got: Option<Range<u64>>,
    /// Loadable segments.
    pub(crate) segments: Vec<Segment>,
    /// Whether most functions set up a frame pointer (`push rbp; mov rbp, rsp`).
    pub(crate) frame_pointers: bool,
}

/// Why an ELF file could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ElfError {
    /// Opening or mapping the file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is not an ELF file object can read.
    #[error("{0}")]
    Parse(#[from] object::Error),
}

impl ElfInfo {
    /// Maps and reads the ELF file at `path`.
    pub(crate) fn open(path: &Path) -> Result<ElfInfo, ElfError> {
        let file = File::open(path)?;
        // SAFETY: the file is only read; a binary rewritten in place while
        // mapped is the same hazard every profiler and debugger accepts.
        let map = Arc::new(unsafe { Mmap::map(&file) }?);
        Self::parse(map)
    }

    fn parse(map: Arc<Mmap>) -> Result<ElfInfo, ElfError> {
        let obj = object::File::parse(&**map)?;
        let section = |name: &str| {
            let s = obj.section_by_name(name)?;
            let data = s.file_range().and_then(|(off, size)| {
                let start = usize::try_from(off).ok()?;
                let end = start.checked_add(usize::try_from(size).ok()?)?;
                (end <= map.len()).then(|| Bytes {
                    map: map.clone(),
                    range: start..end,
                })
            });
            Some(Section {
                svma: s.address()..s.address() + s.size(),
                data,
            })
        };
        let segments: Vec<Segment> = obj
            .segments()
            .map(|s| {
                let (offset, filesz) = s.file_range();
                let executable = matches!(
                    s.flags(),
                    object::SegmentFlags::Elf { p_flags } if p_flags & object::elf::PF_X != 0
                );
                Segment {
                    offset,
                    filesz,
                    vaddr: s.address(),
                    executable,
                }
            })
            .collect();
        let text = section(".text");
        let frame_pointers = text.as_ref().is_some_and(|t| uses_frame_pointers(&obj, t));
        Ok(ElfInfo {
            eh_frame: section(".eh_frame"),
            eh_frame_hdr: section(".eh_frame_hdr"),
            debug_frame: section(".debug_frame"),
            got: section(".got").map(|s| s.svma),
            text,
            segments,
            frame_pointers,
        })
    }

    /// The difference between where the file is mapped and the addresses
    /// it states, given one executable mapping of it (`start` in memory,
    /// `offset` in the file, page-aligned: it may start before its segment);
    /// `None` when no executable load segment holds `offset`.
    pub(crate) fn bias(&self, start: u64, offset: u64) -> Option<u64> {
        const PAGE: u64 = 4096;
        let seg = self.segments.iter().find(|s| {
            s.executable && s.offset & !(PAGE - 1) <= offset && offset < s.offset + s.filesz.max(1)
        })?;
        let svma = seg.vaddr.wrapping_add(offset.wrapping_sub(seg.offset));
        Some(start.wrapping_sub(svma))
    }
}

/// Functions looked at to decide whether a binary keeps frame pointers.
const PROLOGUES_CHECKED: usize = 400;

/// Start-up code every C program links in, built without frame pointers
/// whatever the program's own flags: not evidence either way.
const TOOLCHAIN_FUNCTIONS: &[&str] = &[
    "_start",
    "_init",
    "_fini",
    "deregister_tm_clones",
    "register_tm_clones",
    "__do_global_dtors_aux",
    "frame_dummy",
    "__libc_csu_init",
    "__libc_csu_fini",
];

/// Whether at least 95% of the (up to [`PROLOGUES_CHECKED`]) function
/// symbols in `.text` start with `push rbp; mov rbp, rsp` (after an optional
/// `endbr64`). Leaf functions count: a leaf without a frame hides its
/// caller from a frame-pointer walk, so `-fno-omit-frame-pointer` alone
/// (which GCC applies to non-leaf functions only) is not enough; with
/// `-mno-omit-leaf-frame-pointer` or Rust's `force-frame-pointers` it is.
/// Without symbols, `false`: the profiler then copies stacks.
fn uses_frame_pointers(obj: &object::File<'_>, text: &Section) -> bool {
    let Some(data) = &text.data else {
        return false;
    };
    let mut symbols: Vec<_> = obj.symbols().collect();
    if symbols.is_empty() {
        symbols = obj.dynamic_symbols().collect();
    }
    let (mut checked, mut with_fp) = (0usize, 0usize);
    for sym in symbols {
        if checked == PROLOGUES_CHECKED {
            break;
        }
        let addr = sym.address();
        if sym.kind() != SymbolKind::Text
            || sym.size() < 8
            || !text.svma.contains(&addr)
            || sym.name().is_ok_and(|n| TOOLCHAIN_FUNCTIONS.contains(&n))
        {
            continue;
        }
        let off = (addr - text.svma.start) as usize;
        let Some(code) = data.get(off..off + 8) else {
            continue;
        };
        checked += 1;
        with_fp += usize::from(has_fp_prologue(code));
    }
    checked > 0 && with_fp * 100 >= checked * 95
}

/// Whether `code` starts with `push rbp; mov rbp, rsp`, after an optional
/// `endbr64`.
fn has_fp_prologue(code: &[u8]) -> bool {
    let code = code.strip_prefix(&[0xf3, 0x0f, 0x1e, 0xfa]).unwrap_or(code);
    code.starts_with(&[0x55, 0x48, 0x89, 0xe5])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prologues_with_and_without_endbr64() {
        assert!(has_fp_prologue(&[0x55, 0x48, 0x89, 0xe5, 0x90]));
        assert!(has_fp_prologue(&[
            0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5
        ]));
        assert!(!has_fp_prologue(&[0x48, 0x83, 0xec, 0x08]));
    }

    #[test]
    fn reads_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let info = ElfInfo::open(&exe).unwrap();
        assert!(info.text.is_some());
        assert!(info.eh_frame.as_ref().is_some_and(|s| s.data.is_some()));
        assert!(!info.segments.is_empty());
    }

    #[test]
    fn bias_of_a_mapping() {
        let info = ElfInfo {
            text: None,
            eh_frame: None,
            eh_frame_hdr: None,
            debug_frame: None,
            got: None,
            segments: vec![
                Segment {
                    offset: 0,
                    filesz: 0x15f0,
                    vaddr: 0,
                    executable: false,
                },
                // As lld lays code out: not page-aligned in the file, one
                // page further in memory.
                Segment {
                    offset: 0x15f0,
                    filesz: 0x5000,
                    vaddr: 0x25f0,
                    executable: true,
                },
            ],
            frame_pointers: false,
        };
        // The mapping starts at the page holding the segment's start.
        assert_eq!(info.bias(0x5555_0000_2000, 0x1000), Some(0x5555_0000_0000));
        assert_eq!(info.bias(0x1000, 0x9000), None);
    }

    #[test]
    fn not_elf_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"#!/bin/sh\n").unwrap();
        assert!(ElfInfo::open(&path).is_err());
    }
}
