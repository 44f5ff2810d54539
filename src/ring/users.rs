//! Users over the ring (§4.6, §8): the refresh/merge rules with timestamps, lower-IP-wins
//! conflicts, weak users, logins, kicks and the admin user commands (moves: `moves.rs`).

use super::facade::Ring;
use super::hosts::Seen;
use super::peer::DirAddr;
use super::{AdminCmd, AdminOutcome, ConnId, LogLevel, RingEffect, Routing, WaitReason};
use crate::state::{Tag, UserKey, UserMoveOutcome};
use director_parsers::ring::{Command, HandshakeUser, Origin};
use std::net::IpAddr;

/// What a merge did (§8.1).
#[derive(Clone, Copy, Debug, Default)]
struct Merge {
    changed: bool,
    /// Send the resulting USER back to the sender too (fb9dfa9ea1).
    forced: bool,
    key: Option<UserKey>,
}

impl Ring {
    /// §8.1. `t` is `None` for a `USER` from a peer with minor < 9.
    fn merge_user(&mut self, hash: u32, ip: IpAddr, t: Option<u64>, weak: bool) -> Merge {
        let now = self.secs();
        let expire = u64::from(self.dir.user_expire_secs());
        let Some(host) = self.dir.hosts().find(ip) else {
            return Merge::default();
        };
        let tag = self.dir.hosts().get(host).tag_id();
        let key = UserKey { tag, hash };
        let ts = t.unwrap_or(now);
        if ts + expire <= now {
            return Merge::default();
        }
        let Some(user) = self.dir.lookup(tag, hash, now) else {
            self.dir.add_user(tag, hash, host, ts, now);
            if weak {
                self.dir.set_user_weak(key, true);
            }
            return Merge {
                changed: true,
                forced: false,
                key: Some(key),
            };
        };
        let mut m = Merge {
            key: Some(key),
            ..Merge::default()
        };
        if user.weak {
            if user.host != host {
                self.dir.set_user_host(key, host);
                m.changed = true;
            }
            if !weak {
                self.dir.set_user_weak(key, false);
                self.state_changes += 1;
                m.changed = true;
            }
        } else if weak && !self.dir.is_recently_updated(&user, now) {
            self.dir.set_user_weak(key, true);
            self.dir.set_user_host(key, host);
            m.changed = true;
        } else if weak {
            m.changed = true;
        } else if user.host == host {
        } else if self.dir.is_near_expiring(&user, now) {
            self.dir.set_user_host(key, host);
            m.changed = true;
        } else if user.kill.is_some() {
        } else {
            let cur_ip = self.dir.hosts().get(user.host).ip;
            self.log_error(format!(
                "User hash {hash} is being redirected to two hosts: {} and {} (old_ts={})",
                director_parsers::ip::ip_to_string(&cur_ip),
                director_parsers::ip::ip_to_string(&ip),
                user.timestamp
            ));
            let chosen = cur_ip.min(ip);
            if chosen == ip {
                self.dir.set_user_host(key, host);
            }
            // Dovecot replies to the sender only when it switches; when it keeps its own
            // (lower) host the sender may never hear of it (both its neighbours keep theirs
            // and forward nothing), so its entry stays wrong (found by tests/ring_sim.rs).
            // Replying in both cases is harmless to real directors: they switch to the
            // lower host and the next echo changes nothing.
            m.forced = true;
            let origin = self.next_origin();
            let kick = Command::UserKickHash {
                origin,
                hash,
                except_ip: chosen,
            };
            self.broadcast(&kick, None);
            self.out.push(RingEffect::KickHash {
                hash,
                except: chosen,
            });
            m.changed = true;
        }
        let stored = self.dir.user(key).map_or(0, |u| u.timestamp);
        let newer = match t {
            Some(t) => t > stored,
            None => stored + (expire / 4).min(15) < ts,
        };
        if newer {
            // The received time, not now (§8.1 step 5), so every director stores the same
            // timestamp. The entry goes to the young end, out of order if it is older than
            // the tail (as in Dovecot); expiry copes with that.
            self.dir.refresh_user(key, ts, now);
            m.changed = true;
        }
        m
    }

    /// Broadcast `USER` with the stored host and timestamp (timestamp only to minor ≥ 9).
    pub(super) fn broadcast_user(&mut self, key: UserKey, except: Option<DirAddr>) {
        let Some(u) = self.dir.user(key) else { return };
        if u.weak {
            return;
        }
        let ip = self.dir.hosts().get(u.host).ip;
        let new = Command::User {
            hash: key.hash,
            ip,
            timestamp: Some(u.timestamp),
            extra: Vec::new(),
        }
        .to_line();
        let old = Command::User {
            hash: key.hash,
            ip,
            timestamp: None,
            extra: Vec::new(),
        }
        .to_line();
        let ids: Vec<(ConnId, bool)> = self
            .conns
            .values()
            .filter(|c| c.connected && c.close_at.is_none())
            .filter(|c| except.is_none() || c.peer != except)
            .map(|c| (c.id, c.minor0() >= 9))
            .collect();
        for (conn, ts) in ids {
            let line = if ts { new.clone() } else { old.clone() };
            self.out.push(RingEffect::Send { conn, line });
        }
    }

