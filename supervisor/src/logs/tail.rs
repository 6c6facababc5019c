//! Follows one log file through the runtimes' rotations, line by line:
//!
//! - **rename** (Docker's `max-size`, the kubelet's `N.log.<time>`): when the
//!   path names another inode, the old file is read to its end first, then
//!   the new one from its beginning;
//! - **copy-truncate**: a file shorter than the read position was
//!   truncated; it is read again from its beginning (bytes written between
//!   the copy and the truncation cannot be seen, and are counted as a
//!   truncation);
//! - **restart**: [`Tailer::checkpoint`] is the inode and offset of the first
//!   byte not yet handed on (a partial line waiting for its end included);
//!   [`Start::At`] resumes there, in the rotated file with that inode when
//!   the path names a newer one.
//!
//! Reads are `pread`s of at most the poll's budget; a line longer than the
//! bound is cut and the rest of it skipped.

use std::{
    collections::VecDeque,
    fs::File,
    io,
    os::unix::fs::{FileExt, MetadataExt},
    path::{Path, PathBuf},
};

use parsers::logs::{JoinedLine, LogFormat, LogLineError, PartialJoiner, parse_line};

/// Where a new tailer starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the beginning of the file.
    Beginning,
    /// At its current end.
    End,
    /// At a checkpoint: `offset` in the file with inode `inode`.
    At {
        /// The inode the offset belongs to.
        inode: u64,
        /// The offset.
        offset: u64,
    },
}

/// What a poll saw, line by line.
#[derive(Debug)]
pub enum Seen<'a> {
    /// A whole line (partial lines joined).
    Line(JoinedLine<'a>),
    /// A line of the file that is not in its format.
    Malformed(LogLineError),
}

/// What one poll did besides lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollOutcome {
    /// Bytes read.
    pub bytes: u64,
    /// Rotations by rename followed.
    pub(crate) rotated: u32,
    /// The file was found truncated (copy-truncate) and reread.
    pub(crate) truncated_file: u32,
    /// Lines longer than the bound, cut.
    pub(crate) cut_lines: u32,
    /// The path no longer exists and everything was read.
    pub(crate) gone: bool,
    /// Stopped early because the receiver had no room.
    pub(crate) stopped: bool,
}

#[derive(Debug)]
struct Open {
    file: File,
    inode: u64,
    /// Bytes read but not yet handed on (an incomplete line).
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_at: u64,
    /// Skipping the rest of a cut line up to its newline.
    skipping: bool,
}

impl Open {
    fn new(file: File, offset: u64) -> io::Result<Open> {
        let inode = file.metadata()?.ino();
        Ok(Open {
            file,
            inode,
            buf: Vec::new(),
            buf_at: offset,
            skipping: false,
        })
    }

    fn read_at(&self) -> u64 {
        self.buf_at + self.buf.len() as u64
    }

    /// Reads up to `max` more bytes; returns how many.
    fn fill(&mut self, max: usize) -> io::Result<usize> {
        let old = self.buf.len();
        let at = self.read_at();
        self.buf.resize(old + max, 0);
        let n = self.file.read_at(&mut self.buf[old..], at);
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(old);
                return Err(e);
            }
        };
        self.buf.truncate(old + n);
        Ok(n)
    }
}

/// Follows one file.
#[derive(Debug)]
pub struct Tailer {
    path: PathBuf,
    format: LogFormat,
    max_line: usize,
    /// The file the path named when last looked at.
    cur: Option<Open>,
    /// Files renamed away that still have lines to read, oldest first.
    olds: VecDeque<Open>,
    joiner: PartialJoiner,
    /// The inode of the file where the partial line waiting in `joiner`
    /// started (it may end in the next file after a rotation).
    pending_inode: Option<u64>,
}

