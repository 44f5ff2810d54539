//! The admin connection kind (`director-admin`, `admin-protocol.md` §§1-3): the doveadm
//! protocol's transport. Mirrors the I/O half of Dovecot's `src/director/doveadm-connection.c`.
//!
//! This task greets, checks the client's handshake, frames and parses command lines, and
//! writes replies; the commands themselves run in the state owner. While a command is
//! outstanding the connection's input is not read (deferred commands, §3), and a protocol
//! failure closes the connection without a reply after logging Dovecot's exact text.

use director_parsers::admin::{Handshake, Rejection, Reply, Request, UserEntry, INCOMPATIBLE_LOG};
use director_parsers::framing::DIRECTOR_MAX_LINE;
use director_parsers::ip::ip_to_string;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use super::events::{AdminReply, OwnerHandle};
use super::lines::{LineEvent, LineReader};
use crate::state::UserListing;

/// USER-LIST rows encoded per write: about 100 KB, so a listing of millions never holds
/// more than this much encoded text, and other tasks run between chunks.
const LIST_CHUNK_ROWS: usize = 3000;

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
        let written = match reply {
            Some(AdminReply::Bytes(bytes)) => tokio::select! {
                _ = shutdown.cancelled() => break,
                r = w.write_all(&bytes) => r,
            },
            Some(AdminReply::Users(listing)) => tokio::select! {
                _ = shutdown.cancelled() => break,
                r = write_listing(&mut w, &listing) => r,
            },
            None => break,
        };
        if let Err(e) = written {
            debug!("doveadm: write failed: {e}");
            break;
        }
    }
    let _ = w.shutdown().await;
}

/// Writes USER-LIST's rows a chunk at a time, each write waiting for the socket to drain,
/// then the terminating empty line.
async fn write_listing<W: AsyncWrite + Unpin>(
    w: &mut W,
    listing: &UserListing,
) -> std::io::Result<()> {
    let hosts: Vec<String> = listing.hosts.iter().map(ip_to_string).collect();
    let mut buf = Vec::with_capacity(LIST_CHUNK_ROWS * 40);
    for chunk in listing.rows.chunks(LIST_CHUNK_ROWS) {
        buf.clear();
        for &(hash, expire, host) in chunk {
            let ip = hosts.get(host as usize).map_or("", String::as_str);
            UserEntry::encode_parts(hash, expire, ip.as_bytes(), &mut buf);
        }
        w.write_all(&buf).await?;
    }
    buf.clear();
    Reply::End.encode(&mut buf);
    w.write_all(&buf).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    /// Chunked writing gives exactly the bytes of encoding every row as one reply.
    #[tokio::test]
    async fn listing_in_chunks_is_the_whole_reply() {
        let hosts: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fd00::2".parse().unwrap()];
        let rows: Vec<(u32, u32, u32)> = (0..2 * LIST_CHUNK_ROWS as u32 + 7)
            .map(|i| (i.wrapping_mul(2_654_435_761), 1_700_000_000 + i, i % 2))
            .collect();
        let listing = UserListing { hosts, rows };
        let mut want = Vec::new();
        for &(hash, expire, host) in &listing.rows {
            Reply::User(UserEntry {
                hash,
                expire,
                ip: listing.hosts[host as usize],
            })
            .encode(&mut want);
        }
        Reply::End.encode(&mut want);
        let mut got = Vec::new();
        write_listing(&mut got, &listing).await.unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            String::from_utf8(want).unwrap()
        );

        let mut empty = Vec::new();
        write_listing(&mut empty, &UserListing::default())
            .await
            .unwrap();
        assert_eq!(empty, b"\n");
    }
}
