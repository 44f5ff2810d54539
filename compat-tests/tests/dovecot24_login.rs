//! Real Dovecot 2.4.1 proxies (in the Debian 13 chroot of `scripts/chroot24.sh`) served by our
//! `directord` (`shared/spec/dovecot-2.4.md`): IMAP, POP3 and submission logins and LMTP
//! deliveries land on the backend the director chose, the 2.4 auth handshake passes through,
//! the proxy-notify FIFO made by `directord` keeps users mapped past `user_expire`, and both
//! layouts and start-up orders of `contrib/dovecot-2.4/` work.
//!
//! The expected backend is the 2.3 director algorithm (`director::username_hash` +
//! `director::state`), cross-checked against a real 2.3 director's `USER-LOOKUP` when Dovecot
//! 2.3 is installed; the observed one is what the backend itself says (IMAP `ID`, POP3 UIDL
//! prefix, submission EHLO name, maildir files).

use std::fs;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use compat_tests::admin::AdminClient;
use compat_tests::dovecot24::client::{
    imap_backend, lmtp_deliver, pop3_uidls, submission_backend, ImapSession,
};
use compat_tests::dovecot24::conf::PASSWORD;
use compat_tests::dovecot24::instance::{IMAP_PORT, LMTP_PORT, POP3_PORT, SUBMISSION_PORT};
use compat_tests::dovecot24::{directord_binary, require_dovecot24, Chroot24, Lab24, Layout};
use compat_tests::{require_dovecot, InstanceBuilder};

/// `user_expire` of the lab; `proxy_refresh` is half of it.
const USER_EXPIRE: u32 = 10;

/// The chroot and our `directord`, or `None` when the test is skipped.
fn setup() -> Option<(Chroot24, std::path::PathBuf)> {
    let chroot = require_dovecot24()?;
    let bin = match directord_binary() {
        Ok(b) => b,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{e}");
            }
            let _ = writeln!(std::io::stderr(), "!! SKIPPED: {e}");
            return None;
        }
    };
    Some((chroot, bin))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A failed login through directord, with what directord must do for it to work.
fn login_failure(lab: &Lab24, what: &str, e: std::io::Error) -> ! {
    panic!(
        "{what} through the 2.4 proxy and directord failed: {e}\n\
         directord must relay the login/userdb socket to auth-login/auth-userdb and append \
         \\tproxy_refresh=<n>\\thost=<ip> to OK/PASS lines that carry proxy=yes without host= \
         (auth-proxy.md §§4, 7; reply decoration).\n{}",
        lab.logs()
    )
}

/// `USER-LOOKUP` on directord's admin socket, failing with the feature it needs.
fn lookup(lab: &Lab24, user: &str) -> (String, u64, String) {
    lab.user_lookup(user).unwrap_or_else(|e| {
        panic!(
            "directord's admin socket {} does not answer USER-LOOKUP ({e}); the tests need it \
             to see where directord mapped a user and until when (admin-protocol.md §6.8).\n{}",
            lab.admin_socket().display(),
            lab.logs()
        )
    })
}

/// Two users per backend, named `<prefix><n>`, with the backend the algorithm picks.
fn users_per_backend(lab: &Lab24, prefix: &str) -> Vec<(String, Ipv4Addr)> {
    let mut out: Vec<(String, Ipv4Addr)> = Vec::new();
    for n in 0..200 {
        let user = format!("{prefix}{n}");
        let ip = lab.expected_backend(&user).expect("expected backend");
        if out.iter().filter(|(_, b)| *b == ip).count() < 2 {
            out.push((user, ip));
        }
        if out.len() == 2 * lab.backends.len() {
            return out;
        }
    }
    panic!("200 names did not cover every backend twice: {out:?}");
}

/// The real 2.3 director picks the same backends as `expected_backend` (golden check of the
/// expectation itself). Skipped, loudly, without Dovecot 2.3.
fn cross_check_with_real_director(lab: &Lab24, users: &[(String, Ipv4Addr)]) {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    let real = InstanceBuilder::director("dovecot24-xcheck", &lab.mail_servers())
        .start(&dovecot)
        .expect("start a real 2.3 director");
    let mut c = AdminClient::connect(&real.path("director-admin"), Duration::from_secs(5))
        .expect("real director admin");
    for (user, ip) in users {
        let reply = c
            .request(format!("USER-LOOKUP\t{user}").as_bytes())
            .expect("USER-LOOKUP");
        let reply = String::from_utf8_lossy(&reply).into_owned();
        assert_eq!(
            reply.split('\t').nth(2),
            Some(ip.to_string().as_str()),
            "real 2.3 director's USER-LOOKUP {user}: {reply:?}"
        );
    }
}

