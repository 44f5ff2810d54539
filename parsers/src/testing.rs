//! Helpers shared by the protocol modules' unit tests (test builds only).

use std::fmt::Debug;

use crate::error::{ParseError, ParseErrorKind};
use crate::field::Field;

/// A field from its raw (already escaped) text.
pub(crate) fn f(raw: &str) -> Field {
    Field::from_raw(raw.as_bytes()).unwrap()
}

/// The bytes an encoder appends to an empty buffer.
pub(crate) fn encoded(encode: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    encode(&mut out);
    out
}

/// Every `(line, kind, field)` must fail to parse with exactly that error.
pub(crate) fn assert_errors<T: Debug + PartialEq>(
    parse: impl Fn(&[u8]) -> Result<T, ParseError>,
    cases: &[(&[u8], ParseErrorKind, usize)],
) {
    for (line, kind, field) in cases {
        assert_eq!(
            parse(line),
            Err(ParseError::new(*kind, *field)),
            "{}",
            line.escape_ascii()
        );
    }
}
