//! Small blocking IMAP, POP3 and LMTP clients with bounded timeouts and line counts.
//!
//! Each tells which backend it reached: IMAP through the backend's `ID` reply
//! (`"x-lab-backend" "beN"`), POP3 through the `beN-` prefix of its `UIDL`s.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use super::{IMAP_PORT, LMTP_PORT, POP3_PORT};
use crate::err;

/// Bound on every read and write: a failed login is delayed by auth (2 s, more once
/// penalised), and a proxied login waits for the backend.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on one line's length.
const MAX_LINE: u64 = 64 * 1024;
/// Bound on the lines of one reply.
const MAX_LINES: usize = 10_000;

/// The outcome of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Logged in; the backend(s) the session showed (`be1`, ...). POP3 shows none for an
    /// empty mailbox.
    Reached(BTreeSet<String>),
    /// Refused; the server's reply line, as the client saw it.
    Refused(String),
}

/// A line-oriented TCP connection.
#[derive(Debug)]
pub struct LineConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl LineConn {
    /// Connects to `ip:port`, from `src` if given (auth penalises a client address after a
    /// failed login, so failures get an address of their own).
    pub fn connect(ip: IpAddr, port: u16, src: Option<Ipv4Addr>) -> std::io::Result<LineConn> {
        let addr = SocketAddr::new(ip, port);
        let stream = match src {
            None => TcpStream::connect_timeout(&addr, IO_TIMEOUT)?,
            Some(src) => {
                let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
                s.bind(&SocketAddr::new(IpAddr::V4(src), 0).into())?;
                s.connect_timeout(&addr.into(), IO_TIMEOUT)?;
                s.into()
            }
        };
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(LineConn {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    /// Sends `line` plus CRLF.
    pub fn send(&mut self, line: &str) -> std::io::Result<()> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())
    }

    /// Reads one line without its CRLF; EOF is an error.
    pub fn read_line(&mut self) -> std::io::Result<String> {
        let mut buf = Vec::new();
        (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)?;
        if buf.is_empty() {
            return Err(err("connection closed"));
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
        Err(err(format!("no end of reply within {MAX_LINES} lines")))
    }
}

/// An IMAP quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// An IMAP session logged in through a proxy; logs out when dropped.
#[derive(Debug)]
pub struct ImapSession {
    conn: LineConn,
    /// The backend named by `ID`.
    pub backend: String,
}

impl ImapSession {
    /// Logs in (`LOGIN`) and asks `ID`; `Err(reply)` if the login is refused.
    pub fn open(
        ip: IpAddr,
        user: &str,
        password: &str,
        src: Option<Ipv4Addr>,
    ) -> std::io::Result<Result<ImapSession, String>> {
        let mut conn = LineConn::connect(ip, IMAP_PORT, src)?;
        let greeting = conn.read_line()?;
        if !greeting.starts_with("* OK") {
            return Err(err(format!("IMAP greeting {greeting:?}")));
        }
        conn.send(&format!("a LOGIN {} {}", quote(user), quote(password)))?;
        let reply = conn.read_until(|l| l.starts_with("a "))?;
        let last = reply.last().cloned().unwrap_or_default();
        if !last.starts_with("a OK") {
            let _ = conn.send("z LOGOUT");
            return Ok(Err(last));
        }
        conn.send("b ID NIL")?;
        let id = conn.read_until(|l| l.starts_with("b "))?;
        let backend = id
            .iter()
            .find_map(|l| backend_from_id(l))
            .ok_or_else(|| err(format!("no x-lab-backend in ID reply {id:?}")))?;
        Ok(Ok(ImapSession { conn, backend }))
    }

    /// Whether the server still answers (`NOOP`).
    pub fn noop(&mut self) -> std::io::Result<()> {
        self.conn.send("n NOOP")?;
        let r = self.conn.read_until(|l| l.starts_with("n "))?;
        match r.last() {
            Some(l) if l.starts_with("n OK") => Ok(()),
            other => Err(err(format!("NOOP: {other:?}"))),
        }
    }
}

impl Drop for ImapSession {
    fn drop(&mut self) {
        if self.conn.send("z LOGOUT").is_ok() {
            let _ = self.conn.read_until(|l| l.starts_with("z "));
        }
    }
}

fn backend_from_id(line: &str) -> Option<String> {
    let key = "\"x-lab-backend\" \"";
    let start = line.find(key)? + key.len();
    let len = line[start..].find('"')?;
    Some(line[start..start + len].to_string())
}

/// IMAP `LOGIN` + `ID` + `LOGOUT`.
pub fn imap_login(
    ip: IpAddr,
    user: &str,
    password: &str,
    src: Option<Ipv4Addr>,
) -> std::io::Result<Login> {
    Ok(match ImapSession::open(ip, user, password, src)? {
        Ok(s) => Login::Reached(BTreeSet::from([s.backend.clone()])),
        Err(reply) => Login::Refused(reply),
    })
}

/// POP3 `USER`/`PASS` + `UIDL` + `QUIT`.
pub fn pop3_login(
    ip: IpAddr,
    user: &str,
    password: &str,
    src: Option<Ipv4Addr>,
) -> std::io::Result<Login> {
    let mut conn = LineConn::connect(ip, POP3_PORT, src)?;
    let greeting = conn.read_line()?;
    if !greeting.starts_with("+OK") {
        return Err(err(format!("POP3 greeting {greeting:?}")));
    }
    conn.send(&format!("USER {user}"))?;
    let r = conn.read_line()?;
    if !r.starts_with("+OK") {
        return Ok(Login::Refused(r));
    }
    conn.send(&format!("PASS {password}"))?;
    let r = conn.read_line()?;
    if !r.starts_with("+OK") {
        let _ = conn.send("QUIT");
        return Ok(Login::Refused(r));
    }
    conn.send("UIDL")?;
    let first = conn.read_line()?;
    if !first.starts_with("+OK") {
        return Err(err(format!("UIDL: {first:?}")));
    }
    let lines = conn.read_until(|l| l == ".")?;
    let mut backends = BTreeSet::new();
    for l in &lines[..lines.len() - 1] {
        let uidl = l.split(' ').nth(1).unwrap_or("");
        let name = uidl.split('-').next().unwrap_or("");
        backends.insert(name.to_string());
    }
    conn.send("QUIT")?;
    let _ = conn.read_line();
    Ok(Login::Reached(backends))
}

/// Delivers one message to `rcpt` over LMTP; `Err` carries the first non-2xx/3xx reply.
pub fn lmtp_deliver(ip: IpAddr, rcpt: &str, subject: &str) -> std::io::Result<()> {
    let mut conn = LineConn::connect(ip, LMTP_PORT, None)?;
    let is_last = |l: &str| l.len() < 4 || l.as_bytes()[3] != b'-';
    // `step` names the command in errors (the message body would be noise).
    let expect = |conn: &mut LineConn, step: &str, send: Option<&str>, code: char| {
        if let Some(line) = send {
            conn.send(line)?;
        }
        let reply = conn.read_until(is_last)?;
        let last = reply.last().cloned().unwrap_or_default();
        if last.starts_with(code) {
            Ok(())
        } else {
            Err(err(format!("LMTP {step} via {ip}: {last}")))
        }
    };
    expect(&mut conn, "greeting", None, '2')?;
    expect(&mut conn, "LHLO", Some("LHLO compat-tests"), '2')?;
    expect(&mut conn, "MAIL", Some("MAIL FROM:<lab@example.com>"), '2')?;
    expect(&mut conn, "RCPT", Some(&format!("RCPT TO:<{rcpt}>")), '2')?;
    expect(&mut conn, "DATA", Some("DATA"), '3')?;
    let body = format!(
        "From: lab@example.com\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nhello {rcpt}\r\n."
    );
    expect(&mut conn, "message", Some(&body), '2')?;
    let _ = conn.send("QUIT");
    Ok(())
}
