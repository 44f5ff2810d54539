//! Tests of the directory core against the spec's verified vectors and stated behaviour.

use super::*;
use crate::mail_hosts::MailHostSpec;
use crate::username_hash::UsernameHash;
use std::net::IpAddr;

mod moves;
mod proptests;
mod remote;

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(super) fn spec(s: &str, tag: &str) -> MailHostSpec {
    MailHostSpec {
        ip: ip(s),
        tag: Tag::from(tag),
        hostname: None,
    }
}

pub(super) fn three_hosts(expire: u32) -> Directory {
    Directory::new(
        vec![
            spec("10.0.0.1", ""),
            spec("10.0.0.2", ""),
            spec("10.0.0.3", ""),
        ],
        expire,
    )
}

pub(super) fn ok(d: &Directory) {
    d.check_invariants().unwrap();
}

pub(super) fn host_of(d: &mut Directory, hash: u32, now: u64) -> Option<IpAddr> {
    d.user_lookup(hash, &Tag::default(), now)
        .0
        .map(|(ip, _)| ip)
}

/// `user-directory.md` §4.1 [verified on the real director]: user, hash, then the chosen
/// host with all up (base), 10.0.0.2 down, vhosts 200/100/50, and with 10.0.0.4 added.
const ASSIGNMENTS: &[(&str, u32, [&str; 4])] = &[
    (
        "alice",
        1669653170,
        ["10.0.0.2", "10.0.0.3", "10.0.0.2", "10.0.0.4"],
    ),
    (
        "bob",
        2677887420,
        ["10.0.0.2", "10.0.0.3", "10.0.0.2", "10.0.0.2"],
    ),
    ("Alice@Example.COM", 3244357836, ["10.0.0.1"; 4]),
    (
        "john@example.com",
        3569829268,
        ["10.0.0.3", "10.0.0.3", "10.0.0.1", "10.0.0.4"],
    ),
    ("user1", 617210206, ["10.0.0.3"; 4]),
    (
        "user2",
        2119751227,
        ["10.0.0.3", "10.0.0.3", "10.0.0.1", "10.0.0.3"],
    ),
    (
        "carol",
        2845841792,
        ["10.0.0.2", "10.0.0.3", "10.0.0.2", "10.0.0.2"],
    ),
    (
        "dave",
        370180999,
        ["10.0.0.2", "10.0.0.3", "10.0.0.2", "10.0.0.2"],
    ),
    ("eve", 4201288175, ["10.0.0.1"; 4]),
    (
        "info@example.net",
        3921434762,
        ["10.0.0.2", "10.0.0.1", "10.0.0.1", "10.0.0.2"],
    ),
    (
        "user620",
        4294407931,
        ["10.0.0.3", "10.0.0.3", "10.0.0.1", "10.0.0.3"],
    ),
    (
        "user591",
        1620292,
        ["10.0.0.3", "10.0.0.3", "10.0.0.1", "10.0.0.3"],
    ),
    (
        "tom.smith@mail.example.org",
        1707703172,
        ["10.0.0.2", "10.0.0.3", "10.0.0.1", "10.0.0.4"],
    ),
    (
        "a",
        214005177,
        ["10.0.0.2", "10.0.0.1", "10.0.0.2", "10.0.0.2"],
    ),
    (
        "",
        3558706393,
        ["10.0.0.2", "10.0.0.3", "10.0.0.2", "10.0.0.2"],
    ),
    ("ÄÖ@exämple.com", 2434408683, ["10.0.0.3"; 4]),
];

