//! The pure user-directory core: hosts, tags, vhost rings, user entries and moves.
//!
//! Replaces Dovecot's `src/director/mail-host.c` and `user-directory.c` plus the state
//! changes of `director.c` (`user-directory.md`, `ring-protocol.md` §§1.2-1.3, 7, 8.3).
//! No sockets, no clock (`now` is always a parameter), no randomness. [`Directory`] is the
//! facade the daemon and the tests use.

mod directory;
mod host_cmds;
mod hosts;
mod index;
mod invariants;
mod moves;
mod tag;
mod users;
mod vhost;

#[cfg(test)]
mod tests;

pub use directory::{
    Directory, MoveInfo, OldHost, RequestOutcome, TagState, UserKey,
    USER_BEING_KILLED_EXPIRE_RETRY_SECS, USER_NEAR_EXPIRING_MAX, USER_NEAR_EXPIRING_MIN,
};
pub use host_cmds::{HostNotFound, HostSetOutcome, UpDownOutcome};
pub use hosts::{
    hosts_hash, HostId, HostTable, MailHost, TagId, DEFAULT_VHOST_COUNT, MAX_VHOST_COUNT,
};
pub use moves::{AfterKill, FlushJob, MoveStarted, UserMoveOutcome};
pub use tag::Tag;
pub use users::{KillState, User, UserDirectory};
pub use vhost::{vhost_key, VhostRing};
