//! Local-time rendering of Unix timestamps, as doveadm's `unixdate2str` does it.
//!
//! doveadm formats with `localtime()` + `strftime("%Y-%m-%d %H:%M:%S")`, so the result follows
//! `TZ` exactly like the C library does. The `time` crate refuses to look up the local offset in
//! multi-threaded programs, so this goes through libc's `localtime_r` directly.

extern "C" {
    // POSIX; the libc crate does not bind it.
    fn tzset();
}

/// Formats `ts` (Unix seconds) as `YYYY-MM-DD HH:MM:SS` in the local time zone (honours `TZ`).
///
/// Returns `None` when the C library cannot represent the time (year out of range).
pub fn local_datetime(ts: i64) -> Option<String> {
    let t: libc::time_t = libc::time_t::try_from(ts).ok()?;
    // SAFETY: `tm` is a plain C struct for which all-zero bytes is a valid value; `localtime_r`
    // only reads `t` and writes into `tm`, both valid for the duration of the call. `tzset`
    // has no preconditions; calling it makes a changed `TZ` take effect like `localtime` does.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tzset();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return None;
        }
        tm
    };
    let year = i64::from(tm.tm_year) + 1900;
    Some(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        year,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    ))
}

/// doveadm's `unixdate2str`: like [`local_datetime`], with an empty string when out of range.
pub fn unixdate2str(ts: i64) -> String {
    local_datetime(ts).unwrap_or_default()
}

/// Dovecot's `str_to_time`: an optional `-` followed by decimal digits, within `i64`.
pub fn parse_time(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if n > i64::MAX as u64 + 1 {
            return None;
        }
        Some((n as i64).wrapping_neg())
    } else {
        i64::try_from(n).ok()
    }
}

/// Dovecot's `str_to_uint`: decimal digits only, no sign, at most `u32::MAX`.
pub fn parse_uint(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in text {
        n = n * 10 + u64::from(d - b'0');
        if n > u64::from(u32::MAX) {
            return None;
        }
    }
    Some(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_time_accepts_dovecot_forms() {
        assert_eq!(parse_time(b"0"), Some(0));
        assert_eq!(parse_time(b"-5"), Some(-5));
        assert_eq!(parse_time(b"1795953118"), Some(1_795_953_118));
        assert_eq!(parse_time(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_time(b"9223372036854775808"), None);
        assert_eq!(parse_time(b""), None);
        assert_eq!(parse_time(b"-"), None);
        assert_eq!(parse_time(b"+1"), None);
        assert_eq!(parse_time(b"1 "), None);
    }

    #[test]
    fn parse_uint_limits() {
        assert_eq!(parse_uint(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_uint(b"4294967296"), None);
        assert_eq!(parse_uint(b"007"), Some(7));
        assert_eq!(parse_uint(b"-1"), None);
    }

    #[test]
    fn utc_rendering() {
        // Golden value from the spec's map example (TZ=UTC): 1700000900 = 2023-11-14 22:28:20.
        std::env::set_var("TZ", "UTC");
        assert_eq!(unixdate2str(1_700_000_900), "2023-11-14 22:28:20");
        assert_eq!(unixdate2str(0), "1970-01-01 00:00:00");
    }
}
