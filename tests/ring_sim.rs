//! Deterministic multi-director simulation of the ring state machine (`director::ring`).
//!
//! Each seed builds a ring of 3-5 directors on a virtual clock, with a network that delivers
//! lines in order per connection after seeded delays. During a fault phase it injects
//! connection resets (TCP does not lose single lines; a reset loses everything in flight),
//! director restarts, hung directors (silent for 5-45 s: PING timeouts), connections that
//! stall in the handshake (handshake timeouts), lines a director must reject (unknown
//! command or over 1024 bytes: disconnect and 60 s ban), admin host changes on random
//! directors and logins on random directors. Then the faults stop and the world runs until quiescent, and the test asserts:
//! every director is synced with a left and a right, all agree on the host list and
//! `hosts_hash`, and (after every user logs in once more) on every user's host. During the
//! whole run, no two synced directors of one ring with the same hosts may hand one user to
//! two backends at the same time, except where ring-protocol.md itself lets them (each case
//! is explained and counted at its check: a move in flight, a move that missed a director, a
//! conflict's outcome still travelling, a handshake gap, a split ring). If every host is down
//! when the faults stop, an operator brings one up before the final logins.
//!
//! `DIRECTOR_SIM_SEED=<n>` replays one seed (add `DIRECTOR_SIM_TRACE=1` for a trace);
//! `DIRECTOR_SIM_SEEDS=<n>` changes how many seeds run (default 1000).

#[path = "ring_sim/rng.rs"]
mod rng;
#[path = "ring_sim/world.rs"]
mod world;

use director::ring::{AdminCmd, RingEffect, RingEvent, Routing};
use director::state::{Tag, UserKey};
use std::collections::BTreeMap;
use std::net::IpAddr;
use world::{host_ip, World, EXPIRE, T0};

/// What a director would route `hash` to right now, without changing it: `(host, from an
/// existing entry)`.
fn peek(w: &World, node: usize, hash: u32) -> Option<(IpAddr, bool)> {
    let ring = w.nodes[node].ring.as_ref()?;
    let dir = ring.directory();
    let now = w.now / 1000;
    let tag = dir.tag_id(&Tag::default())?;
    match dir.user(UserKey { tag, hash }) {
        Some(u) if u.timestamp + u64::from(EXPIRE) > now => {
            Some((dir.hosts().get(u.host).ip, true))
        }
        _ => dir.choose(&Tag::default(), hash).map(|ip| (ip, false)),
    }
}

/// Whether `node` has `hash` in a move (its kill protocol is running).
fn moving(w: &World, node: usize, hash: u32) -> bool {
    let Some(ring) = w.nodes[node].ring.as_ref() else {
        return false;
    };
    let dir = ring.directory();
    dir.tag_id(&Tag::default())
        .and_then(|tag| dir.user(UserKey { tag, hash }))
        .is_some_and(|u| u.kill.is_some())
}

