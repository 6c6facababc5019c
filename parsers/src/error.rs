//! Errors: [`ParseError`] for a line that could not be parsed (the caller
//! counts and skips it) and [`SpecError`] for an invalid [`GenericSpec`](crate::GenericSpec).

use std::borrow::Cow;

use thiserror::Error;

/// The longest excerpt of an offending line kept in a [`ParseError`], in bytes.
pub const MAX_ERROR_LINE: usize = 200;

/// A line a parser could not turn into records.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{tool}: {what}: {line:?}")]
pub struct ParseError {
    /// The tool whose output it was.
    pub tool: Box<str>,
    /// What was wrong (e.g. "expected a pid").
    pub what: Cow<'static, str>,
    /// The offending line: lossy UTF-8, at most [`MAX_ERROR_LINE`] bytes
    /// (cut on a character boundary, with `…` appended when cut).
    pub line: String,
}

impl ParseError {
    /// A parse error for `line` of `tool`.
    pub fn new(tool: &str, what: impl Into<Cow<'static, str>>, line: &[u8]) -> Self {
        ParseError {
            tool: tool.into(),
            what: what.into(),
            line: excerpt(line),
        }
    }
}

/// A lossy, truncated copy of `line`, control bytes escaped (it is logged).
fn excerpt(line: &[u8]) -> String {
    let cut = line.len() > MAX_ERROR_LINE;
    let head = &line[..line.len().min(MAX_ERROR_LINE)];
    let mut s = crate::escape::escape_lossy(head).into_owned();
    if cut {
        // a multi-byte char cut in half became U+FFFD; fine for a message
        s.push('…');
    }
    s
}

/// Why a [`GenericSpec`](crate::GenericSpec) is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    /// A column type that does not exist.
    #[error("column `{column}`: unknown type `{ty}` (expected one of {expected})")]
    UnknownType {
        /// The column.
        column: String,
        /// The type given.
        ty: String,
        /// The accepted types.
        expected: &'static str,
    },
    /// A fixed-width column without a width that is not the last one.
    #[error("column `{column}`: format `fixed` needs a width for every column but the last")]
    MissingWidth {
        /// The column.
        column: String,
    },
    /// A width on a column of a format that has none, or a zero width.
    #[error("column `{column}`: {why}")]
    BadWidth {
        /// The column.
        column: String,
        /// Why.
        why: &'static str,
    },
    /// A rest-of-line column that is not the last.
    #[error(
        "column `{column}`: type `rest` takes the rest of the line and must be the last column"
    )]
    RestNotLast {
        /// The column.
        column: String,
    },
    /// A column name that is not a valid field name, or used twice.
    #[error("column `{column}`: {why}")]
    BadName {
        /// The column.
        column: String,
        /// Why.
        why: &'static str,
    },
    /// A `proc.*` column with a type that does not fit it.
    #[error("column `{column}`: must have type {expected}")]
    ProcType {
        /// The column.
        column: String,
        /// The type it needs.
        expected: &'static str,
    },
    /// A format-level problem (missing columns, columns where none belong, ...).
    #[error("format `{format}`: {why}")]
    Format {
        /// The format.
        format: &'static str,
        /// Why.
        why: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_and_lossy() {
        let long = vec![b'a'; 1000];
        let e = ParseError::new("t", "bad", &long);
        assert_eq!(e.line.chars().count(), MAX_ERROR_LINE + 1);
        let e = ParseError::new("t", "bad", b"x\xffy");
        assert_eq!(e.line, "x\u{fffd}y");
        assert!(e.to_string().contains("bad"));
    }
}
