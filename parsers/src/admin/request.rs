//! Command lines doveadm sends to the director (§§5-6), and the log text of a rejected one.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::num::{NonZeroU16, NonZeroU32};

use crate::error::{ParseError, ParseErrorKind};
use crate::escape::escape_into;
use crate::ip::{ip_to_string, parse_ip};

use super::fields::{c_str, fields, ip_at, num_at, parse_port, parse_u32, put_field, put_num};
use super::Command;

/// `MAX_VALID_VHOST_COUNT`: a larger count gets `vhost count too large`.
pub const MAX_VALID_VHOST_COUNT: u32 = 1000;
/// A vhost count of 4294967295 is Dovecot's "no count given" sentinel: sent explicitly, it is
/// neither too large nor applied.
pub const VHOST_COUNT_UNSET: u32 = u32::MAX;

/// `<user>` of USER-LOOKUP and USER-MOVE: a 32-bit hash if the whole argument is a `<uint>`,
/// else a name the director hashes with `director_username_hash` (§5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserArg {
    /// The argument was a `<uint>`: the user hash itself.
    Hash(u32),
    /// Any other argument (possibly empty); never a valid `<uint>`.
    Name(Vec<u8>),
}

impl UserArg {
    /// Classify an unescaped argument the way the director does.
    pub fn from_bytes(arg: &[u8]) -> UserArg {
        match parse_u32(arg) {
            Some(hash) => UserArg::Hash(hash),
            None => UserArg::Name(arg.to_vec()),
        }
    }

    fn put(&self, out: &mut Vec<u8>) {
        out.push(b'\t');
        match self {
            UserArg::Hash(hash) => put_num(out, hash),
            UserArg::Name(name) => escape_into(name, out),
        }
    }
}

/// `<ip>[@<tag>]`, the first argument of HOST-SET and HOST-UPDATE, split at the first `@`.
///
/// `tag: Some(b"")` (`10.0.0.1@`) and `None` mean the same to the director (the default
/// tag); both are kept so that a line re-encodes to the bytes doveadm sent. doveadm writes
/// the tag raw, not tab-escaped; only tags holding 0x01, TAB, CR or LF differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostSpec {
    /// The backend's address.
    pub ip: IpAddr,
    /// Text after the first `@`, if there was an `@`.
    pub tag: Option<Vec<u8>>,
}

impl HostSpec {
    /// The tag the director acts on: empty means the default tag.
    pub fn tag(&self) -> &[u8] {
        self.tag.as_deref().unwrap_or_default()
    }

    fn parse(field: &[u8]) -> Option<HostSpec> {
        let (ip, tag) = match memchr::memchr(b'@', field) {
            Some(at) => (&field[..at], Some(field[at + 1..].to_vec())),
            None => (field, None),
        };
        Some(HostSpec {
            ip: parse_ip(ip)?,
            tag,
        })
    }

    fn put(&self, out: &mut Vec<u8>) {
        let mut text = ip_to_string(&self.ip).into_bytes();
        if let Some(tag) = &self.tag {
            text.push(b'@');
            text.extend_from_slice(tag);
        }
        put_field(out, &text);
    }
}

