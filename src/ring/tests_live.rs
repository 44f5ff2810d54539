//! Liveness (§9): PING/PONG timeouts, handshake timeouts, too long lines and full output
//! buffers, and handshake users sent in chunks (§4.6). Log texts and QUIT reasons are the
//! ones a real 2.3.19.1 director produced (lab/results/experiments.txt and a scripted peer
//! against /usr/lib/dovecot/director: too long line, ban, silent peer).

use super::tests::{addr, connect_target, ip, lone_a, sent, sent_np, T};
use super::*;
use crate::mail_hosts::MailHostSpec;
use crate::state::Directory;

/// Feed one event at `ms` (milliseconds), check invariants.
fn at(r: &mut Ring, ev: RingEvent, ms: u64) -> Vec<RingEffect> {
    let eff = r.handle(ev, ms);
    r.check_invariants().unwrap();
    eff
}

fn line_at(r: &mut Ring, conn: ConnId, text: &str, ms: u64) -> Vec<RingEffect> {
    let bytes = text.as_bytes().to_vec();
    at(r, RingEvent::Line { conn, bytes }, ms)
}

fn logged(eff: &[RingEffect], needle: &str) -> bool {
    eff.iter()
        .any(|e| matches!(e, RingEffect::Log { text, .. } if text.contains(needle)))
}

fn closed(eff: &[RingEffect], conn: ConnId) -> Option<String> {
    eff.iter().find_map(|e| match e {
        RingEffect::Close { conn: c, reason } if *c == conn => Some(reason.clone()),
        _ => None,
    })
}

/// Fires the ring's timer every 100 ms from `from` to `to` (ms), collecting the effects.
fn run(r: &mut Ring, from: u64, to: u64) -> Vec<RingEffect> {
    let mut all = Vec::new();
    let mut t = from;
    while t <= to {
        all.extend(at(r, RingEvent::Timer, t));
        t += 100;
    }
    all
}

/// A (127.0.0.1) joined with B (127.0.0.2) as in §12: left C1, right C2, synced at T, and
/// both PINGs of the first SYNC answered.
fn joined() -> (Ring, ConnId, ConnId, u64) {
    let mut a = lone_a();
    let t = T * 1000;
    let c1 = ConnId(1);
    at(
        &mut a,
        RingEvent::Connected {
            conn: c1,
            incoming: true,
            peer_ip: ip("127.0.0.2"),
        },
        t,
    );
    line_at(&mut a, c1, "VERSION\tdirector\t1\t9", t);
    let eff = line_at(&mut a, c1, "ME\t127.0.0.2\t9090\t1795953368", t);
    let (c2, _) = connect_target(&eff).expect("Connecting to left");
    for l in ["HOST-HAND-START\t0", "HOST-HAND-END\t0", "DONE"] {
        line_at(&mut a, c1, l, t);
    }
    let connected = RingEvent::Connected {
        conn: c2,
        incoming: false,
        peer_ip: ip("127.0.0.2"),
    };
    at(&mut a, connected, t);
    line_at(&mut a, c2, "VERSION\tdirector\t1\t9", t);
    line_at(&mut a, c2, "ME\t127.0.0.2\t9090\t1795953368", t);
    let eff = line_at(&mut a, c2, "DONE", t);
    let own = sent_np(&eff, c2)
        .into_iter()
        .find(|l| l.starts_with("SYNC\\t127.0.0.1"))
        .unwrap()
        .replace("\\t", "\t");
    line_at(&mut a, c1, &own, t);
    assert!(a.is_synced());
    line_at(&mut a, c1, "PONG\t1795953368\t0", t);
    line_at(&mut a, c2, "PONG\t1795953368\t0", t);
    (a, c1, c2, t)
}

