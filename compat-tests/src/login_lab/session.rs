//! IMAP sessions held open through a lab proxy, watched for the moment the proxy closes them
//! (a kick or a move), with bounded waits.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::IMAP_PORT;
use crate::err;

/// Bound on login and command replies (a moved user's login waits the kick delay).
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// Read slice while watching, so that the deadline is checked often.
const WATCH_SLICE: Duration = Duration::from_millis(50);
/// Bound on the lines of one reply.
const MAX_LINES: usize = 1000;

/// An IMAP session logged in through a proxy.
#[derive(Debug)]
pub struct HeldSession {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// The login name.
    pub user: String,
    /// The backend named by `ID` (`be1`, ...).
    pub backend: String,
}

/// What watching a session saw.
#[derive(Debug)]
pub enum Watched {
    /// The server closed the connection at `at`, after sending `lines` (e.g. `* BYE ...`).
    Closed {
        /// The login name.
        user: String,
        /// The backend it was on.
        backend: String,
        /// When EOF (or a reset) was seen.
        at: Instant,
        /// Lines received while watching.
        lines: Vec<String>,
    },
    /// Still open at the deadline.
    Open(HeldSession),
    /// A read failed otherwise.
    Failed(String),
}

impl HeldSession {
    /// Logs `user` in (`LOGIN`) and asks `ID`; `Err` also when the login is refused.
    pub fn open(ip: IpAddr, user: &str, password: &str) -> std::io::Result<HeldSession> {
        let addr = SocketAddr::new(ip, IMAP_PORT);
        let stream = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
        let mut s = HeldSession {
            reader: BufReader::new(stream.try_clone()?),
            stream,
            user: user.to_string(),
            backend: String::new(),
        };
        let greeting = s.read_line()?;
        if !greeting.starts_with("* OK") {
            return Err(err(format!("IMAP greeting {greeting:?}")));
        }
        let login = s.command(&format!("a LOGIN \"{user}\" \"{password}\""), "a ")?;
        if !login.last().is_some_and(|l| l.starts_with("a OK")) {
            return Err(err(format!("login of {user} refused: {login:?}")));
        }
        let id = s.command("b ID NIL", "b ")?;
        s.backend = id
            .iter()
            .find_map(|l| {
                let key = "\"x-lab-backend\" \"";
                let start = l.find(key)? + key.len();
                let len = l[start..].find('"')?;
                Some(l[start..start + len].to_string())
            })
            .ok_or_else(|| err(format!("no x-lab-backend in ID reply {id:?}")))?;
        Ok(s)
    }

    /// `NOOP` answered `OK`: the session is alive.
    pub fn noop(&mut self) -> std::io::Result<()> {
        let r = self.command("n NOOP", "n ")?;
        match r.last() {
            Some(l) if l.starts_with("n OK") => Ok(()),
            other => Err(err(format!("NOOP: {other:?}"))),
        }
    }

    /// Waits up to `within` for the server to close the session.
    pub fn watch(mut self, within: Duration) -> Watched {
        let deadline = Instant::now() + within;
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        if let Err(e) = self.stream.set_read_timeout(Some(WATCH_SLICE)) {
            return Watched::Failed(e.to_string());
        }
        while Instant::now() < deadline && lines.len() < MAX_LINES {
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => return self.closed(lines),
                Ok(_) => lines.push(take_line(&mut buf)),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return self.closed(lines),
                Err(e) => return Watched::Failed(format!("{}: {e}", self.user)),
            }
        }
        if let Err(e) = self.stream.set_read_timeout(Some(REPLY_TIMEOUT)) {
            return Watched::Failed(e.to_string());
        }
        if !lines.is_empty() || !buf.is_empty() {
            return Watched::Failed(format!(
                "{}: unsolicited {lines:?} {:?} but no close",
                self.user,
                String::from_utf8_lossy(&buf)
            ));
        }
        Watched::Open(self)
    }

    /// [`HeldSession::watch`] on a thread of its own.
    pub fn spawn_watch(self, within: Duration) -> JoinHandle<Watched> {
        std::thread::spawn(move || self.watch(within))
    }

    fn closed(self, lines: Vec<String>) -> Watched {
        Watched::Closed {
            at: Instant::now(),
            user: self.user.clone(),
            backend: self.backend.clone(),
            lines,
        }
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf)? == 0 {
            return Err(err("server closed the connection"));
        }
        Ok(take_line(&mut buf))
    }

    fn command(&mut self, line: &str, tag: &str) -> std::io::Result<Vec<String>> {
        self.stream.write_all(format!("{line}\r\n").as_bytes())?;
        let mut out = Vec::new();
        for _ in 0..MAX_LINES {
            let l = self.read_line()?;
            let done = l.starts_with(tag);
            out.push(l);
            if done {
                return Ok(out);
            }
        }
        Err(err(format!("no tagged reply to {tag:?}")))
    }
}

impl Drop for HeldSession {
    fn drop(&mut self) {
        let _ = self.stream.write_all(b"z LOGOUT\r\n");
    }
}

fn take_line(buf: &mut Vec<u8>) -> String {
    while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        buf.pop();
    }
    let s = String::from_utf8_lossy(buf).into_owned();
    buf.clear();
    s
}

impl Watched {
    /// Whether the server closed the session.
    pub fn is_closed(&self) -> bool {
        matches!(self, Watched::Closed { .. })
    }

    /// The last line before the close (normally `* BYE <reason>`), or `""`.
    pub fn last_line(&self) -> &str {
        match self {
            Watched::Closed { lines, .. } => lines.last().map_or("", String::as_str),
            _ => "",
        }
    }
}
