//! The compiled form of a condition ([`Node`]) and its evaluation against
//! one event. Fields are [`FieldRef`]s resolved at compile time and literals
//! are already typed, so evaluation neither parses nor looks names up in maps.

use std::{collections::HashSet, net::IpAddr, sync::Arc};

use model::{Labels, NoLabels, ValueRef};

use memchr::memmem;
use parsers::Event;

use super::{
    fields::{FieldRef, KINDS, kind_index},
    glob::Glob,
    syntax::CmpOp,
};

/// What the engine's process table knows about an exec event's process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lineage<'a> {
    /// The parent's uid at its last exec.
    pub(crate) parent_uid: Option<u32>,
    /// The parent's name at its last exec.
    pub(crate) parent_comm: Option<&'a str>,
    /// This pid's uid at its previous exec.
    pub(crate) prev_uid: Option<u32>,
    /// This pid's uid at its last exec (for events without a uid column).
    pub(crate) uid: Option<u32>,
    /// The signal target's uid at its last exec.
    pub(crate) target_uid: Option<u32>,
}

/// Everything a condition can read about one event.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The event.
    pub event: &'a Event,
    /// Its enrichment labels.
    pub labels: &'a dyn Labels,
    /// Its process lineage.
    pub lineage: Lineage<'a>,
}

impl<'a> Ctx<'a> {
    /// A context without labels or lineage.
    pub fn bare(event: &'a Event) -> Self {
        Ctx {
            event,
            labels: &NoLabels,
            lineage: Lineage::default(),
        }
    }

    /// The value of `f`, if the event has it.
    #[inline]
    pub(crate) fn get(&self, f: FieldRef) -> Option<ValueRef<'a>> {
        let e = self.event;
        let int = |v: Option<u32>| v.map(|x| ValueRef::Int(i64::from(x)));
        match f {
            FieldRef::Kind => Some(ValueRef::Str(e.kind.as_str())),
            FieldRef::Tool => Some(ValueRef::Str(&e.tool)),
            FieldRef::Pid => int(e.pid),
            FieldRef::Tid => int(e.tid),
            FieldRef::Ppid => int(e.ppid),
            FieldRef::Uid => int(e.uid.or(self.lineage.uid)),
            FieldRef::Comm => e.comm.as_ref().map(|c| ValueRef::Str(c.as_str())),
            FieldRef::Event(name) => e
                .fields
                .iter()
                .find(|(n, _)| std::ptr::eq(*n, name) || *n == name)
                .map(|(_, v)| v.as_ref()),
            FieldRef::Label(name) => self
                .labels
                .label(name)
                .or_else(|| e.field(name).and_then(|v| v.as_str()))
                .map(ValueRef::Str),
            FieldRef::ParentUid => int(self.lineage.parent_uid),
            FieldRef::ParentComm => self.lineage.parent_comm.map(ValueRef::Str),
            FieldRef::PrevUid => int(self.lineage.prev_uid),
            FieldRef::TargetUid => int(self.lineage.target_uid),
            FieldRef::Container => {
                let label = |n: &str| {
                    self.labels
                        .label(n)
                        .or_else(|| e.field(n).and_then(|v| v.as_str()))
                        .filter(|v| !v.is_empty())
                };
                label(model::labels::CONTAINER_NAME)
                    .or_else(|| {
                        label(model::labels::CONTAINER_ID).map(|id| id.get(..12).unwrap_or(id))
                    })
                    .map(ValueRef::Str)
            }
            FieldRef::FileWritable => {
                const WRITE: i64 = 0o1 | 0o2 | 0o100 | 0o1000;
                let flags = e.field(parsers::fields::FILE_FLAGS)?.as_int()?;
                Some(ValueRef::Bool(flags & WRITE != 0))
            }
        }
    }
}

/// A set of event kinds, one bit per [`KINDS`] entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KindSet(pub(crate) u32);

impl KindSet {
    /// Every kind.
    pub(crate) const ALL: KindSet = KindSet((1u32 << KINDS.len()) - 1);
    /// No kind.
    pub(crate) const NONE: KindSet = KindSet(0);

    /// Whether `kind` is in the set.
    #[inline]
    pub(crate) fn contains(self, kind: parsers::EventKind) -> bool {
        self.0 & (1 << kind_index(kind)) != 0
    }

    /// The set of just `kind`.
    pub(crate) fn of(kind: parsers::EventKind) -> KindSet {
        KindSet(1 << kind_index(kind))
    }

