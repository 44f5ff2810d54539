//! User moves: doveadm USER-MOVE and the kill/flush/delay states of a stand-alone director.

use super::{host_of, ip, ok, three_hosts};
use crate::state::*;

/// Observed on a stand-alone Dovecot 2.3.19.1 director (director-admin socket, 15 min
/// expiry, hosts 10.0.0.1-3, real clock; times below are relative):
/// t=0 `USER-MOVE 111 10.0.0.1`, t=3 `USER-MOVE 222 10.0.0.1`, t=5 `USER-MOVE 111 10.0.0.2`
/// gave `USER-LIST` = `111 <5+900> 10.0.0.2`, `222 <3+900> 10.0.0.1`: a move to another host
/// keeps the entry's place in the expiry order. Then, with fresh users, t=0 `USER-MOVE 333
/// 10.0.0.1`, t=2 `USER-MOVE 444 10.0.0.1`, t=5 `USER-MOVE 333 10.0.0.1` (same host) gave
/// `444 <2+900>`, `333 <5+900>`: a same-host move is a refresh. A second move of 444 during
/// its kick delay answered `TRYAGAIN`, and `USER-LOOKUP 444` right after its move showed
/// `10.0.0.3 <5+900> 10.0.0.3 10.0.0.3`.
#[test]
fn move_order_matches_real_director() {
    let mut d = three_hosts(900);
    let t0 = 1_795_961_679;
    let moved = |o: UserMoveOutcome| match o {
        UserMoveOutcome::Moved(m) => m,
        other => panic!("expected a move, got {other:?}"),
    };
    let m = moved(d.user_move(111, ip("10.0.0.1"), t0));
    assert_eq!(d.kill_finished(m.key, false), AfterKill::Delay);
    assert!(d.move_delay_finished(m.key));
    let m = moved(d.user_move(222, ip("10.0.0.1"), t0 + 3));
    assert_eq!(d.kill_finished(m.key, false), AfterKill::Delay);
    assert!(d.move_delay_finished(m.key));
    let m = moved(d.user_move(111, ip("10.0.0.2"), t0 + 5));
    assert!(m.kick);
    assert_eq!(
        d.user_list(None, t0 + 5),
        [
            (111, t0 + 5 + 900, ip("10.0.0.2")),
            (222, t0 + 3 + 900, ip("10.0.0.1"))
        ]
    );
    let users: Vec<u32> = d.host_list().map(|h| h.user_count).collect();
    assert_eq!(users, [1, 1, 0]);
    ok(&d);

    let mut d = three_hosts(900);
    for (hash, at) in [(333, t0), (444, t0 + 2)] {
        let m = moved(d.user_move(hash, ip("10.0.0.1"), at));
        d.kill_finished(m.key, false);
        d.move_delay_finished(m.key);
    }
    assert_eq!(
        d.user_move(333, ip("10.0.0.1"), t0 + 5),
        UserMoveOutcome::Refreshed
    );
    assert_eq!(
        d.user_list(None, t0 + 5),
        [
            (444, t0 + 2 + 900, ip("10.0.0.1")),
            (333, t0 + 5 + 900, ip("10.0.0.1"))
        ]
    );
    let m = moved(d.user_move(444, ip("10.0.0.3"), t0 + 5));
    assert_eq!(d.kill_finished(m.key, false), AfterKill::Delay);
    assert_eq!(
        d.user_move(444, ip("10.0.0.2"), t0 + 5),
        UserMoveOutcome::TryAgain
    );
    let t = Tag::default();
    let (current, _, _) = d.user_lookup(444, &t, t0 + 5);
    assert_eq!(current, Some((ip("10.0.0.3"), t0 + 5 + 900)));
    assert_eq!(
        d.user_list(None, t0 + 5),
        [
            (444, t0 + 5 + 900, ip("10.0.0.3")),
            (333, t0 + 5 + 900, ip("10.0.0.1"))
        ]
    );
    ok(&d);
}

