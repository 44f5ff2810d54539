//! A USER that reaches a director late keeps its own timestamp (`ring-protocol.md` §8.1
//! step 5: the stored time is the USER's, never the arrival time), so every member
//! expires the user at the same moment.
//!
//! Ring of 4: real0, real1, ours2, real3 (ring order). real0's neighbours are real1 and
//! real3, and so are ours2's. Both neighbours are frozen (SIGSTOP) while one user logs in
//! through real0's proxy and another through ours2's; 2 s later they are thawed and
//! forward the USERs, which reach ours2 (resp. real0) 2 s after their timestamp. Every
//! member (all of which knew both users already) must then show each user with the expiry
//! time the director that served the login gave it: the real director (real0) receiving a
//! late USER is the reference for ours2 receiving one.

use std::collections::BTreeMap;
use std::time::Duration;

use compat_tests::ours::require_our_binary;
use compat_tests::require_dovecot;
use compat_tests::ring_lab::checks::CONVERGE;
use compat_tests::ring_lab::load::login;
use compat_tests::ring_lab::state::parse_time;
use compat_tests::ring_lab::{report, Kind, RingLab, Strictness};

const TEST: &str = "ring_timestamps";
/// How long the neighbours stay frozen.
const FROZEN: Duration = Duration::from_millis(2200);

#[test]
fn a_late_user_keeps_its_timestamp_on_every_member() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    if require_our_binary("directord").is_none() {
        return;
    }
    let plan = [Kind::Real, Kind::Real, Kind::Ours, Kind::Real];
    let all = [0, 1, 2, 3];
    let mut lab = RingLab::new(&dovecot, &plan, 0).expect("start backends");
    lab.start_all().expect("start members");
    lab.wait_converged(&all, CONVERGE)
        .unwrap_or_else(|e| panic!("{e}"));
    let users = ["late-via-real0".to_string(), "late-via-ours2".to_string()];
    lab.add_users(&users).expect("users file");
    let member = |i: usize| lab.member(i).expect("member");
    // Known everywhere first: the late USER then refreshes an existing entry.
    for (via, u) in [(0, &users[0]), (2, &users[1])] {
        login(member(via).ip(), u).unwrap_or_else(|e| panic!("first login of {u}: {e}"));
    }
    lab.wait_converged(&all, CONVERGE)
        .unwrap_or_else(|e| panic!("{e}"));
    // The refresh must carry a later (whole-second) timestamp than the first login.
    std::thread::sleep(Duration::from_millis(1100));
    for i in [1, 3] {
        member(i).freeze(true).expect("freeze");
    }
    let logins: Vec<_> = [(0, &users[0]), (2, &users[1])]
        .into_iter()
        .map(|(via, u)| (u, login(member(via).ip(), u)))
        .collect();
    // What the director that served each refresh has, before anyone else hears of it.
    let origin: BTreeMap<String, String> = [(0, &users[0]), (2, &users[1])]
        .into_iter()
        .map(|(via, u)| (u.clone(), expiry(&lab, via, u)))
        .collect();
    std::thread::sleep(FROZEN);
    for i in [1, 3] {
        member(i).freeze(false).expect("thaw");
    }
    for (u, r) in &logins {
        assert!(r.is_ok(), "login of {u}: {r:?}");
    }
    // Hosts and users agree (expiry compared below, exactly).
    lab.wait_agree(&all, Strictness::Routes, CONVERGE)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut wrong = Vec::new();
    let mut lines = Vec::new();
    for u in &users {
        let times: Vec<(String, String)> = all
            .iter()
            .map(|&i| (member(i).label(), expiry(&lab, i, u)))
            .collect();
        let want = &origin[u];
        let off: Vec<i64> = times
            .iter()
            .map(|(_, e)| parse_time(e).unwrap_or(0) - parse_time(want).unwrap_or(0))
            .collect();
        lines.push(format!("{u}: offsets from its origin's expiry {off:?} s"));
        if times.iter().any(|(_, e)| e != want) {
            wrong.push(format!("{u}: origin says {want}, members say {times:?}"));
        }
    }
    report(
        TEST,
        &format!(
            "neighbours frozen {:.1} s; {}",
            FROZEN.as_secs_f64(),
            lines.join("; ")
        ),
    );
    assert!(
        wrong.is_empty(),
        "a late USER changed a user's timestamp:\n{}",
        wrong.join("\n")
    );
}

/// Member `i`'s expiry time for `user` (`doveadm director map -f`), or `""`.
fn expiry(lab: &RingLab, i: usize, user: &str) -> String {
    let tables = lab.map_tables(&[i]).unwrap_or_else(|e| panic!("{e}"));
    let (label, t) = &tables[0];
    let (Some(uc), Some(ec)) = (t.col("user"), t.col("expire time")) else {
        panic!("{label}: map header {:?}", t.header);
    };
    t.rows
        .iter()
        .find(|r| r.get(uc).map(String::as_str) == Some(user))
        .and_then(|r| r.get(ec))
        .cloned()
        .unwrap_or_default()
}
