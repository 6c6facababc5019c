//! RFC 3339 time stamps as the runtimes write them
//! (`2024-05-01T10:00:00.123456789Z`, `...+02:00`) to ns since the epoch.

/// Parses an RFC 3339 time stamp; `None` when it is not one (or before 1970).
pub fn parse_rfc3339_ns(s: &[u8]) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let b = s.get(r)?;
        b.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                frac_ns = frac_ns * 10 + i64::from(s[i] - b'0');
            }
            i += 1;
        }
        let digits = (i - start).min(9);
        if digits == 0 {
            return None;
        }
        frac_ns *= 10i64.pow(9 - digits as u32);
    }
    let offset_s = match s.get(i)? {
        b'Z' | b'z' if i + 1 == s.len() => 0,
        sign @ (b'+' | b'-') if s.len() == i + 6 && s[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(frac_ns as u64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_offsets_and_fractions() {
        assert_eq!(parse_rfc3339_ns(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ns(b"2024-05-01T10:00:00.123456789Z"),
            Some(1_714_557_600_123_456_789)
        );
        assert_eq!(
            parse_rfc3339_ns(b"2024-05-01T12:00:00.5+02:00"),
            Some(1_714_557_600_500_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns(b"2024-05-01T10:00:00.1234567891234Z"),
            Some(1_714_557_600_123_456_789)
        );
        for bad in [
            &b"2024-05-01"[..],
            b"2024-13-01T10:00:00Z",
            b"2024-05-01T10:00:00",
            b"2024-05-01T10:00:00.Z",
            b"1969-12-31T23:59:59Z",
            b"2024-05-01T10:00:00+0200",
            b"\xff\xff\xff\xff-05-01T10:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_ns(bad), None, "{bad:?}");
        }
    }
}
