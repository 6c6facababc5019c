//! Folds sampled stacks into the `frame;frame;frame count` lines that
//! flame-graph tools read (root first: command, user frames, then kernel
//! frames marked `_[k]`), and summarizes them.

use std::collections::HashMap;

use super::{sampler::RawProfile, symbolize::Symbolizer};

/// Folded stacks with their counts, largest first.
pub(crate) type FoldedLines = Vec<(String, u64)>;

/// Symbolizes every sampled stack and folds equal stacks together.
pub(crate) fn fold(profile: &RawProfile, sym: &mut Symbolizer) -> FoldedLines {
    let mut folded: HashMap<String, u64> = HashMap::new();
    for (key, count) in &profile.samples {
        let user = stack(profile, key.user_stack).map(for_lookup);
        let line = line(
            profile,
            sym,
            key.tgid,
            &key.comm,
            user.as_deref(),
            key.kernel_stack,
        );
        *folded.entry(line).or_default() += count;
    }
    for (key, count) in &profile.unwound {
        let line = line(
            profile,
            sym,
            key.tgid,
            &key.comm,
            Some(&key.user),
            key.kernel_stack,
        );
        *folded.entry(line).or_default() += count;
    }
    let mut lines: FoldedLines = folded.into_iter().collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    lines
}

/// One folded line: the command, the user frames (root first), then the
/// kernel frames marked `_[k]`.
fn line(
    profile: &RawProfile,
    sym: &mut Symbolizer,
    tgid: u32,
    comm_raw: &[u8; 16],
    user: Option<&[u64]>,
    kernel_stack: i32,
) -> String {
    let mut frames = vec![comm(comm_raw)];
    if let Some(ips) = user.filter(|ips| !ips.is_empty()) {
        frames.extend(sym.user_frames(tgid, ips).into_iter().rev());
    }
    if let Some(ips) = stack(profile, kernel_stack) {
        let kernel = sym.kernel_frames(ips);
        frames.extend(kernel.into_iter().rev().map(|f| format!("{f}_[k]")));
    }
    frames
        .iter()
        .map(|f| clean(f))
        .collect::<Vec<_>>()
        .join(";")
}

/// Addresses to look names up at: the innermost as sampled, the others
/// (return addresses) minus one, so a call that ends its function is named
/// after its caller, not after the function that follows.
fn for_lookup(ips: &[u64]) -> Vec<u64> {
    ips.iter()
        .enumerate()
        .map(|(i, &ip)| if i == 0 { ip } else { ip.saturating_sub(1) })
        .collect()
}

/// The folded lines as text, one `stack count` per line.
pub(crate) fn to_text(lines: &FoldedLines) -> String {
    lines.iter().map(|(s, n)| format!("{s} {n}\n")).collect()
}

/// What a flame graph shows, in numbers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    /// Samples in all.
    pub(crate) samples: u64,
    /// Distinct folded stacks.
    pub(crate) distinct: usize,
    /// Functions by samples in which they were the innermost frame, largest first.
    pub(crate) top_self: Vec<(String, u64)>,
}

/// Totals and the `n` functions with the most self samples.
pub(crate) fn summarize(lines: &FoldedLines, n: usize) -> Summary {
    let mut leaf: HashMap<&str, u64> = HashMap::new();
    for (stack, count) in lines {
        let name = stack.rsplit(';').next().unwrap_or(stack);
        *leaf.entry(name).or_default() += count;
    }
    let mut top: Vec<(String, u64)> = leaf.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(n);
    Summary {
        samples: lines.iter().map(|(_, n)| n).sum(),
        distinct: lines.len(),
        top_self: top,
    }
}

fn stack(profile: &RawProfile, id: i32) -> Option<&[u64]> {
    u32::try_from(id)
        .ok()
        .and_then(|id| profile.stacks.get(&id))
        .map(Vec::as_slice)
}

/// The command name of a sample, up to its first NUL.
fn comm(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// A frame name safe inside a folded line (no `;`, no line breaks).
fn clean(frame: &str) -> String {
    frame.replace(';', ":").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_leaf_frames() {
        let lines = vec![
            ("app;main;spin".to_owned(), 90),
            ("app;main;other".to_owned(), 5),
            ("app;main;spin".to_owned(), 5),
        ];
        let s = summarize(&lines, 1);
        assert_eq!(s.samples, 100);
        assert_eq!(s.distinct, 3);
        assert_eq!(s.top_self, vec![("spin".to_owned(), 95)]);
    }

    #[test]
    fn frames_are_cleaned_and_comm_trimmed() {
        assert_eq!(clean("a;b\nc"), "a:b c");
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(b"bash");
        assert_eq!(comm(&raw), "bash");
    }

    #[test]
    fn folded_text_round_trips_through_the_parser() {
        let lines = vec![
            ("app;main;<T as Foo>::bar baz".to_owned(), 42),
            ("app;[libc.so.6];read_zero_[k]".to_owned(), 7),
        ];
        let text = to_text(&lines);
        let parsed: FoldedLines = text
            .lines()
            .map(|l| {
                let (stack, n) = parsers::parse_folded_line(l.as_bytes()).expect("parses");
                (String::from_utf8(stack.to_vec()).unwrap(), n)
            })
            .collect();
        assert_eq!(parsed, lines);
    }

    #[test]
    fn return_addresses_are_looked_up_one_byte_back() {
        assert_eq!(for_lookup(&[100, 200, 300]), vec![100, 199, 299]);
        assert!(for_lookup(&[]).is_empty());
    }

    #[test]
    fn text_is_one_line_per_stack() {
        let lines = vec![("a;b".to_owned(), 3), ("a;c".to_owned(), 1)];
        assert_eq!(to_text(&lines), "a;b 3\na;c 1\n");
    }
}
