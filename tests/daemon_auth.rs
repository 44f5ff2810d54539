//! `login/director` and `director-userdb` end to end: a fake login client and a fake auth
//! server around the real `directord` binary. Expected bytes are the verified examples of
//! `auth-proxy.md` and the verified user→host vectors of `user-directory.md` §4.1
//! (hosts 10.0.0.1-10.0.0.3, `%Lu`, `director_user_expire = 15 min` → `proxy_refresh=450`).

mod daemon_support;

use std::io::Write;

use daemon_support::*;

fn start() -> (Daemon, FakeServer, FakeServer) {
    let d = Daemon::start(&format!(
        "{HOSTS3}master_user_separator = \"*\"\n[listeners.\"director-userdb\"]\nmode = \"0600\"\n"
    ));
    let auth = FakeServer::bind(&d.path("auth-login"));
    let userdb = FakeServer::bind(&d.path("auth-userdb"));
    (d, auth, userdb)
}

fn lf(s: &[u8]) -> String {
    let mut v = s.to_vec();
    v.push(b'\n');
    show(&v)
}

#[test]
fn handshake_and_requests_pass_through_raw_both_ways() {
    let (d, auth, _u) = start();
    let mut r = Relay::open(&d, "login/director", &auth);
    // Downstream → upstream: raw bytes, even a partial line.
    r.client
        .write_all(
            b"VERSION\t1\t2\nCPID\t5327\nAUTH\t1\tPLAIN\tservice=imap\tresp=AGFsaWNlAHNlY3JldA==\n",
        )
        .unwrap();
    let got = read_lines(&mut r.upstream, 3);
    assert_eq!(
        show(&got),
        show(
            b"VERSION\t1\t2\nCPID\t5327\nAUTH\t1\tPLAIN\tservice=imap\tresp=AGFsaWNlAHNlY3JldA==\n"
        )
    );
    // Upstream → downstream: handshake lines unchanged, CR before LF dropped.
    r.upstream
        .write_all(b"VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t5334\nCUID\t1\nCOOKIE\t49cf32a4ab0c96ac10babb7e88a5fc31\r\nDONE\n")
        .unwrap();
    let got = read_lines(&mut r.client, 6);
    assert_eq!(
        show(&got),
        show(b"VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t5334\nCUID\t1\nCOOKIE\t49cf32a4ab0c96ac10babb7e88a5fc31\nDONE\n")
    );
    assert!(!d.log().contains("resp="), "{}", d.log());
}

#[test]
fn ok_lines_are_decorated_per_spec_examples() {
    let (d, auth, _u) = start();
    let mut r = Relay::open(&d, "login/director", &auth);
    // auth-proxy.md §2.3 (host chosen by the 10.0.0.1-3 ring: alice → 10.0.0.2).
    let line = b"OK\t1\tuser=alice\tproxy\tport=11143\tlip=127.0.5.1\tlport=11143\tpass=secret";
    assert_eq!(
        show(&r.reply(line)),
        lf(b"OK\t1\tuser=alice\tproxy\tport=11143\tlip=127.0.5.1\tlport=11143\tpass=secret\tproxy_refresh=450\thost=10.0.0.2")
    );
    // `proxy=<anything>` is the proxy flag too.
    assert_eq!(
        show(&r.reply(b"OK\t2\tuser=Alice@Example.COM\tproxy=n")),
        lf(b"OK\t2\tuser=Alice@Example.COM\tproxy=n\tproxy_refresh=450\thost=10.0.0.1")
    );
    // destuser wins over user, whatever the order.
    assert_eq!(
        show(&r.reply(b"OK\t3\tdestuser=alice\tuser=Alice@Example.COM\tproxy")),
        lf(b"OK\t3\tdestuser=alice\tuser=Alice@Example.COM\tproxy\tproxy_refresh=450\thost=10.0.0.2")
    );
    // master_user_separator = "*": alice*master hashes as alice (10.0.0.2, not 10.0.0.1).
    assert_eq!(
        show(&r.reply(b"OK\t4\tuser=alice*master\tproxy")),
        lf(b"OK\t4\tuser=alice*master\tproxy\tproxy_refresh=450\thost=10.0.0.2")
    );
    assert!(!d.log().contains("pass="), "{}", d.log());
}

#[test]
fn pass_through_cases_are_unchanged() {
    let (d, auth, _u) = start();
    let mut r = Relay::open(&d, "login/director", &auth);
    for line in [
        &b"OK\t1\tuser=alice"[..],
        b"OK\t2\tuser=alice\tproxy\thost=192.0.2.1",
        b"OK\t4\tuser=alice\tproxy_maybe",
        b"OK\t11\tproxy",
        b"FAIL\t5\tuser=alice\treason=nope",
        b"CONT\t6\tAAAA",
        b"PASS\t7\tuser=alice\tproxy",
        b"OKAY\t8\tuser=alice\tproxy",
    ] {
        assert_eq!(show(&r.reply(line)), lf(line));
    }
}

