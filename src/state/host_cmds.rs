//! Host admin commands: HOST-SET, HOST-UPDATE, HOST-UP/DOWN, HOST-REMOVE, HOST-FLUSH, and
//! the host changes a ring peer may make.
//!
//! Mirrors the host parts of Dovecot's `src/director/doveadm-connection.c` and
//! `director.c` (`admin-protocol.md` §§6.3-6.6, `user-directory.md` §8). Replies, ring
//! broadcasts and sync waits are the caller's job.

use super::directory::{Directory, UserKey};
use super::hosts::{HostId, MailHost, MAX_VHOST_COUNT};
use super::Tag;
use std::net::IpAddr;

/// Result of HOST-SET / HOST-UPDATE (`admin-protocol.md` §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostSetOutcome {
    /// Applied (reply `OK`).
    Ok,
    /// HOST-UPDATE of an unknown host (`NOTFOUND`).
    NotFound,
    /// More than 1000 vhosts (`vhost count too large`).
    VhostCountTooLarge,
    /// A different non-empty tag for an existing host (`host tag can't be changed`).
    TagCantChange,
    /// Changed since the last ring sync (`host is already being updated - try again later`).
    BeingUpdated,
}

/// Result of HOST-UP / HOST-DOWN (`admin-protocol.md` §6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpDownOutcome {
    /// State flipped; broadcast and reply `OK` after sync.
    Ok,
    /// Already in that state; reply `OK`, nothing changed.
    Unchanged,
    /// No such host (`NOTFOUND`).
    NotFound,
    /// Changed since the last ring sync (the "already being updated" line).
    BeingUpdated,
}

/// The host given to an admin command does not exist (`NOTFOUND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("host not found")]
pub struct HostNotFound;

impl Directory {
    /// HOST-SET: create the host if needed, then apply the vhost count.
    pub fn host_set(
        &mut self,
        ip: IpAddr,
        tag: Option<&Tag>,
        vhosts: Option<u32>,
        now: u64,
    ) -> HostSetOutcome {
        self.host_set_or_update(ip, tag, vhosts, true, now)
    }

    /// HOST-UPDATE: like HOST-SET, but an unknown host is `NotFound`.
    pub fn host_update(
        &mut self,
        ip: IpAddr,
        tag: Option<&Tag>,
        vhosts: u32,
        now: u64,
    ) -> HostSetOutcome {
        self.host_set_or_update(ip, tag, Some(vhosts), false, now)
    }

    fn host_set_or_update(
        &mut self,
        ip: IpAddr,
        tag: Option<&Tag>,
        vhosts: Option<u32>,
        create: bool,
        _now: u64,
    ) -> HostSetOutcome {
        if vhosts.is_some_and(|v| v > MAX_VHOST_COUNT) {
            return HostSetOutcome::VhostCountTooLarge;
        }
        let id = match self.hosts.find(ip) {
            Some(id) => {
                let host = self.hosts.get(id);
                if tag.is_some_and(|t| !t.is_default() && *t != host.tag) {
                    return HostSetOutcome::TagCantChange;
                }
                if host.desynced {
                    return HostSetOutcome::BeingUpdated;
                }
                id
            }
            None if !create => return HostSetOutcome::NotFound,
            None => {
                let tag = tag.cloned().unwrap_or_default();
                let tag_id = self.tag_get(&tag);
                self.hosts.insert(MailHost::new(ip, None, tag, tag_id))
            }
        };
        if let Some(v) = vhosts {
            self.hosts.get_mut(id).vhost_count = v;
        }
        self.rebuild_rings();
        HostSetOutcome::Ok
    }

