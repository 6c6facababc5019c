//! A tool's line is trusted only as far as the kernel confirms it.
//!
//! The strings the libbpf-tools print (argv, paths, `comm`) come from
//! whoever runs the traced program and may hold newlines, so one printed
//! record can span several lines, and what follows a newline can look like a
//! record of any process. The [`Checker`] sits between the line splitter and
//! the parser and decides, line by line:
//!
//! - A parsed event that names a process (pid, and comm, uid where printed)
//!   is accepted only if the kernel's facts about that pid agree
//!   ([`ProcessFacts`]: the hot path's pid map, which records comm, uid and
//!   exec times at fork, exec, rename, cgroup move and exit, then `/proc`).
//!   A successful exec must match an exec the kernel saw recently that no
//!   other record claimed.
//! - A line that does not parse may be the head of a record split by a
//!   newline in its `comm` (or any field before the last): it is kept, and
//!   joined with the next line (`head\ntail`) if the joined record verifies.
//! - A line between two accepted records that is a record of no known
//!   process continues the text of the last field of the record before it
//!   (`file.path`, `proc.args`, the last text column of a generic format):
//!   the record is held until the next line (or [`HOLD`]) to append it,
//!   escaped (`\n`).
//! - What is none of these is rejected and counted per [`Reject`] reason (a
//!   record of a real process that does not match is never appended to
//!   another process's record).
//!
//! No line can thus become an event that names a pid, uid or comm the kernel
//! does not confirm, and a newline never hides the rest of a string.

use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use parsers::{Event, EventKind, ParseError, Record, ToolParser, Value, escape, fields as f};

use crate::hotpath::PidCgroups;

/// How long an accepted record waits for a continuation line. A record and
/// its continuation are one `printf` of the tool, written within
/// microseconds.
pub const HOLD: Duration = Duration::from_millis(20);

/// How recent an exec must be for a record of it to be accepted.
const EXEC_WINDOW_NS: u64 = 60_000_000_000;

/// How many (pid, exec time) claims are remembered.
const CLAIMS: usize = 8192;

/// Why a parsed record was not accepted as an event of the process it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// No process with that pid, alive or recently exited.
    UnknownPid,
    /// The printed `comm` is not the process's.
    CommMismatch,
    /// The printed uid is not the process's.
    UidMismatch,
    /// A successful exec the kernel did not see (recently).
    NoExec,
    /// The exec it names was already claimed by another record.
    ExecClaimed,
}

impl Reject {
    /// Every reason, in the order of [`Reject::index`].
    pub const ALL: [Reject; 5] = [
        Reject::UnknownPid,
        Reject::CommMismatch,
        Reject::UidMismatch,
        Reject::NoExec,
        Reject::ExecClaimed,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::UnknownPid => "unknown_pid",
            Reject::CommMismatch => "comm_mismatch",
            Reject::UidMismatch => "uid_mismatch",
            Reject::NoExec => "no_exec",
            Reject::ExecClaimed => "exec_claimed",
        }
    }

    /// Position in [`Reject::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the checker did with a line, for the tool's counters.
#[derive(Debug)]
pub enum Verdict {
    /// A parsed record that the kernel does not confirm: dropped.
    Rejected(Reject),
    /// The line continued the text of the record before it.
    Continued,
    /// The line completed a record split by a newline.
    Joined,
    /// A line that does not parse and continues nothing: dropped.
    Unparsable(ParseError),
}

/// What the kernel knows of one process.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Its names (at exec, before the last exec, after renames), escaped
    /// and trimmed as the parsers leave a printed `comm`.
    pub comms: Vec<String>,
    /// Its real uids (at fork or exec, later, and `/proc`'s four).
    pub uids: Vec<u32>,
    /// Recent execs as (monotonic ns, comm after it); empty when unknown.
    pub execs: Vec<(u64, String)>,
    /// Whether the kernel's exec record is known (the pid map has it).
    pub execs_known: bool,
}

