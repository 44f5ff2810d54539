//! Per-connection protocol state and the handshake lines (§4): both roles, minor version
//! negotiation, the host list and handshake users.

use super::facade::Ring;
use super::peer::DirAddr;
use super::{ConnId, RingEffect};
use crate::state::UserKey;
use director_parsers::ring::{
    Command, HandshakeUser, HostInfo, DIRECTOR_VERSION_MINOR, DIRECTOR_VERSION_UPDOWN,
};
use std::net::IpAddr;

/// Handshake users sent per chunk (Dovecot's `DIRECTOR_HANDSHAKE_MAX_USERS_SENT_PER_FLUSH`).
pub(super) const USERS_PER_FLUSH: usize = 10_000;

/// What a connection is to us once its handshake is done (§4.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnRole {
    /// Handshaking, or handshaked but neither left nor right.
    Pending,
    /// Our left neighbour (incoming).
    Left,
    /// Our right neighbour (outgoing).
    Right,
}

/// A read-only summary of one connection, for status output and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The connection.
    pub id: ConnId,
    /// Accepted rather than dialled.
    pub incoming: bool,
    /// The remote director, once known.
    pub peer: Option<DirAddr>,
    /// Left, right or pending.
    pub role: ConnRole,
    /// Both DONEs exchanged.
    pub handshaked: bool,
}

/// Protocol state of one connection.
#[derive(Clone, Debug)]
pub(super) struct Conn {
    pub id: ConnId,
    pub incoming: bool,
    /// The remote director: the dialled one (outgoing) or the one named by `ME` (incoming).
    pub peer: Option<DirAddr>,
    /// Source address of an accepted connection.
    pub remote_ip: Option<IpAddr>,
    /// TCP is up (outgoing connections start unconnected).
    pub connected: bool,
    /// Peer's announced minor; `None` until `VERSION`.
    pub minor: Option<u32>,
    pub got_me: bool,
    /// Between HOST-HAND-START and HOST-HAND-END.
    pub in_host_list: bool,
    pub ignore_hosts: bool,
    pub done: bool,
    pub role: ConnRole,
    pub created_ms: u64,
    pub ping_outstanding: bool,
    /// Our left, PINGed to check it is alive before telling newcomers to use it (§4.3).
    pub verifying: bool,
    /// After we sent CONNECT: discard input, close at this time (ms).
    pub close_at: Option<u64>,
    /// Close reason used when `close_at` fires.
    pub close_reason: &'static str,
    /// Dovecot's `to_ping`: the handshake timeout, the ping interval or the PONG wait without
    /// input; restarted by every input line (§9.1).
    pub to_ping: Option<ConnTimer>,
    /// Dovecot's `to_pong`: the PONG wait however much other input arrives.
    pub pong_at: Option<u64>,
    /// When the outstanding PING was sent (ms).
    pub ping_sent_ms: u64,
    /// When ME arrived (ms), for the handshake timeout's log line.
    pub me_ms: u64,
    /// Dovecot's per-connection `synced`: pings every 15 s instead of every 1 s.
    pub synced: bool,
    /// Handshake users still to send (outgoing side, §4.6).
    pub users_out: Option<UserSend>,
    /// `DIRECTOR-LIST` counters.
    pub stats: super::stats::ConnStats,
}

/// What a connection's `to_ping` timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TimerKind {
    /// Handshake not finished in time (connect, ME, sending users, DONE).
    Handshake,
    /// Time to PING (repeats while a PONG is awaited).
    Ping,
    /// A PING got no input at all in `director_ping_idle_timeout`.
    PingIdle,
}

/// A restartable per-connection timer (Dovecot's `timeout_add` + `timeout_reset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ConnTimer {
    pub kind: TimerKind,
    pub len_ms: u64,
    pub at_ms: u64,
}

impl ConnTimer {
    pub fn new(kind: TimerKind, len_ms: u64, now_ms: u64) -> Self {
        ConnTimer {
            kind,
            len_ms,
            at_ms: now_ms + len_ms,
        }
    }
}

/// The outgoing side's handshake users in flight: the entries as they were when the
/// handshake started, sent in chunks as the output drains (§4.6).
#[derive(Clone, Debug)]
pub(super) struct UserSend {
    /// Each user and its slab slot at the start (read back without a hash probe).
    pub keys: Vec<(UserKey, u32)>,
    pub next: usize,
}

impl Conn {
    pub fn new(id: ConnId, incoming: bool, peer: Option<DirAddr>, now_ms: u64) -> Self {
        Conn {
            id,
            incoming,
            peer,
            remote_ip: None,
            connected: incoming,
            minor: None,
            got_me: false,
            in_host_list: false,
            ignore_hosts: false,
            done: false,
            role: ConnRole::Pending,
            created_ms: now_ms,
            ping_outstanding: false,
            verifying: false,
            close_at: None,
            close_reason: "",
            to_ping: None,
            pong_at: None,
            ping_sent_ms: 0,
            me_ms: 0,
            synced: false,
            users_out: None,
            stats: Default::default(),
        }
    }

    /// The minor used to gate what we send (0 before `VERSION`).
    pub fn minor0(&self) -> u32 {
        self.minor.unwrap_or(0)
    }

    pub fn info(&self) -> ConnInfo {
        ConnInfo {
            id: self.id,
            incoming: self.incoming,
            peer: self.peer,
            role: self.role,
            handshaked: self.done,
        }
    }
}

