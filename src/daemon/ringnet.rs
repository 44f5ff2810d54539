//! Ring TCP I/O (`ring-protocol.md` §§2, 3, 9.3): the listener, one task per ring connection,
//! and the owner-side table of connections. No protocol logic lives here.
//!
//! Mirrors the socket half of Dovecot's `src/director/director-connection.c` and the accept
//! path of `main.c`: lines are framed with a 1024-byte limit (`MAX_INBUF_SIZE`), output is
//! queued without ever blocking the owner and bounded by `director_output_buffer_size`, and
//! outgoing connections are bound to our own ring IP first (the peer filters on source IP).
//!
//! Each connection task reads lines and forwards them to the owner as [`RingIo`] events in
//! arrival order; it writes what the owner queued through [`RingNet::send`]. The owner is the
//! only one deciding to close: a task that loses its socket reports [`RingIo::Closed`], and a
//! close the owner asked for is never reported back.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use director_parsers::framing::DIRECTOR_MAX_LINE;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error};

use super::events::{Event, OwnerHandle};
use super::lines::{LineEvent, LineReader};

/// Listen backlog of the ring socket.
const RING_BACKLOG: i32 = 128;

/// Set in the ids of outgoing connections (the ids the ring picks); accepted connections
/// are numbered below it.
pub const OUTGOING_BIT: u64 = 1 << 63;

/// How long a connection may keep flushing its output after shutdown started.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(1);

/// Backstop bound on a connect(); the ring's own 10 s handshake timer ("Connect timed out",
/// `ring-protocol.md` §9.1) normally fires first.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(11);

/// Most bytes gathered from the queue into one write().
const WRITE_BATCH: usize = 64 * 1024;

/// Bytes one read() of a ring connection may bring (lines are still limited to 1024).
const READ_BUFFER: usize = 64 * 1024;

/// Most lines handed to the owner in one event.
const MAX_BATCH_LINES: usize = 4096;

/// Why a connection task ended on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseWhy {
    /// The peer closed.
    Eof,
    /// Reading or writing failed (text as `strerror`).
    Error(String),
    /// A line did not fit in 1024 bytes. Reading stopped, but the connection still writes
    /// (the owner's QUIT) until the owner closes it.
    TooLong,
    /// connect() failed or timed out.
    ConnectFailed(String),
}

/// What ring connection tasks (and the ring listener) tell the owner.
#[derive(Debug)]
pub enum RingIo {
    /// A TCP connection arrived on the ring listener; the owner filters and adopts it.
    Accepted {
        /// The socket.
        stream: TcpStream,
        /// Its source address.
        peer: SocketAddr,
    },
    /// An outgoing connection is up.
    Connected {
        /// Connection id given to [`RingNet::connect`].
        conn: u64,
        /// The address we connected to.
        peer_ip: IpAddr,
    },
    /// The complete input lines of one read, in order, each without LF (and CR). One event
    /// per read, not per line: a message per line was a sixth of a big handshake's CPU.
    Lines {
        /// The connection.
        conn: u64,
        /// The lines (slices of the read buffer).
        lines: Vec<Bytes>,
    },
    /// Everything queued before [`RingNet::want_writable`] has been written.
    Writable {
        /// The connection.
        conn: u64,
    },
    /// The connection ended without the owner asking (except [`CloseWhy::TooLong`], which
    /// waits for the owner's close).
    Closed {
        /// The connection.
        conn: u64,
        /// Why.
        why: CloseWhy,
    },
}

/// Byte counters of one connection, shared between its task and the owner.
#[derive(Debug, Default)]
pub struct ConnCounters {
    /// Bytes read.
    pub bytes_in: AtomicU64,
    /// Bytes written.
    pub bytes_out: AtomicU64,
    /// Bytes queued by the owner and not yet written.
    pub buffered: AtomicU64,
    /// Unix time of the last input.
    pub last_in: AtomicU64,
    /// Unix time of the last output.
    pub last_out: AtomicU64,
}

