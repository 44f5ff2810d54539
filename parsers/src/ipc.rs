//! Kicks through Dovecot 2.3's ipc service (auth-proxy.md §10).
//!
//! Mirrors the director's senders in `src/director/director.c`, the ipc server's request
//! split in `src/ipc/client.c`, the login processes' command parser in
//! `src/login-common/login-proxy.c` and the reply prefixes of
//! `src/lib-master/ipc-client.c`. The director writes `proxy\t*\t<command>` and reads one
//! final `+`/`-` line per request. Dovecot 2.4 has no ipc service; its anvil kicks are in
//! [`crate::anvil`]. No I/O.

use std::net::IpAddr;

use crate::error::{ParseError, ParseErrorKind};
use crate::field::{self, parse_u32, push_fields, push_u32, want_min_args, Field};
use crate::ip::{ip_to_string, parse_ip};

/// The ipc group login processes join.
pub const PROXY_GROUP: &[u8] = b"proxy";

/// Which members of the group receive the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcTarget {
    /// `*`: every member (what the director always sends).
    All,
    /// One member, by its ipc connection ID.
    Id(u32),
}

/// A kick command for login processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KickCommand {
    /// `KICK\t<user>[\t<user>...]`: sessions whose login name equals one of the (tab-escaped)
    /// names.
    Kick {
        /// The user names, tab-escaped.
        users: Vec<Field>,
    },
    /// `KICK-ALT\t<field>\t<value>[\t<value>...]`: sessions whose alternative username
    /// `<field>` (a passdb `user_*` field) equals one of the values.
    KickAlt {
        /// The alternative-username field name, tab-escaped.
        field: Field,
        /// The values, tab-escaped.
        values: Vec<Field>,
    },
    /// `KICK-DIRECTOR-HASH\t<hash>[\t<except_ip>]`: sessions whose login name hashes to
    /// `<hash>`, except those proxied to `<except_ip>`.
    KickDirectorHash {
        /// The user hash.
        hash: u32,
        /// Sessions proxied to this backend are spared.
        except_ip: Option<IpAddr>,
    },
}

impl KickCommand {
    /// `KICK` for one user (the value is tab-escaped here).
    pub fn kick(user: &[u8]) -> Self {
        Self::Kick {
            users: vec![Field::escaped(user)],
        }
    }

    /// `KICK-ALT` for one field/value pair (both tab-escaped here).
    pub fn kick_alt(field: &[u8], value: &[u8]) -> Self {
        Self::KickAlt {
            field: Field::escaped(field),
            values: vec![Field::escaped(value)],
        }
    }

    /// Parse the command part (everything after `<group>\t<target>\t`); `base` is the field
    /// index of its first field within the whole line, for error positions.
    fn parse_at(line: &[u8], base: usize) -> Result<Self, ParseError> {
        let at = |e: ParseError| ParseError::new(e.kind, e.field + base);
        let (cmd, args) = field::command(line).map_err(at)?;
        match cmd {
            b"KICK" => {
                want_min_args(&args, 1).map_err(at)?;
                Ok(Self::Kick {
                    users: field::wire_fields(&args),
                })
            }
            b"KICK-ALT" => {
                want_min_args(&args, 2).map_err(at)?;
                Ok(Self::KickAlt {
                    field: Field::wire(args[0]),
                    values: field::wire_fields(&args[1..]),
                })
            }
            b"KICK-DIRECTOR-HASH" => {
                want_min_args(&args, 1).map_err(at)?;
                if args.len() > 2 {
                    return Err(ParseError::new(ParseErrorKind::BadArgCount, base + 3));
                }
                let hash = parse_u32(args[0], 1).map_err(at)?;
                let except_ip = match args.get(1) {
                    None => None,
                    Some(text) => Some(
                        parse_ip(text).ok_or(ParseError::new(ParseErrorKind::BadIp, base + 2))?,
                    ),
                };
                Ok(Self::KickDirectorHash { hash, except_ip })
            }
            _ => Err(ParseError::new(ParseErrorKind::UnknownCommand, base)),
        }
    }

    /// Parse a bare command line (as a login process receives it).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        Self::parse_at(line, 0)
    }

    /// Append the command without a trailing LF (it is the tail of an [`IpcRequest`]).
    fn encode_part(&self, out: &mut Vec<u8>) {
        match self {
            Self::Kick { users } => {
                out.extend_from_slice(b"KICK");
                push_fields(out, users);
            }
            Self::KickAlt { field, values } => {
                out.extend_from_slice(b"KICK-ALT");
                push_fields(out, std::slice::from_ref(field));
                push_fields(out, values);
            }
            Self::KickDirectorHash { hash, except_ip } => {
                out.extend_from_slice(b"KICK-DIRECTOR-HASH\t");
                push_u32(out, *hash);
                if let Some(ip) = except_ip {
                    out.push(b'\t');
                    out.extend_from_slice(ip_to_string(ip).as_bytes());
                }
            }
        }
    }

    /// Append the bare command line, including its trailing LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_part(out);
        out.push(b'\n');
    }
}

