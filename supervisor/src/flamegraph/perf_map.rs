//! Names for JIT-compiled and interpreted code: the perf map a runtime
//! writes (`/tmp/perf-PID.map`: Node.js `--perf-basic-prof`, Python 3.12+
//! `-X perf`, Java agents), one `START SIZE name` line (hexadecimal) per
//! piece of code it generated in anonymous memory. The file is untrusted
//! text: lines that do not parse are skipped and counted.

use std::path::PathBuf;

/// One process's perf map, sorted by start address.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PerfMap {
    entries: Vec<Entry>,
    /// Lines that did not parse.
    pub(crate) skipped: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    start: u64,
    end: u64,
    name: String,
}

/// Longest line read (longer ones are skipped): names of generated code are
/// short, a line of megabytes is not a perf map.
const MAX_LINE: usize = 4096;

impl PerfMap {
    /// The perf map of `pid`, looked for in the process's own /tmp (a
    /// container's, under the pid it has in its namespace) and then in the
    /// host's; `None` when there is none.
    pub(crate) fn load(pid: u32) -> Option<PerfMap> {
        candidates(pid)
            .into_iter()
            .find_map(|path| std::fs::read(path).ok())
            .map(|bytes| PerfMap::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// Parses perf map text. A later entry for the same address wins (a
    /// runtime that reuses memory appends the new code's name).
    pub(crate) fn parse(text: &str) -> PerfMap {
        let mut map = PerfMap::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match parse_line(line) {
                Some(e) => map.entries.push(e),
                None => map.skipped += 1,
            }
        }
        // Stable: equal starts keep their written order.
        map.entries.sort_by_key(|e| e.start);
        map
    }

    /// The name of the code at `ip`.
    pub(crate) fn lookup(&self, ip: u64) -> Option<&str> {
        // Entries sorted by start; among overlapping ones the last written wins.
        let idx = self.entries.partition_point(|e| e.start <= ip);
        self.entries[..idx]
            .iter()
            .rev()
            .take(64)
            .find(|e| ip < e.end)
            .map(|e| e.name.as_str())
    }

    #[cfg(test)]
    /// Entries known.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// `START SIZE name`, hexadecimal with or without `0x`.
fn parse_line(line: &str) -> Option<Entry> {
    if line.len() > MAX_LINE {
        return None;
    }
    let mut parts = line.splitn(3, ' ');
    let start = hex(parts.next()?)?;
    let size = hex(parts.next()?)?;
    let name = parts.next()?.trim();
    if name.is_empty() || size == 0 {
        return None;
    }
    Some(Entry {
        start,
        end: start.checked_add(size)?,
        name: name.chars().filter(|c| !c.is_control()).collect(),
    })
}

fn hex(s: &str) -> Option<u64> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

/// Where the perf map of `pid` may be: its root's /tmp under its namespace
/// pid, then the host's /tmp under its host pid.
fn candidates(pid: u32) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(ns) = namespace_pid(pid) {
        paths.push(PathBuf::from(format!("/proc/{pid}/root/tmp/perf-{ns}.map")));
    }
    paths.push(PathBuf::from(format!("/tmp/perf-{pid}.map")));
    paths
}

/// The pid `pid` has in its own pid namespace (last `NSpid` field).
fn namespace_pid(pid: u32) -> Option<u32> {
    crate::host::proc::Status::read(pid)?.ns_pid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_by_address() {
        let m = PerfMap::parse(
            "7f0000001000 40 LazyCompile:*hot /app/x.js:1\n\
             0x7f0000002000 0x10 py::work:/app/w.py\n\
             garbage line\n\
             7f0000003000 0 empty\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m.skipped, 2);
        assert_eq!(
            m.lookup(0x7f00_0000_1000),
            Some("LazyCompile:*hot /app/x.js:1")
        );
        assert_eq!(
            m.lookup(0x7f00_0000_103f),
            Some("LazyCompile:*hot /app/x.js:1")
        );
        assert_eq!(m.lookup(0x7f00_0000_1040), None);
        assert_eq!(m.lookup(0x7f00_0000_2008), Some("py::work:/app/w.py"));
        assert_eq!(m.lookup(0x10), None);
    }

    #[test]
    fn newest_entry_for_reused_memory_wins() {
        let m = PerfMap::parse("1000 100 old\n1000 100 new\n");
        assert_eq!(m.lookup(0x1010), Some("new"));
    }

    #[test]
    fn control_bytes_and_huge_lines_are_not_kept() {
        let m = PerfMap::parse("1000 10 a\u{1b}[31mb\n");
        assert_eq!(m.lookup(0x1000), Some("a[31mb"));
        let long = format!("2000 10 {}", "x".repeat(MAX_LINE));
        assert_eq!(PerfMap::parse(&long).skipped, 1);
    }

    #[test]
    fn this_process_has_a_namespace_pid() {
        assert!(namespace_pid(std::process::id()).is_some());
    }
}
