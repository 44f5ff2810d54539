//! Replays of real captured exchanges (`ring-protocol.md` §12, captured from two 2.3.19.1
//! directors; the expected lines below are real Dovecot output) through the state machine.

use super::*;
use crate::mail_hosts::MailHostSpec;
use crate::state::Directory;
use std::net::{IpAddr, Ipv4Addr};

pub(super) const T: u64 = 1_795_953_368;

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(super) fn addr(last: u8) -> DirAddr {
    DirAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 9090)
}

fn ring(me: u8) -> Ring {
    let specs = ["10.0.0.1", "10.0.0.2"]
        .iter()
        .map(|s| MailHostSpec {
            ip: ip(s),
            tag: Default::default(),
            hostname: None,
        })
        .collect();
    Ring::new(addr(me), &[addr(1), addr(2)], Directory::new(specs, 900))
}

/// Feed one event, check invariants, return the effects.
pub(super) fn step(r: &mut Ring, ev: RingEvent, secs: u64) -> Vec<RingEffect> {
    let eff = r.handle(ev, secs * 1000);
    r.check_invariants().unwrap();
    eff
}

pub(super) fn line(r: &mut Ring, conn: ConnId, text: &str, secs: u64) -> Vec<RingEffect> {
    step(
        r,
        RingEvent::Line {
            conn,
            bytes: text.as_bytes().to_vec(),
        },
        secs,
    )
}

/// The lines sent on `conn`, without LF, TABs shown as `\t`.
pub(super) fn sent(eff: &[RingEffect], conn: ConnId) -> Vec<String> {
    eff.iter()
        .filter_map(|e| match e {
            RingEffect::Send { conn: c, line } if *c == conn => Some(
                String::from_utf8(line[..line.len() - 1].to_vec())
                    .unwrap()
                    .replace('\t', "\\t"),
            ),
            _ => None,
        })
        .collect()
}

/// Lines sent on `conn` other than PING/PONG (whose counters vary run to run, §15).
pub(super) fn sent_np(eff: &[RingEffect], conn: ConnId) -> Vec<String> {
    sent(eff, conn)
        .into_iter()
        .filter(|l| !l.starts_with("PING") && !l.starts_with("PONG"))
        .collect()
}

pub(super) fn connect_target(eff: &[RingEffect]) -> Option<(ConnId, IpAddr)> {
    eff.iter().find_map(|e| match e {
        RingEffect::Connect { conn, ip, .. } => Some((*conn, *ip)),
        _ => None,
    })
}

/// A alone: started, B unreachable, the 20 s grace over, then synced on its own.
pub(super) fn lone_a() -> Ring {
    let mut a = ring(1);
    let start = T - 60;
    let eff = step(&mut a, RingEvent::Start, start);
    let (c, to) = connect_target(&eff).expect("initial connection");
    assert_eq!(to, ip("127.0.0.2"));
    step(&mut a, RingEvent::Closed { conn: c }, start);
    for s in start..start + 25 {
        let eff = step(&mut a, RingEvent::Timer, s);
        if let Some((c, _)) = connect_target(&eff) {
            step(&mut a, RingEvent::Closed { conn: c }, s);
        }
    }
    assert!(a.is_synced() && a.is_handshaked());
    a
}

