//! The fields a condition or output template may name, their types, and
//! where each is read from: the event's own members, its typed fields
//! ([`parsers::fields`]), the enrichment labels (container, pod) or the
//! rules engine's own process table (`parent.*`, `proc.prev_uid`,
//! `target.uid`, and `proc.uid` for tools that do not print it).
//!
//! Names resolve to a [`FieldRef`] once, when rules compile; evaluation never
//! looks a name up in a map.

use parsers::{EventKind, fields as pf};

/// The type of a field, which decides what literals and operators fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// Text.
    Str,
    /// Integer.
    Int,
    /// Floating point.
    Float,
    /// true/false.
    Bool,
    /// IPv4 or IPv6 address.
    Ip,
    /// Duration (nanoseconds; literals like `10ms`).
    Duration,
    /// The event kind (`exec`, `open`, ...).
    Kind,
}

impl Ty {
    /// The name used in error messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Ty::Str => "text",
            Ty::Int => "an integer",
            Ty::Float => "a number",
            Ty::Bool => "a boolean",
            Ty::Ip => "an IP address",
            Ty::Duration => "a duration",
            Ty::Kind => "an event kind",
        }
    }

    /// Whether `<`, `<=`, `>`, `>=` apply.
    pub(crate) fn is_ordered(self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Duration)
    }
}

/// Where a field's value comes from, resolved at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldRef {
    /// `event.kind`.
    Kind,
    /// `event.tool`: the tool's manifest name.
    Tool,
    /// `proc.pid`.
    Pid,
    /// `proc.tid`.
    Tid,
    /// `proc.ppid`.
    Ppid,
    /// `proc.uid`.
    Uid,
    /// `proc.comm`.
    Comm,
    /// A typed field of [`parsers::Event::fields`], by its interned name.
    Event(&'static str),
    /// An enrichment label (container, pod), by name.
    Label(&'static str),
    /// `parent.uid`: the uid the parent process had at its last exec.
    ParentUid,
    /// `parent.comm`: the parent's name at its last exec.
    ParentComm,
    /// `proc.prev_uid`: the uid this pid had at its previous exec.
    PrevUid,
    /// `target.uid`: the uid the target of a signal had at its last exec.
    TargetUid,
    /// `file.writable`: `file.flags` asks for write access (`O_WRONLY`,
    /// `O_RDWR`, `O_CREAT` or `O_TRUNC`).
    FileWritable,
    /// `container`: the container's name, or its id shortened to 12 hex
    /// digits when it has no name (for alert text).
    Container,
}

/// Enrichment labels a rule may name: the model's label keys
/// ([`model::labels::ALL`]).
pub(crate) const LABELS: &[&str] = model::labels::ALL;

/// Every event kind, in declaration order (the index used by rule dispatch).
pub(crate) const KINDS: &[EventKind] = &[
    EventKind::Exec,
    EventKind::Exit,
    EventKind::Open,
    EventKind::Stat,
    EventKind::Signal,
    EventKind::Kill,
    EventKind::Mount,
    EventKind::TcpState,
    EventKind::TcpSession,
    EventKind::DnsLookup,
    EventKind::BlockIo,
    EventKind::RunqLatency,
    EventKind::DirectReclaim,
    EventKind::Generic,
    EventKind::HttpServer,
    EventKind::HttpClient,
    EventKind::Log,
];

/// The position of `kind` in [`KINDS`].
pub(crate) fn kind_index(kind: EventKind) -> usize {
    kind as usize
}

/// The kind named `name` (`exec`, `tcp_state`, ...).
pub(crate) fn kind_by_name(name: &str) -> Option<EventKind> {
    KINDS.iter().copied().find(|k| k.as_str() == name)
}

/// The type of a typed event field of [`parsers::fields`].
fn event_field_type(name: &str) -> Option<Ty> {
    let ty = match name {
        pf::PROC_ARGS
        | pf::ERROR_NAME
        | pf::FILE_PATH
        | pf::SIGNAL_NAME
        | pf::MOUNT_OP
        | pf::MOUNT_SOURCE
        | pf::MOUNT_TARGET
        | pf::MOUNT_FS
        | pf::MOUNT_FLAGS
        | pf::MOUNT_DATA
        | pf::NET_OLD_STATE
        | pf::NET_NEW_STATE
        | pf::NET_SKADDR
        | pf::DNS_HOST
        | pf::PREV_COMM
        | pf::HTTP_METHOD
        | pf::URL_PATH
        | pf::HTTP_ROUTE
        | pf::HTTP_STATUS_CLASS
        | pf::TRACE_PARENT_ID
        | pf::LOG_BODY
        | pf::LOG_LEVEL
        | pf::LOG_PATTERN
        | pf::LOG_STREAM
        | pf::TRACE_ID
        | pf::SPAN_ID => Ty::Str,
        pf::PROC_EXIT_CODE
        | pf::PROC_VPID
        | pf::RET
        | pf::ERROR
        | pf::FILE_FLAGS
        | pf::SIGNAL_NUM
        | pf::TARGET_PID
        | pf::MOUNT_NS
        | pf::NET_SPORT
        | pf::NET_DPORT
        | pf::NET_TX_BYTES
        | pf::NET_RX_BYTES
        | pf::NET_IP_VERSION
        | pf::PREV_TID
        | pf::MEM_RECLAIMED_PAGES
        | pf::MEM_FREE_KB
        | pf::HTTP_STATUS
        | pf::HTTP_REQUEST_SIZE
        | pf::HTTP_RESPONSE_SIZE
        | pf::SERVER_PORT
        | pf::CLIENT_PORT => Ty::Int,
        pf::PROC_AGE | pf::LATENCY | pf::DURATION => Ty::Duration,
        pf::PROC_CORE_DUMPED => Ty::Bool,
        pf::NET_SADDR | pf::NET_DADDR | pf::SERVER_ADDRESS | pf::CLIENT_ADDRESS => Ty::Ip,
        _ => return None,
    };
    Some(ty)
}

/// Fields declared by tools added through a manifest (the columns of their
/// generic formats), by name, with their types.
static DECLARED: std::sync::RwLock<std::collections::BTreeMap<&'static str, Ty>> =
    std::sync::RwLock::new(std::collections::BTreeMap::new());

/// Makes `name` a field rules can use, of type `ty`: a column of a tool
/// added through a manifest. A standard name keeps its standard type.
pub(crate) fn declare(name: &str, ty: Ty) {
    if event_field_type(name).is_some() || DERIVED.contains(&name) {
        return;
    }
    let mut d = crate::sync::write(&DECLARED);
    d.insert(pf::intern(name), ty);
}

/// The type of a field a manifest declared.
fn declared(name: &str) -> Option<(&'static str, Ty)> {
    let d = crate::sync::read(&DECLARED);
    d.get_key_value(name).map(|(k, t)| (*k, *t))
}

/// Resolves a field name to where it is read from and its type.
pub(crate) fn resolve(name: &str) -> Option<(FieldRef, Ty)> {
    let r = match name {
        "event.kind" => (FieldRef::Kind, Ty::Kind),
        "event.tool" => (FieldRef::Tool, Ty::Str),
        pf::PROC_PID => (FieldRef::Pid, Ty::Int),
        pf::PROC_TID => (FieldRef::Tid, Ty::Int),
        pf::PROC_PPID => (FieldRef::Ppid, Ty::Int),
        pf::PROC_UID => (FieldRef::Uid, Ty::Int),
        pf::PROC_COMM => (FieldRef::Comm, Ty::Str),
        "parent.uid" => (FieldRef::ParentUid, Ty::Int),
        "parent.comm" => (FieldRef::ParentComm, Ty::Str),
        "proc.prev_uid" => (FieldRef::PrevUid, Ty::Int),
        "target.uid" => (FieldRef::TargetUid, Ty::Int),
        "file.writable" => (FieldRef::FileWritable, Ty::Bool),
        "container" => (FieldRef::Container, Ty::Str),
        _ => {
            if let Some(ty) = event_field_type(name) {
                (FieldRef::Event(pf::intern(name)), ty)
            } else if let Some(label) = LABELS.iter().find(|l| **l == name) {
                (FieldRef::Label(label), Ty::Str)
            } else if let Some((name, ty)) = declared(name) {
                (FieldRef::Event(name), ty)
            } else {
                return None;
            }
        }
    };
    Some(r)
}

/// Fields the rules engine derives (not in the event model).
pub(crate) const DERIVED: [&str; 8] = [
    "event.kind",
    "event.tool",
    "parent.uid",
    "parent.comm",
    "proc.prev_uid",
    "target.uid",
    "file.writable",
    "container",
];

/// Every name [`resolve`] accepts, for "did you mean" suggestions and docs.
pub(crate) fn all_names() -> impl Iterator<Item = &'static str> {
    DERIVED
        .into_iter()
        .chain(pf::ALL.iter().copied())
        .chain(LABELS.iter().copied())
}

