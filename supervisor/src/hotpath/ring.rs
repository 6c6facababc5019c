//! The reader of a hot-path ring buffer of per-event records (execs,
//! mounts): each item the kernel submitted becomes one pipeline record of
//! the source's tool name, until shutdown. Items the ring buffer had no
//! room for are counted in the kernel (`COUNTERS`), not here.

use std::sync::Arc;

use aya::maps::{MapData, RingBuf};
use model::{Event, Record};
use tokio::{io::unix::AsyncFd, task::JoinHandle};

use crate::{
    context::AgentContext,
    pipeline::{Message, ToolRecord},
};

/// Reads `ring` into the pipeline until shutdown, each item turned into an
/// event by `to_event` (None: an item too short, skipped). None (with a
/// warning naming `what`) when the ring buffer cannot be polled.
pub fn start(
    what: &'static str,
    ring: RingBuf<MapData>,
    tool: &'static str,
    to_event: fn(&Arc<str>, &[u8]) -> Option<Event>,
    ctx: &AgentContext,
) -> Option<JoinHandle<()>> {
    // SAFETY: the ring buffer's descriptor is owned by the AsyncFd from here
    // on; nothing else closes or replaces it.
    let mut fd = match unsafe { AsyncFd::register(ring) } {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!("{what}: cannot poll the ring buffer: {e}");
            return None;
        }
    };
    let (tx, shutdown) = (ctx.tx.clone(), ctx.shutdown.clone());
    let tool: Arc<str> = Arc::from(tool);
    Some(tokio::spawn(async move {
        loop {
            let mut guard = tokio::select! {
                g = fd.readable_mut() => match g {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::warn!("{what}: {e}");
                        return;
                    }
                },
                _ = shutdown.cancelled() => return,
            };
            let ring = guard.get_inner_mut();
            while let Some(item) = ring.next() {
                if let Some(ev) = to_event(&tool, &item) {
                    let record = ToolRecord::new(tool.clone(), Record::Event(ev));
                    tx.send(Message::Record(record));
                }
            }
            guard.clear_ready();
        }
    }))
}

/// The plain-data `T` at the start of a ring buffer item (None when the
/// item is too short).
pub fn read_item<T: aya::Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: the item holds a whole T (checked above), plain data written
    // by a BPF program (Pod: any bytes are a valid T); read unaligned.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// The bytes of `s` up to its first NUL (all of it without one).
pub fn c_str(s: &[u8]) -> &[u8] {
    let len = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    &s[..len]
}