#[test]
fn assignment_vectors_all_columns() {
    let hash = UsernameHash::default();
    let t = Tag::default();
    let now = 1_000_000;
    for (column, setup) in ["base", ".2 down", "200/100/50", "+.4"].iter().enumerate() {
        let mut d = three_hosts(900);
        match column {
            1 => assert_eq!(d.host_down(ip("10.0.0.2"), now), UpDownOutcome::Ok),
            2 => {
                for (h, v) in [("10.0.0.1", 200), ("10.0.0.3", 50)] {
                    assert_eq!(d.host_set(ip(h), None, Some(v), now), HostSetOutcome::Ok);
                }
            }
            3 => assert_eq!(
                d.host_set(ip("10.0.0.4"), None, None, now),
                HostSetOutcome::Ok
            ),
            _ => {}
        }
        ok(&d);
        for &(user, want_hash, hosts) in ASSIGNMENTS {
            let h = hash.hash(user.as_bytes());
            assert_eq!(h, want_hash, "{user:?}");
            let want = ip(hosts[column]);
            assert_eq!(d.choose(&t, h), Some(want), "{user:?} in {setup}");
            let (current, hashed, initial) = d.user_lookup(h, &t, now);
            assert_eq!((current, hashed), (None, Some(want)), "{user:?} in {setup}");
            // The third column always uses the startup configuration (all up, 100 vhosts).
            assert_eq!(initial, Some(ip(hosts[0])), "{user:?} in {setup}");
            assert_eq!(d.request_host(&t, h, now), RequestOutcome::Host(want));
            ok(&d);
        }
    }
}

/// The base-column-only rows and the `%Ln` / `%Ld` notes of §4.1.
#[test]
fn assignment_vectors_base_only_and_other_formats() {
    let d = three_hosts(900);
    let t = Tag::default();
    let h = UsernameHash::default();
    assert_eq!(h.hash(b"alice*master"), 3053839850);
    assert_eq!(d.choose(&t, 3053839850), Some(ip("10.0.0.1")));
    assert_eq!(h.hash(b"u1"), 3833023709);
    assert_eq!(d.choose(&t, 3833023709), Some(ip("10.0.0.1")));
    let n = UsernameHash::new("%Ln").unwrap().hash(b"Alice@Example.COM");
    assert_eq!(d.choose(&t, n), Some(ip("10.0.0.2")));
    let dom = UsernameHash::new("%Ld").unwrap().hash(b"Alice@Example.COM");
    assert_eq!(dom, 1522187616);
    assert_eq!(d.choose(&t, dom), Some(ip("10.0.0.3")));
}

/// `ring-protocol.md` §7.4 vectors seen on real directors with 127.0.1.1-3.
#[test]
fn ring_protocol_vectors() {
    let mut d = Directory::new(
        vec![
            spec("127.0.1.1", ""),
            spec("127.0.1.2", ""),
            spec("127.0.1.3", ""),
        ],
        900,
    );
    let t = Tag::default();
    let h = UsernameHash::default();
    for (user, want) in [
        ("user01", "127.0.1.3"),
        ("user03", "127.0.1.1"),
        ("user04", "127.0.1.2"),
        ("alice@example.com", "127.0.1.1"),
        ("Bob", "127.0.1.2"),
        ("nosuchuser", "127.0.1.2"),
    ] {
        assert_eq!(
            d.choose(&t, h.hash(user.as_bytes())),
            Some(ip(want)),
            "{user}"
        );
    }
    assert_eq!(h.hash(b"user01"), 3075933655);
    assert_eq!(h.hash(b"user03"), 2815660099);
    assert_eq!(d.hosts_hash(), 1410458694);
    d.host_down(ip("127.0.1.1"), 5);
    d.host_set(ip("127.0.1.4"), None, Some(10), 5);
    assert_eq!(d.choose(&t, h.hash(b"user03")), Some(ip("127.0.1.2")));
    ok(&d);
}

