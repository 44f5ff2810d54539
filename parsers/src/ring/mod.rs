//! The director ring protocol (director <-> director over TCP): typed commands, parser and
//! encoder, plus the ring's `hosts_hash`.
//!
//! No I/O. One [`Command`] enum covers every command of every minor version up to 9, both
//! roles, handshake and ring phase; it mirrors `src/director/director-connection.c` (receiving)
//! and `director.c` (sending). The spec is `ring-protocol.md` §2, §4-§9.
//!
//! Rules this module implements:
//! * [`Command::parse`] takes one line without its LF (the framer, with
//!   [`crate::framing::DIRECTOR_MAX_LINE`], strips LF and a CR before it).
//!   [`Command::encode`] appends the complete line including `\n` and never emits CR.
//! * Fields are split on every TAB; empty fields are meaningful. Every field is unescaped on
//!   receipt. Only the free-text fields are escaped when sending (username of `USER-KICK`,
//!   field and value of `USER-KICK-ALT`, tag and hostname of `HOST`, and the `OPTIONS`
//!   fields), which is exactly what real directors do. `QUIT`'s reason is not escaped by
//!   senders and is kept verbatim.
//! * Commands in §2's exact-count list (`CONNECT`, `USER-WEAK`, `USER-MOVE`, `USER-KICK-ALT`,
//!   `USER-KICK-HASH`, `HOST-REMOVE`, `HOST-FLUSH`, `USER-KICK`, `USER-KILLED-EVERYWHERE`,
//!   `USER-KILLED`) reject any other field count. For every other command Dovecot ignores
//!   extra trailing fields; we keep them verbatim ([`crate::field::Field`]s in an `extra`
//!   field) so that re-encoding a received line reproduces its bytes.
//! * Numbers are unsigned decimal (leading zeros accepted, re-encoded without them); fields
//!   Dovecot reads as `unsigned int` must fit in 32 bits, timestamps Dovecot reads as `time_t`
//!   must fit in `i64`. Negative timestamps, which `str_to_time` would accept, are rejected:
//!   no real director sends them. IPs are parsed with [`crate::ip::parse_ip`] and printed with
//!   [`crate::ip::ip_to_string`]; ports are 1..65535.
//! * An empty line is [`ParseErrorKind::Empty`](crate::ParseErrorKind::Empty); an unknown
//!   command is [`ParseErrorKind::UnknownCommand`](crate::ParseErrorKind::UnknownCommand) at
//!   field 0, and [`command_name`] gives the name for Dovecot's log line
//!   `Unknown command X`.
//! * Two lines cannot be told apart without connection state; the caller passes a
//!   [`Context`]: `HOST` inside a handshake host list has no origin triple, and a peer with
//!   minor < 9 sends handshake users as `USER`.
//!
//! Known difference: Dovecot checks the origin's sequence number before validating the
//! fields after the triple, so a malformed but already-seen `HOST`, `HOST-REMOVE`, ... is
//! silently ignored by Dovecot, while [`Command::parse`] reports an error. A caller that
//! wants Dovecot's exact behaviour can read the triple first with [`origin_prefix`].

mod command;
mod encode;
mod fields;
pub mod hosts_hash;
mod parse;

#[cfg(test)]
mod kat;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use command::{Command, HandshakeUser, HostInfo, Origin, Pulse, Sync, UpDown};
pub use hosts_hash::{hosts_hash, HashedHost};
pub use parse::origin_prefix;

