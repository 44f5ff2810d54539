//! The 17 doveadm commands (`admin-protocol.md` §6).
//! Mirrors the command handlers of Dovecot's `src/director/doveadm-connection.c`.
//!
//! Runs inside the state owner. Replies are encoded with the parsers crate's reply types, so
//! the bytes are exactly Dovecot's. The PRE-SYNC/POST-SYNC waits of §4 live in `ringsync.rs`;
//! a stand-alone director is always ring-synced, so they complete at once.

use std::net::IpAddr;

use director_parsers::admin::{
    DirectorHost, DirectorLine, HostEntry, HostType, LocalStatus, RemovedHost, Reply, Request,
    RingStatus, Status, UserArg, UserCurrent, UserEntry, UserLookup,
};
use director_parsers::ip::ip_to_string;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::events::AdminReply;
use super::moves::{status, AdminKick};
use super::owner::{resolve, KnownDirector, Owner};
use crate::state::{HostSetOutcome, Tag, UpDownOutcome, UserMoveOutcome};

/// A stand-alone director's own entry in DIRECTOR-LIST: `127.0.0.1`, port 0.
const SELF_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

impl Owner {
    /// Executes one admin command; the reply goes to `reply` now or later (deferred kicks,
    /// HOST-RESET-USERS).
    pub(super) fn admin(&mut self, request: Request, reply: oneshot::Sender<AdminReply>) {
        // A ring director runs state changes only on a synced ring (admin-protocol.md §4).
        let Some((request, reply)) = self.ring_pre_sync(request, reply) else {
            return;
        };
        // Set by changes whose OK waits for the next ring sync.
        let mut post_sync = false;
        if let Some(st) = self.ring_admin(&request) {
            if st == Status::Ok && super::ringsync::is_post_sync(&request) {
                self.ring_post_sync(status(st), reply);
            } else {
                let _ = reply.send(status(st));
            }
            return;
        }
        let now = self.clock.now_secs();
        let out = match request {
            Request::HostList => self.host_list(),
            Request::HostListRemoved => self.host_list_removed(),
            Request::HostSet { .. } | Request::HostUpdate { .. } => {
                let vhosts = request.vhost_count();
                let (host, create) = match &request {
                    Request::HostSet { host, .. } => (host, true),
                    Request::HostUpdate { host, .. } => (host, false),
                    _ => unreachable!("matched above"),
                };
                let tag = host.tag.as_deref().map(Tag::from);
                let outcome = if create {
                    self.dir.host_set(host.ip, tag.as_ref(), vhosts, now)
                } else {
                    match vhosts {
                        Some(v) => self.dir.host_update(host.ip, tag.as_ref(), v, now),
                        // HOST-UPDATE with the "unset" count: like HOST-SET without a count,
                        // except that an unknown host is not created.
                        None if self.dir.host(host.ip).is_none() => HostSetOutcome::NotFound,
                        None => self.dir.host_set(host.ip, tag.as_ref(), None, now),
                    }
                };
                match outcome {
                    HostSetOutcome::Ok => {
                        self.retry_delayed();
                        post_sync = true;
                        status(Status::Ok)
                    }
                    HostSetOutcome::NotFound => status(Status::NotFound),
                    HostSetOutcome::VhostCountTooLarge => status(Status::VhostCountTooLarge),
                    HostSetOutcome::TagCantChange => status(Status::TagCantBeChanged),
                    HostSetOutcome::BeingUpdated => status(Status::HostBeingUpdated),
                }
            }
            Request::HostUp { ip } | Request::HostDown { ip } => {
                let down = matches!(request, Request::HostDown { .. });
                match self.dir.host_set_down(ip, down, now) {
                    UpDownOutcome::Ok => {
                        self.retry_delayed();
                        post_sync = true;
                        status(Status::Ok)
                    }
                    UpDownOutcome::Unchanged => status(Status::Ok),
                    UpDownOutcome::NotFound => status(Status::NotFound),
                    UpDownOutcome::BeingUpdated => status(Status::HostBeingUpdated),
                }
            }
            Request::HostRemove { ip } => match self.dir.host_remove(ip) {
                Ok(_) => {
                    self.retry_delayed();
                    post_sync = true;
                    status(Status::Ok)
                }
                Err(_) => status(Status::NotFound),
            },
            Request::HostFlush { ip: None } if self.ring.is_some() => {
                // Every host flushed over the ring (HOST-FLUSH each), OK at once.
                let ips: Vec<IpAddr> = self.dir.host_list().map(|h| h.ip).collect();
                let n: u32 = self.dir.host_list().map(|h| h.user_count).sum();
                for ip in ips {
                    self.flush_host(ip);
                }
                warn!(
                    "Flushed all backend hosts with {n} users. This is an unsafe \
                     operation and may cause the same users to end up in multiple backends."
                );
                status(Status::Ok)
            }
            Request::HostFlush { ip } => match self.dir.host_flush(ip) {
                Ok(n) => {
                    post_sync = ip.is_some();
                    if ip.is_none() {
                        warn!(
                            "Flushed all backend hosts with {n} users. This is an unsafe \
                             operation and may cause the same users to end up in multiple backends."
                        );
                    }
                    status(Status::Ok)
                }
                Err(_) => status(Status::NotFound),
            },
            Request::HostResetUsers { ip, max_parallel } => {
                self.reset_users(ip, max_parallel, reply);
                return;
            }
            Request::UserLookup { user, tag } => {
                let hash = self.user_hash(&user);
                let (current, hashed, config) = self.dir.user_lookup(hash, &Tag::from(tag), now);
                let line = UserLookup {
                    current: current.map(|(ip, expire)| UserCurrent {
                        ip,
                        expire: expire.min(u64::from(u32::MAX)) as u32,
                    }),
                    hashed,
                    config,
                };
                encode(&[Reply::UserLookup(line)])
            }
            Request::UserList { ip } => {
                let mut lines: Vec<Reply> = self
                    .dir
                    .user_list(ip, now)
                    .into_iter()
                    .map(|(hash, expire, ip)| {
                        Reply::User(UserEntry {
                            hash,
                            expire: expire.min(u64::from(u32::MAX)) as u32,
                            ip,
                        })
                    })
                    .collect();
                lines.push(Reply::End);
                encode(&lines)
            }
            Request::UserMove { user, ip } => {
                let hash = self.user_hash(&user);
                match self.dir.user_move(hash, ip, now) {
                    UserMoveOutcome::Moved(started) => {
                        self.begin_move(started);
                        status(Status::Ok)
                    }
                    UserMoveOutcome::Refreshed => status(Status::Ok),
                    UserMoveOutcome::NotFound => status(Status::NotFound),
                    UserMoveOutcome::TryAgain => status(Status::TryAgain),
                }
            }
            Request::UserKick { user, nowait } => {
                self.admin_kick(AdminKick::User(user), nowait, reply);
                return;
            }
            Request::UserKickAlt {
                field,
                value,
                nowait,
            } => {
                self.admin_kick(AdminKick::Alt { field, value }, nowait, reply);
                return;
            }
            Request::DirectorList => match &self.ring {
                Some(ring) => self.ring_director_list(ring),
                None => self.director_list(),
            },
            Request::DirectorAdd { ip, port } => {
                let port = port.map_or(self.self_addr().1, |p| p.get());
                // A known director, even one marked removed, is left as it is (real 2.3.19.1:
                // `ring add` of a removed director answers OK and it stays `removed`).
                let known = self.directors.iter().any(|d| (d.ip, d.port) == (ip, port));
                if !self.is_self(ip, port) && !known {
                    info!(
                        "Adding director {}:{port} to ring (requested by doveadm)",
                        ip_to_string(&ip)
                    );
                    self.directors.push(KnownDirector {
                        ip,
                        port,
                        removed: false,
                    });
                }
                status(Status::Ok)
            }
            Request::DirectorRemove { ip, port } => {
                let me = self.self_addr();
                let removing_self = (ip, port.map_or(me.1, |p| p.get())) == me;
                let found = self
                    .directors
                    .iter_mut()
                    .find(|d| d.ip == ip && port.map_or(true, |want| want.get() == d.port));
                match found {
                    // Dovecot marks the director removed and keeps listing it as `removed`;
                    // removing it again still finds it and answers OK.
                    Some(d) => {
                        if !d.removed {
                            info!(
                                "Removing director {}:{} from ring (requested by doveadm)",
                                ip_to_string(&ip),
                                d.port
                            );
                        }
                        d.removed = true;
                        post_sync = true;
                        status(Status::Ok)
                    }
                    // Ourselves: found, but a stand-alone director cannot leave its ring.
                    None if removing_self => status(Status::Ok),
                    None => status(Status::NotFound),
                }
            }
        };
        if post_sync {
            self.ring_post_sync(out, reply);
        } else {
            let _ = reply.send(out);
        }
    }