/// Reads whatever arrives on `s` within `wait`.
fn read_for(s: &mut UnixStream, wait: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    got
}

/// `dovecot-2.4.md` §3.1 and §4: the 2.4 auth server sends only `VERSION\t1\t3` until the
/// client's VERSION line; directord must forward the client's bytes without waiting for the
/// server's handshake. auth-userdb greets on accept.
fn check_handshakes(lab: &Lab24) {
    let base = lab.director_base();
    let mut s = UnixStream::connect(base.join("login/director")).expect("connect login/director");
    let early = read_for(&mut s, Duration::from_millis(500));
    assert_eq!(
        early.escape_ascii().to_string(),
        "VERSION\\t1\\t3\\n",
        "before the client's VERSION only the server's VERSION line may come"
    );
    s.write_all(format!("VERSION\t1\t3\nCPID\t{}\n", std::process::id()).as_bytes())
        .unwrap();
    let rest = String::from_utf8_lossy(&read_for(&mut s, Duration::from_millis(1500))).into_owned();
    let kinds: Vec<&str> = rest
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["MECH", "MECH", "SPID", "CUID", "COOKIE", "DONE"],
        "auth handshake through directord: {rest:?}\n{}",
        lab.logs()
    );
    assert!(
        rest.starts_with("MECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n"),
        "{rest:?}"
    );

    let mut u = UnixStream::connect(base.join("director-userdb")).expect("connect director-userdb");
    let greet = String::from_utf8_lossy(&read_for(&mut u, Duration::from_millis(500))).into_owned();
    assert!(
        greet.starts_with("VERSION\t1\t3\nSPID\t") && greet.ends_with('\n'),
        "auth-userdb greeting through directord: {greet:?}"
    );
}

/// IMAP, POP3, submission and LMTP for two users per backend; each lands where the
/// algorithm says and where directord's USER-LOOKUP says it mapped the user.
fn check_protocols(lab: &Lab24, tag: &str) {
    let proxy = &lab.proxy;
    let imap_users = users_per_backend(lab, &format!("{tag}imap"));
    cross_check_with_real_director(lab, &imap_users);
    for (user, want) in &imap_users {
        let got = imap_backend(proxy.addr(IMAP_PORT), user, PASSWORD)
            .unwrap_or_else(|e| login_failure(lab, &format!("IMAP login of {user}"), e));
        assert_eq!(
            lab.backend_ip(&got),
            Some(*want),
            "IMAP {user} reached {got}"
        );
        let (current, _, hashed) = lookup(lab, user);
        assert_eq!(current, want.to_string(), "directord's mapping of {user}");
        assert_eq!(
            hashed,
            want.to_string(),
            "directord's hashed host of {user}"
        );
    }

    for (user, want) in users_per_backend(lab, &format!("{tag}pop")) {
        lab.seed_pop3_mailbox(&user).expect("seed mailboxes");
        let uidls = pop3_uidls(proxy.addr(POP3_PORT), &user, PASSWORD)
            .unwrap_or_else(|e| login_failure(lab, &format!("POP3 login of {user}"), e));
        let name = lab.backend_name(want).unwrap();
        assert!(
            uidls.len() == 1 && uidls[0].starts_with(&format!("1 {name}-")),
            "POP3 {user} should reach {name}: UIDL {uidls:?}"
        );
        assert_eq!(lookup(lab, &user).0, want.to_string(), "mapping of {user}");
    }

    for (user, want) in users_per_backend(lab, &format!("{tag}sub")) {
        let got = submission_backend(proxy.addr(SUBMISSION_PORT), &user, PASSWORD)
            .unwrap_or_else(|e| login_failure(lab, &format!("submission login of {user}"), e));
        let name = lab.backend_name(want).unwrap();
        assert_eq!(got, format!("{name}.dcompat.test"), "submission {user}");
        assert_eq!(lookup(lab, &user).0, want.to_string(), "mapping of {user}");
    }

    // One LMTP transaction for all recipients: one PASS lookup per RCPT on one connection.
    let lmtp_users = users_per_backend(lab, &format!("{tag}lmtp"));
    let rcpts: Vec<&str> = lmtp_users.iter().map(|(u, _)| u.as_str()).collect();
    let (rcpt_replies, data_replies) = lmtp_deliver(proxy.addr(LMTP_PORT), &rcpts, "dcompat24")
        .unwrap_or_else(|e| login_failure(lab, "LMTP delivery", e));
    for (r, reply) in rcpts.iter().zip(&rcpt_replies) {
        if !reply.starts_with("250") {
            login_failure(lab, &format!("LMTP RCPT {r}"), compat_err(reply));
        }
    }
    assert_eq!(data_replies.len(), rcpts.len());
    assert!(
        data_replies.iter().all(|r| r.starts_with("250")),
        "{data_replies:?}"
    );
    for (user, want) in &lmtp_users {
        let name = lab.backend_name(*want).unwrap();
        let counts: Vec<(String, usize)> = lab
            .backends
            .iter()
            .map(|b| (b.name().to_string(), lab.maildir_count(b.name(), user)))
            .collect();
        for (be, n) in &counts {
            let expect = usize::from(be == name);
            assert_eq!(
                *n, expect,
                "LMTP to {user}: messages per backend {counts:?}, want only {name}"
            );
        }
        assert_eq!(lookup(lab, user).0, want.to_string(), "mapping of {user}");
    }
}

