//! Line framing with a maximum line length (stage 1 of parsing).
//!
//! Every director protocol is LF-terminated lines; a CR right before the LF is dropped by
//! Dovecot's readers. The framer never buffers: it scans the caller's buffer, remembers how
//! far it has looked so repeated calls stay linear, and reports a line that cannot fit in the
//! protocol's buffer as [`ParseErrorKind::LineTooLong`] instead of waiting forever.

use crate::error::{ParseError, ParseErrorKind};

/// Dovecot's input buffer for admin, ring and notify connections (bytes, LF included).
pub const DIRECTOR_MAX_LINE: usize = 1024;
/// Longest auth server line the director accepts before closing both sides.
pub const AUTH_MAX_LINE: usize = 16384;

/// Where a complete line lies in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSpan {
    /// Length of the line's content (without LF, and without a CR before it).
    pub len: usize,
    /// Bytes to remove from the front of the buffer (content, CR, LF).
    pub consumed: usize,
}

/// Finds complete lines in a growing buffer, enforcing a maximum length.
#[derive(Debug, Clone)]
pub struct LineFramer {
    max_line: usize,
    scanned: usize,
}

impl LineFramer {
    /// A framer accepting lines of at most `max_line` bytes including the LF.
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line: max_line.max(1),
            scanned: 0,
        }
    }

    /// The configured maximum (LF included).
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Look for the next complete line at the start of `buf`.
    ///
    /// `Ok(Some(span))`: `&buf[..span.len]` is the line; the caller must then drop
    /// `span.consumed` bytes from the front before calling again. `Ok(None)`: need more
    /// bytes. `Err(LineTooLong)`: no LF within `max_line` bytes; the connection should close.
    pub fn next_line(&mut self, buf: &[u8]) -> Result<Option<LineSpan>, ParseError> {
        let limit = buf.len().min(self.max_line);
        let start = self.scanned.min(limit);
        match memchr::memchr(b'\n', &buf[start..limit]) {
            Some(i) => {
                let lf = start + i;
                self.scanned = 0;
                let len = if lf > 0 && buf[lf - 1] == b'\r' {
                    lf - 1
                } else {
                    lf
                };
                Ok(Some(LineSpan {
                    len,
                    consumed: lf + 1,
                }))
            }
            None if buf.len() >= self.max_line => {
                self.scanned = 0;
                Err(ParseError::new(ParseErrorKind::LineTooLong, 0))
            }
            None => {
                self.scanned = limit;
                Ok(None)
            }
        }
    }
}

/// Split a complete byte stream into lines (for tests and transcripts): every LF-terminated
/// line, CR stripped, plus a trailing partial line if any.
pub fn lines(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    stream
        .split_inclusive(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\n").unwrap_or(l))
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_lines_and_strips_cr() {
        let mut f = LineFramer::new(16);
        let buf = b"abc\r\ndef\n";
        let s = f.next_line(buf).unwrap().unwrap();
        assert_eq!((s.len, s.consumed), (3, 5));
        let s = f.next_line(&buf[5..]).unwrap().unwrap();
        assert_eq!(&buf[5..5 + s.len], b"def");
    }

    #[test]
    fn waits_for_more_then_rejects_too_long() {
        let mut f = LineFramer::new(8);
        assert_eq!(f.next_line(b"abcd").unwrap(), None);
        assert_eq!(f.next_line(b"abcdefg").unwrap(), None);
        // 7 bytes + LF = 8 fits exactly
        assert!(f.next_line(b"abcdefg\n").unwrap().is_some());
        let e = f.next_line(b"abcdefgh").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::LineTooLong);
        // an LF just past the limit does not rescue the line
        assert!(f.next_line(b"abcdefgh\n").is_err());
    }

    proptest! {
        #[test]
        fn never_panics_and_respects_limit(data in proptest::collection::vec(any::<u8>(), 0..200), max in 1usize..40) {
            let mut f = LineFramer::new(max);
            let mut buf = &data[..];
            loop {
                match f.next_line(buf) {
                    Ok(Some(s)) => {
                        prop_assert!(s.consumed <= max);
                        prop_assert!(!buf[..s.len].contains(&b'\n'));
                        buf = &buf[s.consumed..];
                    }
                    Ok(None) => { prop_assert!(buf.len() < max); break }
                    Err(_) => { prop_assert!(buf.len() >= max); break }
                }
            }
        }
    }
}
