//! Login/LMTP host lookups on a director that is part of a ring.
//!
//! Mirrors `director_request_continue_real()` and `director_request_existing()` in Dovecot's
//! `src/director/director-request.c` (`auth-proxy.md` §5, `ring-protocol.md` §8.2). The
//! stand-alone case is [`Directory::request_host`]; this adds the waits a ring needs.

use super::directory::{Directory, UserKey};
use super::Tag;
use std::net::IpAddr;

/// The ring state a lookup depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingView {
    /// The first ring sync ever completed (or we decided we are alone).
    pub handshaked: bool,
    /// The ring is synced now.
    pub synced: bool,
    /// We have a right neighbour.
    pub have_right: bool,
    /// Every director in the ring understands USER-WEAK (`ring_min_version` ≥ the weak-users
    /// minor).
    pub weak_users: bool,
}

/// Why a lookup has to wait (Dovecot's `REQUEST_DELAY_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelayReason {
    /// The ring has not handshaked yet.
    RingNotHandshaked,
    /// The ring is not synced (new users are not added meanwhile).
    RingNotSynced,
    /// No usable host in the tag.
    NoHosts,
    /// The user's weakness must clear first.
    Weak,
    /// The user is being moved/kicked.
    Kill,
}

/// Result of a lookup in a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingRequestOutcome {
    /// Proxy to this host; broadcast `USER\t<hash>\t<ip>\t<timestamp>` (entry refreshed or
    /// created at `now`).
    Host(IpAddr),
    /// Wait and retry when the state changes.
    Delay(DelayReason),
    /// The entry was near expiry and the ring would now pick another host: it is weak now.
    /// Broadcast `USER-WEAK` (our origin) with its current host and wait for the weakness
    /// to clear ([`DelayReason::Weak`]).
    MadeWeak {
        /// The weak entry.
        key: UserKey,
        /// Its current host (the one named in `USER-WEAK`).
        host: IpAddr,
    },
}

impl Directory {
    /// A login/LMTP lookup for `hash` in `tag` on a ring director.
    pub fn request_host_ring(
        &mut self,
        tag: &Tag,
        hash: u32,
        now: u64,
        ring: RingView,
    ) -> RingRequestOutcome {
        use RingRequestOutcome::{Delay, Host};
        if !ring.handshaked {
            return Delay(DelayReason::RingNotHandshaked);
        }
        let tag_id = self.tag_id(tag);
        let user = tag_id.and_then(|t| self.lookup(t, hash, now));
        let (Some(tag_id), Some(user)) = (tag_id, user) else {
            if !ring.synced {
                return Delay(DelayReason::RingNotSynced);
            }
            let Some(ip) = self.choose(tag, hash) else {
                return Delay(DelayReason::NoHosts);
            };
            let host = self
                .hosts
                .find(ip)
                .expect("ring points only at hosts in the table");
            let tag_id = self.hosts.get(host).tag_id;
            self.add_user(tag_id, hash, host, now, now);
            return Host(ip);
        };
        let key = UserKey { tag: tag_id, hash };
        let current = self.hosts.get(user.host).ip;
        if user.kill.is_some() {
            return Delay(DelayReason::Kill);
        }
        if !ring.have_right && ring.synced {
            // Everybody else is gone: nothing to agree with.
            self.set_user_weak(key, false);
        } else if user.weak {
            return Delay(DelayReason::Weak);
        } else if self.is_near_expiring(&user, now) {
            // Another director may have expired it already and would hash it elsewhere.
            if !ring.synced {
                return Delay(DelayReason::RingNotSynced);
            }
            if ring.weak_users && self.choose(tag, hash) != Some(current) {
                self.set_user_weak(key, true);
                return RingRequestOutcome::MadeWeak { key, host: current };
            }
        }
        self.tags[tag_id as usize].users.refresh(hash, now);
        Host(current)
    }
}
