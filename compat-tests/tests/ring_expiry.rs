//! User expiry and the weak-user protocol across mixed rings (2 real Dovecot 2.3
//! directors and 2 of ours; 1 and 1), `director_user_expire = 10 s`, so users are near expiring in
//! their last 3 s, `ring-protocol.md` §8.2), each member with a real `imap-login director`
//! proxy:
//!
//! 1. users whose host stops being their hash's choice (`update <be1> 0`) log in again
//!    while near expiring, through a real director for one group and through ours for the
//!    other: the weak protocol runs round the ring; both groups must end alike (same
//!    backends, logins ok) and every member must agree;
//! 2. users who logged out expire on every member;
//! 3. users with a session held open through a real director's proxy, and through ours,
//!    are kept alive on every member by the login processes' proxy-notify refreshes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use compat_tests::login_lab::session::HeldSession;
use compat_tests::login_lab::PASSWORD;
use compat_tests::ours::require_our_binary;
use compat_tests::require_dovecot;
use compat_tests::ring_lab::checks::CONVERGE;
use compat_tests::ring_lab::load::login;
use compat_tests::ring_lab::state::diff;
use compat_tests::ring_lab::{report, Kind, RingLab};

/// `director_user_expire` (Dovecot's minimum is 10 s).
const EXPIRE_SECS: u64 = 10;
/// When a weak-group user logs in again, counted from its first login: inside the
/// near-expiry window [7 s, 10 s) even with timestamps rounded down to the second.
const NEAR_EXPIRY: Duration = Duration::from_millis(8300);
/// When expired users are looked for, counted from the first logins.
const AFTER_EXPIRY: Duration = Duration::from_secs(EXPIRE_SECS + 3);

fn names(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i:02}")).collect()
}

/// Which member does what: `real`/`ours` serve the near-expiry logins (and the other
/// group's first logins), `other_real`/`other_ours` the first logins of their groups.
struct Roles {
    real: usize,
    ours: usize,
    other_real: usize,
    other_ours: usize,
}

#[test]
fn expiry_and_weak_users_agree_across_a_mixed_ring_of_four() {
    let plan = [Kind::Real, Kind::Ours, Kind::Real, Kind::Ours];
    let roles = Roles {
        real: 2,
        ours: 3,
        other_real: 0,
        other_ours: 1,
    };
    run("ring_expiry_4", &plan, &roles);
}

/// With two directors each one's left and right are the same peer: USER-WEAK is sent back
/// on the other connection (`ring-protocol.md` §8.2, ab779efe68).
#[test]
fn expiry_and_weak_users_agree_across_a_mixed_ring_of_two() {
    let plan = [Kind::Real, Kind::Ours];
    let roles = Roles {
        real: 0,
        ours: 1,
        other_real: 0,
        other_ours: 1,
    };
    run("ring_expiry_2", &plan, &roles);
}

