//! The built-in parsers, one per libbpf-tools tool that runs on the target
//! kernel, and the registry [`builtin`] / [`builtin_names`].
//!
//! Each parser's doc comment names the **canonical flags** the manifest
//! should pass; the no-flag variant and common flag subsets are accepted too
//! (the header line tells the parser which columns are present).
//!
//! | tool | canonical flags | records |
//! |---|---|---|
//! | biolatency | `-D -T INTERVAL` | histograms (`usecs`, label `disk`) |
//! | biopattern | `-T INTERVAL` | one-row tables `disk random_pct sequential_pct count kbytes` |
//! | bitesize | `-T INTERVAL` | histograms (`Kbytes`, label `comm`) |
//! | cpudist | `-T INTERVAL` | histograms (`usecs`; label `pid`/`tid` with `-P`/`-L`) |
//! | drsnoop | (none) | events `direct_reclaim` |
//! | execsnoop | `-T -U -x` | events `exec` |
//! | exitsnoop | `-t` | events `exit` |
//! | gethostlatency | (none) | events `dns_lookup` |
//! | hardirqs | `-T INTERVAL` | tables `irq total_time`; with `-d` histograms (label `irq`) |
//! | killsnoop | (none) | events `kill` |
//! | mountsnoop | `-t` | events `mount` |
//! | offcputime | `-m MIN_US DURATION` | folded stacks |
//! | opensnoop | `-T -U -e` | events `open` |
//! | runqlat | `-P -T INTERVAL` | histograms (`usecs`, label `pid` + comm) |
//! | runqslower | `-P MIN_US` | events `runq_latency` |
//! | sigsnoop | (none) | events `signal` |
//! | softirqs | `-T INTERVAL` | tables `softirq total_time`; with `-d` histograms (label `softirq`) |
//! | statsnoop | `-t` | events `stat` |
//! | syscount | `-L -i INTERVAL` | tables `syscall count total_time` (`proc.pid proc.comm ...` with `-P`) |
//! | tcplife | `-T -w` | events `tcp_session` |
//! | tcpstates | `-T -w` | events `tcp_state` |
//! | wakeuptime | `-m MIN_US DURATION` | folded stacks |
//!
//! The tools fully buffer stdout when it is a pipe; run them under
//! `stdbuf -oL` (or a pty) to receive lines as they happen.

mod files;
mod net;
mod process;
mod sched;
mod signals;
mod tables;

use crate::ToolParser;
use crate::line::EventTool;
use crate::records::EventKind;
use crate::stacks::{StackStyle, StackTool};
use crate::summary::{NoTable, SummaryTool};

/// Names accepted by [`builtin`], sorted.
const NAMES: &[&str] = &[
    "biolatency",
    "biopattern",
    "bitesize",
    "cpudist",
    "drsnoop",
    "execsnoop",
    "exitsnoop",
    "gethostlatency",
    "hardirqs",
    "killsnoop",
    "mountsnoop",
    "offcputime",
    "opensnoop",
    "runqlat",
    "runqslower",
    "sigsnoop",
    "softirqs",
    "statsnoop",
    "syscount",
    "tcplife",
    "tcpstates",
    "wakeuptime",
];

/// The names of all built-in parsers (the tool binaries' names), sorted.
pub fn builtin_names() -> &'static [&'static str] {
    NAMES
}

/// A fresh parser for the tool `name`, or `None` if there is no built-in one.
///
/// Canonical flags per tool: see the crate docs. The histogram tools
/// (biolatency, bitesize, cpudist, runqlat, and hardirqs/softirqs `-d`) print
/// blocks of an optional `HH:MM:SS` line, an optional `KEY = VALUE` label
/// (`disk`, `flags`, `pid`, `tid`, `pidns`, `Process Name` → `comm`,
/// `hardirq` → `irq`, `softirq`), a `UNIT : count distribution` header and
/// `LOW -> HIGH : COUNT |bar|` rows.
pub fn builtin(name: &str) -> Option<Box<dyn ToolParser>> {
    Some(match name {
        "execsnoop" => Box::new(EventTool::new(name, process::Execsnoop)),
        "exitsnoop" => Box::new(EventTool::new(name, process::Exitsnoop)),
        "opensnoop" => Box::new(EventTool::new(name, files::Opensnoop)),
        "statsnoop" => Box::new(EventTool::new(name, files::Statsnoop)),
        "mountsnoop" => Box::new(EventTool::new(name, files::Mountsnoop)),
        "killsnoop" => Box::new(EventTool::new(
            name,
            signals::SignalSnoop {
                kind: EventKind::Kill,
            },
        )),
        "sigsnoop" => Box::new(EventTool::new(
            name,
            signals::SignalSnoop {
                kind: EventKind::Signal,
            },
        )),
        "tcplife" => Box::new(EventTool::new(name, net::Tcplife)),
        "tcpstates" => Box::new(EventTool::new(name, net::Tcpstates)),
        "gethostlatency" => Box::new(EventTool::new(name, net::Gethostlatency)),
        "runqslower" => Box::new(EventTool::new(name, sched::Runqslower)),
        "drsnoop" => Box::new(EventTool::new(name, sched::Drsnoop)),
        "biolatency" | "bitesize" | "cpudist" | "runqlat" => {
            Box::new(SummaryTool::new(name, NoTable))
        }
        "hardirqs" => Box::new(SummaryTool::new(
            name,
            tables::IrqTable {
                header: b"HARDIRQ",
                key: "irq",
            },
        )),
        "softirqs" => Box::new(SummaryTool::new(
            name,
            tables::IrqTable {
                header: b"SOFTIRQ",
                key: "softirq",
            },
        )),
        "syscount" => Box::new(SummaryTool::new(name, tables::SyscountTable)),
        "biopattern" => Box::new(SummaryTool::new(name, tables::BiopatternTable)),
        "offcputime" => Box::new(StackTool::new(name, StackStyle::Offcpu)),
        "wakeuptime" => Box::new(StackTool::new(name, StackStyle::Wakeup)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds() {
        for n in builtin_names() {
            assert_eq!(builtin(n).unwrap().tool(), *n);
        }
        assert!(builtin("tcpconnect").is_none());
        assert!(NAMES.windows(2).all(|w| w[0] < w[1]));
    }
}
