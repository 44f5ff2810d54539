//! Ring join: how long a director takes from its start until it says `ring synced`, when
//! its one peer already knows many users (created by auth requests on the peer). Every
//! pairing: real joins real, ours joins ours, and both mixed ones.
//!
//! Two loopback addresses (127.64.0.0/10, free on the ring port) hold the peer and the
//! joiner. The peer's `director_servers` lists only itself, and it learns the joiner by
//! `DIRECTOR-ADD` once its users exist; the joiner's lists both. That is how a director
//! is added to a running ring. The joiner is started fresh for each join
//! and stopped after it; the peer lives for one user count and one peer kind.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use compat_tests::admin::AdminClient;

use crate::admin;
use crate::load::{self, Load, Users};
use crate::phases::{first_line, human, Subjects};
use crate::report::{median, Cell, Goal, Table};
use crate::target::{Kind, RingSpot, Settings, Target};

/// The ring port on both addresses.
const RING_PORT: u16 = 9090;
/// How long one admin request may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between two DIRECTOR-LIST polls of a joining director.
const POLL: Duration = Duration::from_millis(2);
/// The 1M-user join target for ours, in seconds.
const JOIN_TARGET_SECS: f64 = 0.5;

/// How much of the ring join to measure.
#[derive(Debug, Clone)]
pub struct RingPlan {
    /// Users the peer knows before each series of joins.
    pub steps: Vec<u64>,
    /// Joins per (peer, joiner) pairing and step.
    pub reps: usize,
    /// Time limit for creating one step's users in one peer.
    pub fill_limit: Duration,
    /// No peer starts filling after this much time since program start.
    pub budget: Duration,
    /// No join starts after this much time since program start.
    pub hard_stop: Duration,
    /// How long a join may take before it counts as failed.
    pub join_timeout: Duration,
}

/// One join's outcome: seconds to `ring synced`, and the users the joiner then listed.
struct Join {
    secs: f64,
    users: u64,
}

/// Measures every pairing at every step and adds the rows.
pub fn ring_join(plan: &RingPlan, subjects: &Subjects, table: &mut Table) {
    let spots = match spots() {
        Ok(s) => s,
        Err(e) => {
            crate::progress(&format!("ring: {e}"));
            return;
        }
    };
    for &step in &plan.steps {
        // results[peer][joiner]: seconds per join, or the first error.
        let mut secs: [[Vec<f64>; 2]; 2] = Default::default();
        let mut errs: [[Option<String>; 2]; 2] = Default::default();
        for peer_kind in [Kind::Real, Kind::Ours] {
            let p = index(peer_kind);
            let peer = match start_peer(plan, subjects, &spots, peer_kind, step) {
                Ok(peer) => peer,
                Err(e) => {
                    crate::progress(&format!("ring {}: peer {e}", peer_kind.label()));
                    errs[p] = [Some(e.clone()), Some(e)];
                    continue;
                }
            };
            let (peer, known) = peer;
            for rep in 0..plan.reps {
                let order = if rep % 2 == 0 {
                    [Kind::Real, Kind::Ours]
                } else {
                    [Kind::Ours, Kind::Real]
                };
                for joiner in order {
                    if crate::interrupted() {
                        break;
                    }
                    let j = index(joiner);
                    if crate::elapsed() > plan.hard_stop {
                        errs[p][j].get_or_insert_with(|| "skipped: time budget used up".into());
                        continue;
                    }
                    if subjects.only.is_some_and(|k| k != joiner) {
                        errs[p][j].get_or_insert_with(|| "skipped (--only)".into());
                        continue;
                    }
                    match join(plan, subjects, &spots, joiner) {
                        Ok(r) => {
                            crate::progress(&format!(
                                "ring {}: {} joins {} knowing {known} users: synced after {:.3} s, lists {} users",
                                human(step),
                                joiner.label(),
                                peer_kind.label(),
                                r.secs,
                                r.users
                            ));
                            if r.users == known {
                                secs[p][j].push(r.secs);
                            } else {
                                errs[p][j].get_or_insert_with(|| {
                                    format!("synced with {} of {known} users", r.users)
                                });
                            }
                        }
                        Err(e) => {
                            crate::progress(&format!(
                                "ring {}: {} joining {}: {e}",
                                human(step),
                                joiner.label(),
                                peer_kind.label()
                            ));
                            errs[p][j].get_or_insert(first_line(&e));
                        }
                    }
                }
            }
            drop(peer);
        }
        let cell = |p: Kind, j: Kind| -> Cell {
            let (p, j) = (index(p), index(j));
            median(&secs[p][j]).ok_or_else(|| errs[p][j].clone().unwrap_or_else(|| "no run".into()))
        };
        let n = human(step);
        let goal = if step >= 1_000_000 {
            Goal::OursAtMost(JOIN_TARGET_SECS)
        } else {
            Goal::None
        };
        table.push(
            format!("ring join s, peer knows {n} users (real joins real / ours joins ours)"),
            cell(Kind::Real, Kind::Real),
            cell(Kind::Ours, Kind::Ours),
            3,
            goal,
        );
        table.push(
            format!("ring join s, {n} users, mixed (real joins ours / ours joins real)"),
            cell(Kind::Ours, Kind::Real),
            cell(Kind::Real, Kind::Ours),
            3,
            goal,
        );
    }
}

