//! One TAB-separated protocol field kept exactly as it was on the wire, and a redacting
//! wrapper for credentials.
//!
//! The auth protocols tab-escape field values ([`crate::escape`]), but not every Dovecot
//! reader unescapes (the auth master server splits its requests with `t_strsplit_tab`), and
//! every line must re-encode byte for byte. So a [`Field`] stores the raw, still escaped
//! bytes, and [`Field::unescaped`] gives the value.
//!
//! Line endings: parsers take a line without its LF. The framer ([`crate::framing`]) drops
//! one CR before the LF, as Dovecot's line readers do; any other CR is ordinary data and
//! stays in its field (a CR after a number makes it `BadNumber`). No I/O.

use std::borrow::Cow;
use std::fmt;

use crate::error::{ParseError, ParseErrorKind};
use crate::escape;

/// One field of a TAB-separated line, raw (still tab-escaped); never holds a TAB or LF.
///
/// `Debug` hides the value of credential fields (see [`Field::is_secret`]).
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Field(Vec<u8>);

impl Field {
    /// A field from wire bytes; `None` if they contain a TAB or LF (they would split the line).
    pub fn from_raw(raw: impl Into<Vec<u8>>) -> Option<Self> {
        let raw = raw.into();
        (!raw.iter().any(|&b| b == b'\t' || b == b'\n')).then_some(Self(raw))
    }

    /// The field carrying `value`, tab-escaped as Dovecot's `str_append_tabescaped` does.
    pub fn escaped(value: &[u8]) -> Self {
        Self(escape::escape(value).into_owned())
    }

    /// A `key=value` field, both parts tab-escaped (real keys never need it).
    pub fn key_value(key: &[u8], value: &[u8]) -> Self {
        let mut raw = Vec::with_capacity(key.len() + 1 + value.len());
        escape::escape_into(key, &mut raw);
        raw.push(b'=');
        escape::escape_into(value, &mut raw);
        Self(raw)
    }

    /// A field cut out of a line by a TAB split (so it holds no TAB).
    pub(crate) fn wire(raw: &[u8]) -> Self {
        Self(raw.to_vec())
    }

    /// The raw bytes as they appear on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The tab-unescaped value of the whole field.
    pub fn unescaped(&self) -> Cow<'_, [u8]> {
        escape::unescape(&self.0)
    }

    /// The raw bytes before the first `=` (the whole field when there is none).
    pub fn key(&self) -> &[u8] {
        match memchr::memchr(b'=', &self.0) {
            Some(i) => &self.0[..i],
            None => &self.0,
        }
    }

    /// The raw bytes after the first `=`, if there is one.
    pub fn value(&self) -> Option<&[u8]> {
        memchr::memchr(b'=', &self.0).map(|i| &self.0[i + 1..])
    }

    /// Whether this field carries a credential: key `resp`, or a key containing `pass`
    /// (the rule Dovecot's auth uses to hide fields in its debug logs).
    pub fn is_secret(&self) -> bool {
        let key = self.key();
        self.value().is_some() && (key == b"resp" || key.windows(4).any(|w| w == b"pass"))
    }
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_secret() {
            write!(f, "\"{}=<hidden>\"", self.key().escape_ascii())
        } else {
            write!(f, "\"{}\"", self.0.escape_ascii())
        }
    }
}

/// A value whose `Debug` output never shows it (SASL responses and the like).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret<T>(pub T);

impl<T> Secret<T> {
    /// The wrapped value; call sites that expose it are easy to grep for.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

/// Split a line into its command name and argument fields; an empty line is an error.
pub(crate) fn command(line: &[u8]) -> Result<(&[u8], Vec<&[u8]>), ParseError> {
    let mut it = escape::split_tabs(line);
    let cmd = it.next().ok_or(ParseError::new(ParseErrorKind::Empty, 0))?;
    Ok((cmd, it.collect()))
}

/// Dovecot's `str_to_uint`: one or more ASCII digits, no sign, no overflow.
pub(crate) fn parse_u32(text: &[u8], field: usize) -> Result<u32, ParseError> {
    let bad = ParseError::new(ParseErrorKind::BadNumber, field);
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    text.iter().try_fold(0u32, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(d - b'0')))
            .ok_or(bad)
    })
}

/// Dovecot's `version_string_verify`: `line` must be `VERSION\t<service>\t<major>\t<minor>`
/// with exactly this service name and major version (decimal, leading zeros allowed) and an
/// unsigned minor; returns the minor. Every failure is [`ParseErrorKind::BadHandshake`],
/// `field` = the index of the offending field.
pub fn version_string_verify(line: &[u8], service: &[u8], major: u32) -> Result<u32, ParseError> {
    let bad = |field| ParseError::new(ParseErrorKind::BadHandshake, field);
    let rest = line.strip_prefix(b"VERSION\t").ok_or(bad(0))?;
    let rest = rest
        .strip_prefix(service)
        .and_then(|r| r.strip_prefix(b"\t"))
        .ok_or(bad(1))?;
    let tab = memchr::memchr(b'\t', rest).ok_or(bad(3))?;
    if parse_u32(&rest[..tab], 2) != Ok(major) {
        return Err(bad(2));
    }
    parse_u32(&rest[tab + 1..], 3).map_err(|_| bad(3))
}