impl Ring {
    pub(super) fn version_cmd() -> Command {
        Command::Version {
            minor: DIRECTOR_VERSION_MINOR,
            extra: Vec::new(),
        }
    }

    pub(super) fn me_cmd(&self) -> Command {
        Command::Me {
            ip: self.peers.me.ip,
            port: self.peers.me.port,
            timestamp: Some(self.secs()),
            extra: Vec::new(),
        }
    }

    /// The first lines of either side: VERSION and ME, and the outgoing side's DIRECTOR list.
    pub(super) fn send_greeting(&mut self, id: ConnId, incoming: bool) {
        self.send(id, &Self::version_cmd());
        let me = self.me_cmd();
        self.send(id, &me);
        if !incoming {
            let list: Vec<DirAddr> = self
                .peers
                .list
                .iter()
                .filter(|p| !p.removed)
                .map(|p| p.addr)
                .collect();
            for a in list {
                self.send(
                    id,
                    &Command::Director {
                        ip: a.ip,
                        port: a.port,
                        extra: Vec::new(),
                    },
                );
            }
        }
    }

    /// The outgoing side's host list, users, OPTIONS and DONE, sent once the peer's minor is
    /// known (a9ade10461).
    pub(super) fn send_handshake_rest(&mut self, id: ConnId) {
        let Some(minor) = self.conns.get(&id).map(|c| c.minor0()) else {
            return;
        };
        let hs = self.handshaked;
        self.send(
            id,
            &Command::HostHandStart {
                handshaked: hs,
                extra: Vec::new(),
            },
        );
        let hosts: Vec<HostInfo> = self
            .dir
            .host_list()
            .map(|h| host_info(h, minor, true))
            .collect();
        for h in hosts {
            self.send(id, &Command::HandshakeHost(h));
        }
        self.send(id, &Command::host_hand_end(hs));
        let mut keys = Vec::with_capacity(self.dir.user_count());
        for (tag, t) in self.dir.tags().iter().enumerate() {
            let tag = tag as crate::state::TagId;
            keys.extend(
                t.users
                    .slots()
                    .map(|(slot, hash)| (UserKey { tag, hash }, slot)),
            );
        }
        if let Some(c) = self.conns.get_mut(&id) {
            c.users_out = Some(UserSend { keys, next: 0 });
        }
        self.send_users_chunk(id);
    }

    /// Sends the next chunk of handshake users (Dovecot's `director_connection_send_users`):
    /// at most [`USERS_PER_FLUSH`] lines, then waits for the output to drain
    /// ([`RingEffect::WantWritable`]) so a million users never sit in the output buffer at
    /// once; after the last one, OPTIONS and DONE. Each chunk restarts the handshake timer.
    pub(super) fn send_users_chunk(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(mut batch) = c.users_out.take() else {
            return;
        };
        let minor = c.minor0();
        if let Some(t) = c.to_ping.as_mut() {
            t.at_ms = self.now_ms + t.len_ms;
        }
        let now = self.secs();
        let end = (batch.next + USERS_PER_FLUSH).min(batch.keys.len());
        let mut sent = 0;
        for &(key, slot) in &batch.keys[batch.next..end] {
            // Entries expired or removed since the handshake began are skipped; ones
            // refreshed meanwhile go with their current data (their USER was broadcast too).
            let Some(u) = self.dir.user_at(key, slot) else {
                continue;
            };
            let u = HandshakeUser {
                hash: u.hash,
                ip: self.dir.hosts().get(u.host).ip,
                timestamp: u.timestamp.min(now),
                weak: u.weak,
                extra: Vec::new(),
            };
            let cmd = if minor >= 9 {
                Command::HandshakeUser(u)
            } else {
                Command::LegacyHandshakeUser(u)
            };
            self.out.push(RingEffect::Send {
                conn: id,
                line: cmd.to_line(),
            });
            sent += 1;
        }
        batch.next = end;
        let more = batch.next < batch.keys.len();
        let c = self.conns.get_mut(&id).expect("checked above");
        c.stats.users_sent = c.stats.users_sent.saturating_add(sent);
        if more {
            c.users_out = Some(batch);
            self.out.push(RingEffect::WantWritable { conn: id });
            return;
        }
        if minor >= 5 {
            self.send(id, &Command::options_2_3());
            self.send(id, &Command::Done { extra: Vec::new() });
        } else {
            self.log_error(format!(
                "director({}): Director version is too old for supporting \
                 director_consistent_hashing=yes",
                self.conn_name(id)
            ));
        }
    }
}

/// A host as a HOST line for `minor`: the peer's version in the handshake (§4.5), where an
/// old peer still gets a non-empty tag, or the ring minimum on the ring (§5.5), where it gets
/// none.
pub(super) fn host_info(h: &crate::state::MailHost, minor: u32, handshake: bool) -> HostInfo {
    let tag = h.tag.as_bytes();
    if minor >= DIRECTOR_VERSION_UPDOWN {
        let hostname = h.hostname.as_deref().unwrap_or("").as_bytes();
        HostInfo::full(
            h.ip,
            h.vhost_count,
            tag,
            h.down,
            h.last_updown_change,
            hostname,
        )
    } else {
        HostInfo {
            ip: h.ip,
            vhost_count: h.vhost_count,
            tag: (handshake && !tag.is_empty()).then(|| tag.to_vec()),
            updown: None,
            hostname: None,
            extra: Vec::new(),
        }
    }
}
