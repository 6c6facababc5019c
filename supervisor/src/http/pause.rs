//! The HTTP capture's pause switch: the CPU budget's first step when the
//! capture runs (`crate::budget`). Paused, the kernel program stops looking
//! at transfers (sockets are still followed), so the capture costs about
//! what the hot path alone does until it is resumed.

use std::sync::{Arc, Mutex};

use aya::maps::{Array, MapData};

/// A cloneable handle on the kernel's `HTTP_PAUSED` switch.
#[derive(Clone)]
pub(crate) struct HttpPause(Arc<Mutex<Array<MapData, u32>>>);

impl HttpPause {
    /// The switch of a loaded capture.
    pub(crate) fn new(map: Array<MapData, u32>) -> HttpPause {
        HttpPause(Arc::new(Mutex::new(map)))
    }

    /// Pauses (`true`) or resumes the capture.
    pub(crate) fn set(&self, paused: bool) -> Result<(), aya::maps::MapError> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.set(0, u32::from(paused), 0)
    }
}