#[test]
fn section_12_a_side_join_and_host_down() {
    let mut a = lone_a();
    // `doveadm director move user1 10.0.0.2` at T-5: A's origin seq 1, nothing sent.
    let eff = step(
        &mut a,
        RingEvent::Admin(AdminCmd::UserMove {
            hash: 617210206,
            ip: ip("10.0.0.2"),
        }),
        T - 5,
    );
    assert!(eff.contains(&RingEffect::AdminDone(AdminOutcome::Ok)));
    assert!(eff.iter().all(|e| !matches!(e, RingEffect::Send { .. })));
    let eff = step(&mut a, RingEvent::Timer, T - 2);
    // The 30 s retry of the preferred right fails again: B is not up yet.
    if let Some((c, _)) = connect_target(&eff) {
        step(&mut a, RingEvent::Closed { conn: c }, T - 2);
    }

    // 1. B connects C1; A greets.
    let c1 = ConnId(1);
    let eff = step(
        &mut a,
        RingEvent::Connected {
            conn: c1,
            incoming: true,
            peer_ip: ip("127.0.0.2"),
        },
        T,
    );
    assert_eq!(
        sent(&eff, c1),
        [
            "VERSION\\tdirector\\t1\\t9",
            "ME\\t127.0.0.1\\t9090\\t1795953368"
        ]
    );
    // 2. B's VERSION, ME: A has no left and no outgoing connection -> connects to B.
    line(&mut a, c1, "VERSION\tdirector\t1\t9", T);
    let eff = line(&mut a, c1, "ME\t127.0.0.2\t9090\t1795953368", T);
    let (c2, to) = connect_target(&eff).expect("Connecting to left");
    assert_eq!(to, ip("127.0.0.2"));
    assert!(eff.iter().any(|e| matches!(e, RingEffect::Log { text, .. }
        if text == "Connecting to 127.0.0.2:9090 (as 127.0.0.1:9090): Connecting to left")));
    line(&mut a, c1, "DIRECTOR\t127.0.0.1\t9090", T);
    line(&mut a, c1, "DIRECTOR\t127.0.0.2\t9090", T);
    let eff = step(
        &mut a,
        RingEvent::Connected {
            conn: c2,
            incoming: false,
            peer_ip: ip("127.0.0.2"),
        },
        T,
    );
    assert_eq!(
        sent(&eff, c2),
        [
            "VERSION\\tdirector\\t1\\t9",
            "ME\\t127.0.0.1\\t9090\\t1795953368",
            "DIRECTOR\\t127.0.0.1\\t9090",
            "DIRECTOR\\t127.0.0.2\\t9090",
        ]
    );
    // 5. B's handshake on C1 (B not handshaked): A ignores B's hosts and answers DONE.
    for l in [
        "HOST-HAND-START\t0",
        "HOST\t10.0.0.1\t100\t\tU0\t",
        "HOST\t10.0.0.2\t100\t\tU0\t",
        "HOST-HAND-END\t0",
        "OPTIONS\tconsistent-hashing",
    ] {
        assert!(sent(&line(&mut a, c1, l, T), c1).is_empty(), "{l}");
    }
    let eff = line(&mut a, c1, "DONE", T);
    assert_eq!(sent(&eff, c1), ["DONE"]);
    assert_eq!(a.left_peer(), Some(addr(2)));
    // 6. B's VERSION on C2: the rest of A's handshake.
    let eff = line(&mut a, c2, "VERSION\tdirector\t1\t9", T);
    assert_eq!(
        sent(&eff, c2),
        [
            "HOST-HAND-START\\t1",
            "HOST\\t10.0.0.1\\t100\\t\\tU0\\t",
            "HOST\\t10.0.0.2\\t100\\t\\tU0\\t",
            "HOST-HAND-END\\t1",
            "U\\t617210206\\t10.0.0.2\\t1795953363",
            "OPTIONS\\tconsistent-hashing",
            "DONE",
        ]
    );
    line(&mut a, c2, "ME\t127.0.0.2\t9090\t1795953368", T);
    // 9. B's SYNCs arrive on C1 before A has a right: kept as B's delayed SYNC.
    assert!(sent_np(
        &line(
            &mut a,
            c1,
            "SYNC\t127.0.0.2\t9090\t5\t9\t1795953368\t697653630",
            T
        ),
        c2
    )
    .is_empty());
    line(
        &mut a,
        c1,
        "SYNC\t127.0.0.2\t9090\t6\t9\t1795953368\t697653630",
        T,
    );
    // 10. B's DONE on C2: C2 becomes A's right; A's SYNC, then B's delayed SYNC/6.
    let eff = line(&mut a, c2, "DONE", T);
    assert_eq!(a.right_peer(), Some(addr(2)));
    let out = sent_np(&eff, c2);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out
        .iter()
        .any(|l| l.starts_with("SYNC\\t127.0.0.1\\t9090\\t")
            && l.ends_with("\\t9\\t1795953368\\t697653630")));
    assert!(out.contains(&"SYNC\\t127.0.0.2\\t9090\\t6\\t9\\t1795953368\\t697653630".to_string()));
    let own = out
        .iter()
        .find(|l| l.starts_with("SYNC\\t127.0.0.1"))
        .unwrap()
        .replace("\\t", "\t");
    assert!(!a.is_synced());
    // 12. A's own SYNC comes back via B on C1: synced.
    line(&mut a, c1, &own, T);
    assert!(a.is_synced());

    // 13. `doveadm director down 10.0.0.1` at T2: the HOST goes on both connections with
    // A's origin seq 2, then a SYNC with the new hosts_hash.
    let t2 = 1_795_953_378;
    let eff = step(
        &mut a,
        RingEvent::Admin(AdminCmd::HostUpDown {
            ip: ip("10.0.0.1"),
            down: true,
        }),
        t2,
    );
    let host = "HOST\\t127.0.0.1\\t9090\\t2\\t10.0.0.1\\t100\\t\\tD1795953378\\t";
    assert_eq!(sent_np(&eff, c1), [host]);
    let c2_lines = sent_np(&eff, c2);
    assert_eq!(c2_lines[0], host);
    assert!(c2_lines[1].starts_with("SYNC\\t127.0.0.1\\t9090\\t"));
    assert!(c2_lines[1].ends_with("\\t9\\t1795953378\\t2281556207"));
    assert_eq!(a.directory().hosts_hash(), 2281556207);
    // 14-15. B forwards its own SYNC and ours; our SYNC returning syncs the ring.
    let back = c2_lines[1].replace("\\t", "\t");
    line(
        &mut a,
        c1,
        "SYNC\t127.0.0.2\t9090\t8\t9\t1795953378\t2281556207",
        t2,
    );
    assert!(!a.is_synced());
    line(&mut a, c1, &back, t2);
    assert!(a.is_synced());
    assert!(!a.directory().host(ip("10.0.0.1")).unwrap().desynced);
}

