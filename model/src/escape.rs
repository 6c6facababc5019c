//! Control bytes in text a traced process supplied (argv, paths, `comm`) are
//! escaped wherever that text becomes a value: a newline is `\n`, a tab `\t`,
//! an escape `\x1b`, DEL `\x7f`. A string carried whole can then never start
//! a new line or a terminal escape sequence in any output (console, JSON
//! lines, alerts, OTLP). Backslashes are kept as they are, as the tools print
//! them (execsnoop `-q` writes `\n` for a newline in an argument).

use std::borrow::Cow;

/// Whether `c` is written escaped: C0 controls, DEL and C1 controls.
fn is_control(c: char) -> bool {
    c.is_control()
}

/// `s` with every control character escaped; borrowed when there is none.
pub fn escape_str(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_control(c) => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Bytes as text: invalid UTF-8 replaced (U+FFFD), control characters
/// escaped. Borrowed in the common case of clean UTF-8.
pub fn escape_lossy(b: &[u8]) -> Cow<'_, str> {
    // Fast path: printable ASCII needs neither decoding nor escaping. The
    // check does not stop at the first miss, so it runs as a vector loop,
    // and it is the only pass over the bytes (this runs on every argument
    // list and process name a tool prints).
    if b.iter().fold(true, |ok, &c| ok & (0x20..0x7f).contains(&c)) {
        // SAFETY: every byte is printable ASCII, which is valid UTF-8.
        return Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(b) });
    }
    match String::from_utf8_lossy(b) {
        Cow::Borrowed(s) => escape_str(s),
        Cow::Owned(s) => Cow::Owned(escape_str(&s).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_lossy(b"plain /tmp/x"), "plain /tmp/x");
        assert_eq!(escape_lossy(b"a\nb\tc\x1b[31m"), "a\\nb\\tc\\x1b[31m");
        assert_eq!(escape_lossy(b"caf\xc3\xa9 \x7f"), "caf\u{e9} \\x7f");
        assert_eq!(escape_lossy(b"bad \xff utf8"), "bad \u{fffd} utf8");
        assert_eq!(escape_str("c1 \u{9b}x"), "c1 \\x9bx");
        assert_eq!(escape_lossy(b"back\\slash"), "back\\slash");
    }

    #[test]
    fn the_fast_path_borrows_printable_ascii_only() {
        let long: Vec<u8> = (0x20u8..0x7f).cycle().take(200).collect();
        assert!(matches!(escape_lossy(&long), Cow::Borrowed(s) if s.as_bytes() == long));
        for bad in [0x1f, 0x7f, 0x80, 0xc2, 0xff] {
            let mut b = long.clone();
            b[150] = bad;
            let out = escape_lossy(&b);
            assert!(matches!(out, Cow::Owned(_)), "{bad:#x}");
            assert!(!out.chars().any(char::is_control), "{out:?}");
        }
    }

    #[test]
    fn escaped_text_has_no_control_characters() {
        let all: Vec<u8> = (0u8..=255).collect();
        let out = escape_lossy(&all);
        assert!(!out.chars().any(char::is_control), "{out:?}");
    }
}
