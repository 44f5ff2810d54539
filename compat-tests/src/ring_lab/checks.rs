//! The checks every mixed-ring test runs on a converged ring: logins through every member's
//! proxy agree with every member's user map, `doveadm director status <user>` names the
//! same host everywhere, and host changes made with doveadm on any member show on all.

use std::time::{Duration, Instant};

use super::load::{burst, double_routed, summarize, Load, Record};
use super::state::{diff, doveadm_table, Table};
use super::{report, RingLab};

/// How long a change may take to show on every member.
pub const CONVERGE: Duration = Duration::from_secs(20);
/// A mail server address no test logs in to (host changes only).
const SPARE_HOST: &str = "127.254.0.9";

/// Users [`logins_agree`] logs in (the first ones of the lab).
const LOGIN_USERS: usize = 24;

/// Logs the first [`LOGIN_USERS`] users in twice, through the members' proxies in turn,
/// then [`verify`]s. Returns the number of logins.
pub fn logins_agree(lab: &RingLab, test: &str, members: &[usize]) -> Result<usize, String> {
    let users: Vec<String> = lab.users.iter().take(LOGIN_USERS).cloned().collect();
    let want = users.len() * 2;
    let load = Load::start(
        lab.proxies(members),
        users,
        2,
        want,
        Duration::from_secs(60),
    );
    let records = load.finish_when_done();
    verify(lab, test, members, &records, want, "in turn")
}

/// Logs every user in through every member's proxy at the same moment ([`burst`]), then
/// [`verify`]s. Returns the number of logins.
pub fn burst_agree(lab: &RingLab, test: &str, members: &[usize]) -> Result<usize, String> {
    let records = burst(&lab.proxies(members), &lab.users);
    let want = lab.users.len() * members.len();
    verify(lab, test, members, &records, want, "all at once per user")
}

/// Every login of `records` (`want` of them) reached a backend and no user reached two;
/// then every member lists every user with the same host, the host each login reached,
/// and `doveadm director status <user>` prints the same everywhere.
fn verify(
    lab: &RingLab,
    test: &str,
    members: &[usize],
    records: &[Record],
    want: usize,
    how: &str,
) -> Result<usize, String> {
    let s = summarize(records, None);
    if s.failed > 0 || s.logins != want {
        return Err(format!("logins through {members:?} ({how}): {s:?}"));
    }
    let doubles = double_routed(records);
    if !doubles.is_empty() {
        return Err(format!("double routing ({how}): {doubles:?}"));
    }
    let (c, took) = lab.wait_converged(members, CONVERGE)?;
    let mapped = c.users.len();
    if mapped != lab.users.len() {
        return Err(format!(
            "user map lists {mapped} users, {} logged in:\n{}",
            lab.users.len(),
            c.users.join("\n")
        ));
    }
    // The backend each login reached is the host every director has for the user.
    for r in records {
        let Ok(be) = &r.outcome else { continue };
        let row = c
            .users
            .iter()
            .find(|l| l.starts_with(&format!("{}\t", r.user)))
            .ok_or_else(|| format!("{} not in the user map", r.user))?;
        let host = row.split('\t').nth(2).unwrap_or("");
        if &lab.backend_name(host) != be {
            return Err(format!(
                "{} reached {be} but the directors say {row}",
                r.user
            ));
        }
    }
    for user in lab.users.iter().take(3) {
        user_status_agrees(lab, members, user)?;
    }
    report(
        test,
        &format!(
            "{} logins ({how}) through {} proxies ok, no double routing, {} users mapped \
             alike on every member ({:.1} s)",
            s.logins,
            members.len(),
            mapped,
            took.as_secs_f64()
        ),
    );
    Ok(s.logins)
}

/// `doveadm director status <user>` prints the same on every member.
pub fn user_status_agrees(lab: &RingLab, members: &[usize], user: &str) -> Result<(), String> {
    let mut views = Vec::new();
    for m in lab.pick(members) {
        let t = doveadm_table(m, &["status", user])?;
        views.push((m.label(), t.sorted_lines()));
    }
    match diff(&format!("doveadm director status {user}"), &views) {
        Some(d) => Err(d),
        None => Ok(()),
    }
}

/// What the spare host's row must show: `(vhosts, state)`, or `None` for no row.
type Want<'a> = Option<(&'a str, &'a str)>;

/// One host change: `doveadm director <args>` on member `on`, then every member of
/// `members` must show `want` for the spare host (`None`: not listed).
fn host_step(
    lab: &RingLab,
    members: &[usize],
    on: usize,
    args: &[&str],
    want: Want,
) -> Result<Duration, String> {
    let m = lab.member(on).map_err(|e| e.to_string())?;
    let out = m.doveadm(args);
    if !out.status.success() {
        return Err(format!(
            "{}: doveadm director {}: {:?} {}",
            m.label(),
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let start = Instant::now();
    loop {
        let (c, _) = lab.wait_converged(members, CONVERGE)?;
        let t = Table {
            header: Vec::new(),
            rows: c
                .hosts
                .iter()
                .map(|l| l.split('\t').map(str::to_string).collect())
                .collect(),
        };
        let row = t
            .rows
            .iter()
            .find(|r| r.first().map(String::as_str) == Some(SPARE_HOST));
        let seen = row.map(|r| {
            (
                r.get(2).cloned().unwrap_or_default(),
                r.get(3).cloned().unwrap_or_default(),
            )
        });
        let want_owned = want.map(|(v, s)| (v.to_string(), s.to_string()));
        if seen == want_owned {
            return Ok(start.elapsed());
        }
        if start.elapsed() > CONVERGE {
            return Err(format!(
                "after `{}` on {}: spare host shows {seen:?} everywhere, want {want_owned:?}:\n{}",
                args.join(" "),
                m.label(),
                c.hosts.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// add / update / down / up / remove of a spare host, each made on a different member
/// (round-robin over `members`); after each, every member lists the same hosts and the
/// change. Returns how long the slowest change took to show everywhere.
pub fn host_changes_agree(lab: &RingLab, test: &str, members: &[usize]) -> Result<(), String> {
    let on = |k: usize| members[k % members.len()];
    let steps: [(&[&str], Want); 5] = [
        (&["add", SPARE_HOST, "50"], Some(("50", "up"))),
        (&["update", SPARE_HOST, "20"], Some(("20", "up"))),
        (&["down", SPARE_HOST], Some(("20", "down"))),
        (&["up", SPARE_HOST], Some(("20", "up"))),
        (&["remove", SPARE_HOST], None),
    ];
    let mut slowest = Duration::ZERO;
    for (k, (args, want)) in steps.iter().enumerate() {
        slowest = slowest.max(host_step(lab, members, on(k), args, *want)?);
    }
    report(
        test,
        &format!(
            "host add/update/down/up/remove on {} members: same host list everywhere (slowest {:.1} s)",
            members.len(),
            slowest.as_secs_f64()
        ),
    );
    Ok(())
}
