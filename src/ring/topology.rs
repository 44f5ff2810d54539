//! Topology (§3, §4.2-4.4, §4.7-4.8, §5.4): VERSION/ME/DONE handling, left/right choice,
//! the connect procedure, CONNECT and membership (DIRECTOR, DIRECTOR-REMOVE).

use super::conn::{Conn, ConnRole};
use super::facade::{CloseKind, Ring};
use super::peer::{DirAddr, Peers, FAILURE_SKIP_SECS};
use super::{ConnId, LogLevel, RingEffect};
use director_parsers::ring::Command;

/// A connection that lived shorter than this counts as a network failure (§9.4).
const SHORT_LIVED_MS: u64 = 40_000;
/// Retry interval during the "alone" grace (§3.4).
const ALONE_RETRY_MS: u64 = 1_000;
/// Length of the "alone" grace.
const ALONE_GRACE_SECS: u64 = 20;
/// Reconnect-to-preferred-right interval while synced.
const PREFERRED_RIGHT_MS: u64 = 30_000;
/// Close delay after sending CONNECT.
const CONNECT_CLOSE_MS: u64 = 10_000;
/// Close delay after a rejected CONNECT.
const WRONG_CONNECT_CLOSE_MS: u64 = 1_000;
/// A handshake slower than this is logged as a warning.
const HANDSHAKE_WARN_MS: u64 = 29_000;
/// A removed director is purged after this long.
const REMOVED_PURGE_SECS: u64 = 30;

