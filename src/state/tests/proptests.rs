//! Random operation sequences against [`Directory`], checking invariants after every step.

use super::{ip, spec};
use crate::state::*;
use proptest::prelude::*;
use std::net::IpAddr;

const IPS: &[&str] = &[
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.3",
    "10.0.0.4",
    "10.0.1.1",
    "2001:db8::1",
];
const TAGS: &[&str] = &["", "a", "b"];
const EXPIRE: u32 = 30;

#[derive(Clone, Debug)]
enum Op {
    HostSet(usize, Option<usize>, Option<u32>),
    HostUpdate(usize, Option<usize>, u32),
    HostDown(usize, bool),
    HostRemove(usize),
    HostFlush(Option<usize>),
    SetTag(usize, usize),
    Desynced(usize, bool),
    ClearDesynced,
    Request(usize, u32),
    Notify(u32),
    Lookup(usize, u32),
    List(Option<usize>),
    Move(u32, usize),
    KillFinished(u32, bool),
    FlushFinished(u32, bool),
    DelayFinished(u32),
    Timeout(u32),
    Weak(usize, u32, bool),
    Advance(u64),
    Purge,
    Remote(u32, usize, Option<u64>, bool),
    Handshake(u32, usize, u64, bool),
    SortUsers,
    RemoteHost(usize, u32, usize, bool, u64, bool),
    RingKillFinished(u32, bool, bool, bool),
    UserKilled(u32, bool, bool),
    KilledEverywhere(u32, bool),
    RingRequest(usize, u32, [bool; 4]),
}

/// Mostly small counts (each vhost is an MD5 in every invariant check), plus the limits.
fn vhosts() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..4, 1 => Just(100), 1 => Just(1000), 1 => Just(1001)]
}

fn hash() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..12, any::<u32>()]
}

fn op() -> impl Strategy<Value = Op> {
    let h = 0..IPS.len();
    let t = 0..TAGS.len();
    prop_oneof![
        1 => (h.clone(), proptest::option::of(t.clone()), proptest::option::of(vhosts()))
            .prop_map(|(a, b, c)| Op::HostSet(a, b, c)),
        1 => (h.clone(), proptest::option::of(t.clone()), vhosts())
            .prop_map(|(a, b, c)| Op::HostUpdate(a, b, c)),
        1 => (h.clone(), any::<bool>()).prop_map(|(a, b)| Op::HostDown(a, b)),
        1 => h.clone().prop_map(Op::HostRemove),
        1 => proptest::option::of(h.clone()).prop_map(Op::HostFlush),
        1 => (h.clone(), t.clone()).prop_map(|(a, b)| Op::SetTag(a, b)),
        1 => (h.clone(), any::<bool>()).prop_map(|(a, b)| Op::Desynced(a, b)),
        1 => Just(Op::ClearDesynced),
        4 => (t.clone(), hash()).prop_map(|(a, b)| Op::Request(a, b)),
        2 => hash().prop_map(Op::Notify),
        1 => (t.clone(), hash()).prop_map(|(a, b)| Op::Lookup(a, b)),
        1 => proptest::option::of(h.clone()).prop_map(Op::List),
        2 => (hash(), h).prop_map(|(a, b)| Op::Move(a, b)),
        1 => (0u32..12, any::<bool>()).prop_map(|(a, b)| Op::KillFinished(a, b)),
        1 => (0u32..12, any::<bool>()).prop_map(|(a, b)| Op::FlushFinished(a, b)),
        1 => (0u32..12).prop_map(Op::DelayFinished),
        1 => (0u32..12).prop_map(Op::Timeout),
        1 => (t, 0u32..12, any::<bool>()).prop_map(|(a, b, c)| Op::Weak(a, b, c)),
        3 => (0u64..50).prop_map(Op::Advance),
        1 => Just(Op::Purge),
        2 => (hash(), 0..IPS.len(), proptest::option::of(0u64..70), any::<bool>())
            .prop_map(|(a, b, c, d)| Op::Remote(a, b, c, d)),
        1 => (hash(), 0..IPS.len(), 0u64..70, any::<bool>())
            .prop_map(|(a, b, c, d)| Op::Handshake(a, b, c, d)),
        1 => Just(Op::SortUsers),
        1 => (0..IPS.len(), vhosts(), 0..TAGS.len(), any::<bool>(), 0u64..2_000_000, any::<bool>())
            .prop_map(|(a, b, c, d, e, f)| Op::RemoteHost(a, b, c, d, e, f)),
        1 => (0u32..12, any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(a, b, c, d)| Op::RingKillFinished(a, b, c, d)),
        1 => (0u32..12, any::<bool>(), any::<bool>()).prop_map(|(a, b, c)| Op::UserKilled(a, b, c)),
        1 => (0u32..12, any::<bool>()).prop_map(|(a, b)| Op::KilledEverywhere(a, b)),
        3 => (0..TAGS.len(), hash(), any::<[bool; 4]>()).prop_map(|(a, b, c)| Op::RingRequest(a, b, c)),
    ]
}

