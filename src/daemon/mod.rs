//! The `directord` daemon: listeners, one task per connection, one state-owner task.
//!
//! Structure (aesthetics.md §8.3): connection tasks do I/O and framing only and talk to the
//! single state owner ([`owner`]) through a bounded queue with `oneshot` replies; the owner
//! applies events in arrival order and never waits on a connection. Shutdown is a
//! `CancellationToken`; tasks are tracked with a `TaskTracker` and the whole shutdown is
//! bounded by a grace period. Mirrors Dovecot's `src/director/main.c`.

mod admin;
mod admin_cmds;
mod authreply;
pub mod events;
pub mod flush;
mod ipc;
pub mod lines;
pub mod listener;
mod moves;
mod notify;
pub mod owner;
pub mod proxy;
pub mod reply;
mod ringcore;
pub mod ringnet;
mod ringside;
mod ringsync;
pub mod sd_notify;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, warn, Instrument};

use crate::config::Config;
use director_parsers::passdb::ReplyKind;
use events::{OwnerHandle, OWNER_QUEUE};
use listener::{BoundListener, ConnKind, ListenerIo};
use reply::ReplyRewriter;

use crate::username_hash::UsernameHash;

/// Dovecot's `default_client_limit`: connections served at once per listener.
pub const CLIENT_LIMIT: usize = 1000;

