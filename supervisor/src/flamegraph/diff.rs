//! Differential flame graphs: a recording compared with an earlier one
//! (`--diff BEFORE.folded`, "what changed after the deploy"), with
//! inferno's differential folding. The earlier recording is scaled to the
//! same total, so the colours show a shift of share, not of duration: red
//! where a stack grew, blue where it shrank.

use std::path::{Path, PathBuf};

use inferno::differential;

use super::folded::FoldedLines;

/// Why the earlier recording cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DiffError {
    /// It cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `frame;frame count`.
    #[error("{path}:{line}:1: not a folded stack (`frame;frame;... count`): {text}")]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// The line, escaped and cut.
        text: String,
    },
    /// It has no stack.
    #[error("{0}: no stacks in the file")]
    Empty(PathBuf),
}

/// Reads and checks the earlier recording (the folded text `--folded`
/// writes): every non-empty line must be a folded stack.
pub(crate) fn read_before(path: &Path) -> Result<FoldedLines, DiffError> {
    let bytes = std::fs::read(path).map_err(|source| DiffError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut lines = FoldedLines::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (stack, count) = parsers::parse_folded_line(line).ok_or_else(|| DiffError::Line {
            path: path.to_owned(),
            line: i + 1,
            text: String::from_utf8_lossy(&line[..line.len().min(120)])
                .escape_debug()
                .to_string(),
        })?;
        lines.push((String::from_utf8_lossy(stack).into_owned(), count));
    }
    if lines.is_empty() {
        return Err(DiffError::Empty(path.to_owned()));
    }
    Ok(lines)
}

/// The differential folded lines (`stack before after`, `before` scaled
/// to the total of `after`) of two recordings.
pub(crate) fn differential(
    before: &FoldedLines,
    after: &FoldedLines,
) -> std::io::Result<Vec<String>> {
    let text = |lines: &FoldedLines| super::folded::to_text(lines).into_bytes();
    let opts = differential::Options {
        normalize: true,
        ..differential::Options::default()
    };
    let mut out = Vec::new();
    differential::from_readers(opts, &text(before)[..], &text(after)[..], &mut out)?;
    let mut lines: Vec<String> = String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    Ok(lines)
}

/// Functions whose share as the innermost frame changed most, with the
/// change in percentage points (after minus before), largest change first.
pub(crate) fn biggest_changes(
    before: &FoldedLines,
    after: &FoldedLines,
    n: usize,
) -> Vec<(String, f64)> {
    let shares = |lines: &FoldedLines| {
        let total = lines.iter().map(|(_, c)| c).sum::<u64>().max(1) as f64;
        let mut m = std::collections::HashMap::<String, f64>::new();
        for (stack, count) in lines {
            let leaf = stack.rsplit(';').next().unwrap_or(stack);
            *m.entry(leaf.to_owned()).or_default() += 100.0 * *count as f64 / total;
        }
        m
    };
    let (b, a) = (shares(before), shares(after));
    let mut changes: Vec<(String, f64)> = a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|f| {
            let d = a.get(f).unwrap_or(&0.0) - b.get(f).unwrap_or(&0.0);
            (f.clone(), d)
        })
        .filter(|(_, d)| d.abs() >= 0.05)
        .collect();
    changes.sort_by(|x, y| y.1.abs().total_cmp(&x.1.abs()).then_with(|| x.0.cmp(&y.0)));
    changes.truncate(n);
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[(&str, u64)]) -> FoldedLines {
        v.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    }

    #[test]
    fn differential_lines_carry_both_counts_scaled() {
        let before = lines(&[("app;main;a", 50), ("app;main;b", 50)]);
        let after = lines(&[("app;main;a", 180), ("app;main;b", 20)]);
        let diff = differential(&before, &after).unwrap();
        // before is scaled to after's total of 200: 100 and 100.
        assert!(diff.contains(&"app;main;a 100 180".to_owned()), "{diff:?}");
        assert!(diff.contains(&"app;main;b 100 20".to_owned()), "{diff:?}");
        let changes = biggest_changes(&before, &after, 5);
        assert_eq!(changes[0].0, "a");
        assert!((changes[0].1 - 40.0).abs() < 1e-9, "{changes:?}");
        assert!((changes[1].1 + 40.0).abs() < 1e-9, "{changes:?}");
    }

    #[test]
    fn a_bad_line_is_named_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("before.folded");
        std::fs::write(&path, "app;main 3\n\nnot folded\n").unwrap();
        let err = read_before(&path).unwrap_err().to_string();
        assert!(err.contains("before.folded:3:1"), "{err}");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(read_before(&path), Err(DiffError::Empty(_))));
        std::fs::write(&path, "app;main 3\r\n").unwrap();
        assert_eq!(read_before(&path).unwrap(), lines(&[("app;main", 3)]));
        assert!(matches!(
            read_before(&dir.path().join("missing")),
            Err(DiffError::Read { .. })
        ));
    }
}