impl Ring {
    pub(super) fn on_version(&mut self, id: ConnId, minor: u32) {
        let tagged = self
            .dir
            .host_list()
            .any(|h| !h.tag.is_default() && h.vhost_count > 0);
        if minor < director_parsers::ring::DIRECTOR_VERSION_TAGS_V2 && tagged {
            self.log_error("Director version supports incompatible tags".into());
            self.close_conn(id, "Invalid input: VERSION", CloseKind::Error);
            return;
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.minor = Some(minor);
        if !c.incoming {
            self.send_handshake_rest(id);
        }
    }

    pub(super) fn on_me(&mut self, id: ConnId, who: DirAddr, ts: Option<u64>) {
        let now = self.secs();
        if let Some(ts) = ts {
            if ts.abs_diff(now) > 1 {
                self.log(
                    LogLevel::Warning,
                    format!(
                        "Director {who} clock differs from ours by {} secs",
                        ts.abs_diff(now)
                    ),
                );
            }
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.got_me = true;
        c.me_ms = self.now_ms;
        let wait = if c.incoming {
            super::liveness::DONE_TIMEOUT_MS
        } else {
            super::liveness::SEND_USERS_TIMEOUT_MS
        };
        self.set_handshake_timer(id, wait);
        let c = self.conns.get_mut(&id).expect("checked above");
        if !c.incoming {
            let dialled = c.peer.expect("outgoing connections know their peer");
            if dialled != who {
                self.log_error(format!(
                    "Remote director thinks it's someone else (connected to {dialled}, \
                     remote says it's {who})"
                ));
                self.close_conn(id, "Invalid input: ME", CloseKind::Error);
            }
            return;
        }
        c.peer = Some(who);
        let (p, added) = self.peers.get_or_add(who);
        p.removed = false;
        p.restart_reset();
        let banned = p
            .last_protocol_failure
            .filter(|t| t + FAILURE_SKIP_SECS > now);
        if added {
            self.log(
                LogLevel::Info,
                format!("Adding director {who} to ring (requested by {who}/in)"),
            );
        }
        if let Some(t) = banned {
            let name = self.conn_name(id);
            self.log_error(format!(
                "director({name}): Remote sent invalid protocol data recently, \
                 waiting {} secs before allowing further communication",
                t + FAILURE_SKIP_SECS - now
            ));
            // Real directors QUIT with this reason (observed on 2.3.19.1).
            self.close_conn(id, "Invalid input: ME", CloseKind::Error);
            return;
        }
        if who == self.peers.me {
            return;
        }
        match self.left {
            None => {
                if let Some(p) = self.peers.get_mut(who) {
                    p.last_network_failure = None;
                }
                let has_out = self.conns.values().any(|c| !c.incoming);
                if !has_out {
                    self.connect_procedure("Connecting to left");
                }
            }
            Some(left) => {
                let left_peer = self.conns[&left].peer.expect("left knows its peer");
                if left_peer == who {
                    self.close_conn(
                        left,
                        "Replacing with new incoming connection",
                        CloseKind::Deliberate,
                    );
                } else if self.peers.closer_left(who, left_peer) {
                    let cmd = Command::Connect {
                        ip: who.ip,
                        port: who.port,
                    };
                    self.send(left, &cmd);
                } else {
                    self.conns.get_mut(&left).expect("left exists").verifying = true;
                    self.ping(left);
                }
            }
        }
    }

    /// Our left answered the PING of §4.3 step 6: tell farther newcomers to use it.
    pub(super) fn left_verified(&mut self) {
        let Some(left) = self.left else { return };
        let left_peer = self.conns[&left].peer.expect("left knows its peer");
        let newcomers: Vec<(ConnId, DirAddr)> = self
            .conns
            .values()
            .filter(|c| c.incoming && c.role == ConnRole::Pending && c.close_at.is_none())
            .filter_map(|c| Some((c.id, c.peer?)))
            .filter(|(_, p)| *p != self.peers.me && self.peers.closer_left(left_peer, *p))
            .collect();
        for (id, _) in newcomers {
            self.send_connect_and_close(id, left_peer, CONNECT_CLOSE_MS);
        }
    }

    fn send_connect_and_close(&mut self, id: ConnId, target: DirAddr, delay_ms: u64) {
        let cmd = Command::Connect {
            ip: target.ip,
            port: target.port,
        };
        self.send(id, &cmd);
        let name = self.conn_name(id);
        self.log(
            LogLevel::Warning,
            format!("Director {name} tried to connect to us, should use {target} instead"),
        );
        let at = self.now_ms + delay_ms;
        if let Some(c) = self.conns.get_mut(&id) {
            c.close_at = Some(at);
            c.close_reason = "";
        }
    }

    pub(super) fn on_done(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.done = true;
        let (incoming, peer) = (c.incoming, c.peer.expect("ME came first"));
        if let Some(p) = self.peers.get_mut(peer) {
            p.last_network_failure = None;
        }
        let c = &self.conns[&id];
        let (ms, sent) = (self.now_ms - c.created_ms, c.stats.users_sent);
        let name = self.conn_name(id);
        let level = if ms >= HANDSHAKE_WARN_MS {
            LogLevel::Warning
        } else {
            LogLevel::Info
        };
        self.log(
            level,
            format!(
                "director({name}): Handshake finished in {} secs ({sent} USERs sent in handshake)",
                super::liveness::secs3(ms)
            ),
        );
        if incoming {
            self.send(id, &Command::Done { extra: Vec::new() });
            let cmd = Command::Director {
                ip: peer.ip,
                port: peer.port,
                extra: Vec::new(),
            };
            self.broadcast(&cmd, Some(peer));
            self.assign_left(id);
        } else {
            self.assign_right(id);
        }
    }

    fn assign_left(&mut self, id: ConnId) {
        let peer = self.conns[&id].peer.expect("handshaked");
        if peer == self.peers.me {
            self.log_error("Connection from self, dropping".into());
            self.close_conn(id, "", CloseKind::Deliberate);
            return;
        }
        if let Some(left) = self.left {
            let left_peer = self.conns[&left].peer.expect("left knows its peer");
            if left_peer == peer {
                let (a, b) = (self.conn_name(left), self.conn_name(id));
                self.log(
                    LogLevel::Warning,
                    format!("Replacing left director connection {a} with {b}"),
                );
                self.close_conn(
                    left,
                    "Replacing with new incoming connection",
                    CloseKind::Deliberate,
                );
            } else if self.conns[&left].verifying {
                return;
            } else if self.peers.closer_left(left_peer, peer) {
                self.send_connect_and_close(id, left_peer, CONNECT_CLOSE_MS);
                return;
            } else {
                return;
            }
        }
        self.left = Some(id);
        self.conns.get_mut(&id).expect("exists").role = ConnRole::Left;
        self.pair_completed();
        self.set_ping_timeout(id);
    }

    fn assign_right(&mut self, id: ConnId) {
        let peer = self.conns[&id].peer.expect("outgoing");
        if let Some(right) = self.right {
            let right_peer = self.conns[&right].peer.expect("right knows its peer");
            if !self.peers.closer_right(peer, right_peer) {
                self.log(
                    LogLevel::Warning,
                    format!(
                        "Aborting incorrect outgoing connection to {peer} \
                         (already connected to correct one: {right_peer})"
                    ),
                );
                self.close_conn(id, "", CloseKind::Deliberate);
                return;
            }
            let msg = format!("Replacing with {peer}");
            self.close_conn(right, &msg, CloseKind::Deliberate);
        }
        self.right = Some(id);
        self.conns.get_mut(&id).expect("exists").role = ConnRole::Right;
        self.send_delayed_syncs();
        self.pair_completed();
        self.set_ping_timeout(id);
    }

    /// After a left/right assignment: with both neighbours, start a SYNC round (§4.8).
    fn pair_completed(&mut self) {
        if self.left.is_some() && self.right.is_some() {
            self.sync_seq += 1;
            self.set_unsynced();
            self.send_sync();
        }
    }

    /// Bookkeeping after a connection is gone (§9.4).
    pub(super) fn after_close(&mut self, c: Conn, kind: CloseKind) {
        let now = self.secs();
        if let Some(peer) = c.peer {
            let short = !c.connected || self.now_ms - c.created_ms < SHORT_LIVED_MS;
            if let Some(p) = self.peers.get_mut(peer) {
                match kind {
                    CloseKind::Network if short => p.last_network_failure = Some(now),
                    CloseKind::Protocol => p.last_protocol_failure = Some(now),
                    _ => {}
                }
            }
        }
        if self.left == Some(c.id) {
            self.left = None;
            let next = self
                .conns
                .values()
                .find(|x| {
                    x.incoming && x.done && x.role == ConnRole::Pending && x.close_at.is_none()
                })
                .map(|x| x.id);
            if let Some(next) = next {
                self.assign_left(next);
            }
        }
        if self.right == Some(c.id) {
            self.right = None;
        }
        if self.shutting_down {
            return;
        }
        if self.left.is_none() || self.right.is_none() {
            self.sync_seq += 1;
            self.set_unsynced();
        }
        if self.right.is_none() {
            let reason = match kind {
                CloseKind::Protocol | CloseKind::Error => "Reconnecting after error",
                CloseKind::Write => "Reconnecting after write failure",
                CloseKind::Network | CloseKind::Deliberate => "Reconnecting after disconnection",
            };
            self.connect_procedure(reason);
        }
    }

    /// Start an outgoing connection to `to`.
    fn open_conn(&mut self, to: DirAddr, reason: &str) {
        self.next_outgoing += 1;
        let id = ConnId(ConnId::OUTGOING_BIT | self.next_outgoing);
        if let Some(p) = self.peers.get_mut(to) {
            p.restart_reset();
        }
        self.conns
            .insert(id, Conn::new(id, false, Some(to), self.now_ms));
        self.set_handshake_timer(id, super::liveness::CONNECT_TIMEOUT_MS);
        self.conn_created(id);
        let me = self.peers.me;
        self.log(
            LogLevel::Info,
            format!("Connecting to {to} (as {me}): {reason}"),
        );
        self.out.push(RingEffect::Connect {
            conn: id,
            ip: to.ip,
            port: to.port,
        });
    }

    fn has_outgoing_to(&self, to: DirAddr) -> bool {
        self.conns
            .values()
            .any(|c| !c.incoming && c.peer == Some(to) && c.close_at.is_none())
    }

    /// §3.4 connect procedure.
    pub(super) fn connect_procedure(&mut self, reason: &str) {
        if self.shutting_down {
            return;
        }
        let now = self.secs();
        if !self.peers.has_others() {
            // Stand-alone or everyone else removed: we are the ring.
            self.become_alone();
            return;
        }
        for cand in self.peers.forward() {
            let p = self.peers.get(cand).expect("listed");
            if Peers::skip(p, now) {
                continue;
            }
            if self.has_outgoing_to(cand) {
                return;
            }
            self.open_conn(cand, reason);
            return;
        }
        let grace_until = *self.alone_grace_until.get_or_insert(now + ALONE_GRACE_SECS);
        if now < grace_until {
            for p in &mut self.peers.list {
                p.last_network_failure = None;
                p.last_protocol_failure = None;
            }
            self.reconnect_at = Some(self.now_ms + ALONE_RETRY_MS);
            return;
        }
        self.log(
            LogLevel::Warning,
            "director: Couldn't connect to right side, we must be the only director left".into(),
        );
        if let Some(left) = self.left {
            self.close_conn(left, "This connection is dead?", CloseKind::Deliberate);
        }
        self.become_alone();
    }

    fn become_alone(&mut self) {
        self.ring_min_version = director_parsers::ring::DIRECTOR_VERSION_MINOR;
        self.handshaked = true;
        self.set_synced();
    }

    /// The reconnect timer: alone-grace retry or reconnect to the preferred right.
    pub(super) fn reconnect_timer(&mut self) {
        let within_grace = self
            .alone_grace_until
            .is_some_and(|t| self.secs() < t && self.right.is_none());
        if within_grace {
            self.connect_procedure("Alone in director ring - trying to connect to others");
            return;
        }
        let Some(pref) = self.peers.preferred_right() else {
            return;
        };
        if self.right_peer() == Some(pref) {
            return;
        }
        if !self.has_outgoing_to(pref) {
            self.open_conn(pref, "Reconnect attempt to preferred director");
        }
        if self.synced {
            self.reconnect_at = Some(self.now_ms + PREFERRED_RIGHT_MS);
        }
    }

    /// After becoming synced: keep trying the preferred right if it is not our right.
    pub(super) fn schedule_preferred_right(&mut self) {
        let pref = self.peers.preferred_right();
        if pref.is_some() && self.right_peer() != pref && self.reconnect_at.is_none() {
            self.reconnect_at = Some(self.now_ms + PREFERRED_RIGHT_MS);
        }
    }

    /// `DIRECTOR` (§5.4, §4.4).
    pub(super) fn on_director(&mut self, id: ConnId, who: DirAddr) {
        if who == self.peers.me {
            return;
        }
        let from = self.conns.get(&id).and_then(|c| c.peer);
        let handshake_done = self.conns.get(&id).is_some_and(|c| c.done);
        let (p, added) = self.peers.get_or_add(who);
        if !added && p.removed {
            return;
        }
        if handshake_done {
            p.last_network_failure = None;
        }
        p.restart_reset();
        if added {
            let by = self.conn_name(id);
            self.log(
                LogLevel::Info,
                format!("Adding director {who} to ring (requested by {by})"),
            );
        }
        if let Some(rp) = self.right_peer() {
            if self.peers.closer_right(who, rp) {
                return;
            }
        }
        self.ring_change_counter += 1;
        let cmd = Command::Director {
            ip: who.ip,
            port: who.port,
            extra: Vec::new(),
        };
        self.broadcast(&cmd, from);
    }

    /// `DIRECTOR-REMOVE` (§5.4); `id` is `None` when we originate it.
    pub(super) fn on_director_remove(&mut self, id: Option<ConnId>, who: DirAddr) -> bool {
        let from = id.and_then(|i| self.conns.get(&i)?.peer);
        let Some(p) = self.peers.get(who) else {
            return false;
        };
        if p.removed || (who == self.peers.me && from.is_some()) {
            return false;
        }
        let by = from.unwrap_or(self.peers.me);
        self.log(
            LogLevel::Info,
            format!("Removing director {who} from ring (requested by {by})"),
        );
        let now = self.secs();
        if who != self.peers.me {
            let p = self.peers.get_mut(who).expect("checked");
            p.removed = true;
            p.removed_at = now + REMOVED_PURGE_SECS;
        }
        let cmd = Command::DirectorRemove {
            ip: who.ip,
            port: who.port,
            extra: Vec::new(),
        };
        self.broadcast(&cmd, from);
        let to_close: Vec<ConnId> = self
            .conns
            .values()
            .filter(|c| c.peer == Some(who) && who != self.peers.me)
            .map(|c| c.id)
            .collect();
        for c in to_close {
            self.close_conn(c, "Removing from ring", CloseKind::Deliberate);
        }
        if self.right.is_none() {
            self.connect_procedure("Reconnecting after director was removed");
        }
        self.resync();
        true
    }

    /// Purge removed directors whose 30 s passed (or all at ring sync).
    pub(super) fn purge_removed(&mut self, all: bool) {
        let now = self.secs();
        self.peers
            .list
            .retain(|p| !(p.removed && (all || p.removed_at <= now)));
    }

    pub(super) fn purge_removed_due(&mut self) {
        self.purge_removed(false);
    }

    /// `CONNECT` (§5.4).
    pub(super) fn on_connect_cmd(&mut self, id: ConnId, target: DirAddr) {
        let (p, _) = self.peers.get_or_add(target);
        let removed = p.removed;
        let worse = self
            .right_peer()
            .is_some_and(|rp| !self.peers.closer_right(target, rp));
        if removed || worse || target == self.peers.me {
            if let Some(c) = self.conns.get_mut(&id) {
                c.close_at = Some(self.now_ms + WRONG_CONNECT_CLOSE_MS);
                c.close_reason = "Wrong CONNECT requested";
            }
            return;
        }
        let p = self.peers.get_mut(target).expect("added");
        p.last_network_failure = None;
        p.last_protocol_failure = None;
        p.removed = false;
        let by = self.conn_name(id);
        let old_right = self.right;
        let reason = match old_right {
            Some(r) => {
                let rn = self.conn_name(r);
                format!("Received CONNECT request from {by} - replacing current right {rn}")
            }
            None => format!("Received CONNECT request from {by} - initializing right"),
        };
        if !self.has_outgoing_to(target) {
            self.open_conn(target, &reason);
        }
        // Open first, so the close below does not run the connect procedure elsewhere.
        if let Some(r) = old_right {
            self.close_conn(r, "CONNECT requested", CloseKind::Deliberate);
        }
    }
}
