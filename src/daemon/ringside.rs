//! The state owner's ring side: what it does with [`RingIo`] events and how `DIRECTOR-LIST`
//! looks for a ring director (`admin-protocol.md` §6.13).
//!
//! Only the I/O wiring lives here: the accept filter of Dovecot's `director_client_connected()`
//! (`src/director/main.c`), adopting and forgetting connections, and the output-buffer limit.
//! The ring protocol itself (handshake, SYNC, user merging) belongs to the ring state machine;
//! until it is wired in, lines are only logged and the ring stays unhandshaked.

use std::net::IpAddr;

use director_parsers::admin::{
    ConnStatus, DirectorConn, DirectorHost, DirectorLine, HostType, LocalStatus, Reply, RingStatus,
};
use director_parsers::ip::ip_to_string;
use tracing::{debug, error, warn};

use super::events::AdminReply;
use super::owner::Owner;
use super::ringnet::{CloseWhy, RingIo, RingNet, SendError, OUTGOING_BIT};
use crate::config::RingConfig;

/// A ring director's I/O state, owned by the state owner.
#[derive(Debug)]
pub struct RingSide {
    /// The configured ring.
    pub cfg: RingConfig,
    /// Our own ring address (`director_find_self()`).
    pub me: (IpAddr, u16),
    /// The connections.
    pub net: RingNet,
    /// Handshaked/synced, as far as requests and admin commands care.
    pub sync: super::ringsync::SyncState,
}

impl Owner {
    /// Applies one ring I/O event.
    pub(super) fn ring_io(&mut self, ev: RingIo) {
        let listed_by_admin: Vec<IpAddr> = self
            .directors
            .iter()
            .filter(|d| !d.removed)
            .map(|d| d.ip)
            .collect();
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        match ev {
            RingIo::Accepted { stream, peer } => {
                let ip = peer.ip();
                if !ring.cfg.lists_ip(ip) && !listed_by_admin.contains(&ip) {
                    warn!(
                        "Connection from {}: Server not listed in director_servers, dropping",
                        ip_to_string(&ip)
                    );
                    drop(stream);
                    return;
                }
                let conn = ring.net.adopt(stream);
                debug!(conn, "ring connection from {}", ip_to_string(&ip));
            }
            RingIo::Connected { conn, peer_ip } => {
                debug!(conn, "ring connection to {} up", ip_to_string(&peer_ip));
            }
            RingIo::Line { conn, bytes } => {
                if ring.net.contains(conn) {
                    debug!(conn, "input: {}", super::loggable_line(&bytes));
                }
            }
            RingIo::Closed { conn, why } => {
                if ring.net.forget(conn) {
                    match why {
                        CloseWhy::Eof => debug!(conn, "ring connection closed by the peer"),
                        CloseWhy::Error(e) | CloseWhy::ConnectFailed(e) => {
                            debug!(conn, "ring connection failed: {e}")
                        }
                        CloseWhy::TooLong => {}
                    }
                }
            }
        }
    }

    /// Queues a line on a ring connection; a full output buffer closes the connection
    /// (Dovecot: "Output buffer full at N", then a disconnect). Returns whether it was queued.
    #[allow(dead_code)] // used once the ring state machine is wired in
    pub(super) fn ring_send(&mut self, conn: u64, line: Vec<u8>) -> bool {
        let Some(ring) = self.ring.as_mut() else {
            return false;
        };
        match ring.net.send(conn, line) {
            Ok(()) => true,
            Err(SendError::Gone) => false,
            Err(SendError::Full(n)) => {
                error!("Output buffer full at {n}");
                ring.net.close(conn);
                false
            }
        }
    }

    /// `DIRECTOR-LIST` of a ring director: every configured or added director sorted by
    /// (IP, port), ourselves with the ring state. Connections without a known director
    /// come first (all of them, until the ring state machine identifies peers).
    pub(super) fn ring_director_list(&self, ring: &RingSide) -> AdminReply {
        let mut all: Vec<(IpAddr, u16, bool)> = ring
            .cfg
            .servers
            .iter()
            .map(|&(i, p)| (i, p, false))
            .collect();
        for d in &self.directors {
            match all.iter_mut().find(|a| (a.0, a.1) == (d.ip, d.port)) {
                Some(a) => a.2 = d.removed,
                None => all.push((d.ip, d.port, d.removed)),
            }
        }
        all.sort();
        let mut lines: Vec<Reply> = Vec::new();
        let mut conns: Vec<u64> = ring.net.ids();
        conns.sort_unstable();
        for conn in conns {
            if let Some(s) = ring.net.stats(conn) {
                lines.push(Reply::Director(DirectorLine::Conn(DirectorConn {
                    peer: None,
                    status: if conn & OUTGOING_BIT == 0 {
                        ConnStatus::HandshakingReceived(0)
                    } else {
                        ConnStatus::HandshakingSent(0)
                    },
                    ping_ms: 0,
                    bytes_in: s.bytes_in,
                    bytes_out: s.bytes_out,
                    buffered: s.buffered,
                    peak_buffered: s.peak_buffered,
                    last_in: s.last_in as i64,
                    last_out: s.last_out as i64,
                })));
            }
        }
        for (ip, port, removed) in all {
            let me = (ip, port) == ring.me;
            let kind = match (me, removed) {
                (true, _) => HostType::Local,
                (false, true) => HostType::Removed,
                (false, false) => HostType::Other,
            };
            lines.push(Reply::Director(DirectorLine::Host(DirectorHost {
                ip,
                port,
                kind,
                last_failed: 0,
                local: me.then_some(LocalStatus {
                    ring: ring_status(&ring.sync, self.clock.now_secs()),
                    last_sync_ms: 0,
                }),
            })));
        }
        lines.push(Reply::End);
        let mut out = Vec::new();
        for l in &lines {
            l.encode(&mut out);
        }
        AdminReply::Bytes(out)
    }
}

/// The self line's ring state (`doveadm_director_append_status()`).
fn ring_status(sync: &super::ringsync::SyncState, now: u64) -> RingStatus {
    if !sync.handshaked {
        RingStatus::Handshaking
    } else if sync.synced {
        RingStatus::Synced
    } else {
        RingStatus::Syncing {
            secs_ago: now.saturating_sub(sync.last_sync_secs) as i32,
        }
    }
}
