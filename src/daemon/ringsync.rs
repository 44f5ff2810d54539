//! What the state owner does while a ring director's ring is not handshaked or not synced
//! (`auth-proxy.md` §5, `ring-protocol.md` §6.6): host requests wait, with Dovecot's warnings
//! after 2 s and its "continuing delayed requests" lines when the ring comes back.
//!
//! Mirrors `director_request_continue_real()` / `ring_log_delayed_warning()` of Dovecot's
//! `src/director/director-request.c` and `director_set_ring_handshaked()` /
//! `director_set_ring_synced()` / `director_set_ring_unsynced()` of `director.c`. The ring
//! state itself comes from the ring state machine; a stand-alone director has no
//! [`SyncState`] and never waits.

use director_parsers::admin::Request;
use tokio::sync::oneshot;
use tracing::warn;

use super::events::AdminReply;
use super::owner::Owner;

/// How long an admin command waits for the ring to sync (`admin-protocol.md` §4).
pub const ADMIN_SYNC_TIMEOUT_MS: u64 = 30_000;

/// The reply to a command whose sync wait timed out.
pub const SYNC_TIMED_OUT: &[u8] = b"Ring sync timed out\n";

/// What an admin command waits for the ring sync with.
#[derive(Debug)]
enum SyncWait {
    /// PRE-SYNC: the whole command, not executed yet.
    Pre(Request),
    /// POST-SYNC: the command was applied; this reply goes out once synced.
    Post(Vec<u8>),
}

/// An admin command parked until the ring syncs (one per connection: a connection does not
/// read while a command is outstanding).
#[derive(Debug)]
struct Parked {
    wait: SyncWait,
    reply: oneshot::Sender<AdminReply>,
    deadline_ms: u64,
}

/// Dovecot's `DOVEADM_DIRECTOR_CMD_RET_RING_SYNC_OK`: changes whose `OK` waits for the
/// ring to sync again (not DIRECTOR-ADD, an all-hosts HOST-FLUSH or the USER commands).
pub(super) fn is_post_sync(r: &Request) -> bool {
    matches!(
        r,
        Request::DirectorRemove { .. }
            | Request::HostSet { .. }
            | Request::HostUpdate { .. }
            | Request::HostUp { .. }
            | Request::HostDown { .. }
            | Request::HostRemove { .. }
            | Request::HostFlush { ip: Some(_) }
    )
}

/// Dovecot's PRE-SYNC flag: commands that are run only on a synced ring.
fn is_pre_sync(r: &Request) -> bool {
    matches!(
        r,
        Request::DirectorAdd { .. }
            | Request::DirectorRemove { .. }
            | Request::HostSet { .. }
            | Request::HostUpdate { .. }
            | Request::HostUp { .. }
            | Request::HostDown { .. }
            | Request::HostRemove { .. }
            | Request::HostFlush { .. }
    )
}

/// Dovecot's `RING_NOCONN_WARNING_DELAY_MSECS`.
pub const RING_NOCONN_WARNING_DELAY_MS: u64 = 2000;

/// Why a request waits for the ring (Dovecot's `delay_reason_strings`).
pub const NOT_HANDSHAKED: &str = "ring not handshaked";
/// See [`NOT_HANDSHAKED`].
pub const NOT_SYNCED: &str = "ring not synced";

/// The ring's handshake/sync state as the owner needs it.
#[derive(Debug, Default)]
pub struct SyncState {
    /// The first ring sync completed (or we found ourselves alone).
    pub handshaked: bool,
    /// The ring is synced now.
    pub synced: bool,
    /// Unix seconds of the last change between synced and unsynced; 0 = never synced.
    pub last_sync_secs: u64,
    /// Pending 2 s warning (clock ms).
    warning_at_ms: Option<u64>,
    /// The warning was logged since the ring last became synced.
    warning_sent: bool,
    /// Admin commands waiting for the ring to sync.
    parked: Vec<Parked>,
}

impl Owner {
    /// Arms the 2 s "Delaying ..." warning unless it is armed or was already logged.
    pub(super) fn arm_ring_warning(&mut self) {
        let now_ms = self.clock.now_ms();
        if let Some(ring) = self.ring.as_mut() {
            let sync = &mut ring.sync;
            if !sync.warning_sent && sync.warning_at_ms.is_none() {
                sync.warning_at_ms = Some(now_ms + RING_NOCONN_WARNING_DELAY_MS);
            }
        }
    }

