//! Parsing one ring line into a [`Command`], following the field checks of Dovecot's
//! `director-connection.c` handlers (`director_cmd_*`, `director_handshake_cmd_*`).

use super::command::{Command, HandshakeUser, HostInfo, Origin, Pulse, Sync, UpDown};
use super::fields::{parse_decimal, Fields};
use super::{Context, DIRECTOR_VERSION_MAJOR, DIRECTOR_VERSION_NAME};
use crate::error::{ParseError, ParseErrorKind};
use crate::escape::{split_tabs, unescape};

/// Commands that start with the origin triple (§5.2), ring context.
const ORIGIN_COMMANDS: &[&[u8]] = &[
    b"HOST",
    b"HOST-REMOVE",
    b"HOST-FLUSH",
    b"USER-WEAK",
    b"USER-MOVE",
    b"USER-KICK",
    b"USER-KICK-ALT",
    b"USER-KICK-HASH",
    b"USER-KILLED-EVERYWHERE",
];

/// The origin triple of an origin-tagged ring command, parsed before anything else, so a
/// caller can ignore an already-seen command without validating the rest like Dovecot does.
/// `None` when the line is not an origin-tagged command (or is empty).
pub fn origin_prefix(line: &[u8]) -> Option<Result<Origin, ParseError>> {
    let mut it = split_tabs(line);
    let name = unescape(it.next()?);
    if !ORIGIN_COMMANDS.contains(&&*name) {
        return None;
    }
    Some(Fields::new(it.collect()).origin(0))
}

impl Command {
    /// Parse one line (without LF) in the ordinary ring [`Context::Ring`].
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        Self::parse_in(line, Context::Ring)
    }

    /// Parse one line (without LF) in the given connection context.
    pub fn parse_in(line: &[u8], ctx: Context) -> Result<Self, ParseError> {
        if line.is_empty() {
            return Err(ParseError::new(ParseErrorKind::Empty, 0));
        }
        let mut it = split_tabs(line);
        let name = unescape(it.next().unwrap_or_default());
        let f = Fields::new(it.collect());
        match &*name {
            b"VERSION" => version(&f),
            b"ME" => {
                let (ip, port) = (f.ip(0)?, f.port(1)?);
                let timestamp = if f.len() > 2 { Some(f.time(2)?) } else { None };
                Ok(Command::Me {
                    ip,
                    port,
                    timestamp,
                    extra: f.rest(3),
                })
            }
            b"DIRECTOR" => Ok(Command::Director {
                ip: f.ip(0)?,
                port: f.port(1)?,
                extra: f.rest(2),
            }),
            b"DIRECTOR-REMOVE" => Ok(Command::DirectorRemove {
                ip: f.ip(0)?,
                port: f.port(1)?,
                extra: f.rest(2),
            }),
            b"HOST-HAND-START" => Ok(Command::HostHandStart {
                handshaked: f.uint(0)? != 0,
                extra: f.rest(1),
            }),
            b"HOST-HAND-END" => Ok(Command::HostHandEnd { args: f.rest(0) }),
            b"HOST" if ctx == Context::HostList => host_info(&f, 0).map(Command::HandshakeHost),
            b"HOST" => {
                let origin = f.origin(0)?;
                Ok(Command::Host {
                    origin,
                    host: host_info(&f, 3)?,
                })
            }
            b"HOST-REMOVE" => {
                let origin = f.origin(0)?;
                f.exactly(4)?;
                Ok(Command::HostRemove {
                    origin,
                    ip: f.ip(3)?,
                })
            }
            b"HOST-FLUSH" => {
                let origin = f.origin(0)?;
                f.exactly(4)?;
                Ok(Command::HostFlush {
                    origin,
                    ip: f.ip(3)?,
                })
            }
            b"U" => handshake_user(&f).map(Command::HandshakeUser),
            b"USER" if ctx == Context::LegacyHandshakeUsers && f.len() > 2 => {
                handshake_user(&f).map(Command::LegacyHandshakeUser)
            }
            b"USER" => {
                f.at_least(2)?;
                let (hash, ip) = (f.uint(0)?, f.ip(1)?);
                let timestamp = if f.len() > 2 { Some(f.time(2)?) } else { None };
                Ok(Command::User {
                    hash,
                    ip,
                    timestamp,
                    extra: f.rest(3),
                })
            }
            b"USER-WEAK" => {
                let origin = f.origin(0)?;
                f.exactly(5)?;
                Ok(Command::UserWeak {
                    origin,
                    hash: f.uint(3)?,
                    ip: f.ip(4)?,
                })
            }
            b"USER-MOVE" => {
                let origin = f.origin(0)?;
                f.exactly(5)?;
                Ok(Command::UserMove {
                    origin,
                    hash: f.uint(3)?,
                    ip: f.ip(4)?,
                })
            }
            b"USER-KILLED" => {
                f.exactly(1)?;
                Ok(Command::UserKilled { hash: f.uint(0)? })
            }
            b"USER-KILLED-EVERYWHERE" => {
                let origin = f.origin(0)?;
                f.exactly(4)?;
                Ok(Command::UserKilledEverywhere {
                    origin,
                    hash: f.uint(3)?,
                })
            }
            b"USER-KICK" => {
                let origin = f.origin(0)?;
                f.exactly(4)?;
                Ok(Command::UserKick {
                    origin,
                    username: f.owned(3)?,
                })
            }
            b"USER-KICK-ALT" => {
                let origin = f.origin(0)?;
                f.exactly(5)?;
                Ok(Command::UserKickAlt {
                    origin,
                    field: f.owned(3)?,
                    value: f.owned(4)?,
                })
            }
            b"USER-KICK-HASH" => {
                let origin = f.origin(0)?;
                f.exactly(5)?;
                Ok(Command::UserKickHash {
                    origin,
                    hash: f.uint(3)?,
                    except_ip: f.ip(4)?,
                })
            }
            b"SYNC" => sync(&f).map(Command::Sync),
            b"CONNECT" => {
                f.exactly(2)?;
                Ok(Command::Connect {
                    ip: f.ip(0)?,
                    port: f.port(1)?,
                })
            }
            b"PING" => Ok(Command::Ping(pulse(&f))),
            b"PONG" => Ok(Command::Pong(pulse(&f))),
            b"QUIT" => {
                let reason = memchr::memchr(b'\t', line).map(|i| line[i + 1..].to_vec());
                Ok(Command::Quit { reason })
            }
            b"OPTIONS" => {
                let options = (0..f.len()).map(|i| f.owned(i)).collect::<Result<_, _>>()?;
                Ok(Command::Options { options })
            }
            b"DONE" => Ok(Command::Done { extra: f.rest(0) }),
            _ => Err(ParseError::new(ParseErrorKind::UnknownCommand, 0)),
        }
    }
}

