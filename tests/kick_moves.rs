//! The move driver over the real `state::Directory`, with a virtual clock (milliseconds).
//! Texts and rules: user-directory.md §7.1 and admin-protocol.md §6.7; the "second
//! USER-MOVE during the kick delay answers TRYAGAIN" rule is [verified] there.

use std::net::IpAddr;
use std::time::Duration;

use director::kick::moves::{Effect, MoveId, Moves, MOVE_TIMEOUT_MS};
use director::mail_hosts::MailHostSpec;
use director::state::{Directory, KillState, RequestOutcome, Tag, UserKey, UserMoveOutcome};

const T0: u64 = 1_795_961_679_000;
const DELAY: u64 = 3_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn dir() -> Directory {
    let specs = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        .iter()
        .map(|s| MailHostSpec {
            ip: ip(s),
            tag: Tag::default(),
            hostname: Some(format!("mx{}", &s[7..])),
        })
        .collect();
    Directory::new(specs, 900)
}

fn place(d: &mut Directory, hash: u32, now: u64) -> IpAddr {
    match d.request_host(&Tag::default(), hash, now / 1000) {
        RequestOutcome::Host(ip) => ip,
        other => panic!("{other:?}"),
    }
}

/// A user of `hash` on `from`, then USER-MOVE to `to`; returns the kick's move id.
fn moved(m: &mut Moves, d: &mut Directory, hash: u32, to: &str, now: u64) -> MoveId {
    let from = place(d, hash, now);
    assert_ne!(from, ip(to));
    let (outcome, effects) = m.user_move(d, hash, ip(to), now);
    assert!(matches!(outcome, UserMoveOutcome::Moved(_)), "{outcome:?}");
    match effects.as_slice() {
        [Effect::Kick { id, hash: h }] if *h == hash => *id,
        other => panic!("{other:?}"),
    }
}

/// Hashes spread over the whole ring (small ones all fall before the first ring point).
fn spread(i: u32) -> u32 {
    i.wrapping_mul(21_474_836).wrapping_add(12_345)
}

fn key(hash: u32) -> UserKey {
    UserKey { tag: 0, hash }
}

#[test]
fn kick_then_delay_then_done_and_tryagain_meanwhile() {
    let mut d = dir();
    let mut m = Moves::new(Duration::from_millis(DELAY), false);
    let hash = 1669653170;
    let target = if place(&mut d, hash, T0) == ip("10.0.0.1") {
        "10.0.0.2"
    } else {
        "10.0.0.1"
    };
    let id = moved(&mut m, &mut d, hash, target, T0);
    assert_eq!(d.kill_state(key(hash)), Some(KillState::Killing));
    assert_eq!(m.next_deadline(), Some(T0 + MOVE_TIMEOUT_MS));
    // While killing, and during the delay: TRYAGAIN.
    assert_eq!(
        m.user_move(&mut d, hash, ip("10.0.0.3"), T0 + 10).0,
        UserMoveOutcome::TryAgain
    );

    let e = m.kick_finished(&mut d, id, Ok(()), T0 + 100);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(d.kill_state(key(hash)), Some(KillState::Delay));
    assert_eq!(m.next_deadline(), Some(T0 + 100 + DELAY));
    assert_eq!(
        m.user_move(&mut d, hash, ip("10.0.0.3"), T0 + 200).0,
        UserMoveOutcome::TryAgain
    );
    assert!(m.tick(&mut d, T0 + 100 + DELAY - 1).is_empty());
    assert_eq!(
        m.tick(&mut d, T0 + 100 + DELAY),
        [Effect::MoveDone { key: key(hash) }]
    );
    assert_eq!(d.kill_state(key(hash)), None);
    assert_eq!(d.moving_count(), 0);
    assert_eq!(m.next_deadline(), None);
    // A late duplicate result changes nothing.
    assert!(m.kick_finished(&mut d, id, Ok(()), T0 + 9000).is_empty());
}

#[test]
fn new_user_needs_no_kick_and_no_flush() {
    let mut d = dir();
    let mut m = Moves::new(Duration::from_millis(DELAY), true);
    let (outcome, effects) = m.user_move(&mut d, 42, ip("10.0.0.2"), T0);
    assert!(matches!(outcome, UserMoveOutcome::Moved(_)));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(d.kill_state(key(42)), Some(KillState::Delay));
    assert_eq!(
        m.tick(&mut d, T0 + DELAY),
        [Effect::MoveDone { key: key(42) }]
    );
}

