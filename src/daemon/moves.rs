//! User moves, kicks and HOST-RESET-USERS, as the state owner drives them
//! (`user-directory.md` §7, `admin-protocol.md` §§6.7, 6.10-6.12).
//!
//! Mirrors the stand-alone paths of `director_move_user()`, `director_kill_user()`,
//! `director_user_kill_finish_delayed()`, `director_kick_user*()` in Dovecot's
//! `src/director/director.c` and the HOST-RESET-USERS walk of `doveadm-connection.c`. The
//! [`crate::state::Directory`] holds the move states; this file owns the timers (30 s move
//! timeout, kick delay), the ipc kick accounting and the throttled admin commands.
//!
//! A ring director's moves run in the ring state machine instead (USER-MOVE and the kill
//! protocol, `ring-protocol.md` §8.3): HOST-RESET-USERS starts them there, admin kicks go
//! to the ring as USER-KICK / USER-KICK-ALT, and only the flush program and the ipc kicks
//! the ring asks for run here.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;

use director_parsers::admin::Status;
use director_parsers::ipc::{IpcRequest, KickCommand};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use director_parsers::flush::FlushRequest;

use super::events::{AdminReply, Event};
use super::flush;
use super::owner::Owner;
use crate::state::{AfterKill, FlushJob, MoveStarted, UserKey};

/// Dovecot's `DIRECTOR_USER_MOVE_TIMEOUT_MSECS`-like bound on a whole move.
pub const USER_MOVE_TIMEOUT_MS: u64 = 30_000;

/// What a kick token was for.
#[derive(Debug, Clone, Copy)]
enum KickPurpose {
    /// doveadm USER-KICK / USER-KICK-ALT: only counted.
    Admin,
    /// The kill step of a move.
    Move(UserKey),
    /// HOST-RESET-USERS with no host left for the user.
    Forced,
    /// A kick the ring asked for (a moving user's kill); the ring hears when it is done.
    Ring(u32),
}

/// What doveadm USER-KICK / USER-KICK-ALT asks to kick.
#[derive(Debug, Clone)]
pub(super) enum AdminKick {
    /// USER-KICK: sessions of a login name.
    User(Vec<u8>),
    /// USER-KICK-ALT: sessions whose passdb `user_*` field has a value.
    Alt {
        /// The field.
        field: Vec<u8>,
        /// Its value.
        value: Vec<u8>,
    },
}

/// A doveadm kick waiting for a free kick slot.
#[derive(Debug)]
struct DeferredKick {
    kick: AdminKick,
    reply: oneshot::Sender<AdminReply>,
}

/// A HOST-RESET-USERS in progress.
#[derive(Debug)]
struct ResetJob {
    hosts: VecDeque<IpAddr>,
    /// Users of the host being walked, and how far the walk got.
    users: Option<(IpAddr, Vec<UserKey>, usize)>,
    /// Users moved or kicked so far, over all hosts (Dovecot's `reset_count`).
    moved: u32,
    /// Hosts selected when the command started (for the log line).
    host_count: usize,
    kicked_any: bool,
    max_parallel: u32,
    started: std::time::Instant,
    reply: oneshot::Sender<AdminReply>,
}

/// Move/kick bookkeeping of the owner.
#[derive(Debug, Default)]
pub struct MoveTimers {
    next_token: u64,
    kicks: HashMap<u64, KickPurpose>,
    /// 30 s move timeouts, by user.
    move_deadline: HashMap<UserKey, u64>,
    /// Kick-delay ends, by user.
    delay_deadline: HashMap<UserKey, u64>,
    deferred_kicks: VecDeque<DeferredKick>,
    resets: VecDeque<ResetJob>,
}

impl MoveTimers {
    /// The earliest move-related deadline (clock ms).
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.move_deadline
            .values()
            .chain(self.delay_deadline.values())
            .copied()
            .min()
    }

    /// ipc kick commands outstanding.
    pub fn kicking(&self) -> usize {
        self.kicks.len()
    }
}

impl Owner {
    /// Sends a kick through ipc; false (and nothing counted) if there is no ipc task.
    fn send_kick(&mut self, command: KickCommand, purpose: KickPurpose) -> bool {
        let Some(ipc) = &self.ipc else {
            return false;
        };
        self.moves.next_token += 1;
        let token = self.moves.next_token;
        if !ipc.send(token, IpcRequest::proxy_all(command)) {
            return false;
        }
        self.moves.kicks.insert(token, purpose);
        true
    }