/// How long shutdown waits for connection tasks before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// `strerror`-like text for an I/O error, without Rust's " (os error N)" suffix.
pub(crate) fn describe_io_error(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A peer's line for a log message, with credential fields (`pass=`, `resp=`, ...) replaced
/// by `<hidden>` and control bytes other than TAB escaped, so that no log line leaks a password.
pub(crate) fn loggable_line(line: &[u8]) -> String {
    use director_parsers::field::Field;
    let mut out = Vec::with_capacity(line.len());
    for (i, raw) in line.split(|&b| b == b'\t').enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match Field::from_raw(raw.to_vec()) {
            Some(f) if f.is_secret() => {
                out.extend_from_slice(f.key());
                out.extend_from_slice(b"=<hidden>");
            }
            _ => out.extend_from_slice(raw),
        }
    }
    out.iter()
        .map(|&b| match b {
            b'\t' | 0x20..=0x7e => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

/// A started daemon.
#[derive(Debug)]
pub struct RunningDaemon {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    owner: OwnerHandle,
    /// The listener paths we created, for callers that print them.
    pub socket_paths: Vec<PathBuf>,
}

impl RunningDaemon {
    /// A handle to the state owner (tests use it to advance the clock).
    pub fn owner(&self) -> &OwnerHandle {
        &self.owner
    }

    /// The token that stops the daemon when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, closes every connection, removes our sockets, and waits (bounded).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.wait().await;
    }

    /// Waits until the shutdown token is cancelled and all tasks have ended (bounded).
    pub async fn wait(self) {
        self.shutdown.cancelled().await;
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            warn!("shutdown: some connections did not finish within {SHUTDOWN_GRACE:?}");
        }
    }
}

/// Binds every listener and starts the owner and the accept loops. Binding errors are
/// returned before anything runs, so a misconfigured daemon never half-starts.
pub async fn start(config: Config) -> io::Result<RunningDaemon> {
    let config = Arc::new(config);
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    let hasher =
        UsernameHash::new(&config.director.username_hash).map_err(|e| invalid(e.to_string()))?;
    let hasher = Arc::new(hasher);
    let state = owner::Owner::new(&config).map_err(invalid)?;

    let mut bound = Vec::new();
    for spec in &config.listeners {
        bound.push(BoundListener::bind(spec.clone())?);
    }
    // The ring listener is bound before anything runs, like the others.
    let ring_listener = match &config.ring {
        Some(rc) => {
            let me = rc.find_self(ringnet::can_bind).map_err(invalid)?;
            Some((me, ringnet::bind_listener(rc.bind_addr())?))
        }
        None => None,
    };
    let socket_paths = bound
        .iter()
        .filter_map(|b| b.path().map(|p| p.to_path_buf()))
        .collect();

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (tx, rx) = mpsc::channel(OWNER_QUEUE);
    let owner = OwnerHandle::new(tx);
    let ipc = ipc::spawn(&config, owner.clone(), shutdown.clone(), &tracker);
    let mut state = state;
    if let (Some(rc), Some((me, listener))) = (&config.ring, ring_listener) {
        let servers: Vec<crate::ring::DirAddr> = rc
            .servers
            .iter()
            .map(|&(ip, port)| crate::ring::DirAddr::new(ip, port))
            .collect();
        let net = ringnet::RingNet::new(
            me.0,
            config.director.output_buffer_size,
            owner.weak(),
            tracker.clone(),
            shutdown.clone(),
        );
        state = state.with_ring(ringside::RingSide {
            me,
            net,
            sync: ringsync::SyncState::default(),
            core: crate::ring::Ring::new_lent(crate::ring::DirAddr::new(me.0, me.1), &servers)
                .with_move_settings(
                    config.director.user_kick_delay.as_millis() as u64,
                    !config.director.flush_socket.is_empty(),
                )
                .with_ping_timeouts(
                    config.director.ping_idle_timeout.as_millis() as u64,
                    config.director.ping_max_timeout.as_millis() as u64,
                ),
            timer_at_ms: None,
            in_followup: false,
        });
        let span = tracing::info_span!("listener", name = "ring");
        tracker.spawn(
            ringnet::accept_loop(listener, owner.clone(), shutdown.clone()).instrument(span),
        );
    }
    tracker.spawn(
        state
            .with_ipc(ipc)
            .with_self_sender(owner.weak())
            .run(rx, shutdown.clone()),
    );

    let separator = config.director.master_user_separator.bytes().next();
    let refresh = u32::try_from(config.proxy_refresh_secs()).unwrap_or(u32::MAX);
    let rewriter = |kind| {
        Arc::new(ReplyRewriter::new(
            kind,
            hasher.clone(),
            separator,
            refresh,
            owner.clone(),
        ))
    };
    let ctx = Arc::new(Shared {
        config: config.clone(),
        owner: owner.clone(),
        hasher: hasher.clone(),
        auth_rewriter: rewriter(ReplyKind::AuthOk),
        userdb_rewriter: rewriter(ReplyKind::UserdbPass),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    });
    for b in bound {
        let ctx = ctx.clone();
        let span = tracing::info_span!("listener", name = %b.spec.name);
        tracker.spawn(listen(b, ctx).instrument(span));
    }
    Ok(RunningDaemon {
        shutdown,
        tracker,
        owner,
        socket_paths,
    })
}

/// What every connection task needs.
struct Shared {
    config: Arc<Config>,
    owner: OwnerHandle,
    hasher: Arc<UsernameHash>,
    auth_rewriter: Arc<ReplyRewriter>,
    userdb_rewriter: Arc<ReplyRewriter>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// One listener's accept loop; dropping the listener at the end removes its socket.
async fn listen(mut b: BoundListener, ctx: Arc<Shared>) {
    let kind = b.spec.kind;
    match &mut b.io {
        ListenerIo::Fifo(fifo) => {
            notify::serve(
                fifo,
                notify::NotifySource::Fifo,
                ctx.hasher.clone(),
                ctx.owner.clone(),
                ctx.shutdown.clone(),
            )
            .await;
        }
        ListenerIo::Unix(l) => {
            let limit = Arc::new(Semaphore::new(CLIENT_LIMIT));
            let mut conn_id: u64 = 0;
            loop {
                let permit = tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    p = limit.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                let stream = tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    r = l.accept() => match r {
                        Ok((s, _)) => s,
                        Err(e) => {
                            // EMFILE and friends: keep serving the others, try again shortly.
                            error!("accept() failed: {}", describe_io_error(&e));
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                conn_id += 1;
                let span = tracing::info_span!("conn", kind = kind.as_str(), id = conn_id);
                let ctx2 = ctx.clone();
                ctx.tracker.spawn(
                    async move {
                        serve_connection(kind, stream, ctx2).await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
        }
    }
    debug!("listener stopped");
    drop(b);
}

async fn serve_connection(kind: ConnKind, stream: UnixStream, ctx: Arc<Shared>) {
    match kind {
        ConnKind::Auth => {
            proxy::serve(
                stream,
                ctx.config.auth_login_socket.clone(),
                "auth-login",
                ctx.auth_rewriter.clone(),
                ctx.shutdown.clone(),
            )
            .await
        }
        ConnKind::Userdb => {
            proxy::serve(
                stream,
                ctx.config.auth_userdb_socket.clone(),
                "auth-userdb",
                ctx.userdb_rewriter.clone(),
                ctx.shutdown.clone(),
            )
            .await
        }
        ConnKind::AuthReply => {
            authreply::serve(stream, ctx.auth_rewriter.clone(), ctx.shutdown.clone()).await
        }
        ConnKind::Notify => {
            notify::serve(
                stream,
                notify::NotifySource::Socket,
                ctx.hasher.clone(),
                ctx.owner.clone(),
                ctx.shutdown.clone(),
            )
            .await
        }
        ConnKind::Admin => admin::serve(stream, ctx.owner.clone(), ctx.shutdown.clone()).await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loggable_line_hides_credentials() {
        assert_eq!(
            super::loggable_line(b"OK\t1\tuser=alice\tpass=secret\tresp=AGFs\tnopassword\x01\xff"),
            "OK\t1\tuser=alice\tpass=<hidden>\tresp=<hidden>\tnopassword\\x01\\xff"
        );
    }
}
