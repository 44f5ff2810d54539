//! Encoding a [`Command`] to its wire line, byte-identical to what Dovecot 2.3 sends
//! (`director.c`, `director-connection.c` senders), and the minimum peer minor per command.

use std::net::IpAddr;

use super::command::{Command, HandshakeUser, HostInfo, Origin, Pulse, Sync};
use super::*;
use crate::escape::escape_into;
use crate::field::{push_u64, Field};
use crate::ip::push_ip;

/// Appends fields to a line under construction.
struct Line<'a>(&'a mut Vec<u8>);

impl Line<'_> {
    fn num(&mut self, n: impl Into<u64>) -> &mut Self {
        self.0.push(b'\t');
        push_u64(self.0, n.into());
        self
    }

    fn ip(&mut self, ip: &IpAddr) -> &mut Self {
        self.0.push(b'\t');
        push_ip(self.0, ip);
        self
    }

    /// A free-text field: escaped, as `str_append_tabescaped` does.
    fn text(&mut self, t: &[u8]) -> &mut Self {
        self.0.push(b'\t');
        escape_into(t, self.0);
        self
    }

    /// A field kept verbatim from the wire.
    fn raw(&mut self, t: &[u8]) -> &mut Self {
        self.0.push(b'\t');
        self.0.extend_from_slice(t);
        self
    }

    fn raws(&mut self, fields: &[Field]) -> &mut Self {
        for f in fields {
            self.raw(f.as_bytes());
        }
        self
    }

    fn origin(&mut self, o: &Origin) -> &mut Self {
        self.ip(&o.ip).num(o.port).num(o.seq)
    }

    fn host(&mut self, h: &HostInfo) -> &mut Self {
        self.ip(&h.ip).num(h.vhost_count);
        let has_hostname = h.hostname.is_some() || !h.extra.is_empty();
        let has_updown = h.updown.is_some() || has_hostname;
        if h.tag.is_some() || has_updown {
            self.text(h.tag_or_empty());
        }
        if has_updown {
            let u = h.updown.unwrap_or_default();
            self.0.push(b'\t');
            self.0.push(if u.down { b'D' } else { b'U' });
            self.0.extend_from_slice(u.changed.to_string().as_bytes());
        }
        if has_hostname {
            self.text(h.hostname.as_deref().unwrap_or(b""));
        }
        self.raws(&h.extra)
    }

    fn handshake_user(&mut self, u: &HandshakeUser) -> &mut Self {
        self.num(u.hash).ip(&u.ip).num(u.timestamp);
        // A first extra field starting with `w` already carries the flag, unless it is the
        // bare `w` that parsing only leaves in `extra` after consuming a flag before it.
        let flag_in_extra = u
            .extra
            .first()
            .is_some_and(|f| f.as_bytes() != b"w" && f.unescaped().first() == Some(&b'w'));
        if u.weak && !flag_in_extra {
            self.raw(b"w");
        }
        self.raws(&u.extra)
    }

    fn sync(&mut self, s: &Sync) -> &mut Self {
        self.origin(&s.origin);
        let has_hash = s.hosts_hash.is_some() || !s.extra.is_empty();
        let has_ts = s.timestamp.is_some() || has_hash;
        if s.minor.is_some() || has_ts {
            self.num(s.minor.unwrap_or(0));
        }
        if has_ts {
            self.num(s.timestamp.unwrap_or(0));
        }
        if has_hash {
            self.num(s.hosts_hash.unwrap_or(0));
        }
        self.raws(&s.extra)
    }

    fn pulse(&mut self, p: &Pulse) -> &mut Self {
        match p {
            Pulse::Stats {
                time,
                buffered,
                extra,
            } => self.num(*time).num(*buffered).raws(extra),
            Pulse::Raw(fields) => self.raws(fields),
        }
    }
}

