//! Mixed director rings: real Dovecot 2.3 directors and our `directord` in one TCP ring on
//! 127.x addresses, each member with a real `imap-login director` proxy in front of the
//! same real backends (`compat_tests::ring_lab`). On every member, real `doveadm` must see
//! the ring synced (the same `ring status` shape from real and ours), the same host list
//! and the same user map; logins through any member's proxy reach the host every member
//! has for the user.
//!
//! 1. ours joins a running ring of 2 real directors;
//! 2. a real director joins a running ring of 2 of ours;
//! 3. 2 real + 2 ours: each user's first login goes through every member's proxy at the
//!    same moment; host changes through doveadm on each member show on all; then one
//!    of ours and, separately, a real one is killed (SIGKILL) while a login load runs
//!    through the other members' proxies, and comes back: logins keep working, no user is
//!    routed to two backends, and the ring heals to the same state everywhere.
//!
//! Measured numbers are printed as `RING-NUMBERS` lines.

use std::time::Instant;

use compat_tests::ours::require_our_binary;
use compat_tests::ring_lab::checks::{burst_agree, host_changes_agree, logins_agree, CONVERGE};
use compat_tests::ring_lab::faults::crash_and_heal;
use compat_tests::ring_lab::{report, Kind, RingLab};
use compat_tests::{require_dovecot, Dovecot};

/// Users logged in by the checks.
const USERS: usize = 12;

fn lab(plan: &[Kind]) -> Option<RingLab> {
    let dovecot: Dovecot = require_dovecot()?;
    require_our_binary("directord")?;
    Some(RingLab::new(&dovecot, plan, USERS).expect("start the lab's backends"))
}

/// Starts members `first` and waits for them; logs users in; starts `joiner` and waits
/// for all; logs in through all; changes hosts from every member.
fn join(test: &str, plan: &[Kind], first: &[usize], joiner: usize) {
    let Some(mut lab) = lab(plan) else {
        return;
    };
    for &i in first {
        lab.start(i).expect("start member");
    }
    let (_, t) = lab
        .wait_converged(first, CONVERGE)
        .unwrap_or_else(|e| panic!("{e}"));
    report(
        test,
        &format!("ring of {} synced in {:.1} s", first.len(), t.as_secs_f64()),
    );
    logins_agree(&lab, test, first).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    lab.start(joiner).expect("start the joining member");
    let all: Vec<usize> = (0..plan.len()).collect();
    let (_, t) = lab
        .wait_converged(&all, CONVERGE)
        .unwrap_or_else(|e| panic!("after {:?} joined: {e}", lab.kind(joiner)));
    report(
        test,
        &format!(
            "{} joined: ring of {} synced and agreeing {:.1} s after its start",
            lab.kind(joiner).label(),
            all.len(),
            (started.elapsed().max(t)).as_secs_f64()
        ),
    );
    logins_agree(&lab, test, &all).unwrap_or_else(|e| panic!("{e}"));
    let mut order = all.clone();
    order.rotate_left(joiner);
    host_changes_agree(&lab, test, &order).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn ours_joins_a_running_real_ring() {
    join(
        "ours_joins_a_running_real_ring",
        &[Kind::Real, Kind::Ours, Kind::Real],
        &[0, 2],
        1,
    );
}

#[test]
fn real_joins_a_running_ring_of_ours() {
    join(
        "real_joins_a_running_ring_of_ours",
        &[Kind::Ours, Kind::Real, Kind::Ours],
        &[0, 2],
        1,
    );
}

#[test]
fn two_real_two_ours_survive_crashes() {
    let test = "two_real_two_ours_survive_crashes";
    let Some(mut lab) = lab(&[Kind::Real, Kind::Ours, Kind::Real, Kind::Ours]) else {
        return;
    };
    let all = [0, 1, 2, 3];
    lab.start_all().expect("start members");
    let (_, t) = lab
        .wait_converged(&all, CONVERGE)
        .unwrap_or_else(|e| panic!("{e}"));
    report(
        test,
        &format!(
            "ring of 4 (2 real, 2 ours) synced in {:.1} s",
            t.as_secs_f64()
        ),
    );
    burst_agree(&lab, test, &all).unwrap_or_else(|e| panic!("{e}"));
    logins_agree(&lab, test, &all).unwrap_or_else(|e| panic!("{e}"));
    host_changes_agree(&lab, test, &[1, 2, 3, 0]).unwrap_or_else(|e| panic!("{e}"));
    for victim in [1, 2] {
        crash_and_heal(&mut lab, test, victim).unwrap_or_else(|e| panic!("{e}"));
        logins_agree(&lab, test, &all).unwrap_or_else(|e| panic!("{e}"));
    }
}
