//! The control socket's file: created with mode 0600 by the agent's user
//! (root), refused when the path is a symlink, not a socket, or owned by
//! someone else, replaced when it is a stale socket of a dead agent, and
//! removed when the agent exits.

use std::{
    io::ErrorKind,
    os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

/// Why the control socket cannot be created.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SocketError {
    /// The path is a symbolic link.
    #[error("{0}: is a symbolic link; refusing to use it as the control socket")]
    Symlink(PathBuf),
    /// The path exists and is not a socket.
    #[error("{0}: exists and is not a socket; refusing to replace it")]
    NotSocket(PathBuf),
    /// The path is owned by another user.
    #[error("{path}: owned by uid {owner}, not by us (uid {us}); refusing to use it")]
    Owner {
        /// The socket.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        us: u32,
    },
    /// Another agent answers on the socket.
    #[error("{path}: another agent{} is running and listening there; stop it first or give this one its own --socket", match pid { Some(p) => format!(" (pid {p})"), None => String::new() })]
    InUse {
        /// The socket.
        path: PathBuf,
        /// The listening process, from the connection's peer credentials.
        pid: Option<i32>,
    },
    /// A system call failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What we tried.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// Removes the socket file when dropped, if it is still the one we made.
#[derive(Debug)]
pub(crate) struct SocketGuard {
    path: PathBuf,
    ino: u64,
}

impl SocketGuard {
    /// The socket's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), "cannot remove the control socket: {e}");
        }
    }
}

/// Binds the control socket at `path` (creating its directory, mode 0700,
/// when missing). Must be called inside a tokio runtime.
pub(crate) fn bind(path: &Path) -> Result<(tokio::net::UnixListener, SocketGuard), SocketError> {
    let io = |what, source| SocketError::Io {
        path: path.to_owned(),
        what,
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("creating its directory", e))?;
    }
    check_existing(path)?;
    let listener = bind_private(path).map_err(|e| io("binding", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("chmod 0600", e))?;
    let ino = std::fs::symlink_metadata(path)
        .map_err(|e| io("stat", e))?
        .ino();
    let guard = SocketGuard {
        path: path.to_owned(),
        ino,
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| io("set_nonblocking", e))?;
    let listener =
        tokio::net::UnixListener::from_std(listener).map_err(|e| io("registering", e))?;
    Ok((listener, guard))
}

use std::os::unix::fs::DirBuilderExt as _;

/// Binds with a umask that leaves the socket private from its first moment.
fn bind_private(path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    // SAFETY: umask only swaps the process's file mode mask.
    let old = unsafe { libc::umask(0o177) };
    let r = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    r
}

/// Accepts a missing path; removes a stale socket of ours; refuses anything
/// else.
fn check_existing(path: &Path) -> Result<(), SocketError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(SocketError::Io {
                path: path.to_owned(),
                what: "stat",
                source: e,
            });
        }
    };
    if meta.file_type().is_symlink() {
        return Err(SocketError::Symlink(path.to_owned()));
    }
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotSocket(path.to_owned()));
    }
    // SAFETY: geteuid has no preconditions.
    let us = unsafe { libc::geteuid() };
    if meta.uid() != us {
        return Err(SocketError::Owner {
            path: path.to_owned(),
            owner: meta.uid(),
            us,
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(stream) => Err(SocketError::InUse {
            path: path.to_owned(),
            pid: peer_pid(&stream),
        }),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing the stale control socket of a dead agent");
            std::fs::remove_file(path).map_err(|e| SocketError::Io {
                path: path.to_owned(),
                what: "removing the stale socket",
                source: e,
            })
        }
        Err(e) => Err(SocketError::Io {
            path: path.to_owned(),
            what: "probing the existing socket",
            source: e,
        }),
    }
}

/// The pid of the process at the other end of `stream` (SO_PEERCRED: the
/// process that bound the listening socket).
fn peer_pid(stream: &std::os::unix::net::UnixStream) -> Option<i32> {
    nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .ok()
        .map(|c| c.pid())
        .filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_private_replaces_stale_and_removes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/eunomia.sock");
        let (listener, guard) = bind(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let err = bind(&path).unwrap_err();
        let SocketError::InUse { pid, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(*pid, Some(std::process::id() as i32));
        assert!(
            err.to_string()
                .contains(&format!("(pid {})", std::process::id())),
            "{err}"
        );
        // A dead agent's socket: the file stays, nobody listens.
        drop(listener);
        std::mem::forget(guard);
        let (_l, guard) = bind(&path).expect("stale socket replaced");
        drop(guard);
        assert!(!path.exists(), "removed on drop");
    }

    #[tokio::test]
    async fn refuses_symlinks_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(bind(&file), Err(SocketError::NotSocket(_))));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(bind(&link), Err(SocketError::Symlink(_))));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    }
}
