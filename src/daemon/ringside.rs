//! The state owner's ring side: what it does with [`RingIo`] events and how `DIRECTOR-LIST`
//! looks for a ring director (`admin-protocol.md` §6.13).
//!
//! The accept filter of Dovecot's `director_client_connected()` (`src/director/main.c`) runs
//! here, against the ring's current director list; everything else goes to the ring state
//! machine through `ringcore.rs`, which also keeps the counters listed here (failure marks,
//! PING round trips, handshake USER counts, the last SYNC round's duration).

use std::net::IpAddr;

use director_parsers::admin::{
    ConnPeer, ConnStatus, ConnType, DirectorConn, DirectorHost, DirectorLine, HostType,
    LocalStatus, Reply, RingStatus,
};
use director_parsers::ip::ip_to_string;
use tracing::warn;

use super::events::AdminReply;
use super::owner::Owner;
use super::ringnet::{RingIo, RingNet};
use crate::ring::ConnRole;

/// A ring director's I/O state, owned by the state owner.
#[derive(Debug)]
pub struct RingSide {
    /// Our own ring address (`director_find_self()`).
    pub me: (IpAddr, u16),
    /// The connections.
    pub net: RingNet,
    /// Handshaked/synced, as far as requests and admin commands care.
    pub sync: super::ringsync::SyncState,
    /// The ring state machine.
    pub core: crate::ring::Ring,
    /// When the ring wants its timer event (clock ms).
    pub timer_at_ms: Option<u64>,
    /// The owner's after-event follow-up (retries, resets) is running: no re-entry.
    pub in_followup: bool,
}

impl Owner {
    /// Applies one ring I/O event.
    pub(super) fn ring_io(&mut self, ev: RingIo) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        if let RingIo::Accepted { peer, .. } = &ev {
            // Dovecot's director_client_connected(): only non-removed known directors.
            let ip = peer.ip();
            let listed = ring
                .core
                .directors()
                .iter()
                .any(|(d, removed)| d.ip == ip && !removed);
            if !listed {
                warn!(
                    "Connection from {}: Server not listed in director_servers, dropping",
                    ip_to_string(&ip)
                );
                return;
            }
        }
        self.ring_core_io(ev);
    }

    /// `DIRECTOR-LIST` of a ring director (Dovecot's `doveadm_cmd_director_list()`):
    /// connections without a known director first, then every director sorted by (IP, port)
    /// with one line per connection to it, or a host line if there is none.
    pub(super) fn ring_director_list(&self, ring: &RingSide) -> AdminReply {
        let now = self.clock.now_secs();
        let conns = ring.core.connections();
        let synced = ring.core.is_synced();
        let conn_line = |c: &crate::ring::ConnInfo, peer: Option<ConnPeer>| {
            let s = ring.net.stats(c.id.0).unwrap_or_default();
            let cs = ring.core.conn_stats(c.id).unwrap_or_default();
            let status = if !c.handshaked {
                if c.incoming {
                    ConnStatus::HandshakingReceived(cs.users_received)
                } else {
                    ConnStatus::HandshakingSent(cs.users_sent)
                }
            } else if synced {
                ConnStatus::Synced
            } else {
                ConnStatus::Syncing
            };
            Reply::Director(DirectorLine::Conn(DirectorConn {
                peer,
                status,
                ping_ms: cs.ping_ms,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                buffered: s.buffered,
                peak_buffered: s.peak_buffered,
                last_in: s.last_in as i64,
                last_out: s.last_out as i64,
            }))
        };
        let mut lines: Vec<Reply> = Vec::new();
        for c in conns.iter().filter(|c| c.peer.is_none()) {
            lines.push(conn_line(c, None));
        }
        let mut directors = ring.core.directors();
        directors.sort();
        let me = ring.core.me();
        for (addr, removed) in directors {
            let mut any = false;
            for c in conns.iter().filter(|c| c.peer == Some(addr)) {
                any = true;
                let kind = match (c.role, c.incoming) {
                    (ConnRole::Left, _) => ConnType::Left,
                    (ConnRole::Right, _) => ConnType::Right,
                    (ConnRole::Pending, true) => ConnType::In,
                    (ConnRole::Pending, false) => ConnType::Out,
                };
                let peer = ConnPeer {
                    ip: addr.ip,
                    port: addr.port,
                    kind,
                    last_failed: i64::try_from(ring.core.last_failed(addr)).unwrap_or(i64::MAX),
                };
                lines.push(conn_line(c, Some(peer)));
            }
            if any {
                continue;
            }
            let kind = if removed {
                HostType::Removed
            } else if addr == me {
                HostType::Local
            } else {
                HostType::Other
            };
            lines.push(Reply::Director(DirectorLine::Host(DirectorHost {
                ip: addr.ip,
                port: addr.port,
                kind,
                last_failed: i64::try_from(ring.core.last_failed(addr)).unwrap_or(i64::MAX),
                local: (addr == me).then_some(LocalStatus {
                    ring: ring_status(&ring.sync, now),
                    last_sync_ms: ring.core.last_sync_ms(),
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