/// The known name closest to `name` (edit distance ≤ 3), if any.
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    all_names()
        .map(|n| (strsim::levenshtein(name, n), n))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// The rules type of a generic tool's column type (the manifest's
/// `type`); `None` for columns that are not event fields (times, skipped).
fn column_type(ty: &str) -> Option<Ty> {
    Some(match ty {
        "str" | "rest" => Ty::Str,
        "int" | "hex" => Ty::Int,
        "float" => Ty::Float,
        "ip" => Ty::Ip,
        d if d.starts_with("duration_") => Ty::Duration,
        _ => return None,
    })
}

/// Declares the event columns of generic tools (name, manifest type) as
/// fields rules can use (`ticker.n > 3`), before the rules are compiled.
pub(crate) fn declare_columns<'a>(columns: impl IntoIterator<Item = (&'a str, &'a str)>) {
    for (name, ty) in columns {
        if let Some(ty) = column_type(ty) {
            declare(name, ty);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_field_has_a_type() {
        for name in pf::ALL {
            assert!(resolve(name).is_some(), "{name} has no type for rules");
        }
    }

    #[test]
    fn kinds_are_indexed_in_order() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(kind_index(*k), i);
            assert_eq!(kind_by_name(k.as_str()), Some(*k));
        }
    }

    #[test]
    fn resolves_members_fields_and_labels() {
        assert_eq!(resolve("proc.pid"), Some((FieldRef::Pid, Ty::Int)));
        assert_eq!(
            resolve("net.dport"),
            Some((FieldRef::Event(pf::NET_DPORT), Ty::Int))
        );
        assert_eq!(
            resolve("container.id"),
            Some((FieldRef::Label("container.id"), Ty::Str))
        );
        assert_eq!(resolve("proc.bogus"), None);
        assert_eq!(suggest("proc.comn"), Some("proc.comm"));
        assert_eq!(suggest("zzzzzzzzzz"), None);
    }
}
