//! The director's `lip=` parsing, including what a *failed* parse leaves behind.
//!
//! Dovecot parses every `lip=` field into the same `struct ip_addr` with `net_addr2ip`
//! (`src/lib/net.c`). Its dotted-quad fast path stores each octet as soon as it has read
//! it, so a value that fails half-way (`1.2.300.4`, `10.0.0.3x`) has already overwritten
//! the leading octets, while the address family stays what it was. The result decides the
//! `director_proxy_maybe` "self" rule, so it is emulated here; the golden tests in
//! `golden.rs` come from the real 2.3.19.1 director. Everything the fast path does not
//! accept goes to [`crate::ip::parse_ip`] (IPv6 and `inet_aton` forms).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ip::parse_ip;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Family {
    #[default]
    Unset,
    V4,
    V6,
}

/// `struct ip_addr`: a family and the union's 16 bytes (IPv4 uses the first 4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct CIpAddr {
    family: Family,
    bytes: [u8; 16],
}

impl CIpAddr {
    /// `net_addr2ip(text, self)`: whether it succeeded; on failure `self` may be partly
    /// overwritten, exactly as in Dovecot.
    pub(super) fn parse_into(&mut self, text: &[u8]) -> bool {
        if self.inet4_fast(text) {
            return true;
        }
        match parse_ip(text) {
            Some(IpAddr::V4(v4)) => {
                self.family = Family::V4;
                self.bytes[..4].copy_from_slice(&v4.octets());
            }
            Some(IpAddr::V6(v6)) => {
                self.family = Family::V6;
                self.bytes = v6.octets();
            }
            None => return false,
        }
        true
    }

    /// `net_addr2ip_inet4_fast`: a single decimal number, or four decimal parts (any number
    /// of leading zeros), each octet stored as soon as it is read.
    fn inet4_fast(&mut self, text: &[u8]) -> bool {
        let Some((mut num, mut rest)) = parse_uint_prefix(text) else {
            return false;
        };
        if rest.is_empty() {
            self.family = Family::V4;
            self.bytes[..4].copy_from_slice(&num.to_be_bytes());
            return true;
        }
        for i in 0..4 {
            let Ok(octet) = u8::try_from(num) else {
                return false;
            };
            self.bytes[i] = octet;
            if i == 3 {
                break;
            }
            let Some((n, r)) = rest.strip_prefix(b".").and_then(parse_uint_prefix) else {
                return false;
            };
            (num, rest) = (n, r);
        }
        if !rest.is_empty() {
            return false;
        }
        self.family = Family::V4;
        true
    }

    /// The address the comparison in `login_host_request_is_self` sees; `None` when no
    /// `lip=` ever set a family.
    pub(super) fn get(&self) -> Option<IpAddr> {
        match self.family {
            Family::Unset => None,
            Family::V4 => {
                let [a, b, c, d, ..] = self.bytes;
                Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            }
            Family::V6 => Some(IpAddr::V6(Ipv6Addr::from(self.bytes))),
        }
    }
}

/// Dovecot's `str_parse_uint`: leading decimal digits (at least one) as an unsigned int,
/// and the rest of the text; overflow fails.
fn parse_uint_prefix(text: &[u8]) -> Option<(u32, &[u8])> {
    let end = text
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    if end == 0 {
        return None;
    }
    let num = text[..end].iter().try_fold(0u32, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })?;
    Some((num, &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(texts: &[&str]) -> Option<IpAddr> {
        let mut ip = CIpAddr::default();
        for t in texts {
            ip.parse_into(t.as_bytes());
        }
        ip.get()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn successes() {
        assert_eq!(after(&["10.0.0.3"]), ip("10.0.0.3"));
        assert_eq!(after(&["0010.0.0.3"]), ip("10.0.0.3"));
        assert_eq!(after(&["167772163"]), ip("10.0.0.3"));
        assert_eq!(after(&["10.3"]), ip("10.0.0.3"));
        assert_eq!(after(&["0x0a000003"]), ip("10.0.0.3"));
        assert_eq!(after(&["[2001:db8::1]"]), ip("2001:db8::1"));
        assert_eq!(after(&[]), None);
    }

    /// Failed parses keep the family and whatever octets were already stored.
    #[test]
    fn failures_overwrite_leading_octets() {
        assert_eq!(after(&["bogus"]), None);
        assert_eq!(after(&["10.0.0.3x"]), None);
        assert_eq!(after(&["10.0.0.3", "bogus"]), ip("10.0.0.3"));
        assert_eq!(after(&["10.0.0.3", "1.2.300.4"]), ip("1.2.0.3"));
        assert_eq!(after(&["10.0.0.3", "10.0.300.9"]), ip("10.0.0.3"));
        assert_eq!(after(&["9.9.9.9", "10.0.0.3x"]), ip("10.0.0.3"));
        assert_eq!(after(&["9.9.9.9", "10.0.0.3."]), ip("10.0.0.3"));
        assert_eq!(after(&["10.0.0.3", "4294967296"]), ip("10.0.0.3"));
        assert_eq!(after(&["::1", "10.0.0.3x"]), ip("a00:3::1"));
    }
}
