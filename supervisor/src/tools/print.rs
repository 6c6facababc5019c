//! Printing parsed records in the foreground (`eunomia tools start`): one
//! JSON object per line, or a readable table (events), the histogram as the
//! tool drew it, the table block, or the folded stack. Events enriched with
//! their workload carry its labels (`container.id`, `k8s.pod.name`, ...) in
//! JSON and CONTAINER and POD columns in the table.

use std::io::Write;

use super::pa::{self, Record};
use crate::enrich::Workload;

/// Prints records to a writer.
pub struct RecordPrinter<W: Write> {
    out: W,
    json: bool,
    /// Event columns (from the first event) and their widths.
    columns: Option<Vec<(String, usize)>>,
}

/// Keys of an event's JSON that the table shows elsewhere or not at all.
const HIDDEN: &[&str] = &["record", "ts_ns", "tool", "kind", "tool_time"];

impl<W: Write> RecordPrinter<W> {
    /// A printer of JSON lines (`json`) or text.
    pub fn new(out: W, json: bool) -> Self {
        Self {
            out,
            json,
            columns: None,
        }
    }

    /// Prints one record.
    pub fn print(&mut self, record: &Record) -> std::io::Result<()> {
        self.print_enriched(record, None)
    }

    /// Prints one record with the workload enrichment found for it (`None`:
    /// not enriched, no workload columns).
    pub fn print_enriched(
        &mut self,
        record: &Record,
        workload: Option<&Workload>,
    ) -> std::io::Result<()> {
        if self.json {
            match workload {
                None => serde_json::to_writer(&mut self.out, record)?,
                Some(w) => {
                    let mut value = serde_json::to_value(record)?;
                    if let Some(obj) = value.as_object_mut() {
                        for (k, v) in w.labels() {
                            obj.insert(k.to_owned(), v.into());
                        }
                    }
                    serde_json::to_writer(&mut self.out, &value)?;
                }
            }
            writeln!(self.out)?;
            return self.out.flush();
        }
        match record {
            Record::Event(e) => self.event(record, e, workload)?,
            Record::Histogram(h) => self.histogram(h)?,
            Record::Table(t) => self.table(t)?,
            Record::Stack(s) => writeln!(self.out, "{}", s.to_folded_line())?,
        }
        self.out.flush()
    }

    fn event(
        &mut self,
        record: &Record,
        e: &pa::Event,
        workload: Option<&Workload>,
    ) -> std::io::Result<()> {
        let value = serde_json::to_value(record).unwrap_or_default();
        let map = value.as_object().cloned().unwrap_or_default();
        let mut fields: Vec<(String, String)> = map
            .into_iter()
            .filter(|(k, _)| !HIDDEN.contains(&k.as_str()))
            .map(|(k, v)| (k, text(&v)))
            .collect();
        if let Some(w) = workload {
            fields.push(("container".into(), container_column(w)));
            fields.push(("pod".into(), pod_column(w)));
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
        let time = match &e.tool_time {
            Some(t) => t.to_string(),
            None => clock(e.ts_ns),
        };
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

    fn histogram(&mut self, h: &pa::HistogramSnapshot) -> std::io::Result<()> {
        let unit = serde_json::to_value(&h.unit)
            .ok()
            .map(|v| text(&v))
            .unwrap_or_default();
        let time = h
            .tool_time
            .map_or_else(|| clock(h.ts_ns), |t| t.to_string());
        match &h.label {
            Some(l) => writeln!(
                self.out,
                "[{time}] {}: {} {}{}",
                h.tool,
                l.key,
                l.value,
                l.comm.as_ref().map_or(String::new(), |c| format!(" ({c})"))
            )?,
            None => writeln!(self.out, "[{time}] {}", h.tool)?,
        }
        let max = h.buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
        writeln!(self.out, "{:>24} : {:<10} distribution", unit, "count")?;
        for b in &h.buckets {
            let stars = (b.count * 40).div_ceil(max) as usize;
            writeln!(
                self.out,
                "{:>10} -> {:<10} : {:<10} |{:<40}|",
                b.low,
                b.high,
                b.count,
                "*".repeat(stars)
            )?;
        }
        writeln!(self.out)
    }

    fn table(&mut self, t: &pa::TableSnapshot) -> std::io::Result<()> {
        let time = t
            .tool_time
            .map_or_else(|| clock(t.ts_ns), |tt| tt.to_string());
        writeln!(self.out, "[{time}] {}", t.tool)?;
        let cells: Vec<Vec<String>> = t
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| text(&serde_json::to_value(v).unwrap_or_default()))
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = t
            .columns
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
        let row = |vals: Vec<&str>| -> String {
            vals.iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        writeln!(
            self.out,
            "{}",
            row(t.columns.iter().map(|c| &**c).collect())
        )?;
        for r in &cells {
            writeln!(self.out, "{}", row(r.iter().map(String::as_str).collect()))?;
        }
        writeln!(self.out)
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

/// The CONTAINER column: its name, else its id (12 digits, as `docker ps`
/// shows it), else `-` (a host process).
fn container_column(w: &Workload) -> String {
    match &w.container {
        Some(c) => match &c.name {
            Some(name) => name.clone(),
            None => c.id.chars().take(12).collect(),
        },
        None => "-".into(),
    }
}

/// The POD column: `namespace/name`, else the uid, else `-`.
fn pod_column(w: &Workload) -> String {
    match &w.pod {
        Some(p) => match (&p.namespace, &p.name) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            _ => p.uid.clone(),
        },
        None => "-".into(),
    }
}

/// A JSON value as table text: strings without quotes.
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
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
    }
}
