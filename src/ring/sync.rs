//! SYNC rounds (§6): our own rounds, forwarding others', the synced state and the 5 s
//! lost-SYNC timer.

use super::facade::Ring;
use super::{ConnId, LogLevel};
use director_parsers::ring::{Command, Origin, Sync, DIRECTOR_VERSION_MINOR};

/// Resend interval of a lost SYNC (§6.5).
const SYNC_TIMER_MS: u64 = 5_000;
/// A SYNC with a lower seq but a timestamp this much newer means its origin restarted.
const STALE_SYNC_RESET_SECS: u64 = 120;

impl Ring {
    /// Mark the ring unsynced and start the resend timer (§6.2 step 3).
    pub(super) fn set_unsynced(&mut self) {
        if self.synced {
            self.synced = false;
        }
        if self.sync_timer_at.is_none() {
            self.sync_timer_at = Some(self.now_ms + SYNC_TIMER_MS);
        }
    }

    /// §6.4: the ring (or we alone) became synced.
    pub(super) fn set_synced(&mut self) {
        self.sync_timer_at = None;
        self.set_neighbours_synced(true);
        if !self.synced {
            self.synced = true;
            self.purge_removed(true);
            self.dir.clear_desynced();
            self.schedule_preferred_right();
        }
    }

    /// RESYNC (§6.2): deferred to the end of the current event.
    pub(super) fn resync(&mut self) {
        self.state_changes += 1;
        self.sync_seq += 1;
        if self.left.is_none() && self.right.is_none() {
            return;
        }
        self.set_unsynced();
        if self.in_batch {
            self.resync_pending = true;
        } else {
            self.resync_now();
        }
    }

    pub(super) fn resync_now(&mut self) {
        self.sync_seq += 1;
        if self.left.is_none() && self.right.is_none() {
            return;
        }
        self.set_unsynced();
        if self.right.is_some() {
            // Ping faster until synced again: a dead neighbour is found sooner.
            self.set_neighbours_synced(false);
        }
        self.send_sync();
    }

    /// Send our SYNC on the right with the current seq, then PING both neighbours.
    pub(super) fn send_sync(&mut self) {
        let Some(right) = self.right else { return };
        let origin = Origin {
            ip: self.peers.me.ip,
            port: self.peers.me.port,
            seq: self.sync_seq,
        };
        let sync = Sync::full(
            origin,
            DIRECTOR_VERSION_MINOR,
            self.secs(),
            self.dir.hosts_hash(),
        );
        self.last_sync_sent_ring_change_counter = self.ring_change_counter;
        self.sync_round_started();
        self.log(
            LogLevel::Debug,
            format!(
                "Ring is desynced (seq={}, sending SYNC to {})",
                self.sync_seq,
                self.conn_name(right)
            ),
        );
        self.send_sync_to(right, sync);
    }

    /// Send a SYNC on `id` in the form its minor allows, and PING left and right.
    fn send_sync_to(&mut self, id: ConnId, mut sync: Sync) {
        let peer_minor = self.conns.get(&id).map_or(0, |c| c.minor0());
        if sync.minor.unwrap_or(0) == 0 || peer_minor == 0 {
            sync = Sync {
                origin: sync.origin,
                minor: None,
                timestamp: None,
                hosts_hash: None,
                extra: Vec::new(),
            };
        }
        self.send(id, &Command::Sync(sync));
        for c in [self.left, self.right].into_iter().flatten() {
            self.ping(c);
        }
    }

    /// A right was assigned: send the SYNCs we kept for lack of one.
    pub(super) fn send_delayed_syncs(&mut self) {
        let Some(right) = self.right else { return };
        let pending: Vec<Sync> = self
            .peers
            .list
            .iter_mut()
            .filter_map(|p| p.delayed_sync.take())
            .collect();
        if !pending.is_empty() {
            self.log(LogLevel::Debug, "Sending delayed SYNCs".into());
        }
        for s in pending {
            self.send_sync_to(right, s);
        }
    }