fn login(w: &mut World, node: usize, hash: u32) {
    if !w.usable(node) {
        return;
    }
    w.stats.logins += 1;
    let had_entry = peek(w, node, hash).is_some_and(|(_, entry)| entry);
    let effects = w.deliver(
        node,
        RingEvent::Login {
            tag: Tag::default(),
            hash,
        },
    );
    let Some(Routing::Host(ip)) = effects.iter().find_map(|e| match e {
        RingEffect::Routed { routing, .. } => Some(*routing),
        _ => None,
    }) else {
        return;
    };
    let ring = w.nodes[node].ring.as_ref().expect("up");
    if !ring.is_synced() {
        return;
    }
    let hash_hosts = ring.directory().hosts_hash();
    let ring_of = w.ring_of(node);
    for other in 0..w.nodes.len() {
        if other == node {
            continue;
        }
        // Only directors of one ring can agree: a ring split by protocol-error bans and
        // failure marks (60 s, ring-protocol.md §3.4, §9.4) leaves a director that finds no
        // one to connect to alone and synced ("we must be the only director left", §3.4),
        // or two rings that each sync on their own SYNC round (§6.4). Each routes new users from its own view
        // of the hosts, and nothing carries a USER between them until they join again, when
        // the handshake's §8.1 conflict rule settles it. Dovecot splits the same way.
        if !ring_of.contains(&other) {
            if w.nodes[other].ring.as_ref().is_some_and(|o| o.is_synced()) {
                w.stats.split_skips += 1;
            }
            continue;
        }
        let Some(o) = w.nodes[other].ring.as_ref() else {
            continue;
        };
        if !o.is_synced() || o.directory().hosts_hash() != hash_hosts {
            continue;
        }
        // A hung director routes nothing; its state is checked once it runs again.
        if !w.usable(other) {
            continue;
        }
        match peek(w, other, hash) {
            // A move in flight: the other director already has the new host while this
            // one has not heard the USER-MOVE yet; its session is kicked when it does
            // (KICK-DIRECTOR-HASH except the new host), so this is no lasting split.
            _ if moving(w, other, hash) => {}
            // The user's latest USER-MOVE did not reach some director (lost with a reset
            // connection, sent while the ring was split, or dropped with every user by a
            // director joining a ring, §4.5 "replace all hosts"): it keeps the old host, and a
            // handshake carries only `U` lines, where its older entry meets the moved one in
            // the §8.1 conflict (lower IP wins) while the movers keep the new host for the
            // whole move (5c1733e9e5) and answer nothing. The split lasts until the user's
            // next refresh meets the conflict rule again: Dovecot's "its state may now be
            // inconsistent" (§8.3), without the timeout.
            Some((theirs, true)) if theirs != ip && w.move_missed(hash) => {
                w.stats.missed_move_skips += 1;
            }
            // A two-host conflict elsewhere chose `theirs` and its USER (or USER-KICK-HASH)
            // has not reached this director yet; when it does, this director switches and
            // kicks the session it just routed (§8.1 conflict, 36e091dc73).
            Some((theirs, true)) if theirs != ip && w.user_update_in_flight(hash, theirs) => {
                w.stats.conflict_skips += 1;
            }
            Some((theirs, true))
                if theirs != ip && had_entry && !w.stats.timed_out_users.contains(&hash) =>
            {
                let msg = format!(
                    "t={} user {hash}: d{node} -> {ip}, synced d{other} has it on {theirs}",
                    w.now - T0
                );
                w.stats.violations.push(msg);
            }
            // The other director lacks the entry and would hash it elsewhere. The protocol
            // allows this: handshake users reach only the neighbour being handshaked and are
            // never forwarded, so a director that (re)joined misses users its left learnt
            // later through another handshake, until their next refresh.
            // Same when the serving director is the one that lacked it.
            Some((theirs, _)) if theirs != ip => w.stats.gaps += 1,
            _ => {}
        }
    }
}

struct Outcome {
    move_timeouts: u64,
    unreliable_moves: u64,
    split_skips: u64,
    missed_move_skips: u64,
    conflict_skips: u64,
    moves: u64,
    gaps: u64,
    lines: u64,
    logins: u64,
    faults: u64,
    handshake_timeouts: u64,
    ping_timeouts: u64,
    protocol_errors: u64,
    violations: Vec<String>,
}

