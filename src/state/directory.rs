//! The director's state: hosts, tags with their vhost rings and user directories.
//!
//! Replaces the state-keeping parts of Dovecot's `src/director/director.c`,
//! `mail-host.c`, `user-directory.c` and the state changes made by `doveadm-connection.c`,
//! `director-request.c` and `notify-connection.c` (`user-directory.md` §§1-8,
//! `admin-protocol.md` §6). No I/O, no clock: every time-dependent call takes `now` (Unix
//! seconds), which must not go backwards. Methods return typed outcomes; the daemon turns
//! them into replies, ring messages, kicks and timers.

use super::host_cmds::HostNotFound;
use super::hosts::{HostId, HostTable, MailHost, TagId};
use super::users::{KillState, User, UserDirectory};
use super::vhost::VhostRing;
use super::Tag;
use crate::mail_hosts::MailHostSpec;
use std::collections::HashMap;
use std::net::IpAddr;

/// Dovecot's `USER_NEAR_EXPIRING_MAX`: also the grace period of a weak user after expiry.
pub const USER_NEAR_EXPIRING_MAX: u64 = 30;
/// Dovecot's `USER_NEAR_EXPIRING_MIN`.
pub const USER_NEAR_EXPIRING_MIN: u64 = 3;
/// Dovecot's `USER_BEING_KILLED_EXPIRE_RETRY_SECS`: an expired user being moved is
/// re-checked this much later.
pub const USER_BEING_KILLED_EXPIRE_RETRY_SECS: u64 = 60;

/// One tag: its name, ring and users.
#[derive(Clone, Debug)]
pub struct TagState {
    /// The tag's name.
    pub name: Tag,
    /// Ring built from the tag's up hosts.
    pub ring: VhostRing,
    /// The tag's user entries.
    pub users: UserDirectory,
}

/// Identifies one user entry: its tag and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserKey {
    /// The tag the entry lives in.
    pub tag: TagId,
    /// The user hash.
    pub hash: u32,
}

/// The host a moved user came from, as the flush program is told about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OldHost {
    /// Its address.
    pub ip: IpAddr,
    /// Whether it was down when the move started.
    pub down: bool,
    /// Its vhost count when the move started.
    pub vhost_count: u32,
}

/// Per-move data beyond the state byte kept in the user entry (moves are rare, so this lives
/// in a side table instead of growing every entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoveInfo {
    /// The previous host, if the user existed.
    pub old_host: Option<OldHost>,
    /// This director started the move (only the initiator runs the flush program).
    pub self_initiated: bool,
}

/// Result of a login/LMTP host lookup on a stand-alone director (`auth-proxy.md` §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Proxy to this host (entry created or refreshed).
    Host(IpAddr),
    /// No usable host in the tag (or unknown tag): the request waits.
    NoHost,
    /// The user is being moved/kicked: the request waits ("kill waiting").
    Busy,
}

/// `USER-LIST`'s rows at 12 bytes a user (the encoded reply is about 32), so listing
/// millions of users costs little memory; the admin connection encodes and writes them a
/// chunk at a time as its socket drains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserListing {
    /// The hosts the rows name, by the index each row carries.
    pub hosts: Vec<IpAddr>,
    /// `(hash, expire, index into hosts)` in USER-LIST order.
    pub rows: Vec<(u32, u32, u32)>,
}

/// The director state. See the module doc.
#[derive(Clone, Debug)]
pub struct Directory {
    pub(super) hosts: HostTable,
    pub(super) tags: Vec<TagState>,
    /// Rings of the startup configuration, per tag name (USER-LOOKUP's third column).
    initial: Vec<(Tag, VhostRing)>,
    pub(super) user_expire: u32,
    pub(super) moves: HashMap<UserKey, MoveInfo>,
}