/// A request to the ipc service: `<group>\t<*|id>\t<command>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcRequest {
    /// The ipc group (raw); the director always uses [`PROXY_GROUP`].
    pub group: Field,
    /// The receiving members.
    pub target: IpcTarget,
    /// The command.
    pub command: KickCommand,
}

impl IpcRequest {
    /// `proxy\t*\t<command>`: what the director sends.
    pub fn proxy_all(command: KickCommand) -> Self {
        Self {
            group: Field::wire(PROXY_GROUP),
            target: IpcTarget::All,
            command,
        }
    }

    /// Parse one request line (without its LF).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let mut parts = line.splitn(3, |&b| b == b'\t');
        let group = parts
            .next()
            .filter(|g| !g.is_empty())
            .ok_or(ParseError::new(ParseErrorKind::Empty, 0))?;
        let (Some(target), Some(command)) = (parts.next(), parts.next()) else {
            return Err(ParseError::new(ParseErrorKind::BadArgCount, 1));
        };
        let target = match target {
            b"*" => IpcTarget::All,
            id => IpcTarget::Id(parse_u32(id, 1)?),
        };
        let command = KickCommand::parse_at(command, 2)?;
        Ok(Self {
            group: Field::wire(group),
            target,
            command,
        })
    }

    /// Append the request line, including its trailing LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.group.as_bytes());
        match self.target {
            IpcTarget::All => out.extend_from_slice(b"\t*\t"),
            IpcTarget::Id(id) => {
                out.push(b'\t');
                push_u32(out, id);
                out.push(b'\t');
            }
        }
        self.command.encode_part(out);
        out.push(b'\n');
    }
}

/// A reply line from the ipc service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpcReply {
    /// `+<data>`: success; login processes send the number of sessions kicked (`+1`; the
    /// ipc service itself answers `+(null)` when the group has no members).
    Success(Vec<u8>),
    /// `-<text>`: failure.
    Failure(Vec<u8>),
    /// `:<data>`: intermediate data (not expected by the director; it logs and ignores it).
    Data(Vec<u8>),
}

