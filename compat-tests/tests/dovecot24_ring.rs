//! A real Dovecot 2.4.1 proxy attached to one director (A) of a ring of two of our
//! `directord`s (issue 7). Logins through the proxy land where the ring says: on the
//! backend the algorithm picks, or on the one a user was moved to on the other director
//! (B); both directors then list the same host for the user, and a login that arrives
//! during a ring move waits only for the move. Moves (and, once the ring forwards them,
//! kicks) issued on B travel the ring (`USER-MOVE`, `USER-KICK`) and A ends the live
//! session through the proxy's anvil.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use compat_tests::dovecot24::client::ImapSession;
use compat_tests::dovecot24::conf::PASSWORD;
use compat_tests::dovecot24::instance::IMAP_PORT;
use compat_tests::dovecot24::{directord_binary, require_dovecot24, Chroot24, Ring24};

fn setup() -> Option<(Chroot24, std::path::PathBuf)> {
    let chroot = require_dovecot24()?;
    match directord_binary() {
        Ok(b) => Some((chroot, b)),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => panic!("{e}"),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "!! SKIPPED: {e}");
            None
        }
    }
}

fn admin(ring: &Ring24, socket: &Path, cmd: &str) -> String {
    Ring24::admin(socket, cmd)
        .unwrap_or_else(|e| panic!("{cmd} on {}: {e}\n{}", socket.display(), ring.logs()))
}

/// The current host both directors list for `user`, waiting (at most 5 s) for them to agree.
fn agreed_host(ring: &Ring24, user: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let hosts: Vec<String> = [ring.lab.admin_socket(), ring.peer_admin()]
            .iter()
            .map(|s| {
                let reply = admin(ring, s, &format!("USER-LOOKUP\t{user}"));
                reply.split('\t').next().unwrap_or("").to_string()
            })
            .collect();
        if hosts[0] == hosts[1] && !hosts[0].is_empty() {
            return hosts[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "directors A and B disagree on {user}: {hosts:?}\n{}",
            ring.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn login(ring: &Ring24, user: &str) -> (ImapSession, Ipv4Addr) {
    let lab = &ring.lab;
    let mut s = ImapSession::login(lab.proxy.addr(IMAP_PORT), user, PASSWORD)
        .unwrap_or_else(|e| panic!("IMAP login of {user}: {e}\n{}", ring.logs()));
    let name = s.backend().unwrap();
    let ip = lab
        .backend_ip(&name)
        .unwrap_or_else(|| panic!("unknown backend {name}"));
    (s, ip)
}

/// Waits (at most 5 s) until the proxy closes the session.
fn ended(ring: &Ring24, s: &mut ImapSession, what: &str) {
    assert!(
        s.closes_within(Duration::from_secs(5)),
        "the session survived {what}\n{}",
        ring.logs()
    );
}

fn start() -> Option<Ring24> {
    let (chroot, bin) = setup()?;
    Some(Ring24::start(&chroot, &bin, 60).expect("start the ring lab"))
}

fn other_than(ring: &Ring24, ip: Ipv4Addr) -> Ipv4Addr {
    let backends = &ring.lab.backends;
    backends.iter().map(|b| b.ip()).find(|b| *b != ip).unwrap()
}

#[test]
fn logins_through_the_proxy_land_where_the_ring_says() {
    let Some(ring) = start() else {
        return;
    };
    let lab = &ring.lab;
    // Logins through A's proxy land on the algorithm's backend; B learns the mapping.
    for n in 0..4 {
        let user = format!("ring{n}");
        let want = lab.expected_backend(&user).unwrap();
        let (s, got) = login(&ring, &user);
        assert_eq!(got, want, "{user}");
        assert_eq!(agreed_host(&ring, &user), want.to_string(), "{user}");
        s.logout();
    }

    // A user placed on B (moved away from its hashed backend) logs in through A's proxy on
    // the backend B chose. The login comes while the ring's move is still going on (kill
    // round, then the 2 s kick delay) and waits for it, as in a stand-alone director.
    let user = "ringmoved";
    let moved_to = other_than(&ring, lab.expected_backend(user).unwrap());
    let cmd = format!("USER-MOVE\t{user}\t{moved_to}");
    assert_eq!(admin(&ring, &ring.peer_admin(), &cmd), "OK");
    let t0 = Instant::now();
    let (s, got) = login(&ring, user);
    assert_eq!(got, moved_to, "the login ignored the ring's mapping");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "a login during a ring move took {:?}",
        t0.elapsed()
    );
    assert_eq!(agreed_host(&ring, user), moved_to.to_string());
    s.logout();
}

#[test]
fn a_move_issued_on_the_other_director_ends_the_session() {
    let Some(ring) = start() else {
        return;
    };
    let user = "ringmove2";
    let (mut s, from) = login(&ring, user);
    let to = other_than(&ring, from);
    let cmd = format!("USER-MOVE\t{user}\t{to}");
    assert_eq!(admin(&ring, &ring.peer_admin(), &cmd), "OK");
    ended(&ring, &mut s, "USER-MOVE issued on the other director");
    assert_eq!(agreed_host(&ring, user), to.to_string());
    let (s, got) = login(&ring, user);
    assert_eq!(got, to, "{user} after the move");
    s.logout();
}

#[test]
fn a_kick_issued_on_the_other_director_ends_the_session() {
    let Some(ring) = start() else {
        return;
    };
    let user = "ringkick";
    let (mut s, _) = login(&ring, user);
    let cmd = format!("USER-KICK\t{user}");
    assert_eq!(admin(&ring, &ring.peer_admin(), &cmd), "OK");
    ended(&ring, &mut s, "USER-KICK issued on the other director");
}
