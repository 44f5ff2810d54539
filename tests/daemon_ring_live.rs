//! Ring liveness of the real `directord` over TCP (`ring-protocol.md` §§2, 9): a peer that
//! stops answering is dropped after the ping timeouts, a peer that never finishes its
//! handshake is dropped after 10 s, and a peer sending an unknown command or a line over
//! 1024 bytes is disconnected with Dovecot's QUIT reason and banned for 60 s while the other
//! directors keep their ring. The scripted peer plays a director on a listed 127.0.0.x
//! address; the texts it expects are what a real 2.3.19.1 director sent and logged in the
//! same situations.

mod daemon_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use daemon_support::{Daemon, DEADLINE, HOSTS3};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One end of a ring connection played by the test, reading with a deadline.
struct Peer {
    s: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Peer {
    /// Connects to `to` from `from` (the accept filter looks at the source IP).
    fn connect(from: &str, to: SocketAddr) -> Peer {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let src: SocketAddr = format!("{from}:0").parse().unwrap();
        sock.bind(&src.into()).unwrap();
        sock.connect_timeout(&to.into(), DEADLINE).unwrap();
        Peer::new(sock.into())
    }

    fn new(s: TcpStream) -> Peer {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        Peer {
            s,
            buf: Vec::new(),
            eof: false,
        }
    }

    fn send(&mut self, lines: &[&str]) {
        for l in lines {
            self.s.write_all(format!("{l}\n").as_bytes()).unwrap();
        }
    }

    fn fill(&mut self) {
        let mut b = [0u8; 4096];
        match self.s.read(&mut b) {
            Ok(0) => self.eof = true,
            Ok(n) => self.buf.extend_from_slice(&b[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => self.eof = true,
        }
    }

    /// Reads until a line starting with `prefix` arrived (returns it) or `limit` passed.
    fn wait_line(&mut self, prefix: &str, limit: Duration) -> Option<String> {
        let end = Instant::now() + limit;
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            if let Some(l) = text.lines().find(|l| l.starts_with(prefix)) {
                return Some(l.to_string());
            }
            if self.eof || Instant::now() > end {
                return None;
            }
            self.fill();
        }
    }

    /// Reads until the daemon closes the connection (true) or `limit` passed.
    fn wait_eof(&mut self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while !self.eof && Instant::now() < end {
            self.fill();
        }
        self.eof
    }

    /// Everything received so far.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

/// The outgoing side's handshake of a director `me` (not handshaked, no hosts).
fn out_handshake(me: &str, port: u16, dirs: &[&str]) -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut v = vec![
        "VERSION\tdirector\t1\t9".to_string(),
        format!("ME\t{me}\t{port}\t{now}"),
    ];
    v.extend(dirs.iter().map(|d| format!("DIRECTOR\t{d}\t{port}")));
    v.extend(
        [
            "HOST-HAND-START\t0",
            "HOST-HAND-END\t0",
            "OPTIONS\tconsistent-hashing",
            "DONE",
        ]
        .map(String::from),
    );
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn silent_peer_is_disconnected_after_the_ping_timeouts() {
    let port = free_port();
    // The peer 127.0.0.2 listens for the daemon's connection to it (its right).
    let listener = TcpListener::bind(("127.0.0.2", port)).unwrap();
    let d = Daemon::start(&format!(
        "{HOSTS3}ping_idle_timeout = 2\nping_max_timeout = 4\n\
         listen = \"127.0.0.1:{port}\"\nservers = \"127.0.0.1 127.0.0.2\"\n"
    ));
    let ring: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    listener.set_nonblocking(false).unwrap();
    let (s, _) = listener.accept().unwrap();
    let mut right = Peer::new(s);
    assert!(right.wait_line("DIRECTOR\t127.0.0.2", DEADLINE).is_some());
    let now = right.wait_line("ME\t", DEADLINE).unwrap();
    let ts = now.rsplit('\t').next().unwrap().to_string();
    right.send(&[
        "VERSION\tdirector\t1\t9",
        &format!("ME\t127.0.0.2\t{port}\t{ts}"),
    ]);
    assert!(
        right.wait_line("DONE", DEADLINE).is_some(),
        "{}",
        right.text()
    );
    right.send(&["DONE"]);
    let mut left = Peer::connect("127.0.0.2", ring);
    let hs = out_handshake("127.0.0.2", port, &["127.0.0.1", "127.0.0.2"]);
    left.send(&strs(&hs));
    assert!(
        left.wait_line("DONE", DEADLINE).is_some(),
        "{}",
        left.text()
    );
    // Both neighbours are assigned: the daemon SYNCs and PINGs, and nobody answers.
    let sent = Instant::now();
    assert!(left.wait_line("PING\t", DEADLINE).is_some());
    assert!(right.wait_line("PING\t", DEADLINE).is_some());
    // The right (assigned first) got no input at all for director_ping_idle_timeout (2 s):
    // "Ping timeout". The left's idle wait was replaced by its ping interval when it was
    // assigned second (as in Dovecot, whose director_connection_assigned() re-arms to_ping
    // after the SYNC's PING), so director_ping_max_timeout (4 s) ends it: "Pong timeout".
    let quits: Vec<String> = [&mut left, &mut right]
        .into_iter()
        .map(|p| {
            let q = p.wait_line("QUIT\t", DEADLINE).unwrap_or_default();
            assert!(p.wait_eof(DEADLINE), "{}", p.text());
            q
        })
        .collect();
    assert!(sent.elapsed() >= Duration::from_secs(2), "{quits:?}");
    assert_eq!(quits, ["QUIT\tPong timeout", "QUIT\tPing timeout"]);
    d.wait_log(&format!(
        "Director 127.0.0.2:{port}/right disconnected: Connection closed: Ping timed out in 2."
    ));
    d.wait_log(&format!(
        "Director 127.0.0.2:{port}/left disconnected: Connection closed: PONG reply not \
         received in 4."
    ));
}

#[test]
fn half_open_handshake_is_closed_after_10_s() {
    let port = free_port();
    let d = Daemon::start(&format!(
        "{HOSTS3}listen = \"127.0.0.1:{port}\"\nservers = \"127.0.0.1 127.0.0.3:{port}\"\n"
    ));
    let ring: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut p = Peer::connect("127.0.0.3", ring);
    p.send(&["VERSION\tdirector\t1\t9"]);
    let start = Instant::now();
    assert!(p.wait_line("ME\t127.0.0.1", DEADLINE).is_some());
    // Never sends ME: closed after 10 s, with a QUIT since it told its version.
    let quit = p.wait_line("QUIT\t", Duration::from_secs(15));
    assert_eq!(quit.as_deref(), Some("QUIT\tHandshake timeout"));
    assert!(p.wait_eof(DEADLINE));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(9_500), "{took:?}");
    d.wait_log("director(127.0.0.3/in): Handshaking ME timed out (10.");
}

/// Waits (bounded) until both daemons list each other as left and right, synced.
fn wait_pair(a: &Daemon, b: &Daemon, port: u16) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let la = a.admin().list("DIRECTOR-LIST");
        let lb = b.admin().list("DIRECTOR-LIST");
        let ok = |l: &str, other: &str| {
            l.contains("ring synced")
                && l.contains(&format!("{other}\t{port}\tleft\t0\tsynced\t"))
                && l.contains(&format!("{other}\t{port}\tright\t0\tsynced\t"))
        };
        if ok(&la, "127.0.0.2") && ok(&lb, "127.0.0.1") {
            return;
        }
        assert!(
            Instant::now() < end,
            "no pair: {la}\n{lb}\n{}\n-----\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn protocol_errors_disconnect_and_ban_while_the_others_keep_their_ring() {
    let port = free_port();
    let servers = "127.0.0.1 127.0.0.2 127.0.0.3";
    let ds: Vec<Daemon> = ["127.0.0.1", "127.0.0.2"]
        .iter()
        .map(|ip| {
            Daemon::start(&format!(
                "{HOSTS3}listen = \"{ip}:{port}\"\nservers = \"{servers}\"\n"
            ))
        })
        .collect();
    // 127.0.0.3 is listed but not running: the two form a ring on their own.
    wait_pair(&ds[0], &ds[1], port);
    let addr = |i: usize| -> SocketAddr { format!("127.0.0.{}:{port}", i + 1).parse().unwrap() };
    let greet = |p: &mut Peer| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        p.send(&[
            "VERSION\tdirector\t1\t9",
            &format!("ME\t127.0.0.3\t{port}\t{now}"),
        ]);
    };

    // An unknown command after ME: QUIT with the command name, closed, 127.0.0.3 banned.
    let mut p = Peer::connect("127.0.0.3", addr(0));
    greet(&mut p);
    p.send(&["GARBAGE\tx"]);
    assert_eq!(
        p.wait_line("QUIT\t", DEADLINE).as_deref(),
        Some("QUIT\tInvalid input: GARBAGE")
    );
    assert!(p.wait_eof(DEADLINE));
    ds[0].wait_log("Command GARBAGE: Unknown command GARBAGE (input: GARBAGE\tx)");
    let mut p = Peer::connect("127.0.0.3", addr(0));
    greet(&mut p);
    assert_eq!(
        p.wait_line("QUIT\t", DEADLINE).as_deref(),
        Some("QUIT\tInvalid input: ME")
    );
    assert!(p.wait_eof(DEADLINE));
    ds[0].wait_log(
        "director(127.0.0.3/in): Remote sent invalid protocol data recently, waiting 60 secs \
         before allowing further communication",
    );

    // A line over 1024 bytes on the other director: QUIT "Too long input line", banned too.
    let mut p = Peer::connect("127.0.0.3", addr(1));
    greet(&mut p);
    assert!(p.wait_line("ME\t127.0.0.2", DEADLINE).is_some());
    p.s.write_all(&[b'y'; 1100]).unwrap();
    assert_eq!(
        p.wait_line("QUIT\t", DEADLINE).as_deref(),
        Some("QUIT\tToo long input line")
    );
    assert!(p.wait_eof(DEADLINE));
    ds[1].wait_log("Director sent us more than 1024 bytes");
    let mut p = Peer::connect("127.0.0.3", addr(1));
    greet(&mut p);
    assert_eq!(
        p.wait_line("QUIT\t", DEADLINE).as_deref(),
        Some("QUIT\tInvalid input: ME")
    );
    ds[1].wait_log("Remote sent invalid protocol data recently, waiting 60 secs");
    // Each offence is logged once.
    assert_eq!(
        ds[1].log_count("more than 1024 bytes"),
        1,
        "{}",
        ds[1].log()
    );
    assert_eq!(ds[0].log_count("Unknown command GARBAGE"), 1);

    // The two real directors still have their ring, and it carries changes.
    wait_pair(&ds[0], &ds[1], port);
    let mut admin = ds[0].admin();
    assert_eq!(admin.line("HOST-DOWN\t10.0.0.2"), "OK\n");
    let end = Instant::now() + DEADLINE;
    loop {
        let hosts = ds[1].admin().list("HOST-LIST");
        if hosts
            .lines()
            .any(|l| l.starts_with("10.0.0.2\t") && l.contains("\tD\t"))
        {
            break;
        }
        assert!(Instant::now() < end, "{hosts}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
