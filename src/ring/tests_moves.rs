//! Moves, kicks and the flush program over the ring (`ring-protocol.md` §5.6, §8.3) in a
//! two-director ring: what a director that starts a move does versus one that only hears it;
//! the counters `DIRECTOR-LIST` shows; hostnames of hosts learnt from the ring.

use super::tests::{ip, line, sent_np, step, T};
use super::tests_users::paired_a;
use super::*;
use crate::state::{KillState, UserKey};

const HASH: u32 = 100;

fn key() -> UserKey {
    UserKey { tag: 0, hash: HASH }
}

/// A with the flush program configured and user [`HASH`] logged in on its hashed host.
fn paired_with_user() -> (Ring, ConnId, ConnId, IpAddr) {
    let (a, c1, c2) = paired_a();
    let mut a = a.with_move_settings(3000, true);
    let eff = step(
        &mut a,
        RingEvent::Login {
            tag: Tag::default(),
            hash: HASH,
        },
        T,
    );
    let Some(RingEffect::Routed {
        routing: Routing::Host(host),
        ..
    }) = eff.iter().find(|e| matches!(e, RingEffect::Routed { .. }))
    else {
        panic!("login not routed: {eff:?}");
    };
    (a, c1, c2, *host)
}

fn other(host: IpAddr) -> IpAddr {
    if host == ip("10.0.0.1") {
        ip("10.0.0.2")
    } else {
        ip("10.0.0.1")
    }
}

#[test]
fn a_move_started_here_runs_the_flush_program_after_the_kill_went_round() {
    let (mut a, c1, c2, old) = paired_with_user();
    let new = other(old);
    let eff = step(
        &mut a,
        RingEvent::Admin(AdminCmd::UserMove {
            hash: HASH,
            ip: new,
        }),
        T,
    );
    assert!(eff.contains(&RingEffect::AdminDone(AdminOutcome::Ok)));
    let mv = format!("USER-MOVE\\t127.0.0.1\\t9090\\t1\\t{HASH}\\t{new}");
    assert_eq!(
        (sent_np(&eff, c1), sent_np(&eff, c2)),
        (vec![mv.clone()], vec![mv])
    );
    assert!(eff.contains(&RingEffect::Kick {
        hash: HASH,
        except: Some(new)
    }));
    // Our kill is done: USER-KILLED to the right only.
    let eff = step(&mut a, RingEvent::KickDone { hash: HASH }, T);
    assert_eq!(sent_np(&eff, c2), [format!("USER-KILLED\\t{HASH}")]);
    assert!(sent_np(&eff, c1).is_empty());
    // It came round: USER-KILLED-EVERYWHERE, and the flush program with the old host.
    let eff = line(&mut a, c1, &format!("USER-KILLED\t{HASH}"), T);
    let job = eff.iter().find_map(|e| match e {
        RingEffect::Flush(job) => Some(*job),
        _ => None,
    });
    let job = job.expect("flush program started");
    assert_eq!((job.key, job.old_host.ip, job.new_ip), (key(), old, new));
    assert_eq!(a.directory().kill_state(key()), Some(KillState::Flushing));
    assert!(sent_np(&eff, c2)
        .iter()
        .any(|l| l.starts_with("USER-KILLED-EVERYWHERE\\t127.0.0.1\\t9090\\t2\\t")));
    // A failed flush waits the configured kick delay (3 s), then the move is over.
    step(
        &mut a,
        RingEvent::FlushDone {
            key: key(),
            success: false,
        },
        T,
    );
    assert_eq!(a.directory().kill_state(key()), Some(KillState::Delay));
    step(&mut a, RingEvent::Timer, T + 2);
    assert_eq!(a.directory().moving_count(), 1);
    step(&mut a, RingEvent::Timer, T + 3);
    assert_eq!(a.directory().moving_count(), 0);
}

#[test]
fn a_flush_success_ends_the_move_at_once() {
    let (mut a, c1, _, old) = paired_with_user();
    let new = other(old);
    step(
        &mut a,
        RingEvent::Admin(AdminCmd::UserMove {
            hash: HASH,
            ip: new,
        }),
        T,
    );
    step(&mut a, RingEvent::KickDone { hash: HASH }, T);
    line(&mut a, c1, &format!("USER-KILLED\t{HASH}"), T);
    step(
        &mut a,
        RingEvent::FlushDone {
            key: key(),
            success: true,
        },
        T,
    );
    assert_eq!(a.directory().moving_count(), 0);
    assert_eq!(a.directory().kill_state(key()), None);
}

#[test]
fn a_move_heard_from_the_ring_never_runs_the_flush_program() {
    let (mut a, c1, c2, old) = paired_with_user();
    let new = other(old);
    let eff = line(
        &mut a,
        c1,
        &format!("USER-MOVE\t127.0.0.2\t9090\t1\t{HASH}\t{new}"),
        T,
    );
    assert!(eff.contains(&RingEffect::Kick {
        hash: HASH,
        except: Some(new)
    }));
    // Not ours: after the kill, wait for the USER-KILLED from the left.
    step(&mut a, RingEvent::KickDone { hash: HASH }, T);
    assert_eq!(
        a.directory().kill_state(key()),
        Some(KillState::WaitingForNotify)
    );
    let eff = line(&mut a, c1, &format!("USER-KILLED\t{HASH}"), T);
    assert_eq!(sent_np(&eff, c2), [format!("USER-KILLED\\t{HASH}")]);
    let eff = line(
        &mut a,
        c1,
        &format!("USER-KILLED-EVERYWHERE\t127.0.0.2\t9090\t2\t{HASH}"),
        T,
    );
    assert!(!eff.iter().any(|e| matches!(e, RingEffect::Flush(_))));
    assert_eq!(a.directory().kill_state(key()), Some(KillState::Delay));
    step(&mut a, RingEvent::Timer, T + 3);
    assert_eq!(a.directory().moving_count(), 0);
}

