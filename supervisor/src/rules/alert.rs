//! Alerts: what a matching rule produces, and the [`AlertSink`] trait every
//! alert destination (console, Alertmanager, OTLP logs) implements.

use std::{collections::BTreeMap, fmt, str::FromStr, sync::Arc};

use model::ValueRef;
use serde::Serialize;

use super::{Rule, eval::Ctx, fields::FieldRef};

/// How serious a finding is (syslog levels, as Falco uses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Debugging aid.
    Debug,
    /// Informational.
    Info,
    /// Normal but significant.
    Notice,
    /// Warning.
    Warning,
    /// Error.
    Error,
    /// Critical.
    Critical,
    /// Action must be taken immediately.
    Alert,
    /// The system is unusable.
    Emergency,
}

impl Severity {
    /// Every severity, lowest first.
    pub(crate) const ALL: [Severity; 8] = [
        Severity::Debug,
        Severity::Info,
        Severity::Notice,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
        Severity::Alert,
        Severity::Emergency,
    ];

    /// The lowercase name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
            Severity::Alert => "alert",
            Severity::Emergency => "emergency",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    /// Accepts the names (any case) and `informational`, `warn`, `crit`, `emerg`.
    fn from_str(s: &str) -> Result<Self, String> {
        let sev = match s.to_ascii_lowercase().as_str() {
            "debug" => Severity::Debug,
            "info" | "informational" => Severity::Info,
            "notice" => Severity::Notice,
            "warning" | "warn" => Severity::Warning,
            "error" => Severity::Error,
            "critical" | "crit" => Severity::Critical,
            "alert" => Severity::Alert,
            "emergency" | "emerg" => Severity::Emergency,
            _ => {
                let names: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
                return Err(format!(
                    "unknown severity `{s}` (expected one of {})",
                    names.join(", ")
                ));
            }
        };
        Ok(sev)
    }
}

/// One finding: a rule matched an event.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// When the event was received (ns since the Unix epoch).
    pub(crate) ts_ns: u64,
    /// The rule's name.
    pub(crate) rule: Arc<str>,
    /// The rule's description.
    pub(crate) description: Arc<str>,
    /// The rule's severity.
    pub(crate) severity: Severity,
    /// The rendered output template.
    pub(crate) output: String,
    /// The rule's tags.
    pub(crate) tags: Arc<[Box<str>]>,
    /// The event's kind.
    pub(crate) kind: &'static str,
    /// The tool that reported the event.
    pub(crate) tool: Arc<str>,
    /// The event's fields (process members and typed fields), by stable name.
    pub(crate) fields: BTreeMap<&'static str, serde_json::Value>,
    /// The event's enrichment labels (container, pod).
    pub(crate) labels: BTreeMap<String, String>,
    /// Identifies "the same finding" for deduplication (hex in JSON).
    #[serde(serialize_with = "hex")]
    pub(crate) fingerprint: u64,
    /// Duplicates of this finding suppressed since the previous alert of it.
    pub(crate) suppressed: u64,
}

fn hex<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:016x}"))
}

impl Alert {
    /// The alert for `rule` matching the event in `ctx`.
    pub fn new(rule: &Rule, ctx: &Ctx<'_>, fingerprint: u64, suppressed: u64) -> Alert {
        let e = ctx.event;
        let mut fields = BTreeMap::new();
        let procs = [
            ("proc.pid", e.pid),
            ("proc.tid", e.tid),
            ("proc.ppid", e.ppid),
            ("proc.uid", e.uid),
        ];
        for (name, v) in procs {
            if let Some(v) = v {
                fields.insert(name, v.into());
            }
        }
        if let Some(c) = &e.comm {
            fields.insert("proc.comm", c.as_str().into());
        }
        for (name, v) in &e.fields {
            fields.insert(*name, serde_json::to_value(v).unwrap_or_default());
        }
        let mut labels = BTreeMap::new();
        ctx.labels.for_each(&mut |k, v| {
            labels.insert(k.to_owned(), v.to_owned());
        });
        Alert {
            ts_ns: e.ts_ns,
            rule: rule.name.clone(),
            description: Arc::from(rule.description.as_str()),
            severity: rule.severity,
            output: rule.output.render(ctx),
            tags: rule.tags.clone(),
            kind: e.kind.as_str(),
            tool: e.tool.clone(),
            fields,
            labels,
            fingerprint,
            suppressed,
        }
    }
}

