//! Recording relays: listen where a client expects the real socket (UNIX, TCP or FIFO),
//! forward every byte to the real one, and record it in a [`Recorder`] before forwarding.
//!
//! Every loop polls a stop flag at least every [`POLL`], so dropping a [`Relay`] ends its
//! threads within a bounded time.

use std::ffi::CString;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::err;
use crate::transcript::Recorder;

/// Longest time a relay thread goes without looking at its stop flag.
pub const POLL: Duration = Duration::from_millis(50);

/// What a relay records its traffic as: `<leg>#<conn> <client>-><server>`.
#[derive(Debug, Clone)]
pub struct Leg {
    /// Leg name, e.g. `director-admin` (the lab's names).
    pub name: String,
    /// Name of the connecting side, e.g. `doveadm`.
    pub client: String,
    /// Name of the side the relay connects to, e.g. `director`.
    pub server: String,
}

impl Leg {
    /// A leg called `name`, from `client` to `server`.
    pub fn new(name: &str, client: &str, server: &str) -> Leg {
        Leg {
            name: name.into(),
            client: client.into(),
            server: server.into(),
        }
    }
}

/// Ownership and mode of a socket or FIFO the relay creates (the real one's peers may run as
/// `dovecot` or `dovenull`).
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// File mode, e.g. `0o666`.
    pub mode: u32,
    /// Owner uid and gid, or `None` to keep root.
    pub owner: Option<(u32, u32)>,
}

impl Access {
    /// Anyone may connect.
    pub const OPEN: Access = Access {
        mode: 0o666,
        owner: None,
    };
}

type Threads = Arc<Mutex<Vec<JoinHandle<()>>>>;
/// An accepted connection and, for TCP, its peer address.
type Accepted = (Box<dyn Duplex>, Option<SocketAddr>);

/// A running relay; dropping it stops it (open connections are shut down).
#[derive(Debug)]
pub struct Relay {
    stop: Arc<AtomicBool>,
    threads: Threads,
    listen: Option<PathBuf>,
}

/// A connected byte stream the relay can pump: UNIX or TCP.
trait Duplex: Read + Write + Send + 'static {
    fn clone_box(&self) -> std::io::Result<Box<dyn Duplex>>;
    fn set_timeout(&self, t: Option<Duration>) -> std::io::Result<()>;
    fn close_write(&self);
}

