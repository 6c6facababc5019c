//! Events as OTLP log records, encoded straight to protobuf bytes with
//! `prost::encoding`, field by field: no owned `opentelemetry-proto`
//! message is built per event and every length is computed once, so one
//! record costs one pass over the event's fields. The bytes are those
//! prost writes for the record [`super::encode::log_record`] builds (same
//! fields, same order, same defaults left out), and a batch of them is a
//! valid `ExportLogsServiceRequest` ([`LogsBatch`]) with one resource and
//! one scope, sent to the core as is ([`super::raw`]).

use std::{cell::RefCell, io::Write as _, net::IpAddr};

use bytes::{BufMut as _, Bytes};
use model::{EventView, ValueRef};
use opentelemetry_proto::tonic::{
    collector::logs::v1::ExportLogsServiceRequest, logs::v1::SeverityNumber, resource::v1::Resource,
};
use parsers::{fields, logs::Level};
use prost::{
    Message as _,
    encoding::{WireType, encoded_len_varint, key_len},
};

use super::encode::{log_records, scope, semconv_key};

thread_local! {
    /// Where [`log_record_bytes`] encodes before copying out.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `ev` as the bytes of one `LogRecord` message, in a vector of exactly
/// their size (encoded in a reused buffer first: no growing on the way).
pub fn log_record_bytes(ev: &dyn EventView, observed_ns: u64) -> Vec<u8> {
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        encode_log_record(ev, observed_ns, scratch);
        scratch.as_slice().to_vec()
    })
}

/// Appends `ev` as the bytes of one `LogRecord` message to `out`: the
/// record [`super::encode::log_record`] makes, without making it.
pub fn encode_log_record(ev: &dyn EventView, observed_ns: u64, out: &mut Vec<u8>) {
    if ev.kind() == "log" {
        return container_log_record(ev, observed_ns, out);
    }
    fixed64(1, ev.ts_ns(), out);
    varint(2, SeverityNumber::Info as i32 as u64, out);
    string(3, "INFO", out);
    string_body(ev.kind(), out);
    attribute(6, "tool", ValueRef::Str(ev.tool()), out);
    attribute(6, "kind", ValueRef::Str(ev.kind()), out);
    ev.for_each_field(&mut |name, value| attribute(6, semconv_key(name), value, out));
    fixed64(11, observed_ns, out);
    let prefix = "eunomia.";
    key_and_len(12, prefix.len() + ev.kind().len(), out);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(ev.kind().as_bytes());
}

/// A container's log line: body `log.body`, severity from `log.level`,
/// `trace_id`/`span_id` as the record's ids, the other fields as attributes.
fn container_log_record(ev: &dyn EventView, observed_ns: u64, out: &mut Vec<u8>) {
    let text = |name| match ev.get(name) {
        Some(ValueRef::Str(s)) => s,
        _ => "",
    };
    let severity = Level::from_word(text(fields::LOG_LEVEL)).unwrap_or(Level::Unknown);
    fixed64(1, ev.ts_ns(), out);
    varint(2, severity.otel_number() as i64 as u64, out);
    if severity != Level::Unknown {
        let word = severity.as_str();
        key_and_len(3, word.len(), out);
        out.extend(word.bytes().map(|b| b.to_ascii_uppercase()));
    }
    string_body(text(fields::LOG_BODY), out);
    ev.for_each_field(&mut |name, value| {
        if !matches!(name, "log.body" | "log.level" | "trace_id" | "span_id") {
            attribute(6, semconv_key(name), value, out);
        }
    });
    hex_bytes(9, text(fields::TRACE_ID), out);
    hex_bytes(10, text(fields::SPAN_ID), out);
    fixed64(11, observed_ns, out);
}

/// A field's key. Every tag of a log record and its parts is below 16, so
/// the key is one byte (what `prost::encoding::encode_key` writes then).
fn key(tag: u32, wire_type: WireType, out: &mut Vec<u8>) {
    debug_assert!(tag < 16);
    out.push((tag << 3 | wire_type as u32) as u8);
}

