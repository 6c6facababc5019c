//! Printing tool records (`eunomia tools start`, in the foreground or
//! following the agent with `--follow`): one JSON object per line in the one
//! schema ([`crate::schema`]), or a readable table (events), the histogram as
//! the tool drew it, the table block, or the folded stack. Both modes print
//! from the JSON object, so the foreground and the agent's stream look alike.
//! Events enriched with their workload carry its labels (`container.id`,
//! `k8s.pod.name`, ...) in JSON and CONTAINER and POD columns in the table.

use std::io::Write;

use serde_json::{Map, Value};

use super::pa::Record;
use model::Workload;

/// Prints records to a writer.
pub(crate) struct RecordPrinter<W: Write> {
    out: W,
    json: bool,
    /// Event columns (from the first event) and their widths.
    columns: Option<Vec<(String, usize)>>,
    /// Whether events carry workload labels (CONTAINER and POD columns).
    workload: bool,
}

/// Keys of an event's JSON that the table shows elsewhere or not at all.
const HIDDEN: &[&str] = &["type", "record", "ts_ns", "tool", "kind", "tool_time"];

/// A JSON object.
type Object = Map<String, Value>;

impl<W: Write> RecordPrinter<W> {
    /// A printer of JSON lines (`json`) or text.
    pub(crate) fn new(out: W, json: bool) -> Self {
        Self {
            out,
            json,
            columns: None,
            workload: false,
        }
    }

    #[cfg(test)]
    /// Prints one record.
    pub(crate) fn print(&mut self, record: &Record) -> std::io::Result<()> {
        self.print_enriched(record, None)
    }

    /// Prints one record with the workload enrichment found for it (`None`:
    /// not enriched, no workload columns).
    pub(crate) fn print_enriched(
        &mut self,
        record: &Record,
        workload: Option<&Workload>,
    ) -> std::io::Result<()> {
        self.workload |= workload.is_some();
        self.print_object(&crate::schema::record_object(record, workload))
    }

    /// Prints one record given as its JSON object (what `--follow` receives).
    pub(crate) fn print_object(&mut self, obj: &Object) -> std::io::Result<()> {
        if self.json {
            serde_json::to_writer(&mut self.out, obj)?;
            writeln!(self.out)?;
            return self.out.flush();
        }
        match obj.get("type").and_then(Value::as_str) {
            Some("histogram") => self.histogram(obj)?,
            Some("table") => self.table(obj)?,
            Some("stack") => writeln!(
                self.out,
                "{} {}",
                str_of(obj, "stack"),
                text(obj.get("count").unwrap_or(&Value::Null))
            )?,
            _ => self.event(obj)?,
        }
        self.out.flush()
    }

