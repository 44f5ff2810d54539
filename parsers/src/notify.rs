//! proxy-notify lines (auth-proxy.md §9): login processes refreshing proxied users.
//!
//! Mirrors `notify_connection_input` in `src/director/notify-connection.c` (reader) and the
//! proxy-notify writer in `src/login-common/login-proxy-state.c`. A line is the
//! tab-escaped proxy user; the director hashes the line's **raw** bytes (no unescaping, no
//! master-user cut). Lines longer than the reader's 1024-byte buffer never complete. No I/O.

use crate::error::{ParseError, ParseErrorKind};
use crate::escape;
use crate::framing::DIRECTOR_MAX_LINE;

/// The reader's input buffer in bytes, LF included: a line's content is at most
/// `MAX_LINE - 1` bytes.
pub const MAX_LINE: usize = DIRECTOR_MAX_LINE;

/// One proxy-notify line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NotifyLine {
    raw: Vec<u8>,
}

impl NotifyLine {
    /// The line a login process writes for `user`: its tab-escaped form.
    pub fn for_user(user: &[u8]) -> Self {
        Self {
            raw: escape::escape(user).into_owned(),
        }
    }

    /// Take one line (without its LF, CR already dropped by the framer) as it is.
    /// Only a line that cannot fit the reader's buffer is an error.
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        if line.len() >= MAX_LINE {
            return Err(ParseError::new(ParseErrorKind::LineTooLong, 0));
        }
        Ok(Self { raw: line.to_vec() })
    }

    /// The bytes the director hashes: the line as read, up to a NUL (Dovecot handles it as
    /// a C string).
    pub fn hash_key(&self) -> &[u8] {
        crate::passdb::c_string(&self.raw)
    }

    /// Append the line, including its trailing LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.raw);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// §9 [verified]: `alice\n`, `user1\n`; the director hashes the raw line (`ALICE` stays
    /// `ALICE`; `%Lu` lowercases later, in the hash).
    #[test]
    fn known_lines() {
        for line in [
            &b"alice"[..],
            b"user1",
            b"notify01",
            b"ALICE",
            b"cap04@example.com",
        ] {
            let n = NotifyLine::parse(line).unwrap();
            assert_eq!(n.hash_key(), line);
            let mut out = Vec::new();
            n.encode(&mut out);
            assert_eq!(out, [line, b"\n"].concat());
        }
        // raw: an escaped tab is not unescaped
        assert_eq!(
            NotifyLine::parse(b"a\x01tb").unwrap().hash_key(),
            b"a\x01tb"
        );
    }

    /// Real 2.3.19.1 director (2026-11-29): the notify line `zed\0xyz` refreshed user `zed`.
    #[test]
    fn raw_nul_ends_the_hash_key() {
        assert_eq!(NotifyLine::parse(b"zed\0xyz").unwrap().hash_key(), b"zed");
    }

    #[test]
    fn writer_escapes() {
        let mut out = Vec::new();
        NotifyLine::for_user(b"al\tice").encode(&mut out);
        assert_eq!(out, b"al\x01tice\n");
        let mut out = Vec::new();
        NotifyLine::for_user(b"alice").encode(&mut out);
        assert_eq!(out, b"alice\n");
    }

    #[test]
    fn length_limit() {
        assert!(NotifyLine::parse(&[b'a'; MAX_LINE - 1]).is_ok());
        assert_eq!(
            NotifyLine::parse(&[b'a'; MAX_LINE]),
            Err(ParseError::new(ParseErrorKind::LineTooLong, 0))
        );
    }

    proptest! {
        #[test]
        fn roundtrip(user in proptest::collection::vec(any::<u8>(), 0..300)) {
            let n = NotifyLine::for_user(&user);
            let mut out = Vec::new();
            n.encode(&mut out);
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            prop_assert_eq!(NotifyLine::parse(&out[..out.len() - 1]), Ok(n.clone()));
            prop_assert_eq!(escape::unescape(n.hash_key()).into_owned(), user);
        }
    }
}
