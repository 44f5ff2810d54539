//! Ring user updates (`ring-protocol.md` §8.1).

use super::{ip, ok, three_hosts};
use crate::state::*;

const NOW: u64 = 1_000_000;

fn applied(r: RemoteRefresh) -> (UserKey, bool, bool, bool, Option<Conflict>) {
    match r {
        RemoteRefresh::Applied {
            key,
            changed,
            forced,
            weakness_cleared,
            conflict,
        } => (key, changed, forced, weakness_cleared, conflict),
        other => panic!("expected Applied, got {other:?}"),
    }
}

/// A directory (expire 900 s) with user 7 on 10.0.0.2, refreshed at `ts`.
fn with_user(ts: u64) -> (Directory, UserKey) {
    let mut d = three_hosts(900);
    let r = d.user_refresh_remote(7, ip("10.0.0.2"), Some(ts), false, ts);
    let (key, changed, ..) = applied(r);
    assert!(changed);
    (d, key)
}

fn host(d: &Directory, key: UserKey) -> std::net::IpAddr {
    let u = d.user(key).unwrap();
    d.hosts().get(u.host).ip
}

#[test]
fn unknown_host_and_expired_updates_are_ignored() {
    let mut d = three_hosts(900);
    assert_eq!(
        d.user_refresh_remote(7, ip("10.9.9.9"), Some(NOW), false, NOW),
        RemoteRefresh::UnknownHost
    );
    assert_eq!(
        d.user_refresh_remote(7, ip("10.0.0.1"), Some(NOW - 900), false, NOW),
        RemoteRefresh::Expired
    );
    assert_eq!(d.user_count(), 0);
    // One second younger is still alive: added with the sender's timestamp.
    let (key, ..) = applied(d.user_refresh_remote(7, ip("10.0.0.1"), Some(NOW - 899), false, NOW));
    assert_eq!(d.user(key).unwrap().timestamp, NOW - 899);
    // Timestamps from the future are clamped to now; a weak update adds a weak user.
    let (key, ..) = applied(d.user_refresh_remote(8, ip("10.0.0.1"), Some(NOW + 50), true, NOW));
    let u = d.user(key).unwrap();
    assert_eq!((u.timestamp, u.weak), (NOW, true));
    ok(&d);
}

#[test]
fn same_host_only_moves_timestamps_forward() {
    let (mut d, key) = with_user(NOW - 100);
    let r = applied(d.user_refresh_remote(7, ip("10.0.0.2"), Some(NOW - 200), false, NOW));
    assert!(
        !r.1,
        "an older timestamp changes nothing (and is not forwarded)"
    );
    let r = applied(d.user_refresh_remote(7, ip("10.0.0.2"), Some(NOW - 100), false, NOW));
    assert!(
        !r.1,
        "the same timestamp changes nothing: this ends USER loops"
    );
    let r = applied(d.user_refresh_remote(7, ip("10.0.0.2"), Some(NOW - 50), false, NOW));
    assert!(r.1);
    assert_eq!(d.user(key).unwrap().timestamp, NOW - 50);
    ok(&d);
}

#[test]
fn timestampless_updates_must_be_clearly_newer() {
    // min(900/4, 15) = 15 s.
    let (mut d, key) = with_user(NOW - 15);
    assert!(!applied(d.user_refresh_remote(7, ip("10.0.0.2"), None, false, NOW)).1);
    let (mut d, _) = with_user(NOW - 16);
    assert!(applied(d.user_refresh_remote(7, ip("10.0.0.2"), None, false, NOW)).1);
    assert_eq!(d.user(key).unwrap().timestamp, NOW);
}

