//! The authreply connection kind (`auth-proxy.md` §8): an external component sends auth reply
//! lines and gets them back decorated, delayed or turned into `FAIL ... temp_fail`.
//! Mirrors the authreply branch of Dovecot's `src/director/login-connection.c`.

use std::sync::Arc;

use director_parsers::authreply::{ClientHandshake, SERVER_GREETING};
use director_parsers::framing::AUTH_MAX_LINE;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use super::lines::{LineEvent, LineReader};
use super::proxy::{pump, PumpEnd};
use super::reply::ReplyRewriter;

/// Serves one authreply client until it disconnects or `shutdown` fires.
pub async fn serve(stream: UnixStream, rewriter: Arc<ReplyRewriter>, shutdown: CancellationToken) {
    let (r, mut w) = stream.into_split();
    if let Err(e) = w.write_all(SERVER_GREETING).await {
        debug!("authreply: write failed: {e}");
        return;
    }
    let mut reader = LineReader::new(r, AUTH_MAX_LINE);
    let first = tokio::select! {
        _ = shutdown.cancelled() => return,
        ev = reader.next_line() => ev,
    };
    match first {
        Ok(LineEvent::Line(line)) => {
            if ClientHandshake::parse(&line).is_err() {
                error!(
                    "authreply client sent invalid handshake: {}",
                    super::loggable_line(&line)
                );
                return;
            }
        }
        Ok(LineEvent::TooLong) => {
            error!("authreply client sent invalid handshake: line too long");
            return;
        }
        Ok(LineEvent::Eof) => return,
        Err(e) => {
            debug!("authreply: read failed: {e}");
            return;
        }
    }
    match pump(&mut reader, &mut w, &rewriter, &shutdown).await {
        PumpEnd::TooLong => error!("authreply client sent more than {AUTH_MAX_LINE} bytes"),
        PumpEnd::ReadError(e) => debug!("authreply: read failed: {e}"),
        PumpEnd::Eof | PumpEnd::Stopped | PumpEnd::WriteError => {}
    }
    let _ = w.shutdown().await;
}