impl Directory {
    /// Build from the parsed `director_mail_servers` and `director_user_expire` (seconds).
    ///
    /// A repeated IP is kept once, with its first tag. Known divergence: a real 2.3.19.1
    /// director given `10.0.0.1 10.0.0.1 10.0.0.2 10.0.0.2-10.0.0.2@t` lists four hosts in
    /// HOST-LIST (both copies of each, the second `10.0.0.2` in tag `t`), and admin commands
    /// by IP reach only one copy; new-user choices in the first tag are the same either way.
    pub fn new(specs: Vec<MailHostSpec>, user_expire_secs: u32) -> Self {
        let mut dir = Directory {
            hosts: HostTable::default(),
            tags: Vec::new(),
            initial: Vec::new(),
            user_expire: user_expire_secs,
            moves: HashMap::new(),
        };
        for spec in specs {
            if dir.hosts.find(spec.ip).is_some() {
                continue;
            }
            let tag_id = dir.tag_get(&spec.tag);
            dir.hosts
                .insert(MailHost::new(spec.ip, spec.hostname, spec.tag, tag_id));
        }
        dir.rebuild_rings();
        dir.initial = dir
            .tags
            .iter()
            .map(|t| (t.name.clone(), t.ring.clone()))
            .collect();
        dir
    }

    /// `director_user_expire` in seconds.
    pub fn user_expire_secs(&self) -> u32 {
        self.user_expire
    }

    /// The host table.
    pub fn hosts(&self) -> &HostTable {
        &self.hosts
    }

