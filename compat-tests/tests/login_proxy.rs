//! Real Dovecot login/LMTP proxies in front of three real backends: every user must land on
//! the same backend whether the proxy asks the real Dovecot director or our `directord`.
//!
//! One lab, two proxies side by side (real director / ours), same backends and settings:
//! 1. for every user, LMTP delivery, IMAP and POP3 logins through the reference proxy, then
//!    the same through ours: same backend everywhere, 0 mismatches;
//!    plus one LMTP transaction with recipients on different backends;
//! 2. a user with an IMAP session held open stays assigned past `user_expire` (proxy-notify),
//!    while a user who logged out expires (the control that shows the wait was long enough);
//! 3. a wrong password fails with the same client-visible reply through both proxies.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Output;
use std::time::{Duration, Instant};

use compat_tests::login_lab::clients::{
    imap_login, lmtp_deliver, lmtp_deliver_many, pop3_login, ImapSession, Login,
};
use compat_tests::login_lab::{bounded, start_backends, Backend, Proxy, ProxyKind, PASSWORD};
use compat_tests::ours::require_our_binary;
use compat_tests::require_dovecot;

/// `director_user_expire` on both sides (proxy_refresh = half of it).
const USER_EXPIRE_SECS: u64 = 10;
/// Extra wait past `user_expire` before checking which users are still assigned.
const EXPIRE_MARGIN: Duration = Duration::from_secs(6);
/// Clients of failed logins connect from here: auth penalises a client address after a
/// failure, and the other logins must not be slowed down by that.
const FAILING_CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 250);

/// 52 users: plain, mixed case, with domains, with dots and dashes.
fn users() -> Vec<String> {
    let mut users: Vec<String> = (1..=40).map(|i| format!("user{i:02}")).collect();
    users.extend(
        [
            "alice@example.com",
            "Bob",
            "CAROL@Example.COM",
            "dave.smith@example.org",
            "Eve-Marie",
            "frank@sub.example.net",
            "GRACE",
            "heidi@example.com",
            "Ivan.Petrov@Example.com",
            "judy_q",
            "Mallory@EXAMPLE.org",
            "zz-last-user",
        ]
        .map(String::from),
    );
    users
}

/// Which backend each channel reached for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    lmtp: String,
    imap: String,
    pop3: String,
}

fn backend_with_new_message(backends: &[Backend], before: &[usize], user: &str) -> String {
    let grew: Vec<&str> = backends
        .iter()
        .zip(before)
        .filter(|(b, &n)| b.message_count(user) > n)
        .map(|(b, _)| b.name.as_str())
        .collect();
    match grew.as_slice() {
        [one] => one.to_string(),
        [] => "(nowhere)".into(),
        many => format!("(several: {})", many.join(",")),
    }
}

/// The one backend a login reached, or what went wrong instead.
fn reached(login: std::io::Result<Login>) -> String {
    match login {
        Ok(Login::Reached(set)) if set.len() == 1 => set.into_iter().next().unwrap_or_default(),
        Ok(Login::Reached(set)) => format!("(reached {set:?})"),
        Ok(Login::Refused(reply)) => format!("(refused: {reply})"),
        Err(e) => format!("(error: {e})"),
    }
}

/// LMTP, then IMAP, then POP3 (which needs the message to show its backend). Failures are
/// recorded in the route, so that one broken user does not hide the others.
fn route(proxy: &Proxy, backends: &[Backend], user: &str) -> Route {
    let before: Vec<usize> = backends.iter().map(|b| b.message_count(user)).collect();
    let subject = format!("via {}", proxy.kind.label());
    let lmtp = match lmtp_deliver(proxy.ip(), user, &subject) {
        Ok(()) => backend_with_new_message(backends, &before, user),
        Err(e) => format!("(error: {e})"),
    };
    Route {
        lmtp,
        imap: reached(imap_login(proxy.ip(), user, PASSWORD, None)),
        pop3: reached(pop3_login(proxy.ip(), user, PASSWORD, None)),
    }
}

