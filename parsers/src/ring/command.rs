//! The typed ring commands (one enum for both directions and both roles) and their parts.
//!
//! Mirrors the command handlers of Dovecot's `src/director/director-connection.c` and the
//! senders in `director.c`. Field meanings are in `ring-protocol.md` §4-§9.

use std::net::IpAddr;

use crate::field::Field;

/// The origin triple `<o-ip>\t<o-port>\t<o-seq>` that starts every origin-tagged command.
///
/// Parsed like `director_cmd_is_seen_full`: IP as `net_addr2ip`, port 1..65535, seq as an
/// unsigned 32-bit number. `SYNC` uses the same three fields (its seq is the SYNC round).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Address of the director that originated the command.
    pub ip: IpAddr,
    /// Ring port of the originating director.
    pub port: u16,
    /// The originator's sequence number (`last_seq` counter; for SYNC the `sync_seq`).
    pub seq: u32,
}

/// A host's up/down field `U<ts>` or `D<ts>` (minor ≥ 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UpDown {
    /// `D`: the host is down (gets no new users).
    pub down: bool,
    /// `last_updown_change`, Unix seconds; 0 = never changed.
    pub changed: u64,
}

/// The host fields shared by the handshake and ring forms of `HOST`:
/// `<ip>\t<vhost_count>[\t<tag>[\t<U|D><ts>\t<hostname>]]`.
///
/// The optional fields are positional: a later field implies the earlier ones. Parsing never
/// produces a later field without the earlier ones; when encoding such a value, the missing
/// earlier fields are written as their defaults (empty tag, `U0`, empty hostname).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostInfo {
    /// The mail host (backend) address.
    pub ip: IpAddr,
    /// Number of vhosts; 0 means "no new users".
    pub vhost_count: u32,
    /// Tag field, unescaped; `None` when absent. Absent and empty both mean untagged.
    pub tag: Option<Vec<u8>>,
    /// Up/down field; `None` when absent (up, never changed).
    pub updown: Option<UpDown>,
    /// Hostname field, unescaped; `None` when absent. Empty means no hostname.
    pub hostname: Option<Vec<u8>>,
    /// Fields after the hostname, ignored by Dovecot, kept verbatim (still escaped).
    pub extra: Vec<Field>,
}

impl HostInfo {
    /// The five-field form every 2.3 director sends (tag, up/down and hostname present).
    pub fn full(
        ip: IpAddr,
        vhost_count: u32,
        tag: &[u8],
        down: bool,
        changed: u64,
        hostname: &[u8],
    ) -> Self {
        Self {
            ip,
            vhost_count,
            tag: Some(tag.to_vec()),
            updown: Some(UpDown { down, changed }),
            hostname: Some(hostname.to_vec()),
            extra: Vec::new(),
        }
    }

    /// Whether the host is down (an absent up/down field means up).
    pub fn is_down(&self) -> bool {
        self.updown.is_some_and(|u| u.down)
    }

    /// The tag, `""` when absent.
    pub fn tag_or_empty(&self) -> &[u8] {
        self.tag.as_deref().unwrap_or(b"")
    }
}

/// A handshake user line: `U\t<hash>\t<ip>\t<timestamp>[\tw]` (or the same as `USER` from
/// peers with minor < 9). Parsed like `director_handshake_cmd_user`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HandshakeUser {
    /// Username hash.
    pub hash: u32,
    /// The user's mail host.
    pub ip: IpAddr,
    /// Last refresh, Unix seconds (Dovecot reads it as `unsigned int`).
    pub timestamp: u64,
    /// Weak flag: Dovecot treats the user as weak when the 4th field starts with `w`.
    pub weak: bool,
    /// Ignored trailing fields, verbatim. When the 4th field is exactly `w` it is consumed as
    /// the weak flag; any other 4th field (even one starting with `w`) stays here, so
    /// re-encoding is byte-exact. `weak` must then agree with that field's first byte.
    pub extra: Vec<Field>,
}

