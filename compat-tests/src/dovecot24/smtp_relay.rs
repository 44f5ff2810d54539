//! A do-nothing SMTP server for the backends' `submission_relay_host`: a 2.4 submission
//! service connects to its relay as soon as a user logs in and drops the session when it
//! cannot. This one greets, says 250 to everything, and never delivers anything.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Lines one relay connection may send before it is dropped.
const MAX_LINES: usize = 100;
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// A running fake relay; stopped (thread joined) on drop.
#[derive(Debug)]
pub struct SmtpRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SmtpRelay {
    /// Listens on `ip`, any free port.
    pub fn start(ip: Ipv4Addr) -> std::io::Result<SmtpRelay> {
        let listener = TcpListener::bind((ip, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        std::thread::spawn(move || serve(s));
                    }
                    Err(_) => std::thread::sleep(POLL),
                }
            }
        });
        Ok(SmtpRelay {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for SmtpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(s: TcpStream) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut w) = s.try_clone() else { return };
    let mut r = BufReader::new(s);
    if w.write_all(b"220 relay.dcompat.test ESMTP\r\n").is_err() {
        return;
    }
    let mut line = String::new();
    for _ in 0..MAX_LINES {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 relay.dcompat.test\r\n",
            "QUIT" => b"221 2.0.0 Bye\r\n",
            _ => b"250 2.0.0 OK\r\n",
        };
        if w.write_all(reply).is_err() || verb == "QUIT" {
            return;
        }
    }
}
