//! The director ring (`ring-protocol.md`): a pure, deterministic, sans-IO state machine.
//!
//! [`Ring`] owns the director list, the ring connections' protocol state and the
//! [`Directory`](crate::state::Directory) (hosts and users). The daemon feeds it [`RingEvent`]s with the current time
//! and carries out the returned [`RingEffect`]s (send a line, connect, close, arm a timer,
//! log). Nothing in here touches sockets, clocks or randomness, so the multi-director
//! simulation in `tests/ring_sim.rs` can replay any interleaving from a seed.
//!
//! Layout: `peer` (director records, ring order), `conn` (per-connection handshake),
//! `topology` (left/right, connect procedure, CONNECT, membership), `sync` (SYNC rounds),
//! `hosts` (HOST/HOST-REMOVE/HOST-FLUSH), `users` (USER merge, weak users, kicks), `moves`
//! (USER-MOVE and the kill protocol),
//! `liveness` (handshake timeouts, PING/PONG, socket failures), `timers` (timer dispatch,
//! invariants), `facade` (event dispatch).

mod conn;
mod facade;
mod hosts;
mod liveness;
mod moves;
mod peer;
mod stats;
mod sync;
mod timers;
mod topology;
mod users;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_live;
#[cfg(test)]
mod tests_moves;
#[cfg(test)]
mod tests_users;

pub use conn::{ConnInfo, ConnRole};
pub use facade::Ring;
pub use peer::DirAddr;
pub use stats::ConnStats;

use crate::state::{FlushJob, Tag, UserKey};
use std::net::IpAddr;

/// Identifies one ring TCP connection. Ids the ring allocates for its own outgoing
/// connections have [`ConnId::OUTGOING_BIT`] set; the daemon numbers accepted connections
/// below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl ConnId {
    /// Set in ids of connections the ring asked to open ([`RingEffect::Connect`]).
    pub const OUTGOING_BIT: u64 = 1 << 63;
}

/// Log severity of a [`RingEffect::Log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `-D` debug lines.
    Debug,
    /// Informational.
    Info,
    /// Warnings.
    Warning,
    /// Errors.
    Error,
}

/// Why a login request could not be routed yet (`ring-protocol.md` §6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// The first ring sync has not completed.
    RingNotHandshaked,
    /// A new user while the ring is unsynced.
    RingNotSynced,
    /// No usable host in the tag.
    NoHosts,
    /// The user is weak (waiting for USER-WEAK to come round).
    WeakUser,
    /// The user is being moved or kicked.
    KillWaiting,
}

/// Result of a [`RingEvent::Login`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing {
    /// Proxy the session to this backend.
    Host(IpAddr),
    /// Retry later (the daemon queues the request, 30 s limit).
    Wait(WaitReason),
}

/// A change requested on the admin socket; its ring traffic originates from us (§5.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCmd {
    /// HOST-SET / HOST-UPDATE: create the host if needed and set its vhost count.
    HostSet {
        /// Backend address.
        ip: IpAddr,
        /// Tag for a new host.
        tag: Tag,
        /// New vhost count (`None`: keep / default).
        vhosts: Option<u32>,
    },
    /// HOST-UP / HOST-DOWN.
    HostUpDown {
        /// Backend address.
        ip: IpAddr,
        /// True for HOST-DOWN.
        down: bool,
    },
    /// HOST-REMOVE.
    HostRemove(IpAddr),
    /// HOST-FLUSH of one host.
    HostFlush(IpAddr),
    /// USER-MOVE of a user hash to a host.
    UserMove {
        /// Username hash.
        hash: u32,
        /// Target backend.
        ip: IpAddr,
    },
    /// HOST-RESET-USERS: move a user (not on `ip`) to `ip`, the host the hash ring picks
    /// now, as if USER-MOVE'd from here (our origin, the kill protocol, our flush).
    ResetMove {
        /// Username hash.
        hash: u32,
        /// Target backend.
        ip: IpAddr,
    },
    /// USER-KICK of a username: kick locally ([`RingEffect::KickUser`]) and tell the ring.
    UserKick(Vec<u8>),
    /// USER-KICK-ALT: kick locally ([`RingEffect::KickAlt`]) and tell the ring.
    UserKickAlt {
        /// The passdb `user_*` field.
        field: Vec<u8>,
        /// Its value.
        value: Vec<u8>,
    },
    /// DIRECTOR-ADD.
    DirectorAdd(DirAddr),
    /// DIRECTOR-REMOVE.
    DirectorRemove(DirAddr),
}

/// Result of an [`AdminCmd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    /// Applied (and broadcast if it changed anything).
    Ok,
    /// Unknown host or director (`NOTFOUND`).
    NotFound,
    /// The host was changed since the last ring sync (`host is already being updated`).
    BeingUpdated,
    /// The user is being moved (`TRYAGAIN`).
    TryAgain,
    /// Invalid parameters (e.g. too many vhosts, tag change).
    Invalid,
}

