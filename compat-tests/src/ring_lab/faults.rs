//! A member crashes (SIGKILL) while a bounded login load runs through the proxies of the
//! other members; it comes back, and the ring must heal to the same state everywhere.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::checks::CONVERGE;
use super::load::{double_routed, summarize, Load, Summary};
use super::{report, RingLab, Strictness};

/// How long the crashed member stays down.
const DOWN: Duration = Duration::from_secs(3);
/// Load before the crash and after the heal.
const MARGIN: Duration = Duration::from_millis(1000);
/// Bounds of the load.
const MAX_LOGINS: usize = 5000;
const MAX_TIME: Duration = Duration::from_secs(90);

/// Slack around the restart-to-heal window for [`Strictness::ExactBut`].
const RACE: Duration = Duration::from_secs(1);
/// New users the load may log in (most of them first seen during the fault).
const NEW_USERS: usize = 300;

/// What one crash measured.
#[derive(Debug, Clone)]
pub struct CrashNumbers {
    /// Logins in the whole run.
    pub all: Summary,
    /// Logins that ended between the crash and the heal.
    pub during: Summary,
    /// From the crash until the survivors were synced again among themselves.
    pub reform: Duration,
    /// From the restart until every member was synced and agreed again.
    pub heal: Duration,
}

/// Crashes member `victim` while load runs through every other started member's proxy
/// (known users and new ones), changes a backend's vhost count on a survivor while it is
/// down, restarts it after [`DOWN`], and waits for all members to agree again, with the
/// change. Fails on double routing, on no successful login during the fault, or when the
/// ring does not heal.
pub fn crash_and_heal(
    lab: &mut RingLab,
    test: &str,
    victim: usize,
) -> Result<CrashNumbers, String> {
    let all: Vec<usize> = (0..lab.ring().len())
        .filter(|&i| lab.member(i).is_ok())
        .collect();
    let others: Vec<usize> = all.iter().copied().filter(|&i| i != victim).collect();
    let label = lab.member(victim).map_err(|e| e.to_string())?.label();
    // Known users interleaved with new ones, so both kinds log in during the fault.
    let mut users = Vec::new();
    for k in 0..NEW_USERS {
        users.push(format!("crash{victim}user{k:03}"));
        users.push(lab.users[k % lab.users.len()].clone());
    }
    let load = Load::start(lab.proxies(&others), users, 2, MAX_LOGINS, MAX_TIME);
    std::thread::sleep(MARGIN);
    let crashed = Instant::now();
    lab.member_mut(victim).map_err(|e| e.to_string())?.crash();
    let reformed = lab.wait_agree(&others, Strictness::Routes, CONVERGE);
    let reform = crashed.elapsed();
    if let Err(e) = reformed {
        let records = load.finish();
        return Err(format!(
            "after {label} crashed, the others did not sync: {e}\nload: {:?}",
            summarize(&records, None)
        ));
    }
    let failed_by = failed_by(lab, &others, victim);
    // A host change the crashed member misses: it must learn it when it comes back.
    let vhosts = format!("{}", 40 + victim);
    let be = lab.backend_ip(1).to_string();
    let survivor = lab.member(others[0]).map_err(|e| e.to_string())?;
    let out = survivor.doveadm(&["update", &be, &vhosts]);
    if !out.status.success() {
        load.finish();
        return Err(format!(
            "doveadm director update on {} while {label} was down: {}",
            survivor.label(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::thread::sleep(DOWN.saturating_sub(crashed.elapsed()));
    let restarted = Instant::now();
    if let Err(e) = lab.member_mut(victim).map_err(|e| e.to_string())?.restart() {
        load.finish();
        return Err(format!("restart of {label}: {e}"));
    }
    let healed = lab.wait_agree(&all, Strictness::Routes, CONVERGE);
    let heal = restarted.elapsed();
    let healed_at = Instant::now();
    std::thread::sleep(MARGIN);
    let records = load.finish();
    healed.map_err(|e| format!("after {label} came back, the ring did not heal: {e}"))?;
    let mut seen: Vec<String> = records.iter().map(|r| r.user.clone()).collect();
    seen.sort();
    seen.dedup();
    lab.add_users(&seen).map_err(|e| e.to_string())?;
    // Once the load is over, expiry times and user counts must agree too, except for users
    // refreshed while the restarted director was handshaking (see `Strictness::ExactBut`).
    let racing: BTreeSet<String> = records
        .iter()
        .filter(|r| r.at + RACE >= restarted && r.at <= healed_at + RACE)
        .map(|r| r.user.clone())
        .collect();
    let (c, _) = lab
        .wait_agree(&all, Strictness::ExactBut(&racing), CONVERGE)
        .map_err(|e| format!("after {label} came back and the load ended: {e}"))?;
    let row = c.hosts.iter().find(|l| l.starts_with(&format!("{be}\t")));
    if row.and_then(|l| l.split('\t').nth(2)) != Some(vhosts.as_str()) {
        return Err(format!(
            "the vhost count {vhosts} of {be} set while {label} was down is not what the \
             healed ring says: {row:?}"
        ));
    }
    if c.users.len() != lab.users.len() {
        return Err(format!(
            "after the crash of {label}, {} users logged in but the directors list {}",
            lab.users.len(),
            c.users.len()
        ));
    }
    let n = CrashNumbers {
        all: summarize(&records, None),
        during: summarize(&records, Some((crashed, healed_at))),
        reform,
        heal,
    };
    report(
        test,
        &format!(
            "crash of {label}: {} logins ({} failed), {} during the fault ({} failed), \
             others synced again {:.1} s after the crash (last failed: {}), ring healed {:.1} s \
             after restart{}",
            n.all.logins,
            n.all.failed,
            n.during.logins,
            n.during.failed,
            n.reform.as_secs_f64(),
            failed_by.join(", "),
            n.heal.as_secs_f64(),
            if n.all.examples.is_empty() {
                String::new()
            } else {
                format!("; failures: {:?}", n.all.examples)
            }
        ),
    );
    let doubles = double_routed(&records);
    if !doubles.is_empty() {
        return Err(format!("crash of {label}: double routing {doubles:?}"));
    }
    if n.during.ok == 0 {
        return Err(format!(
            "crash of {label}: no login succeeded during the fault: {n:?}"
        ));
    }
    Ok(n)
}

/// What each member of `others` lists as the victim's `last failed` in `ring status`.
fn failed_by(lab: &RingLab, others: &[usize], victim: usize) -> Vec<String> {
    let ip = lab.ring()[victim].ip().to_string();
    lab.pick(others)
        .into_iter()
        .map(|m| {
            let t = super::state::doveadm_table(m, &["ring", "status"]);
            let when = t.ok().and_then(|t| {
                let (i, f) = (t.col("director ip")?, t.col("last failed")?);
                let row = t.rows.iter().find(|r| r.get(i) == Some(&ip))?;
                row.get(f).cloned()
            });
            format!(
                "{} says {}",
                m.spec.name,
                when.unwrap_or_else(|| "?".into())
            )
        })
        .collect()
}