impl IpcReply {
    /// Parse one reply line (without its LF); any other first byte is `UnknownCommand`.
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let (&first, rest) = line
            .split_first()
            .ok_or(ParseError::new(ParseErrorKind::Empty, 0))?;
        let rest = rest.to_vec();
        match first {
            b'+' => Ok(Self::Success(rest)),
            b'-' => Ok(Self::Failure(rest)),
            b':' => Ok(Self::Data(rest)),
            _ => Err(ParseError::new(ParseErrorKind::UnknownCommand, 0)),
        }
    }

    /// Append the reply line, including its trailing LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (prefix, data) = match self {
            Self::Success(d) => (b'+', d),
            Self::Failure(d) => (b'-', d),
            Self::Data(d) => (b':', d),
        };
        out.push(prefix);
        out.extend_from_slice(data);
        out.push(b'\n');
    }

    /// For a `+<n>` success, the number of sessions kicked.
    pub fn kicked_count(&self) -> Option<u32> {
        match self {
            Self::Success(d) => parse_u32(d, 0).ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::strategy::{field, fields};
    use crate::testing::{assert_errors, encoded, f};
    use proptest::prelude::*;

    /// §10.2 [verified] wire lines and the lab's doveadm-kick* transcripts.
    #[test]
    fn known_requests() {
        let cases: &[(&[u8], KickCommand)] = &[
            (b"proxy\t*\tKICK\talice", KickCommand::kick(b"alice")),
            (b"proxy\t*\tKICK\tcap03", KickCommand::kick(b"cap03")),
            (
                b"proxy\t*\tKICK-ALT\tuser_foo\tbar",
                KickCommand::kick_alt(b"user_foo", b"bar"),
            ),
            (
                b"proxy\t*\tKICK-ALT\tdirector_tag\tfoo",
                KickCommand::kick_alt(b"director_tag", b"foo"),
            ),
            (
                b"proxy\t*\tKICK-DIRECTOR-HASH\t1669653170",
                KickCommand::KickDirectorHash {
                    hash: 1669653170,
                    except_ip: None,
                },
            ),
            (
                b"proxy\t*\tKICK-DIRECTOR-HASH\t1180792497\t10.0.0.2",
                KickCommand::KickDirectorHash {
                    hash: 1180792497,
                    except_ip: Some("10.0.0.2".parse().unwrap()),
                },
            ),
            (b"proxy\t*\tKICK\tal\x01tice", KickCommand::kick(b"al\tice")),
            (
                b"proxy\t*\tKICK\ta\tb",
                KickCommand::Kick {
                    users: vec![f("a"), f("b")],
                },
            ),
        ];
        for (line, cmd) in cases {
            let want = IpcRequest::proxy_all(cmd.clone());
            assert_eq!(
                IpcRequest::parse(line).as_ref(),
                Ok(&want),
                "{}",
                line.escape_ascii()
            );
            assert_eq!(encoded(|o| want.encode(o)), [*line, b"\n"].concat());
        }
        let r = IpcRequest::parse(b"proxy\t7\tKICK\tx").unwrap();
        assert_eq!(r.target, IpcTarget::Id(7));
        assert_eq!(encoded(|o| r.encode(o)), b"proxy\t7\tKICK\tx\n");
        assert_eq!(encoded(|o| KickCommand::kick(b"x").encode(o)), b"KICK\tx\n");
    }

    #[test]
    fn request_errors() {
        use ParseErrorKind::*;
        let cases: &[(&[u8], ParseErrorKind, usize)] = &[
            (b"", Empty, 0),
            (b"proxy", BadArgCount, 1),
            (b"proxy\t*", BadArgCount, 1),
            (b"proxy\tx\tKICK\ta", BadNumber, 1),
            (b"proxy\t*\t", Empty, 2),
            (b"proxy\t*\tKICK", BadArgCount, 3),
            (b"proxy\t*\tKICK-ALT\tf", BadArgCount, 4),
            (b"proxy\t*\tKICK-DIRECTOR-HASH\tx", BadNumber, 3),
            (b"proxy\t*\tKICK-DIRECTOR-HASH\t1\tnope", BadIp, 4),
            (b"proxy\t*\tKICK-DIRECTOR-HASH\t1\t", BadIp, 4),
            (
                b"proxy\t*\tKICK-DIRECTOR-HASH\t1\t10.0.0.1\tx",
                BadArgCount,
                5,
            ),
            (b"proxy\t*\tKICK-HOST\t10.0.0.1", UnknownCommand, 2),
        ];
        assert_errors(IpcRequest::parse, cases);
    }

    /// §10.1: `+1` [verified], `+(null)` from the lab's ipc with no members, `-`/`:` forms.
    #[test]
    fn known_replies() {
        let cases: &[(&[u8], IpcReply)] = &[
            (b"+1", IpcReply::Success(b"1".to_vec())),
            (b"+(null)", IpcReply::Success(b"(null)".to_vec())),
            (b"+", IpcReply::Success(vec![])),
            (
                b"-Unknown command",
                IpcReply::Failure(b"Unknown command".to_vec()),
            ),
            (b":data", IpcReply::Data(b"data".to_vec())),
        ];
        for (line, want) in cases {
            assert_eq!(IpcReply::parse(line).as_ref(), Ok(want));
            assert_eq!(encoded(|o| want.encode(o)), [*line, b"\n"].concat());
        }
        assert_eq!(IpcReply::parse(b"+1").unwrap().kicked_count(), Some(1));
        assert_eq!(IpcReply::parse(b"+(null)").unwrap().kicked_count(), None);
        assert_eq!(
            IpcReply::parse(b"1"),
            Err(ParseError::new(ParseErrorKind::UnknownCommand, 0))
        );
        assert_eq!(
            IpcReply::parse(b""),
            Err(ParseError::new(ParseErrorKind::Empty, 0))
        );
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from)
        ]
    }

    fn command() -> impl Strategy<Value = KickCommand> {
        prop_oneof![
            (field(), fields()).prop_map(|(u, mut us)| {
                us.insert(0, u);
                KickCommand::Kick { users: us }
            }),
            (field(), field(), fields()).prop_map(|(field, v, mut values)| {
                values.insert(0, v);
                KickCommand::KickAlt { field, values }
            }),
            (any::<u32>(), proptest::option::of(ip()))
                .prop_map(|(hash, except_ip)| KickCommand::KickDirectorHash { hash, except_ip }),
        ]
    }

    fn request() -> impl Strategy<Value = IpcRequest> {
        let group = field().prop_filter("non-empty group", |g| !g.as_bytes().is_empty());
        let target = prop_oneof![Just(IpcTarget::All), any::<u32>().prop_map(IpcTarget::Id)];
        (group, target, command()).prop_map(|(group, target, command)| IpcRequest {
            group,
            target,
            command,
        })
    }

    fn data() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..20)
    }

    proptest! {
        #[test]
        fn request_roundtrip(r in request()) {
            let mut out = encoded(|o| r.encode(o));
            prop_assert_eq!(out.pop(), Some(b'\n'));
            prop_assert_eq!(IpcRequest::parse(&out), Ok(r));
        }

        #[test]
        fn reply_roundtrip(r in prop_oneof![data().prop_map(IpcReply::Success), data().prop_map(IpcReply::Failure), data().prop_map(IpcReply::Data)]) {
            let mut out = encoded(|o| r.encode(o));
            prop_assert_eq!(out.pop(), Some(b'\n'));
            prop_assert_eq!(IpcReply::parse(&out), Ok(r));
        }

        #[test]
        fn parse_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(r) = IpcRequest::parse(&bytes) {
                let mut out = encoded(|o| r.encode(o));
                out.pop();
                prop_assert_eq!(IpcRequest::parse(&out), Ok(r));
            }
            if let Ok(r) = IpcReply::parse(&bytes) {
                let mut out = encoded(|o| r.encode(o));
                out.pop();
                prop_assert_eq!(IpcReply::parse(&out), Ok(r));
            }
        }
    }
}
