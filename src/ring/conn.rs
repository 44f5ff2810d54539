//! Per-connection protocol state and the handshake lines (§4): both roles, minor version
//! negotiation, the host list and handshake users.

use super::facade::Ring;
use super::peer::DirAddr;
use super::ConnId;
use director_parsers::ring::{
    Command, HandshakeUser, HostInfo, DIRECTOR_VERSION_MINOR, DIRECTOR_VERSION_UPDOWN,
};
use std::net::IpAddr;

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
    /// `DIRECTOR-LIST` counters.
    pub stats: super::stats::ConnStats,
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
            .map(|h| handshake_host_info(h, minor))
            .collect();
        for h in hosts {
            self.send(id, &Command::HandshakeHost(h));
        }
        self.send(id, &Command::host_hand_end(hs));
        let now = self.secs();
        let mut users = Vec::new();
        for tag in self.dir.tags() {
            for u in tag.users.iter() {
                let ip = self.dir.hosts().get(u.host).ip;
                users.push(HandshakeUser {
                    hash: u.hash,
                    ip,
                    timestamp: u.timestamp.min(now),
                    weak: u.weak,
                    extra: Vec::new(),
                });
            }
        }
        if let Some(c) = self.conns.get_mut(&id) {
            c.stats.users_sent += users.len() as u32;
        }
        for u in users {
            let cmd = if minor >= 9 {
                Command::HandshakeUser(u)
            } else {
                Command::LegacyHandshakeUser(u)
            };
            self.send(id, &cmd);
        }
        if minor >= 5 {
            self.send(id, &Command::options_2_3());
            self.send(id, &Command::Done { extra: Vec::new() });
        } else {
            self.log_error(format!(
                "director({}): Director version is too old for OPTIONS",
                self.conn_name(id)
            ));
        }
    }
}

/// The handshake form of a host for a peer with `minor` (§4.5).
fn handshake_host_info(h: &crate::state::MailHost, minor: u32) -> HostInfo {
    let tag = h.tag.as_bytes();
    let hostname = h.hostname.as_deref().unwrap_or("").as_bytes();
    if minor >= DIRECTOR_VERSION_UPDOWN {
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
            tag: (!tag.is_empty()).then(|| tag.to_vec()),
            updown: None,
            hostname: None,
            extra: Vec::new(),
        }
    }
}

/// The ring form of a host for the ring minimum `minor` (§5.5).
pub(super) fn ring_host_info(h: &crate::state::MailHost, minor: u32) -> HostInfo {
    let tag = h.tag.as_bytes();
    let hostname = h.hostname.as_deref().unwrap_or("").as_bytes();
    if minor >= DIRECTOR_VERSION_UPDOWN {
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
            tag: None,
            updown: None,
            hostname: None,
            extra: Vec::new(),
        }
    }
}
