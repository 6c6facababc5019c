//! Security rules: a language users write (Falco-style lists, macros and
//! rules in TOML), compiled once and evaluated on every enriched event; a
//! match becomes an [`Alert`], rate-limited and deduplicated, for the alert
//! sinks (console, Alertmanager, OTLP logs).
//!
//! - [`syntax`]: the condition language and its nom parser.
//! - [`compile`]: fields, lists and macros resolved; literals typed.
//! - [`eval`]: the compiled form and its evaluation.
//! - [`load`]: rules files and directories into a [`RuleSet`].
//! - [`limit`]: rate limits and deduplication.
//! - [`alert`]: alerts and the [`AlertSink`] trait.
//! - [`stage`]: the agent's rules stage, its configuration and reloads.
//!
//! The [`Engine`] is the pipeline stage: it takes events one by one, tries
//! only the rules whose event kinds can match, and emits alerts.

pub(crate) mod alert;
pub(crate) mod compile;
pub(crate) mod diag;
pub(crate) mod eval;
pub(crate) mod fields;
pub(crate) mod glob;
pub(crate) mod limit;
pub(crate) mod load;
pub(crate) mod stage;
pub(crate) mod syntax;
pub(crate) mod template;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use model::Labels;
use parsers::{Comm, Event, EventKind};

pub use alert::{Alert, AlertSink, ConsoleAlerts, Severity};
pub(crate) use diag::{RuleError, RuleErrors};
pub use eval::{Ctx, Lineage};
pub use load::{Loaded, load_paths, load_sources, load_str};
pub(crate) use stage::{RulesConfig, RulesStage};

use self::{
    eval::{KindSet, Node},
    fields::{FieldRef, KINDS, kind_index},
    limit::{Decision, LimitStats, Limiter, RateLimit},
    template::Template,
};

/// The default rules shipped with eunomia (`rules/default.toml`), built in.
pub const DEFAULT_RULES: &str = include_str!("../../../rules/default.toml");

/// The name the built-in default rules are reported under.
pub const DEFAULT_RULES_NAME: &str = "<built-in>/default.toml";

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name.
    pub(crate) name: Arc<str>,
    /// What it detects.
    pub(crate) description: String,
    /// How serious a match is.
    pub(crate) severity: Severity,
    /// Free-form tags (e.g. MITRE techniques).
    pub(crate) tags: Arc<[Box<str>]>,
    /// The condition.
    pub(crate) condition: Node,
    /// The event kinds the condition can match.
    pub(crate) kinds: KindSet,
    /// The alert text.
    pub(crate) output: Template,
    /// At most this many alerts.
    pub(crate) rate_limit: Option<RateLimit>,
    /// The fields whose values identify a finding (for deduplication).
    pub(crate) dedup_by: Box<[FieldRef]>,
    /// `file:line:col` of the definition.
    pub(crate) location: String,
}

/// A compiled set of rules with a per-kind index.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// For each event kind, the indices of the rules that can match it.
    by_kind: Vec<Box<[u32]>>,
    /// The files the set was loaded from.
    pub(crate) files: Vec<PathBuf>,
}

impl RuleSet {
    /// Indexes `rules` by the kinds they can match.
    pub(crate) fn new(rules: Vec<Rule>, files: Vec<PathBuf>) -> RuleSet {
        let by_kind = KINDS
            .iter()
            .map(|k| {
                rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.kinds.contains(*k))
                    .map(|(i, _)| i as u32)
                    .collect()
            })
            .collect();
        RuleSet {
            rules,
            by_kind,
            files,
        }
    }

    /// An empty set.
    pub(crate) fn empty() -> RuleSet {
        RuleSet::new(Vec::new(), Vec::new())
    }

    /// The rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The indices of the rules that can match events of `kind`.
    #[inline]
    pub(crate) fn candidates(&self, kind: EventKind) -> &[u32] {
        &self.by_kind[kind_index(kind)]
    }

    /// Calls `f` with the index and rule of every rule matching `ctx`'s event.
    #[inline]
    pub fn for_each_match(&self, ctx: &Ctx<'_>, mut f: impl FnMut(usize, &Rule)) {
        for &i in self.candidates(ctx.event.kind) {
            let rule = &self.rules[i as usize];
            if rule.condition.eval(ctx) {
                f(i as usize, rule);
            }
        }
    }
}

