//! Two tuned lab proxies whose directors form a ring (both real Dovecot directors, or both
//! our `directord`): A on the lower loopback address, B on the higher, ring port
//! [`RING_PORT`], each proxy's logins asking its own director.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::tuned::{RingTuning, TunedProxy, Tuning, RING_PORT};
use super::{Backend, ProxyKind, PORTS};
use crate::admin::AdminClient;
use crate::dovecot::Dovecot;
use crate::{err, loopback};

/// A ring of two proxies' directors.
#[derive(Debug)]
pub struct RingPair {
    /// The director (and proxy) on the lower address.
    pub a: TunedProxy,
    /// The one on the higher address.
    pub b: TunedProxy,
}

impl RingPair {
    /// Starts A, then B, with `tuning` (its `ring` is filled in per member).
    pub fn start(
        dovecot: &Dovecot,
        kind: ProxyKind,
        backends: &[Backend],
        tuning: &Tuning,
    ) -> std::io::Result<RingPair> {
        let mut ports = PORTS.to_vec();
        ports.push(RING_PORT);
        // A has the lower address in every pair, so that two pairs' lists sort alike.
        let first = loopback::free_ip(&ports)?;
        let second = loop {
            let ip = loopback::free_ip(&ports)?;
            if ip != first {
                break ip;
            }
        };
        let (ip_a, ip_b) = (first.min(second), first.max(second));
        let member = |me: Ipv4Addr| Tuning {
            ring: Some(RingTuning {
                me,
                servers: vec![ip_a, ip_b],
            }),
            ..tuning.clone()
        };
        let a = TunedProxy::start(dovecot, kind, backends, &member(ip_a))?;
        let b = TunedProxy::start(dovecot, kind, backends, &member(ip_b))?;
        Ok(RingPair { a, b })
    }

    /// Waits (at most `within`) until both directors list themselves synced with a left and
    /// a right connection.
    pub fn wait_synced(&self, within: Duration) -> std::io::Result<()> {
        let deadline = Instant::now() + within;
        while !(synced(&self.a) && synced(&self.b)) {
            if Instant::now() > deadline {
                return Err(err(format!(
                    "ring never synced\n{}\n{}",
                    self.a.logs(),
                    self.b.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// `DIRECTOR-LIST` of `p` with the addresses as `A`/`B` and the values that vary run to
    /// run (byte counters, times, round trips) replaced by whether they are set, so that two
    /// pairs can be compared: `[who, port, type, failed?, status, ...]`, as a sorted set
    /// (the left and right lines of one director come in creation order, which depends on
    /// which connect won).
    pub fn director_list(&self, p: &TunedProxy) -> Vec<Vec<String>> {
        let who = |ip: &str| {
            if ip == self.a.ip().to_string() {
                "A".to_string()
            } else if ip == self.b.ip().to_string() {
                "B".to_string()
            } else {
                ip.to_string()
            }
        };
        raw_director_list(p)
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let field = |i: usize| f.get(i).unwrap_or(&"").to_string();
                let mut out = vec![who(f[0]), field(1), field(2)];
                out.push(format!("failed={}", f.get(3).is_some_and(|v| *v != "0")));
                // The self line's ring status and sync ms; a connection's status and
                // whether bytes went both ways.
                out.push(field(4));
                if f.len() >= 12 {
                    let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
                    out.push(format!("traffic={}", n(6) > 0 && n(7) > 0));
                    out.push(format!("times={}", n(10) > 0 && n(11) > 0));
                } else if f.len() > 5 {
                    out.push(format!("sync_ms_numeric={}", f[5].parse::<u32>().is_ok()));
                }
                out
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

/// The raw `DIRECTOR-LIST` lines of `p` (empty if the director does not answer).
pub fn raw_director_list(p: &TunedProxy) -> Vec<String> {
    let Ok(mut c) = AdminClient::connect(&p.admin_socket(), Duration::from_secs(5)) else {
        return Vec::new();
    };
    let Ok(list) = c.request(b"DIRECTOR-LIST").and_then(|first| {
        let mut all = vec![first];
        all.extend(c.read_list()?);
        Ok(all)
    }) else {
        return Vec::new();
    };
    list.iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// Whether `p`'s director is synced with a left and a right connection.
fn synced(p: &TunedProxy) -> bool {
    let text = raw_director_list(p);
    let has = |needle: &str| text.iter().any(|l| l.contains(needle));
    (has("\tself\t") && has("ring synced") || has("\tsynced\t"))
        && has("\tleft\t")
        && has("\tright\t")
}