/// One command line (`<NAME>[\t<arg>]*`). Arguments beyond those a command uses are ignored
/// when parsing (§3) and not kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// `HOST-LIST`
    HostList,
    /// `HOST-LIST-REMOVED`
    HostListRemoved,
    /// `HOST-SET\t<ip>[@<tag>][\t<vhost_count>]`
    HostSet {
        /// Host and optional tag.
        host: HostSpec,
        /// The count as sent; see [`Request::vhost_count`] for what the director applies.
        vhost_count: Option<u32>,
    },
    /// `HOST-UPDATE\t<ip>[@<tag>]\t<vhost_count>`
    HostUpdate {
        /// Host and optional tag.
        host: HostSpec,
        /// The count as sent; see [`Request::vhost_count`] for what the director applies.
        vhost_count: u32,
    },
    /// `HOST-UP\t<ip>`
    HostUp {
        /// The backend.
        ip: IpAddr,
    },
    /// `HOST-DOWN\t<ip>`
    HostDown {
        /// The backend.
        ip: IpAddr,
    },
    /// `HOST-REMOVE\t<ip>`
    HostRemove {
        /// The backend.
        ip: IpAddr,
    },
    /// `HOST-FLUSH[\t<ip>]`; no or empty IP flushes every host.
    HostFlush {
        /// The backend, `None` for all.
        ip: Option<IpAddr>,
    },
    /// `HOST-RESET-USERS[\t<ip>[\t<max_parallel>]]`; no or empty IP means all hosts.
    HostResetUsers {
        /// The backend, `None` for all.
        ip: Option<IpAddr>,
        /// Move limit; `None` means `director_max_parallel_moves`.
        max_parallel: Option<NonZeroU32>,
    },
    /// `USER-LOOKUP[\t<user>[\t<tag>]]`; a missing user is the empty name, a missing tag the
    /// default (empty) tag. Never rejected. doveadm writes user and tag raw, not escaped:
    /// see [`user_lookup_raw`].
    UserLookup {
        /// Hash or name.
        user: UserArg,
        /// Tag, empty for the default tag.
        tag: Vec<u8>,
    },
    /// `USER-LIST[\t<ip>]`; no or empty IP lists every user.
    UserList {
        /// Only users on this backend, `None` for all.
        ip: Option<IpAddr>,
    },
    /// `USER-MOVE\t<user>\t<ip>`
    UserMove {
        /// Hash (doveadm always sends one) or name.
        user: UserArg,
        /// Target backend.
        ip: IpAddr,
    },
    /// `USER-KICK\t<user>[\t<flag>]`; the user is a login name, matched exactly.
    UserKick {
        /// Login name (may be empty).
        user: Vec<u8>,
        /// The flag was exactly `nowait`: answer `TRYAGAIN` instead of waiting for a slot.
        nowait: bool,
    },
    /// `USER-KICK-ALT\t<field>\t<value>[\t<flag>]`
    UserKickAlt {
        /// passdb field naming the alternative username.
        field: Vec<u8>,
        /// Its value.
        value: Vec<u8>,
        /// The flag was exactly `nowait`.
        nowait: bool,
    },
    /// `DIRECTOR-LIST`
    DirectorList,
    /// `DIRECTOR-ADD\t<ip>[\t<port>]`; no port means the director's own ring port.
    DirectorAdd {
        /// The director to add.
        ip: IpAddr,
        /// Its ring port.
        port: Option<NonZeroU16>,
    },
    /// `DIRECTOR-REMOVE\t<ip>[\t<port>]`; no port means the first director with that IP.
    DirectorRemove {
        /// The director to remove.
        ip: IpAddr,
        /// Its ring port.
        port: Option<NonZeroU16>,
    },
}

const NOWAIT: &[u8] = b"nowait";

