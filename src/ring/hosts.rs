//! Mail host changes over the ring (§4.5, §5.5, §7.2): HOST in both forms, HOST-REMOVE,
//! HOST-FLUSH, the concurrent-update rules and the admin host commands that originate them.

use super::conn::host_info;
use super::facade::Ring;
use super::peer::DirAddr;
use super::{AdminOutcome, ConnId, LogLevel};
use crate::state::{HostSetOutcome, Tag, UpDownOutcome, MAX_VHOST_COUNT};
use director_parsers::ring::{Command, HostInfo, Origin};
use std::net::IpAddr;

/// Result of the seen check of an origin-tagged command (§5.2).
pub(super) enum Seen {
    /// New: process it; forward with this origin (ours when the origin is untracked).
    New(Origin),
    /// Already seen.
    Dup,
}

impl Ring {
    /// §5.2 seen check; updates the origin's `last_seq` for a new command.
    pub(super) fn seen_check(&mut self, origin: Origin) -> Seen {
        let o = DirAddr::new(origin.ip, origin.port);
        if o == self.peers.me {
            return if origin.seq <= self.self_last_seq {
                Seen::Dup
            } else {
                Seen::New(self.next_origin())
            };
        }
        match self.peers.get_mut(o) {
            Some(p) if !p.removed => {
                if origin.seq <= p.last_seq {
                    Seen::Dup
                } else {
                    p.last_seq = origin.seq;
                    Seen::New(origin)
                }
            }
            _ => Seen::New(self.next_origin()),
        }
    }

    pub(super) fn peer_of(&self, id: ConnId) -> Option<DirAddr> {
        self.conns.get(&id).and_then(|c| c.peer)
    }

