//! Auth master (userdb) protocol as it flows through `director-userdb` (auth-proxy.md §7):
//! LMTP or doveadm ↔ `auth-userdb`.
//!
//! Mirrors `src/lib-auth/auth-master.c` (client side) and
//! `src/auth/auth-master-connection.c` (server side). The director forwards everything raw
//! and only examines `PASS` replies ([`crate::passdb`]); these typed lines are for
//! examination and tests. The server splits requests without unescaping
//! (`t_strsplit_tab`), so every field stays raw ([`Field`]) and re-encodes byte for byte.
//! Any minor version is accepted (2.3 clients send `1\t0`, servers `1\t1`; 2.4 both `1\t3`).
//! No I/O.

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{self, parse_u32, push_fields, push_u32, want_args, want_min_args, Field};

/// `AUTH_MASTER_PROTOCOL_MAJOR_VERSION`.
pub const AUTH_MASTER_PROTOCOL_MAJOR_VERSION: u32 = 1;

/// A line from the client (LMTP, doveadm) to the auth server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterRequest {
    /// `VERSION\t<major>\t<minor>`.
    Version {
        /// Major version.
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// `CPID\t<pid>`.
    Cpid {
        /// The client's PID.
        pid: u32,
    },
    /// `PASS\t<id>\t<user>[\t<param>...]`: passdb lookup, e.g. LMTP's
    /// `service=lmtp` (2.4: `protocol=lmtp`), `lip=`, `lport=`, `rip=`, `rport=`.
    Pass {
        /// Request ID.
        id: u32,
        /// The user name, raw.
        user: Field,
        /// Parameters, raw and in order.
        params: Vec<Field>,
    },
    /// `USER\t<id>\t<user>[\t<param>...]`: userdb lookup.
    User {
        /// Request ID.
        id: u32,
        /// The user name, raw.
        user: Field,
        /// Parameters, raw and in order.
        params: Vec<Field>,
    },
    /// `LIST\t<id>[\t<param>...]`: iterate users (`user=<mask>` and lookup info).
    List {
        /// Request ID.
        id: u32,
        /// Parameters, raw and in order.
        params: Vec<Field>,
    },
}

/// A line from the auth server to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterReply {
    /// `VERSION\t<major>\t<minor>`.
    Version {
        /// Major version.
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// `SPID\t<auth pid>`.
    Spid {
        /// The auth process's PID.
        pid: u32,
    },
    /// `PASS\t<id>[\t<field>...]`, normally `user=<name>` first, then passdb extra fields
    /// (the director decorates these).
    Pass {
        /// Request ID.
        id: u32,
        /// Reply fields, raw and in order.
        fields: Vec<Field>,
    },
    /// `USER\t<id>\t<user>\t[<field>...]`; Dovecot always writes the TAB after the user, so
    /// a reply without userdb fields has one empty field.
    User {
        /// Request ID.
        id: u32,
        /// The user name, tab-escaped.
        user: Field,
        /// Userdb fields, raw and in order.
        fields: Vec<Field>,
    },
    /// `NOTFOUND\t<id>`.
    NotFound {
        /// Request ID.
        id: u32,
    },
    /// `FAIL\t<id>[\t<field>...]`, e.g. `reason=...` or the director's `code=temp_fail`.
    Fail {
        /// Request ID.
        id: u32,
        /// Fields, raw and in order.
        fields: Vec<Field>,
    },
    /// `LIST\t<id>\t<user>`: one user of a `LIST` iteration.
    List {
        /// Request ID.
        id: u32,
        /// The user name, tab-escaped.
        user: Field,
    },
    /// `DONE\t<id>\t` or `DONE\t<id>\tfail`: end of a `LIST` iteration.
    Done {
        /// Request ID.
        id: u32,
        /// Whether the iteration failed.
        failed: bool,
    },
}

fn id_user_params(args: &[&[u8]]) -> Result<(u32, Field, Vec<Field>), ParseError> {
    want_min_args(args, 2)?;
    Ok((
        parse_u32(args[0], 1)?,
        Field::wire(args[1]),
        field::wire_fields(&args[2..]),
    ))
}