fn host_ip(i: usize) -> IpAddr {
    ip(IPS[i])
}

fn tag(i: usize) -> Tag {
    Tag::from(TAGS[i])
}

/// Every key of `hash` in any tag, for the move-completion operations.
fn keys(d: &Directory, hash: u32) -> Vec<UserKey> {
    (0..d.tags().len() as TagId)
        .map(|tag| UserKey { tag, hash })
        .filter(|k| d.user(*k).is_some())
        .collect()
}

fn apply(d: &mut Directory, now: &mut u64, op: &Op) {
    let n = *now;
    match *op {
        Op::HostSet(h, t, v) => {
            let t = t.map(tag);
            let before = d.host(host_ip(h)).cloned();
            let r = d.host_set(host_ip(h), t.as_ref(), v, n);
            if r == HostSetOutcome::Ok {
                let after = d.host(host_ip(h)).unwrap();
                if let Some(v) = v {
                    assert_eq!(after.vhost_count, v);
                }
                if let Some(b) = before {
                    assert_eq!(after.tag, b.tag, "HOST-SET never changes a tag");
                }
            }
        }
        Op::HostUpdate(h, t, v) => {
            let t = t.map(tag);
            let existed = d.host(host_ip(h)).is_some();
            let r = d.host_update(host_ip(h), t.as_ref(), v, n);
            assert_eq!(r == HostSetOutcome::NotFound, !existed && v <= 1000);
        }
        Op::HostDown(h, down) => {
            if d.host_set_down(host_ip(h), down, n) == UpDownOutcome::Ok {
                let host = d.host(host_ip(h)).unwrap();
                assert_eq!((host.down, host.last_updown_change), (down, n));
            }
        }
        Op::HostRemove(h) => {
            let users = d.host(host_ip(h)).map(|x| x.user_count as usize);
            assert_eq!(d.host_remove(host_ip(h)).ok(), users);
        }
        Op::HostFlush(h) => {
            let _ = d.host_flush(h.map(host_ip));
        }
        Op::SetTag(h, t) => {
            let _ = d.set_host_tag(host_ip(h), &tag(t));
        }
        Op::Desynced(h, v) => {
            let _ = d.set_desynced(host_ip(h), v);
        }
        Op::ClearDesynced => d.clear_desynced(),
        Op::Request(t, hash) => {
            let t = tag(t);
            let before = d.user_lookup(hash, &t, n).0;
            let choice = d.choose(&t, hash);
            match d.request_host(&t, hash, n) {
                RequestOutcome::Host(got) => {
                    // An existing entry wins over the ring; otherwise the ring decides.
                    assert_eq!(Some(got), before.map(|c| c.0).or(choice));
                    assert_eq!(
                        d.user_lookup(hash, &t, n).0,
                        Some((got, n + u64::from(EXPIRE)))
                    );
                }
                RequestOutcome::NoHost => assert!(before.is_none() && choice.is_none()),
                RequestOutcome::Busy => assert!(before.is_some()),
            }
        }
        Op::Notify(hash) => {
            d.notify_refresh(hash, n);
        }
        Op::Lookup(t, hash) => {
            let t = tag(t);
            if let (Some((_, expire)), _, _) = d.user_lookup(hash, &t, n) {
                let u = d
                    .user(UserKey {
                        tag: d.tag_id(&t).unwrap(),
                        hash,
                    })
                    .unwrap();
                assert!(expire > n || u.kill.is_some() || (u.weak && expire + 30 > n));
            }
        }
        Op::List(h) => {
            for (_, _, host) in d.user_list(h.map(host_ip), n) {
                assert!(matches_filter(h, host));
                assert!(d.host(host).is_some());
            }
        }
        Op::Move(hash, h) => {
            let _ = d.user_move(hash, host_ip(h), n);
        }
        Op::KillFinished(hash, flush) => {
            for k in keys(d, hash) {
                d.kill_finished(k, flush);
            }
        }
        Op::FlushFinished(hash, ok) => {
            for k in keys(d, hash) {
                d.flush_finished(k, ok);
            }
        }
        Op::DelayFinished(hash) => {
            for k in keys(d, hash) {
                d.move_delay_finished(k);
            }
        }
        Op::Timeout(hash) => {
            for k in keys(d, hash) {
                d.move_timed_out(k);
            }
        }
        Op::Weak(t, hash, weak) => {
            if let Some(t) = d.tag_id(&tag(t)) {
                d.set_user_weak(UserKey { tag: t, hash }, weak);
            }
        }
        Op::Advance(secs) => *now += secs,
        Op::Remote(hash, h, age, weak) => {
            // Ages up to 70 s against a 30 s expiry, and a few seconds into the future.
            let ts = age.map(|a| (n + 5).saturating_sub(a));
            if let RemoteRefresh::Applied { key, .. } =
                d.user_refresh_remote(hash, host_ip(h), ts, weak, n)
            {
                let u = d.user(key).unwrap();
                assert!(u.timestamp <= n, "never a timestamp in the future");
            }
        }
        Op::Handshake(hash, h, age, weak) => {
            let before = d.host(host_ip(h)).and_then(|x| {
                d.user(UserKey {
                    tag: x.tag_id(),
                    hash,
                })
                .map(|u| u.timestamp)
            });
            if let RemoteRefresh::Applied { key, .. } =
                d.user_refresh_handshake(hash, host_ip(h), (n + 5).saturating_sub(age), weak, n)
            {
                let u = d.user(key).unwrap();
                assert!(u.timestamp <= n);
                if let Some(b) = before {
                    assert!(u.timestamp >= b.min(n), "handshake timestamps only grow");
                }
            }
        }
        Op::SortUsers => d.sort_users(),
        Op::RingRequest(t, hash, [handshaked, synced, have_right, weak_users]) => {
            let t = tag(t);
            let ring = RingView {
                handshaked,
                synced,
                have_right,
                weak_users,
            };
            match d.request_host_ring(&t, hash, n, ring) {
                RingRequestOutcome::Host(ip) => {
                    assert_eq!(
                        d.user_lookup(hash, &t, n).0,
                        Some((ip, n + u64::from(EXPIRE)))
                    );
                }
                RingRequestOutcome::MadeWeak { key, .. } => assert!(d.user(key).unwrap().weak),
                RingRequestOutcome::Delay(_) => {}
            }
        }
        Op::RingKillFinished(hash, notified, right, flush) => {
            for k in keys(d, hash) {
                d.kill_finished_ring(k, notified, right, flush);
            }
        }
        Op::UserKilled(hash, right, flush) => {
            for (k, _) in d.user_killed(hash, right, flush, n) {
                assert!(d.user(k).is_some());
            }
        }
        Op::KilledEverywhere(hash, flush) => {
            for (k, after) in d.user_killed_everywhere(hash, flush, n) {
                assert_ne!(after, AfterKill::Gone);
                assert!(d.kill_state(k).is_some());
            }
        }
        Op::RemoteHost(h, vhosts, t, down, at, in_ring) => {
            let before = d.host(host_ip(h)).map(|x| x.last_updown_change);
            let r = d.host_apply_remote(
                RemoteHost {
                    ip: host_ip(h),
                    vhost_count: vhosts,
                    tag: tag(t),
                    down,
                    last_updown_change: at,
                    hostname: None,
                },
                in_ring,
            );
            let after = d.host(host_ip(h)).unwrap();
            assert_eq!(after.tag, tag(t));
            if let Some(b) = before {
                assert!(after.last_updown_change >= b, "never shrinks");
            }
            if r == RemoteHostOutcome::Unchanged {
                assert_eq!((after.vhost_count, after.down), (vhosts, down));
            }
        }
        Op::Purge => {
            d.purge_expired(n);
            if let Some(at) = d.next_expiry(n) {
                assert!(at > n, "after a purge the next expiry is in the future");
            }
        }
    }
}

fn matches_filter(filter: Option<usize>, ip: IpAddr) -> bool {
    filter.map_or(true, |h| host_ip(h) == ip)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_operation(ops in proptest::collection::vec(op(), 1..120)) {
        let mut d = Directory::new(
            vec![spec("10.0.0.1", ""), spec("10.0.0.2", ""), spec("10.0.0.3", "a")],
            EXPIRE,
        );
        let mut now = 1_000_000u64;
        d.check_invariants().unwrap();
        for op in &ops {
            apply(&mut d, &mut now, op);
            if let Err(e) = d.check_invariants() {
                panic!("after {op:?}: {e}");
            }
        }
    }
}
