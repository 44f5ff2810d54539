//! What `DIRECTOR-LIST` shows of the ring besides the byte counters (`admin-protocol.md`
//! §6.13): the connections and directors, per connection the last PING round trip and the
//! handshake USER counts, per director the last failure mark, and the duration of our last
//! SYNC round.

use super::conn::{Conn, ConnInfo};
use super::facade::Ring;
use super::peer::DirAddr;
use super::ConnId;

/// Per-connection status counters (Dovecot's `director_connection_status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Round trip of the last answered PING, ms.
    pub ping_ms: u32,
    /// Handshake `U` lines received (incoming connections).
    pub users_received: u32,
    /// Handshake `U` lines sent (outgoing connections).
    pub users_sent: u32,
    /// When the outstanding PING was sent (ms).
    pub(super) ping_sent_ms: Option<u64>,
    /// Creation order: Dovecot lists connections in the order they were created.
    pub(super) created: u64,
}

impl ConnStats {
    /// A PING went out at `now_ms`.
    pub(super) fn ping_sent(&mut self, now_ms: u64) {
        self.ping_sent_ms = Some(now_ms);
    }

    /// Its PONG came back at `now_ms`.
    pub(super) fn pong_received(&mut self, now_ms: u64) {
        if let Some(sent) = self.ping_sent_ms.take() {
            self.ping_ms = u32::try_from(now_ms.saturating_sub(sent)).unwrap_or(u32::MAX);
        }
    }
}

impl Ring {
    /// Every connection, oldest first (Dovecot's order in `DIRECTOR-LIST`).
    pub fn connections(&self) -> Vec<ConnInfo> {
        let mut conns: Vec<&Conn> = self.conns.values().collect();
        conns.sort_by_key(|c| c.stats.created);
        conns.into_iter().map(Conn::info).collect()
    }

    /// Peer of the left connection.
    pub fn left_peer(&self) -> Option<DirAddr> {
        self.left.and_then(|c| self.conns.get(&c)?.peer)
    }

    /// Peer of the right connection.
    pub fn right_peer(&self) -> Option<DirAddr> {
        self.right.and_then(|c| self.conns.get(&c)?.peer)
    }

    /// Known directors in ring order with their `removed` flag.
    pub fn directors(&self) -> Vec<(DirAddr, bool)> {
        self.peers
            .list
            .iter()
            .map(|p| (p.addr, p.removed))
            .collect()
    }

    /// Numbers a connection just created (for [`Ring::connections`]' order).
    pub(super) fn conn_created(&mut self, id: ConnId) {
        self.conns_created += 1;
        let n = self.conns_created;
        if let Some(c) = self.conns.get_mut(&id) {
            c.stats.created = n;
        }
    }

    /// The status counters of a connection.
    pub fn conn_stats(&self, id: ConnId) -> Option<ConnStats> {
        self.conns.get(&id).map(|c| c.stats)
    }

    /// How long our last SYNC round that made the ring synced took (ms; 0 before any).
    pub fn last_sync_ms(&self) -> u32 {
        self.last_sync_ms
    }

    /// A director's last failure (Unix seconds, the later of its network and protocol
    /// failure marks; 0 = never), as `DIRECTOR-LIST` shows it.
    pub fn last_failed(&self, addr: DirAddr) -> u64 {
        self.peers
            .list
            .iter()
            .find(|p| p.addr == addr)
            .map_or(0, |p| {
                p.last_network_failure
                    .max(p.last_protocol_failure)
                    .unwrap_or(0)
            })
    }

    /// Our SYNC round starts now (for [`Ring::last_sync_ms`]).
    pub(super) fn sync_round_started(&mut self) {
        self.sync_started_ms = self.now_ms;
    }

    /// Our SYNC came back and the ring is synced again.
    pub(super) fn sync_round_finished(&mut self) {
        let ms = self.now_ms.saturating_sub(self.sync_started_ms);
        self.last_sync_ms = u32::try_from(ms).unwrap_or(u32::MAX);
    }
}
