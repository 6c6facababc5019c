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
    cell::{Cell, RefCell},
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use parsers::{Event, EventKind, ParseError, Record, ToolParser, Value, escape, fields as f};

use hotpath_common::{FAMILY_MOUNTS, FAMILY_PATHS};

pub use super::facts::{Facts, KernelFacts, ProcessFacts};

/// How long an accepted record waits for a continuation line. A record and
/// its continuation are one `printf` of the tool, written within
/// microseconds.
pub(crate) const HOLD: Duration = Duration::from_millis(20);

/// How long an accepted record waits when the kernel counted newlines its
/// process passed that no line accounted for yet: the tool writes those
/// lines next, but a loaded machine may stall it between two writes.
pub(crate) const HOLD_OWED: Duration = Duration::from_secs(1);

/// How recent an exec must be for a record of it to be accepted.
const EXEC_WINDOW_NS: u64 = 60_000_000_000;

/// How long after a process passed a string with a newline its records may
/// continue on the next lines (the tool prints within milliseconds).
const NEWLINE_WINDOW_NS: u64 = 10_000_000_000;

/// How long a pid's recorded facts are reused (a record they do not
/// confirm asks again).
const CACHE_NS: u64 = 200_000_000;

/// Entries of that cache before the stale ones are dropped.
const CACHE_MAX: usize = 512;

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
    /// A line after a record that was sent before the lines its process's
    /// counted newlines still owed it: text after a newline, or a record
    /// that cannot be told from one.
    LateText,
}

impl Reject {
    /// Every reason, in the order of [`Reject::index`].
    pub(crate) const ALL: [Reject; 6] = [
        Reject::UnknownPid,
        Reject::CommMismatch,
        Reject::UidMismatch,
        Reject::NoExec,
        Reject::ExecClaimed,
        Reject::LateText,
    ];

    /// The `reason` label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reject::UnknownPid => "unknown_pid",
            Reject::CommMismatch => "comm_mismatch",
            Reject::UidMismatch => "uid_mismatch",
            Reject::NoExec => "no_exec",
            Reject::ExecClaimed => "exec_claimed",
            Reject::LateText => "late_text",
        }
    }

    /// Position in [`Reject::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What the checker did with a line, for the tool's counters.
