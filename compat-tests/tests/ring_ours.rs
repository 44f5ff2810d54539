//! Real TCP rings of 3 and 5 of our `directord`s, each with a real Dovecot 2.3
//! `imap-login director` proxy in front of the same real backends
//! (`compat_tests::ring_lab`): every user's first login goes through every proxy at the
//! same moment, then users log in through the proxies in turn; a user always reaches the
//! same backend (no double routing), and real `doveadm` on every director shows the ring
//! synced, the same hosts and the same user map. In the ring of 5 one director is killed
//! under load and comes back.
//!
//! Measured numbers are printed as `RING-NUMBERS` lines.

use compat_tests::ours::require_our_binary;
use compat_tests::require_dovecot;
use compat_tests::ring_lab::checks::{burst_agree, host_changes_agree, logins_agree, CONVERGE};
use compat_tests::ring_lab::faults::crash_and_heal;
use compat_tests::ring_lab::{report, Kind, RingLab};

/// Users logged in by the checks.
const USERS: usize = 16;

fn ring_of_ours(test: &str, n: usize, crash: Option<usize>) {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    if require_our_binary("directord").is_none() {
        return;
    }
    let mut lab = RingLab::new(&dovecot, &vec![Kind::Ours; n], USERS).expect("start backends");
    let all: Vec<usize> = (0..n).collect();
    lab.start_all().expect("start members");
    let (_, t) = lab
        .wait_converged(&all, CONVERGE)
        .unwrap_or_else(|e| panic!("{e}"));
    report(
        test,
        &format!("ring of {n} ours synced in {:.1} s", t.as_secs_f64()),
    );
    burst_agree(&lab, test, &all).unwrap_or_else(|e| panic!("{e}"));
    logins_agree(&lab, test, &all).unwrap_or_else(|e| panic!("{e}"));
    host_changes_agree(&lab, test, &all).unwrap_or_else(|e| panic!("{e}"));
    if let Some(victim) = crash {
        crash_and_heal(&mut lab, test, victim).unwrap_or_else(|e| panic!("{e}"));
        logins_agree(&lab, test, &all).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn ring_of_three_ours() {
    ring_of_ours("ring_of_three_ours", 3, None);
}

#[test]
fn ring_of_five_ours() {
    ring_of_ours("ring_of_five_ours", 5, Some(2));
}
