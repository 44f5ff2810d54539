//! The director admin protocol (`director-admin` socket, spoken by `doveadm director`).
//!
//! Replaces the wire half of Dovecot's `src/director/doveadm-connection.c` and
//! `src/doveadm/doveadm-director.c`; see `spec/admin-protocol.md` §§1-7.
//!
//! * [`Handshake`]: the `VERSION` line each side sends first.
//! * [`Request`]: one command line from doveadm; a parse error is a protocol failure whose
//!   log text [`Rejection`] reproduces.
//! * [`Reply`]: one line from the director; what a line means depends on the command it
//!   answers, so [`Reply::parse_for`] takes that [`Command`].
//!
//! Lines are given without their LF (and without a CR before it: the framer removes it).
//! The director reads at most [`crate::framing::DIRECTOR_MAX_LINE`] bytes per line, LF
//! included; frame with that limit and close the connection on a longer line.
//! Every field is tab-unescaped, and both directions behave like C strings: a raw NUL ends
//! the line, and a field that decodes to NUL ends at it.

mod director_list;
mod fields;
mod handshake;
mod reply;
mod request;

#[cfg(test)]
mod strategies;

pub use director_list::{
    ConnPeer, ConnStatus, ConnType, DirectorConn, DirectorHost, DirectorLine, HostType,
    LocalStatus, RingStatus,
};
pub use handshake::{Handshake, INCOMPATIBLE_LOG, SERVICE_NAME, VERSION_MAJOR, VERSION_MINOR};
pub use reply::{HostEntry, RemovedHost, Reply, Status, UserCurrent, UserEntry, UserLookup};
pub use request::{
    user_lookup_raw, HostSpec, Rejection, Request, UserArg, MAX_VALID_VHOST_COUNT,
    VHOST_COUNT_UNSET,
};

/// The 17 command names the director accepts (case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    /// `HOST-LIST`
    HostList,
    /// `HOST-LIST-REMOVED`
    HostListRemoved,
    /// `HOST-SET`
    HostSet,
    /// `HOST-UPDATE`
    HostUpdate,
    /// `HOST-UP`
    HostUp,
    /// `HOST-DOWN`
    HostDown,
    /// `HOST-REMOVE`
    HostRemove,
    /// `HOST-FLUSH`
    HostFlush,
    /// `HOST-RESET-USERS`
    HostResetUsers,
    /// `USER-LOOKUP`
    UserLookup,
    /// `USER-LIST`
    UserList,
    /// `USER-MOVE`
    UserMove,
    /// `USER-KICK`
    UserKick,
    /// `USER-KICK-ALT`
    UserKickAlt,
    /// `DIRECTOR-LIST`
    DirectorList,
    /// `DIRECTOR-ADD`
    DirectorAdd,
    /// `DIRECTOR-REMOVE`
    DirectorRemove,
}

impl Command {
    /// Every command, in Dovecot's table order.
    pub const ALL: [Command; 17] = [
        Command::HostList,
        Command::HostListRemoved,
        Command::DirectorList,
        Command::DirectorAdd,
        Command::DirectorRemove,
        Command::HostSet,
        Command::HostUpdate,
        Command::HostUp,
        Command::HostDown,
        Command::HostRemove,
        Command::HostFlush,
        Command::HostResetUsers,
        Command::UserLookup,
        Command::UserList,
        Command::UserMove,
        Command::UserKick,
        Command::UserKickAlt,
    ];

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Command::HostList => "HOST-LIST",
            Command::HostListRemoved => "HOST-LIST-REMOVED",
            Command::HostSet => "HOST-SET",
            Command::HostUpdate => "HOST-UPDATE",
            Command::HostUp => "HOST-UP",
            Command::HostDown => "HOST-DOWN",
            Command::HostRemove => "HOST-REMOVE",
            Command::HostFlush => "HOST-FLUSH",
            Command::HostResetUsers => "HOST-RESET-USERS",
            Command::UserLookup => "USER-LOOKUP",
            Command::UserList => "USER-LIST",
            Command::UserMove => "USER-MOVE",
            Command::UserKick => "USER-KICK",
            Command::UserKickAlt => "USER-KICK-ALT",
            Command::DirectorList => "DIRECTOR-LIST",
            Command::DirectorAdd => "DIRECTOR-ADD",
            Command::DirectorRemove => "DIRECTOR-REMOVE",
        }
    }

    /// The command with this exact (already unescaped) name.
    pub fn from_name(name: &[u8]) -> Option<Command> {
        Command::ALL
            .into_iter()
            .find(|c| c.name().as_bytes() == name)
    }

    /// `DOVEADM_DIRECTOR_CMD_FLAG_PRE_RING_SYNC`: parked until the ring is synced (§4).
    pub const fn waits_for_ring_sync(self) -> bool {
        matches!(
            self,
            Command::DirectorAdd
                | Command::DirectorRemove
                | Command::HostSet
                | Command::HostUpdate
                | Command::HostUp
                | Command::HostDown
                | Command::HostRemove
                | Command::HostFlush
        )
    }

    /// Whether the answer is a list of lines closed by an empty line (§7).
    pub const fn replies_with_list(self) -> bool {
        matches!(
            self,
            Command::HostList
                | Command::HostListRemoved
                | Command::UserList
                | Command::DirectorList
        )
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_are_case_sensitive() {
        for c in Command::ALL {
            assert_eq!(Command::from_name(c.name().as_bytes()), Some(c));
            assert_eq!(Command::from_name(c.name().to_lowercase().as_bytes()), None);
        }
        assert_eq!(Command::from_name(b"DIRECTOR-RING-STATUS"), None);
        assert_eq!(Command::from_name(b"USER-KICK-ALT?"), None);
        let pre_sync = Command::ALL
            .iter()
            .filter(|c| c.waits_for_ring_sync())
            .count();
        assert_eq!(pre_sync, 8);
    }
}
