//! User updates that arrive from other directors (ring `USER`, `USER-WEAK`, handshake users).
//!
//! Mirrors `director_user_refresh()`, `user_need_refresh()` and the timestamp handling of
//! `director_handshake_cmd_user()` in Dovecot's `src/director/director-connection.c`
//! (`ring-protocol.md` §8.1). Only the state change is here; forwarding, the conflict's
//! error log and the `USER-KICK-HASH` it triggers are the ring code's job, driven by the
//! returned [`RemoteRefresh`].

use super::directory::{Directory, UserKey};
use super::users::KillState;
use std::net::IpAddr;

/// Dovecot's `DIRECTOR_SKIP_RECENT_REFRESH_MAX_SECS`: a USER without timestamp refreshes a
/// user only if its stored timestamp is older than `min(expire/4, this)`.
pub const DIRECTOR_SKIP_RECENT_REFRESH_MAX_SECS: u64 = 15;

/// Two directors disagree about a user's host (should not happen; Dovecot logs
/// `User hash <h> is being redirected to two hosts: <old> and <new> (old_ts=<ts>...)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The host we had.
    pub old_host: IpAddr,
    /// The host the update named.
    pub new_host: IpAddr,
    /// Our timestamp before the update.
    pub old_timestamp: u64,
    /// Our move state, if the user was being moved.
    pub kill: Option<KillState>,
    /// The host kept (the lower IP): kick the user's sessions everywhere except there
    /// (`USER-KICK-HASH`, our origin, and locally).
    pub kept: IpAddr,
}

/// What a remote user update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteRefresh {
    /// The update names a host we do not have: ignore it.
    UnknownHost,
    /// `timestamp + director_user_expire <= now`: ignored entirely.
    Expired,
    /// Applied to the entry `key`.
    Applied {
        /// The entry (in the host's tag).
        key: UserKey,
        /// Something changed: forward the update (a non-weak user as `USER`).
        changed: bool,
        /// We overrode the sender's host: send our `USER` to everyone, the sender included.
        forced: bool,
        /// The update cleared the user's weakness: retry requests waiting for it.
        weakness_cleared: bool,
        /// Host conflict resolved by the lower IP.
        conflict: Option<Conflict>,
    },
}

impl Directory {
    /// Apply a ring `USER` (`timestamp` `None` when an old peer sent none) or the `w`-flagged
    /// update of a `USER-WEAK` (`weak`), per `ring-protocol.md` §8.1.
    pub fn user_refresh_remote(
        &mut self,
        hash: u32,
        host_ip: IpAddr,
        timestamp: Option<u64>,
        weak: bool,
        now: u64,
    ) -> RemoteRefresh {
        let Some(host) = self.hosts.find(host_ip) else {
            return RemoteRefresh::UnknownHost;
        };
        let unknown_timestamp = timestamp.is_none();
        let t = timestamp.unwrap_or(now);
        let expire = u64::from(self.user_expire);
        if t + expire <= now {
            return RemoteRefresh::Expired;
        }
        let tag = self.hosts.get(host).tag_id;
        let key = UserKey { tag, hash };
        let Some(user) = self.lookup(tag, hash, now) else {
            self.add_user(tag, hash, host, t, now);
            self.set_user_weak(key, weak);
            return RemoteRefresh::Applied {
                key,
                changed: true,
                forced: false,
                weakness_cleared: false,
                conflict: None,
            };
        };
        let mut changed = false;
        let mut forced = false;
        let mut weakness_cleared = false;
        let mut conflict = None;
        let mut target = host;
        if user.weak {
            if !weak {
                self.set_user_weak(key, false);
                weakness_cleared = true;
                changed = true;
            }
        } else if weak && !self.is_recently_updated(&user, now) {
            self.set_user_weak(key, true);
            changed = true;
        } else if weak {
            // We changed it recently; our non-weak USER going out overrides the weakness.
            target = user.host;
            changed = true;
        } else if user.host == host {
        } else if self.is_near_expiring(&user, now) {
            // The other director probably expired it already; take its host.
            changed = true;
        } else if user.kill.is_some() {
            // Moving: ignore peers that do not know about the move yet.
            target = user.host;
        } else {
            let old_ip = self.hosts.get(user.host).ip;
            if old_ip > host_ip {
                forced = true;
            } else {
                target = user.host;
            }
            conflict = Some(Conflict {
                old_host: old_ip,
                new_host: host_ip,
                old_timestamp: user.timestamp,
                kill: user.kill,
                kept: self.hosts.get(target).ip,
            });
            changed = true;
        }
        if user.host != target {
            self.set_user_host(key, target);
            changed = true;
        }
        if self.need_refresh(user.timestamp, t, unknown_timestamp) {
            // Young end, but with the sender's (possibly older) timestamp, as Dovecot does.
            self.tags[tag as usize].users.refresh(hash, t.min(now));
            changed = true;
        }
        RemoteRefresh::Applied {
            key,
            changed,
            forced,
            weakness_cleared,
            conflict,
        }
    }

    /// Apply a `USER` line received during a ring handshake (`w` = `weak`): timestamps from
    /// the future are cut to `now`, and the stored timestamp only ever grows. Call
    /// [`Directory::sort_users`] when the handshake is complete.
    pub fn user_refresh_handshake(
        &mut self,
        hash: u32,
        host_ip: IpAddr,
        timestamp: u64,
        weak: bool,
        now: u64,
    ) -> RemoteRefresh {
        let t = timestamp.min(now);
        let result = self.user_refresh_remote(hash, host_ip, Some(t), weak, now);
        if let RemoteRefresh::Applied { key, .. } = result {
            if self.user(key).is_some_and(|u| u.timestamp < t) {
                self.tags[key.tag as usize].users.bump_in_place(hash, t);
            }
        }
        result
    }

    /// Re-sort every tag's users by timestamp (after a ring handshake).
    pub fn sort_users(&mut self) {
        for tag in &mut self.tags {
            tag.users.sort();
        }
    }

    /// Dovecot's `user_need_refresh()`: timestamps only grow, and a timestamp-less update
    /// must be clearly newer to count.
    fn need_refresh(&self, stored: u64, t: u64, unknown_timestamp: bool) -> bool {
        if t <= stored {
            return false;
        }
        if unknown_timestamp {
            let skip = (u64::from(self.user_expire) / 4).min(DIRECTOR_SKIP_RECENT_REFRESH_MAX_SECS);
            if stored + skip >= t {
                return false;
            }
        }
        true
    }
}