/// Where process facts come from.
pub trait ProcessFacts: Send + Sync {
    /// What the kernel recorded of `pid` (cheap: a map lookup).
    fn recorded(&self, pid: u32) -> Option<Facts>;
    /// What `/proc` says of a live `pid`, with every thread's name (tools
    /// print the thread's `comm` with the process id). Only asked when the
    /// record does not match [`ProcessFacts::recorded`]: reading `/proc` is
    /// itself an open that opensnoop reports.
    fn live(&self, pid: u32) -> Option<Facts>;
}

/// The hot path's pid map, then `/proc`; the agent's own process from what
/// it read of itself at start (its own reads must not make more reads).
pub struct KernelFacts {
    pids: Option<PidCgroups>,
    me: (u32, Option<Facts>),
}

impl KernelFacts {
    /// Facts from `pids` (the running hot path's map) and `/proc`.
    pub fn new(pids: Option<PidCgroups>) -> KernelFacts {
        let me = std::process::id();
        let mut facts = proc_facts(me);
        if let Some(f) = &mut facts {
            f.comms.extend(thread_comms(me));
        }
        KernelFacts {
            pids,
            me: (me, facts),
        }
    }
}

/// A kernel `comm` buffer as the parsers leave a printed one.
pub fn comm_text(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    escape::escape_lossy(&raw[..end]).trim_end().to_owned()
}

impl ProcessFacts for KernelFacts {
    fn recorded(&self, pid: u32) -> Option<Facts> {
        if pid == self.me.0 {
            return self.me.1.clone();
        }
        let info = self.pids.as_ref()?.process(pid)?;
        let (now, prev) = (comm_text(&info.comm), comm_text(&info.comm_prev));
        Some(Facts {
            comms: vec![
                now.clone(),
                comm_text(&info.comm_now),
                comm_text(&info.comm_thread),
                prev.clone(),
            ],
            uids: vec![info.uid, info.uid_last],
            execs: [(info.exec_ns, now), (info.exec_prev_ns, prev)]
                .into_iter()
                .filter(|(ns, _)| *ns != 0)
                .collect(),
            execs_known: true,
        })
    }

    fn live(&self, pid: u32) -> Option<Facts> {
        if pid == self.me.0 {
            return None;
        }
        let mut facts = proc_facts(pid)?;
        facts.comms.extend(thread_comms(pid));
        Some(facts)
    }
}

/// The names of the threads of a live `pid`.
fn thread_comms(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .take(4096)
        .filter_map(|t| std::fs::read(t.path().join("comm")).ok())
        .map(|c| comm_text(c.strip_suffix(b"\n").unwrap_or(&c)))
        .collect()
}

/// `comm` and the four uids (real, effective, saved, fs) of a live process.
fn proc_facts(pid: u32) -> Option<Facts> {
    let comm = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uids = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|u| u.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    Some(Facts {
        comms: vec![comm_text(comm.strip_suffix(b"\n").unwrap_or(&comm))],
        uids,
        ..Facts::default()
    })
}

/// The field whose text a newline may continue onto the next lines: the
/// last field the tool prints, when it is text.
fn trailing_name(ev: &Event) -> Option<&'static str> {
    let name = match ev.kind {
        EventKind::Exec => f::PROC_ARGS,
        EventKind::Open | EventKind::Stat => f::FILE_PATH,
        EventKind::DnsLookup => f::DNS_HOST,
        EventKind::Generic => ev.fields.last().map(|(n, _)| *n)?,
        _ => return None,
    };
    matches!(ev.field(name), Some(Value::Str(_))).then_some(name)
}

