//! An instant auth server: the `auth-login` peer both directors talk to.
//!
//! Speaks the server side of Dovecot's auth client protocol (`auth-proxy.md` §2.2): the
//! handshake on connect, then `OK\t<id>\tuser=<user>\tproxy` at once for every
//! `AUTH\t<id>\tPLAIN\t...\tresp=<base64 "\0user\0pass">`. It never checks passwords, so the
//! directors' cost is all that is measured. One thread per connection: a director opens one
//! upstream connection per login connection, so there are only as many as the load client has.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::b64;

/// Longest request line accepted; the auth server's own limit is about this size too.
const MAX_LINE: usize = 16 * 1024;

/// A running fake auth server; dropping it stops accepting and removes the socket.
pub struct FakeAuth {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    answered: Arc<AtomicU64>,
}

impl FakeAuth {
    /// Binds `path` (mode 0666, so a director running as `dovecot` may connect) and serves it.
    pub fn start(path: &Path) -> io::Result<FakeAuth> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let (stop2, answered2) = (stop.clone(), answered.clone());
        let accept = thread::Builder::new()
            .name("fake-auth".into())
            .spawn(move || accept_loop(listener, stop2, answered2))?;
        Ok(FakeAuth {
            path: path.to_path_buf(),
            stop,
            accept: Some(accept),
            answered,
        })
    }

    /// How many `AUTH` requests were answered so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

impl Drop for FakeAuth {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: UnixListener, stop: Arc<AtomicBool>, answered: Arc<AtomicU64>) {
    let mut cuid = 0u64;
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(conn) = conn else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        cuid += 1;
        let answered = answered.clone();
        // The connection thread ends when the director closes its side.
        let _ = thread::Builder::new()
            .name("fake-auth-conn".into())
            .spawn(move || {
                let _ = serve(conn, cuid, &answered);
            });
    }
}

fn serve(mut conn: UnixStream, cuid: u64, answered: &AtomicU64) -> io::Result<()> {
    let hello = format!(
        "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t{}\nCUID\t{cuid}\nCOOKIE\t{:032x}\nDONE\n",
        std::process::id(),
        0x5eed_0000_0000_0000_0000_0000_0000_0000u128 + u128::from(cuid),
    );
    conn.write_all(hello.as_bytes())?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0usize;
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        if have == buf.len() {
            if buf.len() >= MAX_LINE * 8 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = conn.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let mut start = 0;
        let mut replies = 0u64;
        while let Some(pos) = buf[start..have].iter().position(|&b| b == b'\n') {
            if answer(&buf[start..start + pos], &mut out) {
                replies += 1;
            }
            start += pos + 1;
        }
        buf.copy_within(start..have, 0);
        have -= start;
        if !out.is_empty() {
            answered.fetch_add(replies, Ordering::Relaxed);
            conn.write_all(&out)?;
            out.clear();
        }
    }
}

/// Appends the reply to one request line; `true` if it was an `AUTH`.
fn answer(line: &[u8], out: &mut Vec<u8>) -> bool {
    let mut fields = line.split(|&b| b == b'\t');
    if fields.next() != Some(b"AUTH") {
        return false; // VERSION, CPID, CANCEL: nothing to say
    }
    let Some(id) = fields.next() else {
        return false;
    };
    let user = fields
        .find_map(|f| f.strip_prefix(b"resp="))
        .and_then(b64::decode)
        .and_then(|plain| plain.split(|&b| b == 0).nth(1).map(<[u8]>::to_vec));
    match user {
        Some(user) if !user.is_empty() => {
            out.extend_from_slice(b"OK\t");
            out.extend_from_slice(id);
            out.extend_from_slice(b"\tuser=");
            out.extend_from_slice(&user);
            out.extend_from_slice(b"\tproxy\n");
        }
        _ => {
            out.extend_from_slice(b"FAIL\t");
            out.extend_from_slice(id);
            out.extend_from_slice(b"\treason=bench: no PLAIN response\n");
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    #[test]
    fn answers_like_the_brief_says() {
        let dir = std::env::temp_dir().join(format!("fake-auth-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auth-login");
        let srv = FakeAuth::start(&path).unwrap();
        let c = UnixStream::connect(&path).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        let mut lines = Vec::new();
        for _ in 0..6 {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            lines.push(l);
        }
        assert_eq!(lines[0], "VERSION\t1\t2\n");
        assert_eq!(lines[1], "MECH\tPLAIN\tplaintext\n");
        assert!(lines[2].starts_with("SPID\t"));
        assert_eq!(lines[3], "CUID\t1\n");
        assert_eq!(lines[4].len(), "COOKIE\t".len() + 32 + 1);
        assert_eq!(lines[5], "DONE\n");
        // The lab's real request (auth-imap-login-success.txt), split across two writes.
        w.write_all(b"VERSION\t1\t2\nCPID\t30755\nAUTH\t1\tPLAIN\tservice=imap\tsecured\tlip=127.0.0.2\trip=127.0.0.1\tlport=143\t")
            .unwrap();
        w.write_all(b"rport=57854\tresp=AGNhcDAxAHBhc3M=\nAUTH\t2\tPLAIN\tservice=imap\n")
            .unwrap();
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        assert_eq!(l, "OK\t1\tuser=cap01\tproxy\n");
        l.clear();
        r.read_line(&mut l).unwrap();
        assert!(l.starts_with("FAIL\t2\t"), "{l}");
        assert_eq!(srv.answered(), 2);
        drop(srv);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
