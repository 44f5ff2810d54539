//! The simulated world: directors, TCP connections with FIFO delivery and seeded delays,
//! faults (connection resets, director restarts), and a virtual clock.

use super::rng::Rng;
use director::mail_hosts::MailHostSpec;
use director::ring::{ConnFailure, ConnId, DirAddr, Ring, RingEffect, RingEvent};
use director::state::{Directory, Tag};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr};

pub const PORT: u16 = 9090;
pub const EXPIRE: u32 = 900;
/// A seed that needs more events than this is stuck in a message storm.
pub const MAX_EVENTS: u64 = 100_000;
/// Start of the virtual clock (ms): a plausible Unix time.
pub const T0: u64 = 1_795_953_368_000;

pub fn dir_addr(i: usize) -> DirAddr {
    DirAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8)), PORT)
}

pub fn host_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i as u8))
}

pub fn new_directory(nhosts: usize) -> Directory {
    let specs = (0..nhosts)
        .map(|i| MailHostSpec {
            ip: host_ip(i),
            tag: Tag::default(),
            hostname: None,
        })
        .collect();
    let mut dir = Directory::new(specs, EXPIRE);
    // Few vhosts keep the ring rebuilds (an MD5 per point) cheap in debug builds.
    for i in 0..nhosts {
        dir.host_set(host_ip(i), None, Some(10), 0);
    }
    dir
}

/// One end of a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct End {
    pub node: usize,
    pub conn: ConnId,
}

#[derive(Debug)]
enum Ev {
    /// Deliver to a node incarnation.
    To {
        node: usize,
        inc: u64,
        ev: RingEvent,
    },
    /// A TCP connect attempt reaches its target.
    Dial {
        from: End,
        inc: u64,
        to: usize,
    },
    Restart {
        node: usize,
    },
}

pub struct Node {
    pub ring: Option<Ring>,
    pub inc: u64,
    /// Hung (SIGSTOP) until this time (ms): everything for it waits, TCP stays up.
    pub frozen_until: u64,
}

pub struct Stats {
    pub lines: u64,
    pub logins: u64,
    pub faults: u64,
    pub events: u64,
    pub gaps: u64,
    pub moves: u64,
    pub move_timeouts: u64,
    /// Users whose move timed out somewhere (Dovecot itself declares them possibly
    /// inconsistent: "its state may now be inconsistent"), or was made by a director cut off
    /// from the ring.
    pub timed_out_users: std::collections::BTreeSet<u32>,
    /// Moves made while a director was hung or the mover alone; their users are in
    /// `timed_out_users`.
    pub unreliable_moves: u64,
    /// The latest admin USER-MOVE of each user: which directors it reached.
    pub moves_reach: BTreeMap<u32, MoveReach>,
    /// Login checks not made against a synced director in another ring (split ring).
    pub split_skips: u64,
    /// Login checks not made because the user's latest move missed a director.
    pub missed_move_skips: u64,
    /// Login checks not made because a two-host conflict's outcome was still travelling.
    pub conflict_skips: u64,
    pub violations: Vec<String>,
    /// Connections closed by "Handshake timeout".
    pub handshake_timeouts: u64,
    /// Connections closed by "Ping timeout" or "Pong timeout".
    pub ping_timeouts: u64,
    /// Connections closed for a protocol error (garbage or a too long line): 60 s ban.
    pub protocol_errors: u64,
}

/// Where one USER-MOVE got to.
pub struct MoveReach {
    /// Each director's incarnation when the move was made (`None`: it was down).
    incs: Vec<Option<u64>>,
    /// Directors that received (or made) it.
    reached: std::collections::BTreeSet<usize>,
    /// A director restarted without having received it.
    missed: bool,
}

pub struct World {
    /// The configured state every (re)started director begins with.
    template: Directory,
    pub now: u64,
    pub nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: BTreeMap<usize, Ev>,
    seq: u64,
    /// Link ends: each end maps to the other one.
    links: BTreeMap<End, End>,
    /// Last scheduled delivery time per direction, for FIFO.
    fifo: BTreeMap<End, u64>,
    next_in: u64,
    pub rng: Rng,
    pub stats: Stats,
    /// Max extra delivery delay (ms).
    pub max_delay: u64,
    pub log: Vec<String>,
    pub trace: bool,
}

