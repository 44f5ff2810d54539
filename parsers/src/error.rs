//! The one error type of this crate: what went wrong and where in the line.

use std::fmt;

/// Why a line could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The line was empty where a command was expected.
    Empty,
    /// The first field names no command this protocol knows.
    UnknownCommand,
    /// A command had too few (or, where exact counts matter, too many) fields.
    BadArgCount,
    /// A field that must be an unsigned decimal number was not.
    BadNumber,
    /// A field that must be an IP address was not.
    BadIp,
    /// A field that must be a port (1..65535) was not.
    BadPort,
    /// A handshake line was malformed or named another protocol/version.
    BadHandshake,
    /// A field had a value outside what the protocol allows.
    BadValue,
    /// A line exceeded the protocol's maximum length.
    LineTooLong,
}

/// A parse failure: its kind and the byte offset in the line where it was noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// Index of the field (0 = command name) where the problem was found.
    pub field: usize,
}

impl ParseError {
    /// An error of `kind` found in field number `field`.
    pub const fn new(kind: ParseErrorKind, field: usize) -> Self {
        Self { kind, field }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ParseErrorKind::Empty => "empty line",
            ParseErrorKind::UnknownCommand => "unknown command",
            ParseErrorKind::BadArgCount => "wrong number of fields",
            ParseErrorKind::BadNumber => "not an unsigned number",
            ParseErrorKind::BadIp => "not an IP address",
            ParseErrorKind::BadPort => "not a valid port",
            ParseErrorKind::BadHandshake => "invalid handshake",
            ParseErrorKind::BadValue => "invalid value",
            ParseErrorKind::LineTooLong => "line too long",
        };
        write!(f, "{what} (field {})", self.field)
    }
}

impl std::error::Error for ParseError {}
