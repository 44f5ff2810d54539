//! A tiny line-based IMAP / POP3 / LMTP client, enough to drive real login and LMTP proxies.
//! Every read is bounded by the connection's timeout.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::err;

/// A connected text-protocol client.
#[derive(Debug)]
pub struct LineClient {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl LineClient {
    /// Connects to `server`, from `source` if given (so auth penalties of one test address do
    /// not slow down another).
    pub fn connect(
        server: SocketAddr,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> std::io::Result<LineClient> {
        let sock = Socket::new(Domain::for_address(server), Type::STREAM, None)?;
        if let Some(ip) = source {
            sock.bind(&SocketAddr::new(ip, 0).into())?;
        }
        sock.connect_timeout(&server.into(), timeout)?;
        let stream: TcpStream = sock.into();
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(LineClient {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    /// Sends `line` + CRLF.
    pub fn send(&mut self, line: &str) -> std::io::Result<()> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())
    }

    /// Reads one line without its line ending.
    pub fn read_line(&mut self) -> std::io::Result<String> {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(err("server closed the connection"));
        }
        while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Reads lines until one starts with `prefix`; returns that line.
    pub fn read_until(&mut self, prefix: &str) -> std::io::Result<String> {
        for _ in 0..1000 {
            let line = self.read_line()?;
            if line.starts_with(prefix) {
                return Ok(line);
            }
        }
        Err(err(format!("no line starting with {prefix:?}")))
    }

    /// Sends a command and reads up to the line starting with `prefix`.
    pub fn command(&mut self, line: &str, prefix: &str) -> std::io::Result<String> {
        self.send(line)?;
        self.read_until(prefix)
    }
}

/// IMAP: greeting, `LOGIN`; returns the client (still logged in) and the tagged reply.
pub fn imap_login(
    server: SocketAddr,
    source: Option<IpAddr>,
    user: &str,
    pass: &str,
    timeout: Duration,
) -> std::io::Result<(LineClient, String)> {
    let mut c = LineClient::connect(server, source, timeout)?;
    c.read_until("* OK")?;
    let reply = c.command(&format!("a LOGIN \"{user}\" \"{pass}\""), "a ")?;
    Ok((c, reply))
}

/// IMAP: `LOGOUT`, reading up to its tagged reply (or the server's close).
pub fn imap_logout(mut c: LineClient) {
    let _ = c.command("z LOGOUT", "z ");
}

/// POP3: greeting, `USER`, `PASS`, `QUIT`; returns the reply to `PASS`.
pub fn pop3_session(
    server: SocketAddr,
    source: Option<IpAddr>,
    user: &str,
    pass: &str,
    timeout: Duration,
) -> std::io::Result<String> {
    let mut c = LineClient::connect(server, source, timeout)?;
    c.read_until("+OK")?;
    c.command(&format!("USER {user}"), "")?;
    let reply = c.command(&format!("PASS {pass}"), "")?;
    let _ = c.command("QUIT", "");
    Ok(reply)
}

/// LMTP: one message to every recipient; returns the server's replies in order.
pub fn lmtp_deliver(
    server: SocketAddr,
    recipients: &[&str],
    timeout: Duration,
) -> std::io::Result<Vec<String>> {
    let mut c = LineClient::connect(server, None, timeout)?;
    let mut replies = vec![c.read_until("220")?];
    replies.push(c.command("LHLO compat-tests", "250 ")?);
    replies.push(c.command("MAIL FROM:<sender@example.com>", "")?);
    for r in recipients {
        replies.push(c.command(&format!("RCPT TO:<{r}>"), "")?);
    }
    replies.push(c.command("DATA", "")?);
    c.send("Subject: compat-tests\r\n\r\nhello from compat-tests\r\n.")?;
    for _ in recipients {
        replies.push(c.read_line()?);
    }
    replies.push(c.command("QUIT", "")?);
    Ok(replies)
}