#[test]
fn silent_neighbour_is_dropped_after_the_ping_idle_timeout() {
    let (mut a, c1, c2, t) = joined();
    // Synced: the next PINGs go out after 15 s without input, not before.
    let eff = run(&mut a, t + 100, t + 14_900);
    assert!(sent(&eff, c1).is_empty() && sent(&eff, c2).is_empty());
    let eff = run(&mut a, t + 15_000, t + 15_000);
    assert_eq!(sent(&eff, c1), ["PING\\t1795953383\\t0"]);
    assert_eq!(sent(&eff, c2), ["PING\\t1795953383\\t0"]);
    // The left answers; the right stays silent.
    line_at(&mut a, c1, "PONG\t1795953383\t0", t + 15_050);
    let eff = run(&mut a, t + 15_100, t + 44_900);
    assert!(closed(&eff, c2).is_none());
    let eff = run(&mut a, t + 45_000, t + 45_000);
    assert_eq!(sent(&eff, c2), ["QUIT\\tPing timeout"]);
    assert_eq!(closed(&eff, c2).as_deref(), Some("Ping timeout"));
    assert!(logged(
        &eff,
        "director(127.0.0.2:9090/right): Director 127.0.0.2:9090/right disconnected: \
         Connection closed: Ping timed out in 30.000 secs"
    ));
    assert!(closed(&eff, c1).is_none(), "the answering left stays");
    assert!(!a.is_synced());
    // The right is gone: reconnect (B still counts as reachable: the connection was older
    // than 40 s, so no network failure mark).
    let (_, to) = connect_target(&eff).expect("reconnect");
    assert_eq!(to, ip("127.0.0.2"));
    assert!(logged(&eff, "Reconnecting after disconnection"));
}

#[test]
fn pong_timeout_although_other_input_keeps_coming() {
    let (mut a, c1, c2, t) = joined();
    let eff = run(&mut a, t + 15_000, t + 15_000);
    assert_eq!(sent(&eff, c2).len(), 1);
    line_at(&mut a, c1, "PONG\t1795953383\t0", t + 15_010);
    // B keeps talking on C2 (its own PINGs, answered) but never PONGs: input restarts the
    // idle wait, the max wait of 60 s still ends it.
    let mut closed_at = None;
    let mut ms = t + 15_100;
    while ms <= t + 80_000 && closed_at.is_none() {
        let mut eff = at(&mut a, RingEvent::Timer, ms);
        if (ms - t) % 10_000 == 0 {
            eff.extend(line_at(&mut a, c2, "PING\t1795953383\t0", ms));
            line_at(&mut a, c1, "PONG\t1795953383\t0", ms);
        }
        if let Some(r) = closed(&eff, c2) {
            assert_eq!(r, "Pong timeout");
            assert_eq!(sent(&eff, c2).last().unwrap(), "QUIT\\tPong timeout");
            assert!(logged(
                &eff,
                "Connection closed: PONG reply not received in 60.000 secs, \
                 although other input keeps coming"
            ));
            closed_at = Some(ms);
        }
        ms += 100;
    }
    assert_eq!(closed_at, Some(t + 75_000));
}

#[test]
fn late_pong_is_logged_and_restarts_the_interval() {
    let (mut a, c1, c2, t) = joined();
    run(&mut a, t + 15_000, t + 15_000);
    line_at(&mut a, c1, "PONG\t1795953383\t0", t + 15_010);
    let eff = line_at(&mut a, c2, "PONG\t1795953389\t0", t + 21_500);
    assert!(logged(
        &eff,
        "director(127.0.0.2:9090/right): PONG response took 6.500 secs"
    ));
    // A PONG nobody asked for is ignored; the next PING comes 15 s after the last input.
    let eff = line_at(&mut a, c2, "PONG\t1795953389\t0", t + 21_600);
    assert!(!logged(&eff, "PONG response"));
    assert!(sent(&run(&mut a, t + 21_700, t + 36_500), c2).is_empty());
    assert_eq!(sent(&run(&mut a, t + 36_600, t + 36_600), c2).len(), 1);
}

#[test]
fn connection_that_never_sends_me_times_out_after_10_s() {
    let mut a = lone_a();
    let t = T * 1000;
    let c = ConnId(7);
    let ev = RingEvent::Connected {
        conn: c,
        incoming: true,
        peer_ip: ip("127.0.0.2"),
    };
    at(&mut a, ev, t);
    assert!(closed(&run(&mut a, t, t + 9_900), c).is_none());
    let eff = run(&mut a, t + 10_000, t + 10_000);
    // No QUIT: the peer never told its version.
    assert!(sent(&eff, c).is_empty());
    assert_eq!(closed(&eff, c).as_deref(), Some("Handshake timeout"));
    assert!(logged(
        &eff,
        "director(127.0.0.2/in): Handshaking ME timed out (10.000 secs"
    ));
    assert!(a.connections().is_empty());
}

