//! The one JSON schema of everything eunomia prints or writes as JSON lines
//! (`run --json`, `tools start --json`, `tools start --follow --json`, the
//! JSON-lines sink, console alerts):
//!
//! - every object has a `type` key: `event`, `histogram`, `table`, `stack`
//!   (tool records), `metric` (a metric point), `alert` (a rule matched),
//!   `summary` (an interval summary of `run`), `samples` (`run --samples`);
//! - every object has `ts_ns`, nanoseconds since the Unix epoch;
//! - tool records carry `tool`, events `kind` and their fields under the
//!   names rules use (`proc.pid`, `file.path`, ...), then the workload
//!   labels (`cgroup.id`, `container.id`, `k8s.pod.name`, ...) when known.
//!
//! Strings are carried as JSON strings (escaped by the serializer).

use serde_json::{Map, Value};

use model::{ToolRecord, Workload};

/// The key naming what an object is.
pub(crate) const TYPE: &str = "type";

/// The key of the time, in ns since the Unix epoch.
pub(crate) const TS_NS: &str = "ts_ns";

/// The `type` of a tool record: `event`, `histogram`, `table` or `stack`.
pub(crate) fn record_type(record: &parsers::Record) -> &'static str {
    match record {
        parsers::Record::Event(_) => "event",
        parsers::Record::Histogram(_) => "histogram",
        parsers::Record::Table(_) => "table",
        parsers::Record::Stack(_) => "stack",
    }
}

/// A tool record as one JSON object: `type`, the record's own fields, then
/// the workload's labels when it was enriched.
pub(crate) fn record_object(
    record: &parsers::Record,
    workload: Option<&Workload>,
) -> Map<String, Value> {
    let mut obj = match serde_json::to_value(record) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    // The parsers tag their records with `record`; the schema's key is `type`.
    obj.remove("record");
    obj.insert(TYPE.into(), record_type(record).into());
    if let Some(w) = workload {
        add_workload(&mut obj, w);
    }
    obj
}

/// [`record_object`] of a pipeline record.
pub(crate) fn tool_record_object(r: &ToolRecord) -> Map<String, Value> {
    record_object(&r.record, r.workload.as_deref())
}

/// Adds the workload's cgroup and its labels (OpenTelemetry keys).
fn add_workload(obj: &mut Map<String, Value>, w: &Workload) {
    if let Some(id) = w.cgroup_id {
        obj.insert("cgroup.id".into(), id.into());
    }
    if let Some(path) = &w.cgroup_path {
        obj.insert("cgroup.path".into(), path.to_string().into());
    }
    for (k, v) in w.labels() {
        obj.insert(k.into(), v.into());
    }
}

/// `obj` with `type` set to `kind` and `ts_ns` to `ts_ns` (when not set).
pub(crate) fn tagged(mut obj: Value, kind: &str, ts_ns: u64) -> Value {
    if let Value::Object(map) = &mut obj {
        map.insert(TYPE.into(), kind.into());
        map.entry(TS_NS).or_insert(ts_ns.into());
    }
    obj
}

/// An alert as one JSON object: `type` `alert`, `ts_ns`, the rule's
/// `rule`, `severity`, `output`, `tags`, `fingerprint`, `suppressed`, and
/// the event's `tool`, `kind`, fields and labels flat, under the same names
/// as in the event's own object.
pub(crate) fn alert_object(a: &impl serde::Serialize, ts_ns: u64) -> Value {
    let Ok(Value::Object(mut obj)) = serde_json::to_value(a) else {
        return Value::Null;
    };
    for nested in ["fields", "labels"] {
        if let Some(Value::Object(inner)) = obj.remove(nested) {
            for (k, v) in inner {
                obj.entry(k).or_insert(v);
            }
        }
    }
    tagged(Value::Object(obj), "alert", ts_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_tagged_with_type_not_record() {
        let mut e = parsers::Event::new("execsnoop".into(), parsers::EventKind::Exec);
        e.pid = Some(7);
        let w = Workload::unknown(Some(42));
        let obj = record_object(&parsers::Record::Event(e), Some(&w));
        assert_eq!(obj["type"], "event");
        assert!(!obj.contains_key("record"));
        assert_eq!(obj["proc.pid"], 7);
        assert_eq!(obj["cgroup.id"], 42);
        assert!(obj.contains_key("ts_ns"));
    }

    #[test]
    fn tagged_keeps_an_existing_time() {
        let v = tagged(serde_json::json!({"ts_ns": 5}), "alert", 9);
        assert_eq!(v["type"], "alert");
        assert_eq!(v["ts_ns"], 5);
        let v = tagged(serde_json::json!({}), "summary", 9);
        assert_eq!(v["ts_ns"], 9);
    }
}
