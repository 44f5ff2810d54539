//! The handle the state owner kicks through, shared by the ipc and anvil backends.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use director_parsers::ipc::KickCommand;
use tokio::sync::{mpsc, oneshot};

/// A kick's successful result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KickOutcome {
    /// Sessions kicked, if the reply was a number. Not always: real 2.3.19.1 login processes
    /// answer a bare `+` to a `KICK` that matched nothing (but `+0` to `KICK-ALT` and
    /// `KICK-DIRECTOR-HASH`), and the lab saw `+(null)`.
    pub count: Option<u32>,
    /// The reply's data as received (the text after `+`; anvil's bare count).
    pub data: String,
    /// Sessions acknowledged as kicked that carry on (anvil only: a login service in 2.4's
    /// default mode whose admin socket was out of reach; `dovecot-2.4.md` §6.4).
    pub ignored: u32,
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

/// Where a kick's result goes. The kicker task awaits [`KickSink::done`] before it reads
/// the next reply, so results arrive in request order; a sink that forwards to the state
/// owner's bounded queue may wait there (the owner never waits for the kicker).
pub trait KickSink: Send + 'static {
    /// Deliver the result.
    fn done(self, result: KickResult) -> impl Future<Output = ()> + Send;
}

impl KickSink for oneshot::Sender<KickResult> {
    async fn done(self, result: KickResult) {
        // The receiver may be gone; nobody then cares.
        let _ = self.send(result);
    }
}

/// One queued kick: the command and where its result goes.
pub(crate) struct Job<S> {
    pub(crate) cmd: KickCommand,
    pub(crate) reply: Replier<S>,
}

/// Completes a kick once and keeps the outstanding count right even if the backend drops
/// the job without answering.
pub(crate) struct Replier<S> {
    sink: Option<S>,
    outstanding: Arc<AtomicUsize>,
}

impl<S: KickSink> Replier<S> {
    /// Deliver the result.
    pub(crate) async fn finish(mut self, result: KickResult) {
        if let Some(sink) = self.sink.take() {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            sink.done(result).await;
        }
    }
}

impl<S> Drop for Replier<S> {
    fn drop(&mut self) {
        if self.sink.take().is_some() {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A cheap, cloneable handle to a kicker task, delivering results to sinks of type `S`.
/// The task stops when every handle is dropped; kicks still pending then fail with
/// [`KickError::Disconnected`].
pub struct KickHandle<S = oneshot::Sender<KickResult>> {
    tx: mpsc::UnboundedSender<Job<S>>,
    outstanding: Arc<AtomicUsize>,
}

impl<S> Clone for KickHandle<S> {
    fn clone(&self) -> Self {
        KickHandle {
            tx: self.tx.clone(),
            outstanding: Arc::clone(&self.outstanding),
        }
    }
}

impl<S> fmt::Debug for KickHandle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KickHandle")
            .field("outstanding", &self.outstanding())
            .finish()
    }
}

impl<S> KickHandle<S> {
    pub(crate) fn new() -> (KickHandle<S>, mpsc::UnboundedReceiver<Job<S>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = KickHandle {
            tx,
            outstanding: Arc::new(AtomicUsize::new(0)),
        };
        (handle, rx)
    }

    /// Kicks sent and not yet answered (every source), for `director_max_parallel_kicks`
    /// and the `kicking` count of the process title.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }
}

impl<S: KickSink> KickHandle<S> {
    /// Queue a kick; its result goes to `sink`. Never waits, so the state owner can call
    /// it. False if the kicker task is gone (shutdown): then no result will come. The
    /// queue is unbounded: the owner limits kicks itself (`director_max_parallel_kicks`,
    /// `director_max_parallel_moves`).
    pub fn send(&self, cmd: KickCommand, sink: S) -> bool {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        let job = Job {
            cmd,
            reply: Replier {
                sink: Some(sink),
                outstanding: Arc::clone(&self.outstanding),
            },
        };
        // A failed send drops the job, whose Replier corrects the count.
        self.tx.send(job).is_ok()
    }
}

impl KickHandle<oneshot::Sender<KickResult>> {
    /// Kick and wait for the result.
    pub async fn kick(&self, cmd: KickCommand) -> KickResult {
        let (tx, rx) = oneshot::channel();
        self.send(cmd, tx);
        rx.await.unwrap_or(Err(KickError::Stopped))
    }
}
