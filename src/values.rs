//! Dovecot's setting value syntax: time intervals, sizes and unsigned numbers.
//!
//! Mirrors `settings_get_time()`, `settings_get_size()` and the `SET_UINT` case of
//! `src/lib-settings/settings-parser.c` (Dovecot 2.3), including their error texts, so a
//! config that `doveconf` rejects is rejected here with the same words (`settings.md` §1).
//! The caller strips the surrounding whitespace, as Dovecot's config reader does.

/// A setting value that does not parse; `Display` is Dovecot's own error text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not a number followed by a known time unit.
    #[error("Invalid time interval: {0}")]
    InvalidTime(String),
    /// A bare number other than `0`.
    #[error("Time interval '{0}' is missing units (add e.g. 's' for seconds)")]
    MissingUnits(String),
    /// Milliseconds that are not whole seconds.
    #[error("Milliseconds not supported for this setting: {0}")]
    MillisecondsNotSupported(String),
    /// More seconds than fit in 32 bits.
    #[error("Time interval is too large: {0}")]
    TimeTooLarge(String),
    /// Not a number followed by an optional size unit.
    #[error("Invalid size: {0}")]
    InvalidSize(String),
    /// More bytes than fit in 64 bits.
    #[error("Size is too large: {0}")]
    SizeTooLarge(String),
    /// Not an unsigned 32-bit decimal number; `reason` is Dovecot's `str_num_error()` text.
    #[error("Invalid number {value}: {reason}")]
    InvalidNumber {
        /// The value as given.
        value: String,
        /// `Not a valid number`, `Number too small` or `Number too large`.
        reason: &'static str,
    },
}

/// Leading decimal digits as `str_parse_uintmax()` reads them; `None` if there are none or
/// they overflow 64 bits.
fn leading_u64(s: &str) -> Option<(u64, &str)> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let n = s[..end].parse::<u64>().ok()?;
    Some((n, &s[end..]))
}

/// `unit` is a non-empty, case-insensitive prefix of one of `words`.
fn is_prefix_of(unit: &str, words: &[&str]) -> bool {
    words.iter().any(|w| {
        unit.len() <= w.len() && w.as_bytes()[..unit.len()].eq_ignore_ascii_case(unit.as_bytes())
    })
}

/// Parse a time interval (`15 mins`, `90s`, `2000 msecs`, `0`) into seconds.
pub fn parse_time(s: &str) -> Result<u64, ValueError> {
    let (mut num, rest) = leading_u64(s).ok_or_else(|| ValueError::InvalidTime(s.into()))?;
    let unit = rest.trim_start_matches(' ');
    if unit.is_empty() && num != 0 {
        return Err(ValueError::MissingUnits(s.into()));
    }
    let first = unit.bytes().next().map(|b| b.to_ascii_uppercase());
    let (multiply, known): (u64, bool) = match first {
        Some(b'S') => (1, is_prefix_of(unit, &["secs", "seconds"])),
        Some(b'M') if is_prefix_of(unit, &["mins", "minutes"]) => (60, true),
        Some(b'M') if is_prefix_of(unit, &["msecs", "mseconds", "millisecs", "milliseconds"]) => {
            if num % 1000 != 0 {
                return Err(ValueError::MillisecondsNotSupported(s.into()));
            }
            num /= 1000;
            (1, true)
        }
        Some(b'M') => (60, false),
        Some(b'H') => (60 * 60, is_prefix_of(unit, &["hours"])),
        Some(b'D') => (60 * 60 * 24, is_prefix_of(unit, &["days"])),
        Some(b'W') => (60 * 60 * 24 * 7, is_prefix_of(unit, &["weeks"])),
        // Only the bare `0` gets here with nothing after the number.
        None => (1, true),
        Some(_) => (1, false),
    };
    if !known {
        return Err(ValueError::InvalidTime(s.into()));
    }
    if num > u64::from(u32::MAX) / multiply {
        return Err(ValueError::TimeTooLarge(s.into()));
    }
    Ok(num * multiply)
}

/// Parse a size (`10 M`, `64k`, `1GiB`, `100`) into bytes; units are powers of 1024.
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let invalid = || ValueError::InvalidSize(s.into());
    let (num, rest) = leading_u64(s).ok_or_else(invalid)?;
    let mut unit = rest.trim_start_matches(' ').as_bytes();
    let multiply: u64 = match unit.first().map(|b| b.to_ascii_uppercase()) {
        Some(b'B') => 1,
        Some(b'K') => 1 << 10,
        Some(b'M') => 1 << 20,
        Some(b'G') => 1 << 30,
        Some(b'T') => 1 << 40,
        _ => 0,
    };
    if multiply != 0 {
        unit = &unit[1..];
    }
    if multiply > 1 {
        // `k`, `ki`, `kib` and `kb` are all kilobytes.
        if unit.first().map(u8::to_ascii_uppercase) == Some(b'I') {
            unit = &unit[1..];
        }
        if unit.first().map(u8::to_ascii_uppercase) == Some(b'B') {
            unit = &unit[1..];
        }
    }
    if !unit.is_empty() {
        return Err(invalid());
    }
    num.checked_mul(multiply.max(1))
        .ok_or_else(|| ValueError::SizeTooLarge(s.into()))
}

