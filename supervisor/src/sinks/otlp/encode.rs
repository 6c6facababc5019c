//! Snapshots and events to OTLP protobuf messages (`opentelemetry-proto`'s
//! generated types): metrics with cumulative temporality, events as log
//! records whose attributes are the event's fields. Attribute keys follow
//! the OpenTelemetry semantic conventions ([`semconv_key`]: `proc.pid` is
//! `process.pid`, `proc.comm` is `process.executable.name`, ...); the
//! Prometheus sinks keep the documented model names (`proc_comm`).

use opentelemetry_proto::tonic::{
    collector::{logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest},
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber},
    metrics::v1::{
        AggregationTemporality, Gauge, Histogram as OtlpHistogram, HistogramDataPoint, Metric,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point,
    },
    resource::v1::Resource,
};

use model::{EventView, ValueRef};

use crate::aggregate::{Histogram, MetricKind, MetricSnapshot, Point, PointValue, Snapshot};

/// The instrumentation scope name of everything eunomia exports.
pub(crate) const SCOPE: &str = "eunomia";

/// A string attribute.
pub(crate) fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// The semantic-conventions key of a model field or label (itself when the
/// model name already is one, as `container.id` and `k8s.pod.name` are).
pub(crate) fn semconv_key(name: &str) -> &str {
    match name {
        "proc.pid" => "process.pid",
        "proc.ppid" => "process.parent_pid",
        "proc.tid" => "thread.id",
        "proc.uid" => "process.user.id",
        "proc.comm" => "process.executable.name",
        "proc.args" => "process.command_line",
        "proc.exit_code" => "process.exit.code",
        "log.stream" => "log.iostream",
        other => other,
    }
}

/// The instrumentation scope of every request.
pub(super) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

