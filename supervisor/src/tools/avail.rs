//! Whether a manifest tool can run on this machine: its binary is found and
//! the kernel offers what its BPF programs attach to. Every answer comes from
//! the running kernel (tracefs, kallsyms, the kprobe PMU, kernel BTF, a test
//! load of an fentry program), never from a list of known-good tools.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use serde::Serialize;

use super::manifest::{Requires, ToolSpec};

/// Where tracefs may be mounted.
const TRACEFS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
/// Kernel BTF.
const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Directories searched for tool binaries after `$PATH`.
pub const DEFAULT_TOOL_DIRS: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/sbin"];

/// Whether a tool can run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Binary found and every requirement met.
    Ready(PathBuf),
    /// The binary is not on the search path.
    MissingBinary,
    /// The kernel lacks something the tool needs.
    Unsupported(String),
    /// The binary, or the directory it was found in, could be changed by
    /// others than root: not run (the reason says which and why).
    Refused(String),
}

impl Availability {
    /// `ready`, `missing binary` or `unsupported: <reason>`.
    pub fn status(&self) -> String {
        match self {
            Availability::Ready(_) => "ready".into(),
            Availability::MissingBinary => "missing binary".into(),
            Availability::Unsupported(why) => format!("unsupported: {why}"),
            Availability::Refused(why) => format!("refused: {why}"),
        }
    }

    /// The short status word for JSON: `ready`, `missing_binary`, `unsupported`.
    pub fn code(&self) -> &'static str {
        match self {
            Availability::Ready(_) => "ready",
            Availability::MissingBinary => "missing_binary",
            Availability::Unsupported(_) => "unsupported",
            Availability::Refused(_) => "refused",
        }
    }
}