/// Require exactly `n` arguments.
pub(crate) fn want_args(args: &[&[u8]], n: usize) -> Result<(), ParseError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(ParseError::new(
            ParseErrorKind::BadArgCount,
            args.len().min(n) + 1,
        ))
    }
}

/// Require at least `n` arguments.
pub(crate) fn want_min_args(args: &[&[u8]], n: usize) -> Result<(), ParseError> {
    if args.len() >= n {
        Ok(())
    } else {
        Err(ParseError::new(ParseErrorKind::BadArgCount, args.len() + 1))
    }
}

/// Append `n` in decimal.
pub(crate) fn push_u32(out: &mut Vec<u8>, n: u32) {
    push_u64(out, u64::from(n));
}

/// Append `n` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    // By hand: `to_string` allocated and went through `core::fmt` once per auth reply, and
    // twice per user line of a ring handshake.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Append `\t` and each field's raw bytes.
pub(crate) fn push_fields(out: &mut Vec<u8>, fields: &[Field]) {
    for f in fields {
        out.push(b'\t');
        out.extend_from_slice(f.as_bytes());
    }
}

/// Fields of a parsed line, kept raw.
pub(crate) fn wire_fields(args: &[&[u8]]) -> Vec<Field> {
    args.iter().map(|a| Field::wire(a)).collect()
}

#[cfg(test)]
pub(crate) mod strategy {
    //! proptest generators shared by the protocol modules' round-trip tests.
    use super::Field;
    use proptest::prelude::*;

    /// Any raw field: arbitrary bytes except TAB and LF.
    pub fn field() -> impl Strategy<Value = Field> {
        proptest::collection::vec(
            any::<u8>().prop_filter("no tab/lf", |b| *b != b'\t' && *b != b'\n'),
            0..12,
        )
        .prop_map(|v| Field::from_raw(v).expect("filtered"))
    }

    /// A list of raw fields.
    pub fn fields() -> impl Strategy<Value = Vec<Field>> {
        proptest::collection::vec(field(), 0..6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_u32_is_decimal() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            450,
            4_294_967_295,
            1_000_000_000,
            999_999_999,
        ] {
            let mut out = b"=".to_vec();
            push_u32(&mut out, n);
            assert_eq!(out, format!("={n}").into_bytes());
        }
        for n in [0, 4_294_967_296, 10_000_000_000_000_000_000, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn raw_and_unescaped() {
        let f = Field::escaped(b"a\tb");
        assert_eq!(f.as_bytes(), b"a\x01tb");
        assert_eq!(&*f.unescaped(), b"a\tb");
        assert!(Field::from_raw(&b"a\tb"[..]).is_none());
        assert!(Field::from_raw(&b"a\nb"[..]).is_none());
        let kv = Field::key_value(b"user", b"x\ty");
        assert_eq!(kv.key(), b"user");
        assert_eq!(kv.value(), Some(&b"x\x01ty"[..]));
        assert_eq!(Field::wire(b"secured").value(), None);
    }

    #[test]
    fn debug_hides_credentials() {
        for (raw, shown) in [
            (&b"resp=AGFsaWNlAHNlY3JldA=="[..], "\"resp=<hidden>\""),
            (b"pass=secret", "\"pass=<hidden>\""),
            (b"password=secret", "\"password=<hidden>\""),
            (b"user=alice", "\"user=alice\""),
            (b"proxy", "\"proxy\""),
        ] {
            assert_eq!(format!("{:?}", Field::wire(raw)), shown);
        }
        assert_eq!(format!("{:?}", Secret(Field::wire(b"x"))), "<hidden>");
    }

    #[test]
    fn version_handshakes() {
        let v = |line: &[u8]| version_string_verify(line, b"svc", 1);
        let bad = |field| Err(ParseError::new(ParseErrorKind::BadHandshake, field));
        assert_eq!(v(b"VERSION\tsvc\t1\t0"), Ok(0));
        assert_eq!(v(b"VERSION\tsvc\t01\t4294967295"), Ok(u32::MAX));
        assert_eq!(v(b"VERSION svc\t1\t0"), bad(0));
        assert_eq!(v(b"VERSION\tsvcx\t1\t0"), bad(1));
        assert_eq!(v(b"VERSION\tsvc"), bad(1));
        assert_eq!(v(b"VERSION\tsvc\t1"), bad(3));
        assert_eq!(v(b"VERSION\tsvc\t2\t0"), bad(2));
        assert_eq!(v(b"VERSION\tsvc\t1\t"), bad(3));
        assert_eq!(v(b"VERSION\tsvc\t1\t0\t0"), bad(3));
    }

    #[test]
    fn numbers_like_str_to_uint() {
        assert_eq!(parse_u32(b"0", 1), Ok(0));
        assert_eq!(parse_u32(b"007", 1), Ok(7));
        assert_eq!(parse_u32(b"4294967295", 1), Ok(u32::MAX));
        for bad in [&b""[..], b"4294967296", b"-1", b"+1", b" 1", b"1a"] {
            assert_eq!(
                parse_u32(bad, 2),
                Err(ParseError::new(ParseErrorKind::BadNumber, 2))
            );
        }
    }
}