    /// A kick the ring asked for; with `Some(hash)` the ring hears when it is done.
    pub(super) fn send_ring_kick(&mut self, command: KickCommand, hash: Option<u32>) -> bool {
        let purpose = hash.map_or(KickPurpose::Admin, KickPurpose::Ring);
        self.send_kick(command, purpose)
    }

    /// doveadm USER-KICK / USER-KICK-ALT (§6.11-6.12): OK once sent, TRYAGAIN with `nowait`
    /// when throttled, else deferred until a kick finishes.
    pub(super) fn admin_kick(
        &mut self,
        kick: AdminKick,
        nowait: bool,
        reply: oneshot::Sender<AdminReply>,
    ) {
        if self.moves.kicking() < self.settings.max_parallel_kicks as usize {
            self.kick_now(kick, reply);
        } else if nowait {
            let _ = reply.send(status(Status::TryAgain));
        } else {
            self.moves
                .deferred_kicks
                .push_back(DeferredKick { kick, reply });
        }
    }

    /// Kicks locally; a ring director also sends USER-KICK / USER-KICK-ALT to the ring (the
    /// ring answers with the local kick as a [`crate::ring::RingEffect`]).
    fn kick_now(&mut self, kick: AdminKick, reply: oneshot::Sender<AdminReply>) {
        if self.ring.is_some() {
            let cmd = match kick {
                AdminKick::User(user) => crate::ring::AdminCmd::UserKick(user),
                AdminKick::Alt { field, value } => {
                    crate::ring::AdminCmd::UserKickAlt { field, value }
                }
            };
            self.ring_handle(crate::ring::RingEvent::Admin(cmd));
        } else {
            let command = match &kick {
                AdminKick::User(user) => KickCommand::kick(user),
                AdminKick::Alt { field, value } => KickCommand::kick_alt(field, value),
            };
            if !self.send_kick(command, KickPurpose::Admin) {
                // Only at shutdown: the ipc task is gone.
                error!("ipc: kick not sent (ipc client stopped)");
            }
        }
        // Dovecot answers OK without waiting for the kick's result (§6.11).
        let _ = reply.send(status(Status::Ok));
    }

    /// An ipc command finished.
    pub(super) fn kick_done(&mut self, token: u64, result: Result<String, String>) {
        let Some(purpose) = self.moves.kicks.remove(&token) else {
            return;
        };
        match purpose {
            KickPurpose::Admin => {
                if let Err(e) = &result {
                    error!("Failed to kick user: {e}");
                }
            }
            KickPurpose::Forced => {
                if let Err(e) = &result {
                    error!("Failed to kick user connections: {e}");
                }
            }
            KickPurpose::Ring(hash) => {
                if let Err(e) = &result {
                    error!("Failed to kill user {hash} connections: {e}");
                }
                self.ring_handle(crate::ring::RingEvent::KickDone { hash });
            }
            KickPurpose::Move(key) => {
                if let Err(e) = &result {
                    error!("Failed to kill user {} connections: {e}", key.hash);
                }
                self.after_kill(key);
            }
        }
        // A slot is free: run one throttled doveadm kick.
        while self.moves.kicking() < self.settings.max_parallel_kicks as usize {
            let Some(d) = self.moves.deferred_kicks.pop_front() else {
                break;
            };
            // Dovecot completes the kick even when doveadm went away meanwhile.
            self.kick_now(d.kick, d.reply);
        }
    }

    /// Starts the kill step of a freshly started move (or nothing if one was running).
    pub(super) fn begin_move(&mut self, started: MoveStarted) {
        if started.restarted {
            return;
        }
        let now_ms = self.clock.now_ms();
        self.moves
            .move_deadline
            .insert(started.key, now_ms + USER_MOVE_TIMEOUT_MS);
        let command = KickCommand::KickDirectorHash {
            hash: started.key.hash,
            except_ip: None,
        };
        if started.kick && self.send_kick(command, KickPurpose::Move(started.key)) {
            return;
        }
        if started.kick {
            error!(
                "Failed to kill user {} connections: ipc client stopped",
                started.key.hash
            );
        }
        self.after_kill(started.key);
    }