    /// §6.3.
    pub(super) fn on_sync(&mut self, _id: ConnId, mut s: Sync) {
        let minor = s.minor.unwrap_or(0).min(DIRECTOR_VERSION_MINOR);
        s.minor = s.minor.map(|_| minor);
        let now = self.secs();
        let ts = s.timestamp.unwrap_or(now);
        let hash = s.hosts_hash.unwrap_or(0);
        let o = super::DirAddr::new(s.origin.ip, s.origin.port);
        let seq = s.origin.seq;
        let my_hash = self.dir.hosts_hash();
        if o == self.peers.me {
            if seq != self.sync_seq {
                return;
            }
            if hash != 0 && hash != my_hash {
                self.log_error(format!(
                    "Hosts unexpectedly changed during SYNC reply - resending \
                     (seq={seq}, their hash={hash}, our hash={my_hash})"
                ));
                self.send_sync();
                return;
            }
            self.ring_min_version = minor;
            if !self.handshaked {
                self.handshaked = true;
                self.log(LogLevel::Debug, "Director ring handshaked".into());
                self.set_synced();
            } else if !self.synced {
                let from = self.conn_name(_id);
                self.log(
                    LogLevel::Debug,
                    format!("Ring is synced ({from} sent seq={seq}, hosts_hash={hash})"),
                );
                self.sync_round_finished();
                self.set_synced();
            }
            return;
        }
        let Some(p) = self.peers.get_mut(o) else {
            self.maybe_resend_own_sync();
            return;
        };
        if seq < p.last_sync_seq && ts < p.last_sync_timestamp + STALE_SYNC_RESET_SECS {
            return;
        }
        if seq < p.last_sync_seq {
            p.last_sync_seq = seq;
            p.last_sync_timestamp = ts;
            p.sync_dup_count = 1;
            self.log(
                LogLevel::Warning,
                format!("Last SYNC seq for {o} appears to be stale, resetting"),
            );
        } else if seq > p.last_sync_seq || ts > p.last_sync_timestamp {
            p.last_sync_seq = seq;
            p.last_sync_timestamp = ts;
            p.sync_dup_count = 1;
        } else {
            p.sync_dup_count += 1;
            if p.sync_dup_count > 4 {
                return;
            }
        }
        let p = self.peers.get_mut(o).expect("found above");
        if hash != 0 && hash != my_hash {
            if p.desynced_hosts_hash != hash {
                p.desynced_hosts_hash = hash;
                return;
            }
            self.log_error(format!(
                "Director {o} SYNC request hosts don't match us - resending hosts \
                 (seq={seq}, remote hosts_hash={hash}, my hosts_hash={my_hash})"
            ));
            self.resend_hosts();
            return;
        }
        p.desynced_hosts_hash = 0;
        match self.right {
            Some(right) => self.send_sync_to(right, s),
            None => {
                self.log(
                    LogLevel::Debug,
                    "We have no right connection - delay replying to SYNC until finished".into(),
                );
                self.peers.get_mut(o).expect("found above").delayed_sync = Some(s);
            }
        }
        self.maybe_resend_own_sync();
    }

    /// 58b8a301b7: membership changed since our last SYNC: resend ours, once per second.
    fn maybe_resend_own_sync(&mut self) {
        let now = self.secs();
        if self.ring_change_counter != self.last_sync_sent_ring_change_counter
            && self.last_sync_resend_sec != now
            && !self.synced
            && self.left.is_some()
            && self.right.is_some()
        {
            self.last_sync_resend_sec = now;
            self.send_sync();
        }
    }

    /// §6.5, every 5 s while unsynced.
    pub(super) fn sync_timer(&mut self) {
        if self.synced {
            return;
        }
        self.sync_timer_at = Some(self.now_ms + SYNC_TIMER_MS);
        let has_out = self.conns.values().any(|c| !c.incoming);
        if self.right.is_none() && self.reconnect_at.is_none() && !has_out {
            self.log(
                LogLevel::Warning,
                "Right side connection is unexpectedly lost, reconnecting".into(),
            );
            self.connect_procedure("Right side connection lost");
        } else if self.left.is_some() && self.right.is_some() {
            self.log_error(format!(
                "Ring SYNC seq={} appears to have got lost, resending",
                self.sync_seq
            ));
            self.send_sync();
        }
    }
}
