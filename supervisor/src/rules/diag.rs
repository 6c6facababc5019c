//! Diagnostics: a [`RuleError`] names the file, line and column of what is
//! wrong and carries the offending source line with the text underlined,
//! the way `eunomia rules check` prints it (the one diagnostic shape,
//! [`crate::textpos::Diagnostic`], shared with the tools manifest); [`Src`]
//! maps offsets inside a rule's strings to offsets in the file.

use std::{fmt, sync::Arc};

use super::syntax::Span;
pub(crate) use crate::textpos::{Diagnostic as RuleError, SourceFile};

/// A string value inside a rules file (a condition, an output template) and
/// how byte offsets inside the string map to offsets in the file.
#[derive(Debug, Clone)]
pub(crate) struct Src {
    /// The file.
    pub(crate) file: Arc<SourceFile>,
    /// Byte range of the TOML value, quotes included.
    pub(crate) value: std::ops::Range<usize>,
    /// The file offset of the string's first byte when the string's bytes
    /// are the file's bytes (no escapes); `None` maps every offset to the
    /// start of the value.
    pub(crate) base: Option<usize>,
}

impl Src {
    /// The value at `value` of `file`, holding `content` once unescaped.
    pub(crate) fn new(file: Arc<SourceFile>, value: std::ops::Range<usize>, content: &str) -> Src {
        let base = raw_base(&file.text, value.clone(), content);
        Src { file, value, base }
    }

    /// An error at `span` of the string.
    pub(crate) fn error(&self, span: Span, message: impl Into<String>) -> RuleError {
        let (start, end) = match self.base {
            Some(b) => (b + span.start, b + span.end),
            None => (self.value.start, self.value.end),
        };
        RuleError::at(&self.file, start..end, message)
    }

    /// An error underlining the whole value.
    pub(crate) fn error_whole(&self, message: impl Into<String>) -> RuleError {
        RuleError::at(&self.file, self.value.clone(), message)
    }
}

/// Where `content` starts in the file when the TOML value at `value` holds
/// it verbatim (after the opening quotes and, for multi-line strings, the
/// newline TOML trims right after them).
fn raw_base(text: &str, value: std::ops::Range<usize>, content: &str) -> Option<usize> {
    let raw = text.get(value.clone())?;
    for quote in ["'''", "\"\"\"", "'", "\""] {
        if raw.len() < 2 * quote.len() || !raw.starts_with(quote) || !raw.ends_with(quote) {
            continue;
        }
        let mut start = quote.len();
        if quote.len() == 3 {
            let after = &raw[start..];
            start += if after.starts_with("\r\n") {
                2
            } else {
                usize::from(after.starts_with('\n'))
            };
        }
        let inner = raw.get(start..raw.len() - quote.len())?;
        return (inner == content).then_some(value.start + start);
    }
    None
}

/// Every error found while loading rules (loading goes on after an error to
/// report as many as it can).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleErrors(pub(crate) Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, e) in self.0.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            path: "r.toml".into(),
            text: text.into(),
        })
    }

    #[test]
    fn line_col_and_underline() {
        let f = file("a = 1\ncondition = 'proc.comm = x'\n");
        let e = RuleError::at(&f, 19..28, "bad");
        assert_eq!((e.line, e.col, e.width), (2, 14, 9));
        assert_eq!(
            e.to_string(),
            "r.toml:2:14: bad\n    condition = 'proc.comm = x'\n                 ^^^^^^^^^"
        );
    }

    #[test]
    fn literal_and_multiline_strings_map_offsets() {
        let text = "c = 'abc'\nd = '''\nx and\ny'''\ne = \"a\\\"b\"\n";
        let f = file(text);
        let s = Src::new(f.clone(), 4..9, "abc");
        assert_eq!(s.base, Some(5));
        let s = Src::new(f.clone(), 14..28, "x and\ny");
        assert_eq!(s.base, Some(18));
        let e = s.error(Span::new(6, 7), "here");
        assert_eq!((e.line, e.col), (4, 1));
        // escapes: positions fall back to the whole value
        let s = Src::new(f, 33..39, "a\"b");
        assert_eq!(s.base, None);
        assert_eq!(s.error(Span::new(2, 3), "x").col, 5);
    }
}
