//! The bounded, ordered buffer between the OTLP exporter's producer (one
//! batch per export interval, plus log batches) and its sender. When the core
//! is unreachable, batches wait here in order; past the memory bound they
//! spill to a directory (if configured), and past the last bound the oldest
//! batches are dropped and counted. Pushing never waits.

use std::{
    collections::VecDeque,
    os::unix::fs::DirBuilderExt as _,
    path::{Path, PathBuf},
};

use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
    trace::v1::ExportTraceServiceRequest,
};
use prost::Message as _;
use serde::Deserialize;

use super::{encode::metric_points, logs_wire::LogsBatch, traces};

/// `[sinks.otlp.buffer]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct BufferConfig {
    /// Batches kept in memory.
    pub(crate) max_batches: usize,
    /// Encoded bytes kept in memory.
    pub(crate) max_bytes: usize,
    /// Directory to spill to when memory is full (off when absent).
    pub(crate) spill_dir: Option<PathBuf>,
    /// Bytes kept in the spill directory.
    pub(crate) spill_max_bytes: u64,
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self {
            max_batches: 1000,
            max_bytes: 64 << 20,
            spill_dir: None,
            spill_max_bytes: 1 << 30,
        }
    }
}

/// The first spill file number of an empty directory; numbers below it are
/// for memory batches persisted at shutdown (older than every spilled one).
const FIRST_SEQ: u64 = 1 << 40;

/// One export request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Batch {
    /// Metrics.
    Metrics(ExportMetricsServiceRequest),
    /// Logs (encoded as they are sent).
    Logs(LogsBatch),
    /// Traces (spans).
    Traces(ExportTraceServiceRequest),
}

