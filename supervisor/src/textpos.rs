//! Positions in text and the diagnostics that name them: byte offsets to
//! 1-based lines and columns, and [`Diagnostic`], the one error shape of
//! every input a user writes (rules, tools manifest): `file:line:col:
//! message`, then the offending line with the text underlined.

use std::{fmt, path::PathBuf};

/// The line starts of a text: [`LineIndex::line_col`] is then O(log n) plus
/// the length of the line (a manifest of thousands of entries loads in
/// linear time).
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes `text`.
    pub(crate) fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        LineIndex { text, starts }
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(offset)
}

/// A file's text, kept to turn byte offsets into lines and columns.
#[derive(Debug)]
pub struct SourceFile {
    /// Where it was read from.
    pub(crate) path: PathBuf,
    /// Its content.
    pub(crate) text: String,
}

/// An error in a file a user wrote, with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostic {
    /// The file.
    pub(crate) path: PathBuf,
    /// 1-based line; 0 when the error has no position (e.g. unreadable file).
    pub(crate) line: usize,
    /// 1-based column, in characters.
    pub(crate) col: usize,
    /// What is wrong.
    pub(crate) message: String,
    /// The source line, for the underline.
    pub(crate) line_text: String,
    /// How many characters to underline (at least 1 when positioned).
    pub(crate) width: usize,
}

impl Diagnostic {
    /// An error covering `range` of `file`.
    pub(crate) fn at(
        file: &SourceFile,
        range: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let text = &file.text;
        let start = floor_char(text, range.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |n| n + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |n| start + n);
        let (line, col) = line_col(text, start);
        let end = floor_char(text, range.end.clamp(start, line_end));
        let width = text[start..end].chars().count().max(1);
        Diagnostic {
            path: file.path.clone(),
            line,
            col,
            message: message.into(),
            line_text: text[line_start..line_end].trim_end_matches('\r').to_owned(),
            width,
        }
    }

    /// An error about `path` as a whole.
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.into(),
            line: 0,
            col: 0,
            message: message.into(),
            line_text: String::new(),
            width: 0,
        }
    }
}

/// The largest char boundary ≤ `i`.
fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: message`, then the line and a `^^^` underline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.path.display(), self.message);
        }
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.col,
            self.message
        )?;
        writeln!(f, "    {}", self.line_text)?;
        write!(
            f,
            "    {}{}",
            " ".repeat(self.col - 1),
            "^".repeat(self.width)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_char_columns() {
        let text = "ab\ncé d\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 6), (2, 3), "é is one column");
        assert_eq!(line_col(text, 99), (3, 1));
    }
}