impl Duplex for UnixStream {
    fn clone_box(&self) -> std::io::Result<Box<dyn Duplex>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn set_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.set_read_timeout(t)
    }
    fn close_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Duplex for TcpStream {
    fn clone_box(&self) -> std::io::Result<Box<dyn Duplex>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn set_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.set_read_timeout(t)
    }
    fn close_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Relay {
    /// Renames the socket at `path` to `<path>.real` and relays `path` to it.
    pub fn unix_in_front(
        path: &Path,
        rec: &Recorder,
        leg: Leg,
        access: Access,
    ) -> std::io::Result<Relay> {
        let real = real_path(path);
        std::fs::rename(path, &real)?;
        Self::unix(path, &real, rec, leg, access)
    }

    /// Listens on the UNIX socket `listen` and relays each connection to `target`.
    pub fn unix(
        listen: &Path,
        target: &Path,
        rec: &Recorder,
        leg: Leg,
        access: Access,
    ) -> std::io::Result<Relay> {
        let _ = std::fs::remove_file(listen);
        let listener = UnixListener::bind(listen)?;
        apply_access(listen, access)?;
        listener.set_nonblocking(true)?;
        let target = target.to_path_buf();
        let relay = Relay::empty(Some(listen.to_path_buf()));
        let names = (leg.client.clone(), leg.server.clone());
        relay.spawn_acceptor(
            rec.clone(),
            leg.name,
            move || match listener.accept() {
                Ok((s, _)) => Ok(Some((Box::new(s) as Box<dyn Duplex>, None))),
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            },
            move |_| Ok(Box::new(UnixStream::connect(&target)?) as Box<dyn Duplex>),
            move |_| names.clone(),
        );
        Ok(relay)
    }

    /// Listens on TCP `listen` and relays each connection to `target`.
    pub fn tcp(
        listen: SocketAddr,
        target: SocketAddr,
        rec: &Recorder,
        leg: Leg,
    ) -> std::io::Result<Relay> {
        let names = (leg.client.clone(), leg.server.clone());
        Self::tcp_with(listen, target, rec, leg.name, false, move |_| names.clone())
    }

    /// A relay for director ring connections, for directors started with `-t <listen port>`
    /// (they then connect to every peer on that port instead of its ring port): listens on
    /// `listen`, connects to `target` *from the connecting director's own address* (a director
    /// refuses ring connections from addresses not in `director_servers`), and labels each
    /// side `<name>:<port>` from `names`, like the lab (`dir1:44243->dir2:9090`).
    pub fn tcp_ring(
        listen: SocketAddr,
        target: SocketAddr,
        rec: &Recorder,
        names: Vec<(IpAddr, String)>,
    ) -> std::io::Result<Relay> {
        let name_of = move |a: SocketAddr| {
            let n = names
                .iter()
                .find(|(ip, _)| *ip == a.ip())
                .map(|(_, n)| n.clone());
            format!("{}:{}", n.unwrap_or_else(|| a.ip().to_string()), a.port())
        };
        Self::tcp_with(listen, target, rec, "ring".into(), true, move |peer| {
            (peer.map(&name_of).unwrap_or_default(), name_of(target))
        })
    }

    fn tcp_with(
        listen: SocketAddr,
        target: SocketAddr,
        rec: &Recorder,
        leg: String,
        bind_to_peer: bool,
        labels: impl Fn(Option<SocketAddr>) -> (String, String) + Send + 'static,
    ) -> std::io::Result<Relay> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let relay = Relay::empty(None);
        relay.spawn_acceptor(
            rec.clone(),
            leg,
            move || match listener.accept() {
                Ok((s, peer)) => Ok(Some((Box::new(s) as Box<dyn Duplex>, Some(peer)))),
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            },
            move |peer: Option<SocketAddr>| {
                let sock = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
                if let Some(p) = peer.filter(|_| bind_to_peer) {
                    sock.bind(&SocketAddr::new(p.ip(), 0).into())?;
                }
                sock.connect_timeout(&target.into(), Duration::from_secs(5))?;
                Ok(Box::new(TcpStream::from(sock)) as Box<dyn Duplex>)
            },
            labels,
        );
        Ok(relay)
    }

    /// Renames the FIFO at `path` to `<path>.real`, creates a new FIFO at `path` and copies
    /// everything written into it to the real one (recorded as connection 1).
    pub fn fifo_in_front(
        path: &Path,
        rec: &Recorder,
        leg: Leg,
        access: Access,
    ) -> std::io::Result<Relay> {
        let real = real_path(path);
        std::fs::rename(path, &real)?;
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| err("NUL in path"))?;
        // SAFETY: c is a valid NUL-terminated path.
        if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        apply_access(path, access)?;
        // Read-write: the FIFO then never reports EOF when writers come and go.
        let input = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let mut output = std::fs::OpenOptions::new().write(true).open(&real)?;
        let relay = Relay::empty(Some(path.to_path_buf()));
        let stop = relay.stop.clone();
        let rec = rec.clone();
        let h = std::thread::spawn(move || {
            let conn = rec.next_conn(&leg.name);
            let mut buf = vec![0u8; 65536];
            let mut input = input;
            while !stop.load(Ordering::Relaxed) {
                if !readable(input.as_raw_fd(), POLL) {
                    continue;
                }
                match input.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        rec.data(&leg.name, conn, &leg.client, &leg.server, &buf[..n]);
                        if output.write_all(&buf[..n]).is_err() {
                            rec.event(&leg.name, conn, "write to the real FIFO failed");
                            break;
                        }
                    }
                }
            }
        });
        relay
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(h);
        Ok(relay)
    }

    fn empty(listen: Option<PathBuf>) -> Relay {
        Relay {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Arc::default(),
            listen,
        }
    }

    fn spawn_acceptor<A, C, L>(
        &self,
        rec: Recorder,
        leg: String,
        mut accept: A,
        connect: C,
        labels: L,
    ) where
        A: FnMut() -> std::io::Result<Option<Accepted>> + Send + 'static,
        C: Fn(Option<SocketAddr>) -> std::io::Result<Box<dyn Duplex>> + Send + 'static,
        L: Fn(Option<SocketAddr>) -> (String, String) + Send + 'static,
    {
        let stop = self.stop.clone();
        let threads = self.threads.clone();
        let h = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (client, peer) = match accept() {
                    Ok(Some(c)) => c,
                    Ok(None) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => break,
                };
                let conn = rec.next_conn(&leg);
                let (from, to) = labels(peer);
                let server = match connect(peer) {
                    Ok(s) => s,
                    Err(e) => {
                        rec.event(&leg, conn, &format!("connect to {to} failed: {e}"));
                        continue;
                    }
                };
                rec.event(&leg, conn, &format!("{from} connected"));
                let pumps = [
                    (&client, &server, &from, &to),
                    (&server, &client, &to, &from),
                ]
                .map(|(src, dst, from, to)| Pump {
                    src: src.clone_box(),
                    dst: dst.clone_box(),
                    from: from.clone(),
                    to: to.clone(),
                });
                let (rec2, leg2, stop2) = (rec.clone(), leg.clone(), stop.clone());
                let h = std::thread::spawn(move || {
                    let [a, b] = pumps;
                    let t = std::thread::spawn({
                        let (rec, leg, stop) = (rec2.clone(), leg2.clone(), stop2.clone());
                        move || a.run(&rec, &leg, conn, &stop)
                    });
                    b.run(&rec2, &leg2, conn, &stop2);
                    let _ = t.join();
                    rec2.event(&leg2, conn, "closed");
                    drop((client, server));
                });
                threads.lock().unwrap_or_else(|e| e.into_inner()).push(h);
            }
        });
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(h);
    }
}

