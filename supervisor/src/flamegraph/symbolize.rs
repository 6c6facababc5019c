//! Turns instruction pointers into function names with blazesym: user frames
//! from the process's ELF symbols and debug info (Rust and C++ names
//! demangled), kernel frames from /proc/kallsyms. A frame that cannot be
//! named from its files is looked up in the process's perf map (JIT and
//! interpreted code, [`PerfMap`]), else shows as `[unknown]`, or as
//! `[module]` when its mapping is known.

use std::collections::HashMap;

use super::perf_map::PerfMap;

use blazesym::{
    Pid,
    symbolize::{
        Input, Symbolized, Symbolizer as Blaze, cache,
        source::{Kernel, Process, Source},
    },
};

/// Names frames, remembering every answer.
pub(crate) struct Symbolizer {
    blaze: Blaze,
    names: HashMap<(u32, u64), String>,
    mappings: HashMap<u32, Vec<Mapping>>,
    perf_maps: HashMap<u32, Option<PerfMap>>,
}

/// One file-backed range of a process's address space.
#[derive(Debug, Clone)]
struct Mapping {
    start: u64,
    end: u64,
    module: String,
}

/// The pid used for kernel frames in the name cache.
const KERNEL: u32 = 0;

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbolizer {
    /// A symbolizer with empty caches.
    pub(crate) fn new() -> Self {
        Self {
            blaze: Blaze::new(),
            names: HashMap::new(),
            mappings: HashMap::new(),
            perf_maps: HashMap::new(),
        }
    }

    /// Reads the memory map of `pid` now, so its frames can still be named
    /// after it exits.
    pub(crate) fn remember_process(&mut self, pid: u32) {
        let _ = self
            .blaze
            .cache(&cache::Cache::Process(cache::Process::new(Pid::from(pid))));
        if let Some(maps) = read_mappings(pid) {
            self.mappings.insert(pid, maps);
        }
    }

    /// Names of user frames of `pid`, in the order of `ips`.
    pub(crate) fn user_frames(&mut self, pid: u32, ips: &[u64]) -> Vec<String> {
        if !self.mappings.contains_key(&pid) {
            self.remember_process(pid);
        }
        let mut src = Process::new(Pid::from(pid));
        src.map_files = false; // works after exit, with cached VMAs
        self.frames(pid, &Source::Process(src), ips)
    }

    /// Names of kernel frames, in the order of `ips`.
    pub(crate) fn kernel_frames(&mut self, ips: &[u64]) -> Vec<String> {
        self.frames(KERNEL, &Source::Kernel(Kernel::default()), ips)
    }

    fn frames(&mut self, pid: u32, src: &Source, ips: &[u64]) -> Vec<String> {
        let missing: Vec<u64> = ips
            .iter()
            .copied()
            .filter(|ip| !self.names.contains_key(&(pid, *ip)))
            .collect();
        if !missing.is_empty() {
            let named: Vec<Option<String>> = self
                .blaze
                .symbolize(src, Input::AbsAddr(&missing))
                .unwrap_or_else(|e| {
                    tracing::debug!(pid, "symbolizing {} frames: {e}", missing.len());
                    Vec::new()
                })
                .into_iter()
                .map(|s| match s {
                    Symbolized::Sym(sym) => Some(sym.name.to_string()),
                    _ => None,
                })
                .collect();
            for (i, ip) in missing.iter().enumerate() {
                let name = match named.get(i) {
                    Some(Some(name)) => name.clone(),
                    _ => self.unknown(pid, *ip),
                };
                self.names.insert((pid, *ip), name);
            }
        }
        ips.iter()
            .map(|ip| self.names[&(pid, *ip)].clone())
            .collect()
    }

    /// The perf map's name for `ip` (user frames, read once per process),
    /// else `[module]` when `ip` lies in a known mapping of `pid`, else
    /// `[unknown]`.
    fn unknown(&mut self, pid: u32, ip: u64) -> String {
        if pid != KERNEL {
            let map = self.perf_maps.entry(pid).or_insert_with(|| {
                let map = PerfMap::load(pid);
                if let Some(m) = map.as_ref().filter(|m| m.skipped > 0) {
                    tracing::warn!(
                        pid,
                        "perf map: {} lines skipped (not START SIZE name)",
                        m.skipped
                    );
                }
                map
            });
            if let Some(name) = map.as_ref().and_then(|m| m.lookup(ip)) {
                return name.to_owned();
            }
        }
        self.mappings
            .get(&pid)
            .and_then(|maps| maps.iter().find(|m| m.start <= ip && ip < m.end))
            .map(|m| format!("[{}]", m.module))
            .unwrap_or_else(|| "[unknown]".to_owned())
    }
}

/// The file-backed mappings of `pid` from /proc/PID/maps.
fn read_mappings(pid: u32) -> Option<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    Some(text.lines().filter_map(parse_mapping).collect())
}

/// One line of /proc/PID/maps: `start-end perms offset dev inode path`.
fn parse_mapping(line: &str) -> Option<Mapping> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let path = fields.nth(4)?;
    let module = path.rsplit('/').next().filter(|m| !m.is_empty())?;
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        module: module.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_with_a_known_name() -> u64 {
        a_function_with_a_known_name as *const () as u64
    }

    #[test]
    fn names_a_function_of_this_process() {
        let mut s = Symbolizer::new();
        let ip = a_function_with_a_known_name();
        let names = s.user_frames(std::process::id(), &[ip]);
        assert!(
            names[0].contains("a_function_with_a_known_name"),
            "got {names:?}"
        );
    }

    #[test]
    fn unknown_address_falls_back_to_module_or_unknown() {
        let mut s = Symbolizer::new();
        assert_eq!(s.user_frames(std::process::id(), &[8]), vec!["[unknown]"]);
    }

    #[test]
    fn parses_maps_lines() {
        let m = parse_mapping("7f00-7fff r-xp 00000000 08:01 1234 /usr/lib/libc.so.6").unwrap();
        assert_eq!(
            (m.start, m.end, m.module.as_str()),
            (0x7f00, 0x7fff, "libc.so.6")
        );
        assert!(parse_mapping("7f00-7fff rw-p 00000000 00:00 0").is_none());
    }

    #[test]
    fn names_a_function_of_a_shared_library() {
        let mut s = Symbolizer::new();
        let ip = libc::getppid as *const () as u64;
        let names = s.user_frames(std::process::id(), &[ip]);
        assert!(names[0].contains("getppid"), "got {names:?}");
    }
}