/// `doveadm director status <user> -a <admin socket>`, run with the proxy's own config.
fn director_status(proxy: &Proxy, user: &str) -> Output {
    let mut cmd = proxy.instance.doveadm();
    cmd.env("TZ", "UTC")
        .args(["director", "status", user, "-a"])
        .arg(proxy.admin_socket());
    bounded(&cmd, Duration::from_secs(20))
        .output()
        .expect("run doveadm")
}

fn current_of(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Current: "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(String::from)
        .unwrap_or_else(|| {
            format!(
                "(no Current line: {text:?}, stderr {:?}, exit {:?})",
                String::from_utf8_lossy(&out.stderr),
                out.status.code()
            )
        })
}

#[test]
fn users_land_on_the_same_backends_as_with_the_real_director() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    if require_our_binary("directord").is_none() {
        return;
    }
    let started = Instant::now();
    let backends = start_backends(&dovecot, 3).expect("start backends");
    let reference = Proxy::start(&dovecot, ProxyKind::Reference, &backends, USER_EXPIRE_SECS)
        .expect("start the reference proxy");
    let ours = Proxy::start(&dovecot, ProxyKind::Ours, &backends, USER_EXPIRE_SECS)
        .expect("start our proxy (directord)");
    let proxies = [&reference, &ours];
    for b in &backends {
        println!("backend {} at {}", b.name, b.ip());
    }
    println!(
        "reference proxy {}, our proxy {}",
        reference.ip(),
        ours.ip()
    );

    // Started first so that the expiry wait overlaps the routing checks.
    let held_user = "Held.Session@example.com";
    let idle_user = "idle-control@example.com";
    let expire_start = Instant::now();
    let mut held = Vec::new();
    let mut notify_failures = Vec::new();
    for p in proxies {
        match ImapSession::open(p.ip(), held_user, PASSWORD, None) {
            Ok(Ok(session)) => held.push((p, session)),
            other => notify_failures.push(format!(
                "{}: login of {held_user} failed: {other:?}",
                p.kind.label()
            )),
        }
        let idle = reached(imap_login(p.ip(), idle_user, PASSWORD, None));
        println!(
            "{}: {idle_user} logged in and out on {idle}",
            p.kind.label()
        );
    }
    assert!(
        held.first()
            .is_some_and(|(p, _)| p.kind == ProxyKind::Reference),
        "cannot hold a session through the real director: {notify_failures:?}"
    );

    // 1. routing.
    let users = users();
    let mut reference_routes = BTreeMap::new();
    for u in &users {
        reference_routes.insert(u.clone(), route(&reference, &backends, u));
    }
    let mut mismatches = Vec::new();
    let mut per_backend: BTreeMap<String, usize> = BTreeMap::new();
    for u in &users {
        let want = &reference_routes[u];
        assert!(
            want.lmtp == want.imap && want.imap == want.pop3 && want.imap.starts_with("be"),
            "the real director itself routed {u} inconsistently: {want:?}\n{}",
            reference.logs()
        );
        *per_backend.entry(want.imap.clone()).or_default() += 1;
        let got = route(&ours, &backends, u);
        println!(
            "{u:<26} reference lmtp/imap/pop3 {}/{}/{}  ours {}/{}/{}",
            want.lmtp, want.imap, want.pop3, got.lmtp, got.imap, got.pop3
        );
        if &got != want {
            mismatches.push(format!("{u}: reference {want:?}, ours {got:?}"));
        }
    }
    println!(
        "routing: {} users x (LMTP, IMAP, POP3); reference spread {per_backend:?}; {} mismatches",
        users.len(),
        mismatches.len()
    );
    assert!(
        per_backend.len() >= 2,
        "all users on one backend: the comparison would prove little"
    );

    // 1b. one LMTP transaction for several users on different backends.
    let group: Vec<&str> = users.iter().step_by(6).map(String::as_str).collect();
    for p in proxies {
        let before: Vec<Vec<usize>> = group
            .iter()
            .map(|u| backends.iter().map(|b| b.message_count(u)).collect())
            .collect();
        let result = lmtp_deliver_many(p.ip(), &group, "one transaction");
        let landed: Vec<String> = group
            .iter()
            .zip(&before)
            .map(|(u, b)| backend_with_new_message(&backends, b, u))
            .collect();
        let want: Vec<&str> = group
            .iter()
            .map(|u| reference_routes[*u].imap.as_str())
            .collect();
        println!(
            "{}: one LMTP transaction to {} users: {result:?}, landed on {landed:?}",
            p.kind.label(),
            group.len()
        );
        let ok = result.is_ok() && landed.iter().zip(&want).all(|(l, w)| l == w);
        if p.kind == ProxyKind::Reference {
            assert!(
                ok,
                "the real proxy split the transaction differently: {landed:?} vs {want:?}"
            );
        } else if !ok {
            mismatches.push(format!(
                "one LMTP transaction to {group:?}: {result:?}, landed on {landed:?}, want {want:?}"
            ));
        }
    }

    // 2. proxy-notify keeps the held user assigned past user_expire.
    let expire_at = expire_start + Duration::from_secs(USER_EXPIRE_SECS) + EXPIRE_MARGIN;
    if let Some(wait) = expire_at.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    for (p, session) in held.iter_mut() {
        if let Err(e) = session.noop() {
            notify_failures.push(format!("{}: held session died: {e}", p.kind.label()));
            continue;
        }
        let held_ip = backends
            .iter()
            .find(|b| b.name == session.backend)
            .map(|b| b.ip().to_string())
            .unwrap_or_default();
        let held_now = current_of(&director_status(p, held_user));
        let idle_now = current_of(&director_status(p, idle_user));
        println!(
            "{}: after {:?}: {held_user} (session open on {}) Current: {held_now}; {idle_user} (logged out) Current: {idle_now}",
            p.kind.label(),
            expire_start.elapsed(),
            session.backend
        );
        if held_now != held_ip {
            notify_failures.push(format!(
                "{}: held user shows Current {held_now}, session is on {held_ip}",
                p.kind.label()
            ));
        }
        if p.kind == ProxyKind::Reference {
            assert_eq!(
                idle_now, "n/a",
                "the control user did not expire on the real director: wait too short"
            );
        } else if idle_now != "n/a" {
            notify_failures.push(format!(
                "{}: {idle_user} logged out {:?} ago but is still assigned ({idle_now})",
                p.kind.label(),
                expire_start.elapsed()
            ));
        }
    }
    drop(held);

    // 3. wrong passwords.
    let mut refusals = Vec::new();
    for p in proxies {
        let imap = reached(imap_login(p.ip(), "user01", "wrong", Some(FAILING_CLIENT)));
        let pop3 = reached(pop3_login(p.ip(), "user01", "wrong", Some(FAILING_CLIENT)));
        println!(
            "{}: wrong password: IMAP {imap:?}, POP3 {pop3:?}",
            p.kind.label()
        );
        refusals.push((imap, pop3));
    }
    assert!(
        refusals[0].0.starts_with("(refused: ") && refusals[0].1.starts_with("(refused: "),
        "the real proxy accepted a wrong password: {:?}",
        refusals[0]
    );

    println!("total {:?}", started.elapsed());
    assert!(
        mismatches.is_empty(),
        "{} routing differences between ours and the real director ({} users; first 5):\n{}\n{}",
        mismatches.len(),
        users.len(),
        mismatches[..mismatches.len().min(5)].join("\n"),
        ours.logs()
    );
    assert!(
        notify_failures.is_empty(),
        "proxy-notify: {}\n{}",
        notify_failures.join("\n"),
        ours.logs()
    );
    assert_eq!(
        refusals[1], refusals[0],
        "a wrong password fails differently through ours than through the real director"
    );
}