#[test]
fn section_12_b_side_joins_a_ring() {
    let mut b = ring(2);
    let eff = step(&mut b, RingEvent::Start, T);
    let (c1, to) = connect_target(&eff).unwrap();
    assert_eq!(to, ip("127.0.0.1"));
    let eff = step(
        &mut b,
        RingEvent::Connected {
            conn: c1,
            incoming: false,
            peer_ip: to,
        },
        T,
    );
    assert_eq!(
        sent(&eff, c1),
        [
            "VERSION\\tdirector\\t1\\t9",
            "ME\\t127.0.0.2\\t9090\\t1795953368",
            "DIRECTOR\\t127.0.0.1\\t9090",
            "DIRECTOR\\t127.0.0.2\\t9090",
        ]
    );
    // 3. A's VERSION: B (not handshaked, no users) sends the rest of its handshake.
    let eff = line(&mut b, c1, "VERSION\tdirector\t1\t9", T);
    assert_eq!(
        sent(&eff, c1),
        [
            "HOST-HAND-START\\t0",
            "HOST\\t10.0.0.1\\t100\\t\\tU0\\t",
            "HOST\\t10.0.0.2\\t100\\t\\tU0\\t",
            "HOST-HAND-END\\t0",
            "OPTIONS\\tconsistent-hashing",
            "DONE",
        ]
    );
    line(&mut b, c1, "ME\t127.0.0.1\t9090\t1795953368", T);
    // 4. A connects C2; B greets.
    let c2 = ConnId(7);
    let eff = step(
        &mut b,
        RingEvent::Connected {
            conn: c2,
            incoming: true,
            peer_ip: ip("127.0.0.1"),
        },
        T,
    );
    assert_eq!(
        sent(&eff, c2),
        [
            "VERSION\\tdirector\\t1\\t9",
            "ME\\t127.0.0.2\\t9090\\t1795953368"
        ]
    );
    // 7. A's greeting on C2; A's DONE on C1 makes C1 B's right.
    for l in [
        "VERSION\tdirector\t1\t9",
        "ME\t127.0.0.1\t9090\t1795953368",
        "DIRECTOR\t127.0.0.1\t9090",
        "DIRECTOR\t127.0.0.2\t9090",
    ] {
        let eff = line(&mut b, c2, l, T);
        assert!(connect_target(&eff).is_none(), "{l}");
    }
    line(&mut b, c1, "DONE", T);
    assert_eq!(b.right_peer(), Some(addr(1)));
    // 8. A's handshake (handshaked): B replaces its hosts, takes the user, answers DONE,
    // and with left and right complete sends its SYNC.
    for l in [
        "HOST-HAND-START\t1",
        "HOST\t10.0.0.1\t100\t\tU0\t",
        "HOST\t10.0.0.2\t100\t\tU0\t",
        "HOST-HAND-END\t1",
        "U\t617210206\t10.0.0.2\t1795953363",
        "OPTIONS\tconsistent-hashing",
    ] {
        let eff = line(&mut b, c2, l, T);
        // Dovecot defers RESYNC to the end of an input batch, so with all of A's lines in
        // one read it sends nothing before DONE; we treat each line as a batch, so a host
        // change may already send a SYNC on the right (never anything else).
        assert!(sent_np(&eff, c2).is_empty(), "{l}");
        assert!(
            sent_np(&eff, c1)
                .iter()
                .all(|s| s.starts_with("SYNC\\t127.0.0.2\\t9090\\t")),
            "{l}"
        );
    }
    let eff = line(&mut b, c2, "DONE", T);
    assert_eq!(sent_np(&eff, c2), ["DONE"]);
    let syncs = sent_np(&eff, c1);
    assert!(!syncs.is_empty());
    for s in &syncs {
        assert!(
            s.starts_with("SYNC\\t127.0.0.2\\t9090\\t")
                && s.ends_with("\\t9\\t1795953368\\t697653630"),
            "{s}"
        );
    }
    let user = b.directory().tags()[0].users.get(617210206).unwrap();
    assert_eq!(user.timestamp, 1795953363);
    // 11. A's SYNC/23 is forwarded unchanged on the right; B's own returns: handshaked.
    let eff = line(
        &mut b,
        c2,
        "SYNC\t127.0.0.1\t9090\t23\t9\t1795953368\t697653630",
        T,
    );
    assert_eq!(
        sent_np(&eff, c1),
        ["SYNC\\t127.0.0.1\\t9090\\t23\\t9\\t1795953368\\t697653630"]
    );
    assert!(!b.is_handshaked());
    let own = syncs.last().unwrap().replace("\\t", "\t");
    line(&mut b, c2, &own, T);
    assert!(b.is_handshaked() && b.is_synced());
    // 14. A's HOST-DOWN arrives on both connections: applied once, not forwarded (2-ring).
    let t2 = 1_795_953_378;
    let h = "HOST\t127.0.0.1\t9090\t2\t10.0.0.1\t100\t\tD1795953378\t";
    let eff = line(&mut b, c1, h, t2);
    assert!(sent_np(&eff, c2).iter().all(|l| l.starts_with("SYNC")));
    assert!(b.directory().host(ip("10.0.0.1")).unwrap().down);
    assert_eq!(b.directory().hosts_hash(), 2281556207);
    let eff = line(&mut b, c2, h, t2);
    assert!(sent_np(&eff, c1).is_empty() && sent_np(&eff, c2).is_empty());
}

