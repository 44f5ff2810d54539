//! The ring's `hosts_hash` (`mail_hosts_hash` in Dovecot's `src/director/mail-host.c`), sent
//! in every `SYNC`: directors whose hashes differ never sync, so it must be bit-identical.
//!
//! Algorithm (ring-protocol.md §7.1): hosts in IP order; for each, continue a CRC-32 over
//! `le32(down XOR vhost_count)`, then `le32(ip hash)` (IPv4: the address bytes in network
//! order; IPv6: Dovecot's `net_ip_hash`), then the tag bytes. A result of 0 becomes 1.
//! `last_updown_change` and hostnames are not part of it.

use std::net::IpAddr;

/// The fields of one mail host that enter the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashedHost<'a> {
    /// Host address.
    pub ip: IpAddr,
    /// Configured vhost count.
    pub vhost_count: u32,
    /// Whether the host is down.
    pub down: bool,
    /// Tag, empty when untagged.
    pub tag: &'a [u8],
}

/// Reflected CRC-32 (polynomial 0xEDB88320) lookup table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Continue a standard CRC-32 (zlib's `crc32(crc, data)`, Dovecot's `crc32_data_more`).
pub fn crc32_more(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Dovecot's `net_ip_hash`, as the 4 bytes a little-endian director feeds to the CRC.
fn ip_hash_bytes(ip: &IpAddr) -> [u8; 4] {
    match ip {
        // s_addr is stored in network order, so its memory bytes are the octets.
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let mut h: u32 = 0;
            for &b in &v6.octets() {
                h = (h << 4).wrapping_add(u32::from(b));
                let g = h & 0xF000_0000;
                if g != 0 {
                    h ^= g >> 24;
                    h ^= g;
                }
            }
            h.to_le_bytes()
        }
    }
}

/// The hosts hash of a set of mail hosts, in any order (they are sorted by IP first).
pub fn hosts_hash<'a>(hosts: impl IntoIterator<Item = HashedHost<'a>>) -> u32 {
    let mut sorted: Vec<HashedHost<'a>> = hosts.into_iter().collect();
    sorted.sort_by_key(|h| h.ip);
    let mut crc = 0u32;
    for h in &sorted {
        let num = u32::from(h.down) ^ h.vhost_count;
        crc = crc32_more(crc, &num.to_le_bytes());
        crc = crc32_more(crc, &ip_hash_bytes(&h.ip));
        crc = crc32_more(crc, h.tag);
    }
    if crc == 0 {
        1
    } else {
        crc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(ip: &str, vhost_count: u32, down: bool, tag: &'static [u8]) -> HashedHost<'static> {
        HashedHost {
            ip: ip.parse().unwrap(),
            vhost_count,
            down,
            tag,
        }
    }

    #[test]
    fn crc32_check_value() {
        // The standard CRC-32 check value.
        assert_eq!(crc32_more(0, b"123456789"), 0xCBF4_3926);
    }

    /// The vectors of ring-protocol.md §7.1 and the lab captures.
    #[test]
    fn spec_vectors() {
        let cases: &[(&[HashedHost<'static>], u32)] = &[
            (&[], 1),
            (&[host("10.0.0.1", 100, false, b"")], 691_642_842),
            (
                &[
                    host("10.0.0.1", 100, false, b""),
                    host("10.0.0.2", 100, false, b""),
                ],
                697_653_630,
            ),
            (
                &[
                    host("10.0.0.1", 100, true, b""),
                    host("10.0.0.2", 100, false, b""),
                ],
                2_281_556_207,
            ),
            (&[host("10.0.0.1", 100, false, b"a")], 2_392_374_312),
            (&[host("::1", 100, false, b"")], 2_302_613_069),
            (
                &[
                    host("127.0.1.1", 100, false, b""),
                    host("127.0.1.2", 100, false, b""),
                    host("127.0.1.3", 100, false, b""),
                ],
                1_410_458_694,
            ),
            // ring-host-down.txt: 127.0.1.2 down, SYNC hosts_hash 4202264023.
            (
                &[
                    host("127.0.1.1", 100, false, b""),
                    host("127.0.1.2", 100, true, b""),
                    host("127.0.1.3", 100, false, b""),
                ],
                4_202_264_023,
            ),
        ];
        for (hosts, want) in cases {
            assert_eq!(hosts_hash(hosts.iter().copied()), *want, "{hosts:?}");
        }
    }

    #[test]
    fn order_does_not_matter() {
        let a = host("10.0.0.1", 100, true, b"");
        let b = host("10.0.0.2", 100, false, b"");
        assert_eq!(hosts_hash([a, b]), hosts_hash([b, a]));
    }
}
