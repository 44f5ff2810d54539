//! The pure user-directory core: hosts, tags, vhost rings, user entries and moves.
//!
//! Replaces Dovecot's `src/director/mail-host.c` and `user-directory.c` plus the state
//! changes of `director.c`, `director-request.c`, `doveadm-connection.c` and
//! `director-connection.c` (`user-directory.md`, `ring-protocol.md` §§1.2-1.3, 7, 8).
//! No sockets, no clock (`now` is always a parameter), no randomness. [`Directory`] is the
//! facade the daemon and the tests use; each method returns a typed outcome that says what
//! to reply, broadcast, kick or time next.

mod directory;
mod host_cmds;
mod hosts;
mod index;
mod invariants;
mod moves;
mod remote;
mod ring_moves;
mod ring_request;
mod tag;
mod users;
mod vhost;

#[cfg(test)]
mod tests;

pub use directory::{
    Directory, MoveInfo, OldHost, RequestOutcome, TagState, UserKey, UserListing,
    USER_BEING_KILLED_EXPIRE_RETRY_SECS, USER_NEAR_EXPIRING_MAX, USER_NEAR_EXPIRING_MIN,
};
pub use host_cmds::{HostNotFound, HostSetOutcome, RemoteHost, RemoteHostOutcome, UpDownOutcome};
pub use hosts::{
    hosts_hash, HostId, HostTable, MailHost, TagId, DEFAULT_VHOST_COUNT, MAX_VHOST_COUNT,
};
pub use moves::{AfterKill, FlushJob, MoveStarted, UserMoveOutcome};
pub use remote::{Conflict, RemoteRefresh, DIRECTOR_SKIP_RECENT_REFRESH_MAX_SECS};
pub use ring_moves::{RingKillStep, UserKilledStep};
pub use ring_request::{DelayReason, RingRequestOutcome, RingView};
pub use tag::Tag;
pub use users::{KillState, User, UserDirectory};
pub use vhost::{vhost_key, VhostRing};