    pub(super) fn on_host_hand_start(&mut self, id: ConnId, remote_handshaked: bool) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.in_host_list = true;
        c.ignore_hosts = !remote_handshaked && self.handshaked;
        // Deviation: Dovecot replaces again on every such handshake until the ring syncs.
        // A second replacement wipes the users the first handshake brought, and if that
        // connection is then dropped (e.g. after CONNECT) they are lost here while the
        // rest of the ring still routes them (found by tests/ring_sim.rs). After one
        // replacement our hosts are the ring's, so later host lists are merged.
        if remote_handshaked && !self.handshaked && !self.hosts_replaced {
            self.hosts_replaced = true;
            self.log(
                LogLevel::Debug,
                "We're joining a ring - replace all hosts".into(),
            );
            let ips: Vec<IpAddr> = self.dir.host_list().map(|h| h.ip).collect();
            for ip in ips {
                let _ = self.dir.host_remove(ip);
                self.resync();
            }
        } else if !remote_handshaked && self.handshaked {
            self.log(
                LogLevel::Debug,
                "Remote is joining our ring - ignore all remote HOSTs".into(),
            );
        } else {
            self.log(LogLevel::Debug, "Merge rings' hosts".into());
        }
    }

    pub(super) fn on_handshake_host(&mut self, id: ConnId, h: HostInfo) {
        if self.conns.get(&id).is_some_and(|c| c.ignore_hosts) {
            return;
        }
        let from = self.peer_of(id);
        self.apply_host(id, from, None, h);
    }

    pub(super) fn on_ring_host(&mut self, id: ConnId, origin: Origin, h: HostInfo) {
        let Seen::New(fwd) = self.seen_check(origin) else {
            return;
        };
        let untracked = fwd != origin;
        let from = self.peer_of(id);
        self.apply_host(id, from, (!untracked).then_some(fwd), h);
    }

    /// §7.2. `origin` is `None` for handshake hosts and untracked origins (we re-originate).
    fn apply_host(
        &mut self,
        id: ConnId,
        from: Option<DirAddr>,
        origin: Option<Origin>,
        h: HostInfo,
    ) {
        let now = self.secs();
        let peer_minor = self.conns.get(&id).map_or(0, |c| c.minor0());
        if !h.tag_or_empty().is_empty()
            && peer_minor < director_parsers::ring::DIRECTOR_VERSION_TAGS_V2
        {
            self.protocol_error(
                id,
                "HOST",
                "Host tags not supported by this version",
                b"HOST",
            );
            return;
        }
        if h.vhost_count > MAX_VHOST_COUNT {
            self.log_error(format!(
                "HOST: vhost count {} too large, ignored",
                h.vhost_count
            ));
            return;
        }
        let tag = Tag::from(h.tag_or_empty());
        let (mut down, ts) = h.updown.map_or((false, 0), |u| (u.down, u.changed));
        let mut vhosts = h.vhost_count;
        let ip = h.ip;
        let mut conflict = false;
        match self.dir.host(ip).cloned() {
            None => {
                let r = self.dir.host_set(ip, Some(&tag), Some(vhosts), now);
                debug_assert_eq!(r, HostSetOutcome::Ok);
                // Only a new host takes the sender's hostname, as in Dovecot.
                if let Some(name) = &h.hostname {
                    let _ = self.dir.set_host_hostname(ip, name);
                }
                if down {
                    self.dir.host_set_down(ip, true, ts);
                }
            }
            Some(cur) => {
                let changed = cur.vhost_count != vhosts || cur.down != down || cur.tag != tag;
                if !changed {
                    return;
                }
                if cur.desynced {
                    conflict = true;
                    // Same-second changes would make both sides adopt the other's state
                    // and re-originate it forever (found by tests/ring_sim.rs): on a tie
                    // "down" wins everywhere.
                    let ours_wins =
                        cur.last_updown_change > ts || (cur.last_updown_change == ts && cur.down);
                    if down != cur.down && ours_wins {
                        down = cur.down;
                    }
                    vhosts = vhosts.min(cur.vhost_count);
                    let st = |d: bool| if d { "down" } else { "up" };
                    self.log(
                        LogLevel::Warning,
                        format!(
                            "Host {} is being updated before previous update had finished \
                             ({} -> {}, vhosts {} -> {}) - setting to state={} vhosts={}",
                            director_parsers::ip::ip_to_string(&ip),
                            st(cur.down),
                            st(h.is_down()),
                            cur.vhost_count,
                            h.vhost_count,
                            st(down),
                            vhosts
                        ),
                    );
                }
                let new_ts = ts.max(cur.last_updown_change);
                if cur.tag != tag {
                    self.log_error(format!(
                        "Host {} changed tag from '{}' to '{}'",
                        director_parsers::ip::ip_to_string(&ip),
                        cur.tag,
                        tag
                    ));
                    let _ = self.dir.set_host_tag(ip, &tag);
                }
                let _ = self.dir.set_desynced(ip, false);
                if down != cur.down {
                    self.dir.host_set_down(ip, down, new_ts);
                    self.log(
                        LogLevel::Info,
                        format!(
                            "Host {} changed {} (vhost_count={} last_updown_change={})",
                            director_parsers::ip::ip_to_string(&ip),
                            if down { "down" } else { "up" },
                            vhosts,
                            cur.last_updown_change
                        ),
                    );
                }
                if vhosts != cur.vhost_count {
                    self.dir.host_set(ip, None, Some(vhosts), now);
                }
            }
        }
        let (fwd, except) = match origin {
            _ if conflict => (self.next_origin(), None),
            Some(o) => (o, from),
            None => (self.next_origin(), from),
        };
        self.broadcast_host(ip, fwd, except);
        if self.left.is_some() || self.right.is_some() {
            let _ = self.dir.set_desynced(ip, true);
        }
        self.resync();
    }

    /// Broadcast a ring HOST line for our current copy of `ip`.
    fn broadcast_host(&mut self, ip: IpAddr, origin: Origin, except: Option<DirAddr>) {
        let Some(h) = self.dir.host(ip) else { return };
        let host = host_info(h, self.ring_min_version, false);
        self.broadcast(&Command::Host { origin, host }, except);
    }

    /// §6.3 step 5: the same hosts mismatch twice: announce all our hosts.
    pub(super) fn resend_hosts(&mut self) {
        let ips: Vec<IpAddr> = self.dir.host_list().map(|h| h.ip).collect();
        for ip in ips {
            let o = self.next_origin();
            self.broadcast_host(ip, o, None);
        }
    }

    pub(super) fn on_host_remove(&mut self, id: ConnId, origin: Origin, ip: IpAddr) {
        let Seen::New(fwd) = self.seen_check(origin) else {
            return;
        };
        if self.dir.host(ip).is_none() {
            return;
        }
        let from = self.peer_of(id);
        self.broadcast(&Command::HostRemove { origin: fwd, ip }, from);
        let _ = self.dir.host_remove(ip);
        self.resync();
    }

    pub(super) fn on_host_flush(&mut self, id: ConnId, origin: Origin, ip: IpAddr) {
        let Seen::New(fwd) = self.seen_check(origin) else {
            return;
        };
        if self.dir.host(ip).is_none() {
            return;
        }
        let from = self.peer_of(id);
        self.broadcast(&Command::HostFlush { origin: fwd, ip }, from);
        let _ = self.dir.host_flush(Some(ip));
        self.resync();
    }

    /// Admin host commands (§5.6): apply locally, originate the ring command.
    pub(super) fn admin_host(&mut self, cmd: super::AdminCmd) -> AdminOutcome {
        use super::AdminCmd as A;
        let now = self.secs();
        let ip = match cmd {
            A::HostSet { ip, tag, vhosts } => {
                match self.dir.host_set(ip, Some(&tag), vhosts, now) {
                    HostSetOutcome::Ok => {}
                    HostSetOutcome::NotFound => return AdminOutcome::NotFound,
                    HostSetOutcome::BeingUpdated => return AdminOutcome::BeingUpdated,
                    _ => return AdminOutcome::Invalid,
                }
                ip
            }
            A::HostUpDown { ip, down } => {
                match self.dir.host_set_down(ip, down, now) {
                    UpDownOutcome::Ok => {}
                    UpDownOutcome::Unchanged => return AdminOutcome::Ok,
                    UpDownOutcome::NotFound => return AdminOutcome::NotFound,
                    UpDownOutcome::BeingUpdated => return AdminOutcome::BeingUpdated,
                }
                ip
            }
            A::HostRemove(ip) => {
                if self.dir.host_remove(ip).is_err() {
                    return AdminOutcome::NotFound;
                }
                let origin = self.next_origin();
                self.broadcast(&Command::HostRemove { origin, ip }, None);
                self.resync();
                return AdminOutcome::Ok;
            }
            A::HostFlush(ip) => {
                if self.dir.host_flush(Some(ip)).is_err() {
                    return AdminOutcome::NotFound;
                }
                let origin = self.next_origin();
                self.broadcast(&Command::HostFlush { origin, ip }, None);
                self.resync();
                return AdminOutcome::Ok;
            }
            _ => return AdminOutcome::Invalid,
        };
        let origin = self.next_origin();
        self.broadcast_host(ip, origin, None);
        if self.left.is_some() || self.right.is_some() {
            let _ = self.dir.set_desynced(ip, true);
        }
        self.resync();
        AdminOutcome::Ok
    }
}
