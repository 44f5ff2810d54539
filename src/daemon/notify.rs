//! proxy-notify readers (`auth-proxy.md` §9): login processes write one proxied user per line
//! to refresh it. Mirrors Dovecot's `src/director/notify-connection.c`.
//!
//! Each line's raw bytes (no unescaping, no master-user cut) are hashed here and handed to the
//! state owner, which refreshes that hash in every tag. Nothing is ever written back. A FIFO
//! is shared by all login processes, so it is never closed because of one bad line: an
//! oversized line is logged and skipped. A UNIX-socket notify client is simply disconnected.

use std::sync::Arc;

use director_parsers::notify::{NotifyLine, MAX_LINE};
use tokio::io::AsyncRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use super::events::{Event, OwnerHandle};
use super::lines::{LineEvent, LineReader};
use crate::username_hash::UsernameHash;

/// Where the notify lines come from: decides what EOF and oversized lines mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifySource {
    /// The shared FIFO (opened read-write, so EOF should never happen).
    Fifo,
    /// One connection on a `*-notify` UNIX listener.
    Socket,
}

/// Reads notify lines from `input` until EOF, error, or `shutdown`.
pub async fn serve<R: AsyncRead + Unpin>(
    input: R,
    source: NotifySource,
    hasher: Arc<UsernameHash>,
    owner: OwnerHandle,
    shutdown: CancellationToken,
) {
    let mut reader = LineReader::new(input, MAX_LINE);
    loop {
        let ev = tokio::select! {
            _ = shutdown.cancelled() => return,
            ev = reader.next_line() => ev,
        };
        match ev {
            Ok(LineEvent::Line(line)) => {
                let Ok(parsed) = NotifyLine::parse(&line) else {
                    continue;
                };
                let hash = hasher.hash(parsed.hash_key());
                let line = String::from_utf8_lossy(parsed.hash_key()).into_owned();
                if !owner.send(Event::NotifyRefresh { hash, line }).await {
                    return;
                }
            }
            Ok(LineEvent::TooLong) => match source {
                NotifySource::Fifo => {
                    error!("notify: line longer than {} bytes, skipped", MAX_LINE - 1);
                    reader.discard_current_line();
                }
                NotifySource::Socket => {
                    error!(
                        "notify: client sent a line longer than {} bytes, disconnecting",
                        MAX_LINE - 1
                    );
                    return;
                }
            },
            Ok(LineEvent::Eof) => {
                match source {
                    NotifySource::Fifo => error!("notify: read() unexpectedly returned EOF"),
                    NotifySource::Socket => debug!("notify: client disconnected"),
                }
                return;
            }
            Err(e) => {
                error!("notify: read() failed: {e}");
                return;
            }
        }
    }
}
