//! Cancel-safe line reading over any async byte stream, with a maximum line length.
//!
//! The bytes live in a persistent `BytesMut` inside the struct and are only ever added by
//! `read_buf`, so dropping a pending [`LineReader::next_line`] inside `select!` loses nothing
//! (tokio #3997). Framing is the parsers crate's [`LineFramer`]: LF-terminated, a CR before the
//! LF dropped, a line that cannot fit reported as [`LineEvent::TooLong`].

use bytes::{Bytes, BytesMut};
use director_parsers::framing::LineFramer;
use tokio::io::{AsyncRead, AsyncReadExt};

/// What the next read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete line, without LF (and without a CR before it).
    Line(Bytes),
    /// No LF within the maximum line length. The connection should be closed.
    TooLong,
    /// The peer closed (a trailing partial line is discarded, as Dovecot does).
    Eof,
}

/// Reads lines from `R`.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: BytesMut,
    framer: LineFramer,
    skipping: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader accepting lines of at most `max_line` bytes including the LF.
    pub fn new(inner: R, max_line: usize) -> Self {
        Self {
            inner,
            buf: BytesMut::with_capacity(max_line.min(4096)),
            framer: LineFramer::new(max_line),
            skipping: false,
        }
    }

    /// A reader whose buffer holds `capacity` bytes, so one read can bring many lines
    /// (the ring connections hand a whole read's lines to the owner at once).
    pub fn with_capacity(inner: R, max_line: usize, capacity: usize) -> Self {
        Self {
            inner,
            buf: BytesMut::with_capacity(capacity.max(max_line)),
            framer: LineFramer::new(max_line),
            skipping: false,
        }
    }

    /// The next line, or EOF / too long. Cancel-safe.
    pub async fn next_line(&mut self) -> std::io::Result<LineEvent> {
        loop {
            if let Some(ev) = self.buffered_line() {
                return Ok(ev);
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Ok(LineEvent::Eof);
            }
        }
    }

    /// A complete line already in the buffer, without reading.
    pub fn buffered_line(&mut self) -> Option<LineEvent> {
        if self.skipping {
            match self.buf.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    let _ = self.buf.split_to(lf + 1);
                    self.skipping = false;
                }
                None => {
                    self.buf.clear();
                    return None;
                }
            }
        }
        match self.framer.next_line(&self.buf) {
            Ok(Some(span)) => {
                let mut line = self.buf.split_to(span.consumed);
                line.truncate(span.len);
                Some(LineEvent::Line(line.freeze()))
            }
            Ok(None) => None,
            Err(_) => Some(LineEvent::TooLong),
        }
    }

    /// After [`LineEvent::TooLong`]: throw the oversized line away up to and including its LF
    /// and go on with the next one (for the FIFO, which cannot be closed and reopened).
    pub fn discard_current_line(&mut self) {
        self.skipping = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_eof_and_too_long() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut lr = LineReader::new(r, 8);
        tokio::io::AsyncWriteExt::write_all(&mut w, b"ab\r\ncd\nlongerthan8")
            .await
            .unwrap();
        assert_eq!(
            lr.next_line().await.unwrap(),
            LineEvent::Line(Bytes::from_static(b"ab"))
        );
        assert_eq!(
            lr.next_line().await.unwrap(),
            LineEvent::Line(Bytes::from_static(b"cd"))
        );
        assert_eq!(lr.next_line().await.unwrap(), LineEvent::TooLong);
        lr.discard_current_line();
        tokio::io::AsyncWriteExt::write_all(&mut w, b"andmore\nok\n")
            .await
            .unwrap();
        assert_eq!(
            lr.next_line().await.unwrap(),
            LineEvent::Line(Bytes::from_static(b"ok"))
        );

        let (mut w, r) = tokio::io::duplex(64);
        let mut lr = LineReader::new(r, 8);
        tokio::io::AsyncWriteExt::write_all(&mut w, b"x\npartial")
            .await
            .unwrap();
        drop(w);
        assert_eq!(
            lr.next_line().await.unwrap(),
            LineEvent::Line(Bytes::from_static(b"x"))
        );
        assert_eq!(lr.next_line().await.unwrap(), LineEvent::Eof);
    }
}
