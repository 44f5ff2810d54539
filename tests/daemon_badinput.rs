//! Bad input on every socket: oversized lines, garbage, wrong handshakes, half-closes and a
//! client that never reads. Each offender is disconnected (or its line skipped, for the
//! shared FIFO) with one log line, nothing panics, and everyone else keeps being served.

mod daemon_support;

use std::io::Write;

use daemon_support::*;

fn start() -> Daemon {
    Daemon::start(&format!(
        "{HOSTS3}[listeners.\"director-authreply\"]\nmode = \"0600\"\n\
         [listeners.\"director-notify\"]\nmode = \"0600\"\n[log]\nlevel = \"debug\"\n"
    ))
}

fn still_serving(d: &Daemon) {
    let mut a = d.admin();
    assert_eq!(
        a.list("DIRECTOR-LIST"),
        "127.0.0.1\t0\tself\t0\tring synced\t0\n\n"
    );
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

#[test]
fn admin_oversized_garbage_and_half_close() {
    let d = start();
    let mut a = d.admin();
    a.s.write_all(&vec![b'A'; 2000]).unwrap();
    assert!(is_closed(&mut a.s));
    d.wait_log("doveadm sent a line longer than 1024 bytes, disconnecting");

    let mut a = d.admin();
    a.s.write_all(b"\xff\x01garbage\x00\tX\n").unwrap();
    assert!(is_closed(&mut a.s));
    d.wait_log("doveadm sent unknown command: ");

    // Half-close in the middle of a line: the partial line is dropped, the connection closed.
    let mut a = d.admin();
    a.s.write_all(b"HOST-LI").unwrap();
    a.s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(is_closed(&mut a.s));

    // Garbage instead of the handshake.
    let mut s = connect(&d.path("director-admin"));
    s.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n")
        .unwrap();
    assert!(is_closed(&mut s));
    d.wait_log("doveadm not compatible with this server");
    assert_eq!(d.log_count("doveadm not compatible with this server"), 1);
    still_serving(&d);
}

#[test]
fn admin_client_that_never_reads_does_not_block_others() {
    let d = start();
    let mut slow = d.admin();
    slow.s.set_nonblocking(true).unwrap();
    // Pipeline far more list replies than the socket buffers hold, never reading them.
    let cmds = b"HOST-LIST\n".repeat(50_000);
    let mut sent = 0;
    let end = std::time::Instant::now() + DEADLINE;
    while sent < cmds.len() && std::time::Instant::now() < end {
        match slow.s.write(&cmds[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    still_serving(&d);
    let mut a = d.admin();
    assert_eq!(a.line("USER-LOOKUP\talice"), "\t0\t10.0.0.2\t10.0.0.2\n");
}

#[test]
fn authreply_bad_handshake_oversized_and_half_close() {
    let d = start();
    let mut s = connect(&d.path("director-authreply"));
    assert_eq!(
        read_lines(&mut s, 1),
        b"VERSION\tdirector-authreply-server\t1\t0\n"
    );
    s.write_all(b"VERSION\tdirector-authreply-client\t2\t0\n")
        .unwrap();
    assert!(is_closed(&mut s));
    d.wait_log("authreply client sent invalid handshake: VERSION\tdirector-authreply-client\t2\t0");

    let mut s = connect(&d.path("director-authreply"));
    read_lines(&mut s, 1);
    s.write_all(b"OK\t1\tuser=alice\tproxy\tpass=secret\n")
        .unwrap();
    assert!(is_closed(&mut s));
    d.wait_log("authreply client sent invalid handshake: OK\t1\tuser=alice\tproxy\tpass=<hidden>");
    assert!(!d.log().contains("secret"));

    let mut s = connect(&d.path("director-authreply"));
    read_lines(&mut s, 1);
    s.write_all(b"VERSION\tdirector-authreply-client\t1\t0\n")
        .unwrap();
    s.write_all(&vec![b'z'; 20_000]).unwrap();
    assert!(is_closed(&mut s));
    d.wait_log("authreply client sent more than 16384 bytes");

    // Valid requests then a half-close: the replies still arrive, then EOF.
    let mut s = connect(&d.path("director-authreply"));
    read_lines(&mut s, 1);
    s.write_all(b"VERSION\tdirector-authreply-client\t1\t7\nOK\t1\tuser=alice\tproxy\nPASS\t2\tx\nwhatever\tfoo\n")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(
        show(&read_until(&mut s, b"whatever\tfoo\n")),
        show(b"OK\t1\tuser=alice\tproxy\tproxy_refresh=450\thost=10.0.0.2\nPASS\t2\tx\nwhatever\tfoo\n")
    );
    assert!(is_closed(&mut s));
    still_serving(&d);
}

#[test]
fn notify_fifo_skips_oversized_lines_and_keeps_reading() {
    let d = start();
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(d.path("login/proxy-notify"))
        .unwrap();
    let mut junk = vec![b'j'; 3000];
    junk.extend_from_slice(b"\nalice\n");
    fifo.write_all(&junk).unwrap();
    d.wait_log("notify refresh user=alice");
    assert_eq!(
        d.log_count("notify: line longer than 1023 bytes, skipped"),
        1
    );
    assert!(!d.log().contains("jjjj"));
    // The writer going away is not EOF for us (the FIFO is held open read-write).
    drop(fifo);
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(d.path("login/proxy-notify"))
        .unwrap();
    fifo.write_all(b"bob\n").unwrap();
    d.wait_log("notify refresh user=bob");
    assert!(!d.log().contains("unexpectedly returned EOF"));
    still_serving(&d);
}

#[test]
fn notify_socket_client_oversized_line_is_disconnected() {
    let d = start();
    let mut s = connect(&d.path("director-notify"));
    s.write_all(b"carol\n").unwrap();
    d.wait_log("notify refresh user=carol");
    s.write_all(&vec![b'k'; 1500]).unwrap();
    assert!(is_closed(&mut s));
    d.wait_log("notify: client sent a line longer than 1023 bytes, disconnecting");
    still_serving(&d);
}

#[test]
fn login_connections_survive_garbage_and_abrupt_closes() {
    let d = start();
    let auth = FakeServer::bind(&d.path("auth-login"));
    // Garbage from the auth server that is not a result line is forwarded as-is.
    let mut r = Relay::open(&d, "login/director", &auth);
    assert_eq!(r.reply(b"\x01\x02\xff\tOK"), b"\x01\x02\xff\tOK\n");
    // OK lines with broken fields are still handled (bad lip logged, ignored).
    assert_eq!(
        show(&r.reply(b"OK\t9\tuser=alice\tproxy\tlip=not-an-ip\tport=99999")),
        show(b"OK\t9\tuser=alice\tproxy\tlip=not-an-ip\tport=99999\tproxy_refresh=450\thost=10.0.0.2\n")
    );
    d.wait_log("Invalid lip field: not-an-ip");
    // The login side vanishes mid-request: nothing else is affected.
    drop(r.client);
    assert!(is_closed(&mut r.upstream));
    let mut r2 = Relay::open(&d, "login/director", &auth);
    assert_eq!(r2.reply(b"DONE"), b"DONE\n");
    still_serving(&d);
}
