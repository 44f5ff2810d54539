//! Wiring of the ring state machine ([`crate::ring::Ring`]) into the state owner: ring I/O
//! events become [`RingEvent`]s, and the returned [`RingEffect`]s are carried out (lines
//! queued on connections, connects, closes, the ring's timer, log lines, sync state, kicks,
//! the flush program of moves we started).
//!
//! The owner keeps the one [`crate::state::Directory`] and lends it to the ring for every
//! event ([`crate::ring::Ring::handle_in`], no copy), so admin reads, expiry and the
//! HOST-RESET-USERS walk see and change the ring's state. Logins, admin changes, kicks and
//! proxy-notify refreshes go through the ring, which tells the other directors.

use std::collections::VecDeque;

use tracing::{debug, error, info, warn};

use director_parsers::admin::{Request, Status, UserArg};
use director_parsers::ipc::KickCommand;

use super::events::HostOutcome;
use super::owner::Owner;
use super::ringnet::{CloseWhy, RingIo, SendError};
use crate::ring::{
    AdminCmd, AdminOutcome, ConnFailure, ConnId, DirAddr, LogLevel, RingEffect, RingEvent, Routing,
    WaitReason,
};
use crate::state::Tag;

/// The delay reason of a request waiting for a weak user (Dovecot's text).
pub(super) const WEAK_USER: &str = "weak user";

/// What starts one round of [`Owner::ring_round`].
enum First<'a> {
    /// An event.
    Event(RingEvent),
    /// One input line of a connection, as [`RingEvent::Line`] would carry it.
    Line(ConnId, &'a [u8]),
}

impl Owner {
    /// Feeds one event to the ring and carries out everything it answers, including the
    /// events the effects cause (a full output buffer closes the connection).
    /// Returns the answers (`Routed`, `AdminDone`) among the effects.
    pub(super) fn ring_handle(&mut self, first: RingEvent) -> Vec<RingEffect> {
        self.ring_round(First::Event(first))
    }

    /// [`Owner::ring_handle`] for an event or for one input line borrowed from a batch.
    fn ring_round(&mut self, first: First<'_>) -> Vec<RingEffect> {
        let login = matches!(first, First::Event(RingEvent::Login { .. }));
        let moving_before = self.dir.moving_count();
        let changes_before = self.ring.as_ref().map_or(0, |r| r.core.state_changes());
        let mut answers = Vec::new();
        let mut events = VecDeque::new();
        let mut next = Some(first);
        let mut rounds = 0;
        while let Some(item) = next.take().or_else(|| events.pop_front().map(First::Event)) {
            rounds += 1;
            if rounds > 10_000 {
                error!("BUG: ring event loop did not settle");
                break;
            }
            let now_ms = self.clock.now_ms();
            let Some(ring) = self.ring.as_mut() else {
                return answers;
            };
            let effects = match item {
                First::Event(ev) => ring.core.handle_in(&mut self.dir, ev, now_ms),
                First::Line(conn, line) => {
                    ring.core.handle_line_in(&mut self.dir, conn, line, now_ms)
                }
            };
            for eff in effects {
                match eff {
                    RingEffect::Routed { .. } | RingEffect::AdminDone(_) => answers.push(eff),
                    eff => self.ring_effect(eff, &mut events),
                }
            }
        }
        let Some(ring) = self.ring.as_ref() else {
            return answers;
        };
        let (handshaked, synced) = (ring.core.is_handshaked(), ring.core.is_synced());
        let changed = ring.core.state_changes() != changes_before;
        self.ring_state_changed(handshaked, synced);
        if !login && (changed || self.dir.moving_count() < moving_before) {
            self.ring_followup(moving_before);
        }
        answers
    }

