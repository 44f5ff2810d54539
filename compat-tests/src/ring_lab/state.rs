//! What each member's director says, through real `doveadm -f tab director ...`, and
//! whether the members agree: `ring status` (every member synced, same shape), `status`
//! (host list) and `map -f <users file>` (USER-LIST: every user on the same host).
//! Disagreements come back as a readable diff.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::member::Member;

/// A `doveadm -f tab` table: the header and the rows, split at TAB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column titles.
    pub header: Vec<String>,
    /// One entry per row.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses `doveadm -f tab` output (header line, then rows).
    pub fn parse(text: &str) -> Table {
        let mut lines = text.lines().filter(|l| !l.is_empty());
        let split = |l: &str| l.split('\t').map(str::to_string).collect::<Vec<_>>();
        let header = lines.next().map(split).unwrap_or_default();
        Table {
            header,
            rows: lines.map(split).collect(),
        }
    }

    /// Index of column `title`.
    pub fn col(&self, title: &str) -> Option<usize> {
        self.header.iter().position(|h| h == title)
    }

    /// The rows as TAB-joined lines, sorted (for set comparisons and diffs).
    pub fn sorted_lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self.rows.iter().map(|r| r.join("\t")).collect();
        v.sort();
        v
    }
}

/// Runs `doveadm -f tab director <args>` on `m`; an error carries exit code and stderr.
pub fn doveadm_table(m: &Member, args: &[&str]) -> Result<Table, String> {
    let out = m.doveadm(args);
    if !out.status.success() {
        return Err(format!(
            "{}: doveadm director {} exited {:?}: {}{}",
            m.label(),
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(Table::parse(&String::from_utf8_lossy(&out.stdout)))
}

/// The rows of `ring status` as `(ip:port, type, status)`.
fn ring_rows(t: &Table) -> Result<Vec<(String, String, String)>, String> {
    let (ip, port, ty, st) = (
        t.col("director ip"),
        t.col("port"),
        t.col("type"),
        t.col("status"),
    );
    let (Some(ip), Some(port), Some(ty), Some(st)) = (ip, port, ty, st) else {
        return Err(format!("ring status header {:?}", t.header));
    };
    let get = |r: &Vec<String>, i: usize| r.get(i).cloned().unwrap_or_default();
    Ok(t.rows
        .iter()
        .map(|r| {
            (
                format!("{}:{}", get(r, ip), get(r, port)),
                get(r, ty),
                get(r, st),
            )
        })
        .collect())
}

/// Checks one member's `ring status`: it lists exactly `ring`, says `ring synced` for
/// itself, has a synced left and right, and no pending, removed or syncing entry.
/// Returns the table's shape (rows as `type/status/filled-columns`, sorted) for comparing
/// members: real and ours must print the same shape.
pub fn check_ring_synced(m: &Member, ring: &[SocketAddr]) -> Result<Vec<String>, String> {
    let t = doveadm_table(m, &["ring", "status"])?;
    let rows = ring_rows(&t)?;
    let show = || {
        format!(
            "{}: ring status:\n{}",
            m.label(),
            t.sorted_lines().join("\n")
        )
    };
    let listed: BTreeSet<String> = rows.iter().map(|r| r.0.clone()).collect();
    let want: BTreeSet<String> = ring.iter().map(ToString::to_string).collect();
    if listed != want {
        return Err(format!("lists {listed:?}, want {want:?}; {}", show()));
    }
    let me = m.ring_addr().to_string();
    if !rows
        .iter()
        .any(|r| r.0 == me && r.1 == "self" && r.2 == "ring synced")
    {
        return Err(format!("self is not `ring synced`; {}", show()));
    }
    if ring.len() > 1 {
        for side in ["left", "right"] {
            let n = rows
                .iter()
                .filter(|r| r.1 == side && r.2 == "synced")
                .count();
            if n != 1 {
                return Err(format!("{n} synced {side} connections; {}", show()));
            }
        }
    }
    if let Some(r) = rows
        .iter()
        .find(|r| !matches!(r.1.as_str(), "self" | "left" | "right" | ""))
    {
        return Err(format!("pending or removed entry {r:?}; {}", show()));
    }
    let mut shape: Vec<String> = t
        .rows
        .iter()
        .zip(&rows)
        .map(|(raw, (_, ty, st))| {
            let filled: String = raw
                .iter()
                .map(|f| if f.is_empty() || f == "-" { '.' } else { 'x' })
                .collect();
            format!("{ty}/{st}/{filled}")
        })
        .collect();
    shape.sort();
    Ok(shape)
}

/// Lines present in `a` but not in `b`.
fn minus(a: &[String], b: &[String]) -> Vec<String> {
    let b: BTreeSet<&String> = b.iter().collect();
    a.iter().filter(|l| !b.contains(l)).cloned().collect()
}

/// `None` when every member's `lines` are equal; else a diff of each against the first.
pub fn diff(what: &str, views: &[(String, Vec<String>)]) -> Option<String> {
    let (first_label, first) = views.first()?;
    if views.iter().all(|(_, v)| v == first) {
        return None;
    }
    let mut out = format!(
        "{what} differs between members; {first_label} says:\n  {}\n",
        first.join("\n  ")
    );
    for (label, v) in &views[1..] {
        if v == first {
            continue;
        }
        out.push_str(&format!(
            "{label}: only here: {:?}; missing here: {:?}\n",
            minus(v, first),
            minus(first, v)
        ));
    }
    Some(out)
}

/// What a converged ring looks like, for reports.
#[derive(Debug, Clone)]
pub struct Converged {
    /// `doveadm director status` rows (the same on every member).
    pub hosts: Vec<String>,
    /// `doveadm director map -f <users>` rows (the same on every member).
    pub users: Vec<String>,
}

/// Seconds since 1970 of a doveadm time `YYYY-MM-DD HH:MM:SS` (UTC), for differences.
pub fn parse_time(t: &str) -> Option<i64> {
    let (date, time) = t.split_once(' ')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let h: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let ([y, m, d], [hh, mm, ss]) = (d.as_slice(), h.as_slice()) else {
        return None;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if *m <= 2 { y - 1 } else { *y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// How strictly [`converged`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness<'a> {
    /// Everything, including user expiry times and per-host user counts.
    Exact,
    /// Everything but the expiry times of these users: refreshed while a restarted director
    /// was handshaking, their USER may have reached it without a timestamp (a connection
    /// whose peer's VERSION has not arrived yet gets the old `USER` form, in Dovecot too)
    /// and been ignored as not newer, until their next refresh.
    ExactBut(&'a BTreeSet<String>),
    /// While logins go on, expiry times move, counts grow and new users are on their way
    /// round the ring: compare hosts without their user counts, and the host of every user
    /// that every member already lists.
    Routes,
}

/// User map rows, without the expiry time of `users`.
fn exact_but(t: &Table, users: &BTreeSet<String>) -> Vec<String> {
    let (Some(u), Some(e)) = (t.col("user"), t.col("expire time")) else {
        return t.sorted_lines();
    };
    let mut v: Vec<String> = t
        .rows
        .iter()
        .map(|r| {
            let skip = r.get(u).is_some_and(|name| users.contains(name));
            r.iter()
                .enumerate()
                .map(|(i, f)| if skip && i == e { "(any)" } else { f.as_str() })
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect();
    v.sort();
    v
}

/// Drops the columns `Routes` does not compare.
fn routes_only(t: &Table, drop: &str) -> Vec<String> {
    let Some(c) = t.col(drop) else {
        return t.sorted_lines();
    };
    let mut v: Vec<String> = t
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .filter(|(i, _)| *i != c)
                .map(|(_, f)| f.as_str())
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect();
    v.sort();
    v
}

/// Keeps only the user rows every member lists (by their first two columns, name and
/// hash); a user listed everywhere with different hosts still shows as a difference.
fn common_only(views: &mut [(String, Vec<String>)]) {
    let key = |l: &String| l.split('\t').take(2).collect::<Vec<_>>().join("\t");
    let mut common: Option<BTreeSet<String>> = None;
    for (_, v) in views.iter() {
        let keys: BTreeSet<String> = v.iter().map(key).collect();
        common = Some(match common {
            None => keys,
            Some(c) => c.intersection(&keys).cloned().collect(),
        });
    }
    let common = common.unwrap_or_default();
    for (_, v) in views.iter_mut() {
        v.retain(|l| common.contains(&key(l)));
    }
}

/// One look at every member: all synced with the same ring status shape, and the same
/// host list and user map everywhere. `Err` is the first difference found, as a diff.
pub fn converged(
    members: &[&Member],
    ring: &[SocketAddr],
    users_file: &Path,
    strict: Strictness<'_>,
) -> Result<Converged, String> {
    let mut shapes = Vec::new();
    for m in members {
        shapes.push((m.label(), check_ring_synced(m, ring)?));
    }
    if let Some(d) = diff("ring status shape (type/status/filled columns)", &shapes) {
        return Err(d);
    }
    let mut hosts = Vec::new();
    let mut users = Vec::new();
    let file = users_file.display().to_string();
    for m in members {
        let h = doveadm_table(m, &["status"])?;
        let u = doveadm_table(m, &["map", "-f", &file])?;
        let (h, u) = match strict {
            Strictness::Exact => (h.sorted_lines(), u.sorted_lines()),
            Strictness::ExactBut(users) => (h.sorted_lines(), exact_but(&u, users)),
            Strictness::Routes => (routes_only(&h, "users"), routes_only(&u, "expire time")),
        };
        hosts.push((m.label(), h));
        users.push((m.label(), u));
    }
    if let Some(d) = diff("host list (doveadm director status)", &hosts) {
        return Err(d);
    }
    if strict == Strictness::Routes {
        common_only(&mut users);
    }
    if let Some(d) = diff("user map (doveadm director map -f)", &users) {
        return Err(d);
    }
    Ok(Converged {
        hosts: hosts.swap_remove(0).1,
        users: users.swap_remove(0).1,
    })
}

/// Polls [`converged`] until it holds or `within` passes; returns the state and how long
/// it took, or the last difference seen.
pub fn wait_converged(
    members: &[&Member],
    ring: &[SocketAddr],
    users_file: &Path,
    strict: Strictness<'_>,
    within: Duration,
) -> Result<(Converged, Duration), String> {
    let start = Instant::now();
    loop {
        match converged(members, ring, users_file, strict) {
            Ok(c) => return Ok((c, start.elapsed())),
            Err(e) if start.elapsed() > within => {
                return Err(format!(
                    "not converged after {:.1} s: {e}",
                    start.elapsed().as_secs_f64()
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
