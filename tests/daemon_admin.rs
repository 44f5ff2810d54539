//! `director-admin` end to end: every command's reply bytes (`admin-protocol.md` §6, the
//! verified stand-alone examples), protocol failures (close + Dovecot's log text), and the
//! ipc kick lines (`auth-proxy.md` §10.2, verified wire lines).

mod daemon_support;

use std::io::Write;

use daemon_support::*;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Creates alice's entry through an authreply connection (no auth server needed).
fn login(d: &Daemon, user: &str) -> String {
    let mut s = connect(&d.path("director-authreply"));
    read_lines(&mut s, 1);
    s.write_all(
        format!("VERSION\tdirector-authreply-client\t1\t0\nOK\t1\tuser={user}\tproxy\n").as_bytes(),
    )
    .unwrap();
    String::from_utf8_lossy(&read_lines(&mut s, 1)).into_owned()
}

fn with_authreply() -> String {
    format!("{HOSTS3}[listeners.\"director-authreply\"]\nmode = \"0600\"\n")
}

#[test]
fn host_list_and_changes() {
    let d = Daemon::start(HOSTS3);
    let mut a = d.admin();
    let three = "10.0.0.1\t100\t0\t\tU\t0\n10.0.0.2\t100\t0\t\tU\t0\n10.0.0.3\t100\t0\t\tU\t0\n\n";
    assert_eq!(a.list("HOST-LIST"), three);
    // Extra arguments are ignored.
    assert_eq!(a.list("HOST-LIST\textra"), three);
    assert_eq!(a.list("HOST-LIST-REMOVED"), "\n");

    assert_eq!(a.line("HOST-SET\t10.0.0.4@tagA\t5"), "OK\n");
    assert_eq!(
        a.line("HOST-SET\t10.0.0.4@tagB"),
        "host tag can't be changed\n"
    );
    assert_eq!(a.line("HOST-SET\t10.0.0.4"), "OK\n");
    assert_eq!(
        a.line("HOST-SET\t10.0.0.1\t1001"),
        "vhost count too large\n"
    );
    assert_eq!(a.line("HOST-SET\t10.0.0.1\t1000"), "OK\n");
    assert_eq!(a.line("HOST-UPDATE\t10.0.0.9\t5"), "NOTFOUND\n");
    assert_eq!(a.line("HOST-UPDATE\t10.0.0.2\t0"), "OK\n");
    assert_eq!(a.line("HOST-UP\t10.0.0.9"), "NOTFOUND\n");
    assert_eq!(a.line("HOST-UP\t10.0.0.3"), "OK\n");
    let before = now();
    assert_eq!(a.line("HOST-DOWN\t10.0.0.3"), "OK\n");
    assert_eq!(a.line("HOST-DOWN\t10.0.0.3"), "OK\n");
    let list = a.list("HOST-LIST");
    let lines: Vec<&str> = list.split('\n').collect();
    assert_eq!(lines[0], "10.0.0.1\t1000\t0\t\tU\t0");
    assert_eq!(lines[1], "10.0.0.2\t0\t0\t\tU\t0");
    let f: Vec<&str> = lines[2].split('\t').collect();
    assert_eq!(&f[..5], ["10.0.0.3", "100", "0", "", "D"]);
    let changed: u64 = f[5].parse().unwrap();
    assert!(changed >= before && changed <= now(), "{list}");
    assert_eq!(lines[3], "10.0.0.4\t5\t0\ttagA\tU\t0");

    assert_eq!(a.line("HOST-REMOVE\t10.0.0.3"), "OK\n");
    assert_eq!(a.line("HOST-REMOVE\t10.0.0.3"), "NOTFOUND\n");
    assert_eq!(a.list("HOST-LIST-REMOVED"), "10.0.0.3\n\n");
    assert_eq!(a.line("HOST-FLUSH\t10.0.0.3"), "NOTFOUND\n");
    assert_eq!(a.line("HOST-FLUSH\t10.0.0.1"), "OK\n");
    assert_eq!(a.line("HOST-FLUSH"), "OK\n");
    d.wait_log("Flushed all backend hosts with 0 users");
    assert_eq!(a.line("HOST-RESET-USERS\t10.0.0.3"), "NOTFOUND\n");
    assert_eq!(a.line("HOST-RESET-USERS"), "OK\n");
    assert_eq!(a.line("HOST-RESET-USERS\t\t5"), "OK\n");
}