    /// HOST-LIST: hosts in IP order.
    pub fn host_list(&self) -> impl Iterator<Item = &MailHost> + '_ {
        self.hosts.iter()
    }

    /// The host with this address.
    pub fn host(&self, ip: IpAddr) -> Option<&MailHost> {
        self.hosts.find(ip).map(|id| self.hosts.get(id))
    }

    /// Tags in creation order.
    pub fn tags(&self) -> &[TagState] {
        &self.tags
    }

    /// The id of an existing tag.
    pub fn tag_id(&self, tag: &Tag) -> Option<TagId> {
        // Lengths first and no `memcmp` call for the (usual) default tag: this runs for
        // every auth request, and the libc call showed up at 8 % of its CPU time.
        let want = tag.as_bytes();
        self.tags
            .iter()
            .position(|t| {
                let have = t.name.as_bytes();
                have.len() == want.len() && (want.is_empty() || have == want)
            })
            .map(|i| i as TagId)
    }

    /// `hosts_hash` of the current host list (`ring-protocol.md` §7.1).
    pub fn hosts_hash(&self) -> u32 {
        self.hosts.hosts_hash()
    }

    /// Total user entries over all tags (expired but not yet purged ones included).
    pub fn user_count(&self) -> usize {
        self.tags.iter().map(|t| t.users.len()).sum()
    }

    /// Users with a move/kill in progress (`users_moving_count`).
    pub fn moving_count(&self) -> usize {
        self.moves.len()
    }

    /// The host the current ring of `tag` picks for `hash`.
    pub fn choose(&self, tag: &Tag, hash: u32) -> Option<IpAddr> {
        let id = self.tag_id(tag)?;
        self.tags[id as usize].ring.choose(hash)
    }

    /// The host the startup configuration's ring of `tag` picks for `hash`.
    pub fn choose_initial(&self, tag: &Tag, hash: u32) -> Option<IpAddr> {
        let (_, ring) = self.initial.iter().find(|(name, _)| name == tag)?;
        ring.choose(hash)
    }

    pub(super) fn tag_get(&mut self, tag: &Tag) -> TagId {
        if let Some(id) = self.tag_id(tag) {
            return id;
        }
        self.tags.push(TagState {
            name: tag.clone(),
            ring: VhostRing::default(),
            users: UserDirectory::default(),
        });
        (self.tags.len() - 1) as TagId
    }

    /// Rebuild every tag's ring; Dovecot does this after any host change.
    pub(super) fn rebuild_rings(&mut self) {
        for (i, tag) in self.tags.iter_mut().enumerate() {
            tag.ring = build_ring(&self.hosts, i as TagId);
        }
    }

    // ---- expiry -------------------------------------------------------------------------

    /// Dovecot's `user_directory_user_has_connections()`: whether the entry stays.
    fn keeps(&self, user: &User, now: u64) -> bool {
        let expire = user.timestamp + u64::from(self.user_expire);
        if expire > now || user.kill.is_some() {
            return true;
        }
        if user.weak {
            if expire + USER_NEAR_EXPIRING_MAX > now {
                return true;
            }
            tracing::warn!(
                target: "director",
                "User {} weakness appears to be stuck, removing it",
                user.hash
            );
        }
        false
    }

    /// Forget one entry, keeping host user counts and the move table in step.
    pub(super) fn free_user(&mut self, key: UserKey) -> Option<User> {
        let user = self.tags[key.tag as usize].users.remove(key.hash)?;
        let host = self.hosts.get_mut(user.host);
        host.user_count -= 1;
        self.moves.remove(&key);
        Some(user)
    }

    /// Drop expired entries from the old end of one tag, stopping at the first that stays.
    fn purge_tag(&mut self, tag: TagId, now: u64) {
        while let Some(head) = self.tags[tag as usize].users.head() {
            if self.keeps(&head, now) {
                break;
            }
            self.free_user(UserKey {
                tag,
                hash: head.hash,
            });
        }
    }

    /// The expiry timer's work: purge every tag.
    pub fn purge_expired(&mut self, now: u64) {
        for tag in 0..self.tags.len() as TagId {
            self.purge_tag(tag, now);
        }
    }

    /// When [`Directory::purge_expired`] should run next (the oldest entry's expiry second),
    /// or `None` without users.
    pub fn next_expiry(&self, now: u64) -> Option<u64> {
        let expire = u64::from(self.user_expire);
        self.tags
            .iter()
            .filter_map(|t| t.users.head())
            .map(|u| {
                let at = u.timestamp + expire;
                if at > now {
                    at
                } else if u.kill.is_some() {
                    now + USER_BEING_KILLED_EXPIRE_RETRY_SECS
                } else if u.weak && at + USER_NEAR_EXPIRING_MAX > now {
                    at + USER_NEAR_EXPIRING_MAX
                } else {
                    now
                }
            })
            .min()
    }

    /// Dovecot's `user_directory_lookup()`: purge the tag, then the live entry for `hash`.
    pub fn lookup(&mut self, tag: TagId, hash: u32, now: u64) -> Option<User> {
        if tag as usize >= self.tags.len() {
            return None;
        }
        self.purge_tag(tag, now);
        let user = self.tags[tag as usize].users.get(hash)?;
        if self.keeps(&user, now) {
            Some(user)
        } else {
            self.free_user(UserKey { tag, hash });
            None
        }
    }

    /// The seconds before expiry at which a user counts as near expiring.
    pub fn near_expiring_secs(&self) -> u64 {
        (u64::from(self.user_expire) / 10).clamp(USER_NEAR_EXPIRING_MIN, USER_NEAR_EXPIRING_MAX)
    }

    /// `timestamp + expire - near_expiring_secs < now` (`ring-protocol.md` §1.3).
    pub fn is_near_expiring(&self, user: &User, now: u64) -> bool {
        user.timestamp + u64::from(self.user_expire) - self.near_expiring_secs() < now
    }

    /// `timestamp + expire/2 >= now` (`ring-protocol.md` §1.3).
    pub fn is_recently_updated(&self, user: &User, now: u64) -> bool {
        user.timestamp + u64::from(self.user_expire / 2) >= now
    }

    // ---- users --------------------------------------------------------------------------

    /// USER-LOOKUP: the live entry's (host, expire), the current ring's choice and the
    /// startup configuration's choice.
    pub fn user_lookup(
        &mut self,
        hash: u32,
        tag: &Tag,
        now: u64,
    ) -> (Option<(IpAddr, u64)>, Option<IpAddr>, Option<IpAddr>) {
        let current = self.tag_id(tag).and_then(|t| {
            let user = self.lookup(t, hash, now)?;
            let ip = self.hosts.get(user.host).ip;
            Some((ip, user.timestamp + u64::from(self.user_expire)))
        });
        (
            current,
            self.choose(tag, hash),
            self.choose_initial(tag, hash),
        )
    }

    /// USER-LIST: `(hash, expire, host ip)` per entry, tags in creation order, oldest entry
    /// first, after purging expired entries; only entries on `filter` if given. The
    /// expanded form of [`Directory::user_listing`].
    pub fn user_list(&mut self, filter: Option<IpAddr>, now: u64) -> Vec<(u32, u64, IpAddr)> {
        let l = self.user_listing(filter, now);
        l.rows
            .iter()
            .map(|&(hash, expire, host)| (hash, u64::from(expire), l.hosts[host as usize]))
            .collect()
    }

    /// USER-LIST's rows as [`UserListing`]: same order and filter as
    /// [`Directory::user_list`], expiry clamped to `u32` as Dovecot prints it.
    pub fn user_listing(&mut self, filter: Option<IpAddr>, now: u64) -> UserListing {
        self.purge_expired(now);
        // Host id → index into `hosts`, for the hosts the filter keeps.
        let mut index: Vec<Option<u32>> = Vec::new();
        let mut hosts = Vec::new();
        for (id, h) in self.hosts.iter_with_ids() {
            if filter.map_or(true, |f| f == h.ip) {
                let id = id as usize;
                if index.len() <= id {
                    index.resize(id + 1, None);
                }
                index[id] = Some(hosts.len() as u32);
                hosts.push(h.ip);
            }
        }
        let expire = u64::from(self.user_expire);
        let capacity = if filter.is_none() {
            self.tags.iter().map(|t| t.users.len()).sum()
        } else {
            0
        };
        let mut rows = Vec::with_capacity(capacity);
        for tag in &self.tags {
            for user in tag.users.iter() {
                if let Some(Some(i)) = index.get(user.host as usize) {
                    let until = (user.timestamp + expire).min(u64::from(u32::MAX)) as u32;
                    rows.push((user.hash, until, *i));
                }
            }
        }
        UserListing { hosts, rows }
    }

    /// Entries currently on host `ip`, every tag, oldest first (HOST-RESET-USERS' walk).
    pub fn users_of_host(&mut self, ip: IpAddr, now: u64) -> Result<Vec<UserKey>, HostNotFound> {
        let id = self.hosts.find(ip).ok_or(HostNotFound)?;
        self.purge_expired(now);
        let mut out = Vec::new();
        for (t, tag) in self.tags.iter().enumerate() {
            out.extend(tag.users.iter().filter(|u| u.host == id).map(|u| UserKey {
                tag: t as TagId,
                hash: u.hash,
            }));
        }
        Ok(out)
    }

    /// A login/LMTP lookup on a stand-alone (always synced) director: refresh the live
    /// entry, or create one from the ring (`auth-proxy.md` §5 steps 2-3).
    pub fn request_host(&mut self, tag: &Tag, hash: u32, now: u64) -> RequestOutcome {
        match self.request_host_entry(tag, hash, now) {
            Ok(host) => RequestOutcome::Host(host.ip),
            Err(outcome) => outcome,
        }
    }

    /// [`Directory::request_host`], answering with the chosen host's entry (its name
    /// included) instead of only its address, so callers need not look it up again.
    /// `Err` is [`RequestOutcome::NoHost`] or [`RequestOutcome::Busy`].
    pub fn request_host_entry(
        &mut self,
        tag: &Tag,
        hash: u32,
        now: u64,
    ) -> Result<&MailHost, RequestOutcome> {
        let Some(tag_id) = self.tag_id(tag) else {
            return Err(RequestOutcome::NoHost);
        };
        if let Some(user) = self.lookup(tag_id, hash, now) {
            if user.kill.is_some() {
                return Err(RequestOutcome::Busy);
            }
            // Alone in the ring: weakness has nobody to wait for.
            self.tags[tag_id as usize].users.refresh_strong(hash, now);
            return Ok(self.hosts.get(user.host));
        }
        let Some(ip) = self.tags[tag_id as usize].ring.choose(hash) else {
            return Err(RequestOutcome::NoHost);
        };
        let host = self
            .hosts
            .find(ip)
            .expect("ring points only at hosts in the table");
        self.add_user(tag_id, hash, host, now, now);
        Ok(self.hosts.get(host))
    }

    /// A proxy-notify line: refresh the user's live entry in every tag. Returns the hosts of
    /// the refreshed entries (for ring `USER` updates).
    pub fn notify_refresh(&mut self, hash: u32, now: u64) -> Vec<IpAddr> {
        let mut refreshed = Vec::new();
        for tag in 0..self.tags.len() as TagId {
            if let Some(user) = self.lookup(tag, hash, now) {
                self.tags[tag as usize].users.refresh(hash, now);
                refreshed.push(self.hosts.get(user.host).ip);
            }
        }
        refreshed
    }

    /// Add an entry (absent before) with `timestamp` clamped to `now`. Refused (false) if
    /// the entry exists or `host` is not a host of `tag`.
    pub fn add_user(
        &mut self,
        tag: TagId,
        hash: u32,
        host: HostId,
        timestamp: u64,
        now: u64,
    ) -> bool {
        if !self.hosts.contains(host) || self.hosts.get(host).tag_id != tag {
            return false;
        }
        let users = &mut self.tags[tag as usize].users;
        if users.get(hash).is_some() {
            return false;
        }
        users.insert(hash, host, timestamp.min(now));
        self.hosts.get_mut(host).user_count += 1;
        true
    }

    /// Point an existing entry at another host of the same tag; false if there is no such
    /// entry or `host` is not in the entry's tag.
    pub fn set_user_host(&mut self, key: UserKey, host: HostId) -> bool {
        let Some(user) = self.user(key) else {
            return false;
        };
        if !self.hosts.contains(host) || self.hosts.get(host).tag_id != key.tag {
            return false;
        }
        if user.host != host {
            self.hosts.get_mut(user.host).user_count -= 1;
            self.hosts.get_mut(host).user_count += 1;
            self.tags[key.tag as usize].users.set_host(key.hash, host);
        }
        true
    }

    /// Set an entry's timestamp (clamped to `now`) and move it to the young end.
    pub fn refresh_user(&mut self, key: UserKey, timestamp: u64, now: u64) {
        if let Some(tag) = self.tags.get_mut(key.tag as usize) {
            tag.users.refresh(key.hash, timestamp.min(now));
        }
    }

    /// Set or clear an entry's weak flag (ring only).
    pub fn set_user_weak(&mut self, key: UserKey, weak: bool) {
        if let Some(tag) = self.tags.get_mut(key.tag as usize) {
            tag.users.set_weak(key.hash, weak);
        }
    }

    /// The entry for `key`, without expiry checks.
    pub fn user(&self, key: UserKey) -> Option<User> {
        self.tags.get(key.tag as usize)?.users.get(key.hash)
    }

    /// [`Directory::user`] read from the slab slot it had when listed (see
    /// [`UserDirectory::get_at`]).
    pub fn user_at(&self, key: UserKey, slot: u32) -> Option<User> {
        self.tags
            .get(key.tag as usize)?
            .users
            .get_at(slot, key.hash)
    }

    /// Every structural invariant; tests call this after each operation.
    pub fn check_invariants(&self) -> Result<(), String> {
        super::invariants::check(self)
    }
}

/// The ring of tag `tag` from the current hosts.
fn build_ring(hosts: &HostTable, tag: TagId) -> VhostRing {
    VhostRing::build(
        hosts
            .iter()
            .filter(|h| h.tag_id == tag && !h.down)
            .map(|h| (h.ip, h.vhost_count)),
    )
}

/// The kill state of a user, for the move helpers.
pub(super) fn kill_of(dir: &Directory, key: UserKey) -> Option<KillState> {
    dir.user(key).and_then(|u| u.kill)
}