#[test]
fn half_open_handshake_waits_40_s_for_done_restarted_by_input() {
    let mut a = lone_a();
    let t = T * 1000;
    let c = ConnId(8);
    let ev = RingEvent::Connected {
        conn: c,
        incoming: true,
        peer_ip: ip("127.0.0.2"),
    };
    at(&mut a, ev, t);
    line_at(&mut a, c, "VERSION\tdirector\t1\t9", t);
    let eff = line_at(&mut a, c, "ME\t127.0.0.2\t9090\t1795953368", t);
    // A connects back (no left yet); that connection never completes either.
    let (out, _) = connect_target(&eff).unwrap();
    line_at(&mut a, c, "DIRECTOR\t127.0.0.2\t9090", t + 30_000);
    let eff = run(&mut a, t + 100, t + 69_900);
    assert!(
        closed(&eff, c).is_none(),
        "input at +30 s restarted the 40 s"
    );
    // Dovecot counts the logged time from ME, not from the restart.
    assert_eq!(closed(&eff, out).as_deref(), Some("Handshake timeout"));
    assert!(logged(
        &eff,
        "director(127.0.0.2:9090/out): Connect timed out (10.000 secs"
    ));
    let eff = run(&mut a, t + 70_000, t + 70_000);
    assert_eq!(sent(&eff, c), ["QUIT\\tHandshake timeout"]);
    assert_eq!(closed(&eff, c).as_deref(), Some("Handshake timeout"));
    assert!(logged(
        &eff,
        "director(127.0.0.2/in): Handshaking DONE timed out (70.000 secs"
    ));
}

#[test]
fn too_long_line_quits_bans_for_60_s_then_accepts_again() {
    let mut a = lone_a();
    let t = T * 1000;
    let greet = |a: &mut Ring, c: ConnId, ms: u64| {
        let ev = RingEvent::Connected {
            conn: c,
            incoming: true,
            peer_ip: ip("127.0.0.2"),
        };
        at(a, ev, ms);
        line_at(a, c, "VERSION\tdirector\t1\t9", ms);
        line_at(a, c, &format!("ME\t127.0.0.2\t9090\t{}", ms / 1000), ms)
    };
    let eff = greet(&mut a, ConnId(1), t);
    let out = connect_target(&eff).map(|(c, _)| c);
    let ev = RingEvent::Failed {
        conn: ConnId(1),
        failure: ConnFailure::TooLongLine,
    };
    let eff = at(&mut a, ev, t + 500);
    assert!(logged(
        &eff,
        "director(127.0.0.2/in): Command (null): Director sent us more than 1024 bytes \
         (input: )"
    ));
    assert_eq!(sent(&eff, ConnId(1)), ["QUIT\\tToo long input line"]);
    assert_eq!(
        closed(&eff, ConnId(1)).as_deref(),
        Some("Too long input line")
    );
    if let Some(o) = out {
        at(&mut a, RingEvent::Closed { conn: o }, t + 500);
    }
    // 10 s later: refused right after ME, like the real director does.
    let eff = greet(&mut a, ConnId(2), t + 10_000);
    assert!(logged(
        &eff,
        "Remote sent invalid protocol data recently, waiting 50 secs before allowing further \
         communication"
    ));
    assert!(logged(
        &eff,
        "director(127.0.0.2/in): Remote sent invalid protocol data"
    ));
    assert_eq!(sent(&eff, ConnId(2)), ["QUIT\\tInvalid input: ME"]);
    // Nor do we connect to it meanwhile.
    assert!(connect_target(&eff).is_none());
    // After 60 s it may join.
    let eff = greet(&mut a, ConnId(3), t + 61_000);
    assert!(closed(&eff, ConnId(3)).is_none());
    assert!(!logged(&eff, "Remote sent invalid protocol data"));
}

#[test]
fn full_output_buffer_closes_without_quit_or_mark_and_reconnects() {
    let (mut a, _c1, c2, t) = joined();
    let ev = RingEvent::Failed {
        conn: c2,
        failure: ConnFailure::OutputFull(10_485_700),
    };
    let eff = at(&mut a, ev, t + 1_000);
    assert!(sent(&eff, c2).is_empty());
    assert!(logged(
        &eff,
        "Director 127.0.0.2:9090/right disconnected: Connection closed: Output buffer full at \
         10485700"
    ));
    assert!(a.right_peer().is_none());
    // No failure mark: straight back to the same director.
    let (_, to) = connect_target(&eff).expect("reconnect");
    assert_eq!(to, ip("127.0.0.2"));
    assert!(logged(&eff, "Reconnecting after write failure"));
}