    /// The local kill finished: flush (if configured and the user had an old host), or wait
    /// the kick delay.
    fn after_kill(&mut self, key: UserKey) {
        let flush_configured = !self.settings.flush_socket.is_empty();
        let next = self.dir.kill_finished(key, flush_configured);
        self.continue_move(key, next);
    }

    /// The flush program of a move finished (a ring director's ring continues the move).
    pub(super) fn flush_done(&mut self, key: UserKey, success: bool) {
        if self.ring.is_some() {
            self.ring_handle(crate::ring::RingEvent::FlushDone { key, success });
            return;
        }
        let next = self.dir.flush_finished(key, success);
        self.continue_move(key, next);
    }

    fn continue_move(&mut self, key: UserKey, next: AfterKill) {
        match next {
            AfterKill::Delay => {
                // The kick delay replaces the 30 s move timer.
                self.moves.move_deadline.remove(&key);
                let at = self.clock.now_ms() + self.settings.user_kick_delay_ms;
                self.moves.delay_deadline.insert(key, at);
            }
            AfterKill::Flush(job) => {
                if !self.start_flush(job) {
                    self.flush_done(job.key, false);
                }
            }
            AfterKill::Gone => {
                self.moves.move_deadline.remove(&key);
                self.move_finished();
            }
        }
    }

    /// Runs the flush in a helper task; it reports back with [`Event::FlushDone`]. The 30 s
    /// move timer keeps running meanwhile. False if it could not start (shutting down).
    pub(super) fn start_flush(&mut self, job: FlushJob) -> bool {
        let hostname = self.dir.host(job.new_ip).and_then(|h| h.hostname.clone());
        let req = FlushRequest {
            hash: job.key.hash,
            old_ip: job.old_host.ip,
            new_ip: job.new_ip,
            old_host_down: job.old_host.down,
            old_vhost_count: job.old_host.vhost_count,
        };
        let Some(tx) = self.self_tx.clone() else {
            return false;
        };
        let base_dir = self.settings.base_dir.clone();
        let template = self.settings.flush_socket.clone();
        let key = job.key;
        tokio::spawn(async move {
            let success = flush::run(&template, &base_dir, req, hostname.as_deref()).await;
            if let Some(tx) = tx.upgrade() {
                let _ = tx.send(Event::FlushDone { key, success }).await;
            }
        });
        true
    }

    /// A move ended (normally or by timeout): waiting requests and resets may continue.
    pub(super) fn move_finished(&mut self) {
        self.retry_delayed();
        self.continue_resets();
    }

