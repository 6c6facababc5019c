//! The pattern (template) of a message: its words with the variable parts
//! masked as `<*>` — words with digits (numbers, ids, addresses, times,
//! hex), the values of `key=value` words that have digits, quoted strings —
//! so `user 42 logged in from 10.0.0.1` and `user 7 logged in from
//! 10.0.0.2` are one pattern, `user <*> logged in from <*>`. Runs of masks
//! merge; at most [`MAX_WORDS`] words and [`MAX_LEN`] bytes are kept, so a
//! pattern is a bounded metric label. Control bytes are escaped.

/// Words of a message that make its pattern.
pub const MAX_WORDS: usize = 24;
/// Bytes of a pattern at most.
pub const MAX_LEN: usize = 160;
/// The mask of a variable part.
pub const MASK: &str = "<*>";

/// A message's pattern and a stable hash of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    /// The template, e.g. `user <*> logged in from <*>`.
    pub text: String,
    /// FNV-1a of the template.
    pub hash: u64,
}

/// The pattern of `message`.
pub fn pattern_of(message: &[u8]) -> Pattern {
    let text = crate::escape::escape_lossy(&message[..message.len().min(4 * MAX_LEN)]);
    let mut out = String::with_capacity(text.len().min(MAX_LEN));
    let mut last_masked = false;
    for word in text.split_ascii_whitespace().take(MAX_WORDS) {
        let masked = mask_word(word);
        let is_mask = masked == MASK;
        if is_mask && last_masked {
            continue;
        }
        last_masked = is_mask;
        if out.len() + masked.len() + 1 > MAX_LEN {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&masked);
    }
    let hash = fnv1a(out.as_bytes());
    Pattern { text: out, hash }
}

fn mask_word(word: &str) -> std::borrow::Cow<'_, str> {
    let has_digit = |s: &str| s.bytes().any(|b| b.is_ascii_digit());
    if word.starts_with('"') || word.starts_with('\'') {
        return MASK.into();
    }
    if let Some((key, value)) = word.split_once('=')
        && !key.is_empty()
        && !has_digit(key)
    {
        return match has_digit(value) || value.starts_with('"') {
            true => format!("{key}={MASK}").into(),
            false => word.into(),
        };
    }
    match has_digit(word) {
        true => MASK.into(),
        false => word.into(),
    }
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, c| {
        (h ^ u64::from(*c)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_parts_are_masked() {
        let a = pattern_of(b"user 42 logged in from 10.0.0.1");
        let b = pattern_of(b"user 7 logged in from 10.0.0.2");
        assert_eq!(a.text, "user <*> logged in from <*>");
        assert_eq!(a, b);
        assert_eq!(
            pattern_of(b"GET /api/v1/items/123 took 12ms id=9 status=ok").text,
            "GET <*> took <*> id=<*> status=ok"
        );
        assert_eq!(pattern_of(b"  a   \"q x\" 1 2 3").text, "a <*> x\" <*>");
        assert_eq!(pattern_of(b"").text, "");
        assert_eq!(
            pattern_of(b"bell\x07 x").text,
            "<*> x",
            "escaped controls have digits"
        );
    }

    #[test]
    fn patterns_are_bounded() {
        let long = "word ".repeat(1000);
        let p = pattern_of(long.as_bytes());
        assert!(p.text.len() <= MAX_LEN);
        assert_eq!(p.text.split(' ').count(), MAX_WORDS);
        let huge = "x".repeat(10_000);
        assert!(pattern_of(huge.as_bytes()).text.is_empty());
    }
}
