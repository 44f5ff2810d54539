//! User moves and their kill/flush/delay states, as data.
//!
//! Replaces the state changes of `director_move_user()`, `director_kill_user()`,
//! `director_finish_user_kill()`, `director_flush_user()` and the move timeouts in
//! Dovecot's `src/director/director.c` (`user-directory.md` §7, `ring-protocol.md` §8.3).
//! The daemon owns the timers (30 s move timeout, kick delay), the ipc kick and the flush
//! program; it reports their completion here by [`UserKey`], and every call tolerates the
//! user having disappeared meanwhile.

use super::directory::{kill_of, Directory, MoveInfo, OldHost, UserKey};
use super::users::KillState;
use std::net::IpAddr;

/// What starting a move did (`director_move_user`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoveStarted {
    /// The moved entry.
    pub key: UserKey,
    /// Where the user was before (`None`: unknown until now; the same host: only refreshed).
    pub old_host: Option<IpAddr>,
    /// Send `KICK-DIRECTOR-HASH <hash>` and report [`Directory::kill_finished`] when the kick
    /// completes; otherwise the kill is already finished and the caller must call
    /// [`Directory::kill_finished`] at once (after broadcasting USER-MOVE).
    pub kick: bool,
    /// A move of this user was already running; it continues in its current state and the
    /// caller starts nothing new.
    pub restarted: bool,
}

/// Result of doveadm USER-MOVE (`admin-protocol.md` §6.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserMoveOutcome {
    /// A move started (reply `OK`).
    Moved(MoveStarted),
    /// Already on that host: timestamp refreshed (reply `OK`, ring `USER` update).
    Refreshed,
    /// No such host (`NOTFOUND`).
    NotFound,
    /// A move or kick of the user is in progress (`TRYAGAIN`).
    TryAgain,
}

/// The flush program run to do after a move (`auth-proxy.md` §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushJob {
    /// The moved user.
    pub key: UserKey,
    /// The host the user left.
    pub old_host: OldHost,
    /// The host the user is on now.
    pub new_ip: IpAddr,
}

/// What follows a finished local kill on a stand-alone director.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterKill {
    /// Run the flush program, then call [`Directory::flush_finished`].
    Flush(FlushJob),
    /// Wait `director_user_kick_delay`, then call [`Directory::move_delay_finished`] (this
    /// replaces the 30 s move timer).
    Delay,
    /// The user or its move is gone; nothing to do.
    Gone,
}

impl Directory {
    /// doveadm USER-MOVE: move `hash` (in the target host's tag) to host `ip`.
    pub fn user_move(&mut self, hash: u32, ip: IpAddr, now: u64) -> UserMoveOutcome {
        let Some(id) = self.hosts.find(ip) else {
            return UserMoveOutcome::NotFound;
        };
        let tag = self.hosts.get(id).tag_id;
        match self.lookup(tag, hash, now) {
            Some(user) if user.kill.is_some() => UserMoveOutcome::TryAgain,
            Some(user) if user.host == id => {
                self.tags[tag as usize].users.refresh(hash, now);
                UserMoveOutcome::Refreshed
            }
            _ => match self.start_move(hash, ip, now, true) {
                Some(started) => UserMoveOutcome::Moved(started),
                None => UserMoveOutcome::NotFound,
            },
        }
    }