impl World {
    pub fn new(n: usize, nhosts: usize, seed: u64) -> Self {
        let mut w = World {
            template: new_directory(nhosts),
            now: T0,
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            seq: 0,
            links: BTreeMap::new(),
            fifo: BTreeMap::new(),
            next_in: 1,
            rng: Rng::new(seed),
            stats: Stats {
                lines: 0,
                logins: 0,
                faults: 0,
                events: 0,
                gaps: 0,
                moves: 0,
                move_timeouts: 0,
                timed_out_users: Default::default(),
                unreliable_moves: 0,
                moves_reach: BTreeMap::new(),
                split_skips: 0,
                missed_move_skips: 0,
                conflict_skips: 0,
                violations: Vec::new(),
                handshake_timeouts: 0,
                ping_timeouts: 0,
                protocol_errors: 0,
            },
            max_delay: 50,
            log: Vec::new(),
            trace: std::env::var("DIRECTOR_SIM_TRACE").is_ok(),
        };
        for _ in 0..n {
            w.nodes.push(Node {
                ring: None,
                inc: 0,
                frozen_until: 0,
            });
        }
        for i in 0..n {
            w.boot(i);
        }
        w
    }

    fn servers(&self) -> Vec<DirAddr> {
        (0..self.nodes.len()).map(dir_addr).collect()
    }

    fn boot(&mut self, i: usize) {
        let ring = Ring::new(dir_addr(i), &self.servers(), self.template.clone());
        self.nodes[i].inc += 1;
        self.nodes[i].ring = Some(ring);
        let inc = self.nodes[i].inc;
        self.push(
            self.now,
            Ev::To {
                node: i,
                inc,
                ev: RingEvent::Start,
            },
        );
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        let id = self.seq as usize;
        self.events.insert(id, ev);
        self.queue.push(Reverse((at, self.seq, id)));
    }

    fn delay(&mut self) -> u64 {
        self.rng.range(1, self.max_delay.max(2))
    }

