//! Kicks through a 2.4 login process's own admin socket, `BASE/srv.<service>/<pid>`
//! (`director_parsers::master_admin`).
//!
//! 2.4's default login mode (`restart_request_count = 1`) registers sessions with anvil as
//! kick type `W`: anvil then sends the process `KICK-USER-SIGNAL` and SIGTERM, which a login
//! process ignores (it has no "current user"), yet anvil counts the session as kicked. The
//! same process's admin socket also takes `KICK-USER <user> <conn-guid>`, which does close
//! the session, in either mode (verified on 2.4.1). The sockets are 0600 root in a 0700
//! root directory, so this needs root.

use std::path::{Path, PathBuf};
use std::time::Duration;

use director_parsers::anvil::{AnvilRequest, ConnectDumpSession};
use director_parsers::ipc::IpcReply;
use director_parsers::master_admin::{parse_server_greeting, CLIENT_HANDSHAKE};

use super::conn::LineConn;

/// A process that does not answer within this is treated as unreachable.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// `<dir>/srv.<service>`, where `dir` is the directory of the anvil socket (Dovecot's
/// base_dir). `None` for a service name that is not a plain file name.
pub(crate) fn service_dir(anvil: &Path, service: &[u8]) -> Option<PathBuf> {
    let name = std::str::from_utf8(service).ok()?;
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    Some(anvil.parent()?.join(format!("srv.{name}")))
}

/// Kick one session (as listed by `CONNECT-DUMP`) through its process's admin socket.
/// Returns the process's count (1 if it closed the session), or why it could not.
pub(crate) async fn kick_session(
    anvil: &Path,
    session: &ConnectDumpSession,
) -> Result<u32, String> {
    let dir = service_dir(anvil, &session.service.unescaped())
        .ok_or_else(|| "invalid service name".to_string())?;
    let path = dir.join(session.pid.to_string());
    let exchange = async {
        let mut c = LineConn::connect(&path)
            .await
            .map_err(|e| format!("connect({}) failed: {e}", path.display()))?;
        c.queue(CLIENT_HANDSHAKE);
        let mut line = Vec::new();
        AnvilRequest::KickUser {
            user: session.user.clone(),
            conn_guid: Some(session.conn_guid.clone()),
        }
        .encode(&mut line);
        c.queue(&line);
        let greeting = c.next_line().await.map_err(|e| format!("{e}"))?;
        parse_server_greeting(&greeting).map_err(|_| {
            format!(
                "unexpected handshake: {}",
                String::from_utf8_lossy(&greeting)
            )
        })?;
        let reply = c.next_line().await.map_err(|e| format!("{e}"))?;
        match IpcReply::parse(&reply) {
            Ok(r @ IpcReply::Success(_)) => Ok(r.kicked_count().unwrap_or(0)),
            _ => Err(format!("reply {}", String::from_utf8_lossy(&reply))),
        }
    };
    tokio::time::timeout(ADMIN_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("{}: timed out", path.display())))
}

/// Whether this process can list `<dir>/srv.<service>` directories next to `anvil` (the
/// start-up check: without it, sessions in 2.4's default login mode cannot be kicked).
pub fn admin_sockets_reachable(anvil: &Path) -> Result<(), String> {
    let Some(dir) = anvil.parent() else {
        return Err(format!("{} has no directory", anvil.display()));
    };
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut found = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("srv.") {
            continue;
        }
        found = true;
        std::fs::read_dir(entry.path()).map_err(|e| format!("{}: {e}", entry.path().display()))?;
    }
    if found {
        Ok(())
    } else {
        Err(format!("no srv.<service> directories in {}", dir.display()))
    }
}
