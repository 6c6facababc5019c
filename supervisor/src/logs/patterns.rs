//! Message counts per container, level and pattern, bounded: a container
//! has at most `max` patterns; lines of further patterns count under the
//! pattern `other` (and the overflow is counted). Every line is counted,
//! also those the rate limit drops, so the counts are the container's own.

use std::collections::HashMap;

use parsers::logs::{Level, Pattern};

/// The pattern of lines beyond the bound.
pub(crate) const OTHER: &str = "other";

#[derive(Debug)]
struct Entry {
    text: Box<str>,
    /// Lines since the last [`PatternCounts::take`].
    new: u64,
}

/// One container's counts.
#[derive(Debug)]
pub struct PatternCounts {
    max: usize,
    entries: HashMap<(Level, u64), Entry>,
    overflow: HashMap<Level, u64>,
    /// Lines counted under `other` since the start.
    pub(crate) overflowed: u64,
}

impl PatternCounts {
    /// Counts of at most `max` patterns.
    pub fn new(max: usize) -> PatternCounts {
        PatternCounts {
            max,
            entries: HashMap::new(),
            overflow: HashMap::new(),
            overflowed: 0,
        }
    }

    /// Counts one line.
    pub fn count(&mut self, level: Level, pattern: &Pattern) {
        let key = (level, pattern.hash);
        if let Some(e) = self.entries.get_mut(&key) {
            e.new += 1;
            return;
        }
        if self.entries.len() < self.max {
            self.entries.insert(
                key,
                Entry {
                    text: pattern.text.as_str().into(),
                    new: 1,
                },
            );
            return;
        }
        *self.overflow.entry(level).or_default() += 1;
        self.overflowed += 1;
    }

    /// The counts since the last call, `(level, pattern, lines)`, non-zero
    /// ones only; the patterns stay known.
    pub(crate) fn take(&mut self) -> Vec<(Level, String, u64)> {
        let mut out: Vec<_> = self
            .entries
            .iter_mut()
            .filter(|(_, e)| e.new > 0)
            .map(|((level, _), e)| (*level, e.text.to_string(), std::mem::take(&mut e.new)))
            .collect();
        out.extend(
            self.overflow
                .drain()
                .filter(|(_, n)| *n > 0)
                .map(|(level, n)| (level, OTHER.to_owned(), n)),
        );
        out
    }

    /// Patterns known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use parsers::logs::pattern_of;

    use super::*;

    #[test]
    fn counts_are_bounded_with_an_overflow() {
        let mut c = PatternCounts::new(2);
        for line in ["a 1", "a 2", "b 1", "c", "d", "a 3"] {
            c.count(Level::Info, &pattern_of(line.as_bytes()));
        }
        c.count(Level::Error, &pattern_of(b"a 9"));
        let mut got = c.take();
        got.sort();
        assert_eq!(
            got,
            vec![
                (Level::Info, "a <*>".to_owned(), 3),
                (Level::Info, "b <*>".to_owned(), 1),
                (Level::Info, OTHER.to_owned(), 2),
                (Level::Error, OTHER.to_owned(), 1),
            ]
        );
        assert_eq!(c.overflowed, 3);
        assert!(c.take().is_empty());
        assert_eq!(c.len(), 2);
    }
}
