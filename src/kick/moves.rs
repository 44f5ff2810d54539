//! Drives user moves through their kill, flush and delay states on a stand-alone director.
//!
//! [`crate::state::Directory`] holds each move's state (`KillState`, `MoveInfo`); this
//! adds what `src/director/director.c` and `doveadm-connection.c` keep next to it: the 30 s
//! move timer and the kick delay (`user-directory.md` §7.1), the link between a kick or
//! flush result and the move it belongs to, and HOST-RESET-USERS walks with their pause
//! and resume (`admin-protocol.md` §6.7). No I/O and no clock: every call takes `now` in
//! milliseconds and returns [`Effect`]s for the state owner to carry out.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use crate::state::{
    AfterKill, Directory, FlushJob, HostNotFound, KillState, UserKey, UserMoveOutcome,
};

/// A move that is not finished after this long is finished by force.
pub const MOVE_TIMEOUT_MS: u64 = 30_000;

/// Identifies one move, so that a late kick or flush result of an earlier, timed-out move
/// of the same user cannot advance a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MoveId(u64);

/// Something the state owner must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send `KICK-DIRECTOR-HASH <hash>` and report the result with [`Moves::kick_finished`].
    Kick {
        /// The move the kick belongs to.
        id: MoveId,
        /// The user hash to kick.
        hash: u32,
    },
    /// Send `KICK-DIRECTOR-HASH <hash>` for a user that has no host left
    /// (HOST-RESET-USERS); nothing waits for the result.
    ForcedKick {
        /// The user hash to kick.
        hash: u32,
    },
    /// Run the flush program and report with [`Moves::flush_finished`].
    Flush {
        /// The move the flush belongs to.
        id: MoveId,
        /// Who moved where.
        job: FlushJob,
        /// The new host's name in `director_mail_servers` (`%h`), if any.
        new_hostname: Option<String>,
    },
    /// The user's move is over: retry the requests waiting for it.
    MoveDone {
        /// The user.
        key: UserKey,
    },
    /// A HOST-RESET-USERS walk finished: reply `OK` to the admin connection that sent it
    /// (if it is still there) and read its next command.
    ResetDone {
        /// The token given to [`Moves::host_reset_users`].
        token: u64,
    },
    /// Log at info level.
    Info(String),
    /// Log at error level (Dovecot throttles these two texts; the logger may too).
    Error(String),
}

#[derive(Debug, Clone, Copy)]
struct Active {
    id: MoveId,
    deadline: u64,
}

#[derive(Debug)]
struct ResetWalk {
    token: u64,
    hosts: Vec<IpAddr>,
    host_idx: usize,
    /// The current host's users not looked at yet (`None`: host not started).
    users: Option<VecDeque<UserKey>>,
    users_killed: bool,
    reset_count: u32,
    max_parallel: usize,
    started: u64,
}

/// The move driver. See the module doc.
#[derive(Debug)]
pub struct Moves {
    kick_delay_ms: u64,
    flush_configured: bool,
    next_id: u64,
    active: HashMap<UserKey, Active>,
    /// Newest first, as Dovecot prepends them and resumes from the head.
    resets: VecDeque<ResetWalk>,
}

impl Moves {
    /// `kick_delay` is `director_user_kick_delay`; `flush_configured` is whether
    /// `director_flush_socket` is set.
    pub fn new(kick_delay: Duration, flush_configured: bool) -> Moves {
        Moves {
            kick_delay_ms: kick_delay.as_millis() as u64,
            flush_configured,
            next_id: 0,
            active: HashMap::new(),
            resets: VecDeque::new(),
        }
    }

    /// doveadm USER-MOVE (`admin-protocol.md` §6.10).
    pub fn user_move(
        &mut self,
        dir: &mut Directory,
        hash: u32,
        ip: IpAddr,
        now: u64,
    ) -> (UserMoveOutcome, Vec<Effect>) {
        let outcome = dir.user_move(hash, ip, now / 1000);
        let mut effects = Vec::new();
        if let UserMoveOutcome::Moved(started) = outcome {
            if !started.restarted {
                self.begin(dir, started.key, started.kick, now, &mut effects);
            }
        }
        (outcome, effects)
    }

