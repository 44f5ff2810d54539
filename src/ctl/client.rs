//! The admin connection: connect (UNIX socket or `host:port`), the `director-doveadm`
//! handshake, and line I/O with doveadm's error texts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use director_parsers::ip::ip_to_string;

use super::resolve::{gethostbyname, io_strerror, strerror};

/// The handshake line both sides send.
pub const HANDSHAKE: &[u8] = b"VERSION\tdirector-doveadm\t1\t0\n";
/// How long doveadm waits for the director's greeting.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest line kept in memory; doveadm has no limit, this only bounds a hostile peer.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// A fatal failure: the message (without `Fatal: `) and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatal {
    /// Message text after `Fatal: `.
    pub msg: String,
    /// Process exit code.
    pub code: i32,
}

impl Fatal {
    /// A fatal error with doveadm's default exit code 75.
    pub fn tempfail(msg: impl Into<String>) -> Fatal {
        Fatal {
            msg: msg.into(),
            code: super::EX_TEMPFAIL,
        }
    }
}

trait Stream: Read + Write {
    fn set_timeout(&self, t: Option<Duration>) -> std::io::Result<()>;
}

impl Stream for UnixStream {
    fn set_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.set_read_timeout(t)
    }
}

impl Stream for TcpStream {
    fn set_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.set_read_timeout(t)
    }
}

/// Outcome of reading one reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its LF (and without a CR before it).
    Data(Vec<u8>),
    /// The director closed the connection (a trailing partial line is dropped).
    Eof,
    /// The read failed; the stream's error text.
    Error(String),
}

/// A connected, handshaken admin connection.
pub struct Conn {
    path: String,
    reader: BufReader<Box<dyn Stream>>,
}

