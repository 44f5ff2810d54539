//! The state owner: the one task that owns the [`Directory`] and applies events in order.
//!
//! Mirrors the event handling of Dovecot's `src/director/director.c` and
//! `director-request.c` for a stand-alone director: host requests (with the delayed-request
//! queue and its 30 s failure timer, `auth-proxy.md` §5), proxy-notify refreshes, admin
//! commands (`admin_cmds.rs`), kicks and moves (`moves.rs`), and the user expiry
//! timer. The owner answers through `oneshot` senders and the ipc queue, never awaiting a
//! connection. Time is a [`Clock`] that tests can advance, so timers are deadlines in clock
//! milliseconds checked after every event.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use super::events::{Event, HostOutcome, HostQuery, LookupAnswer};
use super::ipc::IpcClient;
use super::moves::MoveTimers;
use crate::config::Config;
use crate::state::{Directory, Tag};
use crate::username_hash::UsernameHash;

/// Dovecot's `DIRECTOR_REQUEST_TIMEOUT_SECS`: queued requests older than this fail.
pub const DIRECTOR_REQUEST_TIMEOUT_SECS: u64 = 30;

/// At most this many queued events are taken and applied per wake-up.
const OWNER_BATCH: usize = 256;
/// How long the owner sleeps when no timer is due (it wakes up for events anyway).
const IDLE_WAKEUP: Duration = Duration::from_secs(3600);

/// Wall-clock time plus an offset tests can advance.
///
/// The owner reads the system clock once per batch of events ([`Clock::tick`]) and every
/// handler of that batch sees the same time, like Dovecot's `ioloop_time`. Reading it per
/// call cost about 8 % of the CPU per auth request under load (BENCHMARKS.md).
#[derive(Debug, Default, Clone, Copy)]
pub struct Clock {
    offset: Duration,
    /// The time taken at the last [`Clock::tick`]; `None` = read the system clock.
    ticked_ms: Option<u64>,
}

impl Clock {
    /// Unix time in milliseconds (as of the last [`Clock::tick`], if any).
    pub fn now_ms(&self) -> u64 {
        match self.ticked_ms {
            Some(t) => t,
            None => self.read_ms(),
        }
    }

    fn read_ms(&self) -> u64 {
        (SystemTime::now() + self.offset)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// Reads the system clock; [`Clock::now_ms`] returns this time until the next tick.
    pub fn tick(&mut self) -> u64 {
        let t = self.read_ms();
        self.ticked_ms = Some(t);
        t
    }

    /// Unix time in whole seconds.
    pub fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, by: Duration) {
        self.offset += by;
        if self.ticked_ms.is_some() {
            self.tick();
        }
    }
}

/// A host request waiting for a host (Dovecot's delayed request list).
#[derive(Debug)]
struct Delayed {
    tag: Tag,
    hash: u32,
    /// For log lines only (lossy UTF-8 when written).
    username: Bytes,
    queued_ms: u64,
    /// The ring's reason at the last attempt (ring directors only).
    ring_reason: Option<&'static str>,
    reply: oneshot::Sender<HostOutcome>,
}

/// Settings the owner consults at run time.
#[derive(Debug)]
pub(super) struct OwnerSettings {
    pub user_kick_delay_ms: u64,
    pub max_parallel_moves: u32,
    pub max_parallel_kicks: u32,
    pub mail_servers: String,
    pub hasher: Arc<UsernameHash>,
    /// `director_flush_socket`; empty = no flush.
    pub flush_socket: String,
    pub base_dir: std::path::PathBuf,
}

/// The state owner.
pub struct Owner {
    pub(super) dir: Directory,
    pub(super) clock: Clock,
    pub(super) settings: OwnerSettings,
    pub(super) ipc: Option<IpcClient>,
    pub(super) started_secs: u64,
    delayed: VecDeque<Delayed>,
    /// The periodic 30 s request timer (`None` while nothing is queued).
    request_timer_ms: Option<u64>,
    /// Moves, kicks, deferred admin commands and their timers.
    pub(super) moves: MoveTimers,
    /// Directors added with DIRECTOR-ADD (stand-alone: only listed).
    pub(super) directors: Vec<KnownDirector>,
    /// The ring side (`None` = stand-alone director).
    pub(super) ring: Option<super::ringside::RingSide>,
    /// Our own queue, for helper tasks (flushes) to report back; weak so it never keeps
    /// the owner alive.
    pub(super) self_tx: Option<mpsc::WeakSender<Event>>,
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner")
            .field("users", &self.dir.user_count())
            .field("delayed", &self.delayed.len())
            .finish()
    }
}

