//! Time-dependent behaviour with the daemon running in-process and its clock advanced by
//! test events (no sleeping): proxy-notify refreshes keep a user alive past
//! `director_user_expire` (`auth-proxy.md` §9), unrefreshed users expire, and a request that
//! finds no host fails with `FAIL\t<id>\tcode=temp_fail` after the 30 s timer (§§5, 6.2).

mod daemon_support;

use std::io::Write;
use std::time::Duration;

use daemon_support::*;

/// Advances the owner's clock; the stand-alone DIRECTOR-LIST that follows has two lines.
fn tick(d: &InProc, a: &mut Admin, secs: u64) {
    assert_eq!(d.advance(a, secs).lines().count(), 2);
}

const CONF: &str = "[director]\nmail_servers = \"10.0.0.1-10.0.0.3\"\nuser_expire = \"10s\"\n\
                    [listeners.\"director-authreply\"]\nmode = \"0600\"\n";

fn lookup_expire(a: &mut Admin, user: &str) -> Option<u64> {
    let l = a.line(&format!("USER-LOOKUP\t{user}"));
    let f: Vec<&str> = l.trim_end().split('\t').collect();
    if f[0].is_empty() {
        None
    } else {
        Some(f[1].parse().unwrap())
    }
}

#[test]
fn notify_refresh_keeps_user_alive_past_expiry() {
    let d = InProc::start(CONF);
    let mut a = Admin::connect(&d.path("director-admin"));
    let mut s = authreply(&d.path("director-authreply"));
    s.write_all(b"OK\t1\tuser=alice\tproxy\nOK\t2\tuser=bob\tproxy\n")
        .unwrap();
    assert_eq!(
        show(&read_lines(&mut s, 2)),
        show(b"OK\t1\tuser=alice\tproxy\tproxy_refresh=5\thost=10.0.0.2\nOK\t2\tuser=bob\tproxy\tproxy_refresh=5\thost=10.0.0.2\n")
    );
    let first = lookup_expire(&mut a, "alice").expect("alice exists");
    tick(&d, &mut a, 6);
    // The login process writes the user (as %Lu hashes, case does not matter) to the FIFO.
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(d.path("login/proxy-notify"))
        .unwrap();
    fifo.write_all(b"ALICE\n").unwrap();
    // Wait (bounded) until the refresh is applied: the expiry moves by the 6 s advanced.
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let e = lookup_expire(&mut a, "alice").expect("alice still alive at +6 s");
        if e >= first + 6 {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "notify refresh never applied"
        );
        std::thread::yield_now();
    }
    tick(&d, &mut a, 6);
    // 12 s after creation: bob (never refreshed) expired, alice (refreshed at +6 s) alive.
    assert!(lookup_expire(&mut a, "alice").is_some());
    assert_eq!(a.line("USER-LOOKUP\tbob"), "\t0\t10.0.0.2\t10.0.0.2\n");
    tick(&d, &mut a, 5);
    assert_eq!(a.line("USER-LOOKUP\talice"), "\t0\t10.0.0.2\t10.0.0.2\n");
    assert_eq!(a.list("USER-LIST"), "\n");
    // The expiry timer purged them: host user counts are back to 0.
    assert_eq!(
        a.list("HOST-LIST"),
        "10.0.0.1\t100\t0\t\tU\t0\n10.0.0.2\t100\t0\t\tU\t0\n10.0.0.3\t100\t0\t\tU\t0\n\n"
    );
}

#[test]
fn request_without_host_fails_after_the_30s_timer() {
    let d = InProc::start(CONF);
    let mut a = Admin::connect(&d.path("director-admin"));
    let mut s = authreply(&d.path("director-authreply"));
    // Lines are processed in order, so once the echo arrives the request is queued.
    s.write_all(b"OK\t7\tuser=alice\tproxy\tdirector_tag=none\nsync\n")
        .unwrap();
    assert_eq!(read_lines(&mut s, 1), b"sync\n");
    // 29 s later it is still waiting (an echoed line arrives first).
    tick(&d, &mut a, 29);
    s.write_all(b"whatever\tfoo\n").unwrap();
    assert_eq!(read_lines(&mut s, 1), b"whatever\tfoo\n");
    tick(&d, &mut a, 2);
    let got = read_lines(&mut s, 1);
    if got.is_empty() {
        panic!("{}", log_buffer().lock().unwrap());
    }
    assert_eq!(show(&got), show(b"FAIL\t7\tcode=temp_fail\n"));
    let log = log_buffer().lock().unwrap().clone();
    assert!(
        log.contains("director: User alice host lookup failed: Timeout because no hosts - queued for 31 secs (Ring synced for ")
            && log.contains(", hash=1669653170, tag=none)"),
        "{log}"
    );
}

