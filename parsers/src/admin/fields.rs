//! Field-level grammar shared by admin requests and replies.
//!
//! The director sees a line the way C does: everything after a raw NUL is invisible, and a
//! field that decodes to a NUL (`0x01 '0'`) ends there too. Numbers follow Dovecot's
//! `str_to_uint` family: ASCII digits only, leading zeros allowed, no sign, no overflow.

use std::borrow::Cow;
use std::io::Write as _;
use std::net::IpAddr;

use crate::error::{ParseError, ParseErrorKind};
use crate::escape::{escape_into, split_tabs, unescape};
use crate::ip::{ip_to_string, parse_ip};

/// The part of `line` a C string would hold: everything before the first NUL.
pub(crate) fn c_str(line: &[u8]) -> &[u8] {
    match memchr::memchr(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    }
}

/// Split a line on TABs and tab-unescape each field, with C string semantics throughout.
pub(crate) fn fields(line: &[u8]) -> Vec<Cow<'_, [u8]>> {
    split_tabs(c_str(line))
        .map(|raw| match unescape(raw) {
            Cow::Borrowed(b) => Cow::Borrowed(b),
            Cow::Owned(mut v) => {
                let len = c_str(&v).len();
                v.truncate(len);
                Cow::Owned(v)
            }
        })
        .collect()
}

/// `str_to_uint`: an unsigned decimal that fits in 32 bits.
pub(crate) fn parse_u32(text: &[u8]) -> Option<u32> {
    parse_u64(text).and_then(|n| u32::try_from(n).ok())
}

/// `str_to_uint64`: an unsigned decimal that fits in 64 bits.
pub(crate) fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// A signed decimal as `printf("%ld")` writes it (an optional `-`, then digits).
pub(crate) fn parse_i64(text: &[u8]) -> Option<i64> {
    match text.strip_prefix(b"-") {
        Some(digits) => {
            let n = parse_u64(digits)?;
            0i64.checked_sub_unsigned(n)
        }
        None => i64::try_from(parse_u64(text)?).ok(),
    }
}

/// A signed decimal as `printf("%d")` writes it.
pub(crate) fn parse_i32(text: &[u8]) -> Option<i32> {
    parse_i64(text).and_then(|n| i32::try_from(n).ok())
}

/// `net_str2port`: decimal 1..65535.
pub(crate) fn parse_port(text: &[u8]) -> Option<u16> {
    parse_u64(text)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&p| p != 0)
}

/// Field `idx` as an IP address, or the matching error.
pub(crate) fn ip_at(f: &[Cow<'_, [u8]>], idx: usize) -> Result<IpAddr, ParseError> {
    let text = f
        .get(idx)
        .ok_or(ParseError::new(ParseErrorKind::BadArgCount, idx))?;
    parse_ip(text).ok_or(ParseError::new(ParseErrorKind::BadIp, idx))
}

/// Field `idx` parsed with `parse`, failing with `kind`.
pub(crate) fn num_at<T>(
    f: &[Cow<'_, [u8]>],
    idx: usize,
    parse: impl Fn(&[u8]) -> Option<T>,
) -> Result<T, ParseError> {
    let text = f
        .get(idx)
        .ok_or(ParseError::new(ParseErrorKind::BadArgCount, idx))?;
    parse(text).ok_or(ParseError::new(ParseErrorKind::BadNumber, idx))
}

/// Require exactly `n` fields (reply lines are written by one `printf`, so counts are exact).
pub(crate) fn expect_count(f: &[Cow<'_, [u8]>], n: usize) -> Result<(), ParseError> {
    if f.len() == n {
        Ok(())
    } else {
        Err(ParseError::new(ParseErrorKind::BadArgCount, f.len().min(n)))
    }
}

/// Append the canonical (`inet_ntop`) text of `ip`.
pub(crate) fn put_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    out.extend_from_slice(ip_to_string(ip).as_bytes());
}

/// Append a decimal number.
pub(crate) fn put_num(out: &mut Vec<u8>, n: impl std::fmt::Display) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{n}");
}

/// Append a TAB and then the tab-escaped `field`.
pub(crate) fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    out.push(b'\t');
    escape_into(field, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_like_dovecot() {
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b"007"), Some(7));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"+1"), None);
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b" 1"), None);
        assert_eq!(parse_u32(b"1 "), None);
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_port(b"0"), None);
        assert_eq!(parse_port(b"1"), Some(1));
        assert_eq!(parse_port(b"65535"), Some(65535));
        assert_eq!(parse_port(b"65536"), None);
    }

    #[test]
    fn c_string_semantics() {
        let f = fields(b"A\tb\x010c\td\0\te");
        assert_eq!(f, vec![&b"A"[..], b"b", b"d"]);
        assert!(fields(b"").is_empty());
        assert!(fields(b"\0HOST-LIST").is_empty());
    }
}
