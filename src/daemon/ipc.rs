//! The client side of Dovecot's ipc service, used to kick login sessions (`auth-proxy.md`
//! §10). Mirrors `src/lib-master/ipc-client.c` as the director uses it.
//!
//! One task owns the single connection to `<base_dir>/ipc`, opened lazily on the first
//! command. The state owner hands it commands through an unbounded queue (so the owner never
//! waits) with a token; every command gets exactly one [`Event::KickDone`] back, in request
//! order: the `+`/`-` reply, or an error when connecting fails or the connection drops.

use std::collections::VecDeque;
use std::path::PathBuf;

use director_parsers::framing::AUTH_MAX_LINE;
use director_parsers::ipc::{IpcReply, IpcRequest};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::events::{Event, OwnerHandle};
use super::lines::{LineEvent, LineReader};

/// The owner's side: queue a kick command.
#[derive(Debug, Clone)]
pub struct IpcClient {
    tx: mpsc::UnboundedSender<(u64, IpcRequest)>,
}

impl IpcClient {
    /// Queues `req`; its result arrives as [`Event::KickDone`] with `token`. Returns false if
    /// the ipc task is gone (shutdown), in which case no result will arrive.
    pub fn send(&self, token: u64, req: IpcRequest) -> bool {
        self.tx.send((token, req)).is_ok()
    }
}

/// Starts the ipc task; it ends on `shutdown` or when every [`IpcClient`] is dropped.
pub fn spawn(
    path: PathBuf,
    owner: OwnerHandle,
    shutdown: CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> IpcClient {
    let (tx, rx) = mpsc::unbounded_channel();
    tracker.spawn(run(path, rx, owner, shutdown));
    IpcClient { tx }
}

struct Conn {
    reader: LineReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

async fn run(
    path: PathBuf,
    mut rx: mpsc::UnboundedReceiver<(u64, IpcRequest)>,
    owner: OwnerHandle,
    shutdown: CancellationToken,
) {
    let mut conn: Option<Conn> = None;
    let mut pending: VecDeque<u64> = VecDeque::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            cmd = rx.recv() => {
                let Some((token, req)) = cmd else { return };
                if conn.is_none() {
                    match UnixStream::connect(&path).await {
                        Ok(s) => {
                            let (r, w) = s.into_split();
                            conn = Some(Conn { reader: LineReader::new(r, AUTH_MAX_LINE), writer: w });
                        }
                        Err(e) => {
                            error!(
                                "ipc: net_connect_unix({}) failed: {} - kicks are not delivered",
                                path.display(),
                                super::describe_io_error(&e)
                            );
                            if !done(&owner, token, Err("ipc connect failed".into())).await {
                                return;
                            }
                            continue;
                        }
                    }
                }
                let mut line = Vec::new();
                req.encode(&mut line);
                let c = conn.as_mut().expect("connected just above");
                if let Err(e) = c.writer.write_all(&line).await {
                    error!("ipc: write() failed: {e}");
                    conn = None;
                    pending.push_back(token);
                    if !fail_all(&owner, &mut pending, "Disconnected").await {
                        return;
                    }
                    continue;
                }
                pending.push_back(token);
            }
            ev = next_reply(&mut conn), if conn.is_some() => {
                let result = match ev {
                    Ok(LineEvent::Line(line)) => match IpcReply::parse(&line) {
                        Ok(IpcReply::Success(d)) => Ok(String::from_utf8_lossy(&d).into_owned()),
                        Ok(IpcReply::Failure(d)) => Err(String::from_utf8_lossy(&d).into_owned()),
                        Ok(IpcReply::Data(_)) => {
                            warn!("login process sent unexpected reply to kick");
                            continue;
                        }
                        Err(_) => {
                            error!("ipc: Invalid input: {}", super::loggable_line(&line));
                            conn = None;
                            if !fail_all(&owner, &mut pending, "Disconnected").await {
                                return;
                            }
                            continue;
                        }
                    },
                    Ok(LineEvent::TooLong) | Ok(LineEvent::Eof) | Err(_) => {
                        if !pending.is_empty() {
                            error!("ipc: Disconnected with {} kick commands pending", pending.len());
                        }
                        conn = None;
                        if !fail_all(&owner, &mut pending, "Disconnected").await {
                            return;
                        }
                        continue;
                    }
                };
                match pending.pop_front() {
                    Some(token) => {
                        if !done(&owner, token, result).await {
                            return;
                        }
                    }
                    None => warn!("ipc: reply without a pending command, ignored"),
                }
            }
        }
    }
}

async fn next_reply(conn: &mut Option<Conn>) -> std::io::Result<LineEvent> {
    match conn {
        Some(c) => c.reader.next_line().await,
        None => std::future::pending().await,
    }
}

async fn done(owner: &OwnerHandle, token: u64, result: Result<String, String>) -> bool {
    owner.send(Event::KickDone { token, result }).await
}

async fn fail_all(owner: &OwnerHandle, pending: &mut VecDeque<u64>, why: &str) -> bool {
    while let Some(token) = pending.pop_front() {
        if !done(owner, token, Err(why.to_string())).await {
            return false;
        }
    }
    true
}