/// The value of [`trailing_name`], to append to.
fn trailing_text(ev: &mut Event) -> Option<&mut Value> {
    let name = trailing_name(ev)?;
    ev.fields
        .iter_mut()
        .rev()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A line, parsed and checked.
enum Parsed {
    Unparsable(ParseError),
    /// Parsed, no records (a header, a blank line).
    Empty,
    Verified(Vec<Record>, Vec<(u32, u64)>),
    Unverified(Reject),
}

/// Checks one tool's lines against the kernel; see the module docs.
pub struct Checker {
    facts: Arc<dyn ProcessFacts>,
    /// The last accepted event that ends in text, awaiting continuations.
    held: Option<Record>,
    /// The last line that did not parse, and why.
    orphan: Option<(Vec<u8>, ParseError)>,
    claims: HashSet<(u32, u64)>,
    claim_order: VecDeque<(u32, u64)>,
}

impl Checker {
    /// A checker asking `facts`.
    pub fn new(facts: Arc<dyn ProcessFacts>) -> Checker {
        Checker {
            facts,
            held: None,
            orphan: None,
            claims: HashSet::new(),
            claim_order: VecDeque::new(),
        }
    }

    /// Whether a record or line waits for the next line (release it after
    /// [`HOLD`] without one).
    pub fn holding(&self) -> bool {
        self.held.is_some() || self.orphan.is_some()
    }

    /// Takes one line: accepted records go to `out`, everything else to
    /// `note`.
    pub fn line(
        &mut self,
        parser: &mut dyn ToolParser,
        line: &[u8],
        out: &mut Vec<Record>,
        note: &mut dyn FnMut(Verdict),
    ) {
        if let Some((head, err)) = self.orphan.take() {
            let mut joined = head.clone();
            joined.push(b'\n');
            joined.extend_from_slice(line);
            if let Parsed::Verified(recs, claims) = self.parse_verify(parser, &joined) {
                self.commit(recs, claims, out, note);
                note(Verdict::Joined);
                return;
            }
            self.continue_or(&head, Verdict::Unparsable(err), note);
        }
        match self.parse_verify(parser, line) {
            Parsed::Unparsable(e) => self.orphan = Some((line.to_vec(), e)),
            Parsed::Empty if self.held.is_some() => {
                self.continue_or(line, Verdict::Continued, note);
            }
            Parsed::Empty => {}
            Parsed::Verified(recs, claims) => self.commit(recs, claims, out, note),
            // A record of no known process may be text a process printed
            // after a newline; one of a real process that does not match is
            // rejected (never appended to another process's record).
            Parsed::Unverified(Reject::UnknownPid) => {
                self.continue_or(line, Verdict::Rejected(Reject::UnknownPid), note);
            }
            Parsed::Unverified(reason) => note(Verdict::Rejected(reason)),
        }
    }

    /// Parses and checks `line`, changing nothing but the parser.
    fn parse_verify(&self, parser: &mut dyn ToolParser, line: &[u8]) -> Parsed {
        let mut recs = Vec::new();
        if let Err(e) = parser.feed(line, &mut recs) {
            return Parsed::Unparsable(e);
        }
        if recs.is_empty() {
            return Parsed::Empty;
        }
        match self.verify_all(&recs) {
            Ok(claims) => Parsed::Verified(recs, claims),
            Err(reason) => Parsed::Unverified(reason),
        }
    }

    /// Accepts verified records: what waited goes first.
    fn commit(
        &mut self,
        mut recs: Vec<Record>,
        claims: Vec<(u32, u64)>,
        out: &mut Vec<Record>,
        note: &mut dyn FnMut(Verdict),
    ) {
        self.claim(claims);
        self.release(out, note);
        self.accept(&mut recs, out);
    }

    /// `line` continues the held record's text if there is one; otherwise
    /// `otherwise` is noted.
    fn continue_or(&mut self, line: &[u8], otherwise: Verdict, note: &mut dyn FnMut(Verdict)) {
        let held = self.held.as_mut().and_then(|r| match r {
            Record::Event(ev) => trailing_text(ev),
            _ => None,
        });
        match held {
            Some(Value::Str(text)) => {
                let mut s = String::with_capacity(text.len() + line.len() + 2);
                s.push_str(text);
                s.push_str("\\n");
                s.push_str(&escape::escape_lossy(line));
                *text = s.into();
                note(Verdict::Continued);
            }
            _ => note(otherwise),
        }
    }

    /// Sends the accepted records; the last one waits if it ends in text.
    fn accept(&mut self, recs: &mut Vec<Record>, out: &mut Vec<Record>) {
        let last = recs.pop();
        out.append(recs);
        if let Some(last) = last {
            let continues = matches!(&last, Record::Event(ev) if trailing_name(ev).is_some());
            if continues {
                self.held = Some(last);
            } else {
                out.push(last);
            }
        }
    }

    /// Sends what waits: the held record, and the orphan line as a
    /// continuation of it or as unparsable.
    pub fn release(&mut self, out: &mut Vec<Record>, note: &mut dyn FnMut(Verdict)) {
        if let Some((head, err)) = self.orphan.take() {
            self.continue_or(&head, Verdict::Unparsable(err), note);
        }
        out.extend(self.held.take());
    }

    fn verify_all(&self, recs: &[Record]) -> Result<Vec<(u32, u64)>, Reject> {
        let mut claims = Vec::new();
        for ev in recs.iter().filter_map(Record::as_event) {
            if let Some(c) = self.verify(ev, &claims)? {
                claims.push(c);
            }
        }
        Ok(claims)
    }

    fn claim(&mut self, claims: Vec<(u32, u64)>) {
        for c in claims {
            if self.claims.insert(c) {
                self.claim_order.push_back(c);
            }
            if self.claim_order.len() > CLAIMS
                && let Some(old) = self.claim_order.pop_front()
            {
                self.claims.remove(&old);
            }
        }
    }

    /// Whether the kernel confirms the process `ev` names; the exec it
    /// claims, if any.
    fn verify(&self, ev: &Event, pending: &[(u32, u64)]) -> Result<Option<(u32, u64)>, Reject> {
        let Some(pid) = ev.pid else {
            return Ok(None);
        };
        let comm = ev.comm.as_deref();
        if pid == 0 {
            // The idle tasks (`swapper/N`) have no /proc entry.
            return match comm {
                None => Ok(None),
                Some(c) if c.starts_with("swapper/") => Ok(None),
                Some(_) => Err(Reject::CommMismatch),
            };
        }
        let recorded = self.facts.recorded(pid);
        let first = match &recorded {
            Some(facts) => self.check(ev, pid, facts, pending),
            None => Err(Reject::UnknownPid),
        };
        if first.is_ok() {
            return first;
        }
        // Not what the kernel recorded (or not recorded): a live process may
        // have been renamed by a thread, changed uid, or predate the agent.
        match self.facts.live(pid) {
            Some(live) => self.check(ev, pid, &live, pending).or(first),
            None => first,
        }
    }

    /// Whether `facts` confirm `ev`; the exec it claims, if any.
    fn check(
        &self,
        ev: &Event,
        pid: u32,
        facts: &Facts,
        pending: &[(u32, u64)],
    ) -> Result<Option<(u32, u64)>, Reject> {
        if let Some(uid) = ev.uid
            && !facts.uids.contains(&uid)
        {
            return Err(Reject::UidMismatch);
        }
        let comm = ev.comm.as_deref();
        let exec_ok = ev.kind == EventKind::Exec
            && ev.field(f::RET).and_then(Value::as_int) == Some(0)
            && facts.execs_known;
        if exec_ok {
            return self.exec_claim(pid, comm, facts, pending).map(Some);
        }
        match comm {
            Some(c) if !facts.comms.iter().any(|k| k == c) => Err(Reject::CommMismatch),
            _ => Ok(None),
        }
    }

    /// The recent, unclaimed exec of `pid` with this `comm`.
    fn exec_claim(
        &self,
        pid: u32,
        comm: Option<&str>,
        facts: &Facts,
        pending: &[(u32, u64)],
    ) -> Result<(u32, u64), Reject> {
        let now = crate::hotpath::pids::monotonic_ns();
        let mut recent = facts
            .execs
            .iter()
            .filter(|(ns, _)| now.saturating_sub(*ns) < EXEC_WINDOW_NS)
            .peekable();
        if recent.peek().is_none() {
            return Err(Reject::NoExec);
        }
        let mut reason = Reject::CommMismatch;
        for (ns, c) in recent {
            if comm.is_some_and(|p| p != c) {
                continue;
            }
            let claim = (pid, *ns);
            if self.claims.contains(&claim) || pending.contains(&claim) {
                reason = Reject::ExecClaimed;
                continue;
            }
            return Ok(claim);
        }
        Err(reason)
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
