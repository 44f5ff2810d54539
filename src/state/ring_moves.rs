//! The ring half of user moves: `USER-KILLED` and `USER-KILLED-EVERYWHERE` (state only).
//!
//! Mirrors `director_finish_user_kill()`, `director_user_tag_killed()` and
//! `director_user_tag_killed_everywhere()` in Dovecot's `src/director/director.c`
//! (`ring-protocol.md` §8.3). The caller sends the lines the returned steps ask for and
//! arms the timers; [`Directory::kill_finished`] is the stand-alone (and "flush now") step.

use super::directory::{Directory, UserKey};
use super::hosts::TagId;
use super::moves::AfterKill;
use super::users::KillState;

/// What to do after a user's local kill finished, in a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingKillStep {
    /// Send `USER-KILLED\t<hash>` to the right neighbour (state is now
    /// `waiting-for-everyone`).
    SendUserKilled,
    /// Wait for `USER-KILLED` from the left (state `waiting-for-notify`).
    WaitForNotify,
    /// No right neighbour: the move proceeds as when alone.
    Alone(AfterKill),
    /// The user or its move is gone.
    Gone,
}

/// What a received `USER-KILLED` did to one tag's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserKilledStep {
    /// `killing` → `notify-received`; nothing to send.
    NotifyReceived,
    /// Our kill had finished: forward as [`RingKillStep`] says.
    Finished(RingKillStep),
    /// Already `notify-received`: ignored.
    Ignored,
    /// A restarted or finishing move: broadcast `USER-KILLED-EVERYWHERE` with our origin so
    /// nobody hangs.
    SendKilledEverywhere,
    /// It went round the ring: broadcast `USER-KILLED-EVERYWHERE` with our origin, and the
    /// move continues as [`AfterKill`] says (flush or delay).
    KilledEverywhere(AfterKill),
}

impl Directory {
    /// The local kill of `key` finished (ipc kick reply, or at once without a kick).
    /// `notified` is true when called for a `USER-KILLED` that found us waiting, which
    /// Dovecot treats like a self-initiated move.
    pub fn kill_finished_ring(
        &mut self,
        key: UserKey,
        notified: bool,
        have_right: bool,
        flush_configured: bool,
    ) -> RingKillStep {
        let Some(info) = self.move_info(key) else {
            return RingKillStep::Gone;
        };
        let Some(state) = self.kill_state(key) else {
            return RingKillStep::Gone;
        };
        if !have_right {
            return RingKillStep::Alone(self.kill_finished(key, flush_configured));
        }
        if notified || info.self_initiated || state == KillState::NotifyReceived {
            self.set_kill_state(key, KillState::WaitingForEveryone);
            RingKillStep::SendUserKilled
        } else {
            self.set_kill_state(key, KillState::WaitingForNotify);
            RingKillStep::WaitForNotify
        }
    }

    /// A `USER-KILLED\t<hash>` arrived: apply it to the entry of every tag (creation order).
    /// Tags without a moving entry for `hash` are left out (and nothing is forwarded).
    pub fn user_killed(
        &mut self,
        hash: u32,
        have_right: bool,
        flush_configured: bool,
        now: u64,
    ) -> Vec<(UserKey, UserKilledStep)> {
        let mut steps = Vec::new();
        for tag in 0..self.tags.len() as TagId {
            let key = UserKey { tag, hash };
            let Some(user) = self.lookup(tag, hash, now) else {
                continue;
            };
            let Some(state) = user.kill else {
                continue;
            };
            let step =
                match state {
                    KillState::Killing => {
                        self.set_kill_state(key, KillState::NotifyReceived);
                        UserKilledStep::NotifyReceived
                    }
                    KillState::WaitingForNotify => UserKilledStep::Finished(
                        self.kill_finished_ring(key, true, have_right, flush_configured),
                    ),
                    KillState::NotifyReceived => UserKilledStep::Ignored,
                    KillState::None | KillState::Flushing | KillState::Delay => {
                        UserKilledStep::SendKilledEverywhere
                    }
                    KillState::WaitingForEveryone => {
                        UserKilledStep::KilledEverywhere(self.kill_finished(key, flush_configured))
                    }
                };
            steps.push((key, step));
        }
        steps
    }

    /// A new `USER-KILLED-EVERYWHERE` for `hash` arrived: every entry waiting for it goes on
    /// to flush or delay. Forward the line (origin kept, except the sender) if any did.
    pub fn user_killed_everywhere(
        &mut self,
        hash: u32,
        flush_configured: bool,
        now: u64,
    ) -> Vec<(UserKey, AfterKill)> {
        let mut steps = Vec::new();
        for tag in 0..self.tags.len() as TagId {
            let key = UserKey { tag, hash };
            let waiting = self
                .lookup(tag, hash, now)
                .is_some_and(|u| u.kill == Some(KillState::WaitingForEveryone));
            if waiting {
                steps.push((key, self.kill_finished(key, flush_configured)));
            }
        }
        steps
    }
}