    /// Run until `until` (ms).
    pub fn run_until(&mut self, until: u64) {
        while let Some(&Reverse((at, _, id))) = self.queue.peek() {
            if at > until || self.stats.events > MAX_EVENTS {
                break;
            }
            self.queue.pop();
            self.now = self.now.max(at);
            let ev = self.events.remove(&id).expect("queued");
            self.step(ev);
        }
        self.now = self.now.max(until);
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::To { node, inc, ev } => {
                let thaw = self.nodes[node].frozen_until;
                if self.now < thaw {
                    self.push(thaw, Ev::To { node, inc, ev });
                    return;
                }
                if self.nodes[node].inc == inc && self.nodes[node].ring.is_some() {
                    self.deliver(node, ev);
                }
            }
            Ev::Dial { from, inc, to } => {
                if self.nodes[from.node].inc != inc || self.nodes[from.node].ring.is_none() {
                    return;
                }
                if self.nodes[to].ring.is_none() {
                    let d = self.delay();
                    self.push(
                        self.now + d,
                        Ev::To {
                            node: from.node,
                            inc,
                            ev: RingEvent::Closed { conn: from.conn },
                        },
                    );
                    return;
                }
                self.next_in += 1;
                let there = End {
                    node: to,
                    conn: ConnId(self.next_in),
                };
                self.links.insert(from, there);
                self.links.insert(there, from);
                let to_inc = self.nodes[to].inc;
                let src_ip = dir_addr(from.node).ip;
                self.push(
                    self.now,
                    Ev::To {
                        node: to,
                        inc: to_inc,
                        ev: RingEvent::Connected {
                            conn: there.conn,
                            incoming: true,
                            peer_ip: src_ip,
                        },
                    },
                );
                // The dialler learns of the connection before any line can reach it.
                self.push(
                    self.now,
                    Ev::To {
                        node: from.node,
                        inc,
                        ev: RingEvent::Connected {
                            conn: from.conn,
                            incoming: false,
                            peer_ip: dir_addr(to).ip,
                        },
                    },
                );
            }
            Ev::Restart { node } => self.boot(node),
        }
    }

    /// Deliver one event to a node and carry out its effects.
    pub fn deliver(&mut self, node: usize, ev: RingEvent) -> Vec<RingEffect> {
        self.stats.events += 1;
        if self.trace {
            self.log
                .push(format!("{} d{} <- {:?}", self.now - T0, node, short(&ev)));
        }
        if let RingEvent::Line { bytes, .. } = &ev {
            // Its own USER-MOVE coming back round is not applied again.
            let own = format!("USER-MOVE\t{}\t", dir_addr(node).ip);
            if let Some(hash) = user_move_hash(bytes).filter(|_| !bytes.starts_with(own.as_bytes()))
            {
                if let Some(m) = self.stats.moves_reach.get_mut(&hash) {
                    m.reached.insert(node);
                }
            }
        }
        let ring = self.nodes[node].ring.as_mut().expect("up");
        let effects = ring.handle(ev, self.now);
        // The directory's full check walks every vhost point: run it every 16th step.
        let check = if self.stats.events % 16 == 0 {
            ring.check_invariants()
        } else {
            ring.check_ring_invariants()
        };
        if let Err(e) = check {
            panic!("invariant broken on d{node} at {}: {e}", self.now - T0);
        }
        let inc = self.nodes[node].inc;
        for eff in &effects {
            if self.trace {
                if let RingEffect::Log { .. } = eff {}
                self.log.push(format!(
                    "{} d{} -> {:?}",
                    self.now - T0,
                    node,
                    short_eff(eff)
                ));
            }
            match eff {
                RingEffect::Send { conn, line } => {
                    let me = End { node, conn: *conn };
                    let Some(&other) = self.links.get(&me) else {
                        continue;
                    };
                    self.stats.lines += 1;
                    let d = self.delay();
                    let at = (self.now + d).max(*self.fifo.get(&me).unwrap_or(&0));
                    self.fifo.insert(me, at);
                    let oinc = self.nodes[other.node].inc;
                    let bytes = line[..line.len() - 1].to_vec();
                    self.push(
                        at,
                        Ev::To {
                            node: other.node,
                            inc: oinc,
                            ev: RingEvent::Line {
                                conn: other.conn,
                                bytes,
                            },
                        },
                    );
                }
                RingEffect::Connect { conn, ip, port } => {
                    let to =
                        (0..self.nodes.len()).find(|&i| dir_addr(i) == DirAddr::new(*ip, *port));
                    let from = End { node, conn: *conn };
                    let d = self.delay();
                    match to {
                        Some(to) => self.push(self.now + d, Ev::Dial { from, inc, to }),
                        None => self.push(
                            self.now + d,
                            Ev::To {
                                node,
                                inc,
                                ev: RingEvent::Closed { conn: *conn },
                            },
                        ),
                    }
                }
                RingEffect::Close { conn, reason } => {
                    match reason.as_str() {
                        "Handshake timeout" => self.stats.handshake_timeouts += 1,
                        "Ping timeout" | "Pong timeout" => self.stats.ping_timeouts += 1,
                        r if r.starts_with("Invalid input: GARBAGE")
                            || r == "Too long input line" =>
                        {
                            self.stats.protocol_errors += 1
                        }
                        _ => {}
                    }
                    let me = End { node, conn: *conn };
                    self.fifo.remove(&me);
                    if let Some(other) = self.links.remove(&me) {
                        self.links.remove(&other);
                        let d = self.delay();
                        let at = (self.now + d).max(*self.fifo.get(&me).unwrap_or(&0));
                        let oinc = self.nodes[other.node].inc;
                        self.push(
                            at + 1,
                            Ev::To {
                                node: other.node,
                                inc: oinc,
                                ev: RingEvent::Closed { conn: other.conn },
                            },
                        );
                    }
                }
                // A director joining a ring deletes every host and user first (§4.5 "replace
                // all hosts"): a move it already received is gone there.
                RingEffect::Log { text, .. } if text.contains("replace all hosts") => {
                    for m in self.stats.moves_reach.values_mut() {
                        m.reached.remove(&node);
                    }
                }
                RingEffect::Log { text, .. } if text.contains("move timed out") => {
                    self.stats.move_timeouts += 1;
                    let hash = text.split(' ').nth(2).and_then(|h| h.parse::<u32>().ok());
                    self.stats.timed_out_users.extend(hash);
                }
                RingEffect::Kick { hash, .. } => {
                    // The login processes finish kicking a little later.
                    let d = self.delay();
                    let ev = RingEvent::KickDone { hash: *hash };
                    self.push(self.now + d, Ev::To { node, inc, ev });
                }
                RingEffect::WantWritable { conn } => {
                    // Written once the lines queued before it have left (FIFO per link).
                    let me = End { node, conn: *conn };
                    let at = (self.now + 1).max(*self.fifo.get(&me).unwrap_or(&0));
                    let ev = RingEvent::Writable { conn: *conn };
                    self.push(at, Ev::To { node, inc, ev });
                }
                RingEffect::ArmTimer { at_ms } => {
                    self.push(
                        (*at_ms).max(self.now),
                        Ev::To {
                            node,
                            inc,
                            ev: RingEvent::Timer,
                        },
                    );
                }
                _ => {}
            }
        }
        effects
    }

    /// Fault: reset one random live connection (both ends see it close, in-flight lines lost).
    pub fn reset_random_link(&mut self) {
        let ends: Vec<End> = self
            .links
            .keys()
            .copied()
            .filter(|e| e.conn.0 & ConnId::OUTGOING_BIT != 0)
            .collect();
        if ends.is_empty() {
            return;
        }
        let e = ends[self.rng.range(0, ends.len() as u64) as usize];
        let other = self.links.remove(&e).expect("linked");
        self.links.remove(&other);
        self.stats.faults += 1;
        for end in [e, other] {
            let inc = self.nodes[end.node].inc;
            // Bump FIFO so nothing queued after the reset is delivered on the dead link.
            self.fifo.remove(&end);
            self.push(
                self.now,
                Ev::To {
                    node: end.node,
                    inc,
                    ev: RingEvent::Closed { conn: end.conn },
                },
            );
        }
    }

    /// The running directors linked to `node` through left/right neighbours (either way),
    /// `node` included: the ring its broadcasts reach.
    pub fn ring_of(&self, node: usize) -> std::collections::BTreeSet<usize> {
        let index =
            |a: Option<DirAddr>| a.and_then(|a| (0..self.nodes.len()).find(|&i| dir_addr(i) == a));
        let mut edges = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(r) = n.ring.as_ref() {
                for j in [index(r.left_peer()), index(r.right_peer())]
                    .into_iter()
                    .flatten()
                {
                    if self.nodes[j].ring.is_some() {
                        edges.push((i, j));
                    }
                }
            }
        }
        let mut seen = std::collections::BTreeSet::from([node]);
        let mut grew = true;
        while grew {
            grew = false;
            for &(a, b) in &edges {
                if seen.contains(&a) != seen.contains(&b) {
                    seen.insert(a);
                    seen.insert(b);
                    grew = true;
                }
            }
        }
        seen
    }

    /// An admin USER-MOVE of `hash` is about to be made on `node`: track where it gets to.
    pub fn track_move(&mut self, node: usize, hash: u32) {
        let incs = self
            .nodes
            .iter()
            .map(|n| n.ring.as_ref().map(|_| n.inc))
            .collect();
        let reached = std::collections::BTreeSet::from([node]);
        let m = MoveReach {
            incs,
            reached,
            missed: false,
        };
        self.stats.moves_reach.insert(hash, m);
    }

    /// Whether the latest USER-MOVE of `hash` missed a director that was running when it was
    /// made (still running, or restarted since without having received it).
    pub fn move_missed(&self, hash: u32) -> bool {
        let Some(m) = self.stats.moves_reach.get(&hash) else {
            return false;
        };
        m.missed
            || m.incs.iter().enumerate().any(|(i, inc)| {
                inc.is_some_and(|inc| inc == self.nodes[i].inc) && !m.reached.contains(&i)
            })
    }

    /// Whether a `USER` of `hash` on `ip` or a `USER-KICK-HASH` of `hash` is on its way to a
    /// running director: the ring is still settling where the user belongs.
    pub fn user_update_in_flight(&self, hash: u32, ip: IpAddr) -> bool {
        let user = format!("USER\t{hash}\t{}", director_parsers::ip::ip_to_string(&ip));
        let kick = format!("\t{hash}\t");
        self.events.values().any(|ev| match ev {
            Ev::To {
                node,
                inc,
                ev: RingEvent::Line { bytes, .. },
            } if *inc == self.nodes[*node].inc => {
                let line = String::from_utf8_lossy(bytes);
                line.strip_prefix(&user)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('\t'))
                    || (line.starts_with("USER-KICK-HASH\t") && line.contains(&kick))
            }
            _ => false,
        })
    }

    /// Whether a director is running and not hung (it can take admin commands and logins).
    pub fn usable(&self, node: usize) -> bool {
        self.nodes[node].ring.is_some() && self.now >= self.nodes[node].frozen_until
    }

    /// Fault: a director hangs (SIGSTOP) for `ms`: it answers nothing, PINGs included, and
    /// then processes everything that queued up.
    pub fn freeze(&mut self, node: usize, ms: u64) {
        self.stats.faults += 1;
        self.nodes[node].frozen_until = self.now + ms;
    }

    /// Fault: something on `as_peer`'s address connects to `node` and stalls in the
    /// handshake: after VERSION (ME timeout) or, with `me`, after VERSION and ME (DONE
    /// timeout). Nothing it is sent goes anywhere.
    pub fn stall_handshake(&mut self, node: usize, as_peer: usize, me: bool) {
        self.stats.faults += 1;
        self.next_in += 1;
        let conn = ConnId(self.next_in);
        let inc = self.nodes[node].inc;
        let peer = dir_addr(as_peer);
        let mut evs = vec![
            RingEvent::Connected {
                conn,
                incoming: true,
                peer_ip: peer.ip,
            },
            RingEvent::Line {
                conn,
                bytes: b"VERSION\tdirector\t1\t9".to_vec(),
            },
        ];
        if me {
            let line = format!("ME\t{}\t{}\t{}", peer.ip, peer.port, self.now / 1000);
            evs.push(RingEvent::Line {
                conn,
                bytes: line.into_bytes(),
            });
        }
        for (i, ev) in evs.into_iter().enumerate() {
            self.push(self.now + i as u64, Ev::To { node, inc, ev });
        }
    }

    /// Fault: one end of a random live link receives a line it must reject (an unknown
    /// command, or more than 1024 bytes): it closes the link and bans the sender for 60 s.
    pub fn inject_protocol_error(&mut self, too_long: bool) {
        let ends: Vec<End> = self.links.keys().copied().collect();
        if ends.is_empty() {
            return;
        }
        let e = ends[self.rng.range(0, ends.len() as u64) as usize];
        self.stats.faults += 1;
        let inc = self.nodes[e.node].inc;
        let ev = if too_long {
            RingEvent::Failed {
                conn: e.conn,
                failure: ConnFailure::TooLongLine,
            }
        } else {
            RingEvent::Line {
                conn: e.conn,
                bytes: b"GARBAGE\tx".to_vec(),
            }
        };
        let at = (self.now + 1).max(*self.fifo.get(&self.links[&e]).unwrap_or(&0));
        self.push(
            at,
            Ev::To {
                node: e.node,
                inc,
                ev,
            },
        );
    }

    /// Fault: a director crashes and comes back after `down_ms`.
    pub fn restart(&mut self, node: usize, down_ms: u64) {
        self.stats.faults += 1;
        let mine: Vec<End> = self
            .links
            .keys()
            .copied()
            .filter(|e| e.node == node)
            .collect();
        for e in mine {
            if let Some(other) = self.links.remove(&e) {
                self.links.remove(&other);
                let inc = self.nodes[other.node].inc;
                let d = self.delay();
                self.push(
                    self.now + d,
                    Ev::To {
                        node: other.node,
                        inc,
                        ev: RingEvent::Closed { conn: other.conn },
                    },
                );
            }
        }
        for m in self.stats.moves_reach.values_mut() {
            if m.incs[node] == Some(self.nodes[node].inc) && !m.reached.contains(&node) {
                m.missed = true;
            }
        }
        self.nodes[node].ring = None;
        self.nodes[node].inc += 1;
        self.nodes[node].frozen_until = 0;
        self.push(self.now + down_ms, Ev::Restart { node });
    }
}

/// The user hash of a `USER-MOVE` line.
fn user_move_hash(line: &[u8]) -> Option<u32> {
    let rest = line.strip_prefix(b"USER-MOVE\t")?;
    let field = rest.split(|&b| b == b'\t').nth(3)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

fn short(ev: &RingEvent) -> String {
    match ev {
        RingEvent::Line { conn, bytes } => format!(
            "{:x} {}",
            conn.0,
            String::from_utf8_lossy(bytes).replace('\t', " ")
        ),
        other => format!("{other:?}"),
    }
}

fn short_eff(eff: &RingEffect) -> String {
    match eff {
        RingEffect::Send { conn, line } => format!(
            "send {:x} {}",
            conn.0,
            String::from_utf8_lossy(line).replace('\t', " ").trim_end()
        ),
        RingEffect::Log { text, .. } => format!("log {text}"),
        other => format!("{other:?}"),
    }
}
