//! Kicks through Dovecot 2.4's anvil, which replaced 2.3's ipc service (dovecot-2.4.md §6).
//!
//! Mirrors `anvil_connection_input_line` / `anvil_connection_request` in
//! `src/anvil/anvil-connection.c` and `connect_limit_dump` in `src/anvil/connect-limit.c`
//! (tag 2.4.1). The director connects to `BASE/anvil`, writes [`CLIENT_HANDSHAKE`], reads
//! the server's `VERSION\tanvil-server\t2\t0`, then sends [`AnvilRequest`]s; each kick is
//! answered by a bare count ([`KickReply`]), `CONNECT-DUMP` by a [`ConnectDumpHeader`], one
//! [`ConnectDumpSession`] per session and an empty line. Anvil drops the connection on any
//! error, so there is no error reply. Arguments are tab-escaped. No I/O.

use std::net::IpAddr;

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{
    self, parse_u32, push_fields, push_u32, version_string_verify, want_args, want_min_args, Field,
};
use crate::ip::{ip_to_string, parse_ip};

/// `ANVIL_CLIENT_PROTOCOL_MAJOR_VERSION`.
pub const ANVIL_CLIENT_PROTOCOL_MAJOR_VERSION: u32 = 2;
/// What the director sends on connect: the version line, then an empty handshake line
/// ("no service/pid": plain text, no multiplexing, no admin commands).
pub const CLIENT_HANDSHAKE: &[u8] = b"VERSION\tanvil-client\t2\t0\n\n";

/// Check anvil's greeting `VERSION\tanvil-server\t2\t<minor>`; returns the minor.
pub fn parse_server_greeting(line: &[u8]) -> Result<u32, ParseError> {
    version_string_verify(line, b"anvil-server", ANVIL_CLIENT_PROTOCOL_MAJOR_VERSION)
}

/// A command the director sends to anvil.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnvilRequest {
    /// `KICK-USER\t<user>[\t<conn-guid>]`: every session of the user, or only the one with
    /// that 32-hex-digit anvil GUID.
    KickUser {
        /// The user name, tab-escaped.
        user: Field,
        /// The session's GUID (32 hex digits, as listed by `CONNECT-DUMP`).
        conn_guid: Option<Field>,
    },
    /// `KICK-ALT-USER\t<field>\t<value>[\t<ip>]`: sessions whose alternative username
    /// `<field>` equals `<value>`, except sessions whose **client** IP is `<ip>`.
    KickAltUser {
        /// The alternative-username field, e.g. `user_director_hash`, tab-escaped.
        field: Field,
        /// The value, tab-escaped.
        value: Field,
        /// Client IP whose sessions are spared.
        except_ip: Option<IpAddr>,
    },
    /// `CONNECT-DUMP`: list every session.
    ConnectDump,
}

fn parse_guid(text: &[u8], field: usize) -> Result<Field, ParseError> {
    if text.len() == 32 && text.iter().all(u8::is_ascii_hexdigit) {
        Ok(Field::wire(text))
    } else {
        Err(ParseError::new(ParseErrorKind::BadValue, field))
    }
}

fn parse_opt_ip(text: &[u8], field: usize) -> Result<Option<IpAddr>, ParseError> {
    if text.is_empty() {
        return Ok(None);
    }
    parse_ip(text)
        .map(Some)
        .ok_or(ParseError::new(ParseErrorKind::BadIp, field))
}

fn push_opt_ip(out: &mut Vec<u8>, ip: &Option<IpAddr>) {
    if let Some(ip) = ip {
        out.extend_from_slice(ip_to_string(ip).as_bytes());
    }
}

impl AnvilRequest {
    /// `KICK-USER` for one user (tab-escaped here).
    pub fn kick_user(user: &[u8]) -> Self {
        Self::KickUser {
            user: Field::escaped(user),
            conn_guid: None,
        }
    }

    /// `KICK-ALT-USER` for a field/value pair (tab-escaped here).
    pub fn kick_alt_user(field: &[u8], value: &[u8], except_ip: Option<IpAddr>) -> Self {
        Self::KickAltUser {
            field: Field::escaped(field),
            value: Field::escaped(value),
            except_ip,
        }
    }

