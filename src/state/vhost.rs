//! The consistent-hashing ring of one tag ("vhosts").
//!
//! Mirrors `mail_vhost_add()`, `mail_tag_vhosts_sort_ring()` and
//! `mail_host_get_by_hash_ring()` in Dovecot's `src/director/mail-host.c`
//! (`user-directory.md` §4, `ring-protocol.md` §7.3): each up host contributes
//! `vhost_count` points keyed by MD5(`<canonical ip>-<i>`), sorted by (key, ip); a user hash
//! goes to the first point whose key is ≥ it, wrapping to the first point.

use director_parsers::ip::ip_to_string;
use md5::{Digest, Md5};
use std::net::IpAddr;

/// The ring key of vhost number `index` of the host whose canonical address text is `ip_text`.
pub fn vhost_key(ip_text: &str, index: u32) -> u32 {
    let mut md5 = Md5::new();
    md5.update(ip_text.as_bytes());
    md5.update(format!("-{index}").as_bytes());
    let d = md5.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// One tag's ring: (key, host) points sorted by key, then by host IP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VhostRing {
    points: Vec<(u32, IpAddr)>,
}

impl VhostRing {
    /// Build a ring from `(ip, vhost_count)` of the tag's usable (up) hosts.
    pub fn build(hosts: impl IntoIterator<Item = (IpAddr, u32)>) -> Self {
        let mut points = Vec::new();
        for (ip, count) in hosts {
            let text = ip_to_string(&ip);
            // Hash the address once and extend a copy per index, as Dovecot does.
            let mut base = Md5::new();
            base.update(text.as_bytes());
            points.reserve(count as usize);
            for i in 0..count {
                let mut md5 = base.clone();
                md5.update(format!("-{i}").as_bytes());
                let d = md5.finalize();
                points.push((u32::from_be_bytes([d[0], d[1], d[2], d[3]]), ip));
            }
        }
        points.sort_unstable();
        VhostRing { points }
    }

    /// The host for user hash `hash`; `None` for an empty ring.
    pub fn choose(&self, hash: u32) -> Option<IpAddr> {
        let idx = self.points.partition_point(|&(key, _)| key < hash);
        self.points
            .get(idx)
            .or_else(|| self.points.first())
            .map(|&(_, ip)| ip)
    }

    /// Whether no host contributes to this ring.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The sorted (key, host) points.
    pub fn points(&self) -> &[(u32, IpAddr)] {
        &self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Sample keys of `user-directory.md` §4 [verified].
    #[test]
    fn sample_keys() {
        assert_eq!(vhost_key("10.0.0.1", 0), 1014535201);
        assert_eq!(vhost_key("10.0.0.1", 0), 0x3c789421);
        assert_eq!(vhost_key("10.0.0.1", 1), 3096594127);
        assert_eq!(vhost_key("10.0.0.1", 99), 3544998699);
        assert_eq!(vhost_key("10.0.0.2", 0), 977724322);
        assert_eq!(vhost_key("10.0.0.3", 0), 4140462410);
        assert_eq!(vhost_key("2001:db8::1", 0), 718735967);
    }

    /// The 10.0.0.1-3 × 100 ring of `user-directory.md` §4 [verified].
    #[test]
    fn sample_ring() {
        let ring = VhostRing::build([
            (ip("10.0.0.1"), 100),
            (ip("10.0.0.2"), 100),
            (ip("10.0.0.3"), 100),
        ]);
        let p = ring.points();
        assert_eq!(p.len(), 300);
        assert_eq!(p[0], (4679418, ip("10.0.0.3")));
        assert_eq!(p[299], (4285388947, ip("10.0.0.3")));
        let first5: Vec<(u32, IpAddr)> = p[..5].to_vec();
        assert_eq!(
            first5,
            [
                (4679418, ip("10.0.0.3")),
                (9647523, ip("10.0.0.1")),
                (29473875, ip("10.0.0.2")),
                (40677071, ip("10.0.0.1")),
                (43287597, ip("10.0.0.3")),
            ]
        );
        // First key ≥ h, not the last key ≤ h; above the largest key wraps to the first.
        assert_eq!(ring.choose(9647523), Some(ip("10.0.0.1")));
        assert_eq!(ring.choose(9647524), Some(ip("10.0.0.2")));
        assert_eq!(ring.choose(u32::MAX), Some(ip("10.0.0.3")));
        assert_eq!(ring.choose(0), Some(ip("10.0.0.3")));
    }

    #[test]
    fn empty_ring_has_no_host() {
        assert_eq!(VhostRing::build([]).choose(5), None);
        assert_eq!(VhostRing::build([(ip("10.0.0.1"), 0)]).choose(5), None);
    }
}
