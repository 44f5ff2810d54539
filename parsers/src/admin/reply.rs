//! Lines the director writes back (§§6-7). The daemon encodes them; a client parses them
//! knowing which command they answer ([`Reply::parse_for`]).
//!
//! Parsing is strict: exactly the forms the director prints. doveadm itself is laxer (it
//! skips short HOST-LIST lines, prints any unknown status text as an error); a client that
//! mimics it falls back to the raw line when parsing fails.

use std::net::IpAddr;

use crate::error::{ParseError, ParseErrorKind};
use crate::field::push_u32;
use crate::ip::ip_to_string;

use super::director_list::DirectorLine;
use super::fields::{
    c_str, expect_count, fields, ip_at, num_at, parse_i64, parse_u32, put_field, put_ip, put_num,
};
use super::Command;

/// A one-line outcome: `OK`, `NOTFOUND`, `TRYAGAIN`, or one of the fixed error texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `OK`: done (or started, for USER-MOVE, USER-KICK[-ALT], HOST-RESET-USERS).
    Ok,
    /// `NOTFOUND`: host or director not found.
    NotFound,
    /// `TRYAGAIN`: user being moved, kick throttled with `nowait`, or hash expansion failed.
    TryAgain,
    /// `vhost count too large`: HOST-SET/HOST-UPDATE count above 1000.
    VhostCountTooLarge,
    /// `host tag can't be changed`
    TagCantBeChanged,
    /// `host is already being updated - try again later` (host desynced, ring only).
    HostBeingUpdated,
    /// `Ring sync timed out` (§4).
    RingSyncTimedOut,
}

impl Status {
    const ALL: [Status; 7] = [
        Status::Ok,
        Status::NotFound,
        Status::TryAgain,
        Status::VhostCountTooLarge,
        Status::TagCantBeChanged,
        Status::HostBeingUpdated,
        Status::RingSyncTimedOut,
    ];

    /// The line's text, without LF.
    pub const fn text(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::NotFound => "NOTFOUND",
            Status::TryAgain => "TRYAGAIN",
            Status::VhostCountTooLarge => "vhost count too large",
            Status::TagCantBeChanged => "host tag can't be changed",
            Status::HostBeingUpdated => "host is already being updated - try again later",
            Status::RingSyncTimedOut => "Ring sync timed out",
        }
    }

    /// Parse a status line; doveadm compares the whole line (as a C string), so must we.
    pub fn parse(line: &[u8]) -> Result<Status, ParseError> {
        let line = c_str(line);
        Status::ALL
            .into_iter()
            .find(|s| s.text().as_bytes() == line)
            .ok_or(ParseError::new(ParseErrorKind::BadValue, 0))
    }

    /// Append the line, LF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.text().as_bytes());
        out.push(b'\n');
    }
}

/// HOST-LIST entry: `<ip>\t<vhost_count>\t<user_count>\t<tag>\t<U|D>\t<last_updown_change>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostEntry {
    /// Backend address.
    pub ip: IpAddr,
    /// Configured vhost count.
    pub vhost_count: u32,
    /// User entries currently assigned to the host.
    pub user_count: u32,
    /// Tag (empty for the default tag); tab-escaped on the wire.
    pub tag: Vec<u8>,
    /// `D` (down) rather than `U` (up).
    pub down: bool,
    /// Unix time of the last up/down change, 0 if never (`%ld`).
    pub last_updown_change: i64,
}

impl HostEntry {
    /// Parse one entry line.
    pub fn parse(line: &[u8]) -> Result<HostEntry, ParseError> {
        let f = fields(line);
        expect_count(&f, 6)?;
        let down = match &*f[4] {
            b"U" => false,
            b"D" => true,
            _ => return Err(ParseError::new(ParseErrorKind::BadValue, 4)),
        };
        Ok(HostEntry {
            ip: ip_at(&f, 0)?,
            vhost_count: num_at(&f, 1, parse_u32)?,
            user_count: num_at(&f, 2, parse_u32)?,
            tag: f[3].to_vec(),
            down,
            last_updown_change: num_at(&f, 5, parse_i64)?,
        })
    }

    /// Append the line, LF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_ip(out, &self.ip);
        out.push(b'\t');
        put_num(out, self.vhost_count);
        out.push(b'\t');
        put_num(out, self.user_count);
        put_field(out, &self.tag);
        out.extend_from_slice(if self.down { b"\tD\t" } else { b"\tU\t" });
        put_num(out, self.last_updown_change);
        out.push(b'\n');
    }
}

/// HOST-LIST-REMOVED entry: `<ip>` of a configured host missing from the host list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemovedHost {
    /// The configured backend's address.
    pub ip: IpAddr,
}

impl RemovedHost {
    /// Parse one entry line.
    pub fn parse(line: &[u8]) -> Result<RemovedHost, ParseError> {
        let f = fields(line);
        expect_count(&f, 1)?;
        Ok(RemovedHost { ip: ip_at(&f, 0)? })
    }

    /// Append the line, LF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_ip(out, &self.ip);
        out.push(b'\n');
    }
}

/// The live directory entry part of a USER-LOOKUP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserCurrent {
    /// Backend the user is assigned to.
    pub ip: IpAddr,
    /// Entry timestamp + `director_user_expire` (`%u`).
    pub expire: u32,
}