#[test]
fn failed_kick_is_logged_and_the_move_goes_on_to_the_flush() {
    let mut d = dir();
    let mut m = Moves::new(Duration::from_millis(DELAY), true);
    let old = place(&mut d, 7, T0);
    let new = if old == ip("10.0.0.3") {
        "10.0.0.1"
    } else {
        "10.0.0.3"
    };
    let id = moved(&mut m, &mut d, 7, new, T0);
    let e = m.kick_finished(&mut d, id, Err("Disconnected".into()), T0 + 5);
    let [Effect::Error(text), Effect::Flush {
        id: fid,
        job,
        new_hostname,
    }] = e.as_slice()
    else {
        panic!("{e:?}");
    };
    assert_eq!(text, "Failed to kill user 7 connections: Disconnected");
    assert_eq!(*fid, id);
    assert_eq!(job.old_host.ip, old);
    assert!(!job.old_host.down);
    assert_eq!(job.old_host.vhost_count, 100);
    assert_eq!(job.new_ip, ip(new));
    assert_eq!(
        new_hostname.as_deref(),
        Some(&new[7..]).map(|n| format!("mx{n}")).as_deref()
    );
    assert_eq!(d.kill_state(key(7)), Some(KillState::Flushing));
    // Flush success ends the move at once, without the kick delay.
    assert_eq!(
        m.flush_finished(&mut d, id, true, T0 + 10),
        [Effect::MoveDone { key: key(7) }]
    );
    assert_eq!(d.moving_count(), 0);
}

#[test]
fn failed_flush_waits_the_kick_delay() {
    let mut d = dir();
    let mut m = Moves::new(Duration::from_millis(DELAY), true);
    let new = if place(&mut d, 8, T0) == ip("10.0.0.3") {
        "10.0.0.1"
    } else {
        "10.0.0.3"
    };
    let id = moved(&mut m, &mut d, 8, new, T0);
    m.kick_finished(&mut d, id, Ok(()), T0 + 5);
    assert!(m.flush_finished(&mut d, id, false, T0 + 1000).is_empty());
    assert_eq!(d.kill_state(key(8)), Some(KillState::Delay));
    assert!(m.tick(&mut d, T0 + 1000 + DELAY - 1).is_empty());
    assert_eq!(
        m.tick(&mut d, T0 + 1000 + DELAY),
        [Effect::MoveDone { key: key(8) }]
    );
}

#[test]
fn move_timeout_finishes_by_force_with_the_state_name() {
    let mut d = dir();
    let mut m = Moves::new(Duration::from_millis(DELAY), true);
    let new = if place(&mut d, 9, T0) == ip("10.0.0.3") {
        "10.0.0.1"
    } else {
        "10.0.0.3"
    };
    let id = moved(&mut m, &mut d, 9, new, T0);
    assert!(m.tick(&mut d, T0 + MOVE_TIMEOUT_MS - 1).is_empty());
    assert_eq!(
        m.tick(&mut d, T0 + MOVE_TIMEOUT_MS),
        [
            Effect::Error(
                "Finishing user 9 move timed out, its state may now be inconsistent \
                 (state=killing)"
                    .into()
            ),
            Effect::MoveDone { key: key(9) }
        ]
    );
    assert_eq!(d.moving_count(), 0);
    // The stuck kick answers late: ignored.
    assert!(m.kick_finished(&mut d, id, Ok(()), T0 + 31_000).is_empty());

    // A flush that hangs past the timer: state=flushing; a newer move is not disturbed by
    // the old move's late result.
    let back = place(&mut d, 9, T0 + 40_000);
    let other = if back == ip("10.0.0.2") {
        "10.0.0.1"
    } else {
        "10.0.0.2"
    };
    let id2 = moved(&mut m, &mut d, 9, other, T0 + 40_000);
    m.kick_finished(&mut d, id2, Ok(()), T0 + 40_001);
    let e = m.tick(&mut d, T0 + 70_000);
    assert!(
        matches!(&e[0], Effect::Error(t) if t.ends_with("(state=flushing)")),
        "{e:?}"
    );
    let third = if other == "10.0.0.1" {
        "10.0.0.3"
    } else {
        "10.0.0.1"
    };
    let id3 = moved(&mut m, &mut d, 9, third, T0 + 71_000);
    assert!(m.flush_finished(&mut d, id2, true, T0 + 71_001).is_empty());
    assert!(m.kick_finished(&mut d, id, Ok(()), T0 + 71_002).is_empty());
    assert_eq!(d.kill_state(key(9)), Some(KillState::Killing));
    assert!(!m.kick_finished(&mut d, id3, Ok(()), T0 + 71_003).is_empty());
}