/// The built-in default rules, then `paths` (files and directories).
pub(crate) fn load_with_defaults(paths: &[PathBuf]) -> Result<Loaded, RuleErrors> {
    let mut sources = vec![diag::SourceFile {
        path: DEFAULT_RULES_NAME.into(),
        text: DEFAULT_RULES.to_owned(),
    }];
    let files = load::expand_paths(paths).map_err(|e| RuleErrors(vec![e]))?;
    let mut errors = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(diag::SourceFile { path, text }),
            Err(e) => errors.push(RuleError::file(path, format!("cannot read: {e}"))),
        }
    }
    if !errors.is_empty() {
        return Err(RuleErrors(errors));
    }
    load_sources(sources)
}

/// How many processes the lineage table remembers.
pub(crate) const PROC_TABLE_CAPACITY: usize = 32_768;

/// The uid and name each live pid had at its last exec, for `parent.*` and
/// `proc.prev_uid`. A pid leaves at its exit (after the exit event itself
/// was evaluated); bounded besides: cleared (and counted) when full.
#[derive(Debug, Default)]
struct ProcTable {
    map: HashMap<u32, (u32, Option<Comm>)>,
    /// The pid of the last exit event, removed before the next event.
    exited: Option<u32>,
    resets: u64,
}

impl ProcTable {
    /// Records an exec event and returns what the table knew before it.
    fn observe(&mut self, e: &Event) -> Lineage<'_> {
        if let Some(pid) = self.exited.take() {
            self.map.remove(&pid);
        }
        if e.kind == EventKind::Exit {
            self.exited = e.pid;
        }
        let prev_uid = e.pid.and_then(|p| self.map.get(&p)).map(|p| p.0);
        if e.kind == EventKind::Exec
            && let (Some(pid), Some(uid)) = (e.pid, e.uid)
        {
            if self.map.len() >= PROC_TABLE_CAPACITY && !self.map.contains_key(&pid) {
                self.map.clear();
                self.resets += 1;
            }
            self.map.insert(pid, (uid, e.comm.clone()));
            // A parent that never exec'd while the agent watched (a daemon
            // that forked itself, like podman's conmon, or one started
            // before the agent) is read from /proc while it is alive.
            if let Some(ppid) = e.ppid
                && !self.map.contains_key(&ppid)
                && let Some(parent) = proc_status(ppid)
            {
                self.map.insert(ppid, parent);
            }
        }
        let parent = e.ppid.and_then(|p| self.map.get(&p));
        let target = e
            .field(parsers::fields::TARGET_PID)
            .and_then(|v| v.as_int())
            .and_then(|t| u32::try_from(t).ok())
            .and_then(|t| self.map.get(&t));
        Lineage {
            parent_uid: parent.map(|p| p.0),
            parent_comm: parent.and_then(|p| p.1.as_deref()),
            prev_uid: if e.kind == EventKind::Exec {
                prev_uid
            } else {
                None
            },
            uid: prev_uid,
            target_uid: target.map(|t| t.0),
        }
    }
}

/// The real uid and the name of a live process, from `/proc/PID/status`.
fn proc_status(pid: u32) -> Option<(u32, Option<Comm>)> {
    let status = crate::host::proc::Status::read(pid)?;
    Some((status.uid()?, status.name.as_deref().map(Comm::from)))
}

/// Counters of the rules stage (self-observability).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Events evaluated.
    pub events: u64,
    /// Rule matches (before rate limits and deduplication).
    pub(crate) matches: u64,
    /// Alerts emitted.
    pub(crate) alerts: u64,
    /// Suppressed alerts.
    pub(crate) limits: LimitStats,
    /// Times the lineage table was full and cleared.
    pub(crate) proc_table_resets: u64,
}

