//! Ownership checks on what the agent loads or runs as root. A file that
//! decides what root does — the configuration, tool manifests and their
//! directories, rules files and directories, tool binaries and the
//! directories they are found in — must be owned by root (or by the user the
//! agent runs as) and not writable by its group or by others; otherwise any
//! user who can write it could make the agent run their commands as root.
//!
//! Such a path is refused with an error naming it and why. For development
//! (fixtures in a home directory, a build tree), `EUNOMIA_INSECURE_FILES=1`
//! or `[agent] insecure_files = true` turns the checks off — the agent then
//! logs once that it does.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

/// The environment variable that turns the checks off (any value but `0`).
pub(crate) const INSECURE_ENV: &str = "EUNOMIA_INSECURE_FILES";

static RELAXED: AtomicBool = AtomicBool::new(false);

/// A path that may not be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", path.display(), self.advice())]
pub(crate) struct Untrusted {
    /// The path.
    pub(crate) path: PathBuf,
    /// Why, in words.
    pub(crate) why: String,
}

impl Untrusted {
    /// `refused: <why> (...)`, without the path.
    pub(crate) fn advice(&self) -> String {
        format!(
            "refused: {} (others than root could make the agent run commands as root; \
             fix its owner and mode, or use --insecure-files / {INSECURE_ENV}=1 for development)",
            self.why
        )
    }
}

/// Turns the checks off for the rest of the process (the `[agent]
/// insecure_files` setting).
pub fn relax() {
    if !RELAXED.swap(true, Ordering::Relaxed) {
        tracing::warn!("ownership checks of loaded files and tool binaries are off");
    }
}

/// Whether the checks are on.
pub(crate) fn enforced() -> bool {
    if RELAXED.load(Ordering::Relaxed) {
        return false;
    }
    std::env::var_os(INSECURE_ENV).is_none_or(|v| v.is_empty() || v == "0")
}

/// Checks `path` (a file or a directory; symlinks followed). A path that
/// does not exist is not an error here: its reader says so.
pub(crate) fn check(path: &Path) -> Result<(), Untrusted> {
    if !enforced() {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    check_meta(path, meta.uid(), meta.mode())
}

/// Checks a file and the directory it is in.
pub(crate) fn check_with_dir(path: &Path) -> Result<(), Untrusted> {
    check(path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => check(dir),
        _ => Ok(()),
    }
}

/// The rule, on an owner and a mode: owned by root or the agent's own user,
/// not writable by group or others.
pub(crate) fn check_meta(path: &Path, uid: u32, mode: u32) -> Result<(), Untrusted> {
    let me = nix::unistd::geteuid().as_raw();
    let refuse = |why: String| {
        Err(Untrusted {
            path: path.to_owned(),
            why,
        })
    };
    if uid != 0 && uid != me {
        return refuse(format!("owned by uid {uid}, not by root"));
    }
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and others",
            (true, false) => "its group",
            _ => "others",
        };
        return refuse(format!("writable by {who} (mode {:04o})", mode & 0o7777));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_and_mode_rules() {
        let p = Path::new("/x/tools.d/evil.toml");
        assert!(check_meta(p, 0, 0o100644).is_ok());
        assert!(check_meta(p, 0, 0o040755).is_ok());
        let e = check_meta(p, 0, 0o100666).unwrap_err();
        assert_eq!(e.why, "writable by its group and others (mode 0666)");
        assert!(e.to_string().starts_with("/x/tools.d/evil.toml: refused: "));
        let e = check_meta(p, 0, 0o041777).unwrap_err();
        assert_eq!(e.why, "writable by its group and others (mode 1777)");
        let e = check_meta(p, 0, 0o100664).unwrap_err();
        assert_eq!(e.why, "writable by its group (mode 0664)");
        let me = nix::unistd::geteuid().as_raw();
        let other = if me == 0 { 1000 } else { me + 1 };
        let e = check_meta(p, other, 0o100644).unwrap_err();
        assert_eq!(e.why, format!("owned by uid {other}, not by root"));
        assert!(check_meta(p, me, 0o100600).is_ok());
    }

    #[test]
    fn real_paths_are_checked_and_missing_ones_left_to_the_reader() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.toml");
        std::fs::write(&f, "").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check_with_dir(&f).is_ok());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o646)).unwrap();
        if enforced() {
            assert!(check(&f).is_err());
        }
        assert!(check(&dir.path().join("absent")).is_ok());
    }
}