/// Finds `binary`: an absolute or relative path is taken as is; a bare name
/// is looked up on `$PATH`, then in `extra` dirs, then [`DEFAULT_TOOL_DIRS`].
pub fn find_binary(binary: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    if binary.contains('/') {
        let p = PathBuf::from(binary);
        return is_executable(&p).then_some(p);
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(extra.iter().cloned())
        .chain(DEFAULT_TOOL_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(binary))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What the running kernel offers, read lazily and once.
#[derive(Default)]
pub struct Kernel {
    tracefs: OnceLock<Option<PathBuf>>,
    kallsyms: OnceLock<Option<std::collections::HashSet<String>>>,
    btf: OnceLock<Option<BtfIndex>>,
    fentry: OnceLock<Result<(), String>>,
    config: OnceLock<HashMap<String, String>>,
}

impl Kernel {
    /// A fresh view of the running kernel.
    pub fn new() -> Kernel {
        Kernel::default()
    }

    /// Checks `spec` on this machine.
    pub fn check(&self, spec: &ToolSpec, extra_dirs: &[PathBuf]) -> Availability {
        let Some(path) = find_binary(&spec.binary, extra_dirs) else {
            return Availability::MissingBinary;
        };
        if let Err(e) = crate::trust::check_with_dir(&path) {
            return Availability::Refused(format!("{}: {}", e.path.display(), e.why));
        }
        match self.unmet(&spec.requires) {
            Some(why) => Availability::Unsupported(why),
            None => Availability::Ready(path),
        }
    }

    /// The first requirement this kernel does not meet, as a reason.
    pub fn unmet(&self, r: &Requires) -> Option<String> {
        if r.btf && !Path::new(VMLINUX_BTF).exists() {
            return Some(format!("needs kernel BTF ({VMLINUX_BTF} is absent)"));
        }
        if !r.tracepoints.is_empty() {
            let Some(root) = self.tracefs() else {
                return Some("needs tracepoints, but tracefs is not mounted".into());
            };
            for tp in &r.tracepoints {
                if !root.join("events").join(tp).is_dir() {
                    return Some(format!("needs tracepoint {tp}, which this kernel lacks"));
                }
            }
        }
        if !r.kprobes.is_empty() {
            if let Some(why) = self.kprobes_missing() {
                return Some(format!(
                    "needs kprobes ({}), but {why}",
                    r.kprobes.join(", ")
                ));
            }
            if let Some(sym) = self.missing_symbol(&r.kprobes) {
                return Some(format!(
                    "needs kernel function {sym}, which this kernel lacks"
                ));
            }
        }
        if r.dynamic_kprobes
            && let Some(why) = self.kprobes_missing()
        {
            return Some(format!("needs kprobes, but {why}"));
        }
        if !r.fentry.is_empty() {
            if let Some(f) = self.missing_btf_func(&r.fentry) {
                return Some(format!(
                    "needs fentry on {f}, which is not in the kernel's BTF"
                ));
            }
            if let Err(why) = self.fentry_works() {
                return Some(format!("needs fentry ({}): {why}", r.fentry.join(", ")));
            }
        }
        if !r.fentry_or_kprobes.is_empty() {
            let fentry = self
                .missing_btf_func(&r.fentry_or_kprobes)
                .map(|f| format!("{f} is not in the kernel's BTF"))
                .or_else(|| self.fentry_works().err());
            let kprobe = self.kprobes_missing().or_else(|| {
                self.missing_symbol(&r.fentry_or_kprobes)
                    .map(|s| format!("{s} is not in /proc/kallsyms"))
            });
            if let (Some(f), Some(k)) = (fentry, kprobe) {
                return Some(format!(
                    "needs fentry or kprobes on {}: fentry: {f}; kprobes: {k}",
                    r.fentry_or_kprobes.join(", ")
                ));
            }
        }
        if let Some(sym) = self.missing_symbol(&r.kernel_symbols) {
            return Some(format!(
                "needs kernel symbol {sym}, which this kernel lacks"
            ));
        }
        for member in &r.btf_members {
            let Some((ty, field)) = member.split_once('.') else {
                continue;
            };
            match self.btf() {
                None => return Some(format!("needs kernel BTF for {member}")),
                Some(btf) if !btf.has_member(ty, field) => {
                    return Some(format!(
                        "needs struct {ty} to have field {field}, which this kernel's struct lacks"
                    ));
                }
                Some(_) => {}
            }
        }
        if r.uprobes && !Path::new("/sys/bus/event_source/devices/uprobe").exists() {
            return Some("needs uprobes, which this kernel lacks (CONFIG_UPROBES off)".into());
        }
        for pmu in &r.pmus {
            if !Path::new("/sys/bus/event_source/devices")
                .join(pmu)
                .exists()
            {
                return Some(format!(
                    "needs the `{pmu}` perf PMU (hardware events), which this machine lacks"
                ));
            }
        }
        for path in &r.paths {
            if !Path::new(path).exists() {
                return Some(format!("needs {path}, which does not exist here"));
            }
        }
        None
    }

    fn tracefs(&self) -> Option<&Path> {
        self.tracefs
            .get_or_init(|| {
                TRACEFS
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.join("events").is_dir())
            })
            .as_deref()
    }

    /// Why kprobes cannot be created here, if they cannot.
    fn kprobes_missing(&self) -> Option<String> {
        // libbpf creates kprobes through the `kprobe` PMU, or legacy through
        // tracefs' kprobe_events; either one is enough.
        if Path::new("/sys/bus/event_source/devices/kprobe").exists() {
            return None;
        }
        if let Some(root) = self.tracefs()
            && root.join("kprobe_events").exists()
        {
            return None;
        }
        let config = match self.config().get("CONFIG_KPROBES").map(String::as_str) {
            Some("y") => "",
            Some(_) => " (CONFIG_KPROBES is off)",
            None if self.config().is_empty() => "",
            None => " (CONFIG_KPROBES is off)",
        };
        Some(format!(
            "this kernel has none{config}: no kprobe PMU, no kprobe_events"
        ))
    }

    fn missing_symbol<'a>(&self, syms: &'a [String]) -> Option<&'a str> {
        if syms.is_empty() {
            return None;
        }
        let table = self.kallsyms.get_or_init(read_kallsyms).as_ref()?;
        syms.iter()
            .find(|s| !table.contains(s.as_str()))
            .map(String::as_str)
    }

    fn missing_btf_func<'a>(&self, funcs: &'a [String]) -> Option<&'a str> {
        let Some(btf) = self.btf() else {
            return funcs.first().map(String::as_str);
        };
        funcs
            .iter()
            .find(|f| btf.func_id(f).is_none())
            .map(String::as_str)
    }

    fn btf(&self) -> Option<&BtfIndex> {
        self.btf
            .get_or_init(|| {
                let data = std::fs::read(VMLINUX_BTF).ok()?;
                BtfIndex::parse(&data)
            })
            .as_ref()
    }

    /// Whether BPF trampolines (fentry/fexit) can be loaded: a test load of a
    /// two-instruction fentry program on a function from the kernel's BTF.
    pub fn fentry_works(&self) -> Result<(), String> {
        self.fentry
            .get_or_init(|| {
                let btf = self.btf().ok_or("no kernel BTF")?;
                let target = ["bpf_fentry_test1", "do_nanosleep", "vfs_read"]
                    .into_iter()
                    .find_map(|f| btf.func_id(f))
                    .ok_or("no probe target function in the kernel's BTF")?;
                probe_fentry_load(target)
            })
            .clone()
    }

    fn config(&self) -> &HashMap<String, String> {
        self.config.get_or_init(read_kernel_config)
    }
}

