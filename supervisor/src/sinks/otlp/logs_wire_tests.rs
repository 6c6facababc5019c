//! Unit tests of `logs_wire`: what it encodes is, decoded with the official
//! `opentelemetry-proto` types, the request the message-building path
//! ([`super::super::encode`]) makes of the same events, byte for byte.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use model::{Container, Runtime, Workload};
use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, KeyValue, any_value},
    logs::v1::LogRecord,
};
use parsers::{Event, EventKind, Record, Value, fields};

use super::*;
use crate::{
    pipeline::ToolRecord,
    sinks::otlp::encode::{kv, log_record, logs_request},
};

fn event(kind: EventKind, tool: &str, ts: u64) -> Event {
    let mut e = Event::new(tool.into(), kind);
    e.ts_ns = ts;
    e
}

/// Events with every value type, escaped and unusual strings, container
/// log lines with and without level and ids, and enrichment labels.
fn varied() -> Vec<ToolRecord> {
    let mut exec = event(EventKind::Exec, "execsnoop", 1_700_000_000_123_456_789);
    exec.pid = Some(4242);
    exec.ppid = Some(1);
    exec.comm = Some("bash".into());
    exec.push(
        fields::PROC_ARGS,
        Value::Str(r#"/bin/sh -c "echo \"hi\"\n\t\\x00 é ✓""#.into()),
    );
    exec.push(fields::PROC_EXIT_CODE, Value::Int(-1));
    exec.push("big", Value::Int(i64::MIN));
    exec.push("zero", Value::Int(0));
    exec.push("empty", Value::Str("".into()));
    exec.push("", Value::Str("a field without a name".into()));
    exec.push("ratio", Value::Float(-0.125));
    exec.push("nan", Value::Float(f64::NAN));
    exec.push("ok", Value::Bool(true));
    exec.push("no", Value::Bool(false));
    exec.push(
        fields::NET_SADDR,
        Value::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    );
    exec.push(
        fields::NET_DADDR,
        Value::Ip(IpAddr::V6(Ipv6Addr::new(
            0, 0, 0, 0, 0, 0xffff, 0xffff, 0xffff,
        ))),
    );
    exec.push(
        "v6",
        Value::Ip(IpAddr::V6(Ipv6Addr::new(
            0xfe80, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
        ))),
    );
    exec.push(fields::DURATION, Value::Duration(u64::MAX));
    exec.push("short", Value::Duration(0));
    exec.push("long", Value::Str("x".repeat(300).into()));
    let bare = event(EventKind::TcpSession, "", 0);
    let log = |body: &str, level: &str, trace: &str, span: &str| {
        let mut e = event(EventKind::Log, "logs", 7);
        e.push(fields::LOG_BODY, Value::Str(body.into()));
        if !level.is_empty() {
            e.push(fields::LOG_LEVEL, Value::Str(level.into()));
        }
        e.push("log.pattern", Value::Str("boom <*>".into()));
        e.push(fields::TRACE_ID, Value::Str(trace.into()));
        e.push(fields::SPAN_ID, Value::Str(span.into()));
        e
    };
    let records = [
        exec,
        bare,
        log(
            "boom 1 \"quoted\" \u{1b}[31m",
            "error",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00f067aa0ba902b7",
        ),
        log("", "", "", ""),
        log("plain", "warning", "zz", "abc"),
        log("upper hex", "INFO", "4BF92F3577B34DA6", "+a+b"),
    ];
    let workload = Arc::new(Workload {
        container: Some(Container {
            id: "c".repeat(64),
            runtime: Runtime::Docker,
            name: Some("web \"1\"".into()),
            image: Some("nginx:1".into()),
            namespace: None,
            sandbox: false,
        }),
        ..Workload::default()
    });
    records
        .into_iter()
        .enumerate()
        .map(|(i, e)| ToolRecord {
            tool: e.tool.clone(),
            record: Record::Event(e),
            workload: (i % 2 == 0).then(|| workload.clone()),
        })
        .collect()
}

fn resource() -> Resource {
    Resource {
        attributes: vec![kv("host.name", "node-1"), kv("service.name", "eunomia")],
        ..Default::default()
    }
}

#[test]
fn encoded_requests_decode_to_what_the_message_path_builds() {
    let events = varied();
    let old = logs_request(
        events.iter().map(|e| log_record(e, 99)).collect(),
        &resource(),
    );
    let mut builder = LogsBuilder::default();
    for e in &events {
        builder.push_event(e, 99);
    }
    assert_eq!(builder.len(), events.len() as u64);
    let batch = builder.finish(&resource());
    assert!(builder.is_empty());
    let decoded = ExportLogsServiceRequest::decode(batch.bytes().clone()).unwrap();
    // NaN is not equal to itself: compare the debug forms, then the bytes.
    assert_eq!(format!("{decoded:?}"), format!("{old:?}"));
    assert_eq!(batch.bytes().as_ref(), old.encode_to_vec().as_slice());
    assert_eq!(batch.records(), events.len() as u64);
    // One resource, one scope, every record in it.
    assert_eq!(decoded.resource_logs.len(), 1);
    let scope_logs = &decoded.resource_logs[0].scope_logs;
    assert_eq!(scope_logs.len(), 1);
    assert_eq!(scope_logs[0].scope.as_ref().unwrap().name, "eunomia");
    assert_eq!(scope_logs[0].log_records.len(), events.len());
}

#[test]
fn each_record_alone_is_the_message_path_record() {
    for e in varied() {
        let mut bytes = Vec::new();
        encode_log_record(&e, 5, &mut bytes);
        let ours = LogRecord::decode(bytes.as_slice()).unwrap();
        let theirs = log_record(&e, 5);
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        assert_eq!(bytes, theirs.encode_to_vec(), "{theirs:?}");
    }
}

#[test]
fn typed_values_keep_their_type() {
    let mut e = event(EventKind::Exec, "t", 1);
    e.push("f", Value::Float(1.5));
    e.push("b", Value::Bool(true));
    e.push("d", Value::Duration(3));
    e.push("ip", Value::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    let mut bytes = Vec::new();
    encode_log_record(&e, 0, &mut bytes);
    let r = LogRecord::decode(bytes.as_slice()).unwrap();
    let value = |k: &str| {
        r.attributes
            .iter()
            .find(|a: &&KeyValue| a.key == k)
            .and_then(|a| a.value.clone())
            .and_then(|v: AnyValue| v.value)
    };
    assert_eq!(value("f"), Some(any_value::Value::DoubleValue(1.5)));
    assert_eq!(value("b"), Some(any_value::Value::BoolValue(true)));
    assert_eq!(value("d"), Some(any_value::Value::IntValue(3)));
    assert_eq!(
        value("ip"),
        Some(any_value::Value::StringValue("10.0.0.1".into()))
    );
    assert_eq!(r.event_name, "eunomia.exec");
}

#[test]
fn batches_survive_the_spill_format_and_splitting() {
    let mut builder = LogsBuilder::default();
    for e in varied() {
        builder.push_event(&e, 1);
    }
    let batch = builder.finish(&Resource::default());
    let back = LogsBatch::decode(batch.bytes()).unwrap();
    assert_eq!(back, batch);
    assert_eq!(LogsBatch::decode(b"\xff\xff"), None);
    let req = batch.to_request().unwrap();
    assert_eq!(LogsBatch::from_request(&req), batch);
    // The builder starts over after each batch.
    builder.push_event(&varied()[1], 1);
    assert_eq!(builder.finish(&Resource::default()).records(), 1);
}

#[test]
fn addresses_are_written_as_std_formats_them() {
    let addrs = [
        IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
        IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)),
        IpAddr::V4(Ipv4Addr::new(10, 100, 9, 199)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001)),
    ];
    for ip in addrs {
        assert_eq!(IpText::new(ip).as_bytes(), ip.to_string().as_bytes());
    }
    assert_eq!(log_record_bytes(&varied()[0], 3), {
        let mut v = Vec::new();
        encode_log_record(&varied()[0], 3, &mut v);
        v
    });
}
