//! Shell-style glob patterns for the `glob` operator: `*` (any run of
//! characters, `/` included), `?` (one character), `[abc]`, `[a-z]`, `[!x]`,
//! and `\` to match the next character literally.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Glob {
    toks: Box<[Tok]>,
}

/// Why a pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GlobError {
    /// `[` without `]`.
    #[error("unclosed `[` in glob pattern")]
    UnclosedClass,
    /// `\` at the end.
    #[error("glob pattern ends with `\\`")]
    TrailingEscape,
}

impl Glob {
    /// Compiles `pattern`.
    pub(crate) fn new(pattern: &str) -> Result<Glob, GlobError> {
        let mut toks = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            let tok = match c {
                '*' => {
                    if toks.last() == Some(&Tok::Star) {
                        continue;
                    }
                    Tok::Star
                }
                '?' => Tok::Any,
                '\\' => Tok::Lit(chars.next().ok_or(GlobError::TrailingEscape)?),
                '[' => class(&mut chars)?,
                c => Tok::Lit(c),
            };
            toks.push(tok);
        }
        Ok(Glob { toks: toks.into() })
    }

    /// Whether `text` matches the whole pattern.
    pub(crate) fn matches(&self, text: &str) -> bool {
        if text.is_ascii() {
            run(&self.toks, text.as_bytes())
        } else {
            run(&self.toks, &text.chars().collect::<Vec<char>>())
        }
    }
}

/// Matches `text` against `toks` with backtracking to the last `*` only:
/// linear in practice, O(n·m) at worst, never exponential.
fn run<C: Copy + Into<char>>(toks: &[Tok], text: &[C]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(tok) if tok_matches(tok, text[t].into()) => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Star)
}

fn tok_matches(tok: &Tok, c: char) -> bool {
    match tok {
        Tok::Lit(l) => *l == c,
        Tok::Any => true,
        Tok::Star => false,
        Tok::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
        }
    }
}

/// After `[`: the class up to `]`. A `]` right after `[` or `[!` is literal.
fn class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Tok, GlobError> {
    let negated = chars.next_if(|c| *c == '!' || *c == '^').is_some();
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = chars.next().ok_or(GlobError::UnclosedClass)?;
        if c == ']' && !first {
            return Ok(Tok::Class { negated, ranges });
        }
        first = false;
        let lo = if c == '\\' {
            chars.next().ok_or(GlobError::UnclosedClass)?
        } else {
            c
        };
        let mut ahead = chars.clone();
        if ahead.next() == Some('-')
            && let Some(hi) = ahead.next().filter(|h| *h != ']')
        {
            chars.next();
            chars.next();
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().matches(t)
    }

    #[test]
    fn wildcards() {
        assert!(m("/etc/*", "/etc/shadow"));
        assert!(m("/etc/*", "/etc/"));
        assert!(m("*", ""));
        assert!(!m("/etc/*", "/usr/etc/x"));
        assert!(m("/home/*/.ssh/id_*", "/home/bob/.ssh/id_rsa"));
        assert!(m("*.ssh/*", "/root/.ssh/authorized_keys"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a**b", "axxb"));
        assert!(m("*a*a*a*a*b", &format!("{}b", "a".repeat(30))));
        assert!(m("caf?", "caf\u{e9}"));
        assert!(!m("*a*a*a*a*b", &"a".repeat(40)));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("/dev/sd[a-c]", "/dev/sdb"));
        assert!(!m("/dev/sd[a-c]", "/dev/sdd"));
        assert!(m("x[!0-9]", "xa"));
        assert!(!m("x[!0-9]", "x5"));
        assert!(m("[]]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "x"));
        assert_eq!(Glob::new("[abc"), Err(GlobError::UnclosedClass));
        assert_eq!(Glob::new("abc\\"), Err(GlobError::TrailingEscape));
    }
}
