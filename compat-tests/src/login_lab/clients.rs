//! Small blocking IMAP, POP3 and LMTP clients on [`crate::mailclient::LineClient`], with
//! bounded timeouts and line counts.
//!
//! Each tells which backend it reached: IMAP through the backend's `ID` reply
//! (`"x-lab-backend" "beN"`), POP3 through the `beN-` prefix of its `UIDL`s.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::{IMAP_PORT, LMTP_PORT, POP3_PORT};
use crate::err;
use crate::mailclient::LineClient;

/// Bound on every read and write: a failed login is delayed by auth (2 s, more once
/// penalised), and a proxied login waits for the backend.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
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

/// Connects to `ip:port`, from `src` if given (auth penalises a client address after a
/// failed login, so failures get an address of their own).
fn connect(ip: IpAddr, port: u16, src: Option<Ipv4Addr>) -> std::io::Result<LineClient> {
    LineClient::connect(SocketAddr::new(ip, port), src.map(IpAddr::V4), IO_TIMEOUT)
}

/// Reads lines up to and including the first one `done` accepts; returns them all.
fn read_until(c: &mut LineClient, done: impl Fn(&str) -> bool) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    for _ in 0..MAX_LINES {
        let line = c.read_line()?;
        let last = done(&line);
        lines.push(line);
        if last {
            return Ok(lines);
        }
    }
    Err(err(format!("no end of reply within {MAX_LINES} lines")))
}

/// An IMAP quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// An IMAP session logged in through a proxy; logs out when dropped.
#[derive(Debug)]
pub struct ImapSession {
    conn: LineClient,
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
        let mut conn = connect(ip, IMAP_PORT, src)?;
        let greeting = conn.read_line()?;
        if !greeting.starts_with("* OK") {
            return Err(err(format!("IMAP greeting {greeting:?}")));
        }
        conn.send(&format!("a LOGIN {} {}", quote(user), quote(password)))?;
        let reply = read_until(&mut conn, |l| l.starts_with("a "))?;
        let last = reply.last().cloned().unwrap_or_default();
        if !last.starts_with("a OK") {
            let _ = conn.send("z LOGOUT");
            return Ok(Err(last));
        }
        conn.send("b ID NIL")?;
        let id = read_until(&mut conn, |l| l.starts_with("b "))?;
        let backend = id
            .iter()
            .find_map(|l| backend_from_id(l))
            .ok_or_else(|| err(format!("no x-lab-backend in ID reply {id:?}")))?;
        Ok(Ok(ImapSession { conn, backend }))
    }

    /// Whether the server still answers (`NOOP`).
    pub fn noop(&mut self) -> std::io::Result<()> {
        self.conn.send("n NOOP")?;
        let r = read_until(&mut self.conn, |l| l.starts_with("n "))?;
        match r.last() {
            Some(l) if l.starts_with("n OK") => Ok(()),
            other => Err(err(format!("NOOP: {other:?}"))),
        }
    }
}

impl Drop for ImapSession {
    fn drop(&mut self) {
        if self.conn.send("z LOGOUT").is_ok() {
            let _ = read_until(&mut self.conn, |l| l.starts_with("z "));
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
    let mut conn = connect(ip, POP3_PORT, src)?;
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
    let lines = read_until(&mut conn, |l| l == ".")?;
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
    lmtp_deliver_many(ip, &[rcpt], subject)
}

/// Delivers one message to all of `rcpts` in a single LMTP transaction (the proxy looks each
/// recipient up and may split them over backends); every recipient must be accepted.
pub fn lmtp_deliver_many(ip: IpAddr, rcpts: &[&str], subject: &str) -> std::io::Result<()> {
    let mut conn = connect(ip, LMTP_PORT, None)?;
    let is_last = |l: &str| l.len() < 4 || l.as_bytes()[3] != b'-';
    // `step` names the command in errors (the message body would be noise).
    let expect = |conn: &mut LineClient, step: &str, send: Option<&str>, code: char| {
        if let Some(line) = send {
            conn.send(line)?;
        }
        let reply = read_until(conn, is_last)?;
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
    for rcpt in rcpts {
        expect(&mut conn, rcpt, Some(&format!("RCPT TO:<{rcpt}>")), '2')?;
    }
    expect(&mut conn, "DATA", Some("DATA"), '3')?;
    let body = format!(
        "From: lab@example.com\r\nTo: {}\r\nSubject: {subject}\r\n\r\nhello\r\n.",
        rcpts.join(", ")
    );
    conn.send(&body)?;
    // LMTP answers the message once per accepted recipient, in RCPT order.
    for rcpt in rcpts {
        expect(&mut conn, &format!("message for {rcpt}"), None, '2')?;
    }
    let _ = conn.send("QUIT");
    Ok(())
}
