//! Measures how long a ring handshake carrying many users takes between two real
//! `directord`s (`ring-protocol.md` §4.6). Not a test: it prints timings, asserts only that
//! every user arrived.
//!
//! ```sh
//! cargo build --release --bin directord --example ring_handshake_users
//! target/release/examples/ring_handshake_users [USERS]   # default 1000000
//! ```
//!
//! 1. A scripted director F (127.0.0.3) joins director A (127.0.0.1) and hands it USERS
//!    handshake users (`U` lines): A's receiving speed.
//! 2. F goes away; director B (127.0.0.2) starts and A hands it every user in its own
//!    handshake (chunks of 10000 as A's output drains): ours -> ours.
//!
//! Uses loopback addresses 127.0.0.1-3 and one free TCP port. `DIRECTORD` overrides the
//! path of the daemon binary (default: `directord` next to this example's directory).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const HOSTS: [&str; 3] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn directord() -> PathBuf {
    if let Ok(p) = std::env::var("DIRECTORD") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/examples")
        .join("directord")
}

/// A running daemon whose log lines arrive on `log`.
struct Daemon {
    child: Child,
    base: PathBuf,
    log: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(dir: &Path, ip: &str, port: u16) -> Daemon {
        let base = dir.join(ip);
        std::fs::create_dir_all(&base).unwrap();
        let conf = base.join("directord.toml");
        std::fs::write(
            &conf,
            format!(
                "base_dir = {:?}\n[director]\nmail_servers = \"10.0.0.1-10.0.0.3\"\n\
                 listen = \"{ip}:{port}\"\nservers = \"127.0.0.1 127.0.0.2 127.0.0.3\"\n",
                base.to_str().unwrap()
            ),
        )
        .unwrap();
        let mut child = Command::new(directord())
            .arg("--config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .spawn()
            .expect("spawn directord (build it first, or set DIRECTORD)");
        let (tx, log) = mpsc::channel();
        let copy = base.join("log.txt");
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            let mut copy = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&copy)
                .unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = writeln!(copy, "{line}");
                    let _ = tx.send(line);
                }
            });
        }
        let d = Daemon { child, base, log };
        let sock = d.base.join("director-admin");
        let end = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < end, "{ip}: no admin socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// Waits (up to `limit`) for a log line containing `needle`.
    fn wait_log(&self, needle: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => {
                    let log = std::fs::read_to_string(self.base.join("log.txt"));
                    panic!(
                        "no log line with {needle:?} within {limit:?}:\n{}",
                        log.unwrap_or_default()
                    )
                }
            }
        }
    }

    /// Sum of HOST-LIST user counts.
    fn users(&self) -> u64 {
        let mut s = UnixStream::connect(self.base.join("director-admin")).unwrap();
        s.write_all(b"VERSION\tdirector-doveadm\t1\t0\nHOST-LIST\n")
            .unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let mut total = 0;
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap() == 0 || line == "\n" {
                return total;
            }
            total += line.split('\t').nth(2).unwrap().parse::<u64>().unwrap();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Our own child, by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Answers PINGs on a ring connection and reports each line on `tx`.
fn serve_lines(s: TcpStream, tx: mpsc::Sender<String>) {
    let mut w = s.try_clone().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(s).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("PING\t") {
                let _ = w.write_all(format!("PONG\t{rest}\n").as_bytes());
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

fn wait_line(rx: &mpsc::Receiver<String>, want: &str, limit: Duration) {
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l == want || l.starts_with(&format!("{want}\t")) => return,
            Ok(_) => {}
            Err(_) => panic!("no {want:?} within {limit:?}"),
        }
    }
}

fn main() {
    let users: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("USERS is a number"))
        .unwrap_or(1_000_000);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    println!("logs: {}/127.0.0.{{1,2}}/log.txt", tmp.path().display());
    let f_listener = TcpListener::bind(("127.0.0.3", port)).unwrap();
    let a = Daemon::start(tmp.path(), "127.0.0.1", port);

    // 1. F: A's outgoing connection reaches F (after 127.0.0.2 refuses); F plays the
    // incoming side there and dials A to hand over its users.
    let (to_f, _) = f_listener.accept().unwrap();
    let (tx, from_a_out) = mpsc::channel();
    let mut to_f_w = to_f.try_clone().unwrap();
    serve_lines(to_f, tx);
    wait_line(&from_a_out, "ME", Duration::from_secs(10));
    to_f_w
        .write_all(
            format!(
                "VERSION\tdirector\t1\t9\nME\t127.0.0.3\t{port}\t{}\n",
                now()
            )
            .as_bytes(),
        )
        .unwrap();
    wait_line(&from_a_out, "DONE", Duration::from_secs(10));
    to_f_w.write_all(b"DONE\n").unwrap();

    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: SocketAddr = "127.0.0.3:0".parse().unwrap();
    sock.bind(&src.into()).unwrap();
    let dst: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    sock.connect(&dst.into()).unwrap();
    let f_out: TcpStream = sock.into();
    let (tx, from_a_in) = mpsc::channel();
    serve_lines(f_out.try_clone().unwrap(), tx);
    let mut w = BufWriter::with_capacity(1 << 16, f_out);
    let ts = now();
    write!(w, "VERSION\tdirector\t1\t9\nME\t127.0.0.3\t{port}\t{ts}\n").unwrap();
    for d in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        writeln!(w, "DIRECTOR\t{d}\t{port}").unwrap();
    }
    w.write_all(b"HOST-HAND-START\t1\n").unwrap();
    for h in HOSTS {
        writeln!(w, "HOST\t{h}\t100\t\tU0\t").unwrap();
    }
    w.write_all(b"HOST-HAND-END\t1\n").unwrap();
    let start = Instant::now();
    for i in 0..users {
        writeln!(w, "U\t{}\t{}\t{ts}", i + 1, HOSTS[i as usize % 3]).unwrap();
    }
    w.write_all(b"OPTIONS\tconsistent-hashing\nDONE\n").unwrap();
    w.flush().unwrap();
    let written = start.elapsed();
    wait_line(&from_a_in, "DONE", Duration::from_secs(600));
    let received = start.elapsed();
    let a_users = a.users();
    println!(
        "F -> A: {users} handshake users written in {:.3} s, A answered DONE after {:.3} s \
         ({:.0} users/s); A has {a_users} users",
        written.as_secs_f64(),
        received.as_secs_f64(),
        f64::from(users) / received.as_secs_f64()
    );
    assert_eq!(a_users, u64::from(users));

    // 2. F leaves; B starts and A hands it everything.
    // Shut the sockets (the reader threads hold clones of them) so A sees F go.
    let _ = w.get_ref().shutdown(std::net::Shutdown::Both);
    let _ = to_f_w.shutdown(std::net::Shutdown::Both);
    drop(f_listener);
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let b = Daemon::start(tmp.path(), "127.0.0.2", port);
    let b_line = b.wait_log(
        "director(127.0.0.1/in): Handshake finished",
        Duration::from_secs(600),
    );
    let b_done = start.elapsed();
    let a_line = a.wait_log(
        &format!("director(127.0.0.2:{port}/out): Handshake finished"),
        Duration::from_secs(60),
    );
    let b_users = b.users();
    println!(
        "A -> B (ours -> ours): B started and received all users after {:.3} s; B has \
         {b_users} users",
        b_done.as_secs_f64()
    );
    println!("  B: {}", b_line.trim());
    println!("  A: {}", a_line.trim());
    assert_eq!(b_users, u64::from(users));
}