    /// HOST-UP / HOST-DOWN.
    pub fn host_set_down(&mut self, ip: IpAddr, down: bool, now: u64) -> UpDownOutcome {
        let Some(id) = self.hosts.find(ip) else {
            return UpDownOutcome::NotFound;
        };
        let host = self.hosts.get_mut(id);
        if host.down == down {
            return UpDownOutcome::Unchanged;
        }
        if host.desynced {
            return UpDownOutcome::BeingUpdated;
        }
        host.down = down;
        host.last_updown_change = now;
        self.rebuild_rings();
        UpDownOutcome::Ok
    }

    /// HOST-UP.
    pub fn host_up(&mut self, ip: IpAddr, now: u64) -> UpDownOutcome {
        self.host_set_down(ip, false, now)
    }

    /// HOST-DOWN.
    pub fn host_down(&mut self, ip: IpAddr, now: u64) -> UpDownOutcome {
        self.host_set_down(ip, true, now)
    }

    /// Forget every entry pointing at `id` (no kicks); returns how many.
    fn remove_host_users(&mut self, id: HostId) -> usize {
        let tag = self.hosts.get(id).tag_id;
        let hashes: Vec<u32> = self.tags[tag as usize]
            .users
            .iter()
            .filter(|u| u.host == id)
            .map(|u| u.hash)
            .collect();
        for &hash in &hashes {
            self.free_user(UserKey { tag, hash });
        }
        hashes.len()
    }

    /// HOST-REMOVE: forget the host's users, then the host (its tag stays). Returns how many
    /// users were forgotten.
    pub fn host_remove(&mut self, ip: IpAddr) -> Result<usize, HostNotFound> {
        let id = self.hosts.find(ip).ok_or(HostNotFound)?;
        let n = self.remove_host_users(id);
        self.hosts.remove(id);
        self.rebuild_rings();
        Ok(n)
    }

    /// HOST-FLUSH: forget the users of one host, or of every host with `None`. Returns how
    /// many users were forgotten.
    pub fn host_flush(&mut self, ip: Option<IpAddr>) -> Result<usize, HostNotFound> {
        let ids: Vec<HostId> = match ip {
            Some(ip) => vec![self.hosts.find(ip).ok_or(HostNotFound)?],
            None => self.hosts.ids().to_vec(),
        };
        Ok(ids.into_iter().map(|id| self.remove_host_users(id)).sum())
    }

    /// Set the name a host was configured by (a host learnt from a ring `HOST` line takes
    /// the sender's; empty = none).
    pub fn set_host_hostname(&mut self, ip: IpAddr, hostname: &[u8]) -> Result<(), HostNotFound> {
        let id = self.hosts.find(ip).ok_or(HostNotFound)?;
        self.hosts.get_mut(id).hostname =
            (!hostname.is_empty()).then(|| String::from_utf8_lossy(hostname).into_owned());
        Ok(())
    }

    /// Mark a host changed-since-sync (ring only) or clear the mark.
    pub fn set_desynced(&mut self, ip: IpAddr, desynced: bool) -> Result<(), HostNotFound> {
        let id = self.hosts.find(ip).ok_or(HostNotFound)?;
        self.hosts.get_mut(id).desynced = desynced;
        Ok(())
    }

    /// The ring became synced: no host is desynced any more.
    pub fn clear_desynced(&mut self) {
        let ids = self.hosts.ids().to_vec();
        for id in ids {
            self.hosts.get_mut(id).desynced = false;
        }
    }

    /// Move a host to another tag (ring updates only): its users in the old tag are
    /// forgotten. Returns how many.
    pub fn set_host_tag(&mut self, ip: IpAddr, tag: &Tag) -> Result<usize, HostNotFound> {
        let id = self.hosts.find(ip).ok_or(HostNotFound)?;
        if self.hosts.get(id).tag == *tag {
            return Ok(0);
        }
        let n = self.remove_host_users(id);
        let tag_id = self.tag_get(tag);
        let host = self.hosts.get_mut(id);
        host.tag = tag.clone();
        host.tag_id = tag_id;
        self.rebuild_rings();
        Ok(n)
    }
}

