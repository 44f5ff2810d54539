//! Auth client protocol: login process ↔ auth server, the traffic of `login/director`.
//!
//! Mirrors `src/lib-auth/auth-client-connection.c` (login side) and
//! `src/auth/auth-client-connection.c` (auth side), protocol 1.2 (Dovecot 2.3) and 1.3
//! (2.4; any minor is accepted). The director copies login→auth bytes raw and only examines
//! `OK` replies ([`crate::passdb`]); these typed lines are for examination and tests.
//! Fields stay raw ([`Field`]), so every line re-encodes byte for byte, and credentials
//! (`resp=`, `pass=`, `CONT` data, the cookie) never show in `Debug`. No I/O.

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{
    self, parse_u32, push_fields, push_u32, want_args, want_min_args, Field, Secret,
};

/// `AUTH_CLIENT_PROTOCOL_MAJOR_VERSION`: the only major version either side accepts.
pub const AUTH_CLIENT_PROTOCOL_MAJOR_VERSION: u32 = 1;

/// A line from the login process to the auth server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientLine {
    /// `VERSION\t<major>\t<minor>` (2.3 logins send `1\t2`, 2.4 logins `1\t3`).
    Version {
        /// Major version (must be 1 for the peer to accept it).
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// `CPID\t<login pid>`.
    Cpid {
        /// The login process's PID.
        pid: u32,
    },
    /// `AUTH\t<id>\t<mechanism>[\t<param>...]`, params such as `service=imap` (2.4:
    /// `protocol=imap`, `final-resp-ok`), `secured`, `lip=`, `resp=<base64>`.
    Auth {
        /// Request ID, echoed in the reply.
        id: u32,
        /// SASL mechanism name, e.g. `PLAIN`.
        mechanism: Field,
        /// `key=value` or bare-flag parameters, raw and in order.
        params: Vec<Field>,
    },
    /// `CONT\t<id>\t<base64 data>`: the next SASL response.
    Cont {
        /// Request ID.
        id: u32,
        /// The SASL response (a credential, so hidden in `Debug`).
        data: Secret<Field>,
    },
    /// `CANCEL\t<id>`.
    Cancel {
        /// Request ID.
        id: u32,
    },
}

/// A line from the auth server to the login process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine {
    /// `VERSION\t<major>\t<minor>` (2.3: `1\t2`, 2.4: `1\t3`).
    Version {
        /// Major version.
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// `MECH\t<name>[\t<flag>...]`, flags such as `plaintext`, `anonymous`.
    Mech {
        /// Mechanism name.
        name: Field,
        /// Mechanism flags, raw and in order.
        flags: Vec<Field>,
    },
    /// `SPID\t<auth pid>`.
    Spid {
        /// The auth process's PID.
        pid: u32,
    },
    /// `CUID\t<n>`: the connection's unique ID at the auth server.
    Cuid {
        /// Connection ID.
        id: u32,
    },
    /// `COOKIE\t<32 hex digits>`: authenticates the post-login master request.
    Cookie {
        /// The cookie, raw (hidden in `Debug`).
        cookie: Secret<Field>,
    },
    /// `DONE`: end of the handshake.
    Done,
    /// `OK\t<id>[\t<field>...]`: authentication succeeded; fields such as `user=`, `proxy`,
    /// `host=`, `pass=` (the director examines and decorates these, [`crate::passdb`]).
    Ok {
        /// Request ID.
        id: u32,
        /// Reply fields, raw and in order.
        fields: Vec<Field>,
    },
    /// `CONT\t<id>\t<base64 data>`: a SASL challenge.
    Cont {
        /// Request ID.
        id: u32,
        /// The challenge.
        data: Field,
    },
    /// `FAIL\t<id>[\t<field>...]`, fields such as `user=`, `reason=`, `code=temp_fail`.
    Fail {
        /// Request ID.
        id: u32,
        /// Reply fields, raw and in order.
        fields: Vec<Field>,
    },
}

fn parse_version(args: &[&[u8]]) -> Result<(u32, u32), ParseError> {
    want_args(args, 2)?;
    Ok((parse_u32(args[0], 1)?, parse_u32(args[1], 2)?))
}

fn single_u32(args: &[&[u8]]) -> Result<u32, ParseError> {
    want_args(args, 1)?;
    parse_u32(args[0], 1)
}

fn push_cmd_u32(out: &mut Vec<u8>, cmd: &[u8], n: u32) {
    out.extend_from_slice(cmd);
    out.push(b'\t');
    push_u32(out, n);
}

