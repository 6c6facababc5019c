//! Renders folded stacks as an interactive SVG flame graph with inferno.

use std::io::Write;

use inferno::flamegraph::{self, Options};

#[cfg(test)]
use super::folded::FoldedLines;

#[cfg(test)]
/// Writes the SVG flame graph of `lines` to `out`.
pub(crate) fn svg(
    lines: &FoldedLines,
    title: &str,
    count_name: &str,
    out: impl Write,
) -> std::io::Result<()> {
    let text: Vec<String> = lines.iter().map(|(s, n)| format!("{s} {n}")).collect();
    svg_of_text(&text, title, count_name, out)
}

/// Writes the SVG flame graph of folded text lines to `out`: `stack count`,
/// or `stack before after` for a differential graph (coloured by change).
pub(crate) fn svg_of_text(
    text: &[String],
    title: &str,
    count_name: &str,
    out: impl Write,
) -> std::io::Result<()> {
    let mut opts = Options::default();
    opts.title = title.to_owned();
    opts.count_name = count_name.to_owned();
    flamegraph::from_lines(&mut opts, text.iter().map(String::as_str), out)
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_valid_svg_with_frame_names() {
        let lines = vec![
            ("app;main;hot_spin".to_owned(), 90),
            ("app;main;idle".to_owned(), 10),
        ];
        let mut out = Vec::new();
        svg(&lines, "test", "samples", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("<?xml"), "{}", &text[..50]);
        assert!(text.contains("<svg"));
        assert!(text.contains("hot_spin"));
        assert!(text.trim_end().ends_with("</svg>"));
    }
}