    fn event(&mut self, obj: &Object) -> std::io::Result<()> {
        self.workload |= obj.keys().any(|k| is_workload_label(k));
        let mut fields: Vec<(String, String)> = obj
            .iter()
            .filter(|(k, _)| !is_workload_label(k))
            .filter(|(k, _)| !HIDDEN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), text(v)))
            .collect();
        if self.workload {
            fields.push(("container".into(), container_column(obj)));
            fields.push(("pod".into(), pod_column(obj)));
        }
        fields.sort_by_key(|(k, _)| (column_rank(k), k.clone()));
        if self.columns.is_none() {
            let mut cols = vec![("TIME".to_owned(), 12)];
            cols.extend(fields.iter().map(|(k, v)| {
                let w = match k.as_str() {
                    "proc.comm" | "container" => 16,
                    "pod" => 24,
                    "proc.args" | "file.path" => 0,
                    _ => k.len().max(v.len()).max(6),
                };
                (k.clone(), w)
            }));
            let header: Vec<String> = cols
                .iter()
                .map(|(k, w)| format!("{:<w$}", k.to_uppercase(), w = *w))
                .collect();
            writeln!(self.out, "{}", header.join(" ").trim_end())?;
            self.columns = Some(cols);
        }
        let cols = self.columns.as_ref().expect("set above");
        let time = time_of(obj);
        let mut line = format!("{time:<12}");
        for (k, w) in &cols[1..] {
            let v = fields
                .iter()
                .find(|(f, _)| f == k)
                .map_or("-", |(_, v)| v.as_str());
            line.push(' ');
            line.push_str(&format!("{v:<w$}", w = *w));
        }
        // Fields this event has beyond the first one's columns.
        for (k, v) in &fields {
            if !cols.iter().any(|(c, _)| c == k) {
                line.push_str(&format!(" {k}={v}"));
            }
        }
        writeln!(self.out, "{}", line.trim_end())
    }

    fn histogram(&mut self, h: &Object) -> std::io::Result<()> {
        let unit = text(h.get("unit").unwrap_or(&Value::Null));
        let time = time_of(h);
        let tool = str_of(h, "tool");
        match h.get("label").and_then(Value::as_object) {
            Some(l) => writeln!(
                self.out,
                "[{time}] {tool}: {} {}{}",
                str_of(l, "key"),
                str_of(l, "value"),
                l.get("comm")
                    .map_or(String::new(), |c| format!(" ({})", text(c)))
            )?,
            None => writeln!(self.out, "[{time}] {tool}")?,
        }
        let buckets: Vec<[u64; 3]> = h
            .get("buckets")
            .and_then(Value::as_array)
            .map(|b| {
                b.iter()
                    .map(|b| ["low", "high", "count"].map(|k| b[k].as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        let max = buckets.iter().map(|b| b[2]).max().unwrap_or(0).max(1);
        writeln!(self.out, "{:>24} : {:<10} distribution", unit, "count")?;
        for [low, high, count] in buckets {
            let stars = (count * 40).div_ceil(max) as usize;
            writeln!(
                self.out,
                "{low:>10} -> {high:<10} : {count:<10} |{:<40}|",
                "*".repeat(stars)
            )?;
        }
        writeln!(self.out)
    }

    fn table(&mut self, t: &Object) -> std::io::Result<()> {
        writeln!(self.out, "[{}] {}", time_of(t), str_of(t, "tool"))?;
        let columns: Vec<String> = t
            .get("columns")
            .and_then(Value::as_array)
            .map(|c| c.iter().map(text).collect())
            .unwrap_or_default();
        let cells: Vec<Vec<String>> = t
            .get("rows")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        r.as_array()
                            .map_or(vec![], |r| r.iter().map(text).collect())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(String::len)
                    .chain([c.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let row = |vals: &[String]| -> String {
            vals.iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        writeln!(self.out, "{}", row(&columns))?;
        for r in &cells {
            writeln!(self.out, "{}", row(r))?;
        }
        writeln!(self.out)
    }
}

/// The string at `key` (empty when absent).
fn str_of(obj: &Object, key: &str) -> String {
    obj.get(key).map(text).unwrap_or_default()
}

/// The time the tool printed, else the receive time as a clock.
fn time_of(obj: &Object) -> String {
    match obj.get("tool_time") {
        Some(t) => text(t),
        None => clock(obj.get("ts_ns").and_then(Value::as_u64).unwrap_or(0)),
    }
}

/// Process columns first, long free text (arguments, paths) last.
fn column_rank(key: &str) -> u8 {
    match key {
        "proc.pid" => 0,
        "proc.tid" => 1,
        "proc.ppid" => 2,
        "proc.uid" => 3,
        "proc.comm" => 4,
        "container" => 5,
        "pod" => 6,
        "proc.args" | "file.path" | "text" => 9,
        _ => 7,
    }
}

/// Whether `key` is a workload label (shown as CONTAINER and POD; the cgroup
/// only in JSON).
fn is_workload_label(key: &str) -> bool {
    key.starts_with("container.")
        || key.starts_with("cgroup.")
        || key.starts_with("k8s.")
        || key == "containerd.namespace"
        || key == "service"
}

/// The CONTAINER column: its name, else its id (12 digits, as `docker ps`
/// shows it), else `-`.
fn container_column(obj: &Object) -> String {
    match (str_of(obj, "container.name"), str_of(obj, "container.id")) {
        (name, _) if !name.is_empty() => name.to_owned(),
        (_, id) if !id.is_empty() => id.chars().take(12).collect(),
        _ => "-".into(),
    }
}

/// The POD column: `namespace/name`, else the uid, else `-`.
fn pod_column(obj: &Object) -> String {
    let (ns, name) = (
        str_of(obj, "k8s.namespace.name"),
        str_of(obj, "k8s.pod.name"),
    );
    match str_of(obj, "k8s.pod.uid") {
        _ if !ns.is_empty() && !name.is_empty() => format!("{ns}/{name}"),
        uid if !uid.is_empty() => uid.to_owned(),
        _ => "-".into(),
    }
}

/// A JSON value as table text: strings without quotes.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `HH:MM:SS.mmm` (UTC) of a receive time in ns since the epoch.
fn clock(ts_ns: u64) -> String {
    let ms = ts_ns / 1_000_000;
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::pa;

    fn records(tool: &str, text: &str) -> Vec<Record> {
        let mut p = pa::builtin(tool).unwrap();
        pa::parse_all(p.as_mut(), text.as_bytes()).0
    }

    #[test]
    fn events_print_as_a_table_and_as_json_lines() {
        let recs = records(
            "execsnoop",
            "TIME     UID    PCOMM            PID    PPID   RET ARGS\n\
             16:37:47 0     true             5907   5733     0 /bin/true x\n",
        );
        assert_eq!(recs.len(), 1);
        let mut out = Vec::new();
        let mut p = RecordPrinter::new(&mut out, false);
        p.print(&recs[0]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("TIME"), "{text}");
        assert!(header.contains("PROC.PID"), "{text}");
        let row = lines.next().unwrap();
        assert!(row.starts_with("16:37:47"), "{text}");
        assert!(
            row.contains("5907") && row.contains("/bin/true x"),
            "{text}"
        );

        let mut out = Vec::new();
        RecordPrinter::new(&mut out, true).print(&recs[0]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["proc.pid"], 5907);
        assert_eq!(v["tool"], "execsnoop");
        assert_eq!(v["type"], "event");
    }

    /// What `--follow` prints from the agent's JSON is what the foreground
    /// prints from the record, for every kind of record.
    #[test]
    fn the_json_object_prints_like_the_record() {
        let hist = records(
            "biolatency",
            include_str!("../../../parsers/fixtures/biolatency/canonical.txt"),
        );
        let table = records(
            "syscount",
            include_str!("../../../parsers/fixtures/syscount/canonical.txt"),
        );
        let all: Vec<Record> = hist.into_iter().chain(table).collect();
        assert!(all.iter().any(|r| r.as_histogram().is_some()), "{all:?}");
        assert!(all.iter().any(|r| r.as_table().is_some()), "{all:?}");
        for r in &all {
            let mut direct = Vec::new();
            RecordPrinter::new(&mut direct, false).print(r).unwrap();
            let line = serde_json::to_string(&crate::schema::record_object(r, None)).unwrap();
            let obj: Object = serde_json::from_str(&line).unwrap();
            let mut followed = Vec::new();
            RecordPrinter::new(&mut followed, false)
                .print_object(&obj)
                .unwrap();
            let direct = String::from_utf8(direct).unwrap();
            assert_eq!(direct, String::from_utf8(followed).unwrap());
            match r {
                Record::Histogram(_) => {
                    assert!(
                        direct.contains("usecs") && direct.contains("|****"),
                        "{direct}"
                    )
                }
                Record::Table(_) => {
                    assert!(
                        direct.contains("syscall") && direct.contains("rt_sigaction"),
                        "{direct}"
                    )
                }
                _ => {}
            }
        }
    }
}