fn id_fields(args: &[&[u8]]) -> Result<(u32, Vec<Field>), ParseError> {
    want_min_args(args, 1)?;
    Ok((parse_u32(args[0], 1)?, field::wire_fields(&args[1..])))
}

fn push_cmd_u32(out: &mut Vec<u8>, cmd: &[u8], n: u32) {
    out.extend_from_slice(cmd);
    out.push(b'\t');
    push_u32(out, n);
}

fn parse_version(args: &[&[u8]]) -> Result<(u32, u32), ParseError> {
    want_args(args, 2)?;
    Ok((parse_u32(args[0], 1)?, parse_u32(args[1], 2)?))
}

impl MasterRequest {
    /// Parse one line (without its LF).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let (cmd, args) = field::command(line)?;
        match cmd {
            b"VERSION" => parse_version(&args).map(|(major, minor)| Self::Version { major, minor }),
            b"CPID" => {
                want_args(&args, 1)?;
                Ok(Self::Cpid {
                    pid: parse_u32(args[0], 1)?,
                })
            }
            b"PASS" => {
                id_user_params(&args).map(|(id, user, params)| Self::Pass { id, user, params })
            }
            b"USER" => {
                id_user_params(&args).map(|(id, user, params)| Self::User { id, user, params })
            }
            b"LIST" => id_fields(&args).map(|(id, params)| Self::List { id, params }),
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
            Self::Pass { id, user, params } | Self::User { id, user, params } => {
                let cmd: &[u8] = if matches!(self, Self::Pass { .. }) {
                    b"PASS"
                } else {
                    b"USER"
                };
                push_cmd_u32(out, cmd, *id);
                push_fields(out, std::slice::from_ref(user));
                push_fields(out, params);
            }
            Self::List { id, params } => {
                push_cmd_u32(out, b"LIST", *id);
                push_fields(out, params);
            }
        }
        out.push(b'\n');
    }
}