/// USER-LOOKUP answer: `<current_ip>\t<expire>\t<hashed_ip>\t<config_ip>`; without a live
/// entry the first two fields are empty and `0`, and unknown hosts are empty fields
/// (`\t0\t\t` for an unknown tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserLookup {
    /// The user's live entry in the tag's directory, if any.
    pub current: Option<UserCurrent>,
    /// Host the current vhost ring picks now.
    pub hashed: Option<IpAddr>,
    /// Host the startup configuration's ring would pick.
    pub config: Option<IpAddr>,
}

impl UserLookup {
    /// Parse the answer line.
    pub fn parse(line: &[u8]) -> Result<UserLookup, ParseError> {
        let f = fields(line);
        expect_count(&f, 4)?;
        let opt_ip = |i: usize| match f[i].is_empty() {
            true => Ok(None),
            false => ip_at(&f, i).map(Some),
        };
        let current = match opt_ip(0)? {
            Some(ip) => Some(UserCurrent {
                ip,
                expire: num_at(&f, 1, parse_u32)?,
            }),
            None if &*f[1] == b"0" => None,
            None => return Err(ParseError::new(ParseErrorKind::BadValue, 1)),
        };
        Ok(UserLookup {
            current,
            hashed: opt_ip(2)?,
            config: opt_ip(3)?,
        })
    }

    /// Append the line, LF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match &self.current {
            Some(cur) => {
                put_ip(out, &cur.ip);
                out.push(b'\t');
                put_num(out, cur.expire);
            }
            None => out.extend_from_slice(b"\t0"),
        }
        for ip in [&self.hashed, &self.config] {
            out.push(b'\t');
            if let Some(ip) = ip {
                put_ip(out, ip);
            }
        }
        out.push(b'\n');
    }
}

/// USER-LIST entry: `<user_hash>\t<expire>\t<host_ip>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserEntry {
    /// The user's 32-bit hash.
    pub hash: u32,
    /// Entry timestamp + `director_user_expire` (`%u`).
    pub expire: u32,
    /// Backend the user is assigned to.
    pub ip: IpAddr,
}

impl UserEntry {
    /// Parse one entry line.
    pub fn parse(line: &[u8]) -> Result<UserEntry, ParseError> {
        let f = fields(line);
        expect_count(&f, 3)?;
        Ok(UserEntry {
            hash: num_at(&f, 0, parse_u32)?,
            expire: num_at(&f, 1, parse_u32)?,
            ip: ip_at(&f, 2)?,
        })
    }

    /// Append the line, LF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Self::encode_parts(
            self.hash,
            self.expire,
            ip_to_string(&self.ip).as_bytes(),
            out,
        );
    }

    /// Append the line for `hash`, `expire` and a host whose address text
    /// ([`ip_to_string`]) the caller made once: a listing of a million users has only a
    /// few hosts, so formatting the address per line was most of the listing's cost.
    pub fn encode_parts(hash: u32, expire: u32, ip_text: &[u8], out: &mut Vec<u8>) {
        push_u32(out, hash);
        out.push(b'\t');
        push_u32(out, expire);
        out.push(b'\t');
        out.extend_from_slice(ip_text);
        out.push(b'\n');
    }
}

/// Any line the director sends after the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// A one-line outcome.
    Status(Status),
    /// A HOST-LIST entry.
    Host(HostEntry),
    /// A HOST-LIST-REMOVED entry.
    RemovedHost(RemovedHost),
    /// The USER-LOOKUP answer.
    UserLookup(UserLookup),
    /// A USER-LIST entry.
    User(UserEntry),
    /// A DIRECTOR-LIST entry.
    Director(DirectorLine),
    /// The empty line closing a list.
    End,
}

impl Reply {
    /// Parse a line answering `cmd`: list commands get entries or the closing empty line,
    /// USER-LOOKUP its data line or `TRYAGAIN`, every other command a [`Status`].
    pub fn parse_for(cmd: Command, line: &[u8]) -> Result<Reply, ParseError> {
        if cmd.replies_with_list() && line.is_empty() {
            return Ok(Reply::End);
        }
        Ok(match cmd {
            Command::HostList => Reply::Host(HostEntry::parse(line)?),
            Command::HostListRemoved => Reply::RemovedHost(RemovedHost::parse(line)?),
            Command::UserList => Reply::User(UserEntry::parse(line)?),
            Command::DirectorList => Reply::Director(DirectorLine::parse(line)?),
            Command::UserLookup => match Status::parse(line) {
                Ok(Status::TryAgain) => Reply::Status(Status::TryAgain),
                _ => Reply::UserLookup(UserLookup::parse(line)?),
            },
            _ => Reply::Status(Status::parse(line)?),
        })
    }

    /// Append the line, LF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Status(s) => s.encode(out),
            Reply::Host(h) => h.encode(out),
            Reply::RemovedHost(r) => r.encode(out),
            Reply::UserLookup(u) => u.encode(out),
            Reply::User(u) => u.encode(out),
            Reply::Director(d) => d.encode(out),
            Reply::End => out.push(b'\n'),
        }
    }

    /// Whether this line completes the answer to its command (no more lines follow for it).
    pub fn is_last(&self) -> bool {
        matches!(self, Reply::Status(_) | Reply::UserLookup(_) | Reply::End)
    }
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