impl Command {
    /// The command name as sent on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Version { .. } => "VERSION",
            Command::Me { .. } => "ME",
            Command::Director { .. } => "DIRECTOR",
            Command::DirectorRemove { .. } => "DIRECTOR-REMOVE",
            Command::HostHandStart { .. } => "HOST-HAND-START",
            Command::HostHandEnd { .. } => "HOST-HAND-END",
            Command::HandshakeHost(_) | Command::Host { .. } => "HOST",
            Command::HostRemove { .. } => "HOST-REMOVE",
            Command::HostFlush { .. } => "HOST-FLUSH",
            Command::HandshakeUser(_) => "U",
            Command::LegacyHandshakeUser(_) | Command::User { .. } => "USER",
            Command::UserWeak { .. } => "USER-WEAK",
            Command::UserMove { .. } => "USER-MOVE",
            Command::UserKilled { .. } => "USER-KILLED",
            Command::UserKilledEverywhere { .. } => "USER-KILLED-EVERYWHERE",
            Command::UserKick { .. } => "USER-KICK",
            Command::UserKickAlt { .. } => "USER-KICK-ALT",
            Command::UserKickHash { .. } => "USER-KICK-HASH",
            Command::Sync(_) => "SYNC",
            Command::Connect { .. } => "CONNECT",
            Command::Ping(_) => "PING",
            Command::Pong(_) => "PONG",
            Command::Quit { .. } => "QUIT",
            Command::Options { .. } => "OPTIONS",
            Command::Done { .. } => "DONE",
        }
    }

    /// Append the complete line, including its trailing `\n`, to `out`.
    ///
    /// A `QUIT` reason is written verbatim except that LF bytes become spaces, because a
    /// reason can never carry a line break (Dovecot's reasons never contain one).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.name().as_bytes());
        let mut l = Line(out);
        match self {
            Command::Version { minor, extra } => {
                l.raw(DIRECTOR_VERSION_NAME.as_bytes())
                    .num(DIRECTOR_VERSION_MAJOR)
                    .num(*minor)
                    .raws(extra);
            }
            Command::Me {
                ip,
                port,
                timestamp,
                extra,
            } => {
                l.ip(ip).num(*port);
                // A trailing field needs the timestamp's position filled.
                if timestamp.is_some() || !extra.is_empty() {
                    l.num(timestamp.unwrap_or(0));
                }
                l.raws(extra);
            }
            Command::Director { ip, port, extra } | Command::DirectorRemove { ip, port, extra } => {
                l.ip(ip).num(*port).raws(extra);
            }
            Command::HostHandStart { handshaked, extra } => {
                l.num(u32::from(*handshaked)).raws(extra);
            }
            Command::HostHandEnd { args } => {
                l.raws(args);
            }
            Command::HandshakeHost(h) => {
                l.host(h);
            }
            Command::Host { origin, host } => {
                l.origin(origin).host(host);
            }
            Command::HostRemove { origin, ip } | Command::HostFlush { origin, ip } => {
                l.origin(origin).ip(ip);
            }
            Command::HandshakeUser(u) | Command::LegacyHandshakeUser(u) => {
                l.handshake_user(u);
            }
            Command::User {
                hash,
                ip,
                timestamp,
                extra,
            } => {
                l.num(*hash).ip(ip);
                if timestamp.is_some() || !extra.is_empty() {
                    l.num(timestamp.unwrap_or(0));
                }
                l.raws(extra);
            }
            Command::UserWeak { origin, hash, ip } | Command::UserMove { origin, hash, ip } => {
                l.origin(origin).num(*hash).ip(ip);
            }
            Command::UserKilled { hash } => {
                l.num(*hash);
            }
            Command::UserKilledEverywhere { origin, hash } => {
                l.origin(origin).num(*hash);
            }
            Command::UserKick { origin, username } => {
                l.origin(origin).text(username);
            }
            Command::UserKickAlt {
                origin,
                field,
                value,
            } => {
                l.origin(origin).text(field).text(value);
            }
            Command::UserKickHash {
                origin,
                hash,
                except_ip,
            } => {
                l.origin(origin).num(*hash).ip(except_ip);
            }
            Command::Sync(s) => {
                l.sync(s);
            }
            Command::Connect { ip, port } => {
                l.ip(ip).num(*port);
            }
            Command::Ping(p) | Command::Pong(p) => {
                l.pulse(p);
            }
            Command::Quit { reason } => {
                if let Some(r) = reason {
                    l.0.push(b'\t');
                    l.0.extend(r.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
                }
            }
            Command::Options { options } => {
                for o in options {
                    l.text(o);
                }
            }
            Command::Done { extra } => {
                l.raws(extra);
            }
        }
        out.push(b'\n');
    }

    /// The encoded line as a new buffer (including `\n`).
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode(&mut out);
        out
    }

    /// The lowest peer minor version this exact line may be sent to (§5.3 "min" column).
    ///
    /// Forms matter: a ring `USER` with a timestamp needs 9, a long `SYNC` needs 1, a `HOST`
    /// with up/down fields needs 6 and one with a non-empty tag needs 7. `USER-WEAK` is 0 as in
    /// the table: Dovecot filters it by the ring minimum (≥ 1) when originating, not per peer.
    pub fn min_minor(&self) -> u32 {
        match self {
            Command::DirectorRemove { .. } => DIRECTOR_VERSION_RING_REMOVE,
            Command::Quit { .. } => DIRECTOR_VERSION_QUIT,
            Command::UserKick { .. } | Command::UserKickHash { .. } => DIRECTOR_VERSION_USER_KICK,
            Command::UserKickAlt { .. } => DIRECTOR_VERSION_USER_KICK_ALT,
            Command::Options { .. } => DIRECTOR_VERSION_OPTIONS,
            Command::HandshakeUser(_) => DIRECTOR_VERSION_HANDSHAKE_U_CMD,
            Command::User {
                timestamp: Some(_), ..
            } => DIRECTOR_VERSION_USER_TIMESTAMP,
            Command::Sync(s) if s.minor.is_some() => DIRECTOR_VERSION_WEAK_USERS,
            Command::HandshakeHost(h) | Command::Host { host: h, .. } => host_min_minor(h),
            _ => 0,
        }
    }
}

fn host_min_minor(h: &HostInfo) -> u32 {
    if !h.tag_or_empty().is_empty() {
        DIRECTOR_VERSION_TAGS_V2
    } else if h.updown.is_some() || h.hostname.is_some() || !h.extra.is_empty() {
        DIRECTOR_VERSION_UPDOWN
    } else {
        0
    }
}