impl Tailer {
    /// Follows `path` (in `format`) from `start`; a path that cannot be
    /// opened yet is opened at a later poll (from its beginning).
    pub fn open(path: &Path, format: LogFormat, start: Start, max_line: usize) -> Tailer {
        let mut t = Tailer {
            path: path.to_owned(),
            format,
            max_line: max_line.max(64),
            cur: None,
            olds: VecDeque::new(),
            joiner: PartialJoiner::new(max_line),
            pending_inode: None,
        };
        let Ok(file) = File::open(path) else {
            return t;
        };
        let Ok(meta) = file.metadata() else {
            return t;
        };
        let offset = match start {
            Start::Beginning => 0,
            Start::End => meta.len(),
            Start::At { inode, offset } if inode == meta.ino() => offset.min(meta.len()),
            Start::At { inode, offset } => {
                // Rotated while we were away: finish the old file first,
                // then every file rotated after it.
                let rotated = rotated_from(path, inode);
                let mut rotated = rotated.into_iter();
                match rotated.next() {
                    Some(first) if first.metadata().is_ok_and(|m| m.len() >= offset) => {
                        t.olds.extend(Open::new(first, offset));
                        t.olds.extend(rotated.filter_map(|f| Open::new(f, 0).ok()));
                    }
                    _ => tracing::warn!(
                        "{}: the file read before the restart is gone (rotated out); reading the current one",
                        path.display()
                    ),
                }
                0
            }
        };
        t.cur = Open::new(file, offset).ok();
        t
    }

    /// The inode and offset to resume from after a restart.
    pub(crate) fn checkpoint(&self) -> Option<(u64, u64)> {
        if let (Some(inode), Some(from)) = (self.pending_inode, self.joiner.pending_from()) {
            // A partial line waits: everything after it is newer.
            return Some((inode, from));
        }
        let open = self.olds.front().or(self.cur.as_ref())?;
        Some((open.inode, open.buf_at))
    }

    /// Bytes held in memory (incomplete lines and partial lines).
    pub(crate) fn buffered(&self) -> usize {
        let held = |o: &Option<Open>| o.as_ref().map_or(0, |o| o.buf.capacity());
        let olds: usize = self.olds.iter().map(|o| o.buf.capacity()).sum();
        held(&self.cur) + olds + self.joiner.pending_bytes()
    }

    /// Reads what is new (at most `budget` bytes), handing every line to
    /// `on_line` while `has_room()` says the receiver can take more.
    pub fn poll(
        &mut self,
        budget: usize,
        has_room: &mut dyn FnMut() -> bool,
        on_line: &mut dyn FnMut(Seen<'_>),
    ) -> PollOutcome {
        let mut out = PollOutcome::default();
        let mut budget = budget;
        while let Some(mut old) = self.olds.pop_front() {
            let done = self.read_file(&mut old, &mut budget, has_room, on_line, &mut out);
            if done && !out.stopped {
                self.finish_file(&mut old, on_line);
            } else {
                self.olds.push_front(old);
                return out;
            }
        }
        if self.cur.is_none() {
            self.cur = File::open(&self.path)
                .ok()
                .and_then(|f| Open::new(f, 0).ok());
        }
        let Some(mut cur) = self.cur.take() else {
            out.gone = true;
            return out;
        };
        let at_end = self.read_file(&mut cur, &mut budget, has_room, on_line, &mut out);
        if !at_end || out.stopped {
            self.cur = Some(cur);
            return out;
        }
        self.cur = Some(cur);
        self.check_rotation(&mut out);
        out
    }

    /// After reaching the end: a rename, a truncation, or a removal.
    fn check_rotation(&mut self, out: &mut PollOutcome) {
        let Some(cur) = self.cur.as_mut() else {
            return;
        };
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.ino() != cur.inode => {
                out.rotated += 1;
                let inode = cur.inode;
                let new = File::open(&self.path)
                    .ok()
                    .and_then(|f| Open::new(f, 0).ok());
                let new_inode = new.as_ref().map(|n| n.inode);
                self.olds.extend(std::mem::replace(&mut self.cur, new));
                // Rotated more than once since the last poll: those too.
                let more = rotated_from(&self.path, inode).into_iter().skip(1);
                self.olds.extend(
                    more.filter_map(|f| Open::new(f, 0).ok())
                        .filter(|o| Some(o.inode) != new_inode),
                );
            }
            Ok(meta) if meta.len() < cur.read_at() => {
                out.truncated_file += 1;
                cur.buf.clear();
                cur.buf_at = 0;
                cur.skipping = false;
            }
            Ok(_) => {}
            Err(_) => out.gone = true,
        }
    }