#[test]
fn user_lookup_list_and_move() {
    let d = Daemon::start(&with_authreply());
    let mut a = d.admin();
    // admin-protocol.md §6.8 examples (alice → 10.0.0.2 in the 10.0.0.1-3 ring).
    assert_eq!(a.line("USER-LOOKUP\talice"), "\t0\t10.0.0.2\t10.0.0.2\n");
    assert_eq!(
        a.line("USER-LOOKUP\t1669653170"),
        "\t0\t10.0.0.2\t10.0.0.2\n"
    );
    assert_eq!(a.line("USER-LOOKUP\talice\tnosuchtag"), "\t0\t\t\n");
    assert_eq!(a.line("USER-LOOKUP"), "\t0\t10.0.0.2\t10.0.0.2\n");
    assert_eq!(a.list("USER-LIST"), "\n");

    let t0 = now();
    assert!(login(&d, "alice").ends_with("\thost=10.0.0.2\n"));
    let l = a.line("USER-LOOKUP\tALICE");
    let f: Vec<&str> = l.trim_end().split('\t').collect();
    assert_eq!((f[0], f[2], f[3]), ("10.0.0.2", "10.0.0.2", "10.0.0.2"));
    let expire: u64 = f[1].parse().unwrap();
    assert!(expire >= t0 + 900 && expire <= now() + 900, "{l}");
    assert_eq!(
        a.list("USER-LIST"),
        format!("1669653170\t{expire}\t10.0.0.2\n\n")
    );
    assert_eq!(a.list("USER-LIST\t10.0.0.1"), "\n");
    assert_eq!(
        a.list("HOST-LIST"),
        "10.0.0.1\t100\t0\t\tU\t0\n10.0.0.2\t100\t1\t\tU\t0\n10.0.0.3\t100\t0\t\tU\t0\n\n"
    );

    // Move: the entry changes at once; a second move during the kick delay is refused.
    assert_eq!(a.line("USER-MOVE\t1669653170\t10.0.0.9"), "NOTFOUND\n");
    assert_eq!(a.line("USER-MOVE\t1669653170\t10.0.0.1"), "OK\n");
    assert!(a.line("USER-LOOKUP\talice").starts_with("10.0.0.1\t"));
    assert_eq!(a.line("USER-MOVE\talice\t10.0.0.3"), "TRYAGAIN\n");
    // Flushing forgets the entry.
    assert_eq!(a.line("HOST-FLUSH\t10.0.0.1"), "OK\n");
    assert_eq!(a.line("USER-LOOKUP\talice"), "\t0\t10.0.0.2\t10.0.0.2\n");
}

#[test]
fn director_list_add_remove() {
    let d = Daemon::start(HOSTS3);
    let mut a = d.admin();
    assert_eq!(
        a.list("DIRECTOR-LIST"),
        "127.0.0.1\t0\tself\t0\tring synced\t0\n\n"
    );
    assert_eq!(a.line("DIRECTOR-ADD\t10.1.1.1"), "OK\n");
    assert_eq!(a.line("DIRECTOR-ADD\t10.1.1.1"), "OK\n");
    assert_eq!(a.line("DIRECTOR-ADD\t10.0.0.200\t9090"), "OK\n");
    assert_eq!(
        a.list("DIRECTOR-LIST"),
        "10.0.0.200\t9090\t\t0\t\n10.1.1.1\t0\t\t0\t\n127.0.0.1\t0\tself\t0\tring synced\t0\n\n"
    );
    assert_eq!(a.line("DIRECTOR-REMOVE\t10.1.1.1"), "OK\n");
    // The real 2.3.19.1 director keeps a removed director listed as `removed`, and a second
    // remove (or an add) of it still answers OK (compat-tests/tests/doveadm_vs_ours.rs).
    assert_eq!(a.line("DIRECTOR-REMOVE\t10.1.1.1"), "OK\n");
    assert_eq!(a.line("DIRECTOR-ADD\t10.1.1.1"), "OK\n");
    assert_eq!(
        a.list("DIRECTOR-LIST"),
        "10.0.0.200\t9090\t\t0\t\n10.1.1.1\t0\tremoved\t0\t\n127.0.0.1\t0\tself\t0\tring synced\t0\n\n"
    );
    assert_eq!(a.line("DIRECTOR-REMOVE\t10.0.0.200\t9091"), "NOTFOUND\n");
}

#[test]
fn kicks_go_to_ipc_and_are_throttled() {
    let d = Daemon::start(&format!("{HOSTS3}max_parallel_kicks = 1\n"));
    let ipc = FakeServer::bind(&d.path("ipc"));
    let mut a = d.admin();
    assert_eq!(a.line("USER-KICK\talice"), "OK\n");
    let mut conn = ipc.accept();
    assert_eq!(read_lines(&mut conn, 1), b"proxy\t*\tKICK\talice\n");
    // One kick outstanding = the limit: nowait answers TRYAGAIN.
    assert_eq!(a.line("USER-KICK\tbob\tnowait"), "TRYAGAIN\n");
    // Without nowait the command waits for the outstanding kick.
    a.s.write_all(b"USER-KICK-ALT\tuser_foo\tbar\n").unwrap();
    conn.write_all(b"+1\n").unwrap();
    assert_eq!(read_lines(&mut a.s, 1), b"OK\n");
    assert_eq!(
        read_lines(&mut conn, 1),
        b"proxy\t*\tKICK-ALT\tuser_foo\tbar\n"
    );
    conn.write_all(b"-failed\n").unwrap();
    d.wait_log("Failed to kick user: failed");
}