/// The fingerprint of `rule` on the event in `ctx`: FNV-1a over the rule
/// name and the values of its dedup fields (stable across runs).
pub(crate) fn fingerprint(rule: &Rule, ctx: &Ctx<'_>) -> u64 {
    let mut h = Fnv::new();
    h.write(rule.name.as_bytes());
    for f in rule.dedup_by.iter() {
        h.write(&[0xff]);
        write_value(&mut h, ctx.get(*f), *f);
    }
    h.0
}

fn write_value(h: &mut Fnv, v: Option<ValueRef<'_>>, _f: FieldRef) {
    match v {
        None => h.write(&[0]),
        Some(ValueRef::Str(s)) => h.write(s.as_bytes()),
        Some(ValueRef::Int(i)) => h.write(&i.to_le_bytes()),
        Some(ValueRef::Duration(d)) => h.write(&d.to_le_bytes()),
        Some(ValueRef::Float(x)) => h.write(&x.to_le_bytes()),
        Some(ValueRef::Bool(b)) => h.write(&[u8::from(b) + 1]),
        Some(ValueRef::Ip(ip)) => h.write(ip.to_string().as_bytes()),
    }
}

/// 64-bit FNV-1a.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A destination for alerts. `send` must not block: a sink that cannot keep
/// up buffers within a bound and counts what it drops.
pub trait AlertSink: Send {
    /// Takes one alert.
    fn send(&mut self, alert: &Arc<Alert>);
}

/// Writes alerts to a writer (stdout in the agent): one JSON object per line,
/// or `SEVERITY rule: output` text.
pub struct ConsoleAlerts<W: std::io::Write + Send> {
    out: W,
    json: bool,
}

impl<W: std::io::Write + Send> ConsoleAlerts<W> {
    /// A console alert writer.
    pub(crate) fn new(out: W, json: bool) -> Self {
        ConsoleAlerts { out, json }
    }

    fn write(&mut self, a: &Alert) -> std::io::Result<()> {
        if self.json {
            let v = crate::schema::alert_object(a, a.ts_ns);
            serde_json::to_writer(&mut self.out, &v)?;
            writeln!(self.out)
        } else {
            let dups = if a.suppressed > 0 {
                format!(" (+{} duplicates)", a.suppressed)
            } else {
                String::new()
            };
            writeln!(
                self.out,
                "ALERT {} [{}] {}{dups}",
                a.severity.as_str().to_uppercase(),
                a.rule,
                a.output
            )
        }
    }
}

impl<W: std::io::Write + Send> AlertSink for ConsoleAlerts<W> {
    fn send(&mut self, alert: &Arc<Alert>) {
        if let Err(e) = self.write(alert) {
            tracing::warn!(error = %e, "cannot write an alert to the console");
        }
    }
}

#[cfg(test)]
mod tests {
    use parsers::{Event, EventKind};

    use super::*;
    use crate::rules::{Lineage, load_str};

    fn alert(labels: &[(&str, &str)]) -> Alert {
        let set = load_str(
            "t.toml",
            "[[rule]]\nname = \"r\"\ndescription = \"A shell ran.\"\ncondition = 'event.kind = exec'\nseverity = \"warning\"\noutput = \"shell in {container}\"\n",
        )
        .unwrap()
        .set;
        let e = Event::new("execsnoop".into(), EventKind::Exec);
        let labels = labels.to_vec();
        let ctx = Ctx {
            event: &e,
            labels: &labels,
            lineage: Lineage::default(),
        };
        Alert::new(&set.rules()[0], &ctx, 1, 0)
    }

    #[test]
    fn alert_text_prefers_the_container_name_to_its_id() {
        let id = "3f4e".repeat(16);
        let a = alert(&[("container.id", &id), ("container.name", "web")]);
        assert_eq!(a.output, "shell in web");
        assert_eq!(&*a.description, "A shell ran.");
        let a = alert(&[("container.id", &id)]);
        assert_eq!(a.output, format!("shell in {}", &id[..12]));
        assert_eq!(alert(&[]).output, "shell in <NA>");
    }
}