pub(super) use crate::config::glue::resolve;

impl Owner {
    /// Builds the initial state from the configuration.
    pub fn new(config: &Config) -> Result<Owner, String> {
        let specs =
            crate::mail_hosts::parse_mail_servers(&config.director.mail_servers, &mut resolve)
                .map_err(|e| e.to_string())?;
        let hasher =
            UsernameHash::new(&config.director.username_hash).map_err(|e| e.to_string())?;
        let user_expire = config.director.user_expire.as_secs();
        let clock = Clock::default();
        Ok(Owner {
            dir: Directory::new(specs, user_expire.min(u64::from(u32::MAX)) as u32),
            started_secs: clock.now_secs(),
            clock,
            settings: OwnerSettings {
                user_kick_delay_ms: config.director.user_kick_delay.as_millis() as u64,
                max_parallel_moves: config.director.max_parallel_moves,
                max_parallel_kicks: config.director.max_parallel_kicks,
                mail_servers: config.director.mail_servers.clone(),
                hasher: Arc::new(hasher),
                flush_socket: config.director.flush_socket.clone(),
                base_dir: config.base_dir.clone(),
            },
            self_tx: None,
            ipc: None,
            delayed: VecDeque::new(),
            request_timer_ms: None,
            moves: MoveTimers::default(),
            directors: Vec::new(),
            ring: None,
        })
    }

    /// Connects the owner to the ipc kick client.
    pub fn with_ipc(mut self, ipc: IpcClient) -> Self {
        self.ipc = Some(ipc);
        self
    }

    /// Makes this a ring director.
    pub(super) fn with_ring(mut self, ring: super::ringside::RingSide) -> Self {
        self.ring = Some(ring);
        self
    }

    /// Lets helper tasks the owner starts (flushes) report back through its own queue.
    pub fn with_self_sender(mut self, tx: mpsc::WeakSender<Event>) -> Self {
        self.self_tx = Some(tx);
        self
    }