/// Protocol name in `VERSION` (`DIRECTOR_VERSION_NAME`).
pub const DIRECTOR_VERSION_NAME: &str = "director";
/// Major version; any other closes the connection (`DIRECTOR_VERSION_MAJOR`).
pub const DIRECTOR_VERSION_MAJOR: u32 = 1;
/// Minor version every 2.3 director announces, and ours (`DIRECTOR_VERSION_MINOR`).
pub const DIRECTOR_VERSION_MINOR: u32 = 9;
/// Weak users and `USER-WEAK`; long `SYNC` form (`DIRECTOR_VERSION_WEAK_USERS`).
pub const DIRECTOR_VERSION_WEAK_USERS: u32 = 1;
/// `DIRECTOR-REMOVE` (`DIRECTOR_VERSION_RING_REMOVE`).
pub const DIRECTOR_VERSION_RING_REMOVE: u32 = 2;
/// `QUIT` with a reason (`DIRECTOR_VERSION_QUIT`).
pub const DIRECTOR_VERSION_QUIT: u32 = 3;
/// `USER-KICK` and `USER-KICK-HASH` (`DIRECTOR_VERSION_USER_KICK`).
pub const DIRECTOR_VERSION_USER_KICK: u32 = 4;
/// `OPTIONS` in the handshake (`DIRECTOR_VERSION_OPTIONS`).
pub const DIRECTOR_VERSION_OPTIONS: u32 = 5;
/// Host tags, first version (`DIRECTOR_VERSION_TAGS`).
pub const DIRECTOR_VERSION_TAGS: u32 = 5;
/// Up/down state and hostname in `HOST` (`DIRECTOR_VERSION_UPDOWN`).
pub const DIRECTOR_VERSION_UPDOWN: u32 = 6;
/// Host tags with per-tag vhost rings (`DIRECTOR_VERSION_TAGS_V2`).
pub const DIRECTOR_VERSION_TAGS_V2: u32 = 7;
/// `USER-KICK-ALT` (`DIRECTOR_VERSION_USER_KICK_ALT`).
pub const DIRECTOR_VERSION_USER_KICK_ALT: u32 = 8;
/// Handshake users sent as `U` (`DIRECTOR_VERSION_HANDSHAKE_U_CMD`).
pub const DIRECTOR_VERSION_HANDSHAKE_U_CMD: u32 = 9;
/// Timestamp in ring `USER` (`DIRECTOR_VERSION_USER_TIMESTAMP`).
pub const DIRECTOR_VERSION_USER_TIMESTAMP: u32 = 9;
/// The only option 2.3 sends in `OPTIONS`, and the one it requires.
pub const DIRECTOR_OPT_CONSISTENT_HASHING: &[u8] = b"consistent-hashing";

/// Connection state that decides how an ambiguous line is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Context {
    /// Ordinary traffic: `HOST` has an origin triple, `USER` is a ring refresh.
    #[default]
    Ring,
    /// Between `HOST-HAND-START` and `HOST-HAND-END`: `HOST` is the handshake form. Other
    /// commands still parse; rejecting them ("Unexpected command during host list") is the
    /// caller's job.
    HostList,
    /// Incoming connection before `DONE` from a peer with minor < 9: a `USER` with at least
    /// three fields is a handshake user (Dovecot's `CMD_IS_USER_HANDSHAKE`).
    LegacyHandshakeUsers,
}

/// The command name (first field, unescaped) of a line, for logging `Unknown command X`.
pub fn command_name(line: &[u8]) -> Cow<'_, [u8]> {
    let end = memchr::memchr(b'\t', line).unwrap_or(line.len());
    crate::escape::unescape(&line[..end])
}

impl Command {
    /// Dovecot's log text of a `QUIT` reason: the fields unescaped and joined with spaces.
    pub fn quit_reason_text(reason: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(reason.len());
        for (i, f) in reason.split(|&b| b == b'\t').enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(&crate::escape::unescape(f));
        }
        out
    }

    /// `HOST-HAND-END` as Dovecot sends it, repeating the `ring_handshaked` flag.
    pub fn host_hand_end(handshaked: bool) -> Self {
        let flag: &[u8] = if handshaked { b"1" } else { b"0" };
        Command::HostHandEnd {
            args: vec![crate::field::Field::wire(flag)],
        }
    }

    /// `OPTIONS\tconsistent-hashing`, the options line every 2.3 director sends.
    pub fn options_2_3() -> Self {
        Command::Options {
            options: vec![DIRECTOR_OPT_CONSISTENT_HASHING.to_vec()],
        }
    }
}