/// Parse an unsigned 32-bit decimal number (`SET_UINT`): digits only, no sign.
pub fn parse_uint(s: &str) -> Result<u32, ValueError> {
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if all_digits(s) {
        if let Ok(n) = s.parse::<u32>() {
            return Ok(n);
        }
    }
    let reason = match s.strip_prefix('-') {
        Some(rest) if all_digits(rest) => "Number too small",
        Some(_) => "Not a valid number",
        None if all_digits(s) => "Number too large",
        None => "Not a valid number",
    };
    Err(ValueError::InvalidNumber {
        value: s.into(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row was checked with `doveconf -c FILE -h director_user_expire` of Dovecot
    /// 2.3.19.1 on this project's machine (`Ok` = seconds it printed; `Err` = its message
    /// after "line 1: ").
    #[test]
    fn time_matches_doveconf() {
        let ok: &[(&str, u64)] = &[
            ("90s", 90),
            ("0", 0),
            ("00", 0),
            ("0s", 0),
            ("15 min", 900),
            ("15 mins", 900),
            ("1 hour", 3600),
            ("2 weeks", 1_209_600),
            ("2000ms", 2),
            ("2000 milliseconds", 2),
            ("1000 mse", 1),
            ("1 S", 1),
            ("1 Sec", 1),
            ("1 Seconds", 1),
            ("1secs", 1),
            ("5 s", 5),
            ("1m", 60),
            ("1 mi", 60),
            ("1000 m", 60_000),
            ("1 w", 604_800),
            ("1 d", 86_400),
            ("1 day", 86_400),
            ("1 h", 3600),
            ("1 ho", 3600),
            ("5 sec", 5),
            ("5 se", 5),
        ];
        for &(v, want) in ok {
            assert_eq!(parse_time(v), Ok(want), "{v:?}");
        }
        let err: &[(&str, &str)] = &[
            (
                "90",
                "Time interval '90' is missing units (add e.g. 's' for seconds)",
            ),
            (
                "1500 msecs",
                "Milliseconds not supported for this setting: 1500 msecs",
            ),
            (
                "1500ms",
                "Milliseconds not supported for this setting: 1500ms",
            ),
            (
                "1 mil",
                "Milliseconds not supported for this setting: 1 mil",
            ),
            (
                "1 msec",
                "Milliseconds not supported for this setting: 1 msec",
            ),
            ("1 secondsx", "Invalid time interval: 1 secondsx"),
            ("1 mo", "Invalid time interval: 1 mo"),
            ("1 hr", "Invalid time interval: 1 hr"),
            ("-1s", "Invalid time interval: -1s"),
            ("+1s", "Invalid time interval: +1s"),
            ("1.5s", "Invalid time interval: 1.5s"),
            ("0x10s", "Invalid time interval: 0x10s"),
            ("1 s s", "Invalid time interval: 1 s s"),
            ("", "Invalid time interval: "),
            ("1\ts", "Invalid time interval: 1\ts"),
            (
                "18446744073709551615s",
                "Time interval is too large: 18446744073709551615s",
            ),
            (
                "18446744073709551616s",
                "Invalid time interval: 18446744073709551616s",
            ),
            (
                "4294967296 weeks",
                "Time interval is too large: 4294967296 weeks",
            ),
        ];
        for &(v, want) in err {
            assert_eq!(parse_time(v).unwrap_err().to_string(), want, "{v:?}");
        }
    }

    /// Checked with `doveconf -h director_output_buffer_size` of Dovecot 2.3.19.1.
    #[test]
    fn size_matches_doveconf() {
        let ok: &[(&str, u64)] = &[
            ("10M", 10 << 20),
            ("10 M", 10 << 20),
            ("10", 10),
            ("10k", 10 << 10),
            ("10KiB", 10 << 10),
            ("10kb", 10 << 10),
            ("10Ki", 10 << 10),
            ("10 KB", 10 << 10),
            ("1T", 1 << 40),
            ("16777215T", 16_777_215 << 40),
            ("0", 0),
            ("10 B", 10),
            ("18446744073709551615", u64::MAX),
        ];
        for &(v, want) in ok {
            assert_eq!(parse_size(v), Ok(want), "{v:?}");
        }
        let err: &[(&str, &str)] = &[
            ("10x", "Invalid size: 10x"),
            ("16777216T", "Size is too large: 16777216T"),
            ("", "Invalid size: "),
            ("10 iB", "Invalid size: 10 iB"),
            ("10MiBx", "Invalid size: 10MiBx"),
            ("18446744073709551616", "Invalid size: 18446744073709551616"),
            ("1bi", "Invalid size: 1bi"),
        ];
        for &(v, want) in err {
            assert_eq!(parse_size(v).unwrap_err().to_string(), want, "{v:?}");
        }
    }

    /// Checked with `doveconf -h director_max_parallel_moves` of Dovecot 2.3.19.1.
    #[test]
    fn uint_matches_doveconf() {
        for (v, want) in [
            ("100", 100),
            ("0", 0),
            ("4294967295", u32::MAX),
            ("010", 10),
        ] {
            assert_eq!(parse_uint(v), Ok(want), "{v:?}");
        }
        let err: &[(&str, &str)] = &[
            ("-1", "Invalid number -1: Number too small"),
            ("+1", "Invalid number +1: Not a valid number"),
            ("4294967296", "Invalid number 4294967296: Number too large"),
            ("1k", "Invalid number 1k: Not a valid number"),
            ("", "Invalid number : Not a valid number"),
            ("0x10", "Invalid number 0x10: Not a valid number"),
            (
                "99999999999999999999",
                "Invalid number 99999999999999999999: Number too large",
            ),
        ];
        for &(v, want) in err {
            assert_eq!(parse_uint(v).unwrap_err().to_string(), want, "{v:?}");
        }
    }
}