/// The rules stage: evaluates a [`RuleSet`] on events and emits alerts.
pub struct Engine {
    set: Arc<RuleSet>,
    procs: ProcTable,
    limiter: Limiter,
    dedup_window: Duration,
    stats: EngineStats,
}

/// How many findings the deduplication table tracks.
pub(crate) const DEDUP_CAPACITY: usize = 16_384;

impl Engine {
    /// An engine for `set`, deduplicating findings within `dedup_window`.
    pub fn new(set: Arc<RuleSet>, dedup_window: Duration) -> Engine {
        let limiter = Self::limiter(&set, dedup_window);
        Engine {
            set,
            procs: ProcTable::default(),
            limiter,
            dedup_window,
            stats: EngineStats::default(),
        }
    }

    fn limiter(set: &RuleSet, window: Duration) -> Limiter {
        Limiter::new(
            window,
            DEDUP_CAPACITY,
            set.rules().iter().map(|r| r.rate_limit),
            Instant::now(),
        )
    }

    /// Swaps in a reloaded set (rate limits and deduplication start over).
    pub(crate) fn replace(&mut self, set: Arc<RuleSet>) {
        self.stats.limits = add_limits(self.stats.limits, self.limiter.stats);
        self.limiter = Self::limiter(&set, self.dedup_window);
        self.set = set;
    }

    /// The counters so far.
    pub fn stats(&self) -> EngineStats {
        let mut s = self.stats;
        s.limits = add_limits(s.limits, self.limiter.stats);
        s.proc_table_resets = self.procs.resets;
        s
    }

    /// Evaluates the rules on `event` (with its enrichment `labels`) and
    /// appends the alerts to deliver to `out`.
    pub fn on_event(
        &mut self,
        event: &Event,
        labels: &dyn Labels,
        now: Instant,
        out: &mut Vec<Alert>,
    ) {
        self.stats.events += 1;
        let lineage = self.procs.observe(event);
        let ctx = Ctx {
            event,
            labels,
            lineage,
        };
        let limiter = &mut self.limiter;
        let stats = &mut self.stats;
        self.set.for_each_match(&ctx, |i, rule| {
            stats.matches += 1;
            let fp = alert::fingerprint(rule, &ctx);
            if let Decision::Deliver { suppressed } = limiter.admit(i, fp, now) {
                stats.alerts += 1;
                out.push(Alert::new(rule, &ctx, fp, suppressed));
            }
        });
    }
}

fn add_limits(a: LimitStats, b: LimitStats) -> LimitStats {
    LimitStats {
        duplicates: a.duplicates + b.duplicates,
        rate_limited: a.rate_limited + b.rate_limited,
        table_resets: a.table_resets + b.table_resets,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod default_tests;

#[cfg(test)]
mod proc_table_tests {
    use super::*;

    fn event(kind: EventKind, pid: u32, ppid: u32, uid: u32) -> Event {
        let mut e = Event::new(Arc::from("test"), kind);
        e.pid = Some(pid);
        e.ppid = Some(ppid);
        e.uid = Some(uid);
        e
    }

    #[test]
    fn a_pid_is_forgotten_after_its_exit_event_was_evaluated() {
        let mut t = ProcTable::default();
        t.observe(&event(EventKind::Exec, 1_000_001, 1, 7));
        let exit = event(EventKind::Exit, 1_000_001, 1, 7);
        assert_eq!(
            t.observe(&exit).uid,
            Some(7),
            "the exit itself still sees it"
        );
        t.observe(&event(EventKind::Exit, 1_000_002, 1, 0));
        assert!(!t.map.contains_key(&1_000_001));
        let child = event(EventKind::Exec, 1_000_003, 1_000_001, 0);
        assert_eq!(t.observe(&child).parent_uid, None);
    }
}