    /// Timer work for moves.
    pub(super) fn fire_move_timers(&mut self, now_ms: u64) {
        let delays: Vec<UserKey> = self
            .moves
            .delay_deadline
            .iter()
            .filter(|(_, &at)| at <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        for key in delays {
            self.moves.delay_deadline.remove(&key);
            self.dir.move_delay_finished(key);
            self.move_finished();
        }
        let timeouts: Vec<UserKey> = self
            .moves
            .move_deadline
            .iter()
            .filter(|(_, &at)| at <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        for key in timeouts {
            self.moves.move_deadline.remove(&key);
            if let Some(state) = self.dir.move_timed_out(key) {
                error!(
                    "Finishing user {} move timed out, its state may now be inconsistent (state={})",
                    key.hash,
                    state.name()
                );
            }
            self.move_finished();
        }
    }

    /// HOST-RESET-USERS (§6.7): `ip` None = all hosts. Replies once every host was walked.
    pub(super) fn reset_users(
        &mut self,
        ip: Option<IpAddr>,
        max_parallel: Option<NonZeroU32>,
        reply: oneshot::Sender<AdminReply>,
    ) {
        let hosts: VecDeque<IpAddr> = match ip {
            Some(ip) if self.dir.host(ip).is_none() => {
                let _ = reply.send(status(Status::NotFound));
                return;
            }
            Some(ip) => [ip].into(),
            None => self.dir.host_list().map(|h| h.ip).collect(),
        };
        self.moves.resets.push_back(ResetJob {
            host_count: hosts.len(),
            hosts,
            users: None,
            moved: 0,
            kicked_any: false,
            max_parallel: max_parallel.map_or(self.settings.max_parallel_moves, |n| n.get()),
            started: std::time::Instant::now(),
            reply,
        });
        // The first walk runs whatever the ring's state (Dovecot runs it from the command).
        self.walk_resets();
    }

    /// Resumes paused reset jobs after a move ended (a ring director's only while the ring
    /// is synced).
    pub(super) fn continue_resets(&mut self) {
        if self.ring.as_ref().is_some_and(|r| !r.sync.synced) {
            return;
        }
        self.walk_resets();
    }

    /// Advances every reset job as far as the move limit allows.
    fn walk_resets(&mut self) {
        let mut jobs = std::mem::take(&mut self.moves.resets);
        let mut unfinished = VecDeque::new();
        while let Some(mut job) = jobs.pop_front() {
            if self.walk(&mut job) {
                let _ = job.reply.send(status(Status::Ok));
            } else {
                unfinished.push_back(job);
            }
        }
        // Jobs added while walking (none today) keep their order after the old ones.
        unfinished.append(&mut self.moves.resets);
        self.moves.resets = unfinished;
    }

    /// Walks a job; true when every host is done.
    fn walk(&mut self, job: &mut ResetJob) -> bool {
        loop {
            if self.dir.moving_count() >= job.max_parallel as usize {
                return false;
            }
            let now = self.clock.now_secs();
            let (ip, users, pos) = match &mut job.users {
                Some(w) => w,
                None => {
                    let Some(ip) = job.hosts.pop_front() else {
                        return true;
                    };
                    let users = self.dir.users_of_host(ip, now).unwrap_or_default();
                    job.kicked_any = false;
                    job.users = Some((ip, users, 0));
                    continue;
                }
            };
            let ip = *ip;
            if *pos >= users.len() {
                if job.kicked_any {
                    self.flush_host(ip);
                }
                let elapsed = job.started.elapsed();
                // Dovecot logs the running totals after each host.
                info!(
                    "Moved {} users in {} hosts in {}.{:03} secs (max parallel={})",
                    job.moved,
                    job.host_count,
                    elapsed.as_secs(),
                    elapsed.subsec_millis(),
                    job.max_parallel
                );
                job.users = None;
                continue;
            }
            let key = users[*pos];
            *pos += 1;
            let Some(user) = self.dir.user(key) else {
                continue;
            };
            // The user may have moved elsewhere since the walk's snapshot.
            if self.dir.hosts().get(user.host).ip != ip {
                continue;
            }
            let tag = self.dir.tags()[key.tag as usize].name.clone();
            match self.dir.choose(&tag, key.hash) {
                Some(target) if target == ip => {}
                Some(target) => {
                    if self.reset_move(key.hash, target, now) {
                        job.moved += 1;
                    }
                }
                None => {
                    job.kicked_any = true;
                    job.moved += 1;
                    let command = KickCommand::KickDirectorHash {
                        hash: key.hash,
                        except_ip: None,
                    };
                    if !self.send_kick(command, KickPurpose::Forced) {
                        warn!("ipc client stopped: user {} not kicked", key.hash);
                    }
                }
            }
        }
    }
}

impl Owner {
    /// One HOST-RESET-USERS move: over the ring (USER-MOVE, our origin) or locally.
    fn reset_move(&mut self, hash: u32, target: IpAddr, now: u64) -> bool {
        if self.ring.is_some() {
            let cmd = crate::ring::AdminCmd::ResetMove { hash, ip: target };
            self.ring_handle(crate::ring::RingEvent::Admin(cmd));
            return true;
        }
        match self.dir.start_move(hash, target, now, true) {
            Some(started) => {
                self.begin_move(started);
                true
            }
            None => false,
        }
    }

    /// Forgets a host's users (HOST-FLUSH): a ring director tells the ring.
    pub(super) fn flush_host(&mut self, ip: IpAddr) {
        if self.ring.is_some() {
            let cmd = crate::ring::AdminCmd::HostFlush(ip);
            self.ring_handle(crate::ring::RingEvent::Admin(cmd));
        } else {
            let _ = self.dir.host_flush(Some(ip));
        }
    }
}

/// A one-line status reply.
pub(super) fn status(s: Status) -> AdminReply {
    let mut out = Vec::new();
    s.encode(&mut out);
    AdminReply::Bytes(out)
}