/// A host as a ring peer describes it (`HOST` line, `ring-protocol.md` §7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteHost {
    /// The host's address.
    pub ip: IpAddr,
    /// Its vhost count.
    pub vhost_count: u32,
    /// Its tag (`""` if the line had none).
    pub tag: Tag,
    /// `D` (true) or `U` in the up/down field; up if the field was absent.
    pub down: bool,
    /// The time after `U`/`D`; 0 if the field was absent.
    pub last_updown_change: u64,
    /// The hostname field, if non-empty.
    pub hostname: Option<String>,
}

/// What applying a peer's `HOST` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteHostOutcome {
    /// Nothing differs: do not forward.
    Unchanged,
    /// Applied: forward the `HOST` (except to the sender, keeping its origin, unless
    /// `warning` is set) and resync.
    Changed {
        /// The host was unknown and has been created.
        created: bool,
        /// The tag changed from this one (log `Host <ip> changed tag from '<old>' to
        /// '<new>'`); the host's users in the old tag were forgotten.
        tag_changed_from: Option<Tag>,
        /// We had changed the host ourselves since the last sync: log this warning
        /// (`Host <ip> is being updated before previous update had finished (...) - setting
        /// to state=.. vhosts=..`), and re-originate the result with our own origin to
        /// every peer, the sender included.
        warning: Option<String>,
    },
}

impl Directory {
    /// Apply a `HOST` from a peer (handshake or ring form), `ring-protocol.md` §7.2. `in_ring`
    /// (we have a left or right connection) marks a changed host desynced until the next
    /// completed sync.
    pub fn host_apply_remote(&mut self, h: RemoteHost, in_ring: bool) -> RemoteHostOutcome {
        let mut down = h.down;
        let mut vhost_count = h.vhost_count;
        let mut last_updown_change = h.last_updown_change;
        let mut created = false;
        let mut tag_changed_from = None;
        let mut warning = None;
        let id = match self.hosts.find(h.ip) {
            None => {
                let tag_id = self.tag_get(&h.tag);
                created = true;
                self.hosts.insert(MailHost::new(
                    h.ip,
                    h.hostname.clone(),
                    h.tag.clone(),
                    tag_id,
                ))
            }
            Some(id) => {
                let host = self.hosts.get(id);
                let mut update = host.vhost_count != vhost_count || host.down != down;
                if host.tag != h.tag {
                    tag_changed_from = Some(host.tag.clone());
                    let _ = self.set_host_tag(h.ip, &h.tag);
                    update = true;
                }
                let host = self.hosts.get(id);
                if update && host.desynced {
                    if host.down != down && host.last_updown_change > last_updown_change {
                        // Our change is newer: keep it.
                        down = host.down;
                    }
                    let mut what = Vec::new();
                    if host.down != down {
                        what.push(if host.down {
                            "down -> up".to_owned()
                        } else {
                            "up -> down".to_owned()
                        });
                    }
                    if host.vhost_count != vhost_count {
                        what.push(format!("vhosts {} -> {}", host.vhost_count, vhost_count));
                    }
                    vhost_count = vhost_count.min(host.vhost_count);
                    warning = Some(format!(
                        "Host {} is being updated before previous update had finished ({}) - setting to state={} vhosts={}",
                        director_parsers::ip::ip_to_string(&h.ip),
                        what.join(", "),
                        if down { "down" } else { "up" },
                        vhost_count
                    ));
                }
                if !update {
                    return RemoteHostOutcome::Unchanged;
                }
                last_updown_change = last_updown_change.max(host.last_updown_change);
                id
            }
        };
        let host = self.hosts.get_mut(id);
        if host.down != down {
            host.down = down;
            host.last_updown_change = last_updown_change;
        }
        host.vhost_count = vhost_count;
        if in_ring {
            host.desynced = true;
        }
        self.rebuild_rings();
        RemoteHostOutcome::Changed {
            created,
            tag_changed_from,
            warning,
        }
    }
}