    fn is_self(&self, ip: IpAddr, port: u16) -> bool {
        (ip, port) == self.self_addr()
    }

    /// Our ring address: Dovecot's dummy 127.0.0.1:0 when stand-alone.
    fn self_addr(&self) -> (IpAddr, u16) {
        self.ring.as_ref().map_or((SELF_IP, 0), |r| r.me)
    }

    /// `<user>` argument: a hash, or a name hashed with `director_username_hash`.
    fn user_hash(&self, user: &UserArg) -> u32 {
        match user {
            UserArg::Hash(h) => *h,
            UserArg::Name(name) => self.settings.hasher.hash(name),
        }
    }

    fn host_list(&self) -> AdminReply {
        let mut lines: Vec<Reply> = self
            .dir
            .host_list()
            .map(|h| {
                Reply::Host(HostEntry {
                    ip: h.ip,
                    vhost_count: h.vhost_count,
                    user_count: h.user_count,
                    tag: h.tag.as_bytes().to_vec(),
                    down: h.down,
                    last_updown_change: h.last_updown_change as i64,
                })
            })
            .collect();
        lines.push(Reply::End);
        encode(&lines)
    }

    /// Hosts of `director_mail_servers` (re-parsed now, as Dovecot does) that are not in the
    /// host list.
    fn host_list_removed(&self) -> AdminReply {
        let mut ips: Vec<IpAddr> =
            crate::mail_hosts::parse_mail_servers(&self.settings.mail_servers, &mut resolve)
                .map(|specs| specs.into_iter().map(|s| s.ip).collect())
                .unwrap_or_default();
        ips.retain(|ip| self.dir.host(*ip).is_none());
        ips.sort();
        ips.dedup();
        let mut lines: Vec<Reply> = ips
            .into_iter()
            .map(|ip| Reply::RemovedHost(RemovedHost { ip }))
            .collect();
        lines.push(Reply::End);
        encode(&lines)
    }

    fn director_list(&self) -> AdminReply {
        let mut all: Vec<(IpAddr, u16, HostType)> = vec![(SELF_IP, 0, HostType::Local)];
        all.extend(self.directors.iter().map(|d| {
            let kind = if d.removed {
                HostType::Removed
            } else {
                HostType::Other
            };
            (d.ip, d.port, kind)
        }));
        all.sort_by_key(|a| (a.0, a.1));
        let mut lines: Vec<Reply> = all
            .into_iter()
            .map(|(ip, port, kind)| {
                let me = kind == HostType::Local;
                Reply::Director(DirectorLine::Host(DirectorHost {
                    ip,
                    port,
                    kind,
                    last_failed: 0,
                    local: me.then_some(LocalStatus {
                        ring: RingStatus::Synced,
                        last_sync_ms: 0,
                    }),
                }))
            })
            .collect();
        lines.push(Reply::End);
        encode(&lines)
    }
}

fn encode(lines: &[Reply]) -> AdminReply {
    let mut out = Vec::new();
    for l in lines {
        l.encode(&mut out);
    }
    AdminReply::Bytes(out)
}