fn index(k: Kind) -> usize {
    match k {
        Kind::Real => 0,
        Kind::Ours => 1,
    }
}

/// The peer's and the joiner's places in the ring.
struct Spots {
    peer: RingSpot,
    joiner: RingSpot,
}

fn spots() -> Result<Spots, String> {
    let a = compat_tests::loopback::free_ip(&[RING_PORT]).map_err(|e| e.to_string())?;
    let b = loop {
        let b = compat_tests::loopback::free_ip(&[RING_PORT]).map_err(|e| e.to_string())?;
        if b != a {
            break b;
        }
    };
    let spot = |me: Ipv4Addr, servers: String| RingSpot {
        me,
        port: RING_PORT,
        servers,
    };
    // The peer's ring is itself alone, so it is synced at once and creates users without
    // waiting for a missing director (both kinds wait about 20 s before they declare
    // themselves alone). Then the peer is told about the joiner (DIRECTOR-ADD), and the
    // joiner lists both: that is how a director is added to a running ring.
    Ok(Spots {
        peer: spot(a, format!("{a}:{RING_PORT}")),
        joiner: spot(b, format!("{a}:{RING_PORT} {b}:{RING_PORT}")),
    })
}

fn settings(subjects: &Subjects, spot: &RingSpot) -> Settings {
    Settings {
        ring: Some(spot.clone()),
        ..subjects.settings.clone()
    }
}

/// Starts the peer alone in its ring and creates `users` users on it by auth requests.
/// Returns it and the users it lists.
fn start_peer(
    plan: &RingPlan,
    subjects: &Subjects,
    spots: &Spots,
    kind: Kind,
    users: u64,
) -> Result<(Target, u64), String> {
    let left = plan.budget.saturating_sub(crate::elapsed());
    if left < Duration::from_secs(2) {
        return Err(format!(
            "skipped: ring time budget of {:?} used up",
            plan.budget
        ));
    }
    let peer = subjects.start_with(kind, &settings(subjects, &spots.peer))?;
    let l = Load {
        socket: peer.login_socket(),
        conns: 4,
        window: 32,
        users: Users::Distinct {
            prefix: "ring".into(),
            start: 0,
        },
        max_requests: users,
        max_time: plan.fill_limit.min(left),
    };
    let t0 = Instant::now();
    let r = load::run(&l).map_err(|e| format!("filling: {}", first_line(&e.to_string())))?;
    if r.replies() < users || r.fail > 0 {
        return Err(format!(
            "only {} of {users} users created ({} FAIL) in {:.1} s",
            r.ok,
            r.fail,
            t0.elapsed().as_secs_f64()
        ));
    }
    let known = admin::user_list(&peer.admin_socket())
        .map_err(|e| format!("USER-LIST: {}", first_line(&e.to_string())))?
        .users;
    // `doveadm director add <joiner>`: a director drops ring connections from addresses
    // it does not know.
    let add = format!("DIRECTOR-ADD\t{}\t{}", spots.joiner.me, spots.joiner.port);
    let added = AdminClient::connect(&peer.admin_socket(), ADMIN_TIMEOUT)
        .and_then(|mut c| c.request(add.as_bytes()))
        .map_err(|e| format!("DIRECTOR-ADD: {e}"))?;
    if added != b"OK" {
        return Err(format!(
            "DIRECTOR-ADD answered {:?}",
            String::from_utf8_lossy(&added)
        ));
    }
    crate::progress(&format!(
        "ring {}: peer {} lists {known} users after {:.1} s of logins",
        human(users),
        kind.label(),
        t0.elapsed().as_secs_f64()
    ));
    Ok((peer, known))
}