#[test]
fn tagged_rings_are_separate() {
    let mut d = Directory::new(
        vec![
            spec("10.0.0.1", ""),
            spec("10.0.1.1", "tagA"),
            spec("10.0.1.2", "tagA"),
        ],
        900,
    );
    let a = Tag::from("tagA");
    for hash in [1, 1669653170, 4294967295] {
        assert_eq!(d.choose(&Tag::default(), hash), Some(ip("10.0.0.1")));
        assert!(d.choose(&a, hash).unwrap() != ip("10.0.0.1"));
    }
    // The same hash lives independently in both tags.
    assert!(matches!(
        d.request_host(&a, 7, 100),
        RequestOutcome::Host(_)
    ));
    assert_eq!(
        d.request_host(&Tag::default(), 7, 100),
        RequestOutcome::Host(ip("10.0.0.1"))
    );
    assert_eq!(d.user_count(), 2);
    // Unknown tag: `\t0\t\t\n` in USER-LOOKUP and no host for requests.
    let nosuch = Tag::from("nosuch");
    assert_eq!(d.user_lookup(7, &nosuch, 100), (None, None, None));
    assert_eq!(d.request_host(&nosuch, 7, 100), RequestOutcome::NoHost);
    // Tag order = creation order: config first, then HOST-SET.
    d.host_set(ip("10.0.2.1"), Some(&Tag::from("b")), None, 100);
    let names: Vec<&Tag> = d.tags().iter().map(|t| &t.name).collect();
    assert_eq!(names, [&Tag::default(), &a, &Tag::from("b")]);
    // A tag whose hosts are all gone keeps existing but chooses nothing.
    d.host_remove(ip("10.0.2.1")).unwrap();
    assert_eq!(d.tags().len(), 3);
    assert_eq!(
        d.request_host(&Tag::from("b"), 7, 100),
        RequestOutcome::NoHost
    );
    ok(&d);
}

#[test]
fn expiry_refresh_and_listing_order() {
    let mut d = three_hosts(900);
    let t = Tag::default();
    d.request_host(&t, 11, 1000);
    d.request_host(&t, 22, 1001);
    d.request_host(&t, 33, 1002);
    // A lookup refreshes and moves the entry to the end.
    d.request_host(&t, 11, 1003);
    ok(&d);
    let list = d.user_list(None, 1003);
    let order: Vec<u32> = list.iter().map(|e| e.0).collect();
    assert_eq!(order, [22, 33, 11]);
    assert_eq!(
        list[2].1,
        1003 + 900,
        "expire = timestamp + director_user_expire"
    );
    assert_eq!(d.next_expiry(1003), Some(1001 + 900));
    // Alive while now < timestamp + expire.
    assert!(host_of(&mut d, 22, 1900).is_some());
    assert!(host_of(&mut d, 22, 1901).is_none());
    assert_eq!(d.user_count(), 2);
    // USER-LIST purges first.
    let order: Vec<u32> = d.user_list(None, 1902).iter().map(|e| e.0).collect();
    assert_eq!(order, [11]);
    let users: u32 = d.host_list().map(|h| h.user_count).sum();
    assert_eq!(users, 1);
    // Notify refreshes too.
    assert_eq!(d.notify_refresh(11, 1902).len(), 1);
    assert!(d.notify_refresh(99, 1902).is_empty());
    assert_eq!(d.user_list(None, 1902)[0].1, 2802);
    assert!(
        d.notify_refresh(11, 2802).is_empty(),
        "expired entries are not refreshed"
    );
    d.purge_expired(2900);
    assert_eq!(d.user_count(), 0);
    assert_eq!(d.next_expiry(2900), None);
    ok(&d);
}

#[test]
fn user_list_filters_by_host_and_walks_tags_in_order() {
    let mut d = Directory::new(vec![spec("10.0.0.1", "x"), spec("10.0.0.2", "")], 600);
    d.request_host(&Tag::default(), 5, 10);
    d.request_host(&Tag::from("x"), 6, 11);
    let all = d.user_list(None, 12);
    assert_eq!(
        all,
        [(6, 611, ip("10.0.0.1")), (5, 610, ip("10.0.0.2"))],
        "tag `x` was created first (config order)"
    );
    assert_eq!(
        d.user_list(Some(ip("10.0.0.2")), 12),
        [(5, 610, ip("10.0.0.2"))]
    );
    assert!(d.user_list(Some(ip("10.9.9.9")), 12).is_empty());
}