/// Input to [`Ring::handle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingEvent {
    /// The daemon started: run the initial connect procedure.
    Start,
    /// A TCP connection is up: accepted (`incoming`, `peer` = source address with port 0 or
    /// the source port) or one we asked for with [`RingEffect::Connect`] now connected.
    Connected {
        /// The connection.
        conn: ConnId,
        /// Accepted rather than dialled.
        incoming: bool,
        /// The remote address.
        peer_ip: IpAddr,
    },
    /// One complete input line without its LF (CR already stripped).
    Line {
        /// The connection it arrived on.
        conn: ConnId,
        /// The line.
        bytes: Vec<u8>,
    },
    /// The remote side closed the connection (EOF), or it failed in a way the daemon does
    /// not describe further.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// The connection failed (§9.3, §9.4); the daemon has already dropped its socket.
    Failed {
        /// The connection.
        conn: ConnId,
        /// What happened.
        failure: ConnFailure,
    },
    /// The output asked for with [`RingEffect::WantWritable`] has been written.
    Writable {
        /// The connection.
        conn: ConnId,
    },
    /// The timer armed by [`RingEffect::ArmTimer`] fired (early calls are harmless).
    Timer,
    /// An admin command.
    Admin(AdminCmd),
    /// A login needs a backend for this user (created or refreshed locally).
    Login {
        /// The user's tag.
        tag: Tag,
        /// Username hash.
        hash: u32,
    },
    /// A proxy-notify refresh (`auth-proxy.md` §9): every tag's live entry for the hash gets
    /// timestamp now and is announced with `USER`; unknown users are ignored.
    Refresh {
        /// Username hash.
        hash: u32,
    },
    /// The local kick of a moving user finished (answers [`RingEffect::Kick`] with a hash).
    KickDone {
        /// Username hash.
        hash: u32,
    },
    /// The flush program of a move we started finished (answers [`RingEffect::Flush`]).
    FlushDone {
        /// The moved user.
        key: UserKey,
        /// The program reported success (the move ends at once; else the kick delay).
        success: bool,
    },
    /// Shut down: QUIT every connection.
    Shutdown,
}

/// How a ring connection failed, as reported by the daemon's socket layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnFailure {
    /// An input line did not fit in 1024 bytes: a protocol failure (60 s ban).
    TooLongLine,
    /// Queuing output would exceed `director_output_buffer_size`; this many bytes were
    /// buffered. Dovecot closes without a failure mark and reconnects.
    OutputFull(u64),
    /// A socket error, as `strerror` text (`connect() failed: ...`, `read(...) failed: ...`).
    Io(String),
}

/// Output of [`Ring::handle`], to be carried out in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingEffect {
    /// Write one line (with its LF) to a connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The complete line including `\n`.
        line: Vec<u8>,
    },
    /// Open a ring connection from our own address to a director.
    Connect {
        /// The id the ring will know the connection by.
        conn: ConnId,
        /// Target address.
        ip: IpAddr,
        /// Target ring port.
        port: u16,
    },
    /// Answer with [`RingEvent::Writable`] once everything queued on the connection so far
    /// has been written (handshake users wait for it between chunks, §4.6).
    WantWritable {
        /// The connection.
        conn: ConnId,
    },
    /// Close a connection (after flushing what was sent); the ring has already forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why (for the log).
        reason: String,
    },
    /// Call [`Ring::handle`] with [`RingEvent::Timer`] at this time (ms), replacing any
    /// earlier request.
    ArmTimer {
        /// Absolute time in milliseconds, same clock as `now`.
        at_ms: u64,
    },
    /// A log line; operators grep these texts (§10).
    Log {
        /// Severity.
        level: LogLevel,
        /// The text.
        text: String,
    },
    /// The ring's synced state changed.
    SyncedChanged(bool),
    /// Kick local sessions of a user hash except those on `except` (`KICK-DIRECTOR-HASH`);
    /// for a moving user the daemon answers with [`RingEvent::KickDone`].
    Kick {
        /// Username hash.
        hash: u32,
        /// Sessions on this backend stay.
        except: Option<IpAddr>,
    },
    /// Kick local sessions of a user hash except those on `except` without reporting back
    /// (`USER-KICK-HASH`, a conflict's kick); unlike [`RingEffect::Kick`] no move waits on it.
    KickHash {
        /// Username hash.
        hash: u32,
        /// Sessions on this backend stay.
        except: IpAddr,
    },
    /// Kick local sessions of a username (`KICK`).
    KickUser(Vec<u8>),
    /// Kick local sessions by an alternative username (`KICK-ALT <field> <value>`).
    KickAlt {
        /// The passdb `user_*` field.
        field: Vec<u8>,
        /// Its value.
        value: Vec<u8>,
    },
    /// Run the flush program of a move we started (`director_flush_socket`); the daemon
    /// answers with [`RingEvent::FlushDone`].
    Flush(FlushJob),
    /// The answer to a [`RingEvent::Login`].
    Routed {
        /// Username hash.
        hash: u32,
        /// Where to go, or why to wait.
        routing: Routing,
    },
    /// The answer to a [`RingEvent::Admin`].
    AdminDone(AdminOutcome),
}