    pub(super) fn on_handshake_user(&mut self, id: ConnId, u: HandshakeUser) {
        if self.dir.host(u.ip).is_none() {
            let n = self.conn_name(id);
            self.log_error(format!(
                "director({n}): USER used unknown host {} in handshake",
                director_parsers::ip::ip_to_string(&u.ip)
            ));
            self.close_conn(
                id,
                "Invalid input: USER",
                super::facade::CloseKind::Deliberate,
            );
            return;
        }
        if let Some(c) = self.conns.get_mut(&id) {
            c.stats.users_received += 1;
        }
        let t = u.timestamp.min(self.secs());
        let m = self.merge_user(u.hash, u.ip, Some(t), u.weak);
        // Deviation: handshake users are never forwarded, so when one conflicts with ours
        // Dovecot settles it here only and the rest of the ring keeps the other host (found
        // by tests/ring_sim.rs). Announcing the outcome makes everyone converge on it.
        if let (true, Some(key)) = (m.forced, m.key) {
            self.broadcast_user(key, None);
        }
    }

    pub(super) fn on_user(&mut self, id: ConnId, hash: u32, ip: IpAddr, t: Option<u64>) {
        let t = t.map(|t| t.min(self.secs()));
        let m = self.merge_user(hash, ip, t, false);
        if let (true, Some(key)) = (m.changed, m.key) {
            let except = if m.forced { None } else { self.peer_of(id) };
            self.broadcast_user(key, except);
        }
    }

    pub(super) fn on_user_weak(&mut self, id: ConnId, origin: Origin, hash: u32, ip: IpAddr) {
        let o = DirAddr::new(origin.ip, origin.port);
        let (seen, fwd_origin) = if o == self.peers.me {
            (origin.seq <= self.self_last_seq, origin)
        } else {
            match self.seen_check(origin) {
                Seen::Dup => (true, origin),
                Seen::New(f) => (false, f),
            }
        };
        if self.dir.host(ip).is_none() {
            return;
        }
        let own_returned = seen && o == self.peers.me;
        let m = self.merge_user(hash, ip, Some(self.secs()), !own_returned);
        let Some(key) = m.key else { return };
        let from = self.peer_of(id);
        if own_returned {
            if m.changed {
                self.broadcast_user(key, None);
            }
            return;
        }
        if self.dir.user(key).is_some_and(|u| u.weak) {
            let cmd = Command::UserWeak {
                origin: fwd_origin,
                hash,
                ip,
            };
            let two_ring = self.left.is_some()
                && self.right.is_some()
                && self.left_peer() == self.right_peer();
            if two_ring && from == self.left_peer() {
                let other = if Some(id) == self.left {
                    self.right
                } else {
                    self.left
                };
                if let Some(other) = other {
                    self.send(other, &cmd);
                }
            } else {
                self.broadcast(&cmd, from);
            }
        } else if m.changed {
            let except = if m.forced { None } else { from };
            self.broadcast_user(key, except);
        }
    }

    /// A login needs a backend (§8.1 sending side, §8.2 trigger, §6.6).
    pub(super) fn login(&mut self, tag: &Tag, hash: u32) -> Routing {
        if !self.handshaked {
            return Routing::Wait(WaitReason::RingNotHandshaked);
        }
        let now = self.secs();
        let Some(tag_id) = self.dir.tag_id(tag) else {
            return Routing::Wait(WaitReason::NoHosts);
        };
        let key = UserKey { tag: tag_id, hash };
        let alone = self.left.is_none() && self.right.is_none();
        if let Some(user) = self.dir.lookup(tag_id, hash, now) {
            if user.kill.is_some() {
                return Routing::Wait(WaitReason::KillWaiting);
            }
            let cur = self.dir.hosts().get(user.host).ip;
            if alone && self.synced {
                self.dir.set_user_weak(key, false);
            } else if user.weak {
                return Routing::Wait(WaitReason::WeakUser);
            } else if self.dir.is_near_expiring(&user, now)
                && self.dir.choose(tag, hash) != Some(cur)
            {
                if !self.synced {
                    return Routing::Wait(WaitReason::RingNotSynced);
                }
                if self.ring_min_version >= 1 {
                    self.dir.set_user_weak(key, true);
                    let origin = self.next_origin();
                    let cmd = Command::UserWeak {
                        origin,
                        hash,
                        ip: cur,
                    };
                    self.broadcast(&cmd, None);
                    return Routing::Wait(WaitReason::WeakUser);
                }
            }
            self.dir.refresh_user(key, now, now);
            self.broadcast_user(key, None);
            return Routing::Host(cur);
        }
        if !self.synced {
            return Routing::Wait(WaitReason::RingNotSynced);
        }
        let Some(ip) = self.dir.choose(tag, hash) else {
            return Routing::Wait(WaitReason::NoHosts);
        };
        let host = self
            .dir
            .hosts()
            .find(ip)
            .expect("ring points at known hosts");
        self.dir.add_user(tag_id, hash, host, now, now);
        self.broadcast_user(key, None);
        Routing::Host(ip)
    }

