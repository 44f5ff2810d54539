//! Timer dispatch and re-arming, and the ring layer's invariants.

use super::conn::ConnRole;
use super::facade::{CloseKind, Ring};
use super::{ConnId, RingEffect};

impl Ring {
    pub(super) fn on_timer(&mut self) {
        self.conn_timers_due();
        let now = self.now_ms;
        let due: Vec<ConnId> = self
            .conns
            .values()
            .filter(|c| c.close_at.is_some_and(|t| t <= now))
            .map(|c| c.id)
            .collect();
        for id in due {
            let reason = self.conns[&id].close_reason;
            self.close_conn(id, reason, CloseKind::Deliberate);
        }
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            self.reconnect_timer();
        }
        if self.sync_timer_at.is_some_and(|t| t <= now) {
            self.sync_timer_at = None;
            self.sync_timer();
        }
        self.purge_removed_due();
        self.move_timers();
    }

    pub(super) fn rearm(&mut self) {
        let conn_min = self.next_conn_deadline();
        let purge = self
            .peers
            .list
            .iter()
            .filter(|p| p.removed)
            .map(|p| p.removed_at * 1000)
            .min();
        let at = [
            self.sync_timer_at,
            self.reconnect_at,
            conn_min,
            purge,
            self.move_deadlines.values().copied().min(),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = at {
            if self.armed != Some(at) {
                self.armed = Some(at);
                self.out.push(RingEffect::ArmTimer { at_ms: at });
            }
        } else {
            self.armed = None;
        }
    }

    /// Structural invariants of the ring layer plus the directory's; tests call this after
    /// every step.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.dir.check_invariants()?;
        self.check_ring_invariants()
    }

    /// The ring layer's own invariants only (cheap: the directory check walks every vhost).
    pub fn check_ring_invariants(&self) -> Result<(), String> {
        for (name, slot, role) in [
            ("left", self.left, ConnRole::Left),
            ("right", self.right, ConnRole::Right),
        ] {
            if let Some(id) = slot {
                let c = self
                    .conns
                    .get(&id)
                    .ok_or(format!("{name} not a connection"))?;
                if c.role != role || !c.done {
                    return Err(format!("{name} {id:?} has role {:?}", c.role));
                }
                if c.incoming != (role == ConnRole::Left) {
                    return Err(format!("{name} has the wrong direction"));
                }
            }
        }
        for c in self.conns.values() {
            let slot = match c.role {
                ConnRole::Left => self.left,
                ConnRole::Right => self.right,
                ConnRole::Pending => continue,
            };
            if slot != Some(c.id) {
                return Err(format!("{:?} claims {:?} but is not it", c.id, c.role));
            }
        }
        if !self.handshaked && self.synced {
            return Err("synced before handshaked".into());
        }
        if self.synced && self.sync_timer_at.is_some() {
            return Err("sync timer running while synced".into());
        }
        Ok(())
    }
}