    /// The kinds not in the set.
    pub(crate) fn complement(self) -> KindSet {
        KindSet(!self.0 & Self::ALL.0)
    }

    /// The kind names, for messages.
    pub(crate) fn names(self) -> Vec<&'static str> {
        KINDS
            .iter()
            .filter(|k| self.contains(**k))
            .map(|k| k.as_str())
            .collect()
    }
}

/// A set of strings, linear when small and hashed when large.
#[derive(Debug, Clone)]
pub(crate) enum StrSet {
    /// Up to [`StrSet::LINEAR_MAX`] members.
    Small(Box<[Box<str>]>),
    /// More.
    Hashed(Arc<HashSet<Box<str>>>),
}

impl StrSet {
    /// Above this many members the set is hashed.
    pub(crate) const LINEAR_MAX: usize = 12;

    /// A set of `items` (duplicates removed).
    pub(crate) fn new(mut items: Vec<Box<str>>) -> StrSet {
        items.sort();
        items.dedup();
        if items.len() <= Self::LINEAR_MAX {
            StrSet::Small(items.into())
        } else {
            StrSet::Hashed(Arc::new(items.into_iter().collect()))
        }
    }

    /// Whether `s` is a member.
    #[inline]
    pub(crate) fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::Small(items) => items.iter().any(|i| i.len() == s.len() && **i == *s),
            StrSet::Hashed(set) => set.contains(s),
        }
    }
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// Always true.
    True,
    /// Always false.
    False,
    /// All children hold.
    And(Box<[Node]>),
    /// Any child holds.
    Or(Box<[Node]>),
    /// The child does not hold.
    Not(Box<Node>),
    /// The event's kind is in the set.
    Kind(KindSet),
    /// The field is present.
    Exists(FieldRef),
    /// Text equality (`ne` negates; absent fields never match).
    StrEq {
        /// Field.
        f: FieldRef,
        /// Value.
        v: Box<str>,
        /// `!=`.
        ne: bool,
    },
    /// Integer comparison (integers and durations in ns).
    IntCmp {
        /// Field.
        f: FieldRef,
        /// Operator.
        op: CmpOp,
        /// Value.
        v: i64,
    },
    /// Floating-point comparison.
    FloatCmp {
        /// Field.
        f: FieldRef,
        /// Operator.
        op: CmpOp,
        /// Value.
        v: f64,
    },
    /// Boolean equality.
    BoolEq {
        /// Field.
        f: FieldRef,
        /// Value.
        v: bool,
        /// `!=`.
        ne: bool,
    },
    /// IP equality.
    IpEq {
        /// Field.
        f: FieldRef,
        /// Value.
        v: IpAddr,
        /// `!=`.
        ne: bool,
    },
    /// Text membership.
    StrIn {
        /// Field.
        f: FieldRef,
        /// Members.
        set: StrSet,
    },
    /// Two fields compared (same type; absent or mistyped never match).
    FieldCmp {
        /// Left field.
        a: FieldRef,
        /// Operator.
        op: CmpOp,
        /// Right field.
        b: FieldRef,
    },
    /// Integer membership (sorted).
    IntIn {
        /// Field.
        f: FieldRef,
        /// Members, sorted.
        set: Box<[i64]>,
    },
    /// IP membership.
    IpIn {
        /// Field.
        f: FieldRef,
        /// Members.
        set: Box<[IpAddr]>,
    },
    /// Substring.
    Contains {
        /// Field.
        f: FieldRef,
        /// Precompiled searcher.
        finder: Arc<memmem::Finder<'static>>,
    },
    /// Prefix.
    StartsWith {
        /// Field.
        f: FieldRef,
        /// Prefix.
        v: Box<str>,
    },
    /// Suffix.
    EndsWith {
        /// Field.
        f: FieldRef,
        /// Suffix.
        v: Box<str>,
    },
    /// Glob match.
    Glob {
        /// Field.
        f: FieldRef,
        /// Pattern.
        pat: Arc<Glob>,
    },
}

/// Applies `op` to an ordering.
#[inline]
fn cmp_holds<T: PartialOrd>(a: T, op: CmpOp, b: T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

/// The text of `f`, if present and text.
#[inline]
fn text<'a>(ctx: &Ctx<'a>, f: FieldRef) -> Option<&'a str> {
    match ctx.get(f)? {
        ValueRef::Str(s) => Some(s),
        _ => None,
    }
}

