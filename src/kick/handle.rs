//! The handle the state owner kicks through, shared by the ipc and anvil backends.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use director_parsers::ipc::KickCommand;
use tokio::sync::{mpsc, oneshot};

/// A kick's successful result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KickOutcome {
    /// Sessions kicked, if the reply was a number (2.3's ipc answers `+(null)` when no login
    /// process is registered).
    pub count: Option<u32>,
    /// The reply's data as received (the text after `+`; anvil's bare count).
    pub data: String,
}

/// Why a kick failed. The `Display` texts are the ones Dovecot's ipc client hands the
/// director (they end up in `Failed to kill user <hash> connections: <text>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KickError {
    /// The socket could not be connected (or anvil's handshake failed).
    ConnectFailed,
    /// The connection dropped before the reply came.
    Disconnected,
    /// The server answered `-<text>`.
    Failed(String),
    /// The reply line was not `+`/`-`/`:` (ipc) or not a count (anvil).
    InvalidInput,
    /// The kicker task is gone (daemon shutting down).
    Stopped,
}

impl fmt::Display for KickError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KickError::ConnectFailed => f.write_str("ipc connect failed"),
            KickError::Disconnected => f.write_str("Disconnected"),
            KickError::Failed(text) => f.write_str(text),
            KickError::InvalidInput => f.write_str("Invalid input"),
            KickError::Stopped => f.write_str("kicker stopped"),
        }
    }
}

impl std::error::Error for KickError {}

/// What a kick ends with.
pub type KickResult = Result<KickOutcome, KickError>;

/// One queued kick: the command and where its result goes.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) cmd: KickCommand,
    pub(crate) reply: Replier,
}

/// Completes a kick exactly once and keeps the outstanding count right even if the backend
/// drops the job without answering.
#[derive(Debug)]
pub(crate) struct Replier {
    tx: Option<oneshot::Sender<KickResult>>,
    outstanding: Arc<AtomicUsize>,
}

impl Replier {
    /// Deliver the result (the receiver may be gone; nobody then cares).
    pub(crate) fn finish(mut self, result: KickResult) {
        if let Some(tx) = self.tx.take() {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(result);
        }
    }
}

impl Drop for Replier {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(Err(KickError::Stopped));
        }
    }
}

/// A cheap, cloneable handle to a kicker task. The task stops when every handle is dropped;
/// kicks still pending then fail with [`KickError::Disconnected`].
#[derive(Debug, Clone)]
pub struct KickHandle {
    tx: mpsc::UnboundedSender<Job>,
    outstanding: Arc<AtomicUsize>,
}

impl KickHandle {
    pub(crate) fn new() -> (KickHandle, mpsc::UnboundedReceiver<Job>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = KickHandle {
            tx,
            outstanding: Arc::new(AtomicUsize::new(0)),
        };
        (handle, rx)
    }

    /// Queue a kick; its result goes to `reply`. Never waits, so the state owner can call
    /// it. The queue is unbounded: the owner limits kicks itself
    /// (`director_max_parallel_kicks`, `director_max_parallel_moves`).
    pub fn send(&self, cmd: KickCommand, reply: oneshot::Sender<KickResult>) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        let job = Job {
            cmd,
            reply: Replier {
                tx: Some(reply),
                outstanding: Arc::clone(&self.outstanding),
            },
        };
        // A closed task drops the job, whose Replier then answers Stopped.
        let _ = self.tx.send(job);
    }

    /// Kick and wait for the result.
    pub async fn kick(&self, cmd: KickCommand) -> KickResult {
        let (tx, rx) = oneshot::channel();
        self.send(cmd, tx);
        rx.await.unwrap_or(Err(KickError::Stopped))
    }

    /// Kicks sent and not yet answered (every source), for `director_max_parallel_kicks`
    /// and the `kicking` count of the process title.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }
}