    /// The ring's handshaked/synced state (maybe) changed. Becoming synced retries the
    /// delayed requests.
    pub(super) fn ring_state_changed(&mut self, handshaked: bool, synced: bool) {
        let now = self.clock.now_secs();
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        let sync = &mut ring.sync;
        let mut retry = false;
        if handshaked && !sync.handshaked {
            sync.warning_at_ms = None;
            if sync.warning_sent {
                warn!("Directors have been connected, continuing delayed requests");
                sync.warning_sent = false;
            }
            sync.handshaked = true;
        }
        if synced && !sync.synced {
            sync.warning_at_ms = None;
            if sync.warning_sent {
                // O(hosts): only for this line, not per ring event.
                let hosts_hash = self.dir.hosts_hash();
                warn!(
                    "Ring is synced, continuing delayed requests \
                     (syncing took {} secs, hosts_hash={hosts_hash})",
                    now.saturating_sub(sync.last_sync_secs) as i64
                );
                sync.warning_sent = false;
            }
            sync.synced = true;
            sync.last_sync_secs = now;
            retry = true;
        } else if !synced && sync.synced {
            sync.synced = false;
            sync.last_sync_secs = now;
        }
        if retry {
            self.retry_delayed();
            // A paused HOST-RESET-USERS resumes only on a synced ring.
            self.continue_resets();
            let parked = self
                .ring
                .as_mut()
                .map(|r| std::mem::take(&mut r.sync.parked))
                .unwrap_or_default();
            for p in parked {
                match p.wait {
                    SyncWait::Pre(request) => self.admin(request, p.reply),
                    SyncWait::Post(bytes) => {
                        let _ = p.reply.send(AdminReply::Bytes(bytes));
                    }
                }
            }
        }
    }

    /// PRE-SYNC: parks the command while the ring is not synced; otherwise hands it back.
    pub(super) fn ring_pre_sync(
        &mut self,
        request: Request,
        reply: oneshot::Sender<AdminReply>,
    ) -> Option<(Request, oneshot::Sender<AdminReply>)> {
        let now_ms = self.clock.now_ms();
        match self.ring.as_mut() {
            Some(ring) if !ring.sync.synced && is_pre_sync(&request) => {
                ring.sync.parked.push(Parked {
                    wait: SyncWait::Pre(request),
                    reply,
                    deadline_ms: now_ms + ADMIN_SYNC_TIMEOUT_MS,
                });
                None
            }
            _ => Some((request, reply)),
        }
    }

    /// POST-SYNC: sends `out` now if the ring is synced, else when it next syncs.
    pub(super) fn ring_post_sync(&mut self, out: AdminReply, reply: oneshot::Sender<AdminReply>) {
        let now_ms = self.clock.now_ms();
        match self.ring.as_mut() {
            Some(ring) if !ring.sync.synced => {
                let AdminReply::Bytes(bytes) = out;
                ring.sync.parked.push(Parked {
                    wait: SyncWait::Post(bytes),
                    reply,
                    deadline_ms: now_ms + ADMIN_SYNC_TIMEOUT_MS,
                });
            }
            _ => {
                let _ = reply.send(out);
            }
        }
    }

    /// The next ring-sync deadline: the 2 s warning or a parked admin command's 30 s.
    pub(super) fn ring_warning_deadline(&self) -> Option<u64> {
        let sync = &self.ring.as_ref()?.sync;
        let parked = sync.parked.iter().map(|p| p.deadline_ms).min();
        [sync.warning_at_ms, parked].into_iter().flatten().min()
    }

    /// Logs the delayed-requests warning once its 2 s have passed.
    pub(super) fn fire_ring_warning(&mut self, now_ms: u64) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        let sync = &mut ring.sync;
        let (expired, waiting): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut sync.parked)
            .into_iter()
            .partition(|p| p.deadline_ms <= now_ms);
        sync.parked = waiting;
        for p in expired {
            // The parked command is dropped (a POST-SYNC change stays applied).
            let _ = p.reply.send(AdminReply::Bytes(SYNC_TIMED_OUT.to_vec()));
        }
        if sync.warning_at_ms.is_some_and(|t| t <= now_ms) {
            sync.warning_at_ms = None;
            sync.warning_sent = true;
            if !sync.handshaked {
                warn!("Delaying all requests until all directors have connected");
            } else {
                warn!("Delaying new user requests until ring is synced");
            }
        }
    }

    /// The ring part of a request timeout message (`auth-proxy.md` §6.2).
    pub(super) fn ring_state_text(&self, now: u64) -> String {
        match &self.ring {
            None => format!(
                "Ring synced for {} secs",
                now.saturating_sub(self.started_secs)
            ),
            Some(r) if r.sync.last_sync_secs == 0 => "Ring has never been synced".to_string(),
            Some(r) => {
                let secs = now.saturating_sub(r.sync.last_sync_secs);
                if r.sync.synced {
                    format!("Ring synced for {secs} secs")
                } else {
                    format!("Ring not synced for {secs} secs")
                }
            }
        }
    }
}