impl ClientLine {
    /// Parse one line (without its LF).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let (cmd, args) = field::command(line)?;
        match cmd {
            b"VERSION" => parse_version(&args).map(|(major, minor)| Self::Version { major, minor }),
            b"CPID" => single_u32(&args).map(|pid| Self::Cpid { pid }),
            b"AUTH" => {
                want_min_args(&args, 2)?;
                Ok(Self::Auth {
                    id: parse_u32(args[0], 1)?,
                    mechanism: Field::wire(args[1]),
                    params: field::wire_fields(&args[2..]),
                })
            }
            b"CONT" => {
                want_args(&args, 2)?;
                Ok(Self::Cont {
                    id: parse_u32(args[0], 1)?,
                    data: Secret(Field::wire(args[1])),
                })
            }
            b"CANCEL" => single_u32(&args).map(|id| Self::Cancel { id }),
            _ => Err(ParseError::new(ParseErrorKind::UnknownCommand, 0)),
        }
    }

    /// Append the line, including its trailing LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Version { major, minor } => {
                push_cmd_u32(out, b"VERSION", *major);
                out.push(b'\t');
                push_u32(out, *minor);
            }
            Self::Cpid { pid } => push_cmd_u32(out, b"CPID", *pid),
            Self::Auth {
                id,
                mechanism,
                params,
            } => {
                push_cmd_u32(out, b"AUTH", *id);
                push_fields(out, std::slice::from_ref(mechanism));
                push_fields(out, params);
            }
            Self::Cont { id, data } => {
                push_cmd_u32(out, b"CONT", *id);
                push_fields(out, std::slice::from_ref(data.expose()));
            }
            Self::Cancel { id } => push_cmd_u32(out, b"CANCEL", *id),
        }
        out.push(b'\n');
    }
}