impl Request {
    /// Parse a command line (without LF). Errors are protocol failures; [`Rejection`] turns
    /// one into the director's log text.
    pub fn parse(line: &[u8]) -> Result<Request, ParseError> {
        let f = fields(line);
        let name = f.first().ok_or(ParseError::new(ParseErrorKind::Empty, 0))?;
        let cmd =
            Command::from_name(name).ok_or(ParseError::new(ParseErrorKind::UnknownCommand, 0))?;
        let arg = |i: usize| f.get(i).map(Cow::as_ref);
        // An absent or empty argument that means "all" (HOST-FLUSH, HOST-RESET-USERS, USER-LIST).
        let opt_ip = |i: usize| match arg(i) {
            None | Some(b"") => Ok(None),
            Some(_) => ip_at(&f, i).map(Some),
        };
        let opt_port = |i: usize| match arg(i) {
            None => Ok(None),
            Some(text) => parse_port(text)
                .and_then(NonZeroU16::new)
                .map(Some)
                .ok_or(ParseError::new(ParseErrorKind::BadPort, i)),
        };
        let host_spec = || {
            let text = arg(1).ok_or(ParseError::new(ParseErrorKind::BadArgCount, 1))?;
            HostSpec::parse(text).ok_or(ParseError::new(ParseErrorKind::BadIp, 1))
        };
        Ok(match cmd {
            Command::HostList => Request::HostList,
            Command::HostListRemoved => Request::HostListRemoved,
            Command::DirectorList => Request::DirectorList,
            Command::HostSet => Request::HostSet {
                host: host_spec()?,
                vhost_count: match arg(2) {
                    None => None,
                    Some(_) => Some(num_at(&f, 2, parse_u32)?),
                },
            },
            Command::HostUpdate => Request::HostUpdate {
                host: host_spec()?,
                vhost_count: num_at(&f, 2, parse_u32)?,
            },
            Command::HostUp => Request::HostUp { ip: ip_at(&f, 1)? },
            Command::HostDown => Request::HostDown { ip: ip_at(&f, 1)? },
            Command::HostRemove => Request::HostRemove { ip: ip_at(&f, 1)? },
            Command::HostFlush => Request::HostFlush { ip: opt_ip(1)? },
            Command::HostResetUsers => {
                // Dovecot checks the limit before the IP; the order decides the log text.
                let max_parallel = match arg(2) {
                    None => None,
                    Some(_) => Some(num_at(&f, 2, |t| parse_u32(t).and_then(NonZeroU32::new))?),
                };
                Request::HostResetUsers {
                    ip: opt_ip(1)?,
                    max_parallel,
                }
            }
            Command::UserLookup => Request::UserLookup {
                user: UserArg::from_bytes(arg(1).unwrap_or_default()),
                tag: arg(2).unwrap_or_default().to_vec(),
            },
            Command::UserList => Request::UserList { ip: opt_ip(1)? },
            Command::UserMove => {
                // Dovecot wants both arguments before looking at either.
                if f.len() < 3 {
                    return Err(ParseError::new(ParseErrorKind::BadArgCount, f.len()));
                }
                Request::UserMove {
                    ip: ip_at(&f, 2)?,
                    user: UserArg::from_bytes(&f[1]),
                }
            }
            Command::UserKick => Request::UserKick {
                user: arg(1)
                    .ok_or(ParseError::new(ParseErrorKind::BadArgCount, 1))?
                    .to_vec(),
                nowait: arg(2) == Some(NOWAIT),
            },
            Command::UserKickAlt => {
                if f.len() < 3 {
                    return Err(ParseError::new(ParseErrorKind::BadArgCount, f.len()));
                }
                Request::UserKickAlt {
                    field: f[1].to_vec(),
                    value: f[2].to_vec(),
                    nowait: arg(3) == Some(NOWAIT),
                }
            }
            Command::DirectorAdd => Request::DirectorAdd {
                ip: ip_at(&f, 1)?,
                port: opt_port(2)?,
            },
            Command::DirectorRemove => Request::DirectorRemove {
                ip: ip_at(&f, 1)?,
                port: opt_port(2)?,
            },
        })
    }

    /// Append the line, LF included, every field tab-escaped. This is doveadm's form except
    /// that doveadm writes USER-LOOKUP's user and tag and HOST-SET/HOST-UPDATE's tag raw; the
    /// two differ only for 0x01, TAB, CR and LF (see [`user_lookup_raw`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.command().name().as_bytes());
        let put_ip = |out: &mut Vec<u8>, ip: &IpAddr| put_field(out, ip_to_string(ip).as_bytes());
        match self {
            Request::HostList | Request::HostListRemoved | Request::DirectorList => {}
            Request::HostSet { host, vhost_count } => {
                host.put(out);
                if let Some(n) = vhost_count {
                    out.push(b'\t');
                    put_num(out, n);
                }
            }
            Request::HostUpdate { host, vhost_count } => {
                host.put(out);
                out.push(b'\t');
                put_num(out, vhost_count);
            }
            Request::HostUp { ip } | Request::HostDown { ip } | Request::HostRemove { ip } => {
                put_ip(out, ip)
            }
            Request::HostFlush { ip } | Request::UserList { ip } => {
                if let Some(ip) = ip {
                    put_ip(out, ip);
                }
            }
            Request::HostResetUsers { ip, max_parallel } => match (ip, max_parallel) {
                (None, None) => {}
                (Some(ip), None) => put_ip(out, ip),
                (ip, Some(n)) => {
                    match ip {
                        Some(ip) => put_ip(out, ip),
                        None => out.push(b'\t'),
                    }
                    out.push(b'\t');
                    put_num(out, n);
                }
            },
            Request::UserLookup { user, tag } => {
                user.put(out);
                put_field(out, tag);
            }
            Request::UserMove { user, ip } => {
                user.put(out);
                put_ip(out, ip);
            }
            Request::UserKick { user, nowait } => {
                put_field(out, user);
                if *nowait {
                    put_field(out, NOWAIT);
                }
            }
            Request::UserKickAlt {
                field,
                value,
                nowait,
            } => {
                put_field(out, field);
                put_field(out, value);
                if *nowait {
                    put_field(out, NOWAIT);
                }
            }
            Request::DirectorAdd { ip, port } | Request::DirectorRemove { ip, port } => {
                put_ip(out, ip);
                if let Some(port) = port {
                    out.push(b'\t');
                    put_num(out, port);
                }
            }
        }
        out.push(b'\n');
    }

    /// Which command this is.
    pub fn command(&self) -> Command {
        match self {
            Request::HostList => Command::HostList,
            Request::HostListRemoved => Command::HostListRemoved,
            Request::HostSet { .. } => Command::HostSet,
            Request::HostUpdate { .. } => Command::HostUpdate,
            Request::HostUp { .. } => Command::HostUp,
            Request::HostDown { .. } => Command::HostDown,
            Request::HostRemove { .. } => Command::HostRemove,
            Request::HostFlush { .. } => Command::HostFlush,
            Request::HostResetUsers { .. } => Command::HostResetUsers,
            Request::UserLookup { .. } => Command::UserLookup,
            Request::UserList { .. } => Command::UserList,
            Request::UserMove { .. } => Command::UserMove,
            Request::UserKick { .. } => Command::UserKick,
            Request::UserKickAlt { .. } => Command::UserKickAlt,
            Request::DirectorList => Command::DirectorList,
            Request::DirectorAdd { .. } => Command::DirectorAdd,
            Request::DirectorRemove { .. } => Command::DirectorRemove,
        }
    }

    /// For HOST-SET/HOST-UPDATE, the vhost count the director checks against
    /// [`MAX_VALID_VHOST_COUNT`] and applies: `None` when absent or [`VHOST_COUNT_UNSET`].
    pub fn vhost_count(&self) -> Option<u32> {
        match self {
            Request::HostSet { vhost_count, .. } => *vhost_count,
            Request::HostUpdate { vhost_count, .. } => Some(*vhost_count),
            _ => None,
        }
        .filter(|&n| n != VHOST_COUNT_UNSET)
    }
}

