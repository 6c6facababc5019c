//! What /proc says of a process's cost: its CPU time, and the BPF programs
//! it holds (the `prog_id` of each BPF program file descriptor).

use std::collections::BTreeMap;

/// User + system CPU seconds process `pid` has used (threads included), or
/// None when it is gone.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / clock_ticks())
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line; the comm in
/// parentheses may hold spaces and parentheses, so fields are counted after
/// the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Run time and count of one BPF program, as the kernel accounts them
/// (only while BPF statistics are enabled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ProgStats {
    /// Nanoseconds the program ran.
    pub(crate) run_ns: u64,
    /// Times it ran.
    pub(crate) runs: u64,
}

/// The BPF programs process `pid` holds open, by program id, with their
/// run time and count (at most 4096 descriptors looked at; a program held
/// by several descriptors, or by a link too, counts once).
pub(crate) fn bpf_programs(pid: u32) -> BTreeMap<u32, ProgStats> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return BTreeMap::new();
    };
    dir.filter_map(Result::ok)
        .take(4096)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|info| parse_prog(&info))
        .collect()
}

/// The id and statistics of a BPF program's fdinfo text (None for other
/// files, and for links, which name a program but carry no statistics).
fn parse_prog(fdinfo: &str) -> Option<(u32, ProgStats)> {
    let field = |name: &str| {
        fdinfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let id = field("prog_id:")?;
    Some((
        u32::try_from(id).ok()?,
        ProgStats {
            run_ns: field("run_time_ns:")?,
            runs: field("run_cnt:")?,
        },
    ))
}

/// Online CPUs (the machine's capacity for the CPU ratios).
pub(crate) fn cpus() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_comm() {
        let line = "42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 9 0 0";
        assert_eq!(parse_cpu_ticks(line), Some(12));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn programs_come_from_fdinfo() {
        let info = "pos:\t0\nprog_type:\t26\nprog_id:\t117\nrun_time_ns:\t5\nrun_cnt:\t2\n";
        assert_eq!(
            parse_prog(info),
            Some((117, ProgStats { run_ns: 5, runs: 2 }))
        );
        let link = "link_type:\traw_tracepoint\nlink_id:\t9\nprog_tag:\tab\nprog_id:\t117\n";
        assert_eq!(parse_prog(link), None);
        assert_eq!(parse_prog("pos:\t0\nflags:\t0\n"), None);
    }
}
