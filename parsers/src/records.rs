//! The model types the parsers emit, from the `model` crate.

pub(crate) use ::model::*;

/// Text from a tool's line: lossy UTF-8 with control bytes escaped.
pub(crate) fn lossy_box(b: &[u8]) -> Box<str> {
    ::model::escape::escape_lossy(b).into()
}
