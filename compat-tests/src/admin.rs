//! A minimal client of the director's admin protocol (`director-doveadm`, UNIX socket).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::err;

/// The handshake line both sides send.
pub const HANDSHAKE: &[u8] = b"VERSION\tdirector-doveadm\t1\t0\n";

/// A connected, handshaken admin client. Every read is bounded by the timeout given to
/// [`AdminClient::connect`].
#[derive(Debug)]
pub struct AdminClient {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl AdminClient {
    /// Connects to `path`, sends our `VERSION` line and checks the server's.
    pub fn connect(path: &Path, timeout: Duration) -> std::io::Result<AdminClient> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut c = AdminClient {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        };
        c.writer.write_all(HANDSHAKE)?;
        let greeting = c.read_line()?;
        if !greeting.starts_with(b"VERSION\tdirector-doveadm\t1\t") {
            return Err(err(format!(
                "unexpected greeting {:?}",
                greeting.escape_ascii().to_string()
            )));
        }
        Ok(c)
    }

    /// Sends `line` plus `\n` as is (the caller escapes fields).
    pub fn send(&mut self, line: &[u8]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        self.writer.write_all(&buf)
    }

    /// Reads one line without its `\n`; EOF or a timeout is an error.
    pub fn read_line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Err(err("director-admin: unexpected EOF"));
        }
        line.pop();
        Ok(line)
    }

    /// Reads lines up to (not including) the empty line that ends a list reply.
    pub fn read_list(&mut self) -> std::io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                return Ok(out);
            }
            out.push(line);
        }
    }

    /// Sends one command and reads its one-line reply.
    pub fn request(&mut self, line: &[u8]) -> std::io::Result<Vec<u8>> {
        self.send(line)?;
        self.read_line()
    }

    /// Sends every line from a second thread while reading one reply line per request here,
    /// so neither side's buffers can fill up and stall. Replies come back in request order.
    pub fn pipeline(&mut self, lines: &[Vec<u8>]) -> std::io::Result<Vec<Vec<u8>>> {
        let mut writer = self.writer.try_clone()?;
        let mut payload = Vec::new();
        for l in lines {
            payload.extend_from_slice(l);
            payload.push(b'\n');
        }
        let sender = std::thread::spawn(move || writer.write_all(&payload));
        let mut replies = Vec::with_capacity(lines.len());
        let mut failure = None;
        for _ in lines {
            match self.read_line() {
                Ok(r) => replies.push(r),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let sent = sender.join().map_err(|_| err("pipeline sender panicked"))?;
        if let Some(e) = failure {
            return Err(e);
        }
        sent?;
        Ok(replies)
    }
}

/// Tab-escapes one admin-protocol field.
pub fn escape_field(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    director_parsers::escape::escape_into(field, &mut out);
    out
}