    /// Parse one line (without its LF).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let (cmd, args) = field::command(line)?;
        match cmd {
            b"KICK-USER" => {
                want_min_args(&args, 1)?;
                if args.len() > 2 {
                    return Err(ParseError::new(ParseErrorKind::BadArgCount, 3));
                }
                let conn_guid = args.get(1).map(|g| parse_guid(g, 2)).transpose()?;
                Ok(Self::KickUser {
                    user: Field::wire(args[0]),
                    conn_guid,
                })
            }
            b"KICK-ALT-USER" => {
                want_min_args(&args, 2)?;
                if args.len() > 3 {
                    return Err(ParseError::new(ParseErrorKind::BadArgCount, 4));
                }
                let except_ip = match args.get(2) {
                    None => None,
                    Some(t) => Some(parse_ip(t).ok_or(ParseError::new(ParseErrorKind::BadIp, 3))?),
                };
                Ok(Self::KickAltUser {
                    field: Field::wire(args[0]),
                    value: Field::wire(args[1]),
                    except_ip,
                })
            }
            b"CONNECT-DUMP" => want_args(&args, 0).map(|()| Self::ConnectDump),
            _ => Err(ParseError::new(ParseErrorKind::UnknownCommand, 0)),
        }
    }

    /// Append the line, including its trailing LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::KickUser { user, conn_guid } => {
                out.extend_from_slice(b"KICK-USER");
                push_fields(out, std::slice::from_ref(user));
                push_fields(out, conn_guid.as_slice());
            }
            Self::KickAltUser {
                field,
                value,
                except_ip,
            } => {
                out.extend_from_slice(b"KICK-ALT-USER");
                push_fields(out, &[field.clone(), value.clone()]);
                if except_ip.is_some() {
                    out.push(b'\t');
                    push_opt_ip(out, except_ip);
                }
            }
            Self::ConnectDump => out.extend_from_slice(b"CONNECT-DUMP"),
        }
        out.push(b'\n');
    }
}

/// The reply to a kick: `<n>`, the number of sessions kicked (no `+`, unlike 2.3's ipc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KickReply {
    /// Sessions kicked (a count of signals sent, not proof; dovecot-2.4.md §6.4).
    pub count: u32,
}

impl KickReply {
    /// Parse one line (without its LF).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        parse_u32(line, 0).map(|count| Self { count })
    }

    /// Append the line, including its trailing LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        push_u32(out, self.count);
        out.push(b'\n');
    }
}

/// First line of a `CONNECT-DUMP` reply: the alternative-username field names (an empty
/// line when there are none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectDumpHeader {
    /// Field names, tab-escaped, in the order session lines list their values.
    pub alt_fields: Vec<Field>,
}

impl ConnectDumpHeader {
    /// Parse one line (without its LF); never fails.
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        Ok(Self {
            alt_fields: crate::escape::split_tabs(line).map(Field::wire).collect(),
        })
    }

    /// Append the line, including its trailing LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for (i, f) in self.alt_fields.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            out.extend_from_slice(f.as_bytes());
        }
        out.push(b'\n');
    }
}

/// One session of a `CONNECT-DUMP` reply:
/// `<pid>\t<user>\t<service>\t<client ip>\t<conn-guid>\t<dest ip>[\t<alt value>...]`.
/// The dump ends with an empty line, which this type rejects (`Empty`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectDumpSession {
    /// The login process's PID (kick target of last resort, dovecot-2.4.md §6.4).
    pub pid: u32,
    /// Login name, tab-escaped.
    pub user: Field,
    /// Service, e.g. `imap-login`, tab-escaped.
    pub service: Field,
    /// Client IP (empty on the wire when unknown).
    pub client_ip: Option<IpAddr>,
    /// The session's GUID, 32 hex digits.
    pub conn_guid: Field,
    /// Backend IP the session is proxied to (empty on the wire when none).
    pub dest_ip: Option<IpAddr>,
    /// Alternative-username values, in header order, tab-escaped.
    pub alt_values: Vec<Field>,
}

