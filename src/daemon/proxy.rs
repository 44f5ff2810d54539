//! The auth and userdb connection kinds: a login process (or LMTP) talks to us as if we were
//! the auth server, and we relay to the real one (`auth-proxy.md` §§2, 7).
//!
//! Mirrors Dovecot's `src/director/login-connection.c` with `auth-connection.c`: one upstream
//! connection per downstream connection, downstream → upstream a raw byte copy, upstream →
//! downstream line based with result lines handed to the [`ReplyRewriter`]. Either side
//! closing closes both. Held-back replies (delayed host lookups) are written when they
//! complete, so replies for different request IDs may be reordered.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use director_parsers::framing::AUTH_MAX_LINE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use super::events::HostQuery;
use super::lines::{LineEvent, LineReader};
use super::reply::{Asked, Processed, ReplyRewriter};

/// How long connecting to the auth server is retried on ECONNREFUSED/EAGAIN
/// (`auth-connection.c`: `AUTH_CONNECT_RETRY_TIMEOUT_MSECS`-like behaviour of `net_connect_unix_with_retries`).
const AUTH_CONNECT_RETRY: Duration = Duration::from_secs(1);

/// Downstream → upstream copy chunk size (Dovecot reads up to its 4096-byte buffer).
const COPY_CHUNK: usize = 4096;

/// Initial capacity of a connection's reply batch buffer.
const BATCH_START: usize = 4096;
/// At most this many lines are asked for before their answers are awaited; the rest of
/// a long burst waits for the next round (bounds the latency of the first reply).
const BATCH_LINES: usize = 128;
/// A batch buffer grown beyond this (a burst of long lines) is shrunk back after its write.
const BATCH_KEEP: usize = 64 * 1024;

