//! What the running kernel offers, each fact read lazily and once: tracefs,
//! kernel symbols, BTF, kprobes, BPF trampolines (fentry) and the build
//! configuration. Every answer comes from the running kernel, never from a
//! list of known-good versions.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::OnceLock,
};

use aya::{
    programs::{ProgramError, ProgramType},
    sys::{SyscallError, is_program_supported},
};

use super::{btf::KernelBtf, kconfig, tracefs};

/// Where the kernel lists its perf event sources (PMUs).
const PMUS: &str = "/sys/bus/event_source/devices";

/// A lazily read view of the running kernel.
#[derive(Default)]
pub(crate) struct Kernel {
    tracefs: OnceLock<Option<PathBuf>>,
    kallsyms: OnceLock<Option<HashSet<String>>>,
    btf: OnceLock<Option<KernelBtf>>,
    fentry: OnceLock<Result<(), String>>,
    config: OnceLock<HashMap<String, String>>,
}

impl Kernel {
    /// A fresh view of the running kernel.
    pub(crate) fn new() -> Kernel {
        Kernel::default()
    }

    /// Where tracefs is mounted.
    pub(crate) fn tracefs(&self) -> Option<&Path> {
        self.tracefs.get_or_init(tracefs::root).as_deref()
    }

    /// The kernel's BTF, when it has one.
    pub(crate) fn btf(&self) -> Option<&KernelBtf> {
        self.btf.get_or_init(KernelBtf::load).as_ref()
    }

    /// The kernel's build configuration (empty when unreadable).
    pub(crate) fn config(&self) -> &HashMap<String, String> {
        self.config.get_or_init(kconfig::read)
    }

    /// Whether the perf PMU `name` exists (`kprobe`, `uprobe`, `cpu`, ...).
    pub(crate) fn has_pmu(&self, name: &str) -> bool {
        Path::new(PMUS).join(name).exists()
    }

    /// Why kprobes cannot be created here, if they cannot.
    pub(crate) fn kprobes_missing(&self) -> Option<String> {
        // libbpf creates kprobes through the `kprobe` PMU, or legacy through
        // tracefs' kprobe_events; either one is enough.
        if self.has_pmu("kprobe") {
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

    /// The first of `syms` that `/proc/kallsyms` lacks (none when it cannot
    /// be read).
    pub(crate) fn missing_symbol<'a>(&self, syms: &'a [String]) -> Option<&'a str> {
        if syms.is_empty() {
            return None;
        }
        let table = self.kallsyms.get_or_init(read_kallsyms).as_ref()?;
        syms.iter()
            .find(|s| !table.contains(s.as_str()))
            .map(String::as_str)
    }

    /// The first of `funcs` that is not a function in the kernel's BTF (the
    /// first of all when there is no BTF).
    pub(crate) fn missing_btf_func<'a>(&self, funcs: &'a [String]) -> Option<&'a str> {
        let Some(btf) = self.btf() else {
            return funcs.first().map(String::as_str);
        };
        funcs
            .iter()
            .find(|f| btf.func_id(f).is_none())
            .map(String::as_str)
    }

    /// Whether BPF trampolines (fentry/fexit) can be loaded and attached:
    /// aya's probe of the tracing program type, which loads a trivial
    /// fentry program on a test function and attaches it.
    pub(crate) fn fentry_works(&self) -> Result<(), String> {
        self.fentry
            .get_or_init(|| {
                self.btf().ok_or("no kernel BTF")?;
                probe_fentry()
            })
            .clone()
    }
}

/// aya's probe of BPF trampolines, with its failure said in words.
fn probe_fentry() -> Result<(), String> {
    match is_program_supported(ProgramType::Tracing) {
        Ok(true) => Ok(()),
        Ok(false) => Err("this kernel cannot load fentry programs".into()),
        Err(ProgramError::SyscallError(SyscallError { io_error, .. })) => {
            Err(match io_error.raw_os_error() {
                Some(libc::EPERM) => "this kernel refuses to load fentry programs (EPERM)".into(),
                Some(libc::EINVAL) | Some(524) | Some(libc::EOPNOTSUPP) => {
                    format!("this kernel cannot load fentry programs ({io_error})")
                }
                _ => format!("loading a test fentry program failed: {io_error}"),
            })
        }
        Err(e) => Err(format!("loading a test fentry program failed: {e}")),
    }
}

fn read_kallsyms() -> Option<HashSet<String>> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            // Module symbols carry no suffix here; `.cold`/`.isra` clones do.
            .map(str::to_owned)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fentry_probe_gives_an_answer_in_words() {
        let kernel = Kernel::new();
        match kernel.fentry_works() {
            Ok(()) => {}
            Err(why) => assert!(!why.is_empty()),
        }
        // The answer is cached.
        assert_eq!(kernel.fentry_works(), kernel.fentry_works());
    }
}