fn read_kallsyms() -> Option<std::collections::HashSet<String>> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            // Module symbols carry no suffix here; `.cold`/`.isra` clones do.
            .map(str::to_owned)
            .collect(),
    )
}

/// `CONFIG_*` options from /proc/config.gz (via `zcat`, to avoid a gzip
/// dependency) or /boot/config-$(uname -r); empty when neither is readable.
fn read_kernel_config() -> HashMap<String, String> {
    let text = std::process::Command::new("zcat")
        .arg("/proc/config.gz")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .or_else(|| {
            let release = nix::sys::utsname::uname().ok()?;
            std::fs::read_to_string(format!(
                "/boot/config-{}",
                release.release().to_string_lossy()
            ))
            .ok()
        })
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            if let Some(name) = l
                .strip_prefix("# ")
                .and_then(|r| r.strip_suffix(" is not set"))
            {
                return Some((name.to_owned(), "n".to_owned()));
            }
            let (k, v) = l.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Loads `mov r0, 0; exit` as an fentry program on BTF function `btf_id`.
fn probe_fentry_load(btf_id: u32) -> Result<(), String> {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_TRACING: u32 = 26;
    const BPF_TRACE_FENTRY: u32 = 24;
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
        prog_btf_fd: u32,
        func_info_rec_size: u32,
        func_info: u64,
        func_info_cnt: u32,
        line_info_rec_size: u32,
        line_info: u64,
        line_info_cnt: u32,
        attach_btf_id: u32,
        attach_prog_fd: u32,
        _pad: [u8; 12],
    }
    // mov64 r0, 0 ; exit
    let insns: [u64; 2] = [u64::from_le_bytes([0xb7, 0, 0, 0, 0, 0, 0, 0]), 0x95];
    let license = b"GPL\0";
    let mut name = [0u8; 16];
    name[..13].copy_from_slice(b"eunomia_probe");
    let attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_TRACING,
        insn_cnt: 2,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: BPF_TRACE_FENTRY,
        prog_btf_fd: 0,
        func_info_rec_size: 0,
        func_info: 0,
        func_info_cnt: 0,
        line_info_rec_size: 0,
        line_info: 0,
        line_info_cnt: 0,
        attach_btf_id: btf_id,
        attach_prog_fd: 0,
        _pad: [0; 12],
    };
    // SAFETY: attr is a valid, fully initialised bpf_attr prefix of the size
    // we pass; the pointers in it outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoad,
            std::mem::size_of::<ProgLoad>() as u32,
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EPERM) => "this kernel refuses to load fentry programs (EPERM)".into(),
            Some(libc::EINVAL) | Some(524) | Some(libc::EOPNOTSUPP) => {
                format!("this kernel cannot load fentry programs ({err})")
            }
            _ => format!("loading a test fentry program failed: {err}"),
        });
    }
    // SAFETY: fd is a descriptor we own.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

/// The parts of kernel BTF needed here: function ids and struct members.
/// BTF layout: include/uapi/linux/btf.h.
pub struct BtfIndex {
    funcs: HashMap<String, u32>,
    /// struct name -> member names
    structs: HashMap<String, Vec<String>>,
}