/// The integer of `f` (durations in ns), if present and numeric.
#[inline]
fn int(ctx: &Ctx<'_>, f: FieldRef) -> Option<i64> {
    match ctx.get(f)? {
        ValueRef::Int(i) => Some(i),
        ValueRef::Duration(d) => i64::try_from(d).ok(),
        _ => None,
    }
}

/// A numeric value as an integer.
#[inline]
fn as_i64(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Int(i) => Some(i),
        ValueRef::Duration(d) => i64::try_from(d).ok(),
        _ => None,
    }
}

/// The IP of `f`, if present and an address.
#[inline]
fn ip(ctx: &Ctx<'_>, f: FieldRef) -> Option<IpAddr> {
    match ctx.get(f)? {
        ValueRef::Ip(ip) => Some(ip),
        ValueRef::Str(s) => s.parse().ok(),
        _ => None,
    }
}

impl Node {
    /// Whether the condition holds for the event in `ctx`. A comparison on a
    /// field the event lacks is false, whatever the operator.
    pub(crate) fn eval(&self, ctx: &Ctx<'_>) -> bool {
        match self {
            Node::True => true,
            Node::False => false,
            Node::And(children) => children.iter().all(|c| c.eval(ctx)),
            Node::Or(children) => children.iter().any(|c| c.eval(ctx)),
            Node::Not(child) => !child.eval(ctx),
            Node::Kind(set) => set.contains(ctx.event.kind),
            Node::Exists(f) => ctx.get(*f).is_some(),
            Node::StrEq { f, v, ne } => text(ctx, *f).is_some_and(|s| (s == &**v) != *ne),
            Node::IntCmp { f, op, v } => int(ctx, *f).is_some_and(|i| cmp_holds(i, *op, *v)),
            Node::FloatCmp { f, op, v } => match ctx.get(*f) {
                Some(ValueRef::Float(x)) => cmp_holds(x, *op, *v),
                Some(ValueRef::Int(i)) => cmp_holds(i as f64, *op, *v),
                _ => false,
            },
            Node::BoolEq { f, v, ne } => {
                matches!(ctx.get(*f), Some(ValueRef::Bool(b)) if (b == *v) != *ne)
            }
            Node::IpEq { f, v, ne } => ip(ctx, *f).is_some_and(|a| (a == *v) != *ne),
            Node::FieldCmp { a, op, b } => match (ctx.get(*a), ctx.get(*b)) {
                (Some(ValueRef::Str(x)), Some(ValueRef::Str(y))) => cmp_holds(x, *op, y),
                (Some(x), Some(y)) => match (as_i64(x), as_i64(y)) {
                    (Some(x), Some(y)) => cmp_holds(x, *op, y),
                    _ => matches!(op, CmpOp::Eq | CmpOp::Ne) && ((x == y) != (*op == CmpOp::Ne)),
                },
                _ => false,
            },
            Node::StrIn { f, set } => text(ctx, *f).is_some_and(|s| set.contains(s)),
            Node::IntIn { f, set } => int(ctx, *f).is_some_and(|i| set.binary_search(&i).is_ok()),
            Node::IpIn { f, set } => ip(ctx, *f).is_some_and(|a| set.contains(&a)),
            Node::Contains { f, finder } => {
                text(ctx, *f).is_some_and(|s| finder.find(s.as_bytes()).is_some())
            }
            Node::StartsWith { f, v } => text(ctx, *f).is_some_and(|s| s.starts_with(&**v)),
            Node::EndsWith { f, v } => text(ctx, *f).is_some_and(|s| s.ends_with(&**v)),
            Node::Glob { f, pat } => text(ctx, *f).is_some_and(|s| pat.matches(s)),
        }
    }

    /// The event kinds for which the condition can hold (a superset).
    pub(crate) fn kinds(&self) -> KindSet {
        match self {
            Node::False => KindSet::NONE,
            Node::Kind(set) => *set,
            Node::And(children) => KindSet(
                children
                    .iter()
                    .fold(KindSet::ALL.0, |acc, c| acc & c.kinds().0),
            ),
            Node::Or(children) => KindSet(children.iter().fold(0, |acc, c| acc | c.kinds().0)),
            Node::Not(child) => match **child {
                Node::Kind(set) => set.complement(),
                Node::True => KindSet::NONE,
                _ => KindSet::ALL,
            },
            _ => KindSet::ALL,
        }
    }
}