/// With the fragments' `restart_request_count = unlimited`, `doveadm kick` (through anvil)
/// really ends a session proxied with directord's host (`dovecot-2.4.md` §6.4).
fn check_doveadm_kick(lab: &Lab24) {
    let (user, want) = users_per_backend(lab, "kick").remove(0);
    let mut s = ImapSession::login(lab.proxy.addr(IMAP_PORT), &user, PASSWORD)
        .unwrap_or_else(|e| login_failure(lab, "IMAP login", e));
    assert_eq!(lab.backend_ip(&s.backend().unwrap()), Some(want));
    let out = lab
        .proxy
        .doveadm(&lab.chroot)
        .args(["kick", &user])
        .output()
        .expect("doveadm kick");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("1 connections kicked"),
        "doveadm kick {user}: {} {text:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The proxy closes the client without a BYE; allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    while s.noop().is_ok() {
        assert!(
            Instant::now() < deadline,
            "{user}'s session survived the kick"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// directord's own kicks reach 2.4 through anvil (`[dovecot] version = "2.4"` in the
/// contrib TOMLs): `USER-KICK` ends a session, and `USER-MOVE` (a `KICK-DIRECTOR-HASH`,
/// emulated with `CONNECT-DUMP`, `dovecot-2.4.md` §6) ends the moved user's session.
fn check_directord_kicks(lab: &Lab24, tag: &str) {
    let users = users_per_backend(lab, tag);
    let (user, want) = users[0].clone();
    let other = users
        .iter()
        .map(|(_, ip)| *ip)
        .find(|ip| *ip != want)
        .unwrap();
    let admin = |cmd: String| {
        let mut c = AdminClient::connect(&lab.admin_socket(), Duration::from_secs(5))
            .expect("directord admin");
        let reply = c.request(cmd.as_bytes()).expect("admin request");
        String::from_utf8_lossy(&reply).trim_end().to_string()
    };
    let ended = |s: &mut ImapSession, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while s.noop().is_ok() {
            assert!(
                Instant::now() < deadline,
                "{user}'s session survived directord's {what}\n{}",
                lab.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut s = ImapSession::login(lab.proxy.addr(IMAP_PORT), &user, PASSWORD)
        .unwrap_or_else(|e| login_failure(lab, "IMAP login", e));
    assert_eq!(lab.backend_ip(&s.backend().unwrap()), Some(want));
    assert_eq!(admin(format!("USER-KICK\t{user}")), "OK");
    ended(&mut s, "USER-KICK");

    let mut s = ImapSession::login(lab.proxy.addr(IMAP_PORT), &user, PASSWORD)
        .unwrap_or_else(|e| login_failure(lab, "IMAP login", e));
    assert_eq!(lab.backend_ip(&s.backend().unwrap()), Some(want));
    assert_eq!(admin(format!("USER-MOVE\t{user}\t{other}")), "OK");
    ended(&mut s, "USER-MOVE");
}

fn compat_err(msg: &str) -> std::io::Error {
    std::io::Error::other(msg.to_string())
}

#[test]
fn layout_a_logins_and_deliveries_land_on_the_chosen_backend() {
    let Some((chroot, bin)) = setup() else {
        return;
    };
    let mut lab = Lab24::start(&chroot, &bin, Layout::InBaseDir, USER_EXPIRE).expect("start lab");
    check_handshakes(&lab);
    check_protocols(&lab, "a");
    check_doveadm_kick(&lab);
    check_directord_kicks(&lab, "akick");

    // §2.1 start-up order: a master refuses to start while directord listens in
    // BASE/login/; after directord it does, and directord may then follow.
    lab.proxy.stop();
    let refused = lab
        .start_proxy()
        .expect_err("the master must refuse a live login/director");
    assert!(
        refused.to_string().contains("Socket already exists"),
        "unexpected refusal: {refused}"
    );
    lab.stop_director();
    lab.start_proxy()
        .expect("master starts once directord is gone");
    lab.start_director()
        .expect("directord starts after the master");
    let (user, want) = users_per_backend(&lab, "restart").remove(0);
    let got = imap_backend(lab.proxy.addr(IMAP_PORT), &user, PASSWORD)
        .unwrap_or_else(|e| login_failure(&lab, "IMAP login after the restarts", e));
    assert_eq!(lab.backend_ip(&got), Some(want));
}

#[test]
fn layout_b_directord_outside_base_dir_in_any_order() {
    let Some((chroot, bin)) = setup() else {
        return;
    };
    // Lab24 starts directord before any master in this layout.
    let mut lab =
        Lab24::start(&chroot, &bin, Layout::OutsideBaseDir, USER_EXPIRE).expect("start lab");
    assert!(!lab.director_base().starts_with(lab.proxy.host_base_dir()));
    check_handshakes(&lab);
    check_protocols(&lab, "b");
    check_directord_kicks(&lab, "bkick");
    // The master restarts while directord keeps running.
    lab.proxy.stop();
    lab.start_proxy()
        .expect("master restarts beside a running directord");
    let (user, want) = users_per_backend(&lab, "brestart").remove(0);
    let got = imap_backend(lab.proxy.addr(IMAP_PORT), &user, PASSWORD)
        .unwrap_or_else(|e| login_failure(&lab, "IMAP login after the master restart", e));
    assert_eq!(lab.backend_ip(&got), Some(want));
}

/// Whether process `pid` has `path` open.
fn has_open(pid: i32, path: &Path) -> bool {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    dir.flatten()
        .any(|e| fs::read_link(e.path()).is_ok_and(|l| l == path))
}

#[test]
fn proxy_notify_keeps_users_mapped_past_user_expire() {
    let Some((chroot, bin)) = setup() else {
        return;
    };
    let mut lab = Lab24::start(&chroot, &bin, Layout::InBaseDir, USER_EXPIRE).expect("start lab");
    let fifo = lab.notify_fifo();
    // §5: 2.4 has no service owning the FIFO; directord must make it and hold it open.
    let meta = fs::symlink_metadata(&fifo).unwrap_or_else(|e| {
        panic!(
            "directord did not create the proxy-notify FIFO {} ({e}); Dovecot 2.4 has no \
             service that does (dovecot-2.4.md §5)",
            fifo.display()
        )
    });
    assert!(
        meta.file_type().is_fifo(),
        "{} is not a FIFO",
        fifo.display()
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o666, "FIFO mode");
    let pid = lab.director.as_ref().and_then(|d| d.pid()).unwrap();
    assert!(
        has_open(pid, &fifo),
        "directord (pid {pid}) does not hold {} open; a login process would block in open()",
        fifo.display()
    );

    let user = "notify01";
    let want = lab.expected_backend(user).unwrap();
    let t0 = now();
    let mut s = ImapSession::login(lab.proxy.addr(IMAP_PORT), user, PASSWORD)
        .unwrap_or_else(|e| login_failure(&lab, "IMAP login", e));
    assert_eq!(lab.backend_ip(&s.backend().unwrap()), Some(want));
    let (_, first_expire, _) = lookup(&lab, user);
    assert!(
        first_expire >= t0 + u64::from(USER_EXPIRE),
        "expire {first_expire} at login {t0}"
    );

    // Hold the session past user_expire. proxy_refresh = 5 s, so the login process writes
    // the name at +5 and +10 s; every NOOP must be answered at once (a login process blocked
    // on the FIFO would stall the session).
    let hold = Duration::from_secs(u64::from(USER_EXPIRE) + 3);
    let start = Instant::now();
    while start.elapsed() < hold {
        std::thread::sleep(Duration::from_secs(1));
        let t = Instant::now();
        s.noop()
            .unwrap_or_else(|e| panic!("NOOP during the hold: {e}\n{}", lab.logs()));
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "NOOP stalled {:?}",
            t.elapsed()
        );
    }
    let (current, expire, _) = lookup(&lab, user);
    assert!(
        now() > first_expire,
        "the hold must outlast the first expiry ({first_expire})"
    );
    assert_eq!(
        current,
        want.to_string(),
        "{user} lost its mapping after user_expire although the proxy refreshed it: \
         directord must read BASE/login/proxy-notify and refresh each named user \
         (auth-proxy.md §9)\n{}",
        lab.logs()
    );
    assert!(
        expire > first_expire,
        "expire did not move ({first_expire} -> {expire}): proxy-notify lines are not read \
         (auth-proxy.md §9)\n{}",
        lab.logs()
    );
    s.logout();

    // A stopping director unlinks the FIFO, so login processes get ENOENT instead of
    // blocking in open() with nobody reading (§5).
    lab.stop_director();
    assert!(
        fs::symlink_metadata(&fifo).is_err(),
        "directord left {} behind after stopping",
        fifo.display()
    );
}
