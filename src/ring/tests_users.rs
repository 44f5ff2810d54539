//! User merge rules over the ring (`ring-protocol.md` §8.1-8.2): timestamps, lower-IP-wins
//! conflicts with USER-KICK-HASH, and weak users in a two-director ring (ab779efe68).

use super::tests::{connect_target, ip, line, lone_a, sent, sent_np, step, T};
use super::*;

/// A (127.0.0.1) paired with B (127.0.0.2): `c1` = B's connection to A (A's left), `c2` = A's
/// connection to B (A's right), ring synced.
pub(super) fn paired_a() -> (Ring, ConnId, ConnId) {
    let mut a = lone_a();
    let c1 = ConnId(1);
    let peer_ip = ip("127.0.0.2");
    step(
        &mut a,
        RingEvent::Connected {
            conn: c1,
            incoming: true,
            peer_ip,
        },
        T,
    );
    line(&mut a, c1, "VERSION\tdirector\t1\t9", T);
    let eff = line(&mut a, c1, "ME\t127.0.0.2\t9090\t1795953368", T);
    let (c2, _) = connect_target(&eff).unwrap();
    step(
        &mut a,
        RingEvent::Connected {
            conn: c2,
            incoming: false,
            peer_ip,
        },
        T,
    );
    for l in [
        "HOST-HAND-START\t0",
        "HOST-HAND-END\t0",
        "OPTIONS\tconsistent-hashing",
        "DONE",
    ] {
        line(&mut a, c1, l, T);
    }
    line(&mut a, c2, "VERSION\tdirector\t1\t9", T);
    line(&mut a, c2, "ME\t127.0.0.2\t9090\t1795953368", T);
    let eff = line(&mut a, c2, "DONE", T);
    let own = sent_np(&eff, c2)
        .into_iter()
        .find(|l| l.starts_with("SYNC\\t127.0.0.1"))
        .unwrap()
        .replace("\\t", "\t");
    line(&mut a, c1, &own, T);
    assert!(a.is_synced());
    assert_eq!(a.left_peer(), a.right_peer());
    (a, c1, c2)
}

fn user_host(r: &Ring, hash: u32) -> Option<(std::net::IpAddr, u64, bool)> {
    let d = r.directory();
    let u = d.tags()[0].users.get(hash)?;
    Some((d.hosts().get(u.host).ip, u.timestamp, u.weak))
}

#[test]
fn conflicting_users_lower_ip_wins_and_everyone_hears_it() {
    let (mut a, c1, c2) = paired_a();
    let t0 = T - 100;
    let eff = line(&mut a, c1, &format!("USER\t100\t10.0.0.2\t{t0}"), T);
    assert_eq!(user_host(&a, 100), Some((ip("10.0.0.2"), t0, false)));
    // A new user: forwarded except to the sender (in a 2-ring: nobody).
    assert!(sent_np(&eff, c1).is_empty() && sent_np(&eff, c2).is_empty());
    // A different host, not near expiry: the lower IP (the received one) wins, and the
    // received (newer) timestamp is stored, not now (§8.1 step 5).
    let t1 = T - 50;
    let eff = line(&mut a, c1, &format!("USER\t100\t10.0.0.1\t{t1}"), T);
    assert_eq!(user_host(&a, 100), Some((ip("10.0.0.1"), t1, false)));
    for c in [c1, c2] {
        assert_eq!(
            sent_np(&eff, c),
            [
                "USER-KICK-HASH\\t127.0.0.1\\t9090\\t1\\t100\\t10.0.0.1".to_string(),
                format!("USER\\t100\\t10.0.0.1\\t{t1}"),
            ]
        );
    }
    // The conflict's kick waits for nothing (unlike a move's kill).
    assert!(eff.contains(&RingEffect::KickHash {
        hash: 100,
        except: ip("10.0.0.1")
    }));
    // The higher IP loses; our host goes back to everyone, including the sender, with the
    // newer timestamp the losing line carried.
    let t2 = T - 40;
    let eff = line(&mut a, c2, &format!("USER\t100\t10.0.0.2\t{t2}"), T);
    assert_eq!(user_host(&a, 100), Some((ip("10.0.0.1"), t2, false)));
    assert!(sent_np(&eff, c2).contains(&format!("USER\\t100\\t10.0.0.1\\t{t2}")));
    // The same USER again changes nothing and is not forwarded (b3e36790ca).
    let eff = line(&mut a, c2, &format!("USER\t100\t10.0.0.1\t{t2}"), T);
    assert!(sent_np(&eff, c1).is_empty() && sent_np(&eff, c2).is_empty());
}