#[derive(Debug)]
pub enum Verdict {
    /// A parsed record that the kernel does not confirm: dropped (with the
    /// start of its line, escaped, for the log).
    Rejected(Reject, String),
    /// The line continued the text of the record before it.
    Continued,
    /// The line completed a record split by a newline.
    Joined,
    /// A line that does not parse and continues nothing: dropped.
    Unparsable(ParseError),
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

/// Appends a continuation line to the event's trailing text, escaped.
fn append_line(ev: &mut Event, line: &[u8]) {
    if let Some(Value::Str(text)) = trailing_text(ev) {
        let mut s = String::with_capacity(text.len() + line.len() + 2);
        s.push_str(text);
        s.push_str("\\n");
        s.push_str(&escape::escape_lossy(line));
        *text = s.into();
    }
}

/// The start of a line, escaped, for a log message.
fn excerpt(line: &[u8]) -> String {
    escape::escape_lossy(&line[..line.len().min(160)]).into_owned()
}

/// Whether every event of `recs` is a record of process `pid`.
fn records_of(recs: &[Record], pid: u32) -> bool {
    recs.iter()
        .filter_map(Record::as_event)
        .all(|e| e.pid == Some(pid))
}

/// A split record is given up past this many bytes (mountsnoop's longest
/// record is about 9 KiB).
const MAX_CHAIN: usize = 64 * 1024;

/// A line, parsed and checked.
enum Parsed {
    Unparsable(ParseError),
    /// Parsed, no records (a header, a blank line).
    Empty,
    Verified(Vec<Record>, Vec<(u32, u64)>),
    Unverified(Reject),
}

/// The newline family of a tool's records, when the kernel counts it.
fn family_of(kind: Option<EventKind>) -> Option<u32> {
    match kind? {
        EventKind::Open | EventKind::Stat => Some(FAMILY_PATHS),
        EventKind::Mount => Some(FAMILY_MOUNTS),
        _ => None,
    }
}

/// Lines of a record split by newlines, waiting for the line that
/// completes it.
struct Chain {
    lines: Vec<Vec<u8>>,
    bytes: usize,
    /// Why the first line alone did not parse.
    err: ParseError,
    /// The longest join of its first lines that verified so far.
    best: Option<Joined>,
}

/// A record joined from several lines.
struct Joined {
    recs: Vec<Record>,
    claims: Vec<(u32, u64)>,
    pid: u32,
    splits: u32,
}

/// Checks one tool's lines against the kernel; see the module docs.
pub struct Checker {
    facts: Arc<dyn ProcessFacts>,
    /// The family whose newlines the kernel counts for this tool.
    family: Option<u32>,
    /// The last accepted event that ends in text, awaiting continuations,
    /// with how many more lines the kernel's count allows it.
    held: Option<(Record, u32)>,
    /// A record sent (its hold over) before the lines the kernel's count
    /// says it still owed: (pid, lines owed).
    owed: Option<(u32, u32)>,
    /// A line that did not parse, and the lines after it.
    chain: Option<Chain>,
    /// Newlines accounted for, per pid and in all (since `base`).
    consumed: HashMap<u32, u32>,
    consumed_total: u64,
    base: u64,
    /// The newline count of the last verified process (see `check`).
    last_newlines: Cell<u32>,
    /// Recent answers of [`ProcessFacts::recorded`], by pid, with their time.
    cache: RefCell<HashMap<u32, (u64, Facts)>>,
    claims: HashSet<(u32, u64)>,
    claim_order: VecDeque<(u32, u64)>,
}

impl Checker {
    /// A checker asking `facts` about the records of a tool of `kind`.
    pub fn new(facts: Arc<dyn ProcessFacts>, kind: Option<EventKind>) -> Checker {
        let counted = family_of(kind).and_then(|f| Some((f, facts.newlines(f)?)));
        let (family, base) = (counted.map(|(f, _)| f), counted.map_or(0, |(_, n)| n));
        Checker {
            facts,
            family,
            held: None,
            owed: None,
            chain: None,
            consumed: HashMap::new(),
            consumed_total: 0,
            base,
            last_newlines: Cell::new(0),
            cache: RefCell::new(HashMap::new()),
            claims: HashSet::new(),
            claim_order: VecDeque::new(),
        }
    }

    /// Whether a record or line waits for the next line (release it after
    /// [`Checker::hold_for`] without one).
    pub(crate) fn holding(&self) -> bool {
        self.held.is_some() || self.chain.is_some()
    }

    /// How long what is held waits for the next line: [`HOLD_OWED`] while
    /// the held record's process owes it lines, [`HOLD`] otherwise.
    pub(crate) fn hold_for(&self) -> Duration {
        match &self.held {
            Some((_, left)) if *left > 0 && self.family.is_some() => HOLD_OWED,
            _ => HOLD,
        }
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
        if self.family.is_some()
            && (self.continue_owed(parser, line, note) || self.continue_counted(parser, line, note))
        {
            return;
        }
        if let Some(chain) = self.chain.take() {
            match self.extend_chain(parser, chain, line, out, note) {
                Ok(()) => return,
                Err(rest) => {
                    for l in rest {
                        self.line(parser, &l, out, note);
                    }
                }
            }
            return;
        }
        match self.parse_verify(parser, line) {
            Parsed::Unparsable(err) => {
                self.chain = Some(Chain {
                    lines: vec![line.to_vec()],
                    bytes: line.len(),
                    err,
                    best: None,
                });
            }
            Parsed::Empty if self.held.is_some() && self.family.is_none() => {
                self.continue_or(line, Verdict::Continued, note);
            }
            Parsed::Empty => {}
            Parsed::Verified(recs, claims) => self.commit(recs, claims, out),
            // Where the kernel does not count newlines, a record of no known
            // process may be text printed after one; a record of a real
            // process that does not match is never appended to another's.
            Parsed::Unverified(Reject::UnknownPid) if self.family.is_none() => {
                let verdict = Verdict::Rejected(Reject::UnknownPid, excerpt(line));
                self.continue_or(line, verdict, note);
            }
            Parsed::Unverified(reason) => note(Verdict::Rejected(reason, excerpt(line))),
        }
    }