/// Starts a joiner, times it to `ring synced`, counts its users, stops it.
fn join(plan: &RingPlan, subjects: &Subjects, spots: &Spots, kind: Kind) -> Result<Join, String> {
    let t0 = Instant::now();
    let joiner = subjects.start_with(kind, &settings(subjects, &spots.joiner))?;
    let deadline = t0 + plan.join_timeout;
    let mut admin = None;
    loop {
        if Instant::now() > deadline {
            crate::progress(&format!(
                "ring: {} joiner not synced; its log:\n{}",
                kind.label(),
                joiner.log_tail()
            ));
            return Err(format!("not synced after {:?}", plan.join_timeout));
        }
        if crate::interrupted() {
            return Err("interrupted".into());
        }
        if admin.is_none() {
            admin = AdminClient::connect(&joiner.admin_socket(), ADMIN_TIMEOUT).ok();
        }
        let Some(c) = admin.as_mut() else {
            std::thread::sleep(POLL);
            continue;
        };
        match director_list(c) {
            Ok(lines) if synced(&lines) => break,
            Ok(_) => std::thread::sleep(POLL),
            Err(_) => admin = None,
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let users = count_users(&joiner.admin_socket())?;
    Ok(Join { secs, users })
}

fn director_list(c: &mut AdminClient) -> std::io::Result<Vec<String>> {
    let first = c.request(b"DIRECTOR-LIST")?;
    let mut all = vec![first];
    if !all[0].is_empty() {
        all.extend(c.read_list()?);
    }
    Ok(all
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect())
}

/// `ring synced` on the self line, and a synced left or right connection (a director that
/// has not met its peer yet is not what is timed).
fn synced(lines: &[String]) -> bool {
    let self_synced = lines
        .iter()
        .any(|l| l.contains("\tself\t") && l.contains("\tring synced\t"));
    let conn_synced = lines.iter().any(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        f.len() > 4 && matches!(f[2], "left" | "right") && f[4] == "synced"
    });
    self_synced && conn_synced
}

fn count_users(socket: &Path) -> Result<u64, String> {
    admin::user_list(socket)
        .map(|l| l.users)
        .map_err(|e| format!("USER-LIST: {}", first_line(&e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::synced;

    #[test]
    fn synced_needs_self_and_a_synced_neighbour() {
        let l = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // Shapes from admin-protocol.md §6.13.
        let alone = l(&["127.64.0.1\t9090\tself\t0\tring synced\t0"]);
        assert!(!synced(&alone));
        let handshaking = l(&[
            "127.64.0.1\t9090\tself\t0\tring handshaking\t0",
            "127.64.0.2\t9090\tright\t0\thandshaking - 5000 USERs received\t0\t1\t2\t0\t0\t0\t0",
        ]);
        assert!(!synced(&handshaking));
        let done = l(&[
            "127.64.0.1\t9090\tself\t0\tring synced\t3",
            "127.64.0.2\t9090\tleft\t0\tsynced\t0\t1\t2\t0\t0\t0\t0",
            "127.64.0.2\t9090\tright\t0\tsynced\t0\t1\t2\t0\t0\t0\t0",
        ]);
        assert!(synced(&done));
    }
}