/// A snapshot of a connection's counters (for `DIRECTOR-LIST`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Bytes waiting to be written.
    pub buffered: u64,
    /// Highest `buffered` seen.
    pub peak_buffered: u64,
    /// Unix time of the last input.
    pub last_in: u64,
    /// Unix time of the last output.
    pub last_out: u64,
}

/// A queued output item.
#[derive(Debug)]
enum Out {
    Line(Bytes),
    /// Report [`RingIo::Writable`] once reached.
    Writable,
    Close,
}

/// The owner's view of one connection.
#[derive(Debug)]
struct ConnHandle {
    tx: mpsc::UnboundedSender<Out>,
    counters: Arc<ConnCounters>,
    peak_buffered: u64,
}

/// Why [`RingNet::send`] did not queue a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No such connection (already closed).
    Gone,
    /// The output buffer limit would be exceeded; this many bytes are buffered.
    Full(u64),
}

/// Creates the ring listener with `SO_REUSEADDR`, as Dovecot's master does for inet listeners.
pub fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("bind({addr}) failed: {e}")))?;
    sock.listen(RING_BACKLOG)?;
    TcpListener::from_std(sock.into())
}

/// Dovecot's `net_try_bind()`: whether `ip` is one of our local addresses.
pub fn can_bind(ip: IpAddr) -> bool {
    std::net::TcpListener::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// The ring listener's accept loop: every connection goes to the owner, which filters it.
pub async fn accept_loop(listener: TcpListener, owner: OwnerHandle, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                if !owner
                    .send(Event::Ring(RingIo::Accepted { stream, peer }))
                    .await
                {
                    break;
                }
            }
            Err(e) => {
                // EMFILE and friends: keep the listener, try again shortly.
                error!("accept() failed: {}", super::describe_io_error(&e));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    debug!("ring listener stopped");
}

/// The owner's table of ring connections.
#[derive(Debug)]
pub struct RingNet {
    self_ip: IpAddr,
    output_limit: u64,
    owner: mpsc::WeakSender<Event>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    conns: HashMap<u64, ConnHandle>,
    next_incoming: u64,
}

impl RingNet {
    /// A table for a director whose ring IP is `self_ip`; tasks report through `owner`.
    pub fn new(
        self_ip: IpAddr,
        output_limit: u64,
        owner: mpsc::WeakSender<Event>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            self_ip,
            output_limit,
            owner,
            tracker,
            shutdown,
            conns: HashMap::new(),
            next_incoming: 0,
        }
    }

    /// Starts serving an accepted connection and returns its id (ids below `1 << 63`;
    /// ids the ring picks for outgoing connections have that bit set).
    pub fn adopt(&mut self, stream: TcpStream) -> u64 {
        self.next_incoming += 1;
        let conn = self.next_incoming;
        let (handle, rx) = self.handle();
        let counters = handle.counters.clone();
        self.conns.insert(conn, handle);
        if let Some(owner) = self.owner.upgrade() {
            let owner = OwnerHandle::new(owner);
            let shutdown = self.shutdown.clone();
            self.tracker.spawn(async move {
                serve(conn, stream, rx, counters, owner, shutdown).await;
            });
        }
        conn
    }

    /// Opens an outgoing connection from our own ring IP to `ip:port` as `conn`; reports
    /// [`RingIo::Connected`] or [`RingIo::Closed`] with [`CloseWhy::ConnectFailed`].
    pub fn connect(&mut self, conn: u64, ip: IpAddr, port: u16) {
        let (handle, rx) = self.handle();
        let counters = handle.counters.clone();
        self.conns.insert(conn, handle);
        let Some(owner) = self.owner.upgrade() else {
            return;
        };
        let owner = OwnerHandle::new(owner);
        let shutdown = self.shutdown.clone();
        let self_ip = self.self_ip;
        self.tracker.spawn(async move {
            let target = SocketAddr::new(ip, port);
            let connected = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(CONNECT_TIMEOUT, connect_from(self_ip, target)) => r,
            };
            let why = match connected {
                Ok(Ok(stream)) => {
                    let ev = RingIo::Connected { conn, peer_ip: ip };
                    if owner.send(Event::Ring(ev)).await {
                        serve(conn, stream, rx, counters, owner, shutdown).await;
                    }
                    return;
                }
                Ok(Err(e)) => super::describe_io_error(&e),
                Err(_) => "Connect timed out".to_string(),
            };
            let ev = RingIo::Closed {
                conn,
                why: CloseWhy::ConnectFailed(why),
            };
            owner.send(Event::Ring(ev)).await;
        });
    }

    fn handle(&self) -> (ConnHandle, mpsc::UnboundedReceiver<Out>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = ConnHandle {
            tx,
            counters: Arc::new(ConnCounters::default()),
            peak_buffered: 0,
        };
        (handle, rx)
    }

    /// Queues one complete line (with its LF). Never waits: the queue is unbounded but its
    /// bytes are counted against `director_output_buffer_size`.
    pub fn send(&mut self, conn: u64, line: Vec<u8>) -> Result<(), SendError> {
        let Some(h) = self.conns.get_mut(&conn) else {
            return Err(SendError::Gone);
        };
        let len = line.len() as u64;
        let buffered = h.counters.buffered.load(Ordering::Acquire);
        if buffered + len > self.output_limit {
            return Err(SendError::Full(buffered));
        }
        h.counters.buffered.fetch_add(len, Ordering::AcqRel);
        h.peak_buffered = h.peak_buffered.max(buffered + len);
        h.tx.send(Out::Line(Bytes::from(line)))
            .map_err(|_| SendError::Gone)
    }

    /// Asks for [`RingIo::Writable`] once what is queued now has been written.
    pub fn want_writable(&mut self, conn: u64) {
        if let Some(h) = self.conns.get(&conn) {
            let _ = h.tx.send(Out::Writable);
        }
    }

    /// Closes a connection after what was queued has been written; it is forgotten at once.
    pub fn close(&mut self, conn: u64) {
        if let Some(h) = self.conns.remove(&conn) {
            let _ = h.tx.send(Out::Close);
        }
    }

    /// Forgets a connection whose task already ended (after [`RingIo::Closed`]).
    pub fn forget(&mut self, conn: u64) -> bool {
        self.conns.remove(&conn).is_some()
    }

    /// Every connection's id.
    pub fn ids(&self) -> Vec<u64> {
        self.conns.keys().copied().collect()
    }

    /// Whether the connection is in the table.
    pub fn contains(&self, conn: u64) -> bool {
        self.conns.contains_key(&conn)
    }

    /// The connection's counters.
    pub fn stats(&self, conn: u64) -> Option<ConnStats> {
        let h = self.conns.get(&conn)?;
        let c = &h.counters;
        Some(ConnStats {
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            buffered: c.buffered.load(Ordering::Relaxed),
            peak_buffered: h.peak_buffered,
            last_in: c.last_in.load(Ordering::Relaxed),
            last_out: c.last_out.load(Ordering::Relaxed),
        })
    }
}