impl Batch {
    /// `metrics` or `logs`.
    pub(crate) fn signal(&self) -> &'static str {
        match self {
            Batch::Metrics(_) => "metrics",
            Batch::Logs(_) => "logs",
            Batch::Traces(_) => "traces",
        }
    }

    /// Data points or log records in it.
    pub(crate) fn items(&self) -> u64 {
        match self {
            Batch::Metrics(m) => metric_points(m),
            Batch::Logs(l) => l.records(),
            Batch::Traces(t) => traces::span_count(t),
        }
    }

    /// Two halves of the batch (in order), or the batch itself when it is
    /// one item (or one metric) that cannot be split.
    pub(crate) fn split(self) -> Result<(Batch, Batch), Batch> {
        match self {
            Batch::Metrics(m) => split_metrics(m)
                .map(|(a, b)| (Batch::Metrics(a), Batch::Metrics(b)))
                .map_err(Batch::Metrics),
            Batch::Logs(l) => split_logs(l).map(|(a, b)| (Batch::Logs(a), Batch::Logs(b))),
            Batch::Traces(t) => traces::split(t)
                .map(|(a, b)| (Batch::Traces(a), Batch::Traces(b)))
                .map_err(Batch::Traces),
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            Batch::Metrics(m) => m.encoded_len(),
            Batch::Logs(l) => l.bytes().len(),
            Batch::Traces(t) => t.encoded_len(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let (tag, body) = match self {
            Batch::Metrics(m) => (b'M', m.encode_to_vec()),
            Batch::Logs(l) => (b'L', l.bytes().to_vec()),
            Batch::Traces(t) => (b'T', t.encode_to_vec()),
        };
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(tag);
        out.extend_from_slice(&body);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Batch> {
        let (tag, body) = bytes.split_first()?;
        match tag {
            b'M' => ExportMetricsServiceRequest::decode(body)
                .ok()
                .map(Batch::Metrics),
            b'L' => LogsBatch::decode(body).map(Batch::Logs),
            b'T' => ExportTraceServiceRequest::decode(body)
                .ok()
                .map(Batch::Traces),
            _ => None,
        }
    }
}

/// Halves an encoded logs request (decoded, split, encoded again: a batch
/// too large for the core is rare), or gives it back whole.
fn split_logs(batch: LogsBatch) -> Result<(LogsBatch, LogsBatch), Batch> {
    let Some(req) = batch.to_request() else {
        return Err(Batch::Logs(batch));
    };
    match split_logs_request(req) {
        Ok((a, b)) => Ok((LogsBatch::from_request(&a), LogsBatch::from_request(&b))),
        Err(_) => Err(Batch::Logs(batch)),
    }
}

/// Halves a logs request at the outermost list with more than one entry.
fn split_logs_request(
    mut req: ExportLogsServiceRequest,
) -> Result<(ExportLogsServiceRequest, ExportLogsServiceRequest), ExportLogsServiceRequest> {
    let rs = &mut req.resource_logs;
    if rs.len() > 1 {
        let tail = rs.split_off(rs.len() / 2);
        return Ok((
            req,
            ExportLogsServiceRequest {
                resource_logs: tail,
            },
        ));
    }
    let Some(r) = rs.first_mut() else {
        return Err(req);
    };
    let mut other = r.clone();
    if r.scope_logs.len() > 1 {
        other.scope_logs = r.scope_logs.split_off(r.scope_logs.len() / 2);
    } else if let Some(s) = r.scope_logs.first_mut()
        && s.log_records.len() > 1
    {
        let tail = s.log_records.split_off(s.log_records.len() / 2);
        other.scope_logs[0].log_records = tail;
    } else {
        return Err(req);
    }
    Ok((
        req,
        ExportLogsServiceRequest {
            resource_logs: vec![other],
        },
    ))
}

/// Halves a metrics request at the outermost list with more than one entry
/// (a single metric is not split).
fn split_metrics(
    mut req: ExportMetricsServiceRequest,
) -> Result<(ExportMetricsServiceRequest, ExportMetricsServiceRequest), ExportMetricsServiceRequest>
{
    let rs = &mut req.resource_metrics;
    if rs.len() > 1 {
        let tail = rs.split_off(rs.len() / 2);
        return Ok((
            req,
            ExportMetricsServiceRequest {
                resource_metrics: tail,
            },
        ));
    }
    let Some(r) = rs.first_mut() else {
        return Err(req);
    };
    let mut other = r.clone();
    if r.scope_metrics.len() > 1 {
        other.scope_metrics = r.scope_metrics.split_off(r.scope_metrics.len() / 2);
    } else if let Some(s) = r.scope_metrics.first_mut()
        && s.metrics.len() > 1
    {
        let tail = s.metrics.split_off(s.metrics.len() / 2);
        other.scope_metrics[0].metrics = tail;
    } else {
        return Err(req);
    }
    Ok((
        req,
        ExportMetricsServiceRequest {
            resource_metrics: vec![other],
        },
    ))
}

/// Writes `data` to `path` through a temporary file, readable by root only
/// (spilled batches hold command lines).
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// A batch taken from the buffer, to be confirmed ([`ExportBuffer::done`])
/// or given back ([`ExportBuffer::give_back`]).
#[derive(Debug)]
pub(crate) struct Entry {
    /// The batch.
    pub(crate) batch: Batch,
    bytes: usize,
    file: Option<PathBuf>,
}

/// What was dropped to make room: signal and items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// `metrics` or `logs`.
    pub(crate) signal: &'static str,
    /// Data points or log records.
    pub(crate) items: u64,
}

#[derive(Debug)]
struct SpillFile {
    path: PathBuf,
    bytes: u64,
}

/// The buffer.
#[derive(Debug)]
pub(crate) struct ExportBuffer {
    config: BufferConfig,
    mem: VecDeque<Entry>,
    mem_bytes: usize,
    disk: VecDeque<SpillFile>,
    disk_bytes: u64,
    next_seq: u64,
}

impl ExportBuffer {
    /// An empty buffer; with a spill directory, batches spilled by an
    /// earlier run are picked up (in order) first.
    pub(crate) fn new(config: BufferConfig) -> std::io::Result<ExportBuffer> {
        let mut b = ExportBuffer {
            config,
            mem: VecDeque::new(),
            mem_bytes: 0,
            disk: VecDeque::new(),
            disk_bytes: 0,
            // Leaves room below for batches persisted from memory at shutdown.
            next_seq: FIRST_SEQ,
        };
        if let Some(dir) = b.config.spill_dir.clone() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            b.load_spilled(&dir)?;
        }
        Ok(b)
    }

    fn load_spilled(&mut self, dir: &Path) -> std::io::Result<()> {
        let mut files: Vec<(u64, PathBuf, u64)> = std::fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| {
                let path = e.path();
                let seq = path.file_stem()?.to_str()?.parse().ok()?;
                (path.extension()? == "otlp").then_some(())?;
                let len = e.metadata().ok()?.len();
                Some((seq, path, len))
            })
            .collect();
        files.sort();
        for (seq, path, bytes) in files {
            self.next_seq = self.next_seq.max(seq + 1);
            self.disk_bytes += bytes;
            self.disk.push_back(SpillFile { path, bytes });
        }
        Ok(())
    }

    /// Appends `batch`; returns what had to be dropped for it (oldest first).
    pub(crate) fn push(&mut self, batch: Batch) -> Vec<Dropped> {
        let bytes = batch.encoded_len();
        let mut dropped = Vec::new();
        let mem_full = self.mem.len() >= self.config.max_batches
            || self.mem_bytes + bytes > self.config.max_bytes;
        if (mem_full || !self.disk.is_empty()) && self.config.spill_dir.is_some() {
            match self.spill(&batch) {
                Ok(()) => {
                    self.trim_disk(&mut dropped);
                    return dropped;
                }
                Err(err) => tracing::warn!("spilling an OTLP batch to disk: {err}"),
            }
        }
        while !self.mem.is_empty()
            && (self.mem.len() >= self.config.max_batches
                || self.mem_bytes + bytes > self.config.max_bytes)
        {
            if let Some(old) = self.mem.pop_front() {
                self.mem_bytes -= old.bytes;
                dropped.push(dropped_of(&old.batch));
            }
        }
        self.mem_bytes += bytes;
        self.mem.push_back(Entry {
            batch,
            bytes,
            file: None,
        });
        dropped
    }

    fn spill(&mut self, batch: &Batch) -> std::io::Result<()> {
        let dir = self.config.spill_dir.as_ref().expect("spill_dir checked");
        let path = dir.join(format!("{:020}.otlp", self.next_seq));
        let data = batch.encode();
        write_private(&path, &data)?;
        self.next_seq += 1;
        self.disk_bytes += data.len() as u64;
        self.disk.push_back(SpillFile {
            path,
            bytes: data.len() as u64,
        });
        Ok(())
    }

    fn trim_disk(&mut self, dropped: &mut Vec<Dropped>) {
        while self.disk_bytes > self.config.spill_max_bytes && self.disk.len() > 1 {
            let Some(old) = self.disk.pop_front() else {
                break;
            };
            self.disk_bytes -= old.bytes;
            if let Some(batch) = std::fs::read(&old.path)
                .ok()
                .and_then(|b| Batch::decode(&b))
            {
                dropped.push(dropped_of(&batch));
            }
            let _ = std::fs::remove_file(&old.path);
        }
    }

    /// Writes the batches held in memory to the spill directory, ahead of
    /// the spilled ones, so the next run sends them first; returns how many
    /// were written. Without a spill directory nothing happens.
    pub(crate) fn persist(&mut self) -> std::io::Result<usize> {
        let Some(dir) = self.config.spill_dir.clone() else {
            return Ok(0);
        };
        let first_disk = self
            .disk
            .iter()
            .filter_map(|f| seq_of(&f.path))
            .min()
            .unwrap_or(self.next_seq);
        let n = self.mem.len() as u64;
        let mut seq = first_disk.saturating_sub(n);
        let mut written = 0;
        while let Some(e) = self.mem.pop_front() {
            self.mem_bytes -= e.bytes;
            let path = dir.join(format!("{seq:020}.otlp"));
            write_private(&path, &e.batch.encode())?;
            seq += 1;
            written += 1;
        }
        Ok(written)
    }

    /// Takes the oldest batch (from memory, else from disk).
    pub(crate) fn take(&mut self) -> Option<Entry> {
        if let Some(e) = self.mem.pop_front() {
            self.mem_bytes -= e.bytes;
            return Some(e);
        }
        while let Some(f) = self.disk.pop_front() {
            self.disk_bytes -= f.bytes;
            match std::fs::read(&f.path).ok().and_then(|b| Batch::decode(&b)) {
                Some(batch) => {
                    return Some(Entry {
                        batch,
                        bytes: f.bytes as usize,
                        file: Some(f.path),
                    });
                }
                None => {
                    tracing::warn!("unreadable spilled batch {} removed", f.path.display());
                    let _ = std::fs::remove_file(&f.path);
                }
            }
        }
        None
    }

    /// Puts a taken batch back at the front (its export failed).
    pub(crate) fn give_back(&mut self, e: Entry) {
        if e.file.is_some() {
            self.disk_bytes += e.bytes as u64;
            self.disk.push_front(SpillFile {
                path: e.file.clone().expect("checked"),
                bytes: e.bytes as u64,
            });
        } else {
            self.mem_bytes += e.bytes;
            self.mem.push_front(e);
        }
    }

    /// Puts `batch` at the front of the queue, in memory (the halves of a
    /// batch the core found too large); nothing is dropped for it.
    pub(crate) fn put_front(&mut self, batch: Batch) {
        let bytes = batch.encoded_len();
        self.mem_bytes += bytes;
        self.mem.push_front(Entry {
            batch,
            bytes,
            file: None,
        });
    }

    /// Confirms a taken batch was delivered (removes its spill file).
    pub(crate) fn done(&mut self, e: Entry) {
        if let Some(path) = e.file {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Batches held (memory and disk).
    pub(crate) fn len(&self) -> usize {
        self.mem.len() + self.disk.len()
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held (memory and disk).
    pub(crate) fn bytes(&self) -> u64 {
        self.mem_bytes as u64 + self.disk_bytes
    }
}

fn seq_of(path: &Path) -> Option<u64> {
    path.file_stem()?.to_str()?.parse().ok()
}

fn dropped_of(b: &Batch) -> Dropped {
    Dropped {
        signal: b.signal(),
        items: b.items(),
    }
}

#[cfg(test)]
#[path = "buffer_tests.rs"]
mod tests;