#[test]
fn down_host_keeps_its_users() {
    let mut d = three_hosts(900);
    let t = Tag::default();
    // alice → 10.0.0.2 (§4.1 base); after HOST-DOWN she still goes there until expiry.
    assert_eq!(
        d.request_host(&t, 1669653170, 100),
        RequestOutcome::Host(ip("10.0.0.2"))
    );
    assert_eq!(d.host_down(ip("10.0.0.2"), 150), UpDownOutcome::Ok);
    assert_eq!(d.host_down(ip("10.0.0.2"), 160), UpDownOutcome::Unchanged);
    assert_eq!(d.host(ip("10.0.0.2")).unwrap().last_updown_change, 150);
    assert_eq!(
        d.request_host(&t, 1669653170, 200),
        RequestOutcome::Host(ip("10.0.0.2"))
    );
    let (cur, hashed, _) = d.user_lookup(1669653170, &t, 200);
    assert_eq!(cur, Some((ip("10.0.0.2"), 1100)));
    assert_eq!(hashed, Some(ip("10.0.0.3")));
    // Flush forgets, and the next request uses the ring.
    assert_eq!(d.host_flush(Some(ip("10.0.0.2"))), Ok(1));
    assert_eq!(
        d.request_host(&t, 1669653170, 201),
        RequestOutcome::Host(ip("10.0.0.3"))
    );
    assert_eq!(d.host_up(ip("10.0.0.9"), 1), UpDownOutcome::NotFound);
    assert_eq!(d.host_up(ip("10.0.0.2"), 300), UpDownOutcome::Ok);
    assert_eq!(d.host(ip("10.0.0.2")).unwrap().last_updown_change, 300);
    ok(&d);
}

