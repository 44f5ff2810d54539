//! The messages connection tasks send to the state owner, and the owner's answers.
//!
//! Every request carries a `oneshot` sender for its answer: the owner completes it
//! synchronously (a `oneshot` send never waits), so the owner can never block on a slow
//! connection (aesthetics.md §8.3 rule 15). Connections send on a bounded `mpsc`; a full
//! channel makes them wait, which is the inbound backpressure.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;

use tokio::sync::{mpsc, oneshot};

/// Capacity of the owner's inbound queue.
pub const OWNER_QUEUE: usize = 1024;

/// Where a user's request ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOutcome {
    /// Send the user to this host.
    Host {
        /// The host's IP.
        ip: IpAddr,
        /// The DNS name the host came from in `director_mail_servers`, if any.
        hostname: Option<String>,
    },
    /// No host within the time limit (or the hash could not be computed): temp_fail.
    Failed,
}

/// The owner's immediate answer to a host request.
#[derive(Debug)]
pub enum LookupAnswer {
    /// Decided at once.
    Done(HostOutcome),
    /// Queued until a host becomes available or the 30 s timer fails it.
    Queued(oneshot::Receiver<HostOutcome>),
}

/// One login/LMTP/authreply lookup of a user's host, as part of a [`Event::HostBatch`].
#[derive(Debug)]
pub struct HostQuery {
    /// The `director_tag` (empty = default tag).
    pub tag: Bytes,
    /// The user hash (already computed from the username by the connection).
    pub hash: u32,
    /// The username as hashed, for log lines only (a slice of the line when possible).
    pub username: Bytes,
    /// The owner's answer, filled in before the batch is sent back.
    pub answer: Option<LookupAnswer>,
}

/// One admin command's outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminReply {
    /// Write these bytes (a complete reply, LF-terminated) and read the next command.
    Bytes(Vec<u8>),
    /// USER-LIST's rows: the connection encodes them a chunk at a time as its socket
    /// drains, then the terminating empty line (the whole encoded reply of a million users
    /// would be about 32 MB at once).
    Users(crate::state::UserListing),
}

/// Everything the state owner reacts to.
#[derive(Debug)]
pub enum Event {
    /// The host lookups of one read of an auth/userdb/authreply connection. One event and
    /// one reply per read, not per line: a message per line cost about 1,000 instructions
    /// a request (BENCHMARKS.md).
    HostBatch {
        /// The lookups, answered in place.
        queries: Vec<HostQuery>,
        /// Gets the same vector back with every `answer` set.
        reply: oneshot::Sender<Vec<HostQuery>>,
    },
    /// A proxy-notify line already hashed: refresh that hash in every tag.
    NotifyRefresh {
        /// The user hash of the line.
        hash: u32,
        /// The raw line, for the "refreshed too late" log.
        line: String,
    },
    /// An admin command, already parsed and validated by the connection.
    Admin {
        /// The command.
        request: director_parsers::admin::Request,
        /// Where the reply goes; the owner may hold it (deferred commands).
        reply: oneshot::Sender<AdminReply>,
    },
    /// An ipc kick command finished (successfully or not).
    KickDone {
        /// The token the owner gave when asking for the kick.
        token: u64,
        /// `Ok(data)` for a `+` reply, `Err(text)` otherwise.
        result: Result<String, String>,
    },
    /// The flush program of a move finished.
    FlushDone {
        /// The moved user.
        key: crate::state::UserKey,
        /// The flush service answered `+`.
        success: bool,
    },
    /// Ring TCP I/O: an accepted connection, a connect result, a line, a close.
    Ring(super::ringnet::RingIo),
    /// Test support: move the owner's clock forward (timers fire as if that time passed).
    AdvanceClock(Duration),
}

/// A cheap, cloneable handle connections use to reach the state owner.
#[derive(Debug, Clone)]
pub struct OwnerHandle {
    tx: mpsc::Sender<Event>,
}

impl OwnerHandle {
    /// Wraps the owner's queue.
    pub fn new(tx: mpsc::Sender<Event>) -> Self {
        Self { tx }
    }

    /// A sender that does not keep the owner's queue open (for the owner's own helpers).
    pub fn weak(&self) -> mpsc::WeakSender<Event> {
        self.tx.downgrade()
    }

    /// Sends an event, waiting while the queue is full. `false` if the owner is gone.
    pub async fn send(&self, ev: Event) -> bool {
        self.tx.send(ev).await.is_ok()
    }

    /// Asks for the hosts of `queries`, answered in place. `None` if the owner is gone
    /// (shutting down).
    pub async fn lookup_hosts(&self, queries: Vec<HostQuery>) -> Option<Vec<HostQuery>> {
        let (reply, rx) = oneshot::channel();
        if !self.send(Event::HostBatch { queries, reply }).await {
            return None;
        }
        rx.await.ok()
    }

    /// Runs an admin command. `None` if the owner is gone.
    pub async fn admin(&self, request: director_parsers::admin::Request) -> Option<AdminReply> {
        let (reply, rx) = oneshot::channel();
        if !self.send(Event::Admin { request, reply }).await {
            return None;
        }
        rx.await.ok()
    }
}
