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

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use compat_tests::login_lab::session::HeldSession;
use compat_tests::login_lab::PASSWORD;
use compat_tests::ours::require_our_binary;
use compat_tests::require_dovecot;
use compat_tests::ring_lab::checks::CONVERGE;
use compat_tests::ring_lab::load::login;
use compat_tests::ring_lab::state::{diff, parse_time};
use compat_tests::ring_lab::{report, Kind, RingLab};

/// `director_user_expire` (Dovecot's minimum is 10 s).
const EXPIRE_SECS: u64 = 10;
/// When a weak-group user logs in again: this long after its (whole-second) timestamp,
/// the wall time the directors show as `expire time` minus the expiry. Near expiring means
/// `timestamp + 10 - 3 < now` in whole seconds, expired `timestamp + 10 <= now`, so a login
/// the director sees at wall time [timestamp + 8, timestamp + 10) is near expiring.
const NEAR_EXPIRY: Duration = Duration::from_millis(8200);
/// A near-expiry login counts only if it ended before this (after the timestamp).
const NEAR_EXPIRY_END: Duration = Duration::from_secs(EXPIRE_SECS);
/// Weak-group users on be1 whose near-expiry login counted, per group, at least.
const MIN_VALID: usize = 2;
/// How long the members may take to agree after the near-expiry logins.
const SETTLE: Duration = Duration::from_secs(4);
/// When expired users are looked for, counted from the first logins.
const AFTER_EXPIRY: Duration = Duration::from_secs(EXPIRE_SECS + 3);

fn names(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i:02}")).collect()
}

/// Users of a weak group that must land on be1 (the weak protocol is about them).
const WEAK_ON_BE1: usize = 4;
/// Users of a weak group in all (at least).
const GROUP: usize = 8;
/// Bound on the first logins of a weak group.
const MAX_CANDIDATES: usize = 40;

/// First logins of `<prefix>01`, `<prefix>02`, ... through member `via` until at least
/// [`WEAK_ON_BE1`] of them are on be1 and [`GROUP`] in all (be1/be2 depend on the random
/// backend addresses); records when and where each landed.
fn first_group(
    lab: &RingLab,
    prefix: &str,
    via: usize,
    first: &mut BTreeMap<String, First>,
) -> Vec<String> {
    let ip = lab.member(via).expect("member").ip();
    let mut group = Vec::new();
    for u in names(prefix, MAX_CANDIDATES) {
        let on_be1 = group.iter().filter(|g| first[*g].be == "be1").count();
        if on_be1 >= WEAK_ON_BE1 && group.len() >= GROUP {
            break;
        }
        let be = login(ip, &u).unwrap_or_else(|e| panic!("first login of {u}: {e}"));
        first.insert(u.clone(), First { be });
        group.push(u);
    }
    group
}

/// A first login: the backend it reached.
struct First {
    be: String,
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
    // First logins; the held sessions go through real0's and ours1's proxies.
    let t0 = Instant::now();
    let mut first: BTreeMap<String, First> = BTreeMap::new();
    let weak_real = first_group(&lab, "weakr", roles.other_ours, &mut first);
    let weak_ours = first_group(&lab, "weako", roles.other_real, &mut first);
    let gone = names("gone", 4);
    for u in &gone {
        let via = lab.member(roles.other_real).expect("member").ip();
        let be = login(via, u).unwrap_or_else(|e| panic!("first login of {u}: {e}"));
        first.insert(u.clone(), First { be });
    }
    let held = ["heldr01".to_string(), "heldo01".to_string()];
    for g in [&weak_real, &weak_ours, &gone] {
        lab.add_users(g).expect("users file");
    }
    lab.add_users(&held).expect("users file");
    let ip = |i: usize| lab.member(i).expect("member").ip();
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