impl Conn {
    /// Connects to `path` (UNIX socket when it contains `/`, else `host[:port]`) and does the
    /// handshake.
    pub fn connect(path: &str) -> Result<Conn, Fatal> {
        let stream: Box<dyn Stream> = if path.contains('/') {
            Box::new(connect_unix(path)?)
        } else {
            Box::new(connect_tcp(path)?)
        };
        let mut conn = Conn {
            path: path.to_string(),
            reader: BufReader::new(stream),
        };
        conn.send(HANDSHAKE)?;
        // A failure to set the timeout only means we could wait longer than doveadm would.
        let _ = conn.reader.get_ref().set_timeout(Some(HANDSHAKE_TIMEOUT));
        let line = conn.read_line_raw();
        let _ = conn.reader.get_ref().set_timeout(None);
        match line {
            Ok(Some(l)) => {
                if !version_ok(&l) {
                    return Err(Fatal {
                        msg: format!("{path} not a compatible director-doveadm socket"),
                        code: super::EX_PROTOCOL,
                    });
                }
            }
            Ok(None) => return Err(Fatal::tempfail(format!("{path} disconnected"))),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Fatal::tempfail(format!(
                    "read({path}) timed out (is director configured?)"
                )));
            }
            Err(e) => {
                return Err(Fatal::tempfail(format!(
                    "read({path}) failed: {}",
                    stream_read_error(&e)
                )))
            }
        }
        Ok(conn)
    }

    /// The socket path as the user gave it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Writes `data` completely.
    pub fn send(&mut self, data: &[u8]) -> Result<(), Fatal> {
        let path = &self.path;
        let stream = self.reader.get_mut();
        stream
            .write_all(data)
            .and_then(|()| stream.flush())
            .map_err(|e| Fatal::tempfail(format!("write({path}) failed: {}", io_strerror(&e))))
    }

    /// Reads the next reply line.
    pub fn read_line(&mut self) -> Line {
        match self.read_line_raw() {
            Ok(Some(l)) => Line::Data(l),
            Ok(None) => Line::Eof,
            Err(e) => Line::Error(stream_read_error(&e)),
        }
    }

    fn read_line_raw(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        loop {
            let n = (&mut self.reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line);
            match n {
                Ok(0) => return Ok(None),
                Ok(_) if line.last() == Some(&b'\n') => {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(Some(line));
                }
                Ok(_) if line.len() >= MAX_LINE => {
                    return Err(std::io::Error::from_raw_os_error(libc::ENOBUFS));
                }
                // a partial line: keep reading until LF or EOF
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The text Dovecot's file istream gives a failed read (its first read asks for 8192 bytes;
/// later reads may ask for another size, which we cannot know).
fn stream_read_error(e: &std::io::Error) -> String {
    format!("read(size=8192) failed: {}", io_strerror(e))
}

/// `VERSION\tdirector-doveadm\t1\t<uint>` (the major compared numerically, like Dovecot).
fn version_ok(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"VERSION\tdirector-doveadm\t") else {
        return false;
    };
    let Some(tab) = rest.iter().position(|&b| b == b'\t') else {
        return false;
    };
    let (major, minor) = (&rest[..tab], &rest[tab + 1..]);
    let major_is_1 = !major.is_empty()
        && major.iter().all(u8::is_ascii_digit)
        && major.iter().skip_while(|&&b| b == b'0').eq(b"1".iter());
    major_is_1 && super::timefmt::parse_uint(minor).is_some()
}

fn connect_unix(path: &str) -> Result<UnixStream, Fatal> {
    // sun_path holds 108 bytes including the NUL
    if path.len() >= 108 {
        return Err(Fatal::tempfail(format!(
            "net_connect_unix({path}) failed: {}",
            strerror(libc::ENAMETOOLONG)
        )));
    }
    UnixStream::connect(path).map_err(|e| {
        Fatal::tempfail(format!(
            "net_connect_unix({path}) failed: {}",
            io_strerror(&e)
        ))
    })
}

fn connect_tcp(target: &str) -> Result<TcpStream, Fatal> {
    let Some((host, port)) = str2hostport(target) else {
        return Err(Fatal::tempfail(format!(
            "Port not known for {target}. Either set proxy_port or use {target}:port"
        )));
    };
    let ips = gethostbyname(host.as_bytes())
        .map_err(|e| Fatal::tempfail(format!("Lookup of host {host} failed: {e}")))?;
    let Some(ip) = ips.first() else {
        return Err(Fatal::tempfail(format!("Lookup of host {host} failed")));
    };
    TcpStream::connect(SocketAddr::new(*ip, port)).map_err(|e| {
        Fatal::tempfail(format!(
            "connect({}:{port}) failed: {}",
            ip_to_string(ip),
            io_strerror(&e)
        ))
    })
}

/// Dovecot's `net_str2hostport` with default port 0.
fn str2hostport(s: &str) -> Option<(String, u16)> {
    let (host, rest) = if let Some(inner) = s.strip_prefix('[') {
        let end = inner.find(']')?;
        (inner[..end].to_string(), &inner[end + 1..])
    } else {
        match s.find(':') {
            Some(p) if !s[p + 1..].contains(':') => (s[..p].to_string(), &s[p..]),
            _ => return Some((s.to_string(), 0)),
        }
    };
    if rest.is_empty() {
        return Some((host, 0));
    }
    let port = rest.strip_prefix(':')?;
    let n = super::timefmt::parse_uint(port.as_bytes())?;
    if n == 0 || n > 65535 {
        return None;
    }
    Some((host, n as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line() {
        assert!(version_ok(b"VERSION\tdirector-doveadm\t1\t0"));
        assert!(version_ok(b"VERSION\tdirector-doveadm\t01\t7"));
        assert!(!version_ok(b"VERSION\tdirector-doveadm\t2\t0"));
        assert!(!version_ok(b"VERSION\tdirector-doveadm\t1"));
        assert!(!version_ok(b"VERSION\tdirector-doveadm\t1\t-1"));
        assert!(!version_ok(b"VERSION\tdirector\t1\t0"));
    }

    #[test]
    fn hostport() {
        assert_eq!(str2hostport("localhost"), Some(("localhost".into(), 0)));
        assert_eq!(str2hostport("h:5"), Some(("h".into(), 5)));
        assert_eq!(str2hostport("::1"), Some(("::1".into(), 0)));
        assert_eq!(str2hostport("[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(str2hostport("h:0"), None);
        assert_eq!(str2hostport("[::1]x"), None);
    }
}
