//! Kicks through Dovecot 2.4's anvil (`dovecot-2.4.md` §6), which replaced 2.3's ipc.
//!
//! Takes the same [`KickCommand`]s as the ipc kicker and maps them (§6.5): `KICK` →
//! `KICK-USER`, `KICK-ALT` → `KICK-ALT-USER`, and `KICK-DIRECTOR-HASH` (which 2.4 lacks) →
//! `CONNECT-DUMP`, hash every listed user with the director's own
//! `director_username_hash`, then `KICK-USER <user> <conn-guid>` for each matching session
//! whose backend is not the excepted one. Anvil answers bare counts and drops the
//! connection on any error, so kicks run one at a time on one connection, which is opened
//! (with its handshake) on the first kick and after any failure.
//!
//! Every kick starts with a `CONNECT-DUMP` to know the sessions it targets, because a
//! count from anvil is no proof (§6.4): [`super::login_mode`] checks the first kicks of
//! each login service and kicks the sessions of services in 2.4's default login mode
//! through their processes' admin sockets. The result's count is sessions really ended.

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
use super::login_mode::{LoginModes, Mode, PROBE_STEP, PROBE_TIMEOUT};
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
    let mut modes = LoginModes::default();
    while let Some(job) = rx.recv().await {
        let result = tokio::time::timeout(
            ANVIL_KICK_TIMEOUT,
            kick(&path, &hasher, &mut conn, &mut modes, &job.cmd),
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
    modes: &mut LoginModes,
    cmd: &KickCommand,
) -> KickResult {
    if conn.is_none() {
        *conn = Some(connect(path).await?);
        modes.reset();
    }
    let Some(c) = conn.as_mut() else {
        return Err(KickError::ConnectFailed);
    };
    // The sessions the command is meant to end, to check afterwards that they did end.
    let (header, sessions) = dump(c).await?;
    let targets: Vec<ConnectDumpSession> = sessions
        .into_iter()
        .filter(|s| targets(hasher, &header, s, cmd))
        .collect();
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
        KickCommand::KickDirectorHash { .. } => {
            for session in &targets {
                let req = AnvilRequest::KickUser {
                    user: session.user.clone(),
                    conn_guid: Some(session.conn_guid.clone()),
                };
                total = total.saturating_add(request(c, &req).await?);
            }
        }
    }
    // Sessions of services known to ignore anvil, plus those the probe finds still there.
    let mut stayed: Vec<&ConnectDumpSession> = targets
        .iter()
        .filter(|s| modes.get(&s.service.unescaped()) == Some(Mode::IgnoresAnvil))
        .collect();
    let probed = modes.unknown(&targets);
    if total > 0 && !probed.is_empty() {
        let left = probe(c, &probed).await?;
        modes.learn(&probed, &left);
        stayed.extend(left);
    }
    let fallback = modes.fallback(path, &stayed).await;
    let count = total
        .saturating_sub(fallback.handled)
        .saturating_add(fallback.kicked);
    Ok(KickOutcome {
        count: Some(count),
        data: count.to_string(),
        ignored: fallback.ignored,
    })
}

/// Dump again until none of `probed` is listed, for at most [`PROBE_TIMEOUT`]; returns
/// those still listed.
async fn probe<'a>(
    c: &mut LineConn,
    probed: &[&'a ConnectDumpSession],
) -> Result<Vec<&'a ConnectDumpSession>, KickError> {
    let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
    loop {
        let (_, now) = dump(c).await?;
        let left: Vec<&ConnectDumpSession> = probed
            .iter()
            .copied()
            .filter(|p| now.iter().any(|s| s.conn_guid == p.conn_guid))
            .collect();
        if left.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(left);
        }
        tokio::time::sleep(PROBE_STEP).await;
    }
}

/// Whether `session` is one that `cmd` is meant to end.
fn targets(
    hasher: &UsernameHash,
    header: &ConnectDumpHeader,
    session: &ConnectDumpSession,
    cmd: &KickCommand,
) -> bool {
    match cmd {
        KickCommand::Kick { users } => users
            .iter()
            .any(|u| u.unescaped() == session.user.unescaped()),
        KickCommand::KickAlt { field, values } => header
            .alt_fields
            .iter()
            .position(|f| f.unescaped() == field.unescaped())
            .and_then(|i| session.alt_values.get(i))
            .is_some_and(|v| values.iter().any(|want| want.unescaped() == v.unescaped())),
        KickCommand::KickDirectorHash { hash, except_ip } => {
            matches(hasher, session, *hash, *except_ip)
        }
    }
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

/// `CONNECT-DUMP`: the alternative field names and every session anvil knows.
async fn dump(c: &mut LineConn) -> Result<(ConnectDumpHeader, Vec<ConnectDumpSession>), KickError> {
    let mut line = Vec::new();
    AnvilRequest::ConnectDump.encode(&mut line);
    c.queue(&line);
    let header = c.next_line().await.map_err(lost)?;
    let header = ConnectDumpHeader::parse(&header).unwrap_or(ConnectDumpHeader {
        alt_fields: Vec::new(),
    });
    let mut sessions = Vec::new();
    loop {
        let line = c.next_line().await.map_err(lost)?;
        if line.is_empty() {
            return Ok((header, sessions));
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