impl MasterReply {
    /// Parse one line (without its LF).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let (cmd, args) = field::command(line)?;
        match cmd {
            b"VERSION" => parse_version(&args).map(|(major, minor)| Self::Version { major, minor }),
            b"SPID" => {
                want_args(&args, 1)?;
                Ok(Self::Spid {
                    pid: parse_u32(args[0], 1)?,
                })
            }
            b"PASS" => id_fields(&args).map(|(id, fields)| Self::Pass { id, fields }),
            b"USER" => {
                id_user_params(&args).map(|(id, user, fields)| Self::User { id, user, fields })
            }
            b"NOTFOUND" => {
                want_args(&args, 1)?;
                Ok(Self::NotFound {
                    id: parse_u32(args[0], 1)?,
                })
            }
            b"FAIL" => id_fields(&args).map(|(id, fields)| Self::Fail { id, fields }),
            b"LIST" => {
                want_args(&args, 2)?;
                Ok(Self::List {
                    id: parse_u32(args[0], 1)?,
                    user: Field::wire(args[1]),
                })
            }
            b"DONE" => {
                want_args(&args, 2)?;
                let id = parse_u32(args[0], 1)?;
                let failed = match args[1] {
                    b"" => false,
                    b"fail" => true,
                    _ => return Err(ParseError::new(ParseErrorKind::BadValue, 2)),
                };
                Ok(Self::Done { id, failed })
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
            Self::Spid { pid } => push_cmd_u32(out, b"SPID", *pid),
            Self::Pass { id, fields } => {
                push_cmd_u32(out, b"PASS", *id);
                push_fields(out, fields);
            }
            Self::User { id, user, fields } => {
                push_cmd_u32(out, b"USER", *id);
                push_fields(out, std::slice::from_ref(user));
                push_fields(out, fields);
            }
            Self::NotFound { id } => push_cmd_u32(out, b"NOTFOUND", *id),
            Self::Fail { id, fields } => {
                push_cmd_u32(out, b"FAIL", *id);
                push_fields(out, fields);
            }
            Self::List { id, user } => {
                push_cmd_u32(out, b"LIST", *id);
                push_fields(out, std::slice::from_ref(user));
            }
            Self::Done { id, failed } => {
                push_cmd_u32(out, b"DONE", *id);
                out.extend_from_slice(if *failed { b"\tfail" } else { b"\t" });
            }
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::strategy::{field, fields};
    use crate::testing::{assert_errors, encoded, f};
    use proptest::prelude::*;

    /// Lines from the lab transcripts (lmtp-delivery, doveadm-map) and auth-proxy.md §7,
    /// dovecot-2.4.md §4.
    #[test]
    fn known_requests() {
        let cases: &[(&[u8], MasterRequest)] = &[
            (b"VERSION\t1\t0", MasterRequest::Version { major: 1, minor: 0 }),
            (b"VERSION\t1\t3", MasterRequest::Version { major: 1, minor: 3 }),
            (b"CPID\t123", MasterRequest::Cpid { pid: 123 }),
            (
                b"PASS\t1\tcap01\tservice=lmtp\tlip=127.0.0.2\tlport=24\trip=127.0.0.1\trport=36856",
                MasterRequest::Pass {
                    id: 1,
                    user: f("cap01"),
                    params: ["service=lmtp", "lip=127.0.0.2", "lport=24", "rip=127.0.0.1", "rport=36856"]
                        .map(f)
                        .to_vec(),
                },
            ),
            (
                b"PASS\t2\tuser2\tprotocol=lmtp\tlip=127.0.4.10\tlport=24\trip=127.0.0.1\trport=45062",
                MasterRequest::Pass {
                    id: 2,
                    user: f("user2"),
                    params: ["protocol=lmtp", "lip=127.0.4.10", "lport=24", "rip=127.0.0.1", "rport=45062"]
                        .map(f)
                        .to_vec(),
                },
            ),
            (b"USER\t3\talice\tservice=lmtp", MasterRequest::User { id: 3, user: f("alice"), params: vec![f("service=lmtp")] }),
            (b"LIST\t1", MasterRequest::List { id: 1, params: vec![] }),
            (b"LIST\t2\tuser=a*", MasterRequest::List { id: 2, params: vec![f("user=a*")] }),
        ];
        for (line, want) in cases {
            assert_eq!(
                MasterRequest::parse(line).as_ref(),
                Ok(want),
                "{}",
                line.escape_ascii()
            );
            assert_eq!(encoded(|o| want.encode(o)), [*line, b"\n"].concat());
        }
    }

    #[test]
    fn known_replies() {
        let cases: &[(&[u8], MasterReply)] = &[
            (
                b"VERSION\t1\t1",
                MasterReply::Version { major: 1, minor: 1 },
            ),
            (b"SPID\t29008", MasterReply::Spid { pid: 29008 }),
            (
                b"PASS\t1\tuser=cap01\tproxy=y\tlip=127.0.0.2\tlport=24",
                MasterReply::Pass {
                    id: 1,
                    fields: ["user=cap01", "proxy=y", "lip=127.0.0.2", "lport=24"]
                        .map(f)
                        .to_vec(),
                },
            ),
            (
                b"USER\t2\talice\tuid=103\tgid=106\thome=/home/alice",
                MasterReply::User {
                    id: 2,
                    user: f("alice"),
                    fields: ["uid=103", "gid=106", "home=/home/alice"].map(f).to_vec(),
                },
            ),
            (
                b"USER\t2\talice\t",
                MasterReply::User {
                    id: 2,
                    user: f("alice"),
                    fields: vec![f("")],
                },
            ),
            (b"NOTFOUND\t5", MasterReply::NotFound { id: 5 }),
            (
                b"FAIL\t1\tcode=temp_fail",
                MasterReply::Fail {
                    id: 1,
                    fields: vec![f("code=temp_fail")],
                },
            ),
            (
                b"FAIL\t1",
                MasterReply::Fail {
                    id: 1,
                    fields: vec![],
                },
            ),
            (
                b"LIST\t1\tal\x01tice",
                MasterReply::List {
                    id: 1,
                    user: f("al\x01tice"),
                },
            ),
            (
                b"DONE\t1\tfail",
                MasterReply::Done {
                    id: 1,
                    failed: true,
                },
            ),
            (
                b"DONE\t1\t",
                MasterReply::Done {
                    id: 1,
                    failed: false,
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                MasterReply::parse(line).as_ref(),
                Ok(want),
                "{}",
                line.escape_ascii()
            );
            assert_eq!(encoded(|o| want.encode(o)), [*line, b"\n"].concat());
        }
    }

    #[test]
    fn errors() {
        use ParseErrorKind::*;
        let req: &[(&[u8], ParseErrorKind, usize)] = &[
            (b"", Empty, 0),
            (b"PASS\t1", BadArgCount, 2),
            (b"USER\tx\talice", BadNumber, 1),
            (b"LIST", BadArgCount, 1),
            (b"CACHE-FLUSH\t1", UnknownCommand, 0),
        ];
        assert_errors(MasterRequest::parse, req);
        let rep: &[(&[u8], ParseErrorKind, usize)] = &[
            (b"DONE\t1", BadArgCount, 2),
            (b"DONE\t1\tok", BadValue, 2),
            (b"NOTFOUND\t1\tx", BadArgCount, 2),
            (b"LIST\t1", BadArgCount, 2),
            (b"OK\t1\t0", UnknownCommand, 0),
        ];
        assert_errors(MasterReply::parse, rep);
    }

    fn request() -> impl Strategy<Value = MasterRequest> {
        prop_oneof![
            (any::<u32>(), any::<u32>())
                .prop_map(|(major, minor)| MasterRequest::Version { major, minor }),
            any::<u32>().prop_map(|pid| MasterRequest::Cpid { pid }),
            (any::<u32>(), field(), fields()).prop_map(|(id, user, params)| MasterRequest::Pass {
                id,
                user,
                params
            }),
            (any::<u32>(), field(), fields()).prop_map(|(id, user, params)| MasterRequest::User {
                id,
                user,
                params
            }),
            (any::<u32>(), fields()).prop_map(|(id, params)| MasterRequest::List { id, params }),
        ]
    }

    fn reply() -> impl Strategy<Value = MasterReply> {
        prop_oneof![
            (any::<u32>(), any::<u32>())
                .prop_map(|(major, minor)| MasterReply::Version { major, minor }),
            any::<u32>().prop_map(|pid| MasterReply::Spid { pid }),
            (any::<u32>(), fields()).prop_map(|(id, fields)| MasterReply::Pass { id, fields }),
            (any::<u32>(), field(), fields()).prop_map(|(id, user, fields)| MasterReply::User {
                id,
                user,
                fields
            }),
            any::<u32>().prop_map(|id| MasterReply::NotFound { id }),
            (any::<u32>(), fields()).prop_map(|(id, fields)| MasterReply::Fail { id, fields }),
            (any::<u32>(), field()).prop_map(|(id, user)| MasterReply::List { id, user }),
            (any::<u32>(), any::<bool>()).prop_map(|(id, failed)| MasterReply::Done { id, failed }),
        ]
    }

    proptest! {
        #[test]
        fn request_roundtrip(r in request()) {
            let mut out = encoded(|o| r.encode(o));
            prop_assert_eq!(out.pop(), Some(b'\n'));
            prop_assert_eq!(MasterRequest::parse(&out), Ok(r));
        }

        #[test]
        fn reply_roundtrip(r in reply()) {
            let mut out = encoded(|o| r.encode(o));
            prop_assert_eq!(out.pop(), Some(b'\n'));
            prop_assert_eq!(MasterReply::parse(&out), Ok(r));
        }

        #[test]
        fn parse_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(r) = MasterRequest::parse(&bytes) {
                let mut out = encoded(|o| r.encode(o));
                out.pop();
                prop_assert_eq!(MasterRequest::parse(&out), Ok(r));
            }
            if let Ok(r) = MasterReply::parse(&bytes) {
                let mut out = encoded(|o| r.encode(o));
                out.pop();
                prop_assert_eq!(MasterReply::parse(&out), Ok(r));
            }
        }
    }
}