    /// A proxy-notify refresh: like a login of an existing entry, in every tag, but never
    /// creating one and without the weak/near-expiry checks (Dovecot's notify path has none).
    pub(super) fn notify_refresh(&mut self, hash: u32) {
        let now = self.secs();
        for tag in 0..self.dir.tags().len() as u32 {
            if self.dir.lookup(tag, hash, now).is_none() {
                continue;
            }
            let key = UserKey { tag, hash };
            self.dir.refresh_user(key, now, now);
            self.broadcast_user(key, None);
        }
    }

    pub(super) fn on_user_kick(&mut self, id: ConnId, origin: Origin, username: Vec<u8>) {
        let Seen::New(fwd) = self.seen_check(origin) else {
            return;
        };
        self.out.push(RingEffect::KickUser(username.clone()));
        let from = self.peer_of(id);
        self.broadcast(
            &Command::UserKick {
                origin: fwd,
                username,
            },
            from,
        );
    }

    pub(super) fn on_user_kick_alt(
        &mut self,
        id: ConnId,
        origin: Origin,
        field: Vec<u8>,
        value: Vec<u8>,
    ) {
        let Seen::New(fwd) = self.seen_check(origin) else {
            return;
        };
        self.out.push(RingEffect::KickAlt {
            field: field.clone(),
            value: value.clone(),
        });
        let from = self.peer_of(id);
        self.broadcast(
            &Command::UserKickAlt {
                origin: fwd,
                field,
                value,
            },
            from,
        );
    }

    pub(super) fn on_user_kick_hash(
        &mut self,
        id: ConnId,
        origin: Origin,
        hash: u32,
        except_ip: IpAddr,
    ) {
        let Seen::New(fwd) = self.seen_check(origin) else {
            return;
        };
        self.out.push(RingEffect::KickHash {
            hash,
            except: except_ip,
        });
        let from = self.peer_of(id);
        self.broadcast(
            &Command::UserKickHash {
                origin: fwd,
                hash,
                except_ip,
            },
            from,
        );
    }

    /// Admin commands: hosts go to `hosts.rs`, the rest is here.
    pub(super) fn admin(&mut self, cmd: AdminCmd) -> AdminOutcome {
        let now = self.secs();
        match cmd {
            AdminCmd::UserMove { hash, ip } => match self.dir.user_move(hash, ip, now) {
                UserMoveOutcome::NotFound => AdminOutcome::NotFound,
                UserMoveOutcome::TryAgain => AdminOutcome::TryAgain,
                UserMoveOutcome::Refreshed => {
                    let tag = self.dir.host(ip).map(|h| h.tag_id()).unwrap_or(0);
                    self.broadcast_user(UserKey { tag, hash }, None);
                    AdminOutcome::Ok
                }
                UserMoveOutcome::Moved(started) => {
                    let origin = self.next_origin();
                    self.move_started(started, origin, ip, None);
                    AdminOutcome::Ok
                }
            },
            AdminCmd::ResetMove { hash, ip } => {
                if self.dir.host(ip).is_none() {
                    return AdminOutcome::NotFound;
                }
                let origin = self.next_origin();
                self.move_user(hash, ip, origin, None, true);
                AdminOutcome::Ok
            }
            AdminCmd::UserKick(username) => {
                self.out.push(RingEffect::KickUser(username.clone()));
                let origin = self.next_origin();
                self.broadcast(&Command::UserKick { origin, username }, None);
                AdminOutcome::Ok
            }
            AdminCmd::UserKickAlt { field, value } => {
                self.out.push(RingEffect::KickAlt {
                    field: field.clone(),
                    value: value.clone(),
                });
                let origin = self.next_origin();
                let cmd = Command::UserKickAlt {
                    origin,
                    field,
                    value,
                };
                self.broadcast(&cmd, None);
                AdminOutcome::Ok
            }
            AdminCmd::DirectorAdd(who) => {
                let (p, added) = self.peers.get_or_add(who);
                p.removed = false;
                if added {
                    let me = self.peers.me;
                    self.log(
                        LogLevel::Info,
                        format!("Adding director {who} to ring (requested by {me})"),
                    );
                }
                self.ring_change_counter += 1;
                let cmd = Command::Director {
                    ip: who.ip,
                    port: who.port,
                    extra: Vec::new(),
                };
                self.broadcast(&cmd, None);
                AdminOutcome::Ok
            }
            AdminCmd::DirectorRemove(who) => {
                if self.on_director_remove(None, who) {
                    AdminOutcome::Ok
                } else {
                    AdminOutcome::NotFound
                }
            }
            other => self.admin_host(other),
        }
    }
}
