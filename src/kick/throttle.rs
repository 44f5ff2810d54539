//! doveadm USER-KICK / USER-KICK-ALT throttling by `director_max_parallel_kicks`
//! (`admin-protocol.md` §6.11-6.12).
//!
//! Replaces `doveadm_cmd_user_kick_run` and `doveadm_connections_kick_callback` in
//! `src/director/doveadm-connection.c`: a kick is sent only while fewer than the limit are
//! outstanding; otherwise `nowait` gets `TRYAGAIN` and anything else waits until a kick
//! finishes. Waiting kicks are retried newest first, as Dovecot keeps them in a list it
//! prepends to. Pure data: the owner passes the outstanding count
//! ([`super::KickHandle::outstanding`] or its own counter).

use std::collections::VecDeque;

/// What to do with a doveadm kick now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission<T> {
    /// Send it (and broadcast it, and reply `OK`).
    Send(T),
    /// Reply `TRYAGAIN`.
    TryAgain,
    /// It waits; [`KickThrottle::kick_finished`] hands it back later. The admin connection
    /// reads no input meanwhile.
    Deferred,
}

/// Doveadm kicks waiting for the outstanding count to drop.
#[derive(Debug)]
pub struct KickThrottle<T> {
    max: usize,
    /// Newest first.
    waiting: VecDeque<T>,
}

impl<T> KickThrottle<T> {
    /// A throttle for `director_max_parallel_kicks`.
    pub fn new(max_parallel_kicks: u32) -> Self {
        KickThrottle {
            max: max_parallel_kicks as usize,
            waiting: VecDeque::new(),
        }
    }

    /// A doveadm kick arrived while `outstanding` kicks (all sources) are unanswered.
    pub fn admit(&mut self, outstanding: usize, nowait: bool, kick: T) -> Admission<T> {
        if outstanding < self.max {
            Admission::Send(kick)
        } else if nowait {
            Admission::TryAgain
        } else {
            self.waiting.push_front(kick);
            Admission::Deferred
        }
    }

    /// Some kick finished and `outstanding` are left: the waiting kicks to send now,
    /// in order, as many as fit under the limit.
    pub fn kick_finished(&mut self, outstanding: usize) -> Vec<T> {
        let room = self.max.saturating_sub(outstanding);
        let n = room.min(self.waiting.len());
        self.waiting.drain(..n).collect()
    }

    /// Kicks waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nowait_gets_tryagain_and_others_wait_newest_first() {
        let mut t = KickThrottle::new(2);
        assert_eq!(t.admit(1, false, "a"), Admission::Send("a"));
        assert_eq!(t.admit(2, true, "b"), Admission::TryAgain);
        assert_eq!(t.admit(2, false, "c"), Admission::Deferred);
        assert_eq!(t.admit(2, false, "d"), Admission::Deferred);
        assert_eq!(t.waiting(), 2);
        assert_eq!(t.kick_finished(2), Vec::<&str>::new());
        assert_eq!(t.kick_finished(1), vec!["d"]);
        assert_eq!(t.kick_finished(0), vec!["c"]);
        assert_eq!(t.waiting(), 0);
    }
}