    /// `director_move_user`: move `hash` to host `ip` (HOST-RESET-USERS, ring USER-MOVE
    /// with `self_initiated` false). Unknown host: nothing happens.
    pub fn move_user(
        &mut self,
        dir: &mut Directory,
        hash: u32,
        ip: IpAddr,
        now: u64,
        self_initiated: bool,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(started) = dir.start_move(hash, ip, now / 1000, self_initiated) {
            if !started.restarted {
                self.begin(dir, started.key, started.kick, now, &mut effects);
            }
        }
        effects
    }

    /// Step 4: arm the move timer and kick, or finish the kill at once.
    fn begin(
        &mut self,
        dir: &mut Directory,
        key: UserKey,
        kick: bool,
        now: u64,
        effects: &mut Vec<Effect>,
    ) {
        self.next_id += 1;
        let id = MoveId(self.next_id);
        self.active.insert(
            key,
            Active {
                id,
                deadline: now + MOVE_TIMEOUT_MS,
            },
        );
        if kick {
            effects.push(Effect::Kick { id, hash: key.hash });
        } else {
            self.after_kill(dir, key, id, now, effects);
        }
    }

    /// The move's kick finished. A failed kick is logged and the move goes on as if it
    /// had worked (`auth-proxy.md` §10.3).
    pub fn kick_finished(
        &mut self,
        dir: &mut Directory,
        id: MoveId,
        result: Result<(), String>,
        now: u64,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(key) = self.key_of(id) else {
            return effects;
        };
        if let Err(text) = result {
            effects.push(Effect::Error(format!(
                "Failed to kill user {} connections: {text}",
                key.hash
            )));
        }
        if dir.kill_state(key) == Some(KillState::Killing) {
            self.after_kill(dir, key, id, now, &mut effects);
        }
        effects
    }

    fn after_kill(
        &mut self,
        dir: &mut Directory,
        key: UserKey,
        id: MoveId,
        now: u64,
        effects: &mut Vec<Effect>,
    ) {
        match dir.kill_finished(key, self.flush_configured) {
            AfterKill::Flush(job) => {
                let new_hostname = dir.host(job.new_ip).and_then(|h| h.hostname.clone());
                effects.push(Effect::Flush {
                    id,
                    job,
                    new_hostname,
                });
            }
            AfterKill::Delay => self.start_delay(key, now),
            AfterKill::Gone => self.forget(dir, key, now, effects),
        }
    }

    /// The move's flush program finished.
    pub fn flush_finished(
        &mut self,
        dir: &mut Directory,
        id: MoveId,
        success: bool,
        now: u64,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(key) = self.key_of(id) else {
            return effects;
        };
        match dir.flush_finished(key, success) {
            AfterKill::Delay => self.start_delay(key, now),
            AfterKill::Flush(_) | AfterKill::Gone => self.finish(dir, key, now, &mut effects),
        }
        effects
    }

    /// Step 7: the kick delay replaces the 30 s timer.
    fn start_delay(&mut self, key: UserKey, now: u64) {
        if let Some(a) = self.active.get_mut(&key) {
            a.deadline = now + self.kick_delay_ms;
        }
    }

    /// When [`Moves::tick`] must be called next.
    pub fn next_deadline(&self) -> Option<u64> {
        self.active.values().map(|a| a.deadline).min()
    }

    /// Fire every timer due at `now`: finished kick delays and timed-out moves.
    pub fn tick(&mut self, dir: &mut Directory, now: u64) -> Vec<Effect> {
        let mut due: Vec<(UserKey, Active)> = self
            .active
            .iter()
            .filter(|(_, a)| a.deadline <= now)
            .map(|(k, a)| (*k, *a))
            .collect();
        due.sort_by_key(|(_, a)| (a.deadline, a.id));
        let mut effects = Vec::new();
        for (key, _) in due {
            match dir.kill_state(key) {
                Some(KillState::Delay) => {
                    dir.move_delay_finished(key);
                }
                Some(_) => {
                    if let Some(state) = dir.move_timed_out(key) {
                        effects.push(Effect::Error(format!(
                            "Finishing user {} move timed out, its state may now be \
                             inconsistent (state={})",
                            key.hash,
                            state.name()
                        )));
                    }
                }
                None => {}
            }
            self.finish(dir, key, now, &mut effects);
        }
        effects
    }

