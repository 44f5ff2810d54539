//! Kicks through Dovecot 2.4's anvil (`dovecot-2.4.md` §6), which replaced 2.3's ipc.
//!
//! Takes the same [`KickCommand`]s as the ipc kicker and maps them (§6.5): `KICK` →
//! `KICK-USER`, `KICK-ALT` → `KICK-ALT-USER`, and `KICK-DIRECTOR-HASH` (which 2.4 lacks) →
//! `CONNECT-DUMP`, hash every listed user with the director's own
//! `director_username_hash`, then `KICK-USER <user> <conn-guid>` for each matching session
//! whose backend is not the excepted one. Anvil answers bare counts and drops the
//! connection on any error, so kicks run one at a time on one connection, which is opened
//! (with its handshake) on the first kick and after any failure.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use director_parsers::anvil::{
    parse_server_greeting, AnvilRequest, ConnectDumpHeader, ConnectDumpSession, KickReply,
    CLIENT_HANDSHAKE,
};
use director_parsers::ipc::KickCommand;
use tokio::sync::mpsc;

use super::conn::{LineConn, LineError};
use super::handle::{Job, KickError, KickHandle, KickOutcome, KickResult, KickSink};
use crate::username_hash::UsernameHash;

/// A kick (with its dump and every per-session kick) that takes longer is abandoned and the
/// connection dropped, so a stuck anvil cannot hold up every later kick.
pub const ANVIL_KICK_TIMEOUT: Duration = Duration::from_secs(30);
/// Most sessions one `CONNECT-DUMP` may list before we give up on it.
const MAX_DUMP_SESSIONS: usize = 1_000_000;

/// Start the anvil kicker for the socket at `path` (usually `<base_dir>/anvil`); `hasher`
/// is `director_username_hash`, used to emulate `KICK-DIRECTOR-HASH`. Must be called
/// inside a tokio runtime.
pub fn spawn_anvil(path: PathBuf, hasher: UsernameHash) -> KickHandle {
    spawn_anvil_with(path, hasher)
}

/// [`spawn_anvil`] with results delivered to sinks of type `S`.
pub fn spawn_anvil_with<S: KickSink>(path: PathBuf, hasher: UsernameHash) -> KickHandle<S> {
    let (handle, rx) = KickHandle::new();
    tokio::spawn(run(path, hasher, rx));
    handle
}

async fn run<S: KickSink>(
    path: PathBuf,
    hasher: UsernameHash,
    mut rx: mpsc::UnboundedReceiver<Job<S>>,
) {
    let mut conn: Option<LineConn> = None;
    while let Some(job) = rx.recv().await {
        let result = tokio::time::timeout(
            ANVIL_KICK_TIMEOUT,
            kick(&path, &hasher, &mut conn, &job.cmd),
        )
        .await
        .unwrap_or_else(|_| {
            tracing::error!("anvil: kick timed out, reconnecting");
            Err(KickError::Disconnected)
        });
        if result.is_err() {
            conn = None;
        }
        job.reply.finish(result).await;
    }
}

async fn kick(
    path: &Path,
    hasher: &UsernameHash,
    conn: &mut Option<LineConn>,
    cmd: &KickCommand,
) -> KickResult {
    if conn.is_none() {
        *conn = Some(connect(path).await?);
    }
    let Some(c) = conn.as_mut() else {
        return Err(KickError::ConnectFailed);
    };
    let mut total = 0u32;
    match cmd {
        KickCommand::Kick { users } => {
            for user in users {
                let req = AnvilRequest::KickUser {
                    user: user.clone(),
                    conn_guid: None,
                };
                total = total.saturating_add(request(c, &req).await?);
            }
        }
        KickCommand::KickAlt { field, values } => {
            for value in values {
                let req = AnvilRequest::KickAltUser {
                    field: field.clone(),
                    value: value.clone(),
                    except_ip: None,
                };
                total = total.saturating_add(request(c, &req).await?);
            }
        }
        KickCommand::KickDirectorHash { hash, except_ip } => {
            for session in dump(c).await? {
                if !matches(hasher, &session, *hash, *except_ip) {
                    continue;
                }
                let req = AnvilRequest::KickUser {
                    user: session.user,
                    conn_guid: Some(session.conn_guid),
                };
                total = total.saturating_add(request(c, &req).await?);
            }
        }
    }
    Ok(KickOutcome {
        count: Some(total),
        data: total.to_string(),
    })
}

/// Whether a dumped session is one `KICK-DIRECTOR-HASH <hash> [<except_ip>]` would close.
fn matches(
    hasher: &UsernameHash,
    session: &ConnectDumpSession,
    hash: u32,
    except_ip: Option<IpAddr>,
) -> bool {
    hasher.hash(&session.user.unescaped()) == hash
        && (except_ip.is_none() || session.dest_ip != except_ip)
}

async fn connect(path: &Path) -> Result<LineConn, KickError> {
    let mut c = LineConn::connect(path).await.map_err(|e| {
        tracing::error!(
            "anvil: net_connect_unix({}) failed: {e} - kicks are not delivered",
            path.display()
        );
        KickError::ConnectFailed
    })?;
    c.queue(CLIENT_HANDSHAKE);
    let greeting = c.next_line().await.map_err(|e| {
        tracing::error!("anvil: handshake failed: {e}");
        KickError::ConnectFailed
    })?;
    if parse_server_greeting(&greeting).is_err() {
        tracing::error!(
            "anvil: unexpected handshake: {}",
            String::from_utf8_lossy(&greeting)
        );
        return Err(KickError::ConnectFailed);
    }
    Ok(c)
}

fn lost(e: LineError) -> KickError {
    tracing::error!("anvil: connection lost: {e}");
    KickError::Disconnected
}

/// Send a kick and read its count.
async fn request(c: &mut LineConn, req: &AnvilRequest) -> Result<u32, KickError> {
    let mut line = Vec::new();
    req.encode(&mut line);
    c.queue(&line);
    let reply = c.next_line().await.map_err(lost)?;
    KickReply::parse(&reply).map(|r| r.count).map_err(|_| {
        tracing::error!(
            "anvil: invalid kick reply: {}",
            String::from_utf8_lossy(&reply)
        );
        KickError::InvalidInput
    })
}

/// `CONNECT-DUMP`: every session anvil knows.
async fn dump(c: &mut LineConn) -> Result<Vec<ConnectDumpSession>, KickError> {
    let mut line = Vec::new();
    AnvilRequest::ConnectDump.encode(&mut line);
    c.queue(&line);
    let header = c.next_line().await.map_err(lost)?;
    // The header only names the alternative fields; nothing here needs them.
    let _ = ConnectDumpHeader::parse(&header);
    let mut sessions = Vec::new();
    loop {
        let line = c.next_line().await.map_err(lost)?;
        if line.is_empty() {
            return Ok(sessions);
        }
        if sessions.len() >= MAX_DUMP_SESSIONS {
            tracing::error!("anvil: CONNECT-DUMP lists too many sessions");
            return Err(KickError::InvalidInput);
        }
        match ConnectDumpSession::parse(&line) {
            Ok(s) => sessions.push(s),
            Err(e) => tracing::warn!(
                "anvil: skipping CONNECT-DUMP line ({e}): {}",
                String::from_utf8_lossy(&line)
            ),
        }
    }
}