    /// After a ring event that changed something a queued request may wait for (a weak
    /// user cleared, hosts changed, a move ended: Dovecot's state-change callback), retry
    /// the queue; a finished move also lets HOST-RESET-USERS go on. Not re-entered from the
    /// requests and moves it starts; never run per plain USER line, so a big handshake does
    /// not retry the queue once per user.
    fn ring_followup(&mut self, moving_before: usize) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        if ring.in_followup {
            return;
        }
        ring.in_followup = true;
        if self.dir.moving_count() < moving_before {
            self.move_finished();
        } else {
            self.retry_delayed();
        }
        if let Some(ring) = self.ring.as_mut() {
            ring.in_followup = false;
        }
    }

    /// Routes a login through the ring: `None` for a stand-alone director, else the host or
    /// the reason to wait (Dovecot's `delay_reason_strings`).
    pub(super) fn ring_route(
        &mut self,
        tag: &Tag,
        hash: u32,
    ) -> Option<Result<HostOutcome, &'static str>> {
        self.ring.as_ref()?;
        let answers = self.ring_handle(RingEvent::Login {
            tag: tag.clone(),
            hash,
        });
        let routing = answers.into_iter().find_map(|a| match a {
            RingEffect::Routed { hash: h, routing } if h == hash => Some(routing),
            _ => None,
        });
        Some(match routing {
            Some(Routing::Host(ip)) => Ok(HostOutcome::Host {
                ip,
                hostname: self.dir.host(ip).and_then(|h| h.hostname.clone()),
            }),
            Some(Routing::Wait(reason)) => {
                let text = match reason {
                    WaitReason::RingNotHandshaked => super::ringsync::NOT_HANDSHAKED,
                    WaitReason::RingNotSynced => super::ringsync::NOT_SYNCED,
                    WaitReason::NoHosts => "no hosts",
                    WaitReason::WeakUser => WEAK_USER,
                    WaitReason::KillWaiting => "kill waiting",
                };
                if matches!(
                    reason,
                    WaitReason::RingNotHandshaked | WaitReason::RingNotSynced
                ) {
                    self.arm_ring_warning();
                }
                Err(text)
            }
            None => Err("no hosts"),
        })
    }

    /// Ring mode: an admin change as a ring command, or `None` if it is not one (or stand-alone).
    pub(super) fn ring_admin(&mut self, request: &Request) -> Option<Status> {
        self.ring.as_ref()?;
        let addr = |ip, port: Option<std::num::NonZeroU16>, me: DirAddr| {
            DirAddr::new(ip, port.map_or(me.port, |p| p.get()))
        };
        let me = self.ring.as_ref()?.core.me();
        if let Some(refused) = self.host_set_precheck(request) {
            return Some(refused);
        }
        let cmd = match request {
            Request::HostSet { host, .. } | Request::HostUpdate { host, .. } => AdminCmd::HostSet {
                ip: host.ip,
                tag: host.tag.as_deref().map(Tag::from).unwrap_or_default(),
                vhosts: request.vhost_count(),
            },
            Request::HostUp { ip } => AdminCmd::HostUpDown {
                ip: *ip,
                down: false,
            },
            Request::HostDown { ip } => AdminCmd::HostUpDown {
                ip: *ip,
                down: true,
            },
            Request::HostRemove { ip } => AdminCmd::HostRemove(*ip),
            Request::HostFlush { ip: Some(ip) } => AdminCmd::HostFlush(*ip),
            Request::UserMove { user, ip } => AdminCmd::UserMove {
                hash: match user {
                    UserArg::Hash(h) => *h,
                    UserArg::Name(name) => self.settings.hasher.hash(name),
                },
                ip: *ip,
            },
            Request::DirectorAdd { ip, port } => AdminCmd::DirectorAdd(addr(*ip, *port, me)),
            Request::DirectorRemove { ip, port } => AdminCmd::DirectorRemove(addr(*ip, *port, me)),
            _ => return None,
        };
        let answers = self.ring_handle(RingEvent::Admin(cmd));
        let outcome = answers.into_iter().find_map(|a| match a {
            RingEffect::AdminDone(o) => Some(o),
            _ => None,
        });
        Some(match outcome {
            Some(AdminOutcome::Ok) => Status::Ok,
            Some(AdminOutcome::NotFound) => Status::NotFound,
            Some(AdminOutcome::BeingUpdated) => Status::HostBeingUpdated,
            Some(AdminOutcome::TryAgain) => Status::TryAgain,
            Some(AdminOutcome::Invalid) | None => Status::VhostCountTooLarge,
        })
    }

    /// HOST-SET/HOST-UPDATE checks that answer without touching the ring, in the order of
    /// admin-protocol.md §6.3: vhost count > 1000, HOST-UPDATE of an unknown host, tag change.
    fn host_set_precheck(&self, request: &Request) -> Option<Status> {
        let (host, update) = match request {
            Request::HostSet { host, .. } => (host, false),
            Request::HostUpdate { host, .. } => (host, true),
            _ => return None,
        };
        if request.vhost_count().is_some_and(|v| v > 1000) {
            return Some(Status::VhostCountTooLarge);
        }
        let Some(existing) = self.dir.host(host.ip) else {
            return update.then_some(Status::NotFound);
        };
        match host.tag.as_deref() {
            Some(tag) if !tag.is_empty() && existing.tag.as_bytes() != tag => {
                Some(Status::TagCantBeChanged)
            }
            _ => None,
        }
    }

    fn ring_effect(&mut self, eff: RingEffect, events: &mut VecDeque<RingEvent>) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        match eff {
            RingEffect::Send { conn, line } => match ring.net.send(conn.0, line) {
                Ok(()) | Err(SendError::Gone) => {}
                Err(SendError::Full(n)) => {
                    // Dovecot closes the output at once (no QUIT can follow), then the ring
                    // reconnects "after write failure".
                    ring.net.close(conn.0);
                    events.push_back(RingEvent::Failed {
                        conn,
                        failure: ConnFailure::OutputFull(n),
                    });
                }
            },
            RingEffect::WantWritable { conn } => ring.net.want_writable(conn.0),
            RingEffect::Connect { conn, ip, port } => ring.net.connect(conn.0, ip, port),
            RingEffect::Close { conn, reason } => {
                debug!(conn = conn.0, "closing ring connection: {reason}");
                ring.net.close(conn.0);
            }
            RingEffect::ArmTimer { at_ms } => ring.timer_at_ms = Some(at_ms),
            RingEffect::Log { level, text } => match level {
                LogLevel::Debug => debug!("{text}"),
                LogLevel::Info => info!("{text}"),
                LogLevel::Warning => warn!("{text}"),
                LogLevel::Error => error!("{text}"),
            },
            RingEffect::SyncedChanged(_) => {}
            RingEffect::Kick { hash, except } => {
                let command = KickCommand::KickDirectorHash {
                    hash,
                    except_ip: except,
                };
                if !self.send_ring_kick(command, Some(hash)) {
                    // No ipc client (shutting down): the kill is over as far as we can tell.
                    events.push_back(RingEvent::KickDone { hash });
                }
            }
            RingEffect::KickHash { hash, except } => {
                let command = KickCommand::KickDirectorHash {
                    hash,
                    except_ip: Some(except),
                };
                if !self.send_ring_kick(command, None) {
                    error!("ipc: kick not sent (ipc client stopped)");
                }
            }
            RingEffect::KickUser(user) => {
                if !self.send_ring_kick(KickCommand::kick(&user), None) {
                    error!("ipc: kick not sent (ipc client stopped)");
                }
            }
            RingEffect::KickAlt { field, value } => {
                if !self.send_ring_kick(KickCommand::kick_alt(&field, &value), None) {
                    error!("ipc: kick not sent (ipc client stopped)");
                }
            }
            RingEffect::Flush(job) => {
                if !self.start_flush(job) {
                    events.push_back(RingEvent::FlushDone {
                        key: job.key,
                        success: false,
                    });
                }
            }
            RingEffect::Routed { .. } | RingEffect::AdminDone(_) => {}
        }
    }

    /// Ring I/O with the state machine present.
    pub(super) fn ring_core_io(&mut self, ev: RingIo) {
        let ev = match ev {
            RingIo::Lines { conn, lines } => {
                // Each line is its own round, exactly as if it had come alone: a line that
                // closes the connection drops the rest of the batch.
                for line in &lines {
                    if !self.ring.as_ref().is_some_and(|r| r.net.contains(conn)) {
                        return;
                    }
                    self.ring_round(First::Line(ConnId(conn), line));
                    self.retry_weak_waiters();
                }
                return;
            }
            ev => ev,
        };
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        let event = match ev {
            RingIo::Accepted { stream, peer } => {
                let conn = ring.net.adopt(stream);
                RingEvent::Connected {
                    conn: ConnId(conn),
                    incoming: true,
                    peer_ip: peer.ip(),
                }
            }
            RingIo::Connected { conn, peer_ip } => RingEvent::Connected {
                conn: ConnId(conn),
                incoming: false,
                peer_ip,
            },
            RingIo::Lines { .. } => return,
            RingIo::Writable { conn } => {
                if !ring.net.contains(conn) {
                    return;
                }
                RingEvent::Writable { conn: ConnId(conn) }
            }
            RingIo::Closed {
                conn,
                why: CloseWhy::TooLong,
            } => {
                // The task still writes: the ring's QUIT and close go through it.
                if !ring.net.contains(conn) {
                    return;
                }
                RingEvent::Failed {
                    conn: ConnId(conn),
                    failure: ConnFailure::TooLongLine,
                }
            }
            RingIo::Closed { conn, why } => {
                if !ring.net.forget(conn) {
                    return;
                }
                let failure = match why {
                    CloseWhy::Eof | CloseWhy::TooLong => None,
                    CloseWhy::Error(e) => Some(e),
                    CloseWhy::ConnectFailed(e) => Some(format!("connect() failed: {e}")),
                };
                match failure {
                    None => RingEvent::Closed { conn: ConnId(conn) },
                    Some(e) => RingEvent::Failed {
                        conn: ConnId(conn),
                        failure: ConnFailure::Io(e),
                    },
                }
            }
        };
        self.ring_handle(event);
        self.retry_weak_waiters();
    }

    /// The ring's own timer, if armed.
    pub(super) fn ring_timer_deadline(&self) -> Option<u64> {
        self.ring.as_ref()?.timer_at_ms
    }

    /// Fires the ring's timer when due.
    pub(super) fn fire_ring_timer(&mut self, now_ms: u64) {
        let due = self
            .ring
            .as_mut()
            .and_then(|r| r.timer_at_ms.take_if(|t| *t <= now_ms));
        if due.is_some() {
            self.ring_handle(RingEvent::Timer);
        }
    }
}