/// One direction of one relayed connection.
struct Pump {
    src: std::io::Result<Box<dyn Duplex>>,
    dst: std::io::Result<Box<dyn Duplex>>,
    from: String,
    to: String,
}

impl Pump {
    fn run(self, rec: &Recorder, leg: &str, conn: u32, stop: &AtomicBool) {
        let (Ok(mut src), Ok(mut dst)) = (self.src, self.dst) else {
            rec.event(leg, conn, "socket clone failed");
            return;
        };
        let _ = src.set_timeout(Some(POLL));
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            match src.read(&mut buf) {
                Ok(0) => {
                    rec.event(leg, conn, &format!("{} closed its side (EOF)", self.from));
                    break;
                }
                Ok(n) => {
                    rec.data(leg, conn, &self.from, &self.to, &buf[..n]);
                    if let Err(e) = dst.write_all(&buf[..n]) {
                        rec.event(leg, conn, &format!("{}->{} error: {e}", self.from, self.to));
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    rec.event(leg, conn, &format!("{}->{} error: {e}", self.from, self.to));
                    break;
                }
            }
        }
        dst.close_write();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The acceptor may add a connection's thread until it sees the flag: drain repeatedly.
        loop {
            let threads =
                std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
            if threads.is_empty() {
                break;
            }
            for h in threads {
                let _ = h.join();
            }
        }
        if let Some(p) = &self.listen {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `<path>.real`, where the real socket or FIFO is moved to.
pub fn real_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".real");
    PathBuf::from(s)
}

fn apply_access(path: &Path, access: Access) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(access.mode))?;
    if let Some((uid, gid)) = access.owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Waits up to `timeout` for `fd` to become readable.
fn readable(fd: i32, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is a valid pollfd and we pass a count of 1.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
    n > 0 && pfd.revents & libc::POLLIN != 0
}
