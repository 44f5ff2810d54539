//! User moves over the ring (§8.3): USER-MOVE, the local kill, the USER-KILLED round,
//! USER-KILLED-EVERYWHERE, the flush program of the director that started the move, the
//! kick delay and the 30 s move timeout.

use super::facade::Ring;
use super::hosts::Seen;
use super::peer::DirAddr;
use super::{ConnId, RingEffect};
use crate::state::{AfterKill, KillState, MoveStarted, UserKey};
use director_parsers::ring::{Command, Origin};
use std::net::IpAddr;

/// A move that does not finish is dropped after this long (§8.3).
pub(super) const MOVE_TIMEOUT_MS: u64 = 30_000;
/// Default `director_user_kick_delay` ([`Ring::with_move_settings`] sets the configured one).
pub(super) const KICK_DELAY_MS: u64 = 2_000;

impl Ring {
    /// USER-MOVE received (§8.3).
    pub(super) fn on_user_move(&mut self, id: ConnId, origin: Origin, hash: u32, ip: IpAddr) {
        let Seen::New(fwd) = self.seen_check(origin) else {
            return;
        };
        if self.dir.host(ip).is_none() {
            return;
        }
        let from = self.peer_of(id);
        self.move_user(hash, ip, fwd, from, false);
    }

    /// Assign, broadcast USER-MOVE (before the kill: 3638fd7bb3), start the kill.
    pub(super) fn move_user(
        &mut self,
        hash: u32,
        ip: IpAddr,
        origin: Origin,
        from: Option<DirAddr>,
        ours: bool,
    ) {
        let now = self.secs();
        let Some(started) = self.dir.start_move(hash, ip, now, ours) else {
            return;
        };
        self.move_started(started, origin, ip, from);
    }

    /// After `start_move`: broadcast USER-MOVE, then (unless the move was already running)
    /// start the 30 s timer and the local kill.
    pub(super) fn move_started(
        &mut self,
        started: MoveStarted,
        origin: Origin,
        ip: IpAddr,
        from: Option<DirAddr>,
    ) {
        let hash = started.key.hash;
        self.broadcast(&Command::UserMove { origin, hash, ip }, from);
        if started.restarted {
            return;
        }
        self.move_deadlines.insert(
            (started.key.tag, started.key.hash),
            self.now_ms + MOVE_TIMEOUT_MS,
        );
        if started.kick {
            self.out.push(RingEffect::Kick {
                hash,
                except: Some(ip),
            });
        } else {
            self.kill_finished(started.key);
        }
    }

    /// The local kick of a moving user finished.
    pub(super) fn kick_done(&mut self, hash: u32) {
        for tag in 0..self.dir.tags().len() as u32 {
            let key = UserKey { tag, hash };
            if matches!(
                self.dir.kill_state(key),
                Some(KillState::Killing | KillState::NotifyReceived)
            ) {
                self.kill_finished(key);
            }
        }
    }

    fn kill_finished(&mut self, key: UserKey) {
        let Some(info) = self.dir.move_info(key) else {
            return;
        };
        let state = self.dir.kill_state(key);
        match self.right {
            None => self.flush_user(key),
            Some(right) if info.self_initiated || state == Some(KillState::NotifyReceived) => {
                self.send(right, &Command::UserKilled { hash: key.hash });
                self.dir.set_kill_state(key, KillState::WaitingForEveryone);
            }
            Some(_) => {
                self.dir.set_kill_state(key, KillState::WaitingForNotify);
            }
        }
    }

    /// The kill went round the ring: the director that started the move runs the flush
    /// program (if configured and the user had an old host); everyone else, or without one,
    /// waits the kick delay (§8.3 "Flush").
    fn flush_user(&mut self, key: UserKey) {
        let next = self.dir.kill_finished(key, self.flush_configured);
        self.after_flush_step(key, next);
    }

    /// The flush program of a move we started finished.
    pub(super) fn flush_done(&mut self, key: UserKey, success: bool) {
        let next = self.dir.flush_finished(key, success);
        self.after_flush_step(key, next);
    }

    fn after_flush_step(&mut self, key: UserKey, next: AfterKill) {
        match next {
            // The 30 s move timer keeps running while the program runs.
            AfterKill::Flush(job) => self.out.push(RingEffect::Flush(job)),
            AfterKill::Delay => {
                self.move_deadlines
                    .insert((key.tag, key.hash), self.now_ms + self.kick_delay_ms);
            }
            AfterKill::Gone => {
                self.move_deadlines.remove(&(key.tag, key.hash));
            }
        }
    }

    pub(super) fn on_user_killed(&mut self, hash: u32) {
        for tag in 0..self.dir.tags().len() as u32 {
            let key = UserKey { tag, hash };
            let Some(state) = self.dir.kill_state(key) else {
                continue;
            };
            match state {
                KillState::Killing => {
                    self.dir.set_kill_state(key, KillState::NotifyReceived);
                }
                KillState::NotifyReceived => {}
                KillState::WaitingForNotify => {
                    if let Some(right) = self.right {
                        self.send(right, &Command::UserKilled { hash });
                    }
                    self.dir.set_kill_state(key, KillState::WaitingForEveryone);
                }
                KillState::WaitingForEveryone => {
                    self.flush_user(key);
                    let origin = self.next_origin();
                    self.broadcast(&Command::UserKilledEverywhere { origin, hash }, None);
                }
                KillState::Flushing | KillState::Delay | KillState::None => {
                    let origin = self.next_origin();
                    self.broadcast(&Command::UserKilledEverywhere { origin, hash }, None);
                }
            }
        }
    }

    pub(super) fn on_user_killed_everywhere(&mut self, id: ConnId, origin: Origin, hash: u32) {
        let Seen::New(fwd) = self.seen_check(origin) else {
            return;
        };
        let from = self.peer_of(id);
        for tag in 0..self.dir.tags().len() as u32 {
            let key = UserKey { tag, hash };
            if self.dir.kill_state(key) == Some(KillState::WaitingForEveryone) {
                self.flush_user(key);
                self.broadcast(&Command::UserKilledEverywhere { origin: fwd, hash }, from);
            }
        }
    }

    /// Deadlines of moving users: the kick delay ends the move, else the 30 s timeout.
    pub(super) fn move_timers(&mut self) {
        let now = self.now_ms;
        let due: Vec<(u32, u32)> = self
            .move_deadlines
            .iter()
            .filter(|(_, &t)| t <= now)
            .map(|(k, _)| *k)
            .collect();
        for (tag, hash) in due {
            self.move_deadlines.remove(&(tag, hash));
            let key = UserKey { tag, hash };
            if self.dir.kill_state(key) == Some(KillState::Delay) {
                self.dir.move_delay_finished(key);
            } else if let Some(state) = self.dir.move_timed_out(key) {
                self.log_error(format!(
                    "Finishing user {} move timed out, its state may now be inconsistent \
                     (state={})",
                    key.hash,
                    state.name()
                ));
            }
        }
    }
}