#[test]
fn user_timestamps_expired_ignored_future_clamped() {
    let (mut a, c1, _) = paired_a();
    // timestamp + expire <= now: ignored (154f917266).
    line(&mut a, c1, &format!("USER\t7\t10.0.0.1\t{}", T - 900), T);
    assert_eq!(user_host(&a, 7), None);
    // Never stored in the future (069d9f1da8).
    line(&mut a, c1, &format!("USER\t8\t10.0.0.1\t{}", T + 100), T);
    assert_eq!(user_host(&a, 8), Some((ip("10.0.0.1"), T, false)));
    // Unknown host: ignored silently, the connection stays.
    let eff = line(&mut a, c1, &format!("USER\t9\t10.9.9.9\t{T}"), T);
    assert_eq!(user_host(&a, 9), None);
    assert!(eff.iter().all(|e| !matches!(e, RingEffect::Close { .. })));
}

#[test]
fn weak_user_in_two_director_ring_is_echoed_on_the_other_connection() {
    let (mut a, c1, c2) = paired_a();
    // Near expiry (within 30 s of 900) and not recently updated.
    line(&mut a, c1, &format!("USER\t200\t10.0.0.1\t{}", T - 880), T);
    let weak = "USER-WEAK\t127.0.0.2\t9090\t1\t200\t10.0.0.1";
    let eff = line(&mut a, c1, weak, T);
    assert_eq!(user_host(&a, 200).map(|u| u.2), Some(true));
    // Broadcasting except B would send nothing: it goes back on the other connection.
    assert_eq!(sent_np(&eff, c2), [weak.replace('\t', "\\t")]);
    assert!(sent_np(&eff, c1).is_empty());
    // A USER for a weak user overrides it and clears the weakness.
    let eff = line(&mut a, c2, &format!("USER\t200\t10.0.0.2\t{T}"), T);
    assert_eq!(user_host(&a, 200), Some((ip("10.0.0.2"), T, false)));
    assert!(sent(&eff, c1).is_empty() && sent(&eff, c2).is_empty());
}

#[test]
fn login_near_expiry_on_another_host_goes_weak_until_it_comes_round() {
    let (mut a, c1, c2) = paired_a();
    // Find a user hash whose ring choice is 10.0.0.2, and pin it to 10.0.0.1, near expiry.
    let hash = (1..)
        .find(|h| a.directory().choose(&Default::default(), *h) == Some(ip("10.0.0.2")))
        .unwrap();
    line(
        &mut a,
        c1,
        &format!("USER\t{hash}\t10.0.0.1\t{}", T - 880),
        T,
    );
    let eff = step(
        &mut a,
        RingEvent::Login {
            tag: Default::default(),
            hash,
        },
        T,
    );
    assert!(eff.contains(&RingEffect::Routed {
        hash,
        routing: Routing::Wait(WaitReason::WeakUser)
    }));
    let weak = format!("USER-WEAK\\t127.0.0.1\\t9090\\t1\\t{hash}\\t10.0.0.1");
    assert_eq!(sent_np(&eff, c1), std::slice::from_ref(&weak));
    assert_eq!(sent_np(&eff, c2), std::slice::from_ref(&weak));
    // Our USER-WEAK came round: weakness cleared and a USER goes to everyone.
    let eff = line(&mut a, c1, &weak.replace("\\t", "\t"), T);
    let (host, ts, is_weak) = user_host(&a, hash).unwrap();
    assert!(!is_weak);
    assert_eq!(host, ip("10.0.0.1"));
    let user = format!("USER\\t{hash}\\t10.0.0.1\\t{ts}");
    assert_eq!(sent_np(&eff, c1), std::slice::from_ref(&user));
    assert_eq!(sent_np(&eff, c2), [user]);
}

/// lab/transcripts/ring-director-leaves.txt (real 2.3.19.1): the leaving director sends
/// `QUIT\tShutting down` on both connections; the other answers each with
/// `QUIT\tInvalid input: QUIT`, closes them and at once reconnects to it.
#[test]
fn quit_from_a_leaving_director_is_answered_and_we_reconnect() {
    let (mut a, c1, c2) = paired_a();
    let eff = line(&mut a, c1, "QUIT\tShutting down", T);
    assert_eq!(sent(&eff, c1), ["QUIT\\tInvalid input: QUIT"]);
    assert!(eff.iter().any(|e| matches!(e, RingEffect::Log { text, .. }
        if text == "Director 127.0.0.2:9090/left disconnected us with reason: Shutting down")));
    let eff = line(&mut a, c2, "QUIT\tShutting down", T);
    assert_eq!(sent(&eff, c2), ["QUIT\\tInvalid input: QUIT"]);
    assert!(eff.contains(&RingEffect::Close {
        conn: c2,
        reason: "Invalid input: QUIT".into()
    }));
    let (c3, to) = connect_target(&eff).expect("reconnects at once");
    assert_eq!(to, ip("127.0.0.2"));
    let eff = step(
        &mut a,
        RingEvent::Connected {
            conn: c3,
            incoming: false,
            peer_ip: to,
        },
        T,
    );
    assert_eq!(
        sent(&eff, c3),
        [
            "VERSION\\tdirector\\t1\\t9",
            "ME\\t127.0.0.1\\t9090\\t1795953368",
            "DIRECTOR\\t127.0.0.1\\t9090",
            "DIRECTOR\\t127.0.0.2\\t9090",
        ]
    );
    assert!(!a.is_synced());
}
