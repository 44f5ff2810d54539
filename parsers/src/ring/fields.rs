//! Field access for one split ring line: typed getters that report the failing field index,
//! with Dovecot's number rules (`str_to_uint`, `str_to_time`, `net_str2port`).

use std::borrow::Cow;
use std::net::IpAddr;

use super::command::Origin;
use crate::error::{ParseError, ParseErrorKind};
use crate::escape::unescape;
use crate::field::Field;

/// The arguments of a line (fields after the command name), still escaped.
/// Argument `i` is field `i + 1` of the line, which is what errors report.
pub(super) struct Fields<'a> {
    raw: Vec<&'a [u8]>,
}

fn err(kind: ParseErrorKind, arg: usize) -> ParseError {
    ParseError::new(kind, arg + 1)
}

/// Unsigned decimal as Dovecot's `str_to_uintmax`: at least one digit, nothing else.
pub(super) fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

impl<'a> Fields<'a> {
    /// Wrap the raw argument fields.
    pub(super) fn new(raw: Vec<&'a [u8]>) -> Self {
        Self { raw }
    }

    /// Number of arguments.
    pub(super) fn len(&self) -> usize {
        self.raw.len()
    }

    /// Argument `i` as received (escaped), if present.
    pub(super) fn raw(&self, i: usize) -> Option<&'a [u8]> {
        self.raw.get(i).copied()
    }

    /// Argument `i`, unescaped; missing is a field-count error.
    pub(super) fn text(&self, i: usize) -> Result<Cow<'a, [u8]>, ParseError> {
        self.raw(i)
            .map(unescape)
            .ok_or_else(|| err(ParseErrorKind::BadArgCount, i))
    }

    /// Argument `i` as an owned unescaped byte string.
    pub(super) fn owned(&self, i: usize) -> Result<Vec<u8>, ParseError> {
        self.text(i).map(Cow::into_owned)
    }

    /// At least `n` arguments.
    pub(super) fn at_least(&self, n: usize) -> Result<(), ParseError> {
        if self.len() < n {
            return Err(err(ParseErrorKind::BadArgCount, self.len()));
        }
        Ok(())
    }

    /// Exactly `n` arguments (the commands Dovecot checks with `str_array_length(args) != n`).
    pub(super) fn exactly(&self, n: usize) -> Result<(), ParseError> {
        if self.len() != n {
            return Err(err(ParseErrorKind::BadArgCount, self.len().min(n)));
        }
        Ok(())
    }

    fn decimal(&self, i: usize, max: u64) -> Result<u64, ParseError> {
        let t = self.text(i)?;
        match parse_decimal(&t) {
            Some(v) if v <= max => Ok(v),
            _ => Err(err(ParseErrorKind::BadNumber, i)),
        }
    }

    /// An `unsigned int` field (`str_to_uint`).
    pub(super) fn uint(&self, i: usize) -> Result<u32, ParseError> {
        // The bound makes the conversion lossless.
        self.decimal(i, u64::from(u32::MAX)).map(|v| v as u32)
    }

    /// A timestamp Dovecot reads as `unsigned int`, widened.
    pub(super) fn uint_time(&self, i: usize) -> Result<u64, ParseError> {
        self.decimal(i, u64::from(u32::MAX))
    }

    /// A `time_t` timestamp (`str_to_time`), non-negative.
    pub(super) fn time(&self, i: usize) -> Result<u64, ParseError> {
        self.decimal(i, i64::MAX as u64)
    }

    /// An IP address (`net_addr2ip`).
    pub(super) fn ip(&self, i: usize) -> Result<IpAddr, ParseError> {
        let t = self.text(i)?;
        crate::ip::parse_ip(&t).ok_or_else(|| err(ParseErrorKind::BadIp, i))
    }

    /// A port 1..65535 (`net_str2port`).
    pub(super) fn port(&self, i: usize) -> Result<u16, ParseError> {
        let t = self.text(i)?;
        match parse_decimal(&t) {
            Some(p @ 1..=65535) => Ok(p as u16),
            _ => Err(err(ParseErrorKind::BadPort, i)),
        }
    }

    /// The origin triple starting at argument `i` (`director_cmd_is_seen_full`).
    pub(super) fn origin(&self, i: usize) -> Result<Origin, ParseError> {
        self.at_least(i + 3)?;
        Ok(Origin {
            ip: self.ip(i)?,
            port: self.port(i + 1)?,
            seq: self.uint(i + 2)?,
        })
    }

    /// Arguments from `i` on, verbatim (the ignored trailing fields).
    pub(super) fn rest(&self, i: usize) -> Vec<Field> {
        self.raw.iter().skip(i).map(|f| Field::wire(f)).collect()
    }
}
