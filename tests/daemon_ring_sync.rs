//! A ring director whose ring is not handshaked yet (`auth-proxy.md` §5, `ring-protocol.md`
//! §§3.4, 6.6, `admin-protocol.md` §§4, 6.13): requests and admin changes wait, Dovecot's
//! warning appears after 2 s, and everything continues when the ring handshakes (here: alone,
//! after the 20 s grace, because the other listed director is not running). The daemon runs
//! in-process with its clock advanced by events.

mod daemon_support;

use std::io::Write;
use std::time::Duration;

use daemon_support::*;

fn log() -> String {
    log_buffer().lock().unwrap().clone()
}

/// No reply arrives on `s` within a short while.
fn silent(s: &mut std::os::unix::net::UnixStream) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut b = [0u8; 64];
    let quiet = matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        || e.kind() == std::io::ErrorKind::TimedOut);
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    quiet
}

fn self_line(list: &str) -> &str {
    list.lines()
        .find(|l| l.contains("\tself\t"))
        .expect("self line")
}

fn ring_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Advances the clock a second at a time (so connect attempts to the missing director fail
/// in between) until the ring has handshaked alone; bounded.
fn until_alone(d: &InProc, a: &mut Admin) -> String {
    for _ in 0..40 {
        let list = d.advance(a, 1);
        if self_line(&list).contains("ring synced") {
            return list;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("never alone: {}", log());
}

#[test]
fn requests_wait_until_the_ring_handshakes() {
    let port = ring_port();
    // 127.0.0.9 is listed but not running: after Dovecot's 20 s grace we are alone.
    let d = InProc::start(&format!(
        "[director]\nmail_servers = \"10.0.0.1-10.0.0.3\"\nlisten = \"127.0.0.1:{port}\"\n\
         servers = \"127.0.0.1 127.0.0.9\"\n[listeners.\"director-authreply\"]\nmode = \"0600\"\n"
    ));
    let mut a = Admin::connect(&d.path("director-admin"));
    let mut s = authreply(&d.path("director-authreply"));
    let list = a.list("DIRECTOR-LIST");
    assert!(self_line(&list).contains("ring handshaking"), "{list}");

    s.write_all(b"OK\t1\tuser=alice\tproxy\n").unwrap();
    assert!(silent(&mut s));
    d.advance(&mut a, 1);
    assert!(!log().contains("Delaying all requests"));
    d.advance(&mut a, 1);
    assert_eq!(
        log()
            .matches("Delaying all requests until all directors have connected")
            .count(),
        1
    );
    until_alone(&d, &mut a);
    assert!(
        log().contains("we must be the only director left"),
        "{}",
        log()
    );
    assert!(log().contains("Directors have been connected, continuing delayed requests"));
    assert_eq!(
        show(&read_lines(&mut s, 1)),
        show(b"OK\t1\tuser=alice\tproxy\tproxy_refresh=450\thost=10.0.0.2\n")
    );
}

/// `U` or `D` of 10.0.0.1 in HOST-LIST.
fn state_of_first_host(a: &mut Admin) -> String {
    let list = a.list("HOST-LIST");
    let line = list.lines().find(|l| l.starts_with("10.0.0.1\t")).unwrap();
    line.split('\t').nth(4).unwrap().to_string()
}

#[test]
fn admin_changes_wait_for_the_ring_sync() {
    let port = ring_port();
    let d = InProc::start(&format!(
        "[director]\nmail_servers = \"10.0.0.1-10.0.0.3\"\nlisten = \"127.0.0.1:{port}\"\n\
         servers = \"127.0.0.1 127.0.0.9\"\n"
    ));
    let mut a = Admin::connect(&d.path("director-admin"));
    let mut waiting = Admin::connect(&d.path("director-admin"));

    // Reads are immediate; a PRE-SYNC command is parked whole, not executed.
    assert_eq!(state_of_first_host(&mut a), "U");
    waiting.s.write_all(b"HOST-DOWN\t10.0.0.1\n").unwrap();
    assert!(silent(&mut waiting.s));
    assert_eq!(state_of_first_host(&mut a), "U");
    // USER-MOVE is neither PRE- nor POST-SYNC: answered at once, synced or not.
    assert_eq!(a.line("USER-MOVE\tbob\t10.0.0.2"), "OK\n");
    // HOST-RESET-USERS walks at once too: only a walk paused by the move limit waits for a
    // synced ring, and one user (bob) is far below the default 100.
    assert_eq!(a.line("HOST-RESET-USERS"), "OK\n");
    // Run once the ring is synced (alone).
    until_alone(&d, &mut a);
    assert_eq!(show(&read_lines(&mut waiting.s, 1)), show(b"OK\n"));
    assert_eq!(state_of_first_host(&mut a), "D");
    // Synced: immediate.
    assert_eq!(waiting.line("HOST-UP\t10.0.0.1"), "OK\n");
}