#[test]
fn host_set_rules() {
    let mut d = three_hosts(900);
    let one = ip("10.0.0.1");
    assert_eq!(
        d.host_set(one, None, Some(1001), 1),
        HostSetOutcome::VhostCountTooLarge
    );
    assert_eq!(d.host_set(one, None, Some(1000), 1), HostSetOutcome::Ok);
    assert_eq!(d.host(one).unwrap().vhost_count, 1000);
    // No count: a valid no-op.
    assert_eq!(d.host_set(one, None, None, 1), HostSetOutcome::Ok);
    assert_eq!(d.host(one).unwrap().vhost_count, 1000);
    // An empty tag never conflicts; a different one does.
    assert_eq!(
        d.host_set(one, Some(&Tag::default()), Some(0), 1),
        HostSetOutcome::Ok
    );
    assert_eq!(
        d.host_set(one, Some(&Tag::from("t")), None, 1),
        HostSetOutcome::TagCantChange
    );
    assert_eq!(
        d.host_update(ip("10.0.0.9"), None, 5, 1),
        HostSetOutcome::NotFound
    );
    d.set_desynced(one, true).unwrap();
    assert_eq!(d.host_update(one, None, 5, 1), HostSetOutcome::BeingUpdated);
    assert_eq!(d.host_down(one, 1), UpDownOutcome::BeingUpdated);
    d.clear_desynced();
    // vhost_count 0: listed, no new users.
    assert!(d.tags()[0].ring.points().iter().all(|p| p.1 != one));
    let new = ip("2001:db8::1");
    assert_eq!(
        d.host_set(new, Some(&Tag::from("v6")), None, 1),
        HostSetOutcome::Ok
    );
    let h = d.host(new).unwrap();
    assert_eq!(
        (h.vhost_count, h.down, h.last_updown_change),
        (100, false, 0)
    );
    assert_eq!(h.tag, Tag::from("v6"));
    let order: Vec<String> = d.host_list().map(|h| h.ip.to_string()).collect();
    assert_eq!(order, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1"]);
    ok(&d);
}

#[test]
fn host_remove_and_flush_forget_users() {
    let mut d = three_hosts(900);
    let t = Tag::default();
    for hash in 1..=30u32 {
        d.request_host(&t, hash.wrapping_mul(143_165_577), 10);
    }
    let on2 = d.host(ip("10.0.0.2")).unwrap().user_count as usize;
    assert_eq!(d.host_remove(ip("10.0.0.2")), Ok(on2));
    assert_eq!(d.host_remove(ip("10.0.0.2")), Err(HostNotFound));
    assert_eq!(d.user_count(), 30 - on2);
    ok(&d);
    assert_eq!(d.host_flush(None), Ok(30 - on2));
    assert_eq!(d.user_count(), 0);
    assert_eq!(d.host_flush(Some(ip("10.0.0.2"))), Err(HostNotFound));
    ok(&d);
}

#[test]
fn weak_users_get_grace_and_standalone_clears_weakness() {
    let mut d = three_hosts(60);
    let t = Tag::default();
    d.request_host(&t, 42, 1000);
    let key = UserKey { tag: 0, hash: 42 };
    d.set_user_weak(key, true);
    // Expired at 1060, but a weak user stays until expire + 30.
    assert!(host_of(&mut d, 42, 1089).is_some());
    assert_eq!(d.next_expiry(1061), Some(1090));
    assert!(host_of(&mut d, 42, 1090).is_none());
    d.request_host(&t, 42, 2000);
    d.set_user_weak(key, true);
    assert!(matches!(
        d.request_host(&t, 42, 2001),
        RequestOutcome::Host(_)
    ));
    assert!(!d.user(key).unwrap().weak);
    ok(&d);
}

#[test]
fn near_expiry_window() {
    let d = three_hosts(900);
    assert_eq!(d.near_expiring_secs(), 30);
    assert_eq!(three_hosts(100).near_expiring_secs(), 10);
    assert_eq!(three_hosts(10).near_expiring_secs(), 3);
}

#[test]
fn ring_tag_change_forgets_users_of_old_tag() {
    let mut d = three_hosts(900);
    let t = Tag::default();
    for hash in [1669653170u32, 2677887420, 2845841792] {
        d.request_host(&t, hash, 10);
    }
    let n = d.host(ip("10.0.0.2")).unwrap().user_count as usize;
    assert!(n > 0);
    assert_eq!(d.set_host_tag(ip("10.0.0.2"), &Tag::from("new")), Ok(n));
    assert_eq!(d.host(ip("10.0.0.2")).unwrap().user_count, 0);
    assert_eq!(d.choose(&Tag::from("new"), 5), Some(ip("10.0.0.2")));
    ok(&d);
}

#[test]
fn remote_timestamps_are_clamped_and_ordered() {
    let mut d = three_hosts(900);
    let h1 = d.hosts().find(ip("10.0.0.1")).unwrap();
    assert!(d.add_user(0, 1, h1, 500, 1000));
    assert!(d.add_user(0, 2, h1, 2000, 1000));
    assert!(d.add_user(0, 3, h1, 300, 1000));
    assert!(!d.add_user(0, 3, h1, 300, 1000), "already there");
    assert!(!d.add_user(1, 4, h1, 300, 1000), "no such tag");
    assert!(d.lookup(7, 1, 1000).is_none(), "no such tag");
    assert_eq!(d.user(UserKey { tag: 0, hash: 2 }).unwrap().timestamp, 1000);
    let order: Vec<u32> = d.tags()[0].users.iter().map(|u| u.hash).collect();
    assert_eq!(order, [3, 1, 2]);
    d.refresh_user(UserKey { tag: 0, hash: 3 }, 5000, 1001);
    assert_eq!(d.user(UserKey { tag: 0, hash: 3 }).unwrap().timestamp, 1001);
    ok(&d);
}

#[test]
fn duplicate_configured_ip_is_kept_once() {
    let d = Directory::new(vec![spec("10.0.0.1", ""), spec("10.0.0.1", "")], 900);
    assert_eq!(d.host_list().count(), 1);
    ok(&d);
}