impl BtfIndex {
    /// Parses a raw BTF blob (little or native endian, as /sys/kernel/btf/vmlinux).
    pub fn parse(data: &[u8]) -> Option<BtfIndex> {
        let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
        let u32_at = |o: usize| {
            data.get(o..o + 4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        if u16_at(0)? != 0xeb9f {
            return None;
        }
        let hdr_len = u32_at(4)? as usize;
        let type_off = u32_at(8)? as usize;
        let type_len = u32_at(12)? as usize;
        let str_off = u32_at(16)? as usize;
        let str_len = u32_at(20)? as usize;
        let types = hdr_len + type_off;
        let strs = data.get(hdr_len + str_off..hdr_len + str_off + str_len)?;
        let name = |off: u32| -> Option<&str> {
            let s = strs.get(off as usize..)?;
            let end = s.iter().position(|&b| b == 0)?;
            std::str::from_utf8(&s[..end]).ok()
        };
        let mut funcs = HashMap::new();
        let mut structs: HashMap<String, Vec<String>> = HashMap::new();
        let mut off = types;
        let end = types + type_len;
        let mut id = 1u32;
        while off + 12 <= end {
            let name_off = u32_at(off)?;
            let info = u32_at(off + 4)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            off += 12;
            let extra = match kind {
                1 | 14 | 17 => 4,          // INT, VAR, DECL_TAG
                3 => 12,                   // ARRAY
                4 | 5 => vlen * 12,        // STRUCT, UNION
                6 | 13 => vlen * 8,        // ENUM, FUNC_PROTO
                15 | 19 => vlen * 12,      // DATASEC, ENUM64
                2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, qualifiers, FUNC, FLOAT, TYPE_TAG
                _ => return None,
            };
            match kind {
                12 => {
                    if let Some(n) = name(name_off) {
                        funcs.insert(n.to_owned(), id);
                    }
                }
                4 | 5 => {
                    if let Some(n) = name(name_off).filter(|n| !n.is_empty()) {
                        let members = (0..vlen)
                            .filter_map(|i| name(u32_at(off + i * 12)?))
                            .map(str::to_owned)
                            .collect();
                        structs.insert(n.to_owned(), members);
                    }
                }
                _ => {}
            }
            off += extra;
            id += 1;
        }
        Some(BtfIndex { funcs, structs })
    }

    /// The BTF id of function `name`.
    pub fn func_id(&self, name: &str) -> Option<u32> {
        self.funcs.get(name).copied()
    }

    /// Whether struct (or union) `ty` has a member named `field`.
    pub fn has_member(&self, ty: &str, field: &str) -> bool {
        self.structs
            .get(ty)
            .is_some_and(|m| m.iter().any(|f| f == field))
    }
}

/// One row of `eunomia tools list --json`.
#[derive(Debug, Serialize)]
pub struct ToolStatus {
    /// Manifest name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// `ready`, `missing_binary` or `unsupported`.
    pub status: &'static str,
    /// Why it cannot run, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The binary that would run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    /// `events`, `histograms`, `tables` or `stacks`.
    pub output: &'static str,
    /// `builtin:<name>` or `generic`.
    pub parser: String,
    /// Whether the running agent has it started; `None` when no agent answers.
    pub running: Option<bool>,
    /// The manifest file the entry comes from.
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_btf_has_common_functions_and_structs() {
        let Ok(data) = std::fs::read(VMLINUX_BTF) else {
            eprintln!("SKIP: no kernel BTF");
            return;
        };
        let btf = BtfIndex::parse(&data).expect("parse vmlinux BTF");
        assert!(btf.func_id("vfs_read").is_some());
        assert!(btf.has_member("task_struct", "pid"));
        assert!(!btf.has_member("task_struct", "no_such_field"));
    }

    #[test]
    fn bare_names_are_found_on_the_search_path() {
        assert!(find_binary("sh", &[]).is_some());
        assert!(find_binary("no-such-tool-eunomia", &[]).is_none());
        assert!(find_binary("/bin/sh", &[]).is_some());
    }
}
