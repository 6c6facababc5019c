//! Whether a manifest tool can run on this machine: its binary is found and
//! the kernel offers what its BPF programs attach to. Every answer comes from
//! the running kernel as [`crate::host::kernel::Kernel`] reads it (tracefs,
//! kallsyms, the kprobe PMU, kernel BTF, aya's probe of fentry), never from a
//! list of known-good tools.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::manifest::{Requires, ToolSpec};
use crate::host::{btf::VMLINUX_BTF, kernel::Kernel};
/// Directories searched for tool binaries after `$PATH`.
pub(crate) const DEFAULT_TOOL_DIRS: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/sbin"];

/// Whether a tool can run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Availability {
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
    pub(crate) fn status(&self) -> String {
        match self {
            Availability::Ready(_) => "ready".into(),
            Availability::MissingBinary => "missing binary".into(),
            Availability::Unsupported(why) => format!("unsupported: {why}"),
            Availability::Refused(why) => format!("refused: {why}"),
        }
    }

    /// The short status word for JSON: `ready`, `missing_binary`, `unsupported`.
    pub(crate) fn code(&self) -> &'static str {
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
pub(crate) fn find_binary(binary: &str, extra: &[PathBuf]) -> Option<PathBuf> {
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

/// Checks `spec` on this machine.
pub(crate) fn check(kernel: &Kernel, spec: &ToolSpec, extra_dirs: &[PathBuf]) -> Availability {
    let Some(path) = find_binary(&spec.binary, extra_dirs) else {
        return Availability::MissingBinary;
    };
    if let Err(e) = crate::trust::check_with_dir(&path) {
        return Availability::Refused(format!("{}: {}", e.path.display(), e.why));
    }
    match unmet(kernel, &spec.requires) {
        Some(why) => Availability::Unsupported(why),
        None => Availability::Ready(path),
    }
}

/// The first requirement this kernel does not meet, as a reason.
pub(crate) fn unmet(kernel: &Kernel, r: &Requires) -> Option<String> {
    if r.btf && !Path::new(VMLINUX_BTF).exists() {
        return Some(format!("needs kernel BTF ({VMLINUX_BTF} is absent)"));
    }
    if !r.tracepoints.is_empty() {
        let Some(root) = kernel.tracefs() else {
            return Some("needs tracepoints, but tracefs is not mounted".into());
        };
        for tp in &r.tracepoints {
            if !root.join("events").join(tp).is_dir() {
                return Some(format!("needs tracepoint {tp}, which this kernel lacks"));
            }
        }
    }
    if !r.kprobes.is_empty() {
        if let Some(why) = kernel.kprobes_missing() {
            return Some(format!(
                "needs kprobes ({}), but {why}",
                r.kprobes.join(", ")
            ));
        }
        if let Some(sym) = kernel.missing_symbol(&r.kprobes) {
            return Some(format!(
                "needs kernel function {sym}, which this kernel lacks"
            ));
        }
    }
    if r.dynamic_kprobes
        && let Some(why) = kernel.kprobes_missing()
    {
        return Some(format!("needs kprobes, but {why}"));
    }
    if !r.fentry.is_empty() {
        if let Some(f) = kernel.missing_btf_func(&r.fentry) {
            return Some(format!(
                "needs fentry on {f}, which is not in the kernel's BTF"
            ));
        }
        if let Err(why) = kernel.fentry_works() {
            return Some(format!("needs fentry ({}): {why}", r.fentry.join(", ")));
        }
    }
    if !r.fentry_or_kprobes.is_empty() {
        let fentry = kernel
            .missing_btf_func(&r.fentry_or_kprobes)
            .map(|f| format!("{f} is not in the kernel's BTF"))
            .or_else(|| kernel.fentry_works().err());
        let kprobe = kernel.kprobes_missing().or_else(|| {
            kernel
                .missing_symbol(&r.fentry_or_kprobes)
                .map(|s| format!("{s} is not in /proc/kallsyms"))
        });
        if let (Some(f), Some(k)) = (fentry, kprobe) {
            return Some(format!(
                "needs fentry or kprobes on {}: fentry: {f}; kprobes: {k}",
                r.fentry_or_kprobes.join(", ")
            ));
        }
    }
    if let Some(sym) = kernel.missing_symbol(&r.kernel_symbols) {
        return Some(format!(
            "needs kernel symbol {sym}, which this kernel lacks"
        ));
    }
    for member in &r.btf_members {
        let Some((ty, field)) = member.split_once('.') else {
            continue;
        };
        match kernel.btf() {
            None => return Some(format!("needs kernel BTF for {member}")),
            Some(btf) if !btf.has_member(ty, field) => {
                return Some(format!(
                    "needs struct {ty} to have field {field}, which this kernel's struct lacks"
                ));
            }
            Some(_) => {}
        }
    }
    if r.uprobes && !kernel.has_pmu("uprobe") {
        return Some("needs uprobes, which this kernel lacks (CONFIG_UPROBES off)".into());
    }
    for pmu in &r.pmus {
        if !kernel.has_pmu(pmu) {
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

/// One row of `eunomia tools list --json`.
#[derive(Debug, Serialize)]
pub(crate) struct ToolStatus {
    /// Manifest name.
    pub(crate) name: String,
    /// One-line description.
    pub(crate) description: String,
    /// `ready`, `missing_binary` or `unsupported`.
    pub(crate) status: &'static str,
    /// Why it cannot run, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// The binary that would run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) binary: Option<String>,
    /// `events`, `histograms`, `tables` or `stacks`.
    pub(crate) output: &'static str,
    /// `builtin:<name>` or `generic`.
    pub(crate) parser: String,
    /// Whether the running agent has it started; `None` when no agent answers.
    pub(crate) running: Option<bool>,
    /// The manifest file the entry comes from.
    pub(crate) source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_found_on_the_search_path() {
        assert!(find_binary("sh", &[]).is_some());
        assert!(find_binary("no-such-tool-eunomia", &[]).is_none());
        assert!(find_binary("/bin/sh", &[]).is_some());
    }
}