fn run(test: &str, plan: &[Kind], roles: &Roles) {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    if require_our_binary("directord").is_none() {
        return;
    }
    let all: Vec<usize> = (0..plan.len()).collect();
    let mut lab = RingLab::new(&dovecot, plan, 0).expect("start backends");
    lab.user_expire_secs = EXPIRE_SECS;
    lab.start_all().expect("start members");
    lab.wait_converged(&all, CONVERGE)
        .unwrap_or_else(|e| panic!("{e}"));
    // (group, first login via, near-expiry login via)
    let weak_real = names("weakr", 8);
    let weak_ours = names("weako", 8);
    let gone = names("gone", 4);
    let held = ["heldr01".to_string(), "heldo01".to_string()];
    for g in [&weak_real, &weak_ours, &gone] {
        lab.add_users(g).expect("users file");
    }
    lab.add_users(&held).expect("users file");
    let ip = |i: usize| lab.member(i).expect("member").ip();

    // First logins; the held sessions go through real0's and ours1's proxies.
    let t0 = Instant::now();
    let mut first: BTreeMap<String, (Instant, String)> = BTreeMap::new();
    let firsts = [
        (&weak_real, roles.other_ours),
        (&weak_ours, roles.other_real),
        (&gone, roles.other_real),
    ];
    for (group, via) in firsts {
        for u in group {
            let be = login(ip(via), u).unwrap_or_else(|e| panic!("first login of {u}: {e}"));
            first.insert(u.clone(), (Instant::now(), be));
        }
    }
    let mut sessions: Vec<HeldSession> =
        [(roles.other_real, &held[0]), (roles.other_ours, &held[1])]
            .into_iter()
            .map(|(via, u)| HeldSession::open(ip(via), u, PASSWORD).expect("held session"))
            .collect();

    // be1 gets no new users: its users' hash now picks be2, so near expiry they go weak.
    let be1 = lab.backend_ip(0).to_string();
    let out = lab
        .member(roles.ours)
        .expect("member")
        .doveadm(&["update", &be1, "0"]);
    assert!(out.status.success(), "update: {out:?}");
    lab.wait_converged(&all, CONVERGE)
        .unwrap_or_else(|e| panic!("after update: {e}"));

    // Near-expiry logins: weakr* through real2, weako* through ours3; one thread per user,
    // so a slow login does not push the next one past its expiry.
    let mut threads = Vec::new();
    for (group, via) in [(&weak_real, roles.real), (&weak_ours, roles.ours)] {
        for u in group {
            let (at, _) = first[u];
            let (u, ip) = (u.clone(), ip(via));
            threads.push(std::thread::spawn(move || {
                std::thread::sleep((at + NEAR_EXPIRY).saturating_duration_since(Instant::now()));
                let started = Instant::now();
                let be = login(ip, &u);
                (u, be, started - at, started.elapsed())
            }));
        }
    }
    let mut again: BTreeMap<String, (String, Duration)> = BTreeMap::new();
    for t in threads {
        let (u, be, age, took) = t.join().expect("login thread");
        let be = be.unwrap_or_else(|e| panic!("near-expiry login of {u}: {e}"));
        assert!(
            age < Duration::from_millis(8900),
            "{u}'s near-expiry login started {age:?} after its first: too late to test anything"
        );
        again.insert(u, (be, took));
    }
    let outcome = |group: &[String]| -> Vec<String> {
        group
            .iter()
            .map(|u| format!("{} -> {}", first[u].1, again[u].0))
            .collect()
    };
    let weak_of = |group: &[String]| group.iter().filter(|u| first[*u].1 == "be1").count();
    let slowest = |group: &[String]| {
        group
            .iter()
            .map(|u| again[u].1)
            .max()
            .unwrap_or_default()
            .as_secs_f64()
    };
    report(
        test,
        &format!(
            "near-expiry logins: via real {:?} ({} on be1, slowest {:.3} s); via ours {:?} ({} on be1, slowest {:.3} s)",
            outcome(&weak_real),
            weak_of(&weak_real),
            slowest(&weak_real),
            outcome(&weak_ours),
            weak_of(&weak_ours),
            slowest(&weak_ours),
        ),
    );
    // The same rule must apply whichever director served the near-expiry login.
    let rule = |group: &[String]| -> BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut m: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for u in group {
            m.entry(first[u].1.clone())
                .or_default()
                .insert(again[u].0.clone());
        }
        m
    };
    assert_eq!(
        rule(&weak_real),
        rule(&weak_ours),
        "first backend -> near-expiry backend differs between a real and our director serving the login"
    );
    let (c, _) = lab
        .wait_converged(&all, CONVERGE)
        .unwrap_or_else(|e| panic!("after near-expiry logins: {e}"));
    for u in weak_real.iter().chain(&weak_ours) {
        let row = c.users.iter().find(|l| l.starts_with(&format!("{u}\t")));
        let host = row
            .and_then(|l| l.split('\t').nth(2))
            .map(|h| lab.backend_name(h));
        assert_eq!(
            host.as_deref(),
            Some(again[u].0.as_str()),
            "{u}: directors say {row:?}"
        );
    }

    // Expiry: the logged-out users are gone everywhere, the held ones kept everywhere.
    std::thread::sleep((t0 + AFTER_EXPIRY).saturating_duration_since(Instant::now()));
    let maps = lab.user_maps(&all).unwrap_or_else(|e| panic!("{e}"));
    let mut views = Vec::new();
    for (label, map) in &maps {
        let mut v: Vec<String> = gone
            .iter()
            .chain(&held)
            .map(|u| format!("{u}: {}", map.get(u).map_or("-", String::as_str)))
            .collect();
        v.sort();
        views.push((label.clone(), v));
    }
    if let Some(d) = diff("expired and held users", &views) {
        panic!("{d}");
    }
    let view = &views[0].1;
    for u in &gone {
        assert!(
            view.contains(&format!("{u}: -")),
            "{u} did not expire: {view:?}"
        );
    }
    for (u, s) in held.iter().zip(&mut sessions) {
        assert!(
            view.contains(&format!("{u}: {}", s.backend)),
            "{u} (session on {}) not kept: {view:?}",
            s.backend
        );
        s.noop().unwrap_or_else(|e| panic!("{u}'s session: {e}"));
    }
    report(
        test,
        &format!(
            "after {} s: {} logged-out users expired on all {} members, {} held users kept on all",
            AFTER_EXPIRY.as_secs(),
            gone.len(),
            all.len(),
            held.len()
        ),
    );
}
