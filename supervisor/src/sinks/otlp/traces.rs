//! Span events ([`model::span`]) to OTLP spans: kind SERVER or CLIENT, the
//! OpenTelemetry HTTP semantic-convention attributes, the span's trace,
//! span and parent ids (an incoming `traceparent` kept), the error status
//! of a 5xx (server) or 4xx/5xx (client) response; spans are grouped by
//! their workload, whose container and pod labels become resource
//! attributes next to the host's.

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::SpanKind as OtlpKind, status},
};

use model::{
    EventView, ValueRef, fields as f,
    span::{SpanContext, SpanKind, duration_ns},
};

use super::encode::{kv, semconv_key};
use crate::pipeline::ToolRecord;

/// A span with the workload labels that make its resource.
#[derive(Debug, Clone)]
pub(crate) struct ResourceSpan {
    /// Workload labels (`container.id`, `k8s.pod.name`, ...), as resource attributes.
    pub(crate) resource: Vec<KeyValue>,
    /// The span.
    pub(crate) span: Span,
}

/// The OTLP span of a span event; None for other events or without ids.
pub(crate) fn span_of(rec: &ToolRecord) -> Option<ResourceSpan> {
    let kind = SpanKind::of_name(rec.kind())?;
    let ids = SpanContext::read(rec)?;
    let ev = rec.record.as_event()?;
    let text = |name| match ev.get(name) {
        Some(ValueRef::Str(s)) => s,
        _ => "",
    };
    let int = |name| match ev.get(name) {
        Some(ValueRef::Int(i)) => i,
        _ => 0,
    };
    let method = text(f::HTTP_METHOD);
    let route = text(f::HTTP_ROUTE);
    let status = int(f::HTTP_STATUS);
    let error = status >= 500 || (kind == SpanKind::Client && status >= 400);
    let mut attributes = vec![
        kv("url.scheme", "http"),
        kv("network.transport", "tcp"),
        kv("network.protocol.name", "http"),
    ];
    ev.for_each_field(&mut |name, value| {
        if !matches!(
            name,
            f::TRACE_ID | f::SPAN_ID | f::TRACE_PARENT_ID | f::DURATION | f::HTTP_STATUS_CLASS
        ) {
            attributes.push(KeyValue {
                key: semconv_key(name).to_owned(),
                value: Some(any_value(value)),
                ..Default::default()
            });
        }
    });
    if error {
        attributes.push(kv("error.type", status.to_string()));
    }
    let start = ev.ts_ns;
    let span = Span {
        trace_id: ids.trace_id.to_vec(),
        span_id: ids.span_id.to_vec(),
        parent_span_id: ids.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        name: match route.is_empty() {
            true => method.to_owned(),
            false => format!("{method} {route}"),
        },
        kind: match kind {
            SpanKind::Server => OtlpKind::Server,
            SpanKind::Client => OtlpKind::Client,
        } as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration_ns(rec),
        attributes,
        status: Some(Status {
            code: match error {
                true => status::StatusCode::Error,
                false => status::StatusCode::Unset,
            } as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let resource = rec
        .workload
        .as_deref()
        .map(workload_resource)
        .unwrap_or_default();
    Some(ResourceSpan { resource, span })
}

/// A workload's labels as resource attributes, with `service.name` the
/// systemd service, else the container's name, else the pod's (the name
/// trace views group spans by).
fn workload_resource(w: &model::Workload) -> Vec<KeyValue> {
    let mut attrs: Vec<KeyValue> = w.labels().map(|(k, v)| kv(semconv_key(k), v)).collect();
    let name = [
        model::labels::SERVICE,
        model::labels::CONTAINER_NAME,
        model::labels::K8S_POD_NAME,
    ]
    .into_iter()
    .find_map(|k| w.label(k));
    if let Some(name) = name {
        attrs.push(kv("service.name", name));
    }
    attrs
}

fn any_value(v: ValueRef<'_>) -> AnyValue {
    use any_value::Value as V;
    let value = match v {
        ValueRef::Str(s) => V::StringValue(s.to_owned()),
        ValueRef::Int(i) => V::IntValue(i),
        ValueRef::Float(x) => V::DoubleValue(x),
        ValueRef::Bool(b) => V::BoolValue(b),
        ValueRef::Ip(ip) => V::StringValue(ip.to_string()),
        ValueRef::Duration(ns) => V::IntValue(ns.min(i64::MAX as u64) as i64),
    };
    AnyValue { value: Some(value) }
}

/// The export request for a batch of spans: one resource per workload
/// (the host's attributes plus the workload's), in first-seen order.
pub(crate) fn traces_request(
    spans: Vec<ResourceSpan>,
    host: &Resource,
) -> ExportTraceServiceRequest {
    let mut groups: Vec<(Vec<KeyValue>, Vec<Span>)> = Vec::new();
    for s in spans {
        match groups.iter_mut().find(|(r, _)| *r == s.resource) {
            Some((_, v)) => v.push(s.span),
            None => groups.push((s.resource, vec![s.span])),
        }
    }
    let resource_spans = groups
        .into_iter()
        .map(|(workload, spans)| {
            let mut resource = host.clone();
            resource
                .attributes
                .retain(|a| !workload.iter().any(|w| w.key == a.key));
            resource.attributes.extend(workload);
            ResourceSpans {
                resource: Some(resource),
                scope_spans: vec![ScopeSpans {
                    scope: Some(super::encode::scope()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// Spans in a request.
pub(crate) fn span_count(req: &ExportTraceServiceRequest) -> u64 {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum()
}

/// Halves a traces request at the outermost list with more than one entry.
pub(crate) fn split(
    mut req: ExportTraceServiceRequest,
) -> Result<(ExportTraceServiceRequest, ExportTraceServiceRequest), ExportTraceServiceRequest> {
    let rs = &mut req.resource_spans;
    if rs.len() > 1 {
        let tail = rs.split_off(rs.len() / 2);
        return Ok((
            req,
            ExportTraceServiceRequest {
                resource_spans: tail,
            },
        ));
    }
    let Some(r) = rs.first_mut() else {
        return Err(req);
    };
    let mut other = r.clone();
    match r.scope_spans.first_mut() {
        Some(s) if s.spans.len() > 1 => {
            other.scope_spans[0].spans = s.spans.split_off(s.spans.len() / 2);
        }
        _ => return Err(req),
    }
    Ok((
        req,
        ExportTraceServiceRequest {
            resource_spans: vec![other],
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Event, EventKind, Record, Value};

    fn request(kind: EventKind, status: i64) -> ToolRecord {
        let mut e = Event::new("http".into(), kind);
        e.ts_ns = 1_000;
        e.pid = Some(7);
        e.push(f::HTTP_METHOD, Value::Str("GET".into()));
        e.push(f::HTTP_ROUTE, Value::Str("/users/{id}".into()));
        e.push(f::URL_PATH, Value::Str("/users/42".into()));
        e.push(f::HTTP_STATUS, Value::Int(status));
        e.push(f::DURATION, Value::Duration(500));
        e.push(f::SERVER_PORT, Value::Int(8080));
        SpanContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
        }
        .write(&mut e);
        ToolRecord::new("http".into(), Record::Event(e))
    }

    #[test]
    fn server_and_client_spans_carry_semconv_attributes() {
        let s = span_of(&request(EventKind::HttpServer, 200)).unwrap().span;
        assert_eq!(s.kind, OtlpKind::Server as i32);
        assert_eq!(s.name, "GET /users/{id}");
        assert_eq!(
            (s.start_time_unix_nano, s.end_time_unix_nano),
            (1_000, 1_500)
        );
        assert_eq!(s.trace_id, vec![1; 16]);
        assert_eq!(s.parent_span_id, vec![3; 8]);
        let attr = |k: &str| s.attributes.iter().find(|a| a.key == k).cloned();
        assert!(attr("http.request.method").is_some());
        assert!(attr("url.path").is_some());
        assert!(attr("process.pid").is_some());
        assert!(attr("trace_id").is_none());
        assert_eq!(s.status.unwrap().code, status::StatusCode::Unset as i32);
        let c = span_of(&request(EventKind::HttpClient, 404)).unwrap().span;
        assert_eq!(c.kind, OtlpKind::Client as i32);
        assert_eq!(c.status.unwrap().code, status::StatusCode::Error as i32);
        let e = span_of(&request(EventKind::HttpServer, 404)).unwrap().span;
        assert_eq!(e.status.unwrap().code, status::StatusCode::Unset as i32);
        let not = ToolRecord::new(
            "execsnoop".into(),
            Record::Event(Event::new("execsnoop".into(), EventKind::Exec)),
        );
        assert!(span_of(&not).is_none());
    }

    #[test]
    fn spans_group_by_workload_and_split() {
        let host = Resource {
            attributes: vec![kv("host.name", "h")],
            ..Default::default()
        };
        let a = span_of(&request(EventKind::HttpServer, 200)).unwrap();
        let mut b = a.clone();
        b.resource = vec![kv("container.name", "web")];
        let req = traces_request(vec![a.clone(), b, a], &host);
        assert_eq!(req.resource_spans.len(), 2);
        assert_eq!(span_count(&req), 3);
        let web = req.resource_spans[1].resource.as_ref().unwrap();
        assert_eq!(web.attributes.len(), 2);
        let (x, y) = split(req).unwrap();
        assert_eq!(span_count(&x) + span_count(&y), 3);
        let (x, y) = split(x).unwrap();
        assert_eq!((span_count(&x), span_count(&y)), (1, 1));
        assert!(split(x).is_err());
    }
}