    /// Step 8: the move is over.
    fn finish(&mut self, dir: &mut Directory, key: UserKey, now: u64, effects: &mut Vec<Effect>) {
        self.active.remove(&key);
        effects.push(Effect::MoveDone { key });
        self.resume(dir, now, effects);
    }

    /// The user or its move vanished (host removed or flushed meanwhile).
    fn forget(&mut self, dir: &mut Directory, key: UserKey, now: u64, effects: &mut Vec<Effect>) {
        self.active.remove(&key);
        self.resume(dir, now, effects);
    }

    fn key_of(&self, id: MoveId) -> Option<UserKey> {
        self.active
            .iter()
            .find(|(_, a)| a.id == id)
            .map(|(k, _)| *k)
    }

    /// Moves this driver is timing (normally [`Directory::moving_count`]).
    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    /// HOST-RESET-USERS (`admin-protocol.md` §6.7): `ip` `None` walks every host.
    /// `max_parallel` is the argument or `director_max_parallel_moves`. The reply `OK`
    /// comes as [`Effect::ResetDone`] with `token`, maybe from a later call; meanwhile the
    /// admin connection reads no input.
    pub fn host_reset_users(
        &mut self,
        dir: &mut Directory,
        ip: Option<IpAddr>,
        max_parallel: u32,
        token: u64,
        now: u64,
    ) -> Result<Vec<Effect>, HostNotFound> {
        let mut hosts: Vec<IpAddr> = dir.host_list().map(|h| h.ip).collect();
        hosts.sort();
        if let Some(ip) = ip {
            let at = hosts.iter().position(|h| *h == ip).ok_or(HostNotFound)?;
            hosts.drain(..at);
            hosts.truncate(1);
        }
        self.resets.push_front(ResetWalk {
            token,
            hosts,
            host_idx: 0,
            users: None,
            users_killed: false,
            reset_count: 0,
            max_parallel: max_parallel.max(1) as usize,
            started: now,
        });
        let mut effects = Vec::new();
        self.resume(dir, now, &mut effects);
        Ok(effects)
    }

    /// Continue paused walks, newest first, until one must pause again.
    fn resume(&mut self, dir: &mut Directory, now: u64, effects: &mut Vec<Effect>) {
        while let Some(mut walk) = self.resets.pop_front() {
            if !self.walk(dir, &mut walk, now, effects) {
                self.resets.push_front(walk);
                return;
            }
            effects.push(Effect::ResetDone { token: walk.token });
        }
    }

    /// Run a walk as far as the move limit allows; true when every host is done.
    fn walk(
        &mut self,
        dir: &mut Directory,
        walk: &mut ResetWalk,
        now: u64,
        effects: &mut Vec<Effect>,
    ) -> bool {
        while let Some(&ip) = walk.hosts.get(walk.host_idx) {
            if dir.moving_count() >= walk.max_parallel {
                return false;
            }
            let users = walk.users.get_or_insert_with(|| {
                walk.users_killed = false;
                dir.users_of_host(ip, now / 1000)
                    .map(VecDeque::from)
                    .unwrap_or_default()
            });
            while let Some(key) = users.pop_front() {
                let on_host = dir
                    .user(key)
                    .is_some_and(|u| dir.hosts().get(u.host).ip == ip);
                if !on_host {
                    continue;
                }
                let tag = dir.tags()[key.tag as usize].name.clone();
                match dir.choose(&tag, key.hash) {
                    Some(new) if new == ip => continue,
                    Some(new) => effects.extend(self.move_user(dir, key.hash, new, now, true)),
                    None => {
                        effects.push(Effect::ForcedKick { hash: key.hash });
                        walk.users_killed = true;
                    }
                }
                walk.reset_count += 1;
                if dir.moving_count() >= walk.max_parallel {
                    return false;
                }
            }
            let msecs = now.saturating_sub(walk.started);
            effects.push(Effect::Info(format!(
                "Moved {} users in {} hosts in {}.{:03} secs (max parallel={})",
                walk.reset_count,
                walk.hosts.len(),
                msecs / 1000,
                msecs % 1000,
                walk.max_parallel
            )));
            walk.users = None;
            if walk.users_killed {
                // No backend is left for them: the kicks are out, forget the users.
                let _ = dir.host_flush(Some(ip));
            }
            walk.host_idx += 1;
        }
        true
    }
}