/// A director with `n` users on 10.0.0.1, alone in a ring that lists B.
fn with_users(n: u32) -> Ring {
    let specs = vec![MailHostSpec {
        ip: ip("10.0.0.1"),
        tag: Default::default(),
        hostname: None,
    }];
    let mut dir = Directory::new(specs, 900);
    let host = dir.hosts().find(ip("10.0.0.1")).unwrap();
    for h in 0..n {
        assert!(dir.add_user(0, h + 1, host, T - 100 + u64::from(h % 50), T));
    }
    Ring::new(addr(1), &[addr(1), addr(2)], dir)
}

#[test]
fn handshake_users_go_in_chunks_as_the_output_drains() {
    let t = T * 1000;
    let mut b = with_users(25_000);
    let eff = at(&mut b, RingEvent::Start, t);
    let (cb, _) = connect_target(&eff).unwrap();
    let ev = RingEvent::Connected {
        conn: cb,
        incoming: false,
        peer_ip: ip("127.0.0.2"),
    };
    at(&mut b, ev, t);
    let eff = line_at(&mut b, cb, "VERSION\tdirector\t1\t9", t);
    let first = sent(&eff, cb);
    assert_eq!(first[0], "HOST-HAND-START\\t0");
    assert_eq!(
        first.iter().filter(|l| l.starts_with("U\\t")).count(),
        10_000
    );
    // Oldest first.
    assert!(first[4].starts_with("U\\t") && first[4].ends_with("\\t1795953268"));
    assert!(eff.contains(&RingEffect::WantWritable { conn: cb }));
    line_at(&mut b, cb, "ME\t127.0.0.2\t9090\t1795953368", t);
    // 25 s per chunk: each chunk restarts the 30 s "Sending handshake" timer.
    let eff = at(&mut b, RingEvent::Writable { conn: cb }, t + 25_000);
    assert_eq!(
        sent(&eff, cb)
            .iter()
            .filter(|l| l.starts_with("U\\t"))
            .count(),
        10_000
    );
    assert!(eff.contains(&RingEffect::WantWritable { conn: cb }));
    let eff = run(&mut b, t + 25_000, t + 49_900);
    assert!(closed(&eff, cb).is_none());
    // DIRECTOR-LIST's "handshaking - 20000 USERs sent".
    let info = b.connections().into_iter().find(|c| c.id == cb).unwrap();
    assert!(!info.handshaked);
    assert_eq!(b.conn_stats(cb).unwrap().users_sent, 20_000);
    let eff = at(&mut b, RingEvent::Writable { conn: cb }, t + 50_000);
    let rest = sent(&eff, cb);
    assert_eq!(rest.iter().filter(|l| l.starts_with("U\\t")).count(), 5_000);
    assert_eq!(
        rest[rest.len() - 2..],
        ["OPTIONS\\tconsistent-hashing", "DONE"]
    );
    assert!(!eff.contains(&RingEffect::WantWritable { conn: cb }));
    // Without Writable the handshake stalls and the 30 s timer ends it.
    let mut stalled = with_users(25_000);
    let eff = at(&mut stalled, RingEvent::Start, t);
    let (cs, _) = connect_target(&eff).unwrap();
    let ev = RingEvent::Connected {
        conn: cs,
        incoming: false,
        peer_ip: ip("127.0.0.2"),
    };
    at(&mut stalled, ev, t);
    line_at(&mut stalled, cs, "VERSION\tdirector\t1\t9", t);
    line_at(&mut stalled, cs, "ME\t127.0.0.2\t9090\t1795953368", t);
    let eff = run(&mut stalled, t + 100, t + 30_000);
    assert_eq!(closed(&eff, cs).as_deref(), Some("Handshake timeout"));
    assert!(logged(
        &eff,
        "director(127.0.0.2:9090/out): Sending handshake timed out (30.000 secs, 10000 USERs \
         sent in handshake)"
    ));
}