/// Append USER-LOOKUP exactly as doveadm writes it: user and tag raw, not tab-escaped
/// (§8.1). The director unescapes every field, so a TAB in `user` splits it into user and
/// tag, and 0x01 starts an escape; [`Request::parse`] sees these bytes the same way.
pub fn user_lookup_raw(user: &[u8], tag: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"USER-LOOKUP\t");
    out.extend_from_slice(user);
    out.push(b'\t');
    out.extend_from_slice(tag);
    out.push(b'\n');
}

/// Why the director dropped a connection after a bad command line; `Display` gives the exact
/// text Dovecot logs (at error level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// `doveadm sent empty command line` (the line has no fields).
    EmptyLine,
    /// `doveadm sent unknown command: <line>` (the raw line, up to any NUL).
    UnknownCommand {
        /// The line as logged.
        line: Vec<u8>,
    },
    /// `doveadm sent invalid <CMD> parameters`, with the argument appended for HOST-UP and
    /// HOST-DOWN (`...parameters: <arg>`) and for a bad HOST-RESET-USERS IP (`...ip: <arg>`).
    InvalidParameters {
        /// The command.
        command: Command,
        /// The argument Dovecot includes in the message, if any.
        arg: Option<Vec<u8>>,
    },
}

impl Rejection {
    /// Classify `err`, which [`Request::parse`] returned for `line`.
    pub fn classify(line: &[u8], err: &ParseError) -> Rejection {
        let f = fields(line);
        let Some(command) = f.first().and_then(|name| Command::from_name(name)) else {
            return match f.is_empty() {
                true => Rejection::EmptyLine,
                false => Rejection::UnknownCommand {
                    line: c_str(line).to_vec(),
                },
            };
        };
        let first_arg = || f.get(1).map(|a| a.to_vec()).unwrap_or_default();
        let arg = match command {
            Command::HostUp | Command::HostDown => Some(first_arg()),
            Command::HostResetUsers if err.kind == ParseErrorKind::BadIp => Some(first_arg()),
            _ => None,
        };
        Rejection::InvalidParameters { command, arg }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::EmptyLine => f.write_str("doveadm sent empty command line"),
            Rejection::UnknownCommand { line } => write!(
                f,
                "doveadm sent unknown command: {}",
                String::from_utf8_lossy(line)
            ),
            Rejection::InvalidParameters { command, arg } => {
                let label = match command {
                    Command::HostResetUsers if arg.is_some() => "ip",
                    _ => "parameters",
                };
                write!(f, "doveadm sent invalid {command} {label}")?;
                match arg {
                    Some(arg) => write!(f, ": {}", String::from_utf8_lossy(arg)),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
