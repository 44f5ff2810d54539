//! The owner's kick client: a thin adapter over [`crate::kick`], which talks to Dovecot
//! 2.3's ipc service or Dovecot 2.4's anvil (`auth-proxy.md` §10, `dovecot-2.4.md` §6).
//!
//! Every command queued with a token gets exactly one [`Event::KickDone`] back, in request
//! order. `[dovecot] version = "auto"` picks the backend at the first kick whose socket
//! exists (ipc first), so directord may start before Dovecot.

use std::path::PathBuf;

use director_parsers::ipc::IpcRequest;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::events::{Event, OwnerHandle};
use crate::config::Config;
use crate::kick::{
    admin_sockets_reachable, Backend, DovecotVersion, KickError, KickHandle, KickResult, KickSink,
};
use crate::username_hash::UsernameHash;

/// The owner's side: queue a kick command.
#[derive(Debug, Clone)]
pub struct IpcClient {
    tx: mpsc::UnboundedSender<(u64, IpcRequest)>,
}

impl IpcClient {
    /// Queues `req`; its result arrives as [`Event::KickDone`] with `token`. Returns false if
    /// the kick task is gone (shutdown), in which case no result will arrive.
    pub fn send(&self, token: u64, req: IpcRequest) -> bool {
        self.tx.send((token, req)).is_ok()
    }
}

/// Delivers one kick's result to the owner as [`Event::KickDone`].
struct OwnerSink {
    owner: OwnerHandle,
    token: u64,
}

impl KickSink for OwnerSink {
    async fn done(self, result: KickResult) {
        let result = result.map(|o| o.data).map_err(|e| e.to_string());
        // A closed owner means shutdown: nobody waits for the result any more.
        let _ = self
            .owner
            .send(Event::KickDone {
                token: self.token,
                result,
            })
            .await;
    }
}

/// The sockets the backend is chosen from.
struct Sockets {
    version: DovecotVersion,
    ipc: PathBuf,
    anvil: PathBuf,
    hasher: UsernameHash,
}

impl Sockets {
    /// The backend for this kick; `None` while `auto` finds neither socket.
    fn resolve(&self) -> Option<Backend> {
        Backend::resolve(self.version, &self.ipc, &self.anvil)
    }
}

/// Starts the kick task for `config`'s Dovecot; it ends on `shutdown` or when every
/// [`IpcClient`] is dropped.
pub fn spawn(
    config: &Config,
    owner: OwnerHandle,
    shutdown: CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> IpcClient {
    let (tx, rx) = mpsc::unbounded_channel();
    // The username hash format was validated with the config; a failure here would be a bug.
    let sockets = UsernameHash::new(&config.director.username_hash)
        .ok()
        .map(|hasher| Sockets {
            version: config.dovecot_version,
            ipc: config.ipc_socket.clone(),
            anvil: config.anvil_socket.clone(),
            hasher,
        });
    tracker.spawn(run(sockets, rx, owner, shutdown));
    IpcClient { tx }
}

async fn run(
    sockets: Option<Sockets>,
    mut rx: mpsc::UnboundedReceiver<(u64, IpcRequest)>,
    owner: OwnerHandle,
    shutdown: CancellationToken,
) {
    let mut kicker: Option<KickHandle<OwnerSink>> = None;
    // Checked once: at start-up if Dovecot's anvil is already there, else at the first kick.
    let mut checked = false;
    if let Some(s) = &sockets {
        checked = check_kick_reach(s.resolve());
    }
    loop {
        let (token, req) = tokio::select! {
            _ = shutdown.cancelled() => return,
            cmd = rx.recv() => match cmd {
                Some(cmd) => cmd,
                None => return,
            },
        };
        let sink = OwnerSink {
            owner: owner.clone(),
            token,
        };
        if kicker.is_none() {
            kicker = sockets.as_ref().and_then(|s| {
                let backend = s.resolve()?;
                if !checked {
                    checked = check_kick_reach(Some(backend.clone()));
                }
                Some(backend.spawn_with(s.hasher.clone()))
            });
        }
        let Some(k) = &kicker else {
            let ipc = sockets.as_ref().map(|s| s.ipc.display().to_string());
            error!(
                "ipc: net_connect_unix({}) failed: No such file or directory - kicks are not delivered",
                ipc.unwrap_or_default()
            );
            sink.done(Err(KickError::ConnectFailed)).await;
            continue;
        };
        // Only the command matters: both backends address every login process.
        if !k.send(req.command, sink) {
            return;
        }
    }
}

/// The start-up check of `dovecot-2.4.md` §6.4, logged once: with anvil, sessions of login
/// services in 2.4's default mode can only be kicked through the processes' admin sockets.
/// False (check again later) while the anvil socket does not exist yet.
fn check_kick_reach(backend: Option<Backend>) -> bool {
    let Some(Backend::Anvil(anvil)) = backend else {
        return backend.is_some();
    };
    if !anvil.exists() {
        return false;
    }
    match admin_sockets_reachable(&anvil) {
        Ok(()) => info!(
            "anvil: kicks go to {}; sessions of login services in Dovecot 2.4's default login \
             mode (restart_request_count = 1), which ignore anvil's kicks, are kicked through \
             srv.<service>/<pid> beside it",
            anvil.display()
        ),
        Err(e) => warn!(
            "anvil: kicks go to {}, but {e}: sessions of login services in Dovecot 2.4's \
             default login mode (restart_request_count = 1) cannot be kicked, since their \
             processes ignore anvil's kicks; set `restart_request_count = unlimited` in every \
             login service (contrib/dovecot-2.4/README.md)",
            anvil.display()
        ),
    }
    true
}
