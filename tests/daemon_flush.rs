//! `director_flush_socket` at the end of a user move (`auth-proxy.md` §11): the verified
//! request bytes, `+` ending the move at once, `-` logged line by line and the move then
//! waiting for `director_user_kick_delay`; `exec:` programs judged by their exit status.

mod daemon_support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;

use daemon_support::*;

#[test]
fn flush_success_ends_the_move_and_failure_waits_the_kick_delay() {
    let d = Daemon::start(&format!(
        "{HOSTS3}flush_socket = \"unix:flush\"\nuser_kick_delay = \"1 min\"\n\
         [listeners.\"director-authreply\"]\nmode = \"0600\"\n"
    ));
    let ipc = FakeServer::bind(&d.path("ipc"));
    let flush = FakeServer::bind(&d.path("flush"));
    let mut a = d.admin();
    let mut s = connect(&d.path("director-authreply"));
    read_lines(&mut s, 1);
    s.write_all(b"VERSION\tdirector-authreply-client\t1\t0\nOK\t1\tuser=alice\tproxy\n")
        .unwrap();
    assert!(read_lines(&mut s, 1).ends_with(b"\thost=10.0.0.2\n"));

    assert_eq!(a.line("USER-MOVE\t1669653170\t10.0.0.1"), "OK\n");
    let mut kicks = ipc.accept();
    assert_eq!(
        read_lines(&mut kicks, 1),
        b"proxy\t*\tKICK-DIRECTOR-HASH\t1669653170\n"
    );
    // A login during the move waits ("kill waiting").
    s.write_all(b"OK\t2\tuser=alice\tproxy\nsync\n").unwrap();
    assert_eq!(read_lines(&mut s, 1), b"sync\n");
    kicks.write_all(b"+1\n").unwrap();

    let mut f = flush.accept();
    let mut req = Vec::new();
    f.read_to_end(&mut req).unwrap();
    assert_eq!(
        show(&req),
        show(b"VERSION\tscript\t4\t0\n-\nFLUSH\n1669653170\n10.0.0.2\n10.0.0.1\nup\n100\n\n")
    );
    f.write_all(b"flushed\n+\n").unwrap();
    drop(f);
    // Success: the move ends at once (not after the 1 min kick delay).
    assert_eq!(
        show(&read_lines(&mut s, 1)),
        show(b"OK\t2\tuser=alice\tproxy\tproxy_refresh=450\thost=10.0.0.1\n")
    );

    // Failure: output lines are logged, and the move waits the kick delay.
    assert_eq!(a.line("HOST-DOWN\t10.0.0.1"), "OK\n");
    assert_eq!(a.line("USER-MOVE\talice\t10.0.0.3"), "OK\n");
    assert_eq!(
        read_lines(&mut kicks, 1),
        b"proxy\t*\tKICK-DIRECTOR-HASH\t1669653170\n"
    );
    kicks.write_all(b"+0\n").unwrap();
    let mut f = flush.accept();
    let mut req = Vec::new();
    f.read_to_end(&mut req).unwrap();
    assert_eq!(
        show(&req),
        show(b"VERSION\tscript\t4\t0\n-\nFLUSH\n1669653170\n10.0.0.1\n10.0.0.3\ndown\n100\n\n")
    );
    f.write_all(b"disk full\r\nretry later\n-\n").unwrap();
    drop(f);
    d.wait_log("unix:flush: Failed to flush user hash 1669653170 in host 10.0.0.3: disk full");
    d.wait_log("unix:flush: Failed to flush user hash 1669653170 in host 10.0.0.3: retry later");
    assert_eq!(a.line("USER-MOVE\talice\t10.0.0.2"), "TRYAGAIN\n");
}

#[test]
fn unreachable_flush_service_is_logged_and_the_move_still_ends() {
    let d = Daemon::start(&format!(
        "{HOSTS3}flush_socket = \"unix:no-such-flush\"\nuser_kick_delay = \"1s\"\n\
         [listeners.\"director-authreply\"]\nmode = \"0600\"\n"
    ));
    let mut a = d.admin();
    let mut s = connect(&d.path("director-authreply"));
    read_lines(&mut s, 1);
    s.write_all(b"VERSION\tdirector-authreply-client\t1\t0\nOK\t1\tuser=alice\tproxy\n")
        .unwrap();
    read_lines(&mut s, 1);
    // No ipc either: the kick fails (logged), the flush fails (logged), the delay passes.
    assert_eq!(a.line("USER-MOVE\talice\t10.0.0.3"), "OK\n");
    d.wait_log("Failed to kill user 1669653170 connections: ipc connect failed");
    d.wait_log("unix:no-such-flush: net_connect_unix(");
    s.write_all(b"OK\t2\tuser=alice\tproxy\n").unwrap();
    assert!(read_lines(&mut s, 1).ends_with(b"\thost=10.0.0.3\n"));
}

#[test]
fn exec_flush_program_gets_the_request_as_argv_and_its_exit_status_decides() {
    let d = Daemon::start(&format!(
        "{HOSTS3}flush_socket = \"exec:flush-%h.sh\"\nuser_kick_delay = \"1 min\"\n\
         [listeners.\"director-authreply\"]\nmode = \"0600\"\n"
    ));
    let args = d.path("flush-args");
    let script = d.path("flush-.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" > {}\nexit 0\n", args.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ipc = FakeServer::bind(&d.path("ipc"));
    let mut a = d.admin();
    let mut s = connect(&d.path("director-authreply"));
    read_lines(&mut s, 1);
    s.write_all(b"VERSION\tdirector-authreply-client\t1\t0\nOK\t1\tuser=alice\tproxy\n")
        .unwrap();
    assert!(read_lines(&mut s, 1).ends_with(b"\thost=10.0.0.2\n"));
    assert_eq!(a.line("USER-MOVE\t1669653170\t10.0.0.1"), "OK\n");
    let mut kicks = ipc.accept();
    assert_eq!(
        read_lines(&mut kicks, 1),
        b"proxy\t*\tKICK-DIRECTOR-HASH\t1669653170\n"
    );
    s.write_all(b"OK\t2\tuser=alice\tproxy\n").unwrap();
    kicks.write_all(b"+1\n").unwrap();
    // Exit 0 ends the move at once (not after the 1 min kick delay).
    assert_eq!(
        show(&read_lines(&mut s, 1)),
        show(b"OK\t2\tuser=alice\tproxy\tproxy_refresh=450\thost=10.0.0.1\n")
    );
    assert_eq!(
        std::fs::read_to_string(&args).unwrap(),
        "FLUSH 1669653170 10.0.0.2 10.0.0.1 up 100\n"
    );
}
