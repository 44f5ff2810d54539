//! Minimal IMAP, POP3, LMTP and submission clients for driving the 2.4 proxy, each telling
//! which backend answered. Every read is bounded by the connection's timeout.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::err;

/// Per-read and per-connect timeout of every client.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Lines read while waiting for one reply, at most.
const MAX_LINES: usize = 200;

/// A connected line-based client.
#[derive(Debug)]
pub struct LineClient {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl LineClient {
    /// Connects to `server` with [`TIMEOUT`].
    pub fn connect(server: SocketAddr) -> std::io::Result<LineClient> {
        let stream = TcpStream::connect_timeout(&server, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        Ok(LineClient {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    /// Sends `line` + CRLF.
    pub fn send(&mut self, line: &str) -> std::io::Result<()> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())
    }

    /// Reads one line without its line ending; EOF is an error.
    pub fn read_line(&mut self) -> std::io::Result<String> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf)? == 0 {
            return Err(err("server closed the connection"));
        }
        while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Reads lines up to and including the first one `done` accepts; returns them all.
    pub fn read_until(&mut self, done: impl Fn(&str) -> bool) -> std::io::Result<Vec<String>> {
        let mut lines = Vec::new();
        for _ in 0..MAX_LINES {
            let line = self.read_line()?;
            let last = done(&line);
            lines.push(line);
            if last {
                return Ok(lines);
            }
        }
        Err(err(format!("no final line within {MAX_LINES}: {lines:?}")))
    }

    /// Sends a command and reads its reply (see [`LineClient::read_until`]).
    pub fn command(
        &mut self,
        line: &str,
        done: impl Fn(&str) -> bool,
    ) -> std::io::Result<Vec<String>> {
        self.send(line)?;
        self.read_until(done)
    }
}

/// An IMAP session logged in through a proxy.
#[derive(Debug)]
pub struct ImapSession {
    client: LineClient,
    tag: u32,
}

impl ImapSession {
    /// Greeting and `LOGIN`; fails unless the tagged reply is OK.
    pub fn login(server: SocketAddr, user: &str, pass: &str) -> std::io::Result<ImapSession> {
        let mut client = LineClient::connect(server)?;
        let greeting = client.read_line()?;
        if !greeting.starts_with("* OK") {
            return Err(err(format!("IMAP greeting {greeting:?}")));
        }
        let mut s = ImapSession { client, tag: 0 };
        let reply = s.command(&format!("LOGIN \"{user}\" \"{pass}\""))?;
        if !reply.last().is_some_and(|l| l.starts_with("a1 OK")) {
            return Err(err(format!("IMAP LOGIN {user}: {reply:?}")));
        }
        Ok(s)
    }

    /// Sends a tagged command; returns every line up to the tagged reply.
    pub fn command(&mut self, cmd: &str) -> std::io::Result<Vec<String>> {
        self.tag += 1;
        let tag = format!("a{} ", self.tag);
        self.client
            .command(&format!("{tag}{cmd}"), |l| l.starts_with(&tag))
    }

