//! Ring configuration and ring socket I/O of the real `directord` binary: `[director] servers`
//! and `listen` in both syntaxes with Dovecot's error texts (`settings.md` §§1, 3), self
//! discovery (`director_find_self()`), the accept filter on the peer's source IP and the
//! 1024-byte line limit on ring connections (`ring-protocol.md` §§2, 3.2).

mod daemon_support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use daemon_support::{Daemon, DEADLINE, HOSTS3};
use director::config::Config;

fn parse(text: &str) -> Result<Config, String> {
    Config::from_toml(text, Path::new("/tmp/base")).map_err(|e| e.to_string())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A TCP port free on 127.0.0.1 right now (the daemon binds it moments later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects to `to` from `from` (the source IP the accept filter looks at).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: SocketAddr = format!("{from}:0").parse().unwrap();
    sock.bind(&src.into()).unwrap();
    sock.connect_timeout(&to.into(), DEADLINE).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s
}

/// Whether the daemon closed `s` (EOF or reset) within the deadline.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 256];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn servers_both_syntaxes_resolve_sort_and_default_the_port() {
    let c = parse(
        "[director]\nmail_servers = \"10.0.0.1\"\nlisten = \"10.0.0.2:9090\"\n\
         servers = \"10.0.0.3 10.0.0.2 [::1]:7 localhost:9091 10.0.0.3:9090\"\n",
    )
    .unwrap();
    let r = c.ring.unwrap();
    assert_eq!(r.listen_ip, Some(ip("10.0.0.2")));
    assert_eq!(r.listen_port, 9090);
    assert!(r.servers.contains(&(ip("127.0.0.1"), 9091)), "{r:?}");
    let no_localhost: Vec<_> = r.servers.iter().filter(|s| s.1 != 9091).copied().collect();
    assert_eq!(
        no_localhost,
        vec![
            (ip("10.0.0.2"), 9090),
            (ip("10.0.0.3"), 9090),
            (ip("::1"), 7)
        ]
    );
    let mut sorted = r.servers.clone();
    sorted.sort();
    assert_eq!(sorted, r.servers);

    let c = parse(
        "[director]\nmail_servers = \"10.0.0.1\"\nlisten = 9090\n\
         servers = [\"10.0.0.2\", \"10.0.0.1:1234\"]\n",
    )
    .unwrap();
    let r = c.ring.unwrap();
    assert_eq!(r.listen_ip, None);
    assert_eq!(
        r.servers,
        vec![(ip("10.0.0.1"), 1234), (ip("10.0.0.2"), 9090)]
    );

    // Empty servers: stand-alone, `listen` not even needed.
    let c = parse("[director]\nmail_servers = \"10.0.0.1\"\nservers = \"\"\n").unwrap();
    assert!(c.ring.is_none());
}

#[test]
fn ring_config_errors_are_dovecots() {
    let base = "[director]\nmail_servers = \"10.0.0.1\"\n";
    let cases = [
        (
            "listen = \"*:9090\"\nservers = \"10.0.0.1:70000\"",
            "[director] servers: Invalid director host:port in '10.0.0.1:70000'",
        ),
        (
            "listen = \"*:9090\"\nservers = \"10.0.0.1 [::1\"",
            "[director] servers: Invalid director host:port in '[::1'",
        ),
        (
            "listen = \"*:9090\"\nservers = \"no-such-director.invalid:9090\"",
            "[director] servers: Unknown director host: no-such-director.invalid",
        ),
        (
            "servers = \"10.0.0.1\"",
            "[director] listen: No inet_listeners defined for director service \
             (for standalone keep director_servers empty)",
        ),
        (
            "listen = \"10.0.0.1\"\nservers = \"10.0.0.1\"",
            "[director] listen: invalid listen address '10.0.0.1'",
        ),
    ];
    for (lines, want) in cases {
        let e = parse(&format!("{base}{lines}\n")).unwrap_err();
        assert!(e.starts_with(want), "{lines}: got {e:?}, want {want:?}");
    }
}