/// A varint (`prost::encoding::encode_varint`, byte by byte on the `Vec`:
/// most lengths and values here take one or two bytes).
fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A `fixed64` field, left out when 0 (proto3's default).
fn fixed64(tag: u32, v: u64, out: &mut Vec<u8>) {
    if v != 0 {
        key(tag, WireType::SixtyFourBit, out);
        out.put_u64_le(v);
    }
}

/// A varint field, left out when 0.
fn varint(tag: u32, v: u64, out: &mut Vec<u8>) {
    if v != 0 {
        key(tag, WireType::Varint, out);
        put_varint(v, out);
    }
}

/// A string field, left out when empty.
fn string(tag: u32, s: &str, out: &mut Vec<u8>) {
    if !s.is_empty() {
        key_and_len(tag, s.len(), out);
        out.extend_from_slice(s.as_bytes());
    }
}

/// The key and length of a length-delimited field.
fn key_and_len(tag: u32, len: usize, out: &mut Vec<u8>) {
    key(tag, WireType::LengthDelimited, out);
    put_varint(len as u64, out);
}

/// Bytes of a length-delimited field: key, length, content.
fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// The record's body (field 5): an `AnyValue` holding the string `s`
/// (a oneof member is written even when empty).
fn string_body(s: &str, out: &mut Vec<u8>) {
    key_and_len(5, delimited_len(1, s.len()), out);
    key_and_len(1, s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

/// An IP address as text, formatted on the stack (at most 45 bytes).
struct IpText {
    buf: [u8; 64],
    len: usize,
}

impl IpText {
    /// No address.
    const EMPTY: IpText = IpText {
        buf: [0; 64],
        len: 0,
    };

    fn new(ip: IpAddr) -> IpText {
        let IpAddr::V4(v4) = ip else {
            return IpText::formatted(ip);
        };
        // Dotted decimal without the formatting machinery (most addresses).
        let mut t = IpText::EMPTY;
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                t.push(b'.');
            }
            if octet >= 100 {
                t.push(b'0' + octet / 100);
            }
            if octet >= 10 {
                t.push(b'0' + octet / 10 % 10);
            }
            t.push(b'0' + octet % 10);
        }
        t
    }

    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn formatted(ip: IpAddr) -> IpText {
        let mut buf = [0u8; 64];
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        // An address always fits in 64 bytes.
        let _ = write!(cursor, "{ip}");
        let len = cursor.position() as usize;
        IpText { buf, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The member of an `AnyValue`.
enum Member<'a> {
    /// `string_value` (1).
    Text(&'a [u8]),
    /// `bool_value` (2) or `int_value` (3).
    Varint(u32, u64),
    /// `double_value` (4).
    Double(f64),
}

impl Member<'_> {
    /// Bytes of the `AnyValue` holding it.
    fn len(&self) -> usize {
        match self {
            Member::Text(s) => delimited_len(1, s.len()),
            Member::Varint(tag, v) => key_len(*tag) + encoded_len_varint(*v),
            Member::Double(_) => key_len(4) + 8,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Member::Text(s) => {
                key_and_len(1, s.len(), out);
                out.extend_from_slice(s);
            }
            Member::Varint(tag, v) => {
                key(tag, WireType::Varint, out);
                put_varint(v, out);
            }
            Member::Double(f) => {
                key(4, WireType::SixtyFourBit, out);
                out.put_f64_le(f);
            }
        }
    }
}

/// One `KeyValue` attribute as field `tag`: the key (left out when empty)
/// and an `AnyValue` (always present).
fn attribute(tag: u32, key: &str, value: ValueRef<'_>, out: &mut Vec<u8>) {
    let ip = match value {
        ValueRef::Ip(addr) => IpText::new(addr),
        _ => IpText::EMPTY,
    };
    let member = match value {
        ValueRef::Str(s) => Member::Text(s.as_bytes()),
        ValueRef::Ip(_) => Member::Text(ip.as_bytes()),
        ValueRef::Bool(b) => Member::Varint(2, b as u64),
        ValueRef::Int(i) => Member::Varint(3, i as u64),
        ValueRef::Duration(ns) => Member::Varint(3, duration_ns(ns) as u64),
        ValueRef::Float(f) => Member::Double(f),
    };
    let any_len = member.len();
    let key_part = match key.is_empty() {
        true => 0,
        false => delimited_len(1, key.len()),
    };
    key_and_len(tag, key_part + delimited_len(2, any_len), out);
    string(1, key, out);
    key_and_len(2, any_len, out);
    member.write(out);
}

/// A duration as OTLP's signed integer (saturated).
fn duration_ns(ns: u64) -> i64 {
    ns.min(i64::MAX as u64) as i64
}

/// Hex digits as a bytes field; left out when empty or not hex (as
/// [`super::encode`] does).
fn hex_bytes(tag: u32, hex: &str, out: &mut Vec<u8>) {
    let valid = hex.len().is_multiple_of(2) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid || hex.is_empty() {
        return;
    }
    key_and_len(tag, hex.len() / 2, out);
    let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
    out.extend(
        hex.as_bytes()
            .chunks_exact(2)
            .map(|p| digit(p[0]) << 4 | digit(p[1])),
    );
}

/// One logs request, encoded: the bytes of an `ExportLogsServiceRequest`
/// and how many log records it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct LogsBatch {
    bytes: Bytes,
    records: u64,
}

impl LogsBatch {
    /// The encoding of `req`.
    pub fn from_request(req: &ExportLogsServiceRequest) -> LogsBatch {
        LogsBatch {
            bytes: req.encode_to_vec().into(),
            records: log_records(req),
        }
    }

    /// Reads a batch back (a spilled one); `None` when the bytes are not a
    /// logs request.
    pub fn decode(bytes: &[u8]) -> Option<LogsBatch> {
        let req = ExportLogsServiceRequest::decode(bytes).ok()?;
        Some(LogsBatch {
            bytes: Bytes::copy_from_slice(bytes),
            records: log_records(&req),
        })
    }

    /// The request as `opentelemetry-proto` messages (to split it).
    pub fn to_request(&self) -> Option<ExportLogsServiceRequest> {
        ExportLogsServiceRequest::decode(self.bytes.clone()).ok()
    }

    /// The encoded request.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Log records in it.
    pub fn records(&self) -> u64 {
        self.records
    }
}

/// Collects encoded log records and frames them as one request with the
/// resource and scope of every eunomia request. The record buffer is reused
/// from one batch to the next.
#[derive(Debug, Default)]
pub struct LogsBuilder {
    records: Vec<u8>,
    count: u64,
    scratch: Vec<u8>,
}

impl LogsBuilder {
    /// Adds one record, given as the bytes of a `LogRecord` message.
    pub fn push_encoded(&mut self, record: &[u8]) {
        key_and_len(2, record.len(), &mut self.records);
        self.records.extend_from_slice(record);
        self.count += 1;
    }

    /// Encodes `ev` as a record and adds it.
    pub fn push_event(&mut self, ev: &dyn EventView, observed_ns: u64) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        encode_log_record(ev, observed_ns, &mut scratch);
        self.push_encoded(&scratch);
        self.scratch = scratch;
    }

    /// Records waiting.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The request of the records added since the last call (empties the
    /// builder); `resource` is sent as given.
    pub fn finish(&mut self, resource: &Resource) -> LogsBatch {
        let resource_len = resource.encoded_len();
        let scope = scope();
        let scope_len = scope.encoded_len();
        let scope_logs_len = delimited_len(1, scope_len) + self.records.len();
        let resource_logs_len = delimited_len(1, resource_len) + delimited_len(2, scope_logs_len);
        let mut out = Vec::with_capacity(delimited_len(1, resource_logs_len));
        key_and_len(1, resource_logs_len, &mut out);
        key_and_len(1, resource_len, &mut out);
        resource.encode_raw(&mut out);
        key_and_len(2, scope_logs_len, &mut out);
        key_and_len(1, scope_len, &mut out);
        scope.encode_raw(&mut out);
        out.extend_from_slice(&self.records);
        let batch = LogsBatch {
            bytes: out.into(),
            records: self.count,
        };
        self.records.clear();
        self.count = 0;
        batch
    }
}

#[cfg(test)]
#[path = "logs_wire_tests.rs"]
mod tests;
