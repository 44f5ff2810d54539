//! A minimal IMAP backend for the end-to-end figure: it greets, accepts any `LOGIN` or
//! `AUTHENTICATE`, answers `ID` and `CAPABILITY`, says `BYE` on `LOGOUT` and closes. It
//! does no mail work, so the proxy in front of it is what is measured.
//!
//! One listener per address, one short-lived thread per connection (a proxied login is a
//! handful of lines).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Longest command line accepted.
const MAX_LINE: usize = 8192;
/// Lines per connection before it is closed (a proxied login needs about five).
const MAX_LINES: usize = 64;
/// How long a connection may stay silent.
const IDLE: Duration = Duration::from_secs(20);

const GREETING: &[u8] =
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] bench backend ready.\r\n";

/// Running backends on several addresses; dropping them stops accepting.
pub struct Backends {
    addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    logins: Arc<AtomicU64>,
}

impl Backends {
    /// Listens on `port` at every address in `ips`.
    pub fn start(ips: &[Ipv4Addr], port: u16) -> io::Result<Backends> {
        let stop = Arc::new(AtomicBool::new(false));
        let logins = Arc::new(AtomicU64::new(0));
        let mut b = Backends {
            addrs: Vec::new(),
            stop: stop.clone(),
            threads: Vec::new(),
            logins: logins.clone(),
        };
        for &ip in ips {
            let addr = SocketAddr::from((ip, port));
            let listener = TcpListener::bind(addr)?;
            let (stop, logins) = (stop.clone(), logins.clone());
            b.addrs.push(addr);
            b.threads.push(
                thread::Builder::new()
                    .name("imap-backend".into())
                    .spawn(move || accept_loop(&listener, &stop, &logins))?,
            );
        }
        Ok(b)
    }

    /// Logins accepted so far, on all addresses.
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for a in &self.addrs {
            // Wakes the blocking accept() so it sees the flag.
            let _ = TcpStream::connect_timeout(a, Duration::from_secs(1));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, logins: &Arc<AtomicU64>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(conn) = conn else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        let logins = logins.clone();
        let _ = thread::Builder::new()
            .name("imap-backend-conn".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = serve(conn, &logins);
            });
    }
}

fn serve(conn: TcpStream, logins: &AtomicU64) -> io::Result<()> {
    conn.set_read_timeout(Some(IDLE))?;
    conn.set_nodelay(true)?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    w.write_all(GREETING)?;
    let mut line = Vec::new();
    let mut out = Vec::new();
    for _ in 0..MAX_LINES {
        line.clear();
        let n = r
            .by_ref()
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        out.clear();
        let close = answer(&line, logins, &mut out);
        w.write_all(&out)?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}

/// Appends the reply to one command line; `true` when the connection is to be closed.
fn answer(line: &[u8], logins: &AtomicU64, out: &mut Vec<u8>) -> bool {
    let text = String::from_utf8_lossy(line);
    let mut words = text.trim_end().splitn(3, ' ');
    let tag = words.next().unwrap_or("*");
    let cmd = words.next().unwrap_or("").to_ascii_uppercase();
    let args = words.next().unwrap_or("");
    let ok = |out: &mut Vec<u8>, what: &str| {
        out.extend_from_slice(format!("{tag} OK {what}\r\n").as_bytes());
    };
    match cmd.as_str() {
        "LOGOUT" => {
            out.extend_from_slice(b"* BYE Logging out\r\n");
            ok(out, "Logout completed.");
            return true;
        }
        "LOGIN" => {
            logins.fetch_add(1, Ordering::Relaxed);
            ok(out, "[CAPABILITY IMAP4rev1 ID IDLE] Logged in");
        }
        // The greeting offers SASL-IR, so the proxy sends its response on the same line.
        "AUTHENTICATE" if args.split(' ').nth(1).is_some() => {
            logins.fetch_add(1, Ordering::Relaxed);
            ok(out, "[CAPABILITY IMAP4rev1 ID IDLE] Logged in");
        }
        "AUTHENTICATE" => {
            out.extend_from_slice(format!("{tag} NO bench backend needs SASL-IR\r\n").as_bytes());
        }
        "ID" => {
            out.extend_from_slice(b"* ID (\"name\" \"director-bench backend\")\r\n");
            ok(out, "ID completed.");
        }
        "CAPABILITY" => {
            out.extend_from_slice(b"* CAPABILITY IMAP4rev1 SASL-IR ID AUTH=PLAIN\r\n");
            ok(out, "Capability completed.");
        }
        _ => ok(out, "Done."),
    }
    false
}