/// Runs `directord` on a config that must fail at start; returns its stderr.
fn start_failure(ring: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("d.toml");
    std::fs::write(
        &conf,
        format!(
            "base_dir = {:?}\n{HOSTS3}{ring}",
            dir.path().join("run").to_str().unwrap()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_directord"))
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(71), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn self_must_be_listed_like_director_find_self() {
    let p = free_port();
    let err = start_failure(&format!(
        "listen = \"127.0.0.5:{p}\"\nservers = \"127.0.0.1:{p} 127.0.0.2\"\n"
    ));
    assert!(
        err.contains(&format!(
            "director_servers doesn't list ourself (127.0.0.5:{p})"
        )),
        "{err}"
    );
    // Wildcard listener and no listed IP is ours (TEST-NET addresses are never local).
    let err = start_failure(&format!(
        "listen = \"*:{p}\"\nservers = \"192.0.2.1 198.51.100.1\"\n"
    ));
    assert!(
        err.contains("director_servers doesn't list ourself"),
        "{err}"
    );
    assert!(!err.contains("ourself ("), "{err}");
}

#[test]
fn wildcard_listener_takes_the_first_local_listed_ip() {
    let p = free_port();
    let d = Daemon::start(&format!(
        "{HOSTS3}listen = \"*:{p}\"\nservers = \"192.0.2.1 127.0.0.1\"\n"
    ));
    let list = d.admin().list("DIRECTOR-LIST");
    assert!(
        list.starts_with(&format!("127.0.0.1\t{p}\tself\t0\tring handshaking\t0\n")),
        "{list}"
    );
}

#[test]
fn accepts_only_listed_directors_and_limits_line_length() {
    let p = free_port();
    let d = Daemon::start(&format!(
        "{HOSTS3}listen = \"127.0.0.1:{p}\"\nservers = \"127.0.0.1 127.0.0.3:{p}\"\n"
    ));
    let ring: SocketAddr = format!("127.0.0.1:{p}").parse().unwrap();

    // Not listed: closed at once without a byte.
    let mut s = connect_from("127.0.0.2", ring);
    assert!(closed_within(&mut s, DEADLINE));
    d.wait_log("Connection from 127.0.0.2: Server not listed in director_servers, dropping");

    // Listed (any source port): adopted and kept open.
    let mut s = connect_from("127.0.0.3", ring);
    assert!(!closed_within(&mut s, Duration::from_millis(300)));
    // A line of 1023 bytes + LF fits the 1024-byte buffer (VERSION ignores extra fields).
    let mut line = b"VERSION\tdirector\t1\t9\t".to_vec();
    line.resize(1023, b'x');
    line.push(b'\n');
    s.write_all(&line).unwrap();
    assert!(!closed_within(&mut s, Duration::from_millis(300)));
    let list = d.admin().list("DIRECTOR-LIST");
    let first = list.lines().next().unwrap();
    let f: Vec<&str> = first.split('\t').collect();
    assert_eq!(f.len(), 8, "{list}");
    assert_eq!(f[0], "handshaking - 0 USERs received", "{list}");
    assert_eq!(f[2], "1024", "bytes in: {list}");
    assert_eq!(d.log_count("more than 1024 bytes"), 0);

    // 1024 bytes without LF do not fit: logged and closed.
    s.write_all(&[b'y'; 1024]).unwrap();
    assert!(closed_within(&mut s, DEADLINE));
    d.wait_log("Director sent us more than 1024 bytes");
    // The connection is gone from the list (once the owner has seen the close).
    let end = Instant::now() + DEADLINE;
    let mut admin = d.admin();
    let accepted_conns = |l: &str| {
        l.lines()
            .filter(|x| x.starts_with("handshaking - ") && x.contains("received"))
            .count()
    };
    let mut list = admin.list("DIRECTOR-LIST");
    while accepted_conns(&list) > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
        list = admin.list("DIRECTOR-LIST");
    }
    assert_eq!(accepted_conns(&list), 0, "{list}");
}
