//! Unit tests of `buffer`.

use super::*;
use crate::sinks::otlp::encode::{kv, logs_request};
use opentelemetry_proto::tonic::{logs::v1::LogRecord, resource::v1::Resource};

fn batch(n: usize) -> Batch {
    let records = (0..n)
        .map(|i| LogRecord {
            attributes: vec![kv("i", i.to_string())],
            ..Default::default()
        })
        .collect();
    Batch::Logs(LogsBatch::from_request(&logs_request(
        records,
        &Resource::default(),
    )))
}

fn drain(b: &mut ExportBuffer) -> Vec<u64> {
    std::iter::from_fn(|| {
        let e = b.take()?;
        let n = e.batch.items();
        b.done(e);
        Some(n)
    })
    .collect()
}

#[test]
fn memory_bound_drops_oldest_and_reports_it() {
    let mut b = ExportBuffer::new(BufferConfig {
        max_batches: 2,
        ..Default::default()
    })
    .unwrap();
    assert!(b.push(batch(1)).is_empty());
    assert!(b.push(batch(2)).is_empty());
    let dropped = b.push(batch(3));
    assert_eq!(
        dropped,
        vec![Dropped {
            signal: "logs",
            items: 1
        }]
    );
    assert_eq!(drain(&mut b), vec![2, 3]);
}

#[test]
fn given_back_batch_comes_first() {
    let mut b = ExportBuffer::new(BufferConfig::default()).unwrap();
    b.push(batch(1));
    b.push(batch(2));
    let e = b.take().unwrap();
    b.push(batch(3));
    b.give_back(e);
    assert_eq!(drain(&mut b), vec![1, 2, 3]);
}

#[test]
fn spills_to_disk_in_order_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let config = BufferConfig {
        max_batches: 2,
        spill_dir: Some(dir.path().to_owned()),
        ..Default::default()
    };
    let mut b = ExportBuffer::new(config.clone()).unwrap();
    for n in 1..=5 {
        assert!(b.push(batch(n)).is_empty());
    }
    assert_eq!(b.len(), 5);
    let first = b.take().unwrap();
    assert_eq!(first.batch.items(), 1);
    b.done(first);
    drop(b);
    // Without persist, a new run finds only the spilled batches.
    let mut again = ExportBuffer::new(config.clone()).unwrap();
    assert_eq!(drain(&mut again), vec![3, 4, 5]);
    // With persist, memory batches go first.
    let mut b = ExportBuffer::new(config.clone()).unwrap();
    for n in 1..=4 {
        b.push(batch(n));
    }
    assert_eq!(b.persist().unwrap(), 2);
    drop(b);
    let mut again = ExportBuffer::new(config).unwrap();
    assert_eq!(drain(&mut again), vec![1, 2, 3, 4]);
}

#[test]
fn disk_bound_drops_oldest_spilled() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch(1).encode().len() as u64;
    let mut b = ExportBuffer::new(BufferConfig {
        max_batches: 1,
        spill_dir: Some(dir.path().to_owned()),
        spill_max_bytes: one * 2,
        ..Default::default()
    })
    .unwrap();
    let mut dropped = Vec::new();
    for _ in 0..5 {
        dropped.extend(b.push(batch(1)));
    }
    assert_eq!(dropped.len(), 2);
    assert_eq!(drain(&mut b).len(), 3);
}

#[test]
fn a_batch_splits_in_ordered_halves_down_to_one_record() {
    let Ok((a, b)) = batch(5).split() else {
        panic!("5 records split")
    };
    assert_eq!((a.items(), b.items()), (2, 3));
    let Ok((c, d)) = a.split() else {
        panic!("2 records split")
    };
    assert_eq!((c.items(), d.items()), (1, 1));
    assert!(c.split().is_err());
    let mut buf = ExportBuffer::new(BufferConfig::default()).unwrap();
    buf.push(batch(7));
    buf.put_front(d);
    buf.put_front(batch(3));
    assert_eq!(drain(&mut buf), vec![3, 1, 7]);
}

#[test]
fn spill_files_and_directory_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    let mut b = ExportBuffer::new(BufferConfig {
        max_batches: 1,
        spill_dir: Some(spill.clone()),
        ..Default::default()
    })
    .unwrap();
    b.push(batch(1));
    b.push(batch(2));
    b.persist().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&spill), 0o700);
    let files: Vec<_> = std::fs::read_dir(&spill).unwrap().flatten().collect();
    assert_eq!(files.len(), 2);
    for f in files {
        assert_eq!(mode(&f.path()), 0o600, "{}", f.path().display());
    }
}
