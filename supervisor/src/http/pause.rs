//! The HTTP capture's pause switch: the CPU budget's first step when the
//! capture runs (`crate::budget`). Paused, the kernel program stops looking
//! at transfers (sockets are still followed), so the capture costs about
//! what the hot path alone does until it is resumed; and the syscall probe
//! it rides on may then be sampled (the poller reads the shared flag).

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use aya::maps::{Array, MapData};

/// A cloneable handle on the kernel's `HTTP_PAUSED` switch.
#[derive(Clone)]
pub(crate) struct HttpPause {
    map: Arc<Mutex<Array<MapData, u32>>>,
    paused: Arc<AtomicBool>,
}

impl HttpPause {
    /// The switch of a loaded capture, and the flag the poller reads.
    pub(crate) fn new(map: Array<MapData, u32>, paused: Arc<AtomicBool>) -> HttpPause {
        HttpPause {
            map: Arc::new(Mutex::new(map)),
            paused,
        }
    }

    /// Pauses (`true`) or resumes the capture.
    pub(crate) fn set(&self, paused: bool) -> Result<(), aya::maps::MapError> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.set(0, u32::from(paused), 0)?;
        self.paused.store(paused, Ordering::Relaxed);
        Ok(())
    }
}
