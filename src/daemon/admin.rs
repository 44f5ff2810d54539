//! The admin connection kind (`director-admin`, `admin-protocol.md` §§1-3): the doveadm
//! protocol's transport. Mirrors the I/O half of Dovecot's `src/director/doveadm-connection.c`.
//!
//! This task greets, checks the client's handshake, frames and parses command lines, and
//! writes replies; the commands themselves run in the state owner. While a command is
//! outstanding the connection's input is not read (deferred commands, §3), and a protocol
//! failure closes the connection without a reply after logging Dovecot's exact text.

use director_parsers::admin::{Handshake, Rejection, Request, INCOMPATIBLE_LOG};
use director_parsers::framing::DIRECTOR_MAX_LINE;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use super::events::{AdminReply, OwnerHandle};
use super::lines::{LineEvent, LineReader};

/// Serves one doveadm connection.
pub async fn serve(stream: UnixStream, owner: OwnerHandle, shutdown: CancellationToken) {
    let (r, mut w) = stream.into_split();
    let mut greeting = Vec::new();
    Handshake::CURRENT.encode(&mut greeting);
    if let Err(e) = w.write_all(&greeting).await {
        debug!("doveadm: write failed: {e}");
        return;
    }
    let mut reader = LineReader::new(r, DIRECTOR_MAX_LINE);
    let mut handshaked = false;
    loop {
        let ev = tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = reader.next_line() => ev,
        };
        let line = match ev {
            Ok(LineEvent::Line(line)) => line,
            Ok(LineEvent::TooLong) => {
                // Dovecot would stop reading and hang; we close instead (admin-protocol.md §1).
                error!("doveadm sent a line longer than {DIRECTOR_MAX_LINE} bytes, disconnecting");
                break;
            }
            Ok(LineEvent::Eof) => break,
            Err(e) => {
                debug!("doveadm: read failed: {e}");
                break;
            }
        };
        if !handshaked {
            if Handshake::parse(&line).is_err() {
                error!("{INCOMPATIBLE_LOG}");
                break;
            }
            handshaked = true;
            continue;
        }
        let request = match Request::parse(&line) {
            Ok(r) => r,
            Err(e) => {
                error!("{}", Rejection::classify(&line, &e));
                break;
            }
        };
        let reply = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = owner.admin(request) => r,
        };
        let Some(AdminReply::Bytes(bytes)) = reply else {
            break;
        };
        let written = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = w.write_all(&bytes) => r,
        };
        if let Err(e) = written {
            debug!("doveadm: write failed: {e}");
            break;
        }
    }
    let _ = w.shutdown().await;
}
