//! The `VERSION` line both sides send first (`version_string_verify` in Dovecot's
//! `lib-master/master-service.c`, used by `doveadm-connection.c` and `doveadm-director.c`).

use crate::error::{ParseError, ParseErrorKind};

use super::fields::{c_str, parse_u32, put_num};

/// Service name carried in the handshake.
pub const SERVICE_NAME: &[u8] = b"director-doveadm";
/// `DOVEADM_PROTOCOL_VERSION_MAJOR`: the only major version either side accepts.
pub const VERSION_MAJOR: u32 = 1;
/// Minor version the director and doveadm 2.3 both send.
pub const VERSION_MINOR: u32 = 0;
/// What the director logs before closing a connection whose first line is not a handshake.
pub const INCOMPATIBLE_LOG: &str =
    "doveadm not compatible with this server (mixed old and new binaries?)";

/// `VERSION\tdirector-doveadm\t1\t<minor>`: the first line in each direction.
///
/// The line is checked raw (not tab-unescaped), exactly four fields. The major must equal 1
/// (`01` also does: Dovecot compares the number, not the text); the minor is any `<uint>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// Minor version; both Dovecot sides send 0 and ignore the peer's.
    pub minor: u32,
}

impl Handshake {
    /// The greeting the director sends on accept, and the line doveadm sends on connect.
    pub const CURRENT: Handshake = Handshake {
        minor: VERSION_MINOR,
    };

    /// Parse a handshake line (without LF).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let bad = |field| ParseError::new(ParseErrorKind::BadHandshake, field);
        let rest = c_str(line).strip_prefix(b"VERSION\t").ok_or(bad(0))?;
        let rest = rest
            .strip_prefix(SERVICE_NAME)
            .and_then(|r| r.strip_prefix(b"\t"))
            .ok_or(bad(1))?;
        let tab = memchr::memchr(b'\t', rest).ok_or(bad(3))?;
        let (major, minor) = (&rest[..tab], &rest[tab + 1..]);
        if !is_major(major) {
            return Err(bad(2));
        }
        let minor = parse_u32(minor).ok_or(bad(3))?;
        Ok(Handshake { minor })
    }

    /// Append the line, LF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"VERSION\t");
        out.extend_from_slice(SERVICE_NAME);
        out.push(b'\t');
        put_num(out, VERSION_MAJOR);
        out.push(b'\t');
        put_num(out, self.minor);
        out.push(b'\n');
    }
}

/// Dovecot parses the major as a 64-bit number and compares it with 1; digits that are all
/// leading zeros before a final `1` can never overflow, so this is the whole rule.
fn is_major(text: &[u8]) -> bool {
    !text.is_empty()
        && text.iter().all(u8::is_ascii_digit)
        && text.iter().position(|&b| b != b'0') == Some(text.len() - 1)
        && text.last() == Some(&b'1')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_answers() {
        let ok: &[(&[u8], u32)] = &[
            (b"VERSION\tdirector-doveadm\t1\t0", 0),
            (b"VERSION\tdirector-doveadm\t1\t7", 7),
            // Leading zeros: accepted by the real director (checked).
            (b"VERSION\tdirector-doveadm\t01\t0", 0),
            (b"VERSION\tdirector-doveadm\t1\t00", 0),
            (b"VERSION\tdirector-doveadm\t1\t4294967295", u32::MAX),
        ];
        for &(line, minor) in ok {
            assert_eq!(
                Handshake::parse(line),
                Ok(Handshake { minor }),
                "{}",
                line.escape_ascii()
            );
        }
        // §2.3 [verified]: wrong name, major != 1, missing minor, a command.
        let bad: &[&[u8]] = &[
            b"",
            b"HOST-LIST",
            b"VERSION\tdirector-doveadm\t2\t0",
            b"VERSION\tdirector-doveadm\t0\t0",
            b"VERSION\tdirector-doveadm\t10\t0",
            b"VERSION\tdirector-doveadm\t+1\t0",
            b"VERSION\tdirector-doveadm\t\t0",
            b"VERSION\tdirector-doveadm\t1",
            b"VERSION\tdirector-doveadm\t1\t",
            b"VERSION\tdirector-doveadm\t1\t-1",
            b"VERSION\tdirector-doveadm\t1\t0\t",
            b"VERSION\tdirector-doveadm\t1\t0\textra",
            b"VERSION\tdirector-doveadm\t1\t4294967296",
            b"VERSION\tdirector\t1\t0",
            b"VERSION\tdirector-doveadmX\t1\t0",
            b"VERSION\tdoveadm-server\t1\t0",
            b"version\tdirector-doveadm\t1\t0",
            b"VERSION\tdirector-doveadm\t1\x000\t0",
        ];
        for &line in bad {
            assert!(Handshake::parse(line).is_err(), "{}", line.escape_ascii());
        }
    }

    #[test]
    fn greeting_bytes() {
        let mut out = Vec::new();
        Handshake::CURRENT.encode(&mut out);
        assert_eq!(out, b"VERSION\tdirector-doveadm\t1\t0\n");
    }

    proptest! {
        #[test]
        fn roundtrip(minor in any::<u32>()) {
            let mut out = Vec::new();
            Handshake { minor }.encode(&mut out);
            prop_assert_eq!(out.pop(), Some(b'\n'));
            prop_assert_eq!(Handshake::parse(&out), Ok(Handshake { minor }));
        }

        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Handshake::parse(&line);
        }
    }
}