    /// Applies events until the queue closes or `shutdown` fires.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Event>, shutdown: CancellationToken) {
        if self.ring.is_some() {
            self.ring_handle(crate::ring::RingEvent::Start);
        }
        // One pinned timer, moved only when the earliest deadline changes: a new `Sleep`
        // per event cost a timer-wheel registration (and often an eventfd wake-up) each.
        let sleep = tokio::time::sleep(IDLE_WAKEUP);
        tokio::pin!(sleep);
        let mut armed: Option<Option<u64>> = None;
        let mut batch = Vec::with_capacity(OWNER_BATCH);
        let stopping = shutdown.cancelled();
        tokio::pin!(stopping);
        self.clock.tick();
        loop {
            let now_ms = self.clock.now_ms();
            self.fire_timers();
            let want = self.next_deadline_ms();
            if armed != Some(want) {
                let wait = match want {
                    // At least 1 ms, so a deadline a timer failed to clear cannot spin the task.
                    Some(at) => Duration::from_millis(at.saturating_sub(now_ms).max(1)),
                    // Nothing scheduled: wake up once in a while anyway (cheap, bounded).
                    None => IDLE_WAKEUP,
                };
                sleep.as_mut().reset(tokio::time::Instant::now() + wait);
                armed = Some(want);
            }
            tokio::select! {
                biased;
                _ = &mut stopping => break,
                n = rx.recv_many(&mut batch, OWNER_BATCH) => if n == 0 { break },
                _ = &mut sleep => {
                    armed = None;
                    self.clock.tick();
                    continue;
                }
            };
            self.clock.tick();
            for ev in batch.drain(..) {
                // A stand-alone director's host lookups and refreshes only set deadlines in
                // the future (the clock stands still within a batch), so timers are checked
                // once per batch for them; after anything else at once, as before batching.
                let hot = self.ring.is_none()
                    && matches!(ev, Event::HostBatch { .. } | Event::NotifyRefresh { .. });
                self.apply(ev);
                if !hot {
                    self.fire_timers();
                    // The timer is set again from scratch: such an event may have moved
                    // the clock itself (`AdvanceClock`), not only a deadline.
                    armed = None;
                }
                #[cfg(debug_assertions)]
                if let Err(e) = self.dir.check_invariants() {
                    error!("BUG: directory invariant broken: {e}");
                }
            }
        }
        // Ring peers are told why we go (`QUIT\tShutting down`); dropping the connection table
        // afterwards lets every connection flush and close.
        if self.ring.is_some() {
            self.ring_handle(crate::ring::RingEvent::Shutdown);
        }
        self.ring = None;
        // Queued requests are answered with a temporary failure rather than dropped.
        for d in self.delayed.drain(..) {
            let _ = d.reply.send(HostOutcome::Failed);
        }
    }

    fn apply(&mut self, ev: Event) {
        match ev {
            Event::HostBatch { mut queries, reply } => {
                for q in &mut queries {
                    q.answer = Some(self.host_query(q));
                }
                let _ = reply.send(queries);
            }
            Event::NotifyRefresh { hash, line } => {
                let now = self.clock.now_secs();
                self.warn_late_refresh(hash, &line, now);
                if self.ring.is_some() {
                    // The ring owns the users (our directory is only its copy) and tells
                    // the other directors (`USER`).
                    debug!(user = %line, hash, "notify refresh (ring)");
                    self.ring_handle(crate::ring::RingEvent::Refresh { hash });
                } else {
                    let refreshed = self.dir.notify_refresh(hash, now);
                    debug!(user = %line, hash, tags = refreshed.len(), "notify refresh");
                }
            }
            Event::Admin { request, reply } => self.admin(request, reply),
            Event::KickDone { token, result } => self.kick_done(token, result),
            Event::FlushDone { key, success } => self.flush_done(key, success),
            Event::Ring(io) => self.ring_io(io),
            Event::AdvanceClock(d) => self.clock.advance(d),
        }
    }

    /// Dovecot's warning for a refresh of an entry older than `director_user_expire` (only
    /// possible for entries kept alive by a move in progress).
    fn warn_late_refresh(&mut self, hash: u32, line: &str, now: u64) {
        let expire = u64::from(self.dir.user_expire_secs());
        for tag in 0..self.dir.tags().len() as u32 {
            if let Some(user) = self.dir.lookup(tag, hash, now) {
                let diff = now.saturating_sub(user.timestamp);
                if diff >= expire {
                    warn!("notify: User {line} refreshed too late ({diff} secs)");
                }
            }
        }
    }

    /// The answer to one lookup: a host now, or a queued request.
    fn host_query(&mut self, q: &HostQuery) -> LookupAnswer {
        let tag = Tag::new(&q.tag[..]);
        let (ring_reason, now_outcome) = self.route(&tag, q.hash);
        if let Some(outcome) = now_outcome {
            return LookupAnswer::Done(outcome);
        }
        let (tx, rx) = oneshot::channel();
        let now_ms = self.clock.now_ms();
        self.delayed.push_back(Delayed {
            tag,
            hash: q.hash,
            username: q.username.clone(),
            queued_ms: now_ms,
            ring_reason,
            reply: tx,
        });
        if self.request_timer_ms.is_none() {
            self.request_timer_ms = Some(now_ms + DIRECTOR_REQUEST_TIMEOUT_SECS * 1000);
        }
        LookupAnswer::Queued(rx)
    }

    /// A host now, or the ring's reason to wait (`None` reason: the stand-alone rules).
    fn route(&mut self, tag: &Tag, hash: u32) -> (Option<&'static str>, Option<HostOutcome>) {
        match self.ring_route(tag, hash) {
            Some(Ok(outcome)) => (None, Some(outcome)),
            Some(Err(reason)) => (Some(reason), None),
            None => (None, self.try_request(tag, hash)),
        }
    }

    /// A host for (tag, hash) now, or `None` if the request must wait.
    fn try_request(&mut self, tag: &Tag, hash: u32) -> Option<HostOutcome> {
        let now = self.clock.now_secs();
        // The entry itself, not its address: finding the host again by address cost
        // about 180 instructions a request.
        let host = self.dir.request_host_entry(tag, hash, now).ok()?;
        Some(HostOutcome::Host {
            ip: host.ip,
            hostname: host.hostname.clone(),
        })
    }

    /// Retries every queued request (after any state change that may have made hosts
    /// available), in queue order.
    pub(super) fn retry_delayed(&mut self) {
        let queued = std::mem::take(&mut self.delayed);
        for mut d in queued {
            let (reason, outcome) = self.route(&d.tag, d.hash);
            d.ring_reason = reason;
            match outcome {
                Some(outcome) => {
                    // The client may be gone; the user entry is created/refreshed anyway.
                    let _ = d.reply.send(outcome);
                }
                None => self.delayed.push_back(d),
            }
        }
        // The periodic timer keeps running even if the queue emptied: like Dovecot's, it is
        // only removed by a firing that finds nothing queued.
    }

    /// Retries the queued requests if one waits for a weak user: ring input (its own
    /// USER-WEAK back, or a USER) may have cleared the weakness, and Dovecot wakes such
    /// requests right then (`ring-protocol.md` §8.1), not at the next ring sync.
    pub(super) fn retry_weak_waiters(&mut self) {
        if self
            .delayed
            .iter()
            .any(|d| d.ring_reason == Some(super::ringcore::WEAK_USER))
        {
            self.retry_delayed();
        }
    }

    /// Fails queued requests that are at least 30 s old (the periodic timer's work).
    fn fail_old_requests(&mut self) {
        let now_ms = self.clock.now_ms();
        let now = now_ms / 1000;
        let queued = std::mem::take(&mut self.delayed);
        for d in queued {
            // Whole seconds, as Dovecot compares `create_time + 30 > ioloop_time`.
            let age = now.saturating_sub(d.queued_ms / 1000);
            if age < DIRECTOR_REQUEST_TIMEOUT_SECS {
                self.delayed.push_back(d);
                continue;
            }
            let msg = self.timeout_message(&d, age, now);
            error!(
                "director: User {} host lookup failed: {msg}",
                String::from_utf8_lossy(&d.username)
            );
            let _ = d.reply.send(HostOutcome::Failed);
        }
        self.request_timer_ms = if self.delayed.is_empty() {
            None
        } else {
            Some(now_ms + DIRECTOR_REQUEST_TIMEOUT_SECS * 1000)
        };
    }

    /// Dovecot's `director_request_get_timeout_error()` text for a stand-alone director.
    fn timeout_message(&mut self, d: &Delayed, queued_secs: u64, now: u64) -> String {
        let user = self
            .dir
            .tag_id(&d.tag)
            .and_then(|t| self.dir.lookup(t, d.hash, now));
        let reason = match (&user, d.ring_reason) {
            (_, Some(ring)) => ring,
            (Some(u), None) if u.kill.is_some() => "kill waiting",
            _ => "no hosts",
        };
        let mut s = format!(
            "Timeout because {reason} - queued for {queued_secs} secs ({}",
            self.ring_state_text(now)
        );
        if let Some(u) = &user {
            if u.weak {
                s.push_str(", weak user");
            }
            s.push_str(&format!(
                ", user refreshed {} secs ago",
                now.saturating_sub(u.timestamp)
            ));
        }
        s.push_str(&format!(", hash={}", d.hash));
        if !d.tag.is_default() {
            s.push_str(&format!(", tag={}", d.tag));
        }
        s.push(')');
        s
    }

    fn next_deadline_ms(&self) -> Option<u64> {
        let expiry = self
            .dir
            .next_expiry(self.clock.now_secs())
            .map(|s| s * 1000);
        [
            self.request_timer_ms,
            expiry,
            self.moves.next_deadline_ms(),
            self.ring_warning_deadline(),
            self.ring_timer_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs every timer whose deadline has passed.
    fn fire_timers(&mut self) {
        let now_ms = self.clock.now_ms();
        if self.request_timer_ms.is_some_and(|t| t <= now_ms) {
            self.fail_old_requests();
        }
        let now = now_ms / 1000;
        if self.dir.next_expiry(now).is_some_and(|t| t <= now) {
            self.dir.purge_expired(now);
        }
        self.fire_move_timers(now_ms);
        self.fire_ring_warning(now_ms);
        self.fire_ring_timer(now_ms);
    }
}

/// A director added with DIRECTOR-ADD (stand-alone: listed only, never connected to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KnownDirector {
    pub(super) ip: std::net::IpAddr,
    pub(super) port: u16,
    /// Marked by DIRECTOR-REMOVE; still listed with type `removed`, as Dovecot does.
    pub(super) removed: bool,
}
