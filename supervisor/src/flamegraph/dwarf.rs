//! The user-space half of DWARF sampling: drains the profiler's ring buffer
//! of stack copies while sampling runs, unwinds each ([`DwarfUnwinder`]) and
//! counts equal stacks. In `auto` mode it also tells the kernel which
//! processes keep frame pointers, so their later samples skip the copy.

use std::collections::{HashMap, HashSet};

use aya::maps::{HashMap as BpfHashMap, MapData, MapError, RingBuf};
use hotpath_common::profile::{FP_TGIDS_MAP, SAMPLES_RING, StackSample};

use super::unwind::{DwarfUnwinder, process_has_frame_pointers};

/// One distinct unwound situation: which process, which user frames
/// (innermost first, ready for symbolizing), which kernel stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct UnwoundKey {
    /// Process id.
    pub(crate) tgid: u32,
    /// The thread's command name, NUL-padded.
    pub(crate) comm: [u8; 16],
    /// Kernel stack id, or a negative errno.
    pub(crate) kernel_stack: i32,
    /// User frame addresses, innermost first.
    pub(crate) user: Vec<u64>,
}

/// Drains, unwinds and counts stack samples.
pub(crate) struct Collector {
    ring: RingBuf<MapData>,
    fp_tgids: Option<BpfHashMap<MapData, u32, u8>>,
    checked: HashSet<u32>,
    /// The unwinder (and what it cost).
    pub(crate) unwinder: DwarfUnwinder,
    /// Samples by unwound stack.
    pub(crate) counts: HashMap<UnwoundKey, u64>,
    /// Ring buffer records too short to be a sample (never expected).
    pub(crate) malformed: u64,
}

impl Collector {
    /// Takes the ring buffer (and, when `auto`, the frame-pointer process
    /// map) out of the loaded profiler.
    pub(crate) fn new(ebpf: &mut aya::Ebpf, auto: bool) -> Result<Collector, MapError> {
        let missing = |name: &str| MapError::InvalidName { name: name.into() };
        let ring = RingBuf::try_from(
            ebpf.take_map(SAMPLES_RING)
                .ok_or_else(|| missing(SAMPLES_RING))?,
        )?;
        let fp_tgids = if auto {
            Some(BpfHashMap::try_from(
                ebpf.take_map(FP_TGIDS_MAP)
                    .ok_or_else(|| missing(FP_TGIDS_MAP))?,
            )?)
        } else {
            None
        };
        Ok(Collector {
            ring,
            fp_tgids,
            checked: HashSet::new(),
            unwinder: DwarfUnwinder::new(),
            counts: HashMap::new(),
            malformed: 0,
        })
    }

    /// Unwinds and counts every sample waiting in the ring buffer.
    pub(crate) fn drain(&mut self) {
        let mut new_tgids = Vec::new();
        while let Some(item) = self.ring.next() {
            let Some(sample) = as_sample(&item) else {
                self.malformed += 1;
                continue;
            };
            let user = self.unwinder.unwind(sample);
            let key = UnwoundKey {
                tgid: sample.tgid,
                comm: sample.comm,
                kernel_stack: sample.kernel_stack,
                user,
            };
            *self.counts.entry(key).or_default() += 1;
            if self.fp_tgids.is_some() && !self.checked.contains(&sample.tgid) {
                new_tgids.push(sample.tgid);
            }
        }
        for tgid in new_tgids {
            self.check_frame_pointers(tgid);
        }
    }

    /// In auto mode, the first sample of a process decides: a program that
    /// keeps frame pointers is walked by the kernel from now on.
    fn check_frame_pointers(&mut self, tgid: u32) {
        let Some(map) = self.fp_tgids.as_mut() else {
            return;
        };
        if !self.checked.insert(tgid) || !process_has_frame_pointers(tgid) {
            return;
        }
        if let Err(e) = map.insert(tgid, 1, 0) {
            tracing::debug!(tgid, "marking frame pointers: {e}");
        }
    }
}

/// The sample a ring buffer record holds, when it is one.
fn as_sample(bytes: &[u8]) -> Option<&StackSample> {
    let aligned = bytes.as_ptr().align_offset(align_of::<StackSample>()) == 0;
    (bytes.len() >= size_of::<StackSample>() && aligned).then(|| {
        // SAFETY: long enough, aligned, and every bit pattern is a valid
        // StackSample (integers and byte arrays).
        unsafe { &*bytes.as_ptr().cast::<StackSample>() }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpath_common::profile::STACK_SAMPLE_HEADER;

    #[test]
    fn header_size_matches_the_layout() {
        assert_eq!(
            size_of::<StackSample>(),
            STACK_SAMPLE_HEADER + hotpath_common::profile::USER_STACK_BYTES
        );
    }

    #[test]
    fn short_records_are_not_samples() {
        let buf = [0u64; 4];
        let bytes: &[u8] =
            // SAFETY: viewing u64s as bytes.
            unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), 32) };
        assert!(as_sample(bytes).is_none());
        let big = vec![0u64; size_of::<StackSample>() / 8];
        // SAFETY: viewing u64s as bytes.
        let bytes: &[u8] =
            unsafe { std::slice::from_raw_parts(big.as_ptr().cast(), size_of::<StackSample>()) };
        assert!(as_sample(bytes).is_some());
    }
}
