//! The director admin socket (`admin-protocol.md`): just enough to time `USER-LIST`.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long one admin read may block.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a whole `USER-LIST` may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest reply accepted (1M users are about 35 MB).
const MAX_REPLY: usize = 512 * 1024 * 1024;

/// One `USER-LIST` answer.
#[derive(Debug, Clone, Copy)]
pub struct UserList {
    /// Users listed.
    pub users: u64,
    /// Reply size in bytes.
    pub bytes: u64,
    /// From sending the command to reading the terminating empty line.
    pub elapsed: Duration,
}

/// Connects, does the handshake, sends `USER-LIST` and reads the whole reply.
pub fn user_list(socket: &Path) -> io::Result<UserList> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| io::Error::new(e.kind(), format!("connect({}): {e}", socket.display())))?;
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    s.write_all(b"VERSION\tdirector-doveadm\t1\t0\n")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut have = 0;
    // The greeting arrives on its own; read it before timing the command.
    while !buf[..have].contains(&b'\n') {
        let n = s.read(&mut buf[have..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "admin socket closed during the handshake",
            ));
        }
        have += n;
    }
    if !buf[..have].starts_with(b"VERSION\tdirector-doveadm\t1\t") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a director-doveadm socket",
        ));
    }
    let t0 = Instant::now();
    s.write_all(b"USER-LIST\n")?;
    let mut lines = 0u64;
    let mut bytes = 0u64;
    let mut prev_lf = true; // the greeting ended with LF; an empty line ends the list
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "admin socket closed in the middle of USER-LIST",
            ));
        }
        bytes += n as u64;
        for &b in &buf[..n] {
            if b == b'\n' {
                if prev_lf {
                    return Ok(UserList {
                        users: lines,
                        bytes,
                        elapsed: t0.elapsed(),
                    });
                }
                lines += 1;
                prev_lf = true;
            } else {
                prev_lf = false;
            }
        }
        if t0.elapsed() > LIST_TIMEOUT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("USER-LIST took more than {LIST_TIMEOUT:?}"),
            ));
        }
        if bytes as usize > MAX_REPLY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "USER-LIST reply too large",
            ));
        }
    }
}