/// `SYNC\t<o-ip>\t<o-port>\t<seq>[\t<minor>\t<timestamp>\t<hosts_hash>]` (§6.1).
///
/// The trailing fields are positional (a later one implies the earlier ones), as in
/// `director_connection_sync`; missing ones mean minor 0, timestamp "now", hosts_hash 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sync {
    /// Originating director and its SYNC round number.
    pub origin: Origin,
    /// Lowest minor version seen so far on the SYNC's way round the ring.
    pub minor: Option<u32>,
    /// Originator's clock when it (re)sent the SYNC (`unsigned int` in Dovecot).
    pub timestamp: Option<u64>,
    /// Originator's hosts hash (§7.1); 0 = unknown.
    pub hosts_hash: Option<u32>,
    /// Ignored trailing fields, verbatim.
    pub extra: Vec<Field>,
}

impl Sync {
    /// The long form every director with minor > 0 sends.
    pub fn full(origin: Origin, minor: u32, timestamp: u64, hosts_hash: u32) -> Self {
        Self {
            origin,
            minor: Some(minor),
            timestamp: Some(timestamp),
            hosts_hash: Some(hosts_hash),
            extra: Vec::new(),
        }
    }
}

/// Arguments of `PING` and `PONG`: only used for logging, parsed as leniently as Dovecot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pulse {
    /// `<now>\t<bytes buffered for output>` as 2.3 sends it (further fields kept verbatim).
    Stats {
        /// Sender's clock, Unix seconds.
        time: u64,
        /// Bytes in the sender's output buffer for this connection.
        buffered: u64,
        /// Ignored trailing fields, verbatim.
        extra: Vec<Field>,
    },
    /// Any other argument list, verbatim: none (older directors) or fields Dovecot tolerates
    /// without reading them. Never holds two leading fields that would parse as `Stats`.
    Raw(Vec<Field>),
}