#[test]
fn conflicts_keep_the_lower_ip() {
    // Higher IP offered: keep ours, tell the sender (changed), kick except ours.
    let (mut d, key) = with_user(NOW - 10);
    let (_, changed, forced, _, conflict) =
        applied(d.user_refresh_remote(7, ip("10.0.0.3"), Some(NOW - 5), false, NOW));
    assert!(changed && !forced);
    let c = conflict.unwrap();
    assert_eq!(
        (c.old_host, c.new_host, c.kept),
        (ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.2"))
    );
    assert_eq!(c.old_timestamp, NOW - 10);
    assert_eq!(host(&d, key), ip("10.0.0.2"));
    // Lower IP offered: switch, forced (our USER goes back to the sender too).
    let (_, changed, forced, _, conflict) =
        applied(d.user_refresh_remote(7, ip("10.0.0.1"), Some(NOW - 5), false, NOW));
    assert!(changed && forced);
    assert_eq!(conflict.unwrap().kept, ip("10.0.0.1"));
    assert_eq!(host(&d, key), ip("10.0.0.1"));
    let counts: Vec<u32> = d.host_list().map(|h| h.user_count).collect();
    assert_eq!(counts, [1, 0, 0]);
    ok(&d);
}

#[test]
fn near_expiring_and_moving_users() {
    // Near expiring (older than expire - 30 s): take the other host without a conflict.
    let (mut d, key) = with_user(NOW - 871);
    let (_, changed, forced, _, conflict) =
        applied(d.user_refresh_remote(7, ip("10.0.0.3"), Some(NOW), false, NOW));
    assert!(changed && !forced && conflict.is_none());
    assert_eq!(host(&d, key), ip("10.0.0.3"));
    // Exactly at the window's edge it is not near expiring yet: a conflict.
    let (mut d, _) = with_user(NOW - 870);
    let r = applied(d.user_refresh_remote(7, ip("10.0.0.3"), Some(NOW), false, NOW));
    assert!(r.4.is_some());
    // Being moved: keep our host, no conflict.
    let (mut d, key) = with_user(NOW - 10);
    let UserMoveOutcome::Moved(_) = d.user_move(7, ip("10.0.0.3"), NOW) else {
        panic!("move did not start");
    };
    let (_, changed, _, _, conflict) =
        applied(d.user_refresh_remote(7, ip("10.0.0.1"), Some(NOW), false, NOW));
    assert!(!changed && conflict.is_none());
    assert_eq!(host(&d, key), ip("10.0.0.3"));
    ok(&d);
}

#[test]
fn weak_updates() {
    // Not recently updated (older than expire/2): becomes weak and takes the new host.
    let (mut d, key) = with_user(NOW - 451);
    let (_, changed, ..) = applied(d.user_refresh_remote(7, ip("10.0.0.3"), Some(NOW), true, NOW));
    assert!(changed);
    let u = d.user(key).unwrap();
    assert!(u.weak);
    assert_eq!(host(&d, key), ip("10.0.0.3"));
    // A non-weak update for a weak user clears the weakness and sets the host.
    let (_, changed, _, cleared, _) =
        applied(d.user_refresh_remote(7, ip("10.0.0.1"), Some(NOW), false, NOW));
    assert!(changed && cleared);
    assert!(!d.user(key).unwrap().weak);
    assert_eq!(host(&d, key), ip("10.0.0.1"));
    // Recently updated: keep ours, but report a change so our USER overrides the weakness.
    let (mut d, key) = with_user(NOW - 450);
    let (_, changed, ..) = applied(d.user_refresh_remote(7, ip("10.0.0.3"), Some(NOW), true, NOW));
    assert!(changed);
    assert!(!d.user(key).unwrap().weak);
    assert_eq!(host(&d, key), ip("10.0.0.2"));
    ok(&d);
}

#[test]
fn handshake_users_only_grow_and_get_sorted() {
    let mut d = three_hosts(900);
    d.user_refresh_handshake(1, ip("10.0.0.1"), NOW - 10, false, NOW);
    d.user_refresh_handshake(2, ip("10.0.0.1"), NOW + 100, false, NOW);
    d.user_refresh_handshake(3, ip("10.0.0.2"), NOW - 300, false, NOW);
    let ts = |d: &Directory, h| d.user(UserKey { tag: 0, hash: h }).unwrap().timestamp;
    assert_eq!(ts(&d, 2), NOW, "future timestamps are cut to now");
    d.user_refresh_handshake(1, ip("10.0.0.1"), NOW - 20, false, NOW);
    assert_eq!(ts(&d, 1), NOW - 10, "never goes backwards");
    assert_eq!(
        d.user_refresh_handshake(9, ip("10.0.0.1"), NOW - 900, false, NOW),
        RemoteRefresh::Expired
    );
    d.sort_users();
    let order: Vec<u32> = d.tags()[0].users.iter().map(|u| u.hash).collect();
    assert_eq!(order, [3, 1, 2]);
    ok(&d);
}

fn remote(ip_s: &str, vhosts: u32, tag: &str, down: bool, at: u64) -> RemoteHost {
    RemoteHost {
        ip: ip(ip_s),
        vhost_count: vhosts,
        tag: Tag::from(tag),
        down,
        last_updown_change: at,
        hostname: None,
    }
}

fn changed(o: RemoteHostOutcome) -> (bool, Option<Tag>, Option<String>) {
    match o {
        RemoteHostOutcome::Changed {
            created,
            tag_changed_from,
            warning,
        } => (created, tag_changed_from, warning),
        RemoteHostOutcome::Unchanged => panic!("expected a change"),
    }
}

/// `ring-protocol.md` §7.2.
#[test]
fn remote_host_updates() {
    let mut d = three_hosts(900);
    // Unknown host: created; a new host arriving up keeps last_updown_change 0.
    let (created, ..) = changed(d.host_apply_remote(remote("10.0.0.4", 50, "", false, 77), true));
    assert!(created);
    let h = d.host(ip("10.0.0.4")).unwrap();
    assert_eq!(
        (h.vhost_count, h.down, h.last_updown_change, h.desynced),
        (50, false, 0, true)
    );
    d.clear_desynced();
    // Only the timestamp differs: not a change, not forwarded.
    assert_eq!(
        d.host_apply_remote(remote("10.0.0.1", 100, "", false, 123), true),
        RemoteHostOutcome::Unchanged
    );
    assert_eq!(d.host(ip("10.0.0.1")).unwrap().last_updown_change, 0);
    // Down: the timestamp is stored with the flip, and never shrinks afterwards.
    changed(d.host_apply_remote(remote("10.0.0.1", 100, "", true, 500), false));
    let h = d.host(ip("10.0.0.1")).unwrap();
    assert_eq!(
        (h.down, h.last_updown_change, h.desynced),
        (true, 500, false)
    );
    changed(d.host_apply_remote(remote("10.0.0.1", 100, "", false, 400), false));
    let h = d.host(ip("10.0.0.1")).unwrap();
    assert_eq!((h.down, h.last_updown_change), (false, 500));
    ok(&d);
}

#[test]
fn remote_tag_change_drops_users() {
    let mut d = three_hosts(900);
    for hash in [1669653170u32, 2677887420, 2845841792] {
        d.request_host(&Tag::default(), hash, NOW);
    }
    assert!(d.host(ip("10.0.0.2")).unwrap().user_count > 0);
    let (_, from, warning) =
        changed(d.host_apply_remote(remote("10.0.0.2", 100, "x", false, 0), true));
    assert_eq!((from, warning), (Some(Tag::default()), None));
    let h = d.host(ip("10.0.0.2")).unwrap();
    assert_eq!((h.user_count, h.tag.clone()), (0, Tag::from("x")));
    assert_eq!(d.choose(&Tag::from("x"), 1), Some(ip("10.0.0.2")));
    ok(&d);
}

#[test]
fn concurrent_host_updates_keep_the_newer_state() {
    let mut d = three_hosts(900);
    // We set 10.0.0.1 down at 1000 (not yet synced); a peer says up as of 900, 40 vhosts.
    d.host_down(ip("10.0.0.1"), 1000);
    d.set_desynced(ip("10.0.0.1"), true).unwrap();
    let (_, _, warning) =
        changed(d.host_apply_remote(remote("10.0.0.1", 40, "", false, 900), true));
    assert_eq!(
        warning.as_deref(),
        Some("Host 10.0.0.1 is being updated before previous update had finished (vhosts 100 -> 40) - setting to state=down vhosts=40")
    );
    let h = d.host(ip("10.0.0.1")).unwrap();
    assert_eq!(
        (h.down, h.vhost_count, h.last_updown_change),
        (true, 40, 1000)
    );
    // A newer up from the peer wins, and the smaller vhost count is kept.
    let (_, _, warning) =
        changed(d.host_apply_remote(remote("10.0.0.1", 60, "", false, 1100), true));
    assert_eq!(
        warning.as_deref(),
        Some("Host 10.0.0.1 is being updated before previous update had finished (down -> up, vhosts 40 -> 60) - setting to state=up vhosts=40")
    );
    let h = d.host(ip("10.0.0.1")).unwrap();
    assert_eq!(
        (h.down, h.vhost_count, h.last_updown_change),
        (false, 40, 1100)
    );
    ok(&d);
}

const RING: RingView = RingView {
    handshaked: true,
    synced: true,
    have_right: true,
    weak_users: true,
};

/// `auth-proxy.md` §5 and `ring-protocol.md` §8.2.
#[test]
fn ring_requests_wait_for_the_ring() {
    let t = Tag::default();
    let mut d = three_hosts(900);
    let alice = 1669653170; // → 10.0.0.2 with all up (user-directory.md §4.1)
    let unsynced = RingView {
        synced: false,
        ..RING
    };
    assert_eq!(
        d.request_host_ring(
            &t,
            alice,
            NOW,
            RingView {
                handshaked: false,
                ..RING
            }
        ),
        RingRequestOutcome::Delay(DelayReason::RingNotHandshaked)
    );
    assert_eq!(
        d.request_host_ring(&t, alice, NOW, unsynced),
        RingRequestOutcome::Delay(DelayReason::RingNotSynced)
    );
    assert_eq!(
        d.request_host_ring(&Tag::from("none"), alice, NOW, RING),
        RingRequestOutcome::Delay(DelayReason::NoHosts)
    );
    assert_eq!(
        d.request_host_ring(&t, alice, NOW, RING),
        RingRequestOutcome::Host(ip("10.0.0.2"))
    );
    // An existing entry is served while unsynced (only new users wait).
    assert_eq!(
        d.request_host_ring(&t, alice, NOW + 1, unsynced),
        RingRequestOutcome::Host(ip("10.0.0.2"))
    );
    ok(&d);
}

#[test]
fn near_expiry_with_a_changed_ring_makes_the_user_weak() {
    let t = Tag::default();
    let mut d = three_hosts(900);
    let alice = 1669653170;
    d.request_host_ring(&t, alice, NOW, RING);
    // 10.0.0.2 down: the ring would now pick 10.0.0.3 (§4.1 ".2 down").
    d.host_down(ip("10.0.0.2"), NOW);
    // Not near expiry yet: served from the entry.
    assert_eq!(
        d.request_host_ring(&t, alice, NOW + 100, RING),
        RingRequestOutcome::Host(ip("10.0.0.2"))
    );
    let late = NOW + 100 + 871;
    assert_eq!(
        d.request_host_ring(
            &t,
            alice,
            late,
            RingView {
                synced: false,
                ..RING
            }
        ),
        RingRequestOutcome::Delay(DelayReason::RingNotSynced)
    );
    let RingRequestOutcome::MadeWeak { key, host } = d.request_host_ring(&t, alice, late, RING)
    else {
        panic!("expected the user to become weak");
    };
    assert_eq!(host, ip("10.0.0.2"));
    assert!(d.user(key).unwrap().weak);
    assert_eq!(
        d.request_host_ring(&t, alice, late, RING),
        RingRequestOutcome::Delay(DelayReason::Weak)
    );
    // Our USER-WEAK came back round: the non-weak update clears it and moves the user.
    let r = d.user_refresh_remote(alice, ip("10.0.0.3"), Some(late), false, late);
    assert!(matches!(
        r,
        RemoteRefresh::Applied {
            weakness_cleared: true,
            ..
        }
    ));
    assert_eq!(
        d.request_host_ring(&t, alice, late, RING),
        RingRequestOutcome::Host(ip("10.0.0.3"))
    );
    // Alone and synced: weakness is dropped and the user served.
    d.set_user_weak(key, true);
    let alone = RingView {
        have_right: false,
        ..RING
    };
    assert_eq!(
        d.request_host_ring(&t, alice, late, alone),
        RingRequestOutcome::Host(ip("10.0.0.3"))
    );
    assert!(!d.user(key).unwrap().weak);
    // Being moved: wait.
    let UserMoveOutcome::Moved(_) = d.user_move(alice, ip("10.0.0.1"), late) else {
        panic!("move did not start");
    };
    assert_eq!(
        d.request_host_ring(&t, alice, late, RING),
        RingRequestOutcome::Delay(DelayReason::Kill)
    );
    ok(&d);
}