/// A TCP connection to `target` whose source address is our ring IP.
async fn connect_from(self_ip: IpAddr, target: SocketAddr) -> io::Result<TcpStream> {
    let sock = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if self_ip.is_ipv4() == target.is_ipv4() {
        sock.bind(SocketAddr::new(self_ip, 0))?;
    }
    sock.connect(target).await
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One connection: lines to the owner, queued output to the socket.
async fn serve(
    conn: u64,
    stream: TcpStream,
    mut rx: mpsc::UnboundedReceiver<Out>,
    counters: Arc<ConnCounters>,
    owner: OwnerHandle,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.into_split();
    let reading = async {
        let mut reader = LineReader::with_capacity(
            CountingReader::new(r, counters.clone()),
            DIRECTOR_MAX_LINE,
            READ_BUFFER,
        );
        loop {
            match reader.next_line().await {
                Ok(LineEvent::Line(line)) => {
                    // Every complete line this read brought goes in the same event; a too
                    // long one after them is reported once they are delivered.
                    let mut lines = vec![line];
                    let mut too_long = false;
                    while lines.len() < MAX_BATCH_LINES {
                        match reader.buffered_line() {
                            Some(LineEvent::Line(l)) => lines.push(l),
                            Some(_) => {
                                too_long = true;
                                break;
                            }
                            None => break,
                        }
                    }
                    if !owner.send(Event::Ring(RingIo::Lines { conn, lines })).await {
                        return None;
                    }
                    if too_long {
                        return Some(CloseWhy::TooLong);
                    }
                }
                Ok(LineEvent::TooLong) => return Some(CloseWhy::TooLong),
                Ok(LineEvent::Eof) => return Some(CloseWhy::Eof),
                Err(e) => {
                    return Some(CloseWhy::Error(format!(
                        "read(size={DIRECTOR_MAX_LINE}) failed: {}",
                        super::describe_io_error(&e)
                    )))
                }
            }
        }
    };
    let writer_owner = owner.clone();
    let writing = async {
        let mut batch: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
        while let Some(first) = rx.recv().await {
            // Gather the queued lines into one write(); a marker, an empty queue or a full
            // batch ends it.
            let mut item = Some(first);
            while let Some(Out::Line(bytes)) = &item {
                batch.extend_from_slice(bytes);
                item = if batch.len() >= WRITE_BATCH {
                    None
                } else {
                    rx.try_recv().ok()
                };
            }
            if !batch.is_empty() {
                let len = batch.len() as u64;
                let r = w.write_all(&batch).await;
                counters.buffered.fetch_sub(len, Ordering::AcqRel);
                batch.clear();
                if let Err(e) = r {
                    return Some(CloseWhy::Error(format!(
                        "write() failed: {}",
                        super::describe_io_error(&e)
                    )));
                }
                counters.bytes_out.fetch_add(len, Ordering::Relaxed);
                counters.last_out.store(unix_now(), Ordering::Relaxed);
            }
            match item {
                Some(Out::Writable) => {
                    let ev = RingIo::Writable { conn };
                    if !writer_owner.send(Event::Ring(ev)).await {
                        return None;
                    }
                }
                Some(Out::Close) => break,
                _ => {}
            }
        }
        // The owner closed (or forgot) the connection: flush what was queued and end.
        let _ = w.shutdown().await;
        None
    };
    // At shutdown the owner queues `QUIT` and closes every connection; give that a moment
    // to go out before giving up on a peer that does not read.
    let stop = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_FLUSH).await;
    };
    tokio::pin!(stop, writing);
    let why = tokio::select! {
        _ = &mut stop => None,
        why = reading => why,
        why = &mut writing => why,
    };
    if let Some(why) = why {
        let keep_writing = why == CloseWhy::TooLong;
        if !owner.send(Event::Ring(RingIo::Closed { conn, why })).await || !keep_writing {
            return;
        }
        // Dovecot answers a too long line with QUIT before closing: write until the owner
        // closes the connection.
        tokio::select! {
            _ = &mut stop => {}
            _ = &mut writing => {}
        }
    }
}

/// Counts bytes read and the time of the last input.
struct CountingReader<R> {
    inner: R,
    counters: Arc<ConnCounters>,
}

impl<R> CountingReader<R> {
    fn new(inner: R, counters: Arc<ConnCounters>) -> Self {
        Self { inner, counters }
    }
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for CountingReader<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            self.counters.bytes_in.fetch_add(n, Ordering::Relaxed);
            self.counters.last_in.store(unix_now(), Ordering::Relaxed);
        }
        r
    }
}

#[cfg(test)]
#[path = "ringnet_tests.rs"]
mod tests;
