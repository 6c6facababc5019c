//! nom primitives shared by every parser: numbers, printf-style padded and
//! fixed-width columns, `HH:MM:SS` times, and recognisers for the lines every
//! tool prints that carry no data (banners, blank lines, `Detaching...`).
//!
//! All parsers work on `&[u8]` (tools print raw bytes: paths and arguments
//! need not be UTF-8) with the light error type [`Fail`], which only names
//! what was expected, so the hot path never allocates for errors.

use nom::bytes::complete::{take_while, take_while1};
use nom::error::ErrorKind;
use nom::{IResult, Parser};

use crate::records::{Comm, ToolTime};

/// Parser input.
pub(crate) type In<'a> = &'a [u8];
/// Parser result with [`Fail`] errors.
pub(crate) type Res<'a, T> = IResult<In<'a>, T, Fail>;

/// A parse failure: what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fail(pub &'static str);

impl<'a> nom::error::ParseError<In<'a>> for Fail {
    fn from_error_kind(_input: In<'a>, _kind: ErrorKind) -> Self {
        Fail("unexpected input")
    }
    fn append(_input: In<'a>, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// The message of a nom error.
pub(crate) fn fail_message(e: nom::Err<Fail>) -> &'static str {
    match e {
        nom::Err::Error(f) | nom::Err::Failure(f) => f.0,
        nom::Err::Incomplete(_) => "incomplete line",
    }
}

/// A failure naming `what`.
pub(crate) fn fail<T>(what: &'static str) -> Result<T, nom::Err<Fail>> {
    Err(nom::Err::Error(Fail(what)))
}

/// Runs `p`, replacing its error with `what`.
pub(crate) fn expect<'a, O>(
    what: &'static str,
    mut p: impl Parser<In<'a>, Output = O, Error = Fail>,
) -> impl FnMut(In<'a>) -> Res<'a, O> {
    move |i| p.parse(i).map_err(|_| nom::Err::Error(Fail(what)))
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// One or more spaces/tabs.
pub(crate) fn ws(i: In<'_>) -> Res<'_, ()> {
    let (i, _) = expect("expected a space", take_while1(is_space)).parse(i)?;
    Ok((i, ()))
}

/// Zero or more spaces/tabs.
pub(crate) fn ws0(i: In<'_>) -> In<'_> {
    let n = i.iter().take_while(|b| is_space(**b)).count();
    &i[n..]
}

/// A run of non-blank bytes.
pub(crate) fn token(i: In<'_>) -> Res<'_, In<'_>> {
    expect("expected a column", take_while1(|b: u8| !is_space(b))).parse(i)
}

/// Decimal digits with an optional leading `-`, as i64 (no overflow panics).
pub(crate) fn int(i: In<'_>) -> Res<'_, i64> {
    let (neg, rest) = match i.first() {
        Some(b'-') => (true, &i[1..]),
        _ => (false, i),
    };
    let (rest, digits) = take_while1(|b: u8| b.is_ascii_digit()).parse(rest)?;
    let mut v: i64 = 0;
    for d in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(d - b'0')))
            .ok_or(nom::Err::Error(Fail("number out of range")))?;
    }
    Ok((rest, if neg { -v } else { v }))
}

/// Unsigned decimal as u64.
pub(crate) fn uint(i: In<'_>) -> Res<'_, u64> {
    let (rest, digits) = take_while1(|b: u8| b.is_ascii_digit()).parse(i)?;
    let mut v: u64 = 0;
    for d in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(nom::Err::Error(Fail("number out of range")))?;
    }
    Ok((rest, v))
}

/// Unsigned decimal as u32.
pub(crate) fn u32_(i: In<'_>) -> Res<'_, u32> {
    let (rest, v) = uint(i)?;
    let v = u32::try_from(v).map_err(|_| nom::Err::Error(Fail("number out of range")))?;
    Ok((rest, v))
}

/// A pid-like column: u32, naming `what` on failure.
pub(crate) fn id(what: &'static str) -> impl FnMut(In<'_>) -> Res<'_, u32> {
    move |i: In<'_>| u32_(i).map_err(|_| nom::Err::Error(Fail(what)))
}

/// A decimal with optional sign and fraction (`-1.25`, `3`, `0.005`).
pub(crate) fn decimal(i: In<'_>) -> Res<'_, f64> {
    let (neg, rest) = match i.first() {
        Some(b'-') => (true, &i[1..]),
        _ => (false, i),
    };
    let (rest, whole) = take_while1(|b: u8| b.is_ascii_digit()).parse(rest)?;
    let (rest, frac) = match rest.first() {
        Some(b'.') => take_while(|b: u8| b.is_ascii_digit()).parse(&rest[1..])?,
        _ => (rest, &rest[..0]),
    };
    let mut v = 0f64;
    for d in whole {
        v = v * 10.0 + f64::from(d - b'0');
    }
    let mut scale = 1f64;
    let mut f = 0f64;
    for d in frac.iter().take(18) {
        f = f * 10.0 + f64::from(d - b'0');
        scale *= 10.0;
    }
    let v = v + f / scale;
    Ok((rest, if neg { -v } else { v }))
}

/// A decimal number of `unit_ns` units as a duration in nanoseconds
/// (negative values clamp to 0).
pub(crate) fn duration(unit_ns: f64) -> impl FnMut(In<'_>) -> Res<'_, u64> {
    move |i| {
        let (i, v) = decimal(i)?;
        Ok((i, to_ns(v, unit_ns)))
    }
}

/// `v` units of `unit_ns` nanoseconds, rounded, saturating.
pub(crate) fn to_ns(v: f64, unit_ns: f64) -> u64 {
    let ns = (v * unit_ns).round();
    if ns.is_nan() || ns <= 0.0 {
        0
    } else if ns >= u64::MAX as f64 {
        u64::MAX
    } else {
        ns as u64
    }
}

/// Runs `p` on a printf `%-Wx` column: after the value, skips the padding
/// spaces up to `width` bytes in all, then (when `sep`) the one separating
/// space. A value wider than `width` is accepted, as printf prints it whole.
pub(crate) fn padded<'a, O>(
    width: usize,
    sep: bool,
    mut p: impl FnMut(In<'a>) -> Res<'a, O>,
) -> impl FnMut(In<'a>) -> Res<'a, O> {
    move |i: In<'a>| {
        let (rest, v) = p(i)?;
        let used = i.len() - rest.len();
        let pad = width.saturating_sub(used);
        let n = rest.iter().take(pad).take_while(|b| **b == b' ').count();
        let mut rest = &rest[n..];
        if sep {
            match rest.first() {
                Some(b' ') => rest = &rest[1..],
                None => {}
                Some(_) => return fail("expected a space after a column"),
            }
        }
        Ok((rest, v))
    }
}

/// A `%-Ws` text column of exactly `width` bytes (shorter at the end of the
/// line), trailing blanks trimmed, followed by one separating space.
/// This is how `comm` (which may contain spaces) is read.
pub(crate) fn fixed(width: usize) -> impl FnMut(In<'_>) -> Res<'_, In<'_>> {
    move |i: In<'_>| {
        let n = width.min(i.len());
        let (text, mut rest) = i.split_at(n);
        match rest.first() {
            Some(b' ') => rest = &rest[1..],
            None => {}
            Some(_) => return fail("column wider than its width"),
        }
        Ok((rest, trim_end(text)))
    }
}

/// The process-name column: [`fixed`] then converted to a [`Comm`].
pub(crate) fn comm(width: usize) -> impl FnMut(In<'_>) -> Res<'_, Comm> {
    let mut f = fixed(width);
    move |i| {
        let (rest, text) = f(i)?;
        if text.is_empty() {
            return fail("expected a process name");
        }
        Ok((rest, Comm::from_utf8_lossy(text)))
    }
}

fn two_digits(b: &[u8]) -> Option<u8> {
    match b {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Some((a - b'0') * 10 + (b - b'0')),
        _ => None,
    }
}

/// `HH:MM:SS`.
pub(crate) fn clock(i: In<'_>) -> Res<'_, ToolTime> {
    if i.len() < 8 || i[2] != b':' || i[5] != b':' {
        return fail("expected a time HH:MM:SS");
    }
    match (
        two_digits(&i[0..2]),
        two_digits(&i[3..5]),
        two_digits(&i[6..8]),
    ) {
        (Some(h), Some(m), Some(s)) if h < 24 && m < 60 && s < 61 => {
            Ok((&i[8..], ToolTime::Clock { h, m, s }))
        }
        _ => fail("expected a time HH:MM:SS"),
    }
}

/// Relative seconds (`12.345`).
pub(crate) fn rel_time(i: In<'_>) -> Res<'_, ToolTime> {
    let (i, v) = expect("expected relative seconds", decimal).parse(i)?;
    Ok((i, ToolTime::Relative(v)))
}

/// Relative seconds with exactly `decimals` fraction digits: execsnoop's
/// `%-8.3f` may run into the next column once the value is wider than 8.
pub(crate) fn rel_time_exact(decimals: usize) -> impl FnMut(In<'_>) -> Res<'_, ToolTime> {
    move |i| {
        let whole = i.iter().take_while(|b| b.is_ascii_digit()).count();
        let end = whole + 1 + decimals;
        if whole == 0 || i.len() < end || i[whole] != b'.' {
            return fail("expected relative seconds");
        }
        if !i[whole + 1..end].iter().all(u8::is_ascii_digit) {
            return fail("expected relative seconds");
        }
        let (_, v) = decimal(&i[..end])?;
        Ok((&i[end..], ToolTime::Relative(v)))
    }
}

/// `bytes` without trailing spaces, tabs and `\r`.
pub(crate) fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t' | b'\r'))
        .map_or(0, |p| p + 1);
    &b[..n]
}

/// `bytes` without leading and trailing blanks.
pub(crate) fn trim(b: &[u8]) -> &[u8] {
    ws0(trim_end(b))
}

/// A line holding only a time stamp, `HH:MM:SS` or `[HH:MM:SS]`, as the
/// interval tools print between blocks.
pub(crate) fn timestamp_line(line: &[u8]) -> Option<ToolTime> {
    let t = trim(line);
    let t = match t {
        [b'[', inner @ .., b']'] => inner,
        _ => t,
    };
    if t.len() != 8 {
        return None;
    }
    clock(t).ok().map(|(_, v)| v)
}

/// Lines that carry no data in any tool's output: blank lines, the
/// `Tracing ...` banner, `Detaching...`, lost-event notices and Ctrl-C hints.
pub(crate) fn is_noise(line: &[u8]) -> bool {
    let t = trim(line);
    t.is_empty()
        || t.starts_with(b"Tracing")
        || t.starts_with(b"Detaching")
        || t.starts_with(b"Lost ")
        || t.starts_with(b"Hit Ctrl-C")
        || t.starts_with(b"Ctrl+C")
}

/// Whether `line` has the whitespace-separated token `tok`.
pub(crate) fn has_token(line: &[u8], tok: &[u8]) -> bool {
    line.split(|b| is_space(*b)).any(|t| t == tok)
}

/// Whether `line`'s first token is `tok`.
pub(crate) fn first_token_is(line: &[u8], tok: &[u8]) -> bool {
    line.split(|b| is_space(*b)).find(|t| !t.is_empty()) == Some(tok)
}

/// Strips one trailing `\r` (tools behind a pty).
pub(crate) fn chomp(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(int(b"-12 x").unwrap(), (&b" x"[..], -12));
        assert!(int(b"99999999999999999999").is_err());
        assert_eq!(decimal(b"1.25").unwrap().1, 1.25);
        assert_eq!(decimal(b"3").unwrap().1, 3.0);
        assert_eq!(duration(1e6)(b"0.769").unwrap().1, 769_000);
    }

    #[test]
    fn columns() {
        let line = b"5907   5733     0 /bin/true";
        let (r, pid) = padded(6, true, u32_)(line).unwrap();
        assert_eq!((pid, &r[..4]), (5907, &b"5733"[..]));
        let (r, c) = comm(16)(b"Web Content      42").unwrap();
        assert_eq!((c.as_str(), r), ("Web Content", &b"42"[..]));
        // uid wider than its %-6d column runs into comm
        let (r, uid) = padded(6, false, u32_)(b"100000bash").unwrap();
        assert_eq!((uid, r), (100000, &b"bash"[..]));
    }

    #[test]
    fn times() {
        assert_eq!(
            timestamp_line(b"16:40:05  "),
            Some(ToolTime::Clock { h: 16, m: 40, s: 5 })
        );
        assert!(timestamp_line(b"[16:41:28]").is_some());
        assert!(timestamp_line(b"16:41").is_none());
        let (r, t) = rel_time_exact(3)(b"10000.1230     true").unwrap();
        assert_eq!((t, r), (ToolTime::Relative(10000.123), &b"0     true"[..]));
    }
}