fn run_seed(seed: u64) -> Result<Outcome, String> {
    let mut rng = rng::Rng::new(seed.wrapping_mul(7919));
    let n = rng.range(3, 6) as usize;
    let nhosts = 3;
    let mut w = World::new(n, nhosts, seed);
    w.max_delay = [5, 50, 400][rng.range(0, 3) as usize];
    let users: Vec<u32> = (0..20).map(|_| rng.next_u64() as u32 | 1).collect();
    // Let the ring form, then a fault phase of 60 s with one action every ~0.5 s.
    w.run_until(T0 + 30_000);
    let fault_end = T0 + 90_000;
    while w.now < fault_end {
        let next = w.now + rng.range(100, 1000);
        w.run_until(next);
        match rng.range(0, 100) {
            0..=5 => w.reset_random_link(),
            6..=7 => {
                let node = rng.range(0, n as u64) as usize;
                if w.nodes[node].ring.is_some() {
                    let down = rng.range(100, 5000);
                    w.restart(node, down);
                }
            }
            8..=9 => {
                let node = rng.range(0, n as u64) as usize;
                if let Some(ring) = w.nodes[node].ring.as_ref().filter(|_| w.usable(node)) {
                    let hash = users[rng.range(0, users.len() as u64) as usize];
                    let ip = host_ip(rng.range(0, nhosts as u64) as usize);
                    let hung = (0..n).any(|i| w.nodes[i].ring.is_some() && !w.usable(i));
                    let alone = ring.left_peer().is_none() && ring.right_peer().is_none();
                    if hung || alone {
                        // A director cut off from the ring moves the user locally only (as
                        // Dovecot's director_move_user does), and a hung one applies the
                        // USER-MOVE queued for it whenever it resumes, however stale; the
                        // two-host conflict rules settle all of these later, so such a move
                        // is as unreliable as one that timed out.
                        w.stats.timed_out_users.insert(hash);
                        w.stats.unreliable_moves += 1;
                    }
                    w.stats.moves += 1;
                    w.track_move(node, hash);
                    w.deliver(node, RingEvent::Admin(AdminCmd::UserMove { hash, ip }));
                }
            }
            10..=14 => {
                let node = rng.range(0, n as u64) as usize;
                if w.usable(node) {
                    let ip = host_ip(rng.range(0, nhosts as u64) as usize);
                    let cmd = if rng.chance(70) {
                        AdminCmd::HostUpDown {
                            ip,
                            down: rng.chance(50),
                        }
                    } else {
                        AdminCmd::HostSet {
                            ip,
                            tag: Tag::default(),
                            vhosts: Some(rng.range(1, 20) as u32),
                        }
                    };
                    w.deliver(node, RingEvent::Admin(cmd));
                }
            }
            15 => {
                // Hung for 5-45 s: longer than director_ping_idle_timeout gets it dropped.
                let node = rng.range(0, n as u64) as usize;
                if w.usable(node) {
                    let ms = rng.range(5_000, 45_000);
                    // Moves still running reach it late (see the moves above).
                    for &hash in &users {
                        if (0..n).any(|i| moving(&w, i, hash)) {
                            w.stats.timed_out_users.insert(hash);
                        }
                    }
                    w.freeze(node, ms);
                }
            }
            16 => {
                let node = rng.range(0, n as u64) as usize;
                let peer = (node + rng.range(1, n as u64) as usize) % n;
                let me = rng.chance(50);
                w.stall_handshake(node, peer, me);
            }
            17 => {
                let too_long = rng.chance(50);
                w.inject_protocol_error(too_long);
            }
            _ => {
                let node = rng.range(0, n as u64) as usize;
                let hash = users[rng.range(0, users.len() as u64) as usize];
                login(&mut w, node, hash);
            }
        }
    }
    // Quiet: let failure marks (60 s) and preferred-right retries (30 s) play out.
    w.run_until(fault_end + 240_000);
    // An operator ends an outage of every backend. With every host down a director that
    // lacks a user answers its login with "no hosts" (Dovecot's director_request_continue),
    // so the logins below could not spread users whose USER was lost; Dovecot guarantees
    // no more than that, and the checks below are about a ring that can route.
    let all_down = w.nodes[0]
        .ring
        .as_ref()
        .is_some_and(|r| r.directory().host_list().all(|h| h.down));
    if all_down {
        let node = rng.range(0, n as u64) as usize;
        let ip = host_ip(rng.range(0, nhosts as u64) as usize);
        w.deliver(
            node,
            RingEvent::Admin(AdminCmd::HostUpDown { ip, down: false }),
        );
        w.run_until(w.now + 30_000);
    }
    // Every user logs in once more somewhere, which is how the real protocol spreads a user
    // whose USER was lost with a reset connection.
    for &hash in &users {
        let node = rng.range(0, n as u64) as usize;
        login(&mut w, node, hash);
    }
    w.run_until(w.now + 30_000);

    let mut problems = Vec::new();
    if w.stats.events > world::MAX_EVENTS {
        problems.push(format!("message storm: over {} events", world::MAX_EVENTS));
    }
    let rings: Vec<_> = w
        .nodes
        .iter()
        .map(|x| x.ring.as_ref().expect("all up"))
        .collect();
    for (i, r) in rings.iter().enumerate() {
        if !r.is_synced() {
            problems.push(format!("d{i} not synced"));
        }
        if r.directory().moving_count() != 0 {
            problems.push(format!(
                "d{i} still has {} moves",
                r.directory().moving_count()
            ));
        }
        if r.left_peer().is_none() || r.right_peer().is_none() {
            problems.push(format!(
                "d{i} left={:?} right={:?}",
                r.left_peer(),
                r.right_peer()
            ));
        }
    }
    let hosts = |r: &director::ring::Ring| -> Vec<(IpAddr, u32, bool)> {
        r.directory()
            .host_list()
            .map(|h| (h.ip, h.vhost_count, h.down))
            .collect()
    };
    for (i, r) in rings.iter().enumerate().skip(1) {
        if hosts(r) != hosts(rings[0])
            || r.directory().hosts_hash() != rings[0].directory().hosts_hash()
        {
            problems.push(format!(
                "hosts differ: d0 {:?} vs d{i} {:?}",
                hosts(rings[0]),
                hosts(r)
            ));
        }
    }
    let now = w.now / 1000;
    let user_map = |r: &director::ring::Ring| -> BTreeMap<u32, IpAddr> {
        let d = r.directory();
        let mut m = BTreeMap::new();
        for t in d.tags() {
            for u in t.users.iter() {
                if u.timestamp + u64::from(EXPIRE) > now {
                    m.insert(u.hash, d.hosts().get(u.host).ip);
                }
            }
        }
        m
    };
    for (i, r) in rings.iter().enumerate().skip(1) {
        let (a, b) = (user_map(rings[0]), user_map(r));
        if a != b {
            problems.push(format!("users differ: d0 {a:?} vs d{i} {b:?}"));
        }
    }
    if std::env::var("DIRECTOR_SIM_EVENTS").is_ok() {
        eprintln!("seed {seed}: {} events", w.stats.events);
    }
    if std::env::var("DIRECTOR_SIM_SEED").is_ok() {
        problems.extend(w.stats.violations.iter().cloned());
    }
    if !problems.is_empty() {
        if w.trace {
            for l in &w.log {
                eprintln!("{l}");
            }
        }
        return Err(problems.join("\n"));
    }
    Ok(Outcome {
        move_timeouts: w.stats.move_timeouts,
        unreliable_moves: w.stats.unreliable_moves,
        split_skips: w.stats.split_skips,
        missed_move_skips: w.stats.missed_move_skips,
        conflict_skips: w.stats.conflict_skips,
        moves: w.stats.moves,
        gaps: w.stats.gaps,
        lines: w.stats.lines,
        logins: w.stats.logins,
        faults: w.stats.faults,
        handshake_timeouts: w.stats.handshake_timeouts,
        ping_timeouts: w.stats.ping_timeouts,
        protocol_errors: w.stats.protocol_errors,
        violations: w.stats.violations,
    })
}