#[test]
fn user_move_standalone_flow() {
    let mut d = three_hosts(900);
    let t = Tag::default();
    let alice = 1669653170;
    assert_eq!(
        d.request_host(&t, alice, 100),
        RequestOutcome::Host(ip("10.0.0.2"))
    );
    assert_eq!(
        d.user_move(alice, ip("10.9.9.9"), 101),
        UserMoveOutcome::NotFound
    );
    let UserMoveOutcome::Moved(m) = d.user_move(alice, ip("10.0.0.1"), 101) else {
        panic!("move did not start");
    };
    assert_eq!(
        (m.old_host, m.kick, m.restarted),
        (Some(ip("10.0.0.2")), true, false)
    );
    assert_eq!(d.moving_count(), 1);
    assert_eq!(d.kill_state(m.key), Some(KillState::Killing));
    ok(&d);
    // While moving: requests wait, a second move gets TRYAGAIN, the entry does not expire.
    assert_eq!(d.request_host(&t, alice, 102), RequestOutcome::Busy);
    assert_eq!(
        d.user_move(alice, ip("10.0.0.3"), 102),
        UserMoveOutcome::TryAgain
    );
    assert_eq!(host_of(&mut d, alice, 5000), Some(ip("10.0.0.1")));
    assert_eq!(d.next_expiry(5000), Some(5060));
    // Kick done, no flush program: kick delay.
    assert_eq!(d.kill_finished(m.key, false), AfterKill::Delay);
    assert_eq!(d.kill_state(m.key), Some(KillState::Delay));
    assert_eq!(d.move_timed_out(m.key), None, "the delay has its own timer");
    assert!(d.move_delay_finished(m.key));
    assert_eq!(d.moving_count(), 0);
    // The move's timestamp was 101 and it has expired by now; a new lookup uses the ring.
    assert_eq!(
        d.request_host(&t, alice, 5001),
        RequestOutcome::Host(ip("10.0.0.2"))
    );
    ok(&d);
    // Same host: a refresh, no move.
    assert_eq!(
        d.user_move(alice, ip("10.0.0.2"), 5002),
        UserMoveOutcome::Refreshed
    );
    assert_eq!(d.moving_count(), 0);
    // Unknown user: created at the target, no kick, no old host.
    let UserMoveOutcome::Moved(m) = d.user_move(7, ip("10.0.0.3"), 5003) else {
        panic!("move did not start");
    };
    assert_eq!((m.old_host, m.kick), (None, false));
    assert_eq!(
        d.kill_finished(m.key, true),
        AfterKill::Delay,
        "no old host: no flush"
    );
    assert_eq!(d.move_timed_out(m.key), None);
    ok(&d);
}

#[test]
fn user_move_with_flush_program() {
    let mut d = three_hosts(900);
    let t = Tag::default();
    d.request_host(&t, 5, 100);
    let from = host_of(&mut d, 5, 100).unwrap();
    let to = if from == ip("10.0.0.1") {
        ip("10.0.0.2")
    } else {
        ip("10.0.0.1")
    };
    let UserMoveOutcome::Moved(m) = d.user_move(5, to, 101) else {
        panic!("move did not start");
    };
    let AfterKill::Flush(job) = d.kill_finished(m.key, true) else {
        panic!("expected a flush");
    };
    assert_eq!((job.old_host.ip, job.new_ip), (from, to));
    assert_eq!((job.old_host.down, job.old_host.vhost_count), (false, 100));
    assert_eq!(d.kill_state(m.key), Some(KillState::Flushing));
    // A failed flush waits the kick delay; a successful one ends the move at once.
    assert_eq!(d.flush_finished(m.key, false), AfterKill::Delay);
    assert!(d.move_delay_finished(m.key));
    let UserMoveOutcome::Moved(m) = d.user_move(5, from, 102) else {
        panic!("move did not start");
    };
    assert!(matches!(d.kill_finished(m.key, true), AfterKill::Flush(_)));
    assert_eq!(d.flush_finished(m.key, true), AfterKill::Gone);
    assert_eq!(d.moving_count(), 0);
    assert_eq!(d.request_host(&t, 5, 103), RequestOutcome::Host(from));
    ok(&d);
}

#[test]
fn move_timeout_and_removal_while_moving() {
    let mut d = three_hosts(900);
    let t = Tag::default();
    d.request_host(&t, 9, 100);
    let from = host_of(&mut d, 9, 100).unwrap();
    let to = if from == ip("10.0.0.3") {
        ip("10.0.0.1")
    } else {
        ip("10.0.0.3")
    };
    let UserMoveOutcome::Moved(m) = d.user_move(9, to, 101) else {
        panic!("move did not start");
    };
    assert_eq!(d.move_timed_out(m.key), Some(KillState::Killing));
    assert_eq!(KillState::Killing.name(), "killing");
    assert_eq!(d.moving_count(), 0);
    assert_eq!(d.request_host(&t, 9, 102), RequestOutcome::Host(to));
    // Removing the target host while a move runs drops the move with the entry.
    let UserMoveOutcome::Moved(m) = d.user_move(9, from, 103) else {
        panic!("move did not start");
    };
    d.host_remove(from).unwrap();
    assert_eq!(d.moving_count(), 0);
    assert_eq!(d.kill_finished(m.key, true), AfterKill::Gone);
    ok(&d);
}