#[test]
fn move_of_existing_user_kicks_by_hash() {
    let d = Daemon::start(&with_authreply());
    let ipc = FakeServer::bind(&d.path("ipc"));
    let mut a = d.admin();
    assert!(login(&d, "alice").ends_with("\thost=10.0.0.2\n"));
    assert_eq!(a.line("USER-MOVE\t1669653170\t10.0.0.1"), "OK\n");
    let mut conn = ipc.accept();
    assert_eq!(
        read_lines(&mut conn, 1),
        b"proxy\t*\tKICK-DIRECTOR-HASH\t1669653170\n"
    );
    assert_eq!(a.line("USER-MOVE\talice\t10.0.0.3"), "TRYAGAIN\n");
    conn.write_all(b"+1\n").unwrap();
}

#[test]
fn missing_ipc_is_logged_not_hidden() {
    let d = Daemon::start(HOSTS3);
    let mut a = d.admin();
    assert_eq!(a.line("USER-KICK\talice"), "OK\n");
    d.wait_log("ipc: net_connect_unix(");
    d.wait_log("kicks are not delivered");
}

#[test]
fn protocol_failures_close_without_reply_and_log() {
    let d = Daemon::start(HOSTS3);
    let cases: [(&[u8], &str); 6] = [
        (b"FOO\tbar\n", "doveadm sent unknown command: FOO\tbar"),
        (b"\n", "doveadm sent empty command line"),
        (
            b"HOST-UP\tnot-an-ip\n",
            "doveadm sent invalid HOST-UP parameters: not-an-ip",
        ),
        (b"HOST-SET\n", "doveadm sent invalid HOST-SET parameters"),
        (
            b"USER-MOVE\talice\n",
            "doveadm sent invalid USER-MOVE parameters",
        ),
        (
            b"HOST-RESET-USERS\t\t0\n",
            "doveadm sent invalid HOST-RESET-USERS parameters",
        ),
    ];
    for (line, log) in cases {
        let mut a = d.admin();
        a.s.write_all(line).unwrap();
        assert_eq!(show(&read_until(&mut a.s, b"\n")), "", "{}", show(line));
        d.wait_log(log);
    }
    // Wrong handshake: logged, closed, nothing after the greeting.
    let mut s = connect(&d.path("director-admin"));
    s.write_all(b"VERSION\tdirector-doveadm\t2\t0\n").unwrap();
    assert_eq!(
        read_until(&mut s, b"\n\n"),
        b"VERSION\tdirector-doveadm\t1\t0\n"
    );
    d.wait_log("doveadm not compatible with this server (mixed old and new binaries?)");
    // Pipelined commands are answered in order.
    let mut a = d.admin();
    a.s.write_all(b"HOST-UP\t10.0.0.1\nHOST-UP\t10.0.0.99\nDIRECTOR-LIST\n")
        .unwrap();
    assert_eq!(
        show(&read_until(&mut a.s, b"\n\n")),
        show(b"OK\nNOTFOUND\n127.0.0.1\t0\tself\t0\tring synced\t0\n\n")
    );
}

#[test]
fn host_reset_users_moves_users_off_a_down_host() {
    let d = Daemon::start(&with_authreply());
    let ipc = FakeServer::bind(&d.path("ipc"));
    let mut a = d.admin();
    // user-directory.md §4.1: alice, bob → 10.0.0.2; user1 → 10.0.0.3; with .2 down
    // alice and bob hash to 10.0.0.3.
    for u in ["alice", "bob", "user1"] {
        login(&d, u);
    }
    assert_eq!(a.line("HOST-DOWN\t10.0.0.2"), "OK\n");
    // Down does not move anybody by itself.
    assert!(a.line("USER-LOOKUP\talice").starts_with("10.0.0.2\t"));
    assert_eq!(a.line("HOST-RESET-USERS\t10.0.0.2"), "OK\n");
    d.wait_log("Moved 2 users in 1 hosts in ");
    let mut conn = ipc.accept();
    let kicks = String::from_utf8(read_lines(&mut conn, 2)).unwrap();
    assert_eq!(
        kicks,
        "proxy\t*\tKICK-DIRECTOR-HASH\t1669653170\nproxy\t*\tKICK-DIRECTOR-HASH\t2677887420\n"
    );
    for u in ["alice", "bob", "user1"] {
        assert!(
            a.line(&format!("USER-LOOKUP\t{u}"))
                .starts_with("10.0.0.3\t"),
            "{u}"
        );
    }
    conn.write_all(b"+1\n+1\n").unwrap();

    // No host left at all: the users are kicked and then forgotten.
    assert_eq!(a.line("HOST-DOWN\t10.0.0.1"), "OK\n");
    assert_eq!(a.line("HOST-DOWN\t10.0.0.3"), "OK\n");
    assert_eq!(a.line("HOST-RESET-USERS\t10.0.0.3\t1"), "OK\n");
    d.wait_log("Moved 3 users in 1 hosts in ");
    assert_eq!(
        String::from_utf8(read_lines(&mut conn, 3))
            .unwrap()
            .matches("KICK-DIRECTOR-HASH")
            .count(),
        3
    );
    assert_eq!(a.list("USER-LIST\t10.0.0.3"), "\n");
}
