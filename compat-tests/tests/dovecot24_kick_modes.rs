//! Kicks against both login modes of the real Dovecot 2.4.1 (`dovecot-2.4.md` §6.4).
//!
//! In 2.4's default mode (`restart_request_count = 1`) anvil acknowledges a kick and the
//! login process ignores it: `doveadm kick` says `1 connections kicked` and the session
//! carries on. `directord` finds that out at its first kick of such a session, says so once
//! in its log (naming `restart_request_count = unlimited`), and still ends the session
//! through the login process's admin socket. With the contrib fragments' setting, anvil's
//! own kick works and no warning is given.

use std::io::Write;
use std::time::{Duration, Instant};

use compat_tests::admin::AdminClient;
use compat_tests::dovecot24::client::ImapSession;
use compat_tests::dovecot24::conf::{LoginMode, PASSWORD, PERFORMANCE_SETTING};
use compat_tests::dovecot24::instance::IMAP_PORT;
use compat_tests::dovecot24::{directord_binary, require_dovecot24, Chroot24, Lab24, Layout};

/// The warning `directord` logs once per login service in the default mode.
const WARNING: &str = "runs in Dovecot 2.4's default login mode (restart_request_count = 1)";

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

fn login(lab: &Lab24, user: &str) -> ImapSession {
    let mut s = ImapSession::login(lab.proxy.addr(IMAP_PORT), user, PASSWORD)
        .unwrap_or_else(|e| panic!("IMAP login of {user}: {e}\n{}", lab.logs()));
    let want = lab.expected_backend(user).unwrap();
    assert_eq!(lab.backend_ip(&s.backend().unwrap()), Some(want));
    s
}

fn admin(lab: &Lab24, cmd: &str) -> String {
    let mut c =
        AdminClient::connect(&lab.admin_socket(), Duration::from_secs(5)).expect("directord admin");
    let reply = c.request(cmd.as_bytes()).expect("admin request");
    String::from_utf8_lossy(&reply).trim_end().to_string()
}

/// Waits (at most 5 s) until the session is closed by the proxy.
fn ended(lab: &Lab24, s: &mut ImapSession, what: &str) {
    assert!(
        s.closes_within(Duration::from_secs(5)),
        "the session survived {what}\n{}",
        lab.logs()
    );
}

fn director_log(lab: &Lab24) -> String {
    lab.director.as_ref().map(|d| d.log()).unwrap_or_default()
}

/// Waits (at most 5 s) for `needle` in directord's log.
fn wait_log(lab: &Lab24, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = director_log(lab);
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "directord never logged {needle:?}\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn default_login_mode_ignores_anvil_kicks_and_directord_still_kicks() {
    let Some((chroot, bin)) = setup() else {
        return;
    };
    let lab = Lab24::start_mode(&chroot, &bin, Layout::InBaseDir, 60, LoginMode::Default)
        .expect("start lab");
    // Start-up check: the admin sockets beside anvil are reachable (we run as root).
    wait_log(&lab, "are kicked through srv.<service>/<pid>");

    // The real thing first: anvil counts the kick, the session carries on.
    let mut s = login(&lab, "mode01");
    let out = lab
        .proxy
        .doveadm(&lab.chroot)
        .args(["kick", "mode01"])
        .output()
        .expect("doveadm kick");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("1 connections kicked"),
        "doveadm kick: {text:?}"
    );
    std::thread::sleep(Duration::from_secs(1));
    s.noop()
        .expect("in 2.4's default login mode a kick through anvil is ignored (§6.4)");

    // directord's kick ends it, and says once why anvil alone would not have.
    assert_eq!(admin(&lab, "USER-KICK\tmode01"), "OK");
    ended(&lab, &mut s, "directord's USER-KICK");
    wait_log(&lab, WARNING);
    let log = director_log(&lab);
    assert!(
        log.contains("service imap-login { restart_request_count = unlimited }"),
        "the warning must name the setting:\n{log}"
    );

    // Known now: the next kicks go straight to the admin socket, without a second warning.
    let mut s = login(&lab, "mode02");
    let other = lab
        .backends
        .iter()
        .map(|b| b.ip())
        .find(|ip| Some(*ip) != lab.expected_backend("mode02").ok())
        .unwrap();
    assert_eq!(admin(&lab, &format!("USER-MOVE\tmode02\t{other}")), "OK");
    ended(&lab, &mut s, "directord's USER-MOVE");
    let mut s = login(&lab, "mode03");
    assert_eq!(admin(&lab, "USER-KICK\tmode03"), "OK");
    ended(&lab, &mut s, "directord's second USER-KICK");
    assert_eq!(
        director_log(&lab).matches(WARNING).count(),
        1,
        "the warning must come once\n{}",
        director_log(&lab)
    );
}

#[test]
fn performance_login_mode_kicks_through_anvil_without_warning() {
    let Some((chroot, bin)) = setup() else {
        return;
    };
    let lab = Lab24::start_mode(&chroot, &bin, Layout::InBaseDir, 60, LoginMode::Performance)
        .expect("start lab");
    assert!(lab.proxy_conf().contains(PERFORMANCE_SETTING));
    let mut s = login(&lab, "perf01");
    assert_eq!(admin(&lab, "USER-KICK\tperf01"), "OK");
    ended(&lab, &mut s, "directord's USER-KICK");
    wait_log(&lab, "imap-login sessions end when kicked through anvil");
    let log = director_log(&lab);
    assert!(!log.contains(WARNING), "no warning expected:\n{log}");
}
