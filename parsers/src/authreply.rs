//! The authreply handshake (auth-proxy.md §8).
//!
//! Mirrors `login_connection_init` and `login_connection_authreply_input` in
//! `src/director/login-connection.c`. On accept the director sends [`SERVER_GREETING`]; the
//! client's first line must pass [`ClientHandshake::parse`] (else the director logs
//! `authreply client sent invalid handshake: <line>` and closes). Every later line is
//! handled like an upstream auth line: [`crate::passdb::examine`] with
//! [`crate::passdb::ReplyKind::AuthOk`]. No I/O.

use crate::error::ParseError;
use crate::field::{push_u32, version_string_verify};

/// `AUTHREPLY_PROTOCOL_MAJOR_VERSION`.
pub const AUTHREPLY_PROTOCOL_MAJOR_VERSION: u32 = 1;
/// `AUTHREPLY_PROTOCOL_MINOR_VERSION`.
pub const AUTHREPLY_PROTOCOL_MINOR_VERSION: u32 = 0;
/// Service name the client must announce.
pub const CLIENT_SERVICE: &[u8] = b"director-authreply-client";
/// Service name the director announces.
pub const SERVER_SERVICE: &[u8] = b"director-authreply-server";
/// The director's greeting, sent on accept (LF included).
pub const SERVER_GREETING: &[u8] = b"VERSION\tdirector-authreply-server\t1\t0\n";

/// The client's handshake line `VERSION\tdirector-authreply-client\t1\t<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHandshake {
    /// The client's minor version (any unsigned value is accepted).
    pub minor: u32,
}

impl ClientHandshake {
    /// Validate the first line from an authreply client (without its LF); major must be 1.
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        version_string_verify(line, CLIENT_SERVICE, AUTHREPLY_PROTOCOL_MAJOR_VERSION)
            .map(|minor| Self { minor })
    }

    /// Append the handshake line, including its trailing LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"VERSION\t");
        out.extend_from_slice(CLIENT_SERVICE);
        out.push(b'\t');
        push_u32(out, AUTHREPLY_PROTOCOL_MAJOR_VERSION);
        out.push(b'\t');
        push_u32(out, self.minor);
        out.push(b'\n');
    }
}

/// Check the director's greeting (for clients and tests): returns the server's minor.
pub fn parse_server_greeting(line: &[u8]) -> Result<u32, ParseError> {
    version_string_verify(line, SERVER_SERVICE, AUTHREPLY_PROTOCOL_MAJOR_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseErrorKind;
    use proptest::prelude::*;

    /// §8 [verified].
    #[test]
    fn handshakes() {
        assert_eq!(
            parse_server_greeting(SERVER_GREETING.strip_suffix(b"\n").unwrap()),
            Ok(0)
        );
        let good: &[(&[u8], u32)] = &[
            (b"VERSION\tdirector-authreply-client\t1\t0", 0),
            (b"VERSION\tdirector-authreply-client\t1\t7", 7),
            (b"VERSION\tdirector-authreply-client\t001\t0", 0),
        ];
        for (line, minor) in good {
            assert_eq!(
                ClientHandshake::parse(line),
                Ok(ClientHandshake { minor: *minor })
            );
        }
        for line in [
            &b"VERSION\tdirector-authreply-client\t2\t0"[..],
            b"VERSION\tdirector-authreply-server\t1\t0",
            b"VERSION\tdirector-authreply-client\t1",
            b"VERSION\tdirector-authreply-client\t1\tx",
            b"OK\t1\tuser=alice\tproxy",
            b"",
        ] {
            let err = ClientHandshake::parse(line).unwrap_err();
            assert_eq!(
                err.kind,
                ParseErrorKind::BadHandshake,
                "{}",
                line.escape_ascii()
            );
        }
        let mut out = Vec::new();
        ClientHandshake { minor: 0 }.encode(&mut out);
        assert_eq!(out, b"VERSION\tdirector-authreply-client\t1\t0\n");
    }

    /// Accepted (`true`) or rejected by the real 2.3.19.1 director's authreply socket
    /// (captured 2026-11-29: a rejected client got the greeting, then EOF).
    #[test]
    fn real_director_handshakes() {
        let cases: &[(&[u8], bool)] = &[
            (b"VERSION\tdirector-authreply-client\t1\t0", true),
            (b"VERSION\tdirector-authreply-client\t01\t5", true),
            (b"VERSION\tdirector-authreply-client\t1\t4294967295", true),
            (b"VERSION\tdirector-authreply-client\t1\t4294967296", false),
            (b"VERSION\tdirector-authreply-client\t1\t", false),
            (b"VERSION\tdirector-authreply-client\t1\t0\textra", false),
            (b"VERSION\tdirector-authreply-client\t2\t0", false),
            (b"VERSION\tdirector-authreply-clientx\t1\t0", false),
            (b"VERSION\tdirector-authreply-client\t1", false),
            (b"VERSION\tdirector-authreply-client\t+1\t0", false),
        ];
        for (line, accepted) in cases {
            assert_eq!(
                ClientHandshake::parse(line).is_ok(),
                *accepted,
                "{}",
                line.escape_ascii()
            );
        }
    }

    proptest! {
        #[test]
        fn roundtrip(minor in any::<u32>()) {
            let mut out = Vec::new();
            ClientHandshake { minor }.encode(&mut out);
            prop_assert_eq!(ClientHandshake::parse(&out[..out.len() - 1]), Ok(ClientHandshake { minor }));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..60)) {
            let _ = ClientHandshake::parse(&bytes);
            let _ = parse_server_greeting(&bytes);
        }
    }
}