    /// Where newlines are counted: while the held record's process has
    /// newlines the kernel counted and no line accounted for, `line`
    /// continues it unless it is a record of that same process (which the
    /// process could print anyway). A record of another process there is
    /// ambiguous (it may be genuine, or text after a newline): it is
    /// appended, never accepted, and leaves the count as it was, so a decoy
    /// record before the real one cannot use it up.
    fn continue_counted(
        &mut self,
        parser: &mut dyn ToolParser,
        line: &[u8],
        note: &mut dyn FnMut(Verdict),
    ) -> bool {
        let Some((Record::Event(ev), left)) = &self.held else {
            return false;
        };
        if *left == 0 {
            return false;
        }
        let pid = ev.pid.unwrap_or(0);
        let consume = match self.parse_verify(parser, line) {
            Parsed::Verified(recs, _) if records_of(&recs, pid) => return false,
            Parsed::Verified(..) => false,
            _ => true,
        };
        if let Some((Record::Event(ev), left)) = &mut self.held {
            append_line(ev, line);
            if consume {
                *left -= 1;
            }
        }
        if consume {
            self.consume(pid, 1);
        }
        note(Verdict::Continued);
        true
    }

    /// Where a record was sent before the lines it was owed: the next lines
    /// are rejected, one per newline owed, unless one is a record of that
    /// same process. The tool prints a record's lines one after the other,
    /// so these are its text after the newlines, however late they come; a
    /// record of another process among them cannot be told from that text.
    fn continue_owed(
        &mut self,
        parser: &mut dyn ToolParser,
        line: &[u8],
        note: &mut dyn FnMut(Verdict),
    ) -> bool {
        let Some((pid, left)) = self.owed else {
            return false;
        };
        if let Parsed::Verified(recs, _) = self.parse_verify(parser, line)
            && records_of(&recs, pid)
        {
            self.owed = None;
            return false;
        }
        self.owed = (left > 1).then_some((pid, left - 1));
        self.consume(pid, 1);
        note(Verdict::Rejected(Reject::LateText, excerpt(line)));
        true
    }

    /// A split record's next line: the joined record is accepted if it
    /// verifies (and the kernel counted its newlines); the chain grows while
    /// the kernel counted newlines not yet accounted for; otherwise the first
    /// line is unparsable and the others are returned to be taken one by one.
    fn extend_chain(
        &mut self,
        parser: &mut dyn ToolParser,
        mut chain: Chain,
        line: &[u8],
        out: &mut Vec<Record>,
        note: &mut dyn FnMut(Verdict),
    ) -> Result<(), Vec<Vec<u8>>> {
        chain.lines.push(line.to_vec());
        chain.bytes += line.len() + 1;
        let joined = chain.lines.join(&b'\n');
        let splits = chain.lines.len() as u32 - 1;
        let room = self.pending() > u64::from(splits) && chain.bytes < MAX_CHAIN;
        if let Parsed::Verified(recs, claims) = self.parse_verify(parser, &joined)
            && let Some((pid, more)) = self.newlines_allowed(&recs, splits)
        {
            // The process passed more newlines than this join holds: a
            // longer join may be the whole record (the best so far waits).
            chain.best = Some(Joined {
                recs,
                claims,
                pid,
                splits,
            });
            if more && room {
                self.chain = Some(chain);
                return Ok(());
            }
        }
        if chain.best.is_none() && room {
            self.chain = Some(chain);
            return Ok(());
        }
        self.end_chain(chain, out, note)
    }