impl ServerLine {
    /// Parse one line (without its LF).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let (cmd, args) = field::command(line)?;
        match cmd {
            b"VERSION" => parse_version(&args).map(|(major, minor)| Self::Version { major, minor }),
            b"MECH" => {
                want_min_args(&args, 1)?;
                Ok(Self::Mech {
                    name: Field::wire(args[0]),
                    flags: field::wire_fields(&args[1..]),
                })
            }
            b"SPID" => single_u32(&args).map(|pid| Self::Spid { pid }),
            b"CUID" => single_u32(&args).map(|id| Self::Cuid { id }),
            b"COOKIE" => {
                want_args(&args, 1)?;
                Ok(Self::Cookie {
                    cookie: Secret(Field::wire(args[0])),
                })
            }
            b"DONE" => want_args(&args, 0).map(|()| Self::Done),
            b"OK" | b"FAIL" => {
                want_min_args(&args, 1)?;
                let id = parse_u32(args[0], 1)?;
                let fields = field::wire_fields(&args[1..]);
                Ok(if cmd == b"OK" {
                    Self::Ok { id, fields }
                } else {
                    Self::Fail { id, fields }
                })
            }
            b"CONT" => {
                want_args(&args, 2)?;
                Ok(Self::Cont {
                    id: parse_u32(args[0], 1)?,
                    data: Field::wire(args[1]),
                })
            }
            _ => Err(ParseError::new(ParseErrorKind::UnknownCommand, 0)),
        }
    }

    /// Append the line, including its trailing LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Version { major, minor } => {
                push_cmd_u32(out, b"VERSION", *major);
                out.push(b'\t');
                push_u32(out, *minor);
            }
            Self::Mech { name, flags } => {
                out.extend_from_slice(b"MECH");
                push_fields(out, std::slice::from_ref(name));
                push_fields(out, flags);
            }
            Self::Spid { pid } => push_cmd_u32(out, b"SPID", *pid),
            Self::Cuid { id } => push_cmd_u32(out, b"CUID", *id),
            Self::Cookie { cookie } => {
                out.extend_from_slice(b"COOKIE");
                push_fields(out, std::slice::from_ref(cookie.expose()));
            }
            Self::Done => out.extend_from_slice(b"DONE"),
            Self::Ok { id, fields } => {
                push_cmd_u32(out, b"OK", *id);
                push_fields(out, fields);
            }
            Self::Cont { id, data } => {
                push_cmd_u32(out, b"CONT", *id);
                push_fields(out, std::slice::from_ref(data));
            }
            Self::Fail { id, fields } => {
                push_cmd_u32(out, b"FAIL", *id);
                push_fields(out, fields);
            }
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::strategy::{field, fields};
    use crate::testing::{assert_errors, f};
    use proptest::prelude::*;

    fn roundtrip_client(line: &[u8]) -> ClientLine {
        let parsed =
            ClientLine::parse(line).unwrap_or_else(|e| panic!("{}: {e}", line.escape_ascii()));
        let mut out = Vec::new();
        parsed.encode(&mut out);
        assert_eq!(
            out.strip_suffix(b"\n"),
            Some(line),
            "{}",
            line.escape_ascii()
        );
        parsed
    }

    fn roundtrip_server(line: &[u8]) -> ServerLine {
        let parsed =
            ServerLine::parse(line).unwrap_or_else(|e| panic!("{}: {e}", line.escape_ascii()));
        let mut out = Vec::new();
        parsed.encode(&mut out);
        assert_eq!(
            out.strip_suffix(b"\n"),
            Some(line),
            "{}",
            line.escape_ascii()
        );
        parsed
    }

    /// auth-proxy.md §2.2-2.3 and dovecot-2.4.md §3 (verified lines).
    #[test]
    fn known_client_lines() {
        assert_eq!(
            roundtrip_client(b"VERSION\t1\t2"),
            ClientLine::Version { major: 1, minor: 2 }
        );
        assert_eq!(
            roundtrip_client(b"VERSION\t1\t3"),
            ClientLine::Version { major: 1, minor: 3 }
        );
        assert_eq!(
            roundtrip_client(b"CPID\t30755"),
            ClientLine::Cpid { pid: 30755 }
        );
        let auth = roundtrip_client(
            b"AUTH\t1\tPLAIN\tservice=imap\tsession=uVywKGlhith/AAAB\tlip=127.0.5.1\trip=127.0.0.1\tlport=11143\trport=55434\tresp=AGFsaWNlAHNlY3JldA==",
        );
        let ClientLine::Auth {
            id,
            mechanism,
            params,
        } = &auth
        else {
            panic!("{auth:?}")
        };
        assert_eq!(
            (*id, mechanism.as_bytes(), params.len()),
            (1, &b"PLAIN"[..], 7)
        );
        assert_eq!(params[6].key(), b"resp");
        let shown = format!("{auth:?}");
        assert!(!shown.contains("AGFsaWNl"), "{shown}");
        roundtrip_client(
            b"AUTH\t4\tPLAIN\tprotocol=imap\tfinal-resp-ok\tsecured\tsession=a5hSBGphYNJ/AAAB\tlip=127.0.4.10\trip=127.0.0.1\tlport=143\trport=53856\tresp=AHVzZXIxAHBhc3M=",
        );
        assert_eq!(
            roundtrip_client(b"CONT\t7\t"),
            ClientLine::Cont {
                id: 7,
                data: Secret(f(""))
            }
        );
        assert!(!format!("{:?}", roundtrip_client(b"CONT\t7\tc2VjcmV0")).contains("c2VjcmV0"));
        assert_eq!(roundtrip_client(b"CANCEL\t3"), ClientLine::Cancel { id: 3 });
    }

    #[test]
    fn known_server_lines() {
        assert_eq!(
            roundtrip_server(b"VERSION\t1\t2"),
            ServerLine::Version { major: 1, minor: 2 }
        );
        assert_eq!(
            roundtrip_server(b"MECH\tPLAIN\tplaintext"),
            ServerLine::Mech {
                name: f("PLAIN"),
                flags: vec![f("plaintext")]
            }
        );
        assert_eq!(
            roundtrip_server(b"SPID\t29008"),
            ServerLine::Spid { pid: 29008 }
        );
        assert_eq!(roundtrip_server(b"CUID\t4"), ServerLine::Cuid { id: 4 });
        let cookie = roundtrip_server(b"COOKIE\t29c90163ae2baa9bd48715d60d2056e2");
        assert!(!format!("{cookie:?}").contains("29c9"));
        assert_eq!(roundtrip_server(b"DONE"), ServerLine::Done);
        let ok = roundtrip_server(
            b"OK\t1\tuser=alice\tproxy\tport=11143\tlip=127.0.5.1\tlport=11143\tpass=secret",
        );
        assert!(!format!("{ok:?}").contains("secret"));
        roundtrip_server(b"OK\t4\tuser=user1\tproxy=yes\tlip=127.0.4.10\tlport=143\tpass=pass\tproxy_refresh=450\thost=127.0.4.11");
        assert_eq!(
            roundtrip_server(b"FAIL\t1\tuser=cap02"),
            ServerLine::Fail {
                id: 1,
                fields: vec![f("user=cap02")]
            }
        );
        assert_eq!(
            roundtrip_server(b"FAIL\t9\tcode=temp_fail"),
            ServerLine::Fail {
                id: 9,
                fields: vec![f("code=temp_fail")]
            }
        );
        assert_eq!(
            roundtrip_server(b"OK\t2"),
            ServerLine::Ok {
                id: 2,
                fields: vec![]
            }
        );
        assert_eq!(
            roundtrip_server(b"CONT\t2\t"),
            ServerLine::Cont { id: 2, data: f("") }
        );
    }

    #[test]
    fn errors() {
        use ParseErrorKind::*;
        let cases: &[(&[u8], ParseErrorKind, usize)] = &[
            (b"", Empty, 0),
            (b"HELLO\t1", UnknownCommand, 0),
            (b"ok\t1", UnknownCommand, 0),
            (b"VERSION\t1", BadArgCount, 2),
            (b"VERSION\t1\t2\t3", BadArgCount, 3),
            (b"VERSION\tx\t2", BadNumber, 1),
            (b"AUTH\t1", BadArgCount, 2),
            (b"AUTH\t-1\tPLAIN", BadNumber, 1),
            (b"CONT\t1", BadArgCount, 2),
            (b"CANCEL", BadArgCount, 1),
        ];
        assert_errors(ClientLine::parse, cases);
        let cases: &[(&[u8], ParseErrorKind, usize)] = &[
            (b"DONE\tx", BadArgCount, 1),
            (b"OK", BadArgCount, 1),
            (b"OK\t\tuser=a", BadNumber, 1),
            (b"MECH", BadArgCount, 1),
            (b"AUTH\t1\tPLAIN", UnknownCommand, 0),
        ];
        assert_errors(ServerLine::parse, cases);
    }

    fn client_line() -> impl Strategy<Value = ClientLine> {
        prop_oneof![
            (any::<u32>(), any::<u32>())
                .prop_map(|(major, minor)| ClientLine::Version { major, minor }),
            any::<u32>().prop_map(|pid| ClientLine::Cpid { pid }),
            (any::<u32>(), field(), fields()).prop_map(|(id, mechanism, params)| {
                ClientLine::Auth {
                    id,
                    mechanism,
                    params,
                }
            }),
            (any::<u32>(), field()).prop_map(|(id, d)| ClientLine::Cont {
                id,
                data: Secret(d)
            }),
            any::<u32>().prop_map(|id| ClientLine::Cancel { id }),
        ]
    }

    fn server_line() -> impl Strategy<Value = ServerLine> {
        prop_oneof![
            (any::<u32>(), any::<u32>())
                .prop_map(|(major, minor)| ServerLine::Version { major, minor }),
            (field(), fields()).prop_map(|(name, flags)| ServerLine::Mech { name, flags }),
            any::<u32>().prop_map(|pid| ServerLine::Spid { pid }),
            any::<u32>().prop_map(|id| ServerLine::Cuid { id }),
            field().prop_map(|c| ServerLine::Cookie { cookie: Secret(c) }),
            Just(ServerLine::Done),
            (any::<u32>(), fields()).prop_map(|(id, fields)| ServerLine::Ok { id, fields }),
            (any::<u32>(), field()).prop_map(|(id, data)| ServerLine::Cont { id, data }),
            (any::<u32>(), fields()).prop_map(|(id, fields)| ServerLine::Fail { id, fields }),
        ]
    }

    proptest! {
        #[test]
        fn client_roundtrip(line in client_line()) {
            let mut out = Vec::new();
            line.encode(&mut out);
            prop_assert_eq!(out.pop(), Some(b'\n'));
            prop_assert_eq!(ClientLine::parse(&out), Ok(line));
        }

        #[test]
        fn server_roundtrip(line in server_line()) {
            let mut out = Vec::new();
            line.encode(&mut out);
            prop_assert_eq!(out.pop(), Some(b'\n'));
            prop_assert_eq!(ServerLine::parse(&out), Ok(line));
        }

        #[test]
        fn parse_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(line) = ClientLine::parse(&bytes) {
                let mut out = Vec::new();
                line.encode(&mut out);
                out.pop();
                prop_assert_eq!(ClientLine::parse(&out), Ok(line));
            }
            if let Ok(line) = ServerLine::parse(&bytes) {
                let mut out = Vec::new();
                line.encode(&mut out);
                out.pop();
                prop_assert_eq!(ServerLine::parse(&out), Ok(line));
            }
        }
    }
}
