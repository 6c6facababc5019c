//! [`SmallStr`]: an immutable string stored inline up to 22 bytes and on the
//! heap beyond, so the common `comm` (at most 15 bytes) costs no allocation.

use std::fmt;
use std::ops::Deref;

const INLINE: usize = 22;

/// An immutable UTF-8 string, inline when short (≤ 22 bytes), boxed otherwise.
///
/// Used for process names (`comm`), which the kernel caps at 15 bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SmallStr(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<str>),
}

impl SmallStr {
    /// Builds a `SmallStr` from a string slice.
    pub fn new(s: &str) -> Self {
        if s.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            SmallStr(Repr::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            SmallStr(Repr::Heap(s.into()))
        }
    }

    /// Builds a `SmallStr` from bytes, replacing invalid UTF-8 with U+FFFD
    /// and escaping control bytes ([`crate::escape`]).
    pub fn from_utf8_lossy(b: &[u8]) -> Self {
        Self::new(&crate::escape::escape_lossy(b))
    }

    /// The string slice.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, buf } => {
                // Only ever filled from a &str, cut at its length.
                std::str::from_utf8(&buf[..*len as usize]).unwrap_or_default()
            }
            Repr::Heap(s) => s,
        }
    }
}

impl Deref for SmallStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for SmallStr {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl PartialEq<str> for SmallStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SmallStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for SmallStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SmallStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for SmallStr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap() {
        assert_eq!(SmallStr::new("bash").as_str(), "bash");
        let long = "x".repeat(40);
        assert_eq!(SmallStr::new(&long).as_str(), long);
        assert_eq!(std::mem::size_of::<SmallStr>(), 24);
        assert_eq!(SmallStr::from_utf8_lossy(b"a\xffb").as_str(), "a\u{fffd}b");
    }
}