fn version(f: &Fields<'_>) -> Result<Command, ParseError> {
    f.at_least(3)?;
    if *f.text(0)? != *DIRECTOR_VERSION_NAME.as_bytes() {
        return Err(ParseError::new(ParseErrorKind::BadHandshake, 1));
    }
    let (major, minor) = (f.uint(1)?, f.uint(2)?);
    if major != DIRECTOR_VERSION_MAJOR {
        return Err(ParseError::new(ParseErrorKind::BadHandshake, 2));
    }
    Ok(Command::Version {
        minor,
        extra: f.rest(3),
    })
}

/// `director_cmd_host_int`, with the host fields starting at argument `base`.
fn host_info(f: &Fields<'_>, base: usize) -> Result<HostInfo, ParseError> {
    f.at_least(base + 2)?;
    let (ip, vhost_count) = (f.ip(base)?, f.uint(base + 1)?);
    let tag = if f.len() > base + 2 {
        Some(f.owned(base + 2)?)
    } else {
        None
    };
    let updown = if f.len() > base + 3 {
        Some(updown(f, base + 3)?)
    } else {
        None
    };
    let hostname = if f.len() > base + 4 {
        Some(f.owned(base + 4)?)
    } else {
        None
    };
    Ok(HostInfo {
        ip,
        vhost_count,
        tag,
        updown,
        hostname,
        extra: f.rest(base + 5),
    })
}

fn updown(f: &Fields<'_>, i: usize) -> Result<UpDown, ParseError> {
    let t = f.text(i)?;
    let bad = || ParseError::new(ParseErrorKind::BadValue, i + 1);
    let (&flag, ts) = t.split_first().ok_or_else(bad)?;
    let down = match flag {
        b'D' => true,
        b'U' => false,
        _ => return Err(bad()),
    };
    match parse_decimal(ts) {
        Some(changed) if changed <= i64::MAX as u64 => Ok(UpDown { down, changed }),
        _ => Err(ParseError::new(ParseErrorKind::BadNumber, i + 1)),
    }
}

/// `director_handshake_cmd_user`: hash, host, timestamp (`unsigned int`), optional weak flag.
fn handshake_user(f: &Fields<'_>) -> Result<HandshakeUser, ParseError> {
    f.at_least(3)?;
    let (hash, ip, timestamp) = (f.uint(0)?, f.ip(1)?, f.uint_time(2)?);
    let (weak, extra) = match f.raw(3) {
        Some(b"w") => (true, f.rest(4)),
        Some(_) => (f.text(3)?.first() == Some(&b'w'), f.rest(3)),
        None => (false, Vec::new()),
    };
    Ok(HandshakeUser {
        hash,
        ip,
        timestamp,
        weak,
        extra,
    })
}

/// `director_connection_sync`: every optional field is an `unsigned int`.
fn sync(f: &Fields<'_>) -> Result<Sync, ParseError> {
    f.at_least(3)?;
    let origin = Origin {
        ip: f.ip(0)?,
        port: f.port(1)?,
        seq: f.uint(2)?,
    };
    let minor = if f.len() > 3 { Some(f.uint(3)?) } else { None };
    let timestamp = if f.len() > 4 {
        Some(f.uint_time(4)?)
    } else {
        None
    };
    let hosts_hash = if f.len() > 5 { Some(f.uint(5)?) } else { None };
    Ok(Sync {
        origin,
        minor,
        timestamp,
        hosts_hash,
        extra: f.rest(6),
    })
}

/// `director_cmd_ping`/`_pong`: the two numbers are read only if both parse.
fn pulse(f: &Fields<'_>) -> Pulse {
    if f.len() >= 2 {
        if let (Ok(time), Some(buffered)) =
            (f.time(0), f.text(1).ok().and_then(|t| parse_decimal(&t)))
        {
            return Pulse::Stats {
                time,
                buffered,
                extra: f.rest(2),
            };
        }
    }
    Pulse::Raw(f.rest(0))
}