/// The export request for one snapshot.
pub fn metrics_request(snap: &Snapshot, resource: &Resource) -> ExportMetricsServiceRequest {
    let metrics = snap
        .metrics
        .iter()
        .map(|m| metric(m, snap.time_ns))
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metric(m: &MetricSnapshot, time_ns: u64) -> Metric {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let data = match m.kind {
        MetricKind::Sum | MetricKind::Count => Data::Sum(Sum {
            data_points: m.points.iter().map(|p| number_point(p, time_ns)).collect(),
            aggregation_temporality: cumulative,
            is_monotonic: true,
        }),
        MetricKind::LastValue => Data::Gauge(Gauge {
            data_points: m.points.iter().map(|p| number_point(p, time_ns)).collect(),
        }),
        MetricKind::Histogram => Data::Histogram(OtlpHistogram {
            data_points: m
                .points
                .iter()
                .filter_map(|p| histogram_point(p, time_ns))
                .collect(),
            aggregation_temporality: cumulative,
        }),
    };
    Metric {
        name: m.name.into(),
        description: m.help.into(),
        unit: m.unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn attributes(p: &Point) -> Vec<KeyValue> {
    p.labels
        .iter()
        .map(|(k, v)| kv(semconv_key(k), &**v))
        .collect()
}

fn number_point(p: &Point, time_ns: u64) -> NumberDataPoint {
    let v = match &p.value {
        PointValue::Number(x) => *x,
        PointValue::Histogram(h) => h.count() as f64,
    };
    NumberDataPoint {
        attributes: attributes(p),
        start_time_unix_nano: p.start_ns,
        time_unix_nano: time_ns,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn histogram_point(p: &Point, time_ns: u64) -> Option<HistogramDataPoint> {
    let PointValue::Histogram(h) = &p.value else {
        return None;
    };
    Some(HistogramDataPoint {
        attributes: attributes(p),
        start_time_unix_nano: p.start_ns,
        time_unix_nano: time_ns,
        count: h.count(),
        sum: exact_sum(h),
        bucket_counts: h.counts().to_vec(),
        explicit_bounds: h.bounds().to_vec(),
        ..Default::default()
    })
}

/// OTLP's sum is optional: sent only when exact.
fn exact_sum(h: &Histogram) -> Option<f64> {
    h.sum_exact().then_some(h.sum())
}

/// One event as a log record: body and `event_name` are the kind, the
/// attributes are `tool`, `kind` and every field. A container's log line
/// (kind `log`) is the record it is: its body, its severity, its trace and
/// span ids ([`container_log_record`]).
///
/// The sink sends [`super::logs_wire`]'s bytes, not this message: this is
/// the reference those bytes are tested against (field for field, in
/// `logs_wire_tests.rs`) and the pipeline bench's baseline, so a change to
/// the mapping is made in both and the test holds them together.
pub fn log_record(ev: &dyn EventView, observed_ns: u64) -> LogRecord {
    if ev.kind() == "log" {
        return container_log_record(ev, observed_ns);
    }
    let mut attributes = vec![kv("tool", ev.tool()), kv("kind", ev.kind())];
    ev.for_each_field(&mut |name, value| {
        attributes.push(KeyValue {
            key: semconv_key(name).to_owned(),
            value: Some(any_value(value)),
            ..Default::default()
        });
    });
    LogRecord {
        time_unix_nano: ev.ts_ns(),
        observed_time_unix_nano: observed_ns,
        severity_number: SeverityNumber::Info as i32,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(ev.kind().to_owned())),
        }),
        attributes,
        event_name: format!("eunomia.{}", ev.kind()),
        ..Default::default()
    }
}

/// A container's log line: body `log.body`, severity from `log.level`,
/// `trace_id`/`span_id` as the record's ids; the other fields (stream,
/// pattern, workload labels) as attributes.
fn container_log_record(ev: &dyn EventView, observed_ns: u64) -> LogRecord {
    let text = |name| match ev.get(name) {
        Some(ValueRef::Str(s)) => s,
        _ => "",
    };
    let level = text(parsers::fields::LOG_LEVEL);
    let severity = parsers::logs::Level::from_word(level).unwrap_or(parsers::logs::Level::Unknown);
    let mut attributes = Vec::new();
    ev.for_each_field(&mut |name, value| {
        if !matches!(name, "log.body" | "log.level" | "trace_id" | "span_id") {
            attributes.push(KeyValue {
                key: semconv_key(name).to_owned(),
                value: Some(any_value(value)),
                ..Default::default()
            });
        }
    });
    LogRecord {
        time_unix_nano: ev.ts_ns(),
        observed_time_unix_nano: observed_ns,
        severity_number: severity.otel_number(),
        severity_text: match severity {
            parsers::logs::Level::Unknown => String::new(),
            known => known.as_str().to_ascii_uppercase(),
        },
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(
                text(parsers::fields::LOG_BODY).to_owned(),
            )),
        }),
        attributes,
        trace_id: hex_bytes(text(parsers::fields::TRACE_ID)),
        span_id: hex_bytes(text(parsers::fields::SPAN_ID)),
        ..Default::default()
    }
}

/// Hex digits to bytes; empty when they are not hex.
fn hex_bytes(hex: &str) -> Vec<u8> {
    // Digits only: `from_str_radix` alone would take a sign (`+a`).
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Vec::new();
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_default()
}

fn any_value(v: ValueRef<'_>) -> AnyValue {
    use any_value::Value as V;
    let value = match v {
        ValueRef::Str(s) => V::StringValue(s.to_owned()),
        ValueRef::Int(i) => V::IntValue(i),
        ValueRef::Float(f) => V::DoubleValue(f),
        ValueRef::Bool(b) => V::BoolValue(b),
        ValueRef::Ip(ip) => V::StringValue(ip.to_string()),
        ValueRef::Duration(ns) => V::IntValue(ns.min(i64::MAX as u64) as i64),
    };
    AnyValue { value: Some(value) }
}