#[test]
fn unknown_command_is_a_protocol_error_with_ban() {
    let mut a = lone_a();
    let c = ConnId(3);
    step(
        &mut a,
        RingEvent::Connected {
            conn: c,
            incoming: true,
            peer_ip: ip("127.0.0.2"),
        },
        T,
    );
    line(&mut a, c, "VERSION\tdirector\t1\t9", T);
    let eff = line(&mut a, c, "ME\t127.0.0.2\t9090\t1795953368", T);
    let out = connect_target(&eff).map(|(c, _)| c);
    let eff = line(&mut a, c, "FOO\tbar", T);
    assert_eq!(sent(&eff, c), ["QUIT\\tInvalid input: FOO"]);
    assert!(eff.iter().any(|e| matches!(e, RingEffect::Log { text, .. }
        if text.contains("Command FOO: Unknown command FOO (input: FOO\tbar)"))));
    assert!(eff.contains(&RingEffect::Close {
        conn: c,
        reason: "Invalid input: FOO".into()
    }));
    if let Some(o) = out {
        step(&mut a, RingEvent::Closed { conn: o }, T);
    }
    // Within 60 s B's next connection is refused after its ME.
    let c = ConnId(4);
    step(
        &mut a,
        RingEvent::Connected {
            conn: c,
            incoming: true,
            peer_ip: ip("127.0.0.2"),
        },
        T + 10,
    );
    line(&mut a, c, "VERSION\tdirector\t1\t9", T + 10);
    let eff = line(&mut a, c, "ME\t127.0.0.2\t9090\t1795953378", T + 10);
    assert!(eff.iter().any(|e| matches!(e, RingEffect::Log { text, .. }
        if text.contains("Remote sent invalid protocol data recently, waiting 50 secs"))));
    assert!(eff
        .iter()
        .any(|e| matches!(e, RingEffect::Close { conn, .. } if *conn == c)));
}