impl ConnectDumpSession {
    /// Parse one line (without its LF).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let (pid, args) = field::command(line)?;
        want_min_args(&args, 5)?;
        Ok(Self {
            pid: parse_u32(pid, 0)?,
            user: Field::wire(args[0]),
            service: Field::wire(args[1]),
            client_ip: parse_opt_ip(args[2], 3)?,
            conn_guid: parse_guid(args[3], 4)?,
            dest_ip: parse_opt_ip(args[4], 5)?,
            alt_values: field::wire_fields(&args[5..]),
        })
    }

    /// Append the line, including its trailing LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        push_u32(out, self.pid);
        push_fields(out, &[self.user.clone(), self.service.clone()]);
        out.push(b'\t');
        push_opt_ip(out, &self.client_ip);
        push_fields(out, std::slice::from_ref(&self.conn_guid));
        out.push(b'\t');
        push_opt_ip(out, &self.dest_ip);
        push_fields(out, &self.alt_values);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::strategy::{field, fields};
    use crate::testing::{assert_errors, encoded, f};
    use proptest::prelude::*;

    /// dovecot-2.4.md §6.2 [verified] lines.
    #[test]
    fn known_requests() {
        let guid = "2825213264240c6b912b000083ecc375";
        let cases: &[(&[u8], AnvilRequest)] = &[
            (b"KICK-USER\tkick01", AnvilRequest::kick_user(b"kick01")),
            (
                b"KICK-USER\tkick04\t00000000000000000000000000000001",
                AnvilRequest::KickUser {
                    user: f("kick04"),
                    conn_guid: Some(f("00000000000000000000000000000001")),
                },
            ),
            (
                b"KICK-USER\tkick03\t2825213264240c6b912b000083ecc375",
                AnvilRequest::KickUser {
                    user: f("kick03"),
                    conn_guid: Some(f(guid)),
                },
            ),
            (
                b"KICK-ALT-USER\tuser_director_hash\t1763515756",
                AnvilRequest::kick_alt_user(b"user_director_hash", b"1763515756", None),
            ),
            (
                b"KICK-ALT-USER\tuser_director_hash\t245949797\t127.0.0.1",
                AnvilRequest::kick_alt_user(
                    b"user_director_hash",
                    b"245949797",
                    Some("127.0.0.1".parse().unwrap()),
                ),
            ),
            (b"CONNECT-DUMP", AnvilRequest::ConnectDump),
        ];
        for (line, want) in cases {
            assert_eq!(
                AnvilRequest::parse(line).as_ref(),
                Ok(want),
                "{}",
                line.escape_ascii()
            );
            assert_eq!(encoded(|o| want.encode(o)), [*line, b"\n"].concat());
        }
        assert_eq!(parse_server_greeting(b"VERSION\tanvil-server\t2\t0"), Ok(0));
        assert!(parse_server_greeting(b"VERSION\tanvil-server\t1\t0").is_err());
        assert!(CLIENT_HANDSHAKE.starts_with(b"VERSION\tanvil-client\t2\t0\n"));
    }

    #[test]
    fn request_errors() {
        use ParseErrorKind::*;
        let cases: &[(&[u8], ParseErrorKind, usize)] = &[
            (b"", Empty, 0),
            (b"KICK-USER", BadArgCount, 1),
            (b"KICK-USER\tu\tnothex", BadValue, 2),
            (
                b"KICK-USER\tu\t00000000000000000000000000000001\tx",
                BadArgCount,
                3,
            ),
            (b"KICK-ALT-USER\tf", BadArgCount, 2),
            (b"KICK-ALT-USER\tf\tv\tbad", BadIp, 3),
            (b"CONNECT-DUMP\tx", BadArgCount, 1),
            (b"KICK\tu", UnknownCommand, 0),
        ];
        assert_errors(AnvilRequest::parse, cases);
    }

    /// dovecot-2.4.md §6.2: `1\n` replies and the CONNECT-DUMP example.
    #[test]
    fn known_replies() {
        assert_eq!(KickReply::parse(b"1"), Ok(KickReply { count: 1 }));
        assert_eq!(
            KickReply::parse(b"+1").unwrap_err().kind,
            ParseErrorKind::BadNumber
        );
        assert_eq!(encoded(|o| KickReply { count: 0 }.encode(o)), b"0\n");
        let header = ConnectDumpHeader::parse(b"user_director_hash").unwrap();
        assert_eq!(header.alt_fields, vec![f("user_director_hash")]);
        assert_eq!(ConnectDumpHeader::parse(b"").unwrap().alt_fields, vec![]);
        assert_eq!(encoded(|o| header.encode(o)), b"user_director_hash\n");
        let line = b"11153\tkick03\timap-login\t127.0.0.1\t2825213264240c6b912b000083ecc375\t127.0.4.12\t245949797";
        let s = ConnectDumpSession::parse(line).unwrap();
        assert_eq!(s.pid, 11153);
        assert_eq!(s.user, f("kick03"));
        assert_eq!(s.dest_ip, Some("127.0.4.12".parse().unwrap()));
        assert_eq!(s.alt_values, vec![f("245949797")]);
        assert_eq!(encoded(|o| s.encode(o)), [&line[..], b"\n"].concat());
        let bare = b"1\tu\timap-login\t\t00000000000000000000000000000001\t";
        let s = ConnectDumpSession::parse(bare).unwrap();
        assert_eq!((s.client_ip, s.dest_ip), (None, None));
        assert_eq!(encoded(|o| s.encode(o)), [&bare[..], b"\n"].concat());
        assert_eq!(
            ConnectDumpSession::parse(b"").unwrap_err().kind,
            ParseErrorKind::Empty
        );
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from)
        ]
    }

    fn guid() -> impl Strategy<Value = Field> {
        "[0-9a-fA-F]{32}".prop_map(|s| Field::from_raw(s.into_bytes()).unwrap())
    }

    fn request() -> impl Strategy<Value = AnvilRequest> {
        prop_oneof![
            (field(), proptest::option::of(guid()))
                .prop_map(|(user, conn_guid)| AnvilRequest::KickUser { user, conn_guid }),
            (field(), field(), proptest::option::of(ip())).prop_map(|(field, value, except_ip)| {
                AnvilRequest::KickAltUser {
                    field,
                    value,
                    except_ip,
                }
            }),
            Just(AnvilRequest::ConnectDump),
        ]
    }

    fn session() -> impl Strategy<Value = ConnectDumpSession> {
        (
            any::<u32>(),
            field(),
            field(),
            proptest::option::of(ip()),
            guid(),
            proptest::option::of(ip()),
            fields(),
        )
            .prop_map(
                |(pid, user, service, client_ip, conn_guid, dest_ip, alt_values)| {
                    ConnectDumpSession {
                        pid,
                        user,
                        service,
                        client_ip,
                        conn_guid,
                        dest_ip,
                        alt_values,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn request_roundtrip(r in request()) {
            let mut out = encoded(|o| r.encode(o));
            prop_assert_eq!(out.pop(), Some(b'\n'));
            prop_assert_eq!(AnvilRequest::parse(&out), Ok(r));
        }

        #[test]
        fn session_roundtrip(s in session()) {
            let mut out = encoded(|o| s.encode(o));
            prop_assert_eq!(out.pop(), Some(b'\n'));
            prop_assert_eq!(ConnectDumpSession::parse(&out), Ok(s));
        }

        #[test]
        fn reply_roundtrip(count in any::<u32>(), alt_fields in fields()) {
            let mut out = encoded(|o| KickReply { count }.encode(o));
            out.pop();
            prop_assert_eq!(KickReply::parse(&out), Ok(KickReply { count }));
            // a header of one empty name is indistinguishable from no names, as in Dovecot
            let h = ConnectDumpHeader { alt_fields };
            let mut out = encoded(|o| h.encode(o));
            out.pop();
            let back = ConnectDumpHeader::parse(&out).unwrap();
            if h.alt_fields.len() == 1 && h.alt_fields[0].as_bytes().is_empty() {
                prop_assert!(back.alt_fields.is_empty());
            } else {
                prop_assert_eq!(back, h);
            }
        }

        #[test]
        fn parse_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..90)) {
            if let Ok(r) = AnvilRequest::parse(&bytes) {
                let mut out = encoded(|o| r.encode(o));
                out.pop();
                prop_assert_eq!(AnvilRequest::parse(&out), Ok(r));
            }
            if let Ok(s) = ConnectDumpSession::parse(&bytes) {
                let mut out = encoded(|o| s.encode(o));
                out.pop();
                prop_assert_eq!(ConnectDumpSession::parse(&out), Ok(s));
            }
            let _ = (KickReply::parse(&bytes), ConnectDumpHeader::parse(&bytes));
        }
    }
}