    /// Ends a chain: its best join is accepted and the lines after it are
    /// returned; without one, the first line is unparsable and the others
    /// are returned, to be taken one by one.
    fn end_chain(
        &mut self,
        mut chain: Chain,
        out: &mut Vec<Record>,
        note: &mut dyn FnMut(Verdict),
    ) -> Result<(), Vec<Vec<u8>>> {
        match chain.best.take() {
            Some(j) => {
                self.consume(j.pid, j.splits);
                self.commit(j.recs, j.claims, out);
                note(Verdict::Joined);
                let rest = chain.lines.split_off(j.splits as usize + 1);
                if rest.is_empty() { Ok(()) } else { Err(rest) }
            }
            None => {
                self.continue_or(&chain.lines[0], Verdict::Unparsable(chain.err), note);
                Err(chain.lines.split_off(1))
            }
        }
    }

    /// The pid of a joined record if its `splits` newlines are allowed (by
    /// its `comm`, verified, and where counted by its process's strings),
    /// and whether its process passed more newlines than that.
    fn newlines_allowed(&self, recs: &[Record], splits: u32) -> Option<(u32, bool)> {
        let ev = recs.iter().find_map(Record::as_event)?;
        let pid = ev.pid.unwrap_or(0);
        let in_comm = ev.comm.as_deref().map_or(0, |c| c.matches("\\n").count()) as u32;
        let needed = splits.saturating_sub(in_comm);
        if self.family.is_none() {
            return Some((pid, false));
        }
        let used = self.consumed.get(&pid).copied().unwrap_or(0);
        let left = self.last_newlines.get().saturating_sub(used);
        (left >= needed).then_some((pid, left > needed))
    }

    /// Newlines the kernel counted in this family that no record accounted
    /// for yet.
    fn pending(&self) -> u64 {
        let Some(total) = self.family.and_then(|f| self.facts.newlines(f)) else {
            return 0;
        };
        total
            .saturating_sub(self.base)
            .saturating_sub(self.consumed_total)
    }

    fn consume(&mut self, pid: u32, n: u32) {
        if self.consumed.len() >= CLAIMS {
            self.consumed.clear();
        }
        *self.consumed.entry(pid).or_default() += n;
        self.consumed_total += u64::from(n);
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
    fn commit(&mut self, mut recs: Vec<Record>, claims: Vec<(u32, u64)>, out: &mut Vec<Record>) {
        self.claim(claims);
        self.release(out);
        let Some(last) = recs.pop() else {
            return;
        };
        out.append(&mut recs);
        match &last {
            Record::Event(ev) if trailing_name(ev).is_some() => {
                let pid = ev.pid.unwrap_or(0);
                let used = self.consumed.get(&pid).copied().unwrap_or(0);
                let left = self.last_newlines.get().saturating_sub(used);
                self.held = Some((last, left));
            }
            _ => out.push(last),
        }
    }

    /// `line` continues the held record's text if there is one; otherwise
    /// `otherwise` is noted.
    fn continue_or(&mut self, line: &[u8], otherwise: Verdict, note: &mut dyn FnMut(Verdict)) {
        match &mut self.held {
            Some((Record::Event(ev), _)) if self.family.is_none() => {
                append_line(ev, line);
                note(Verdict::Continued);
            }
            _ => note(otherwise),
        }
    }

    /// Sends what waits: the held record, and a chain's lines one by one.
    pub fn release_with(
        &mut self,
        parser: &mut dyn ToolParser,
        out: &mut Vec<Record>,
        note: &mut dyn FnMut(Verdict),
    ) {
        while let Some(chain) = self.chain.take() {
            if let Err(rest) = self.end_chain(chain, out, note) {
                for l in rest {
                    self.line(parser, &l, out, note);
                }
            }
        }
        if let Some((Record::Event(ev), left)) = &self.held
            && *left > 0
            && self.family.is_some()
        {
            self.owed = Some((ev.pid.unwrap_or(0), *left));
        }
        self.release(out);
    }

    /// Sends the held record.
    fn release(&mut self, out: &mut Vec<Record>) {
        out.extend(self.held.take().map(|(r, _)| r));
    }
}

#[path = "verify_confirm.rs"]
mod confirm;

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
