//! The read positions of the log files, on disk, so an agent restart resumes
//! every file where it stopped: one JSON object `{"path": {"inode": N,
//! "offset": N}}`, written whole to a temporary file and renamed over the
//! old one (never half written). A file that cannot be read or parsed is
//! reported and ignored (the files are then read as new).

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Where one file was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Position {
    /// The file's inode.
    pub(crate) inode: u64,
    /// The first byte not yet handed on.
    pub(crate) offset: u64,
}

/// The positions of every followed file, by path.
#[derive(Debug, Default)]
pub(crate) struct Checkpoints {
    file: PathBuf,
    positions: BTreeMap<PathBuf, Position>,
    dirty: bool,
}

/// Why the checkpoints could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckpointError {
    /// Reading or writing the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a checkpoint file.
    #[error("{path}: not a checkpoint file: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
}

impl Checkpoints {
    /// The checkpoints kept in `file`; empty when it does not exist yet.
    pub(crate) fn load(file: &Path) -> Result<Checkpoints, CheckpointError> {
        let mut c = Checkpoints {
            file: file.to_owned(),
            ..Checkpoints::default()
        };
        let text = match std::fs::read(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(c),
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: file.to_owned(),
                    source,
                });
            }
        };
        c.positions = serde_json::from_slice(&text).map_err(|source| CheckpointError::Parse {
            path: file.to_owned(),
            source,
        })?;
        Ok(c)
    }

    /// An empty set that saves to `file`.
    pub(crate) fn empty(file: &Path) -> Checkpoints {
        Checkpoints {
            file: file.to_owned(),
            ..Checkpoints::default()
        }
    }

    /// Where `path` was left, if known.
    pub(crate) fn get(&self, path: &Path) -> Option<Position> {
        self.positions.get(path).copied()
    }

    /// Records where `path` is now.
    pub(crate) fn set(&mut self, path: &Path, pos: Position) {
        if self.positions.get(path) != Some(&pos) {
            self.positions.insert(path.to_owned(), pos);
            self.dirty = true;
        }
    }

    /// Keeps only the paths `keep` says are still followed.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Path) -> bool) {
        let before = self.positions.len();
        self.positions.retain(|p, _| keep(p));
        self.dirty |= self.positions.len() != before;
    }

    #[cfg(test)]
    /// Number of files with a position.
    pub(crate) fn len(&self) -> usize {
        self.positions.len()
    }

    #[cfg(test)]
    /// Whether no file has a position.
    pub(crate) fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Writes the positions when they changed since the last save.
    pub(crate) fn save(&mut self) -> Result<(), CheckpointError> {
        if !self.dirty {
            return Ok(());
        }
        let io = |source| CheckpointError::Io {
            path: self.file.clone(),
            source,
        };
        if let Some(dir) = self.file.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self
            .file
            .with_extension(format!("tmp.{}", std::process::id()));
        let text = serde_json::to_vec(&self.positions).unwrap_or_default();
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&text).map_err(io)?;
        f.sync_data().map_err(io)?;
        std::fs::rename(&tmp, &self.file).map_err(io)?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_positions_load_again_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state/cp.json");
        let mut c = Checkpoints::load(&file).unwrap();
        assert!(c.is_empty());
        let pos = Position {
            inode: 7,
            offset: 42,
        };
        c.set(Path::new("/a.log"), pos);
        c.set(Path::new("/b.log"), pos);
        c.retain(|p| p != Path::new("/b.log"));
        c.save().unwrap();
        let again = Checkpoints::load(&file).unwrap();
        assert_eq!(again.get(Path::new("/a.log")), Some(pos));
        assert_eq!(again.len(), 1);
        std::fs::write(&file, "{not json").unwrap();
        let err = Checkpoints::load(&file).unwrap_err();
        assert!(err.to_string().contains("not a checkpoint file"), "{err}");
    }
}