    // Each user's timestamp, from the expiry time the directors show.
    let tables = lab
        .map_tables(&[roles.real])
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, t) = &tables[0];
    let (Some(uc), Some(ec)) = (t.col("user"), t.col("expire time")) else {
        panic!("map header {:?}", t.header);
    };
    let stamp = |u: &str| -> SystemTime {
        let e = t
            .rows
            .iter()
            .find(|r| r.get(uc).map(String::as_str) == Some(u))
            .and_then(|r| r.get(ec))
            .and_then(|e| parse_time(e))
            .unwrap_or_else(|| panic!("{u}: no expiry in {:?}", t.rows));
        let secs = u64::try_from(e).expect("expiry after 1970") - EXPIRE_SECS;
        UNIX_EPOCH + Duration::from_secs(secs)
    };

    // Near-expiry logins: weakr* through a real director, weako* through ours; one thread
    // per user, so a slow login does not push the next one past its expiry.
    let mut threads = Vec::new();
    for (group, via) in [(&weak_real, roles.real), (&weak_ours, roles.ours)] {
        for u in group {
            let ts = stamp(u);
            let (u, ip) = (u.clone(), ip(via));
            threads.push(std::thread::spawn(move || {
                let wait = (ts + NEAR_EXPIRY).duration_since(SystemTime::now());
                std::thread::sleep(wait.unwrap_or_default());
                let started = Instant::now();
                let be = login(ip, &u);
                let age = SystemTime::now().duration_since(ts).unwrap_or_default();
                (u, be, started.elapsed(), age)
            }));
        }
    }
    let mut again: BTreeMap<String, (String, Duration)> = BTreeMap::new();
    let mut late = Vec::new();
    for t in threads {
        let (u, be, took, max_age) = t.join().expect("login thread");
        let be = be.unwrap_or_else(|e| panic!("near-expiry login of {u}: {e}"));
        if max_age >= NEAR_EXPIRY_END {
            // It may have been served after expiry: it proves nothing about weak users.
            late.push(format!("{u} ({:.2} s)", max_age.as_secs_f64()));
        } else {
            again.insert(u, (be, took));
        }
    }
    let weak_real: Vec<String> = weak_real
        .into_iter()
        .filter(|u| again.contains_key(u))
        .collect();
    let weak_ours: Vec<String> = weak_ours
        .into_iter()
        .filter(|u| again.contains_key(u))
        .collect();
    let outcome = |group: &[String]| -> Vec<String> {
        group
            .iter()
            .map(|u| format!("{} -> {}", first[u].be, again[u].0))
            .collect()
    };
    let weak_of = |group: &[String]| group.iter().filter(|u| first[*u].be == "be1").count();
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
            "near-expiry logins: via real {:?} ({} on be1, slowest {:.3} s); via ours {:?} ({} on be1, slowest {:.3} s); too late to count: {late:?}",
            outcome(&weak_real),
            weak_of(&weak_real),
            slowest(&weak_real),
            outcome(&weak_ours),
            weak_of(&weak_ours),
            slowest(&weak_ours),
        ),
    );
    // The same rule (first backend -> near-expiry backend) must apply whichever director
    // served the near-expiry login; both groups have be1 users, be2 ones are likely.
    type Rule = BTreeMap<String, BTreeSet<String>>;
    let rule = |group: &[String]| -> Rule {
        let mut m: Rule = BTreeMap::new();
        for u in group {
            m.entry(first[u].be.clone())
                .or_default()
                .insert(again[u].0.clone());
        }
        m
    };
    let (by_real, by_ours) = (rule(&weak_real), rule(&weak_ours));
    assert!(
        weak_of(&weak_real) >= MIN_VALID && weak_of(&weak_ours) >= MIN_VALID,
        "too few weak users on be1 logged in near expiry in time (machine too slow?): \
         {by_real:?} / {by_ours:?}; late: {late:?}"
    );
    for (from, to) in &by_real {
        if let Some(theirs) = by_ours.get(from) {
            assert_eq!(
                to, theirs,
                "users first on {from}: near-expiry logins through a real director went to \
                 {to:?}, through ours to {theirs:?}"
            );
        }
    }
    // Well before the refreshed users expire (10 s after their near-expiry login).
    let (c, _) = lab
        .wait_converged(&all, SETTLE)
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
