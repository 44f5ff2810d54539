//! Kicks through Dovecot 2.3's ipc service (`auth-proxy.md` §10).
//!
//! Replaces the director's `ipc_client` (`src/lib-master/ipc-client.c`) and the reply
//! handling of `director_kick_user_callback` in `src/director/director.c`. One UNIX
//! connection to `<base_dir>/ipc`, opened on the first kick, no handshake. Each kick is
//! written as `proxy\t*\t<command>` at once (pipelined) and the final `+`/`-` lines are
//! matched to the kicks in order.

use std::collections::VecDeque;
use std::path::PathBuf;

use director_parsers::ipc::{IpcReply, IpcRequest};
use tokio::sync::mpsc;

use super::conn::LineConn;
use super::handle::{Job, KickError, KickHandle, KickOutcome, KickSink, Replier};

/// Start the ipc kicker for the socket at `path` (usually `<base_dir>/ipc`). Must be
/// called inside a tokio runtime.
pub fn spawn_ipc(path: PathBuf) -> KickHandle {
    spawn_ipc_with(path)
}

/// [`spawn_ipc`] with results delivered to sinks of type `S` (e.g. one that forwards them
/// to the state owner's queue with a token).
pub fn spawn_ipc_with<S: KickSink>(path: PathBuf) -> KickHandle<S> {
    let (handle, rx) = KickHandle::new();
    tokio::spawn(run(path, rx));
    handle
}

async fn run<S: KickSink>(path: PathBuf, mut rx: mpsc::UnboundedReceiver<Job<S>>) {
    let mut conn: Option<LineConn> = None;
    let mut pending: VecDeque<Replier<S>> = VecDeque::new();
    loop {
        let next_line = async {
            match conn.as_mut() {
                Some(c) => c.next_line().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            job = rx.recv() => {
                let Some(job) = job else { break };
                if conn.is_none() {
                    match LineConn::connect(&path).await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            tracing::error!(
                                "ipc: net_connect_unix({}) failed: {e} - kicks are not delivered",
                                path.display()
                            );
                            job.reply.finish(Err(KickError::ConnectFailed)).await;
                            continue;
                        }
                    }
                }
                let mut line = Vec::new();
                IpcRequest::proxy_all(job.cmd).encode(&mut line);
                if let Some(c) = conn.as_mut() {
                    c.queue(&line);
                }
                pending.push_back(job.reply);
            }
            line = next_line => match line {
                Ok(line) => {
                    if !reply_line(&line, &mut pending).await {
                        conn = None;
                        fail_all(&mut pending).await;
                    }
                }
                Err(e) => {
                    if !pending.is_empty() {
                        tracing::debug!("ipc connection lost: {e}");
                    }
                    conn = None;
                    fail_all(&mut pending).await;
                }
            },
        }
    }
    fail_all(&mut pending).await;
}

/// Handle one reply line; false if the connection must be dropped.
async fn reply_line<S: KickSink>(line: &[u8], pending: &mut VecDeque<Replier<S>>) -> bool {
    let text = String::from_utf8_lossy(line);
    if pending.is_empty() {
        tracing::error!("IPC proxy sent unexpected input: {text}");
        return true;
    }
    match IpcReply::parse(line) {
        Ok(reply @ IpcReply::Success(_)) => {
            let outcome = KickOutcome {
                count: reply.kicked_count(),
                data: text[1..].to_string(),
                ignored: 0,
            };
            if let Some(r) = pending.pop_front() {
                r.finish(Ok(outcome)).await;
            }
            true
        }
        Ok(IpcReply::Failure(_)) => {
            if let Some(r) = pending.pop_front() {
                r.finish(Err(KickError::Failed(text[1..].to_string())))
                    .await;
            }
            true
        }
        Ok(IpcReply::Data(_)) => {
            // The command is not finished by an intermediate line.
            tracing::error!(
                "login process sent unexpected reply to kick: {}",
                &text[1..]
            );
            true
        }
        Err(_) => {
            tracing::error!("IPC proxy sent invalid input: {text}");
            if let Some(r) = pending.pop_front() {
                r.finish(Err(KickError::InvalidInput)).await;
            }
            false
        }
    }
}

async fn fail_all<S: KickSink>(pending: &mut VecDeque<Replier<S>>) {
    for r in pending.drain(..) {
        r.finish(Err(KickError::Disconnected)).await;
    }
}