#[test]
fn a_reset_move_is_a_user_move_with_our_origin() {
    let (mut a, c1, c2, old) = paired_with_user();
    let new = other(old);
    let eff = step(
        &mut a,
        RingEvent::Admin(AdminCmd::ResetMove {
            hash: HASH,
            ip: new,
        }),
        T,
    );
    let mv = format!("USER-MOVE\\t127.0.0.1\\t9090\\t1\\t{HASH}\\t{new}");
    assert_eq!(
        (sent_np(&eff, c1), sent_np(&eff, c2)),
        (vec![mv.clone()], vec![mv])
    );
    assert_eq!(a.directory().moving_count(), 1);
    let eff = step(
        &mut a,
        RingEvent::Admin(AdminCmd::ResetMove {
            hash: HASH,
            ip: ip("10.9.9.9"),
        }),
        T,
    );
    assert!(eff.contains(&RingEffect::AdminDone(AdminOutcome::NotFound)));
}

#[test]
fn kicks_are_local_and_go_round_with_our_origin() {
    let (mut a, c1, c2) = paired_a();
    let eff = step(
        &mut a,
        RingEvent::Admin(AdminCmd::UserKickAlt {
            field: b"user_foo".to_vec(),
            value: b"carol-alt".to_vec(),
        }),
        T,
    );
    assert!(eff.contains(&RingEffect::KickAlt {
        field: b"user_foo".to_vec(),
        value: b"carol-alt".to_vec()
    }));
    let alt = "USER-KICK-ALT\\t127.0.0.1\\t9090\\t1\\tuser_foo\\tcarol-alt".to_string();
    assert_eq!(
        (sent_np(&eff, c1), sent_np(&eff, c2)),
        (vec![alt.clone()], vec![alt])
    );
    let eff = step(
        &mut a,
        RingEvent::Admin(AdminCmd::UserKick(b"bob".to_vec())),
        T,
    );
    assert!(eff.contains(&RingEffect::KickUser(b"bob".to_vec())));
    assert_eq!(
        sent_np(&eff, c2),
        ["USER-KICK\\t127.0.0.1\\t9090\\t2\\tbob"]
    );
    // Received: kicked here; a 2-director ring forwards nothing (both links lead back).
    let eff = line(
        &mut a,
        c1,
        "USER-KICK-ALT\t127.0.0.2\t9090\t1\tuser_foo\terin-alt",
        T,
    );
    assert!(eff.contains(&RingEffect::KickAlt {
        field: b"user_foo".to_vec(),
        value: b"erin-alt".to_vec()
    }));
    assert!(sent_np(&eff, c1).is_empty() && sent_np(&eff, c2).is_empty());
    // USER-KICK-HASH kicks without a move waiting on it.
    let eff = line(
        &mut a,
        c1,
        "USER-KICK-HASH\t127.0.0.2\t9090\t2\t7\t10.0.0.1",
        T,
    );
    assert!(eff.contains(&RingEffect::KickHash {
        hash: 7,
        except: ip("10.0.0.1")
    }));
}

#[test]
fn director_list_counters_ping_round_trip_sync_round_and_failure_mark() {
    let (mut a, c1, c2) = paired_a();
    let ms = T * 1000;
    // The SYNC that synced the pair PINGed both neighbours at T; B answers 37 ms later.
    a.handle(
        RingEvent::Line {
            conn: c2,
            bytes: format!("PONG\t{T}\t0").into_bytes(),
        },
        ms + 37,
    );
    assert_eq!(a.conn_stats(c2).map(|s| s.ping_ms), Some(37));
    // A host change desyncs the ring; our SYNC comes back 250 ms later.
    let eff = a.handle(
        RingEvent::Admin(AdminCmd::HostUpDown {
            ip: ip("10.0.0.1"),
            down: true,
        }),
        ms + 1000,
    );
    let own = sent_np(&eff, c2)
        .into_iter()
        .find(|l| l.starts_with("SYNC\\t127.0.0.1"))
        .expect("our SYNC")
        .replace("\\t", "\t");
    a.handle(
        RingEvent::Line {
            conn: c1,
            bytes: own.into_bytes(),
        },
        ms + 1250,
    );
    assert!(a.is_synced());
    assert_eq!(a.last_sync_ms(), 250);
    // A connection that dies young marks its director failed at that second.
    let b = DirAddr::new(ip("127.0.0.2"), 9090);
    assert_eq!(a.last_failed(b), 0);
    a.handle(RingEvent::Closed { conn: c2 }, ms + 2000);
    assert_eq!(a.last_failed(b), T + 2);
}

#[test]
fn a_host_learnt_from_the_ring_keeps_the_senders_hostname() {
    let (mut a, c1, _) = paired_a();
    line(
        &mut a,
        c1,
        "HOST\t127.0.0.2\t9090\t1\t10.0.0.9\t100\t\tU0\tmail9.example",
        T,
    );
    let host = a.directory().host(ip("10.0.0.9")).expect("host added");
    assert_eq!(host.hostname.as_deref(), Some("mail9.example"));
    // An existing host's name is not changed by a later HOST line.
    line(
        &mut a,
        c1,
        "HOST\t127.0.0.2\t9090\t2\t10.0.0.9\t50\t\tU0\tother.example",
        T,
    );
    let host = a.directory().host(ip("10.0.0.9")).expect("host kept");
    assert_eq!(
        (host.vhost_count, host.hostname.as_deref()),
        (50, Some("mail9.example"))
    );
}