    /// The backend's name from `ID` (`"x-dcompat-backend" "<name>"`).
    pub fn backend(&mut self) -> std::io::Result<String> {
        let lines = self.command("ID NIL")?;
        lines
            .iter()
            .find_map(|l| l.split("\"x-dcompat-backend\" \"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
            .ok_or_else(|| err(format!("no x-dcompat-backend in ID reply {lines:?}")))
    }

    /// `NOOP`; fails unless answered OK.
    pub fn noop(&mut self) -> std::io::Result<()> {
        let lines = self.command("NOOP")?;
        match lines.last() {
            Some(l) if l.contains(" OK") => Ok(()),
            _ => Err(err(format!("NOOP: {lines:?}"))),
        }
    }

    /// Whether the proxy closes the session within `limit` (NOOP every 100 ms until one fails).
    pub fn closes_within(&mut self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while self.noop().is_ok() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        true
    }

    /// `LOGOUT` (errors ignored: the session is over either way).
    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}

/// IMAP login through `server`; returns the name of the backend that answered `ID`.
pub fn imap_backend(server: SocketAddr, user: &str, pass: &str) -> std::io::Result<String> {
    let mut s = ImapSession::login(server, user, pass)?;
    let b = s.backend();
    s.logout();
    b
}

/// POP3 login through `server`; returns the UIDL lines (`<n> <uidl>`), whose UIDLs start
/// with the backend's name.
pub fn pop3_uidls(server: SocketAddr, user: &str, pass: &str) -> std::io::Result<Vec<String>> {
    let mut c = LineClient::connect(server)?;
    let greeting = c.read_line()?;
    if !greeting.starts_with("+OK") {
        return Err(err(format!("POP3 greeting {greeting:?}")));
    }
    let ok = |l: &str| l.starts_with("+OK") || l.starts_with("-ERR");
    for cmd in [format!("USER {user}"), format!("PASS {pass}")] {
        let r = c.command(&cmd, ok)?;
        if !r[0].starts_with("+OK") {
            return Err(err(format!(
                "POP3 {}: {r:?}",
                cmd.split(' ').next().unwrap_or("")
            )));
        }
    }
    let head = c.command("UIDL", ok)?;
    if !head[0].starts_with("+OK") {
        return Err(err(format!("POP3 UIDL: {head:?}")));
    }
    let mut lines = c.read_until(|l| l == ".")?;
    lines.pop();
    let _ = c.command("QUIT", ok);
    Ok(lines)
}

/// One LMTP transaction through `server`: returns each RCPT's reply, then DATA's replies
/// (one per accepted recipient; empty when none was accepted).
pub fn lmtp_deliver(
    server: SocketAddr,
    rcpts: &[&str],
    subject: &str,
) -> std::io::Result<(Vec<String>, Vec<String>)> {
    let mut c = LineClient::connect(server)?;
    let last = |l: &str| l.len() < 4 || l.as_bytes()[3] != b'-';
    c.read_until(last)?;
    c.command("LHLO dcompat.test", last)?;
    c.command("MAIL FROM:<dcompat@example.com>", last)?;
    let mut rcpt_replies = Vec::new();
    for r in rcpts {
        let reply = c.command(&format!("RCPT TO:<{r}>"), last)?;
        rcpt_replies.push(reply.join(" / "));
    }
    let accepted = rcpt_replies.iter().filter(|r| r.starts_with('2')).count();
    let mut data_replies = Vec::new();
    if accepted > 0 {
        let go = c.command("DATA", last)?;
        if !go[0].starts_with("354") {
            return Err(err(format!("LMTP DATA: {go:?}")));
        }
        c.send(&format!(
            "From: dcompat@example.com\r\nSubject: {subject}\r\n\r\nhello\r\n."
        ))?;
        for _ in 0..accepted {
            data_replies.push(c.read_line()?);
        }
    }
    let _ = c.command("QUIT", last);
    Ok((rcpt_replies, data_replies))
}

/// Submission login through `server` (EHLO, AUTH PLAIN, EHLO again); returns the name the
/// second EHLO reply starts with, i.e. the backend's `hostname`.
pub fn submission_backend(server: SocketAddr, user: &str, pass: &str) -> std::io::Result<String> {
    let mut c = LineClient::connect(server)?;
    let last = |l: &str| l.len() < 4 || l.as_bytes()[3] != b'-';
    let greeting = c.read_until(last)?;
    if !greeting[0].starts_with("220") {
        return Err(err(format!("submission greeting {greeting:?}")));
    }
    c.command("EHLO client.dcompat.test", last)?;
    let creds = base64(format!("\0{user}\0{pass}").as_bytes());
    let auth = c.command(&format!("AUTH PLAIN {creds}"), last)?;
    if !auth[0].starts_with("235") {
        return Err(err(format!("submission AUTH {user}: {auth:?}")));
    }
    let ehlo = c.command("EHLO client.dcompat.test", last)?;
    let _ = c.command("QUIT", last);
    ehlo[0]
        .get(4..)
        .and_then(|s| s.split(' ').next())
        .map(str::to_owned)
        .ok_or_else(|| err(format!("EHLO after AUTH: {ehlo:?}")))
}

/// Standard base64 with padding (SASL PLAIN needs nothing more).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 §10.
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(super::base64(input.as_bytes()), want, "{input:?}");
        }
        // The lab's capture: AUTH PLAIN of user1/pass is resp=AHVzZXIxAHBhc3M=.
        assert_eq!(super::base64(b"\0user1\0pass"), "AHVzZXIxAHBhc3M=");
    }
}
