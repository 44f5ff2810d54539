//! Structural invariants of [`Directory`], checked by tests after every operation.
//!
//! Dovecot's own `test-user-directory.c` asserts the expiry order; we check that plus the
//! bookkeeping that ties users, hosts, tags, rings and moves together.

use super::directory::{Directory, UserKey};
use super::hosts::TagId;
use std::collections::HashMap;

/// Every invariant, or a description of the first one broken.
pub(super) fn check(dir: &Directory) -> Result<(), String> {
    let mut prev_ip = None;
    for (id, host) in dir.hosts.iter_with_ids() {
        if prev_ip.is_some_and(|p| p >= host.ip) {
            return Err(format!("hosts not strictly sorted at {}", host.ip));
        }
        prev_ip = Some(host.ip);
        let tag = dir
            .tags
            .get(host.tag_id as usize)
            .ok_or_else(|| format!("host {} has unknown tag id {}", host.ip, host.tag_id))?;
        if tag.name != host.tag {
            return Err(format!(
                "host {} tag name disagrees with its tag id",
                host.ip
            ));
        }
        if dir.hosts.find(host.ip) != Some(id) {
            return Err(format!("host {} not found by its own IP", host.ip));
        }
    }
    for (i, a) in dir.tags.iter().enumerate() {
        if dir.tags[..i].iter().any(|b| b.name == a.name) {
            return Err(format!("tag {:?} exists twice", a.name));
        }
    }

    let mut counts: HashMap<u32, u32> = HashMap::new();
    let mut moving = 0usize;
    for (t, tag) in dir.tags.iter().enumerate() {
        tag.users
            .check()
            .map_err(|e| format!("tag {:?}: {e}", tag.name))?;
        for user in tag.users.iter() {
            if !dir.hosts.contains(user.host) {
                return Err(format!("user {} points at a removed host", user.hash));
            }
            let host = dir.hosts.get(user.host);
            if host.tag_id != t as TagId {
                return Err(format!(
                    "user {} in tag {:?} points at host {} of tag {:?}",
                    user.hash, tag.name, host.ip, host.tag
                ));
            }
            *counts.entry(user.host).or_default() += 1;
            let key = UserKey {
                tag: t as TagId,
                hash: user.hash,
            };
            if user.kill.is_some() != dir.moves.contains_key(&key) {
                return Err(format!(
                    "user {} kill state and move table disagree",
                    user.hash
                ));
            }
            moving += usize::from(user.kill.is_some());
        }
        check_ring(dir, t as TagId)?;
    }
    for (id, host) in dir.hosts.iter_with_ids() {
        let n = counts.get(&id).copied().unwrap_or(0);
        if host.user_count != n {
            return Err(format!(
                "host {} user_count {} but {n} users point at it",
                host.ip, host.user_count
            ));
        }
    }
    if moving != dir.moves.len() {
        return Err(format!(
            "{} moves recorded, {moving} users being moved",
            dir.moves.len()
        ));
    }
    Ok(())
}

/// The tag's ring holds exactly `vhost_count` sorted points of each of its up hosts and
/// nothing else. (Rebuilding it to compare would cost an MD5 per point per check; the keys
/// themselves are covered by the known-answer tests.)
fn check_ring(dir: &Directory, tag: TagId) -> Result<(), String> {
    let ring = &dir.tags[tag as usize].ring;
    let name = &dir.tags[tag as usize].name;
    let points = ring.points();
    if points.windows(2).any(|w| w[0] > w[1]) {
        return Err(format!("tag {name:?} ring is not sorted"));
    }
    let mut per_host: HashMap<std::net::IpAddr, u32> = HashMap::new();
    for &(_, ip) in points {
        *per_host.entry(ip).or_default() += 1;
    }
    let mut expected = 0usize;
    for host in dir.hosts.iter().filter(|h| h.tag_id == tag) {
        let want = if host.down { 0 } else { host.vhost_count };
        let got = per_host.get(&host.ip).copied().unwrap_or(0);
        if got != want {
            return Err(format!(
                "tag {name:?} ring has {got} points of {} (want {want})",
                host.ip
            ));
        }
        expected += want as usize;
    }
    if expected != points.len() {
        return Err(format!("tag {name:?} ring has points of foreign hosts"));
    }
    Ok(())
}