/// The export request for a batch of log records.
pub fn logs_request(records: Vec<LogRecord>, resource: &Resource) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource.clone()),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Number of data points in a metrics request.
pub(crate) fn metric_points(req: &ExportMetricsServiceRequest) -> u64 {
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            _ => 0,
        } as u64)
        .sum()
}

/// Number of log records in a logs request.
pub(crate) fn log_records(req: &ExportLogsServiceRequest) -> u64 {
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len() as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggregateConfig, Aggregator};
    use crate::testing::{OwnedEvent, OwnedValue};

    fn exec() -> OwnedEvent {
        OwnedEvent {
            tool: "execsnoop".into(),
            kind: "exec".into(),
            ts_ns: 42,
            fields: vec![
                ("proc.comm".into(), OwnedValue::Str("sh".into())),
                ("proc.pid".into(), OwnedValue::Int(7)),
            ],
        }
    }

    #[test]
    fn counts_become_cumulative_monotonic_sums() {
        let mut a = Aggregator::new(&AggregateConfig::default(), vec![]);
        a.ingest_event(&exec());
        let req = metrics_request(&a.collect(), &Resource::default());
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        let m = metrics
            .iter()
            .find(|m| m.name == "eunomia_process_execs_total")
            .unwrap();
        let Some(Data::Sum(s)) = &m.data else {
            panic!("not a sum: {m:?}")
        };
        assert!(s.is_monotonic);
        assert_eq!(
            s.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        assert_eq!(
            s.data_points[0].value,
            Some(number_data_point::Value::AsDouble(1.0))
        );
        assert!(metric_points(&req) >= 2);
        let attrs = &s.data_points[0].attributes;
        assert!(
            attrs.iter().any(|a| a.key == "process.executable.name"),
            "{attrs:?}"
        );
    }

    #[test]
    fn events_become_log_records_with_typed_attributes() {
        let r = log_record(&exec(), 50);
        assert_eq!(r.time_unix_nano, 42);
        assert_eq!(r.event_name, "eunomia.exec");
        // Semantic-conventions keys, not the model's.
        assert!(
            r.attributes
                .iter()
                .any(|a| a.key == "process.executable.name")
        );
        assert!(!r.attributes.iter().any(|a| a.key.starts_with("proc.")));
        let pid = r
            .attributes
            .iter()
            .find(|a| a.key == "process.pid")
            .unwrap();
        assert_eq!(
            pid.value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(7))
        );
        assert_eq!(log_records(&logs_request(vec![r], &Resource::default())), 1);
    }

    #[test]
    fn container_log_lines_are_records_with_severity_and_trace_ids() {
        let line = OwnedEvent {
            tool: "logs".into(),
            kind: "log".into(),
            ts_ns: 7,
            fields: vec![
                ("log.body".into(), OwnedValue::Str("boom 1".into())),
                ("log.level".into(), OwnedValue::Str("error".into())),
                ("log.pattern".into(), OwnedValue::Str("boom <*>".into())),
                (
                    "trace_id".into(),
                    OwnedValue::Str("4bf92f3577b34da6a3ce929d0e0e4736".into()),
                ),
                ("span_id".into(), OwnedValue::Str("00f067aa0ba902b7".into())),
                ("container.id".into(), OwnedValue::Str("abc".into())),
            ],
        };
        let r = log_record(&line, 9);
        assert_eq!(
            r.body.unwrap().value,
            Some(any_value::Value::StringValue("boom 1".into()))
        );
        assert_eq!(r.severity_number, SeverityNumber::Error as i32);
        assert_eq!(r.severity_text, "ERROR");
        assert_eq!(r.trace_id.len(), 16);
        assert_eq!(r.trace_id[0], 0x4b);
        assert_eq!(r.span_id.len(), 8);
        let keys: Vec<_> = r.attributes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["log.pattern", "container.id"]);
        assert_eq!(hex_bytes("zz"), Vec::<u8>::new());
    }
}