    /// `director_move_user`: assign `hash` to host `ip` in that host's tag and start its
    /// kill, unless one is already running. `self_initiated` is false for ring USER-MOVE.
    /// `None` if the host does not exist.
    pub fn start_move(
        &mut self,
        hash: u32,
        ip: IpAddr,
        now: u64,
        self_initiated: bool,
    ) -> Option<MoveStarted> {
        let id = self.hosts.find(ip)?;
        let tag = self.hosts.get(id).tag_id;
        let key = UserKey { tag, hash };
        let old = match self.lookup(tag, hash, now) {
            None => {
                self.add_user(tag, hash, id, now, now);
                None
            }
            Some(user) => {
                let old = self.hosts.get(user.host);
                let old = OldHost {
                    ip: old.ip,
                    down: old.down,
                    vhost_count: old.vhost_count,
                };
                self.set_user_host(key, id);
                // Dovecot sets the timestamp without moving the entry in the expiry list.
                self.tags[tag as usize].users.bump_in_place(hash, now);
                Some(old)
            }
        };
        let old_host = old.map(|o| o.ip);
        if kill_of(self, key).is_some() {
            return Some(MoveStarted {
                key,
                old_host,
                kick: false,
                restarted: true,
            });
        }
        self.tags[tag as usize]
            .users
            .set_kill(hash, Some(KillState::Killing));
        self.moves.insert(
            key,
            MoveInfo {
                old_host: old,
                self_initiated,
            },
        );
        Some(MoveStarted {
            key,
            old_host,
            kick: old_host.is_some_and(|o| o != ip),
            restarted: false,
        })
    }

    /// The move data of a user being moved.
    pub fn move_info(&self, key: UserKey) -> Option<MoveInfo> {
        self.moves.get(&key).copied()
    }

    /// Set a moving user's kill state (ring USER-KILLED handling); false if it has none.
    pub fn set_kill_state(&mut self, key: UserKey, state: KillState) -> bool {
        if !self.moves.contains_key(&key) {
            return false;
        }
        self.tags[key.tag as usize]
            .users
            .set_kill(key.hash, Some(state));
        true
    }

    /// The kill state of a user being moved.
    pub fn kill_state(&self, key: UserKey) -> Option<KillState> {
        kill_of(self, key)
    }

    /// The local kill (kick) finished on a stand-alone director: flush if this director
    /// started the move, a flush program is configured and the user had an old host;
    /// otherwise wait the kick delay.
    pub fn kill_finished(&mut self, key: UserKey, flush_configured: bool) -> AfterKill {
        let Some(info) = self.moves.get(&key).copied() else {
            return AfterKill::Gone;
        };
        let Some(user) = self.user(key) else {
            return AfterKill::Gone;
        };
        match (info.old_host, flush_configured && info.self_initiated) {
            (Some(old_host), true) => {
                self.set_kill_state(key, KillState::Flushing);
                AfterKill::Flush(FlushJob {
                    key,
                    old_host,
                    new_ip: self.hosts.get(user.host).ip,
                })
            }
            _ => {
                self.set_kill_state(key, KillState::Delay);
                AfterKill::Delay
            }
        }
    }

    /// The flush program finished: success ends the move at once, failure waits the kick
    /// delay ([`AfterKill::Delay`]).
    pub fn flush_finished(&mut self, key: UserKey, success: bool) -> AfterKill {
        if kill_of(self, key) != Some(KillState::Flushing) {
            return AfterKill::Gone;
        }
        if success {
            self.finish_move(key);
            AfterKill::Gone
        } else {
            self.set_kill_state(key, KillState::Delay);
            AfterKill::Delay
        }
    }

    /// The kick delay passed: the move is over. False if there was nothing to finish.
    pub fn move_delay_finished(&mut self, key: UserKey) -> bool {
        if kill_of(self, key) != Some(KillState::Delay) {
            return false;
        }
        self.finish_move(key);
        true
    }

    /// The 30 s move timer fired: drop the move and return the state it was stuck in, for
    /// `Finishing user <hash> move timed out, its state may now be inconsistent (state=..)`.
    /// `None` if the move already ended (or is in the delay, which has its own timer).
    pub fn move_timed_out(&mut self, key: UserKey) -> Option<KillState> {
        let state = kill_of(self, key)?;
        if state == KillState::Delay {
            return None;
        }
        self.finish_move(key);
        Some(state)
    }

    /// Free the move context; the entry itself stays.
    fn finish_move(&mut self, key: UserKey) {
        self.moves.remove(&key);
        self.tags[key.tag as usize].users.set_kill(key.hash, None);
    }
}