#[test]
fn director_tag_and_proxy_maybe_self_rule() {
    let d = Daemon::start("[director]\nmail_servers = \"10.0.0.1-10.0.0.3 10.0.1.1@tagA\"\n");
    let auth = FakeServer::bind(&d.path("auth-login"));
    let mut r = Relay::open(&d, "login/director", &auth);
    assert_eq!(
        show(&r.reply(b"OK\t1\tuser=alice\tproxy\tdirector_tag=tagA")),
        lf(b"OK\t1\tuser=alice\tproxy\tdirector_tag=tagA\tproxy_refresh=450\thost=10.0.1.1")
    );
    // proxy_maybe + chosen host == lip: the original line (self).
    let own = b"OK\t2\tuser=alice\tproxy\tdirector_proxy_maybe\tlip=10.0.0.2";
    assert_eq!(show(&r.reply(own)), lf(own));
    // ... unless port and lport are both given and differ.
    assert_eq!(
        show(&r.reply(b"OK\t3\tuser=alice\tdirector_proxy_maybe=y\tlip=10.0.0.2\tport=143\tlport=993")),
        lf(b"OK\t3\tuser=alice\tdirector_proxy_maybe=y\tlip=10.0.0.2\tport=143\tlport=993\tproxy_refresh=450\thost=10.0.0.2")
    );
    // Another lip: decorated.
    assert_eq!(
        show(&r.reply(b"OK\t4\tuser=alice\tdirector_proxy_maybe\tlip=10.0.0.1")),
        lf(b"OK\t4\tuser=alice\tdirector_proxy_maybe\tlip=10.0.0.1\tproxy_refresh=450\thost=10.0.0.2")
    );
}

#[test]
fn hostname_hosts_get_host_and_hostip() {
    let d = Daemon::start("[director]\nmail_servers = \"localhost\"\nuser_expire = \"20s\"\n");
    let auth = FakeServer::bind(&d.path("auth-login"));
    let mut r = Relay::open(&d, "login/director", &auth);
    assert_eq!(
        show(&r.reply(b"OK\t1\tuser=alice\tproxy")),
        lf(b"OK\t1\tuser=alice\tproxy\tproxy_refresh=10\thost=localhost\thostip=127.0.0.1")
    );
}

#[test]
fn delayed_reply_is_sent_later_and_others_overtake_it() {
    let (d, auth, _u) = start();
    let mut r = Relay::open(&d, "login/director", &auth);
    // Tag "late" has no hosts yet: the request is queued.
    r.upstream
        .write_all(b"OK\t1\tuser=alice\tproxy\tdirector_tag=late\n")
        .unwrap();
    assert_eq!(
        show(&r.reply(b"FAIL\t2\tuser=bob")),
        lf(b"FAIL\t2\tuser=bob")
    );
    // A host for the tag appears: the queued request is answered.
    let mut admin = d.admin();
    assert_eq!(admin.line("HOST-SET\t10.0.9.1@late"), "OK\n");
    assert_eq!(
        show(&read_lines(&mut r.client, 1)),
        lf(b"OK\t1\tuser=alice\tproxy\tdirector_tag=late\tproxy_refresh=450\thost=10.0.9.1")
    );
}

#[test]
fn userdb_pass_lines_are_decorated_others_forwarded() {
    let (d, _a, userdb) = start();
    let mut r = Relay::open(&d, "director-userdb", &userdb);
    r.client
        .write_all(b"VERSION\t1\t0\nPASS\t1\talice\tservice=lmtp\n")
        .unwrap();
    assert_eq!(
        show(&read_lines(&mut r.upstream, 2)),
        show(b"VERSION\t1\t0\nPASS\t1\talice\tservice=lmtp\n")
    );
    // auth-proxy.md §7 example.
    assert_eq!(
        show(&r.reply(b"PASS\t1\tuser=alice\tproxy=y\tlip=127.0.5.1\tlport=24")),
        lf(b"PASS\t1\tuser=alice\tproxy=y\tlip=127.0.5.1\tlport=24\tproxy_refresh=450\thost=10.0.0.2")
    );
    for line in [
        &b"USER\t2\talice\tuid=103\tgid=106\thome=/home/alice"[..],
        b"OK\t3\tuser=alice\tproxy",
        b"NOTFOUND\t4",
        b"VERSION\t1\t1",
    ] {
        assert_eq!(show(&r.reply(line)), lf(line));
    }
}

#[test]
fn missing_auth_server_closes_without_a_byte() {
    let d = Daemon::start(HOSTS3);
    let mut c = connect(&d.path("login/director"));
    assert!(is_closed(&mut c));
    d.wait_log("connect(auth-login) failed: No such file or directory");
}

#[test]
fn auth_server_eof_and_oversized_line_close_the_client() {
    let (d, auth, _u) = start();
    let mut r = Relay::open(&d, "login/director", &auth);
    drop(r.upstream);
    assert!(is_closed(&mut r.client));
    d.wait_log("Auth server disconnected unexpectedly");

    let mut r = Relay::open(&d, "login/director", &auth);
    r.upstream.write_all(&vec![b'x'; 17000]).unwrap();
    assert!(is_closed(&mut r.client));
    d.wait_log("BUG: Auth server sent us more than 16384 bytes");
    // A line of exactly 16383 bytes + LF still fits.
    let mut r = Relay::open(&d, "login/director", &auth);
    let long = vec![b'y'; 16383];
    assert_eq!(r.reply(&long).len(), 16384);
}

#[test]
fn login_client_closing_closes_upstream() {
    let (d, auth, _u) = start();
    let mut r = Relay::open(&d, "login/director", &auth);
    r.client.write_all(b"VERSION\t1\t2\n").unwrap();
    assert_eq!(read_lines(&mut r.upstream, 1), b"VERSION\t1\t2\n");
    r.client.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(is_closed(&mut r.upstream));
    drop(d);
}