/// One line of the director ring protocol, either direction, handshake or ring phase.
///
/// Text fields (`Vec<u8>`) are unescaped unless documented as verbatim. `extra` fields are the
/// trailing fields Dovecot ignores for that command, kept verbatim (still escaped, exactly as
/// received, as [`Field`]s that cannot hold a TAB or LF) so that re-encoding reproduces the
/// received bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// `VERSION\tdirector\t1\t<minor>`: first line on both sides (§4.2). The parser checks the
    /// protocol name and major version.
    Version {
        /// Peer's minor version (0..=9 for real directors).
        minor: u32,
        /// Ignored trailing fields, verbatim.
        extra: Vec<Field>,
    },
    /// `ME\t<ip>\t<port>[\t<now>]`: the sender's identity (§4.3).
    Me {
        /// Sender's ring address.
        ip: IpAddr,
        /// Sender's ring port.
        port: u16,
        /// Sender's clock (sent by all 2.3 directors).
        timestamp: Option<u64>,
        /// Ignored trailing fields, verbatim.
        extra: Vec<Field>,
    },
    /// `DIRECTOR\t<ip>\t<port>`: this director exists / has (re)joined (§5.4).
    Director {
        /// The director's address.
        ip: IpAddr,
        /// The director's ring port.
        port: u16,
        /// Ignored trailing fields, verbatim.
        extra: Vec<Field>,
    },
    /// `DIRECTOR-REMOVE\t<ip>\t<port>`: remove this director from the ring (§5.4).
    DirectorRemove {
        /// The director's address.
        ip: IpAddr,
        /// The director's ring port.
        port: u16,
        /// Ignored trailing fields, verbatim.
        extra: Vec<Field>,
    },
    /// `HOST-HAND-START\t<0|1>`: start of the handshake host list (§4.5).
    HostHandStart {
        /// Sender's `ring_handshaked` (any non-zero number counts as true).
        handshaked: bool,
        /// Ignored trailing fields, verbatim.
        extra: Vec<Field>,
    },
    /// `HOST-HAND-END\t<0|1>`: end of the host list; Dovecot ignores every argument.
    HostHandEnd {
        /// All arguments, verbatim (real directors send the `ring_handshaked` flag again).
        args: Vec<Field>,
    },
    /// `HOST\t<ip>\t<vhosts>[\t<tag>[\t<U|D><ts>\t<hostname>]]` inside a handshake host list
    /// (no origin triple; parsed only in [`super::Context::HostList`]).
    HandshakeHost(HostInfo),
    /// `HOST\t<origin>\t<ip>\t<vhosts>[\t<tag>[\t<U|D><ts>\t<hostname>]]`, ring form (§5.5).
    Host {
        /// Origin triple.
        origin: Origin,
        /// The host's fields.
        host: HostInfo,
    },
    /// `HOST-REMOVE\t<origin>\t<ip>` (exactly one field after the origin).
    HostRemove {
        /// Origin triple.
        origin: Origin,
        /// The mail host to remove.
        ip: IpAddr,
    },
    /// `HOST-FLUSH\t<origin>\t<ip>` (exactly one field after the origin).
    HostFlush {
        /// Origin triple.
        origin: Origin,
        /// The mail host whose users are dropped.
        ip: IpAddr,
    },
    /// `U\t<hash>\t<ip>\t<timestamp>[\tw]`: handshake user from a peer with minor ≥ 9 (§4.6).
    HandshakeUser(HandshakeUser),
    /// `USER\t<hash>\t<ip>\t<timestamp>[\tw]`: handshake user from a peer with minor < 9
    /// (parsed only in [`super::Context::LegacyHandshakeUsers`], with ≥ 3 fields).
    LegacyHandshakeUser(HandshakeUser),
    /// `USER\t<hash>\t<ip>[\t<timestamp>]`: ring user refresh (§8.1).
    User {
        /// Username hash.
        hash: u32,
        /// The user's mail host.
        ip: IpAddr,
        /// Refresh time (sent only to peers with minor ≥ 9).
        timestamp: Option<u64>,
        /// Ignored trailing fields, verbatim.
        extra: Vec<Field>,
    },
    /// `USER-WEAK\t<origin>\t<hash>\t<ip>` (exactly two fields after the origin; §8.2).
    UserWeak {
        /// Origin triple.
        origin: Origin,
        /// Username hash.
        hash: u32,
        /// The user's current mail host.
        ip: IpAddr,
    },
    /// `USER-MOVE\t<origin>\t<hash>\t<ip>` (exactly two fields after the origin; §8.3).
    UserMove {
        /// Origin triple.
        origin: Origin,
        /// Username hash.
        hash: u32,
        /// The new mail host.
        ip: IpAddr,
    },
    /// `USER-KILLED\t<hash>` (exactly one field; §8.3).
    UserKilled {
        /// Username hash.
        hash: u32,
    },
    /// `USER-KILLED-EVERYWHERE\t<origin>\t<hash>` (exactly one field after the origin).
    UserKilledEverywhere {
        /// Origin triple.
        origin: Origin,
        /// Username hash.
        hash: u32,
    },
    /// `USER-KICK\t<origin>\t<username>` (exactly one field; the username is escaped).
    UserKick {
        /// Origin triple.
        origin: Origin,
        /// The username, unescaped.
        username: Vec<u8>,
    },
    /// `USER-KICK-ALT\t<origin>\t<field>\t<value>` (exactly two fields, both escaped).
    UserKickAlt {
        /// Origin triple.
        origin: Origin,
        /// The userdb/passdb field name, unescaped.
        field: Vec<u8>,
        /// The value to match, unescaped.
        value: Vec<u8>,
    },
    /// `USER-KICK-HASH\t<origin>\t<hash>\t<except ip>` (exactly two fields after the origin).
    UserKickHash {
        /// Origin triple.
        origin: Origin,
        /// Username hash.
        hash: u32,
        /// Sessions on this host are kept.
        except_ip: IpAddr,
    },
    /// `SYNC\t<o-ip>\t<o-port>\t<seq>[\t<minor>\t<timestamp>\t<hosts_hash>]` (§6).
    Sync(Sync),
    /// `CONNECT\t<ip>\t<port>`: connect to this director instead (exactly two fields).
    Connect {
        /// The director to connect to.
        ip: IpAddr,
        /// Its ring port.
        port: u16,
    },
    /// `PING\t<now>\t<bytes buffered>` (§9.2).
    Ping(Pulse),
    /// `PONG\t<now>\t<bytes buffered>` (§9.2).
    Pong(Pulse),
    /// `QUIT\t<reason>`: the sender closes the connection. The reason is free text that real
    /// directors do NOT escape, so it may contain TABs; see [`Command::quit_reason_text`].
    Quit {
        /// Everything after `QUIT\t`, verbatim; `None` for a bare `QUIT`.
        reason: Option<Vec<u8>>,
    },
    /// `OPTIONS\t<option>...`: handshake options; 2.3 sends `consistent-hashing` (§4.7).
    Options {
        /// Every field, unescaped.
        options: Vec<Vec<u8>>,
    },
    /// `DONE`: end of handshake (§4.7).
    Done {
        /// Ignored fields, verbatim.
        extra: Vec<Field>,
    },
}
