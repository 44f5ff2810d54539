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
use super::handle::{Job, KickError, KickHandle, KickOutcome, Replier};

/// Start the ipc kicker for the socket at `path` (usually `<base_dir>/ipc`). Must be
/// called inside a tokio runtime.
pub fn spawn_ipc(path: PathBuf) -> KickHandle {
    let (handle, rx) = KickHandle::new();
    tokio::spawn(run(path, rx));
    handle
}

async fn run(path: PathBuf, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut conn: Option<LineConn> = None;
    let mut pending: VecDeque<Replier> = VecDeque::new();
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
                            tracing::error!("connect({}) failed: {e}", path.display());
                            job.reply.finish(Err(KickError::ConnectFailed));
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
                    if !reply_line(&line, &mut pending) {
                        conn = None;
                        fail_all(&mut pending);
                    }
                }
                Err(e) => {
                    if !pending.is_empty() {
                        tracing::debug!("ipc connection lost: {e}");
                    }
                    conn = None;
                    fail_all(&mut pending);
                }
            },
        }
    }
    fail_all(&mut pending);
}

/// Handle one reply line; false if the connection must be dropped.
fn reply_line(line: &[u8], pending: &mut VecDeque<Replier>) -> bool {
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
            };
            if let Some(r) = pending.pop_front() {
                r.finish(Ok(outcome));
            }
            true
        }
        Ok(IpcReply::Failure(_)) => {
            if let Some(r) = pending.pop_front() {
                r.finish(Err(KickError::Failed(text[1..].to_string())));
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
                r.finish(Err(KickError::InvalidInput));
            }
            false
        }
    }
}

fn fail_all(pending: &mut VecDeque<Replier>) {
    for r in pending.drain(..) {
        r.finish(Err(KickError::Disconnected));
    }
}