    /// Reads and hands on lines of `open`; true when its end was reached.
    fn read_file(
        &mut self,
        open: &mut Open,
        budget: &mut usize,
        has_room: &mut dyn FnMut() -> bool,
        on_line: &mut dyn FnMut(Seen<'_>),
        out: &mut PollOutcome,
    ) -> bool {
        loop {
            let want = (*budget).min(64 * 1024);
            if want == 0 {
                return false;
            }
            let n = match open.fill(want) {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!("reading {}: {e}", self.path.display());
                    return true;
                }
            };
            *budget -= n;
            out.bytes += n as u64;
            self.take_lines(open, has_room, on_line, out);
            if out.stopped {
                return false;
            }
            if n == 0 {
                return true;
            }
        }
    }

    /// Hands on every complete line in `open.buf`.
    fn take_lines(
        &mut self,
        open: &mut Open,
        has_room: &mut dyn FnMut() -> bool,
        on_line: &mut dyn FnMut(Seen<'_>),
        out: &mut PollOutcome,
    ) {
        let mut used = 0;
        while let Some(nl) = memchr::memchr(b'\n', &open.buf[used..]) {
            if open.skipping {
                open.skipping = false;
                used += nl + 1;
                continue;
            }
            if !has_room() {
                out.stopped = true;
                break;
            }
            let at = open.buf_at + used as u64;
            let line = &open.buf[used..used + nl];
            self.one_line(line, at, open.inode, on_line);
            used += nl + 1;
        }
        if !out.stopped && open.buf.len() - used > self.max_line {
            // No newline within the bound: cut the line here.
            let at = open.buf_at + used as u64;
            let line = &open.buf[used..used + self.max_line];
            self.one_line(line, at, open.inode, on_line);
            out.cut_lines += 1;
            used = open.buf.len();
            open.skipping = true;
        }
        open.buf.drain(..used);
        open.buf_at += used as u64;
        if open.buf.capacity() > 4 * self.max_line.max(64 * 1024) {
            open.buf.shrink_to(self.max_line);
        }
    }

    fn one_line(&mut self, line: &[u8], at: u64, inode: u64, on_line: &mut dyn FnMut(Seen<'_>)) {
        match parse_line(self.format, line) {
            Ok(l) => {
                let whole = self.joiner.push(l, at);
                self.pending_inode = match self.joiner.pending_from() {
                    Some(_) => self.pending_inode.or(Some(inode)),
                    None => None,
                };
                if let Some(whole) = whole {
                    on_line(Seen::Line(whole));
                }
            }
            Err(e) => on_line(Seen::Malformed(e)),
        }
    }

    /// A rotated file read to its end: what is left is a last line without
    /// its newline (never continued).
    fn finish_file(&mut self, open: &mut Open, on_line: &mut dyn FnMut(Seen<'_>)) {
        if !open.buf.is_empty() && !open.skipping {
            let line = std::mem::take(&mut open.buf);
            self.one_line(&line, open.buf_at, open.inode, on_line);
        }
    }
}

/// The rotated copies of `path` (`<name>.1`, `<name>.<time>`, ... next to
/// it) from the one with inode `inode` on, in the order they were written
/// (modification time); empty when none has that inode.
fn rotated_from(path: &Path, inode: u64) -> Vec<File> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut rotated: Vec<(std::time::SystemTime, u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|e| {
            let m = e.metadata().ok().filter(std::fs::Metadata::is_file)?;
            Some((m.modified().ok()?, m.ino(), e.path()))
        })
        .collect();
    rotated.sort();
    let Some(at) = rotated.iter().position(|(_, ino, _)| *ino == inode) else {
        return Vec::new();
    };
    rotated[at..]
        .iter()
        .filter_map(|(_, _, p)| File::open(p).ok())
        .collect()
}
