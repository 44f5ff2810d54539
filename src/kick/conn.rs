//! A line-based UNIX socket client connection shared by the ipc and anvil kickers.

use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use director_parsers::framing::LineFramer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// Longest reply line accepted (Dovecot's ipc client has no limit; a `CONNECT-DUMP` line is
/// far shorter than this).
pub(crate) const MAX_REPLY_LINE: usize = 65536;
/// A local socket either accepts at once or is broken.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why no further line can be read.
#[derive(Debug)]
pub(crate) enum LineError {
    /// The server closed the connection.
    Eof,
    /// A read or write failed.
    Io(io::Error),
    /// A line longer than [`MAX_REPLY_LINE`].
    TooLong,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::Eof => f.write_str("EOF"),
            LineError::Io(e) => write!(f, "{e}"),
            LineError::TooLong => f.write_str("reply line too long"),
        }
    }
}

/// One connection: queued output is written while waiting for input, so a server that
/// answers before reading everything cannot deadlock us.
#[derive(Debug)]
pub(crate) struct LineConn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    rbuf: BytesMut,
    framer: LineFramer,
    out: Vec<u8>,
}

impl LineConn {
    /// Connect to a UNIX socket.
    pub(crate) async fn connect(path: &Path) -> io::Result<LineConn> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(path))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "Connection timed out"))??;
        let (rd, wr) = stream.into_split();
        Ok(LineConn {
            rd,
            wr,
            rbuf: BytesMut::with_capacity(4096),
            framer: LineFramer::new(MAX_REPLY_LINE),
            out: Vec::new(),
        })
    }

    /// Queue bytes to send.
    pub(crate) fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// The next complete line (without LF), writing queued output meanwhile. Cancel-safe:
    /// partial input stays buffered and partial writes are accounted for.
    pub(crate) async fn next_line(&mut self) -> Result<Vec<u8>, LineError> {
        loop {
            match self.framer.next_line(&self.rbuf) {
                Ok(Some(span)) => {
                    let line = self.rbuf[..span.len].to_vec();
                    self.rbuf.advance(span.consumed);
                    return Ok(line);
                }
                Ok(None) => {}
                Err(_) => return Err(LineError::TooLong),
            }
            tokio::select! {
                n = self.rd.read_buf(&mut self.rbuf) => match n {
                    Ok(0) => return Err(LineError::Eof),
                    Ok(_) => {}
                    Err(e) => return Err(LineError::Io(e)),
                },
                w = self.wr.write(&self.out), if !self.out.is_empty() => match w {
                    Ok(0) => return Err(LineError::Eof),
                    Ok(n) => { self.out.drain(..n); }
                    Err(e) => return Err(LineError::Io(e)),
                },
            }
        }
    }
}