/// Users placed while all hosts were up, then 10.0.0.1 goes down: its users' ring host
/// changed, so HOST-RESET-USERS 10.0.0.1 moves them, at most `max` at a time.
#[test]
fn host_reset_users_pauses_at_max_parallel_and_resumes() {
    let mut d = dir();
    let mut m = Moves::new(Duration::from_millis(DELAY), false);
    let on_first: Vec<u32> = (0..200u32)
        .map(spread)
        .filter(|h| place(&mut d, *h, T0) == ip("10.0.0.1"))
        .take(5)
        .collect();
    assert_eq!(on_first.len(), 5);
    d.host_down(ip("10.0.0.1"), T0 / 1000);

    assert!(m
        .host_reset_users(&mut d, Some(ip("10.9.9.9")), 2, 1, T0)
        .is_err());
    let e = m
        .host_reset_users(&mut d, Some(ip("10.0.0.1")), 2, 77, T0)
        .unwrap();
    let kicks: Vec<MoveId> = e
        .iter()
        .filter_map(|e| match e {
            Effect::Kick { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(kicks.len(), 2, "{e:?}");
    assert!(!e.contains(&Effect::ResetDone { token: 77 }));
    assert_eq!(d.moving_count(), 2);

    let mut now = T0;
    let mut pending = kicks;
    let mut done = false;
    let mut moved_total = 2;
    for _ in 0..10 {
        now += 100;
        for id in pending.drain(..) {
            m.kick_finished(&mut d, id, Ok(()), now);
        }
        now += DELAY;
        let e = m.tick(&mut d, now);
        for eff in &e {
            match eff {
                Effect::Kick { id, .. } => {
                    pending.push(*id);
                    moved_total += 1;
                }
                Effect::ResetDone { token } => {
                    assert_eq!(*token, 77);
                    done = true;
                }
                Effect::Info(text) => {
                    // Time since the command started.
                    let ms = now - T0;
                    let want = format!(
                        "Moved 5 users in 1 hosts in {}.{:03} secs (max parallel=2)",
                        ms / 1000,
                        ms % 1000
                    );
                    assert_eq!(text, &want);
                }
                _ => {}
            }
        }
        assert!(d.moving_count() <= 2);
        if done {
            break;
        }
    }
    assert!(done);
    assert_eq!(moved_total, 5);
    for h in on_first {
        assert_ne!(
            d.user(key(h)).map(|u| d.hosts().get(u.host).ip),
            Some(ip("10.0.0.1"))
        );
    }
}

#[test]
fn host_reset_users_without_any_host_kicks_and_forgets() {
    let mut d = dir();
    let mut m = Moves::new(Duration::from_millis(DELAY), false);
    let users: Vec<u32> = (0..30u32)
        .map(spread)
        .filter(|h| place(&mut d, *h, T0) == ip("10.0.0.2"))
        .collect();
    assert!(!users.is_empty());
    for h in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        d.host_down(ip(h), T0 / 1000);
    }
    let e = m.host_reset_users(&mut d, None, 100, 5, T0 + 1234).unwrap();
    let forced: Vec<u32> = e
        .iter()
        .filter_map(|e| match e {
            Effect::ForcedKick { hash } => Some(*hash),
            _ => None,
        })
        .collect();
    assert_eq!(forced.len(), 30, "{e:?}");
    assert_eq!(e.last(), Some(&Effect::ResetDone { token: 5 }));
    let logs: Vec<&Effect> = e.iter().filter(|e| matches!(e, Effect::Info(_))).collect();
    assert_eq!(logs.len(), 3, "one per host");
    assert_eq!(
        logs[2],
        &Effect::Info("Moved 30 users in 3 hosts in 0.000 secs (max parallel=100)".into())
    );
    assert_eq!(d.user_count(), 0);
}

#[test]
fn only_the_initiating_director_flushes() {
    let mut d = dir();
    let mut m = Moves::new(Duration::from_millis(DELAY), true);
    let new = if place(&mut d, 11, T0) == ip("10.0.0.3") {
        "10.0.0.1"
    } else {
        "10.0.0.3"
    };
    // A ring USER-MOVE: started elsewhere.
    let e = m.move_user(&mut d, 11, ip(new), T0, false);
    let [Effect::Kick { id, .. }] = e.as_slice() else {
        panic!("{e:?}");
    };
    assert!(m.kick_finished(&mut d, *id, Ok(()), T0 + 1).is_empty());
    assert_eq!(d.kill_state(key(11)), Some(KillState::Delay));
    // A second move while one runs starts nothing new.
    assert!(m
        .move_user(&mut d, 11, ip("10.0.0.2"), T0 + 2, true)
        .is_empty());
    assert_eq!(m.active_count(), 1);
}