#[test]
fn a_moving_head_stops_the_purge() {
    let mut d = three_hosts(60);
    let t = Tag::default();
    d.request_host(&t, 1, 100);
    d.request_host(&t, 2, 101);
    let target = {
        let cur = host_of(&mut d, 1, 101).unwrap();
        d.hosts().iter().map(|h| h.ip).find(|&i| i != cur).unwrap()
    };
    let UserMoveOutcome::Moved(m) = d.user_move(1, target, 102) else {
        panic!("move did not start");
    };
    // The move sets user 1's timestamp to 102 but keeps it first in the list.
    assert_eq!(
        d.user_list(None, 102)
            .iter()
            .map(|e| e.0)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    // At 170 both are past expiry; 1 is kept (moving) and, being first, stops the purge.
    d.purge_expired(170);
    assert_eq!(d.user_count(), 2);
    assert_eq!(d.next_expiry(170), Some(230));
    // A direct lookup still drops the expired one behind it.
    assert_eq!(host_of(&mut d, 2, 170), None);
    assert!(d.move_timed_out(m.key).is_some());
    d.purge_expired(170);
    assert_eq!(d.user_count(), 0);
    ok(&d);
}

/// Observed on a stand-alone Dovecot 2.3.19.1 director with `director_user_expire = 10s`
/// and `director_user_kick_delay = 3s` (times relative): t=0 `USER-MOVE 1 10.0.0.1`, t=1
/// `USER-MOVE 2 10.0.0.1`, t=5 `USER-MOVE 1 10.0.0.2`. At t=12 `USER-LIST` still listed the
/// expired user 2 (expire t=11) behind user 1 (expire t=15), and HOST-LIST counted it; a
/// `USER-LOOKUP 2` (`\t0\t10.0.0.3\t10.0.0.3`) dropped it. At t=16 both were gone.
#[test]
fn purge_stops_at_a_live_head_like_real_director() {
    let mut d = three_hosts(10);
    let t0 = 1_795_962_354;
    for (hash, at) in [(1, t0), (2, t0 + 1)] {
        let UserMoveOutcome::Moved(m) = d.user_move(hash, ip("10.0.0.1"), at) else {
            panic!("move did not start");
        };
        assert_eq!(d.kill_finished(m.key, false), AfterKill::Delay);
        assert!(d.move_delay_finished(m.key), "kick delay over");
    }
    let UserMoveOutcome::Moved(m) = d.user_move(1, ip("10.0.0.2"), t0 + 5) else {
        panic!("move did not start");
    };
    d.kill_finished(m.key, false);
    d.move_delay_finished(m.key);
    let both = [(1, t0 + 15, ip("10.0.0.2")), (2, t0 + 11, ip("10.0.0.1"))];
    assert_eq!(d.user_list(None, t0 + 5), both);
    assert_eq!(d.user_list(None, t0 + 12), both);
    let counts: Vec<u32> = d.host_list().map(|h| h.user_count).collect();
    assert_eq!(counts, [1, 1, 0]);
    let t = Tag::default();
    assert_eq!(
        d.user_lookup(2, &t, t0 + 12),
        (None, Some(ip("10.0.0.3")), Some(ip("10.0.0.3")))
    );
    assert_eq!(d.user_list(None, t0 + 12), [both[0]]);
    let counts: Vec<u32> = d.host_list().map(|h| h.user_count).collect();
    assert_eq!(counts, [0, 1, 0]);
    assert!(d.user_list(None, t0 + 16).is_empty());
    ok(&d);
}

/// `ring-protocol.md` §8.3 as seen by the director that started the move.
#[test]
fn ring_move_originator() {
    let mut d = three_hosts(900);
    let t = Tag::default();
    d.request_host(&t, 5, 100);
    let from = host_of(&mut d, 5, 100).unwrap();
    let to = if from == ip("10.0.0.1") {
        ip("10.0.0.2")
    } else {
        ip("10.0.0.1")
    };
    let UserMoveOutcome::Moved(m) = d.user_move(5, to, 101) else {
        panic!("move did not start");
    };
    // USER-KILLED from the left before our own kick finished.
    assert_eq!(
        d.user_killed(5, true, false, 101),
        [(m.key, UserKilledStep::NotifyReceived)]
    );
    assert_eq!(
        d.user_killed(5, true, false, 101),
        [(m.key, UserKilledStep::Ignored)]
    );
    // Kick done: we started it, so USER-KILLED goes to the right.
    assert_eq!(
        d.kill_finished_ring(m.key, false, true, false),
        RingKillStep::SendUserKilled
    );
    assert_eq!(d.kill_state(m.key), Some(KillState::WaitingForEveryone));
    // It came round the ring: everyone killed, then the kick delay.
    assert_eq!(
        d.user_killed(5, true, false, 102),
        [(m.key, UserKilledStep::KilledEverywhere(AfterKill::Delay))]
    );
    assert_eq!(d.kill_state(m.key), Some(KillState::Delay));
    // A late USER-KILLED during the delay: answer with USER-KILLED-EVERYWHERE.
    assert_eq!(
        d.user_killed(5, true, false, 103),
        [(m.key, UserKilledStep::SendKilledEverywhere)]
    );
    assert!(d.move_delay_finished(m.key));
    assert!(
        d.user_killed(5, true, false, 104).is_empty(),
        "not moving: not forwarded"
    );
    assert!(
        d.user_killed(6, true, false, 104).is_empty(),
        "unknown user: not forwarded"
    );
    ok(&d);
}

/// `ring-protocol.md` §8.3 as seen by another director of the ring.
#[test]
fn ring_move_follower() {
    let mut d = three_hosts(900);
    let t = Tag::default();
    d.request_host(&t, 5, 100);
    let from = host_of(&mut d, 5, 100).unwrap();
    let to = if from == ip("10.0.0.1") {
        ip("10.0.0.2")
    } else {
        ip("10.0.0.1")
    };
    // Ring USER-MOVE: not self-initiated.
    let m = d.start_move(5, to, 101, false).unwrap();
    assert_eq!((m.old_host, m.kick), (Some(from), true));
    assert_eq!(
        d.kill_finished_ring(m.key, false, true, true),
        RingKillStep::WaitForNotify
    );
    // USER-KILLED from the left: pass it on to the right.
    assert_eq!(
        d.user_killed(5, true, true, 102),
        [(
            m.key,
            UserKilledStep::Finished(RingKillStep::SendUserKilled)
        )]
    );
    // USER-KILLED-EVERYWHERE: no flush here (only the initiator flushes), kick delay.
    assert_eq!(
        d.user_killed_everywhere(5, true, 103),
        [(m.key, AfterKill::Delay)]
    );
    assert!(
        d.user_killed_everywhere(5, true, 103).is_empty(),
        "only once"
    );
    // Without a right neighbour the move goes on as when alone.
    assert!(d.move_delay_finished(m.key));
    let m = d.start_move(5, from, 104, true).unwrap();
    assert!(matches!(
        d.kill_finished_ring(m.key, false, false, true),
        RingKillStep::Alone(AfterKill::Flush(_))
    ));
    ok(&d);
}

/// Observed on a stand-alone Dovecot 2.3.19.1 director (`director_user_expire = 10s`):
/// `USER-MOVE 77 10.0.0.1` at t0 = 1795963329; `USER-LOOKUP 77` at t0+9.9 s gave
/// `10.0.0.1\t1795963339\t10.0.0.3\t10.0.0.3`, at t0+10.05 s `\t0\t10.0.0.3\t10.0.0.3`.
#[test]
fn expiry_boundary_like_real_director() {
    let mut d = three_hosts(10);
    let t0 = 1_795_963_329;
    let t = Tag::default();
    let UserMoveOutcome::Moved(m) = d.user_move(77, ip("10.0.0.1"), t0) else {
        panic!("move did not start");
    };
    d.kill_finished(m.key, false);
    d.move_delay_finished(m.key);
    let hashed = Some(ip("10.0.0.3"));
    assert_eq!(
        d.user_lookup(77, &t, t0 + 9),
        (Some((ip("10.0.0.1"), 1_795_963_339)), hashed, hashed)
    );
    assert_eq!(d.user_lookup(77, &t, t0 + 10), (None, hashed, hashed));
}