/// The owner arms its timer once per deadline; moving its clock must re-arm it. After 29 s
/// on the owner's clock the 30 s timer is due one real second later, not 30.
#[test]
fn timer_follows_a_clock_moved_forward() {
    let d = InProc::start(CONF);
    let mut a = Admin::connect(&d.path("director-admin"));
    let mut s = authreply(&d.path("director-authreply"));
    s.write_all(b"OK\t8\tuser=bob\tproxy\tdirector_tag=none\nsync\n")
        .unwrap();
    assert_eq!(read_lines(&mut s, 1), b"sync\n");
    tick(&d, &mut a, 29);
    let start = std::time::Instant::now();
    let got = read_lines(&mut s, 1);
    assert_eq!(show(&got), show(b"FAIL\t8\tcode=temp_fail\n"));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn queued_request_is_answered_when_a_host_appears() {
    let d = InProc::start(CONF);
    let mut a = Admin::connect(&d.path("director-admin"));
    let mut s = authreply(&d.path("director-authreply"));
    assert_eq!(a.line("HOST-DOWN\t10.0.0.1"), "OK\n");
    assert_eq!(a.line("HOST-DOWN\t10.0.0.2"), "OK\n");
    assert_eq!(a.line("HOST-DOWN\t10.0.0.3"), "OK\n");
    s.write_all(b"OK\t1\tuser=alice\tproxy\nsync\n").unwrap();
    assert_eq!(read_lines(&mut s, 1), b"sync\n");
    tick(&d, &mut a, 20);
    assert_eq!(a.line("HOST-UP\t10.0.0.3"), "OK\n");
    assert_eq!(
        show(&read_lines(&mut s, 1)),
        show(b"OK\t1\tuser=alice\tproxy\tproxy_refresh=5\thost=10.0.0.3\n")
    );
}

/// auth-proxy.md §5: one periodic 30 s timer, started by the first queued request, fails the
/// requests that are ≥ 30 s old when it fires, so a request waits 30 s to just under 60 s.
#[test]
fn later_requests_wait_for_the_next_timer_tick() {
    let d = InProc::start(CONF);
    let mut a = Admin::connect(&d.path("director-admin"));
    let mut s = authreply(&d.path("director-authreply"));
    s.write_all(b"OK\t1\tuser=alice\tproxy\tdirector_tag=none\nsync\n")
        .unwrap();
    assert_eq!(read_lines(&mut s, 1), b"sync\n");
    tick(&d, &mut a, 20);
    s.write_all(b"OK\t2\tuser=bob\tproxy\tdirector_tag=none\nsync\n")
        .unwrap();
    assert_eq!(read_lines(&mut s, 1), b"sync\n");
    tick(&d, &mut a, 11);
    assert_eq!(read_lines(&mut s, 1), b"FAIL\t1\tcode=temp_fail\n");
    // bob is 31 s old now, but the timer next fires 30 s after its first tick.
    tick(&d, &mut a, 20);
    s.write_all(b"sync\n").unwrap();
    assert_eq!(read_lines(&mut s, 1), b"sync\n");
    tick(&d, &mut a, 11);
    assert_eq!(read_lines(&mut s, 1), b"FAIL\t2\tcode=temp_fail\n");
    let log = log_buffer().lock().unwrap().clone();
    assert!(
        log.contains(
            "director: User bob host lookup failed: Timeout because no hosts - queued for 42 secs"
        ),
        "{log}"
    );
}

/// auth-proxy.md §9: a refresh of an entry older than `director_user_expire` (kept alive by
/// a move in progress) is logged.
#[test]
fn refresh_of_an_entry_kept_by_a_move_is_logged_as_too_late() {
    let d = InProc::start(
        "[director]\nmail_servers = \"10.0.0.1-10.0.0.3\"\nuser_expire = \"10s\"\n\
         user_kick_delay = \"1 min\"\n",
    );
    let mut a = Admin::connect(&d.path("director-admin"));
    // No ipc socket: the kick fails at once and the move sits in its 1 min kick delay.
    assert_eq!(a.line("USER-MOVE\tcarol\t10.0.0.1"), "OK\n");
    tick(&d, &mut a, 12);
    assert!(a.line("USER-LOOKUP\tcarol").starts_with("10.0.0.1\t"));
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(d.path("login/proxy-notify"))
        .unwrap();
    fifo.write_all(b"carol\n").unwrap();
    let end = std::time::Instant::now() + DEADLINE;
    while !log_buffer()
        .lock()
        .unwrap()
        .contains("notify: User carol refreshed too late (12 secs)")
    {
        assert!(std::time::Instant::now() < end, "no too-late warning");
        std::thread::yield_now();
    }
}
