//! The daemon's kick backend choice (`[dovecot] version`): with `auto` and only Dovecot
//! 2.4's anvil socket present, doveadm's kick reaches anvil with the [verified] handshake
//! and command forms of dovecot-2.4.md §6.2 (each kick listing the sessions first); `2.4`
//! uses anvil even when an ipc socket exists. Without the login processes' admin sockets
//! beside anvil, directord warns once that default-mode sessions cannot be kicked.

mod daemon_support;

use std::io::Write;

use daemon_support::*;

/// Accepts the daemon's anvil connection, checks the handshake and returns the stream.
fn anvil_handshake(anvil: &FakeServer) -> std::os::unix::net::UnixStream {
    let mut conn = anvil.accept();
    assert_eq!(
        show(&read_lines(&mut conn, 2)),
        show(b"VERSION\tanvil-client\t2\t0\n\n")
    );
    conn.write_all(b"VERSION\tanvil-server\t2\t0\n").unwrap();
    conn
}

/// Each kick first lists the sessions it targets; answer with none.
fn empty_dump(conn: &mut std::os::unix::net::UnixStream) {
    assert_eq!(show(&read_lines(conn, 1)), show(b"CONNECT-DUMP\n"));
    conn.write_all(b"\n\n").unwrap();
}

#[test]
fn auto_kicks_through_anvil_when_there_is_no_ipc_socket() {
    let d = Daemon::start(HOSTS3);
    let anvil = FakeServer::bind(&d.path("anvil"));
    let mut a = d.admin();
    assert_eq!(a.line("USER-KICK\talice"), "OK\n");
    let mut conn = anvil_handshake(&anvil);
    empty_dump(&mut conn);
    assert_eq!(show(&read_lines(&mut conn, 1)), show(b"KICK-USER\talice\n"));
    conn.write_all(b"1\n").unwrap();
    assert_eq!(a.line("USER-KICK\tbob"), "OK\n");
    empty_dump(&mut conn);
    assert_eq!(show(&read_lines(&mut conn, 1)), show(b"KICK-USER\tbob\n"));
    // The check of dovecot-2.4.md §6.4, once, at the first kick (anvil was not there at
    // start-up): no srv.<service> admin directories beside this anvil.
    d.wait_log("cannot be kicked");
    assert_eq!(d.log_count("restart_request_count = unlimited"), 1);
}

#[test]
fn version_2_4_uses_anvil_even_with_an_ipc_socket() {
    let d = Daemon::start(&format!("[dovecot]\nversion = \"2.4\"\n{HOSTS3}"));
    let _ipc = FakeServer::bind(&d.path("ipc"));
    let anvil = FakeServer::bind(&d.path("anvil"));
    let mut a = d.admin();
    assert_eq!(a.line("USER-KICK\talice"), "OK\n");
    let mut conn = anvil_handshake(&anvil);
    empty_dump(&mut conn);
    assert_eq!(show(&read_lines(&mut conn, 1)), show(b"KICK-USER\talice\n"));
}