#[test]
fn ring_simulation() {
    let seeds: Vec<u64> = match std::env::var("DIRECTOR_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("DIRECTOR_SIM_SEED is a number")],
        Err(_) => {
            let n = std::env::var("DIRECTOR_SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1000);
            (1..=n).collect()
        }
    };
    let (mut lines, mut logins, mut faults, mut gaps, mut moves) = (0, 0, 0, 0, 0);
    let (mut move_timeouts, mut unreliable, mut split_skips, mut missed) = (0, 0, 0, 0);
    let mut conflicts = 0;
    let (mut hs_timeouts, mut ping_timeouts, mut proto_errors) = (0, 0, 0);
    let mut failed = Vec::new();
    let mut violations = Vec::new();
    for &seed in &seeds {
        match run_seed(seed) {
            Ok(o) => {
                lines += o.lines;
                logins += o.logins;
                faults += o.faults;
                gaps += o.gaps;
                moves += o.moves;
                move_timeouts += o.move_timeouts;
                unreliable += o.unreliable_moves;
                split_skips += o.split_skips;
                missed += o.missed_move_skips;
                conflicts += o.conflict_skips;
                hs_timeouts += o.handshake_timeouts;
                ping_timeouts += o.ping_timeouts;
                proto_errors += o.protocol_errors;
                for v in o.violations {
                    violations.push(format!("seed {seed}: {v}"));
                }
            }
            Err(e) => failed.push(format!("seed {seed}: {e}")),
        }
    }
    eprintln!(
        "ring_sim: {} seeds, {lines} lines, {logins} logins, {moves} user moves ({move_timeouts} move timeouts, {unreliable} made while a director was hung or alone), {faults} faults \
         ({hs_timeouts} handshake timeouts, {ping_timeouts} ping timeouts, {proto_errors} protocol-error bans), {} failed, \
         {} double-routing, {gaps} handshake-gap misses, {split_skips} comparisons skipped across a split ring, {missed} after a move that missed a director, {conflicts} while a conflict's outcome travelled",
        seeds.len(),
        failed.len(),
        violations.len()
    );
    if !failed.is_empty() {
        let list: Vec<&str> = failed.iter().filter_map(|f| f.split(':').next()).collect();
        eprintln!("failed: {}", list.join(", "));
    }
    for f in failed.iter().take(5) {
        eprintln!("{f}");
    }
    if !violations.is_empty() {
        let mut list: Vec<&str> = violations
            .iter()
            .filter_map(|v| v.split(':').next())
            .collect();
        list.dedup();
        eprintln!("double routing in: {}", list.join(", "));
    }
    for v in violations.iter().take(5) {
        eprintln!("{v}");
    }
    assert!(failed.is_empty(), "{} seeds failed", failed.len());
    assert!(
        violations.is_empty(),
        "{} double routings",
        violations.len()
    );
}

/// Without faults every move finishes through the USER-KILLED round (no 30 s timeout), and
/// every director ends with the user on the new host.
#[test]
fn user_moves_finish_without_faults() {
    for seed in 1..=20u64 {
        let mut rng = rng::Rng::new(seed);
        let n = rng.range(2, 6) as usize;
        let mut w = World::new(n, 3, seed);
        w.run_until(T0 + 30_000);
        let mut moved = BTreeMap::new();
        for _ in 0..10 {
            let node = rng.range(0, n as u64) as usize;
            let hash = rng.next_u64() as u32 | 1;
            login(&mut w, node, hash);
            let t = w.now + 1_000;
            w.run_until(t);
            let ip = host_ip(rng.range(0, 3) as usize);
            let by = rng.range(0, n as u64) as usize;
            w.deliver(by, RingEvent::Admin(AdminCmd::UserMove { hash, ip }));
            moved.insert(hash, ip);
        }
        let t = w.now + 40_000;
        w.run_until(t);
        assert_eq!(w.stats.move_timeouts, 0, "seed {seed}: a move timed out");
        for (i, node) in w.nodes.iter().enumerate() {
            let r = node.ring.as_ref().unwrap();
            assert!(r.is_synced(), "seed {seed}: d{i} not synced");
            assert_eq!(r.directory().moving_count(), 0, "seed {seed}: d{i}");
            for (&hash, &ip) in &moved {
                assert_eq!(
                    peek(&w, i, hash),
                    Some((ip, true)),
                    "seed {seed}: d{i} user {hash}"
                );
            }
        }
    }
}