/// Connects to `path`, retrying while the server is refusing or overloaded, for at most 1 s.
pub async fn connect_with_retries(path: &std::path::Path) -> io::Result<UnixStream> {
    let deadline = tokio::time::Instant::now() + AUTH_CONNECT_RETRY;
    let mut pause = Duration::from_millis(10);
    loop {
        match UnixStream::connect(path).await {
            Ok(s) => return Ok(s),
            Err(e) => {
                let retryable = matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNREFUSED) | Some(libc::EAGAIN)
                );
                if !retryable || tokio::time::Instant::now() + pause > deadline {
                    return Err(e);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// Serves one accepted auth/userdb connection until either side closes or `shutdown` fires.
pub async fn serve(
    downstream: UnixStream,
    upstream_path: PathBuf,
    upstream_name: &'static str,
    rewriter: Arc<ReplyRewriter>,
    shutdown: CancellationToken,
) {
    let upstream = match connect_with_retries(&upstream_path).await {
        Ok(s) => s,
        Err(e) => {
            // Closing without a byte is how the login process learns the auth side is down.
            error!(
                "connect({upstream_name}) failed: {}",
                super::describe_io_error(&e)
            );
            return;
        }
    };
    let (down_r, mut down_w) = downstream.into_split();
    let (up_r, up_w) = upstream.into_split();

    // Raw copy login → auth in its own task: it never waits for us, and we never wait for it.
    // A child of `shutdown`, so the pump waits on one token for both reasons to stop.
    let down_closed = shutdown.child_token();
    let copier = {
        let down_closed = down_closed.clone();
        tokio::spawn(async move {
            let res = copy_raw(down_r, up_w).await;
            if let Err(e) = res {
                debug!("login connection read/write failed: {e}");
            }
            down_closed.cancel();
        })
    };

    let mut reader = LineReader::new(up_r, AUTH_MAX_LINE);
    match pump(&mut reader, &mut down_w, &rewriter, &down_closed).await {
        PumpEnd::TooLong => error!("BUG: Auth server sent us more than {AUTH_MAX_LINE} bytes"),
        PumpEnd::Eof => error!("Auth server disconnected unexpectedly"),
        PumpEnd::ReadError(e) => error!("read({upstream_name}) failed: {e}"),
        PumpEnd::Stopped | PumpEnd::WriteError => {}
    }
    // Dropping the halves closes both sockets.
    copier.abort();
    if let Err(e) = down_w.shutdown().await {
        debug!("shutdown of login connection failed: {e}");
    }
}

/// Copies bytes unmodified until EOF on `from` or an error on either side.
async fn copy_raw<R, W>(mut from: R, mut to: W) -> io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; COPY_CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
    }
}

/// Why [`pump`] returned.
#[derive(Debug)]
pub enum PumpEnd {
    /// The line source closed.
    Eof,
    /// A line exceeded the limit.
    TooLong,
    /// Reading failed.
    ReadError(io::Error),
    /// Writing to the destination failed (it went away).
    WriteError,
    /// Shutdown, the other side closed, or the state owner is gone.
    Stopped,
}

/// Reads result lines from `reader`, has them processed by `rewriter` and writes the results
/// to `out`, interleaving delayed replies as they complete. Returns when the source ends,
/// the destination fails or `stop` fires (shutdown, or the other side closed: a child
/// token of the daemon's shutdown token). Pending delayed replies are
/// dropped then: the owner still creates/refreshes the user (`auth-proxy.md` §6.3).
///
/// Every complete line already read is processed before anything is written, and the
/// results go out in one write: one `sendto` per read instead of one per reply line
/// roughly halved the CPU per request under pipelined load (BENCHMARKS.md). Within such a
/// batch all host requests are sent to the state owner before the first answer is awaited,
/// and the answers are taken in line order, so replies keep the order of their lines.
pub async fn pump<R, W>(
    reader: &mut LineReader<R>,
    out: &mut W,
    rewriter: &ReplyRewriter,
    stop: &CancellationToken,
) -> PumpEnd
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut pending: JoinSet<Vec<u8>> = JoinSet::new();
    let mut batch: Vec<u8> = Vec::with_capacity(BATCH_START);
    let mut lines: Vec<Asked> = Vec::new();
    let mut queries: Vec<HostQuery> = Vec::new();
    // Made once: creating it anew in every select! cost about 550 instructions a line.
    // Polled last: every poll of it takes two mutexes, and it only matters once the
    // I/O has nothing ready (the I/O branches return Pending within a bounded number of
    // polls: tokio's cooperative budget).
    let stopping = stop.cancelled();
    tokio::pin!(stopping);
    loop {
        // Set when the source ended (or the owner went away) after some lines of this batch
        // were processed: those are still written, as they would have been one by one.
        let mut end = None;
        tokio::select! {
            biased;
            Some(done) = pending.join_next(), if !pending.is_empty() => match done {
                Ok(bytes) => batch.extend_from_slice(&bytes),
                Err(_) => continue,
            },
            ev = reader.next_line() => {
                // Every line of the read is examined first; their host requests go to the
                // owner as one batch.
                let mut ev = Some(ev);
                while let Some(next) = ev.take() {
                    match next {
                        Ok(LineEvent::Line(line)) => lines.push(rewriter.ask(line, &mut queries)),
                        Ok(LineEvent::TooLong) => end = Some(PumpEnd::TooLong),
                        Ok(LineEvent::Eof) => end = Some(PumpEnd::Eof),
                        Err(e) => end = Some(PumpEnd::ReadError(e)),
                    }
                    if end.is_none() && lines.len() < BATCH_LINES {
                        ev = reader.buffered_line().map(Ok);
                    }
                }
                let mut answered = if queries.is_empty() {
                    Some(std::mem::take(&mut queries))
                } else {
                    rewriter.lookup(std::mem::take(&mut queries)).await
                };
                let mut answers = answered.iter_mut().flat_map(|v| v.drain(..));
                for asked in lines.drain(..) {
                    let answer = match asked {
                        Asked::Lookup(_) => answers.next().and_then(|q| q.answer),
                        Asked::Forward(_) => None,
                    };
                    match rewriter.answer(asked, answer, &mut batch) {
                        Processed::Done => {}
                        Processed::Later(fut) => {
                            pending.spawn(fut);
                        }
                        Processed::Shutdown => {
                            end = Some(PumpEnd::Stopped);
                            break;
                        }
                    }
                }
                drop(answers);
                // The vector comes back from the owner; its capacity is used again.
                if let Some(mut v) = answered {
                    v.clear();
                    queries = v;
                }
            },
            _ = &mut stopping => return PumpEnd::Stopped,
        };
        while let Some(done) = pending.try_join_next() {
            if let Ok(bytes) = done {
                batch.extend_from_slice(&bytes);
            }
        }
        if !batch.is_empty() {
            let written = tokio::select! {
                biased;
                r = out.write_all(&batch) => r,
                _ = &mut stopping => return PumpEnd::Stopped,
            };
            if let Err(e) = written {
                debug!("write failed: {e}");
                return PumpEnd::WriteError;
            }
            batch.clear();
            if batch.capacity() > BATCH_KEEP {
                batch.shrink_to(BATCH_START);
            }
        }
        if let Some(end) = end {
            return end;
        }
    }
}
