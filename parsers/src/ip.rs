//! IP addresses as the director parses and prints them.
//!
//! Parsing follows Dovecot's `net_addr2ip` (`src/lib/net.c`): a strict dotted quad or a
//! single decimal number is IPv4; text containing `:` is IPv6 (optionally in brackets);
//! otherwise the libc `inet_aton` forms (`10.1`, `0x0a000001`, octal parts). Printing
//! follows glibc's `inet_ntop`, which differs from Rust's `Display` for a few IPv6 forms.
//! Ordering (IPv4 before IPv6, then bytes in network order) is `IpAddr`'s own `Ord`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parse an IP address exactly as Dovecot's `net_addr2ip` accepts it.
pub fn parse_ip(text: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(text).ok()?;
    if let Some(v4) = parse_strict_v4(s) {
        return Some(IpAddr::V4(v4));
    }
    if s.contains(':') {
        let inner = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    inet_aton(s).map(IpAddr::V4)
}

fn parse_strict_v4(s: &str) -> Option<Ipv4Addr> {
    let s = s.as_bytes();
    if s.is_empty() {
        return None;
    }
    if !s.contains(&b'.') {
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        return std::str::from_utf8(s)
            .ok()?
            .parse::<u32>()
            .ok()
            .map(Ipv4Addr::from);
    }
    // Four decimal parts of 0..=255, leading zeros allowed (`u8::from_str`), in one pass
    // over the bytes: every ring USER line carries an address.
    let mut octets = [0u8; 4];
    let (mut n, mut val, mut digits) = (0, 0u32, 0);
    for &b in s {
        match b {
            b'0'..=b'9' => {
                val = val * 10 + u32::from(b - b'0');
                if val > 255 {
                    return None;
                }
                digits += 1;
            }
            b'.' if digits > 0 && n < 3 => {
                octets[n] = val as u8;
                n += 1;
                (val, digits) = (0, 0);
            }
            _ => return None,
        }
    }
    if digits == 0 || n != 3 {
        return None;
    }
    octets[3] = val as u8;
    Some(Ipv4Addr::from(octets))
}

/// glibc `inet_aton`: 1-4 parts, each decimal, `0x` hex or leading-`0` octal; the last part
/// fills the remaining bytes.
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(4);
    for p in &parts {
        vals.push(c_strtoul(p)?);
    }
    let last = *vals.last()?;
    let fixed = &vals[..vals.len() - 1];
    if fixed.iter().any(|&v| v > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - fixed.len() as u32);
    if rest_bits < 32 && last >= (1u64 << rest_bits) {
        return None;
    }
    if last > u32::MAX as u64 {
        return None;
    }
    let mut addr: u32 = 0;
    for (i, &v) in fixed.iter().enumerate() {
        addr |= (v as u32) << (24 - 8 * i as u32);
    }
    addr |= last as u32;
    Some(Ipv4Addr::from(addr))
}

fn c_strtoul(p: &str) -> Option<u64> {
    if p.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        (h, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    if digits.is_empty() {
        // "0x" alone is accepted by glibc as 0
        return (radix == 16).then_some(0);
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Canonical text of an address, byte-identical to glibc's `inet_ntop`.
pub fn ip_to_string(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => ipv4_text(v4, &mut [0; IPV4_MAX]).to_owned(),
        IpAddr::V6(v6) => ipv6_ntop(v6),
    }
}

/// Longest dotted quad: `255.255.255.255`.
pub const IPV4_MAX: usize = 15;

/// Decimal text of every octet value: up to three digits, then the digit count.
const OCTET_TEXT: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut o = 0;
    while o < 256 {
        let v = o as u8;
        t[o] = if v >= 100 {
            [b'0' + v / 100, b'0' + v / 10 % 10, b'0' + v % 10, 3]
        } else if v >= 10 {
            [b'0' + v / 10, b'0' + v % 10, 0, 2]
        } else {
            [b'0' + v, 0, 0, 1]
        };
        o += 1;
    }
    t
};

/// An IPv4 address as a dotted quad in `buf`, without `core::fmt` (a tenth of the
/// instructions of `Display`, which matters once per auth reply). Same text as `inet_ntop`.
pub fn ipv4_text<'a>(ip: &Ipv4Addr, buf: &'a mut [u8; IPV4_MAX]) -> &'a str {
    let n = ipv4_write(ip, buf);
    // Only ASCII digits and dots were written.
    std::str::from_utf8(&buf[..n]).unwrap_or_default()
}

/// Writes the dotted quad into `buf`; returns its length.
fn ipv4_write(ip: &Ipv4Addr, buf: &mut [u8; IPV4_MAX]) -> usize {
    let mut n = 0;
    for (i, &o) in ip.octets().iter().enumerate() {
        if i != 0 {
            buf[n] = b'.';
            n += 1;
        }
        // Three bytes are copied whatever the digit count (at most 12 + 3 = IPV4_MAX);
        // the unused ones are overwritten next or lie past the end.
        let t = &OCTET_TEXT[usize::from(o)];
        buf[n..n + 3].copy_from_slice(&t[..3]);
        n += usize::from(t[3]);
    }
    n
}

/// Appends the canonical text of an address ([`ip_to_string`]) to `out`.
pub fn push_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut buf = [0; IPV4_MAX];
            let n = ipv4_write(v4, &mut buf);
            out.extend_from_slice(&buf[..n]);
        }
        IpAddr::V6(v6) => out.extend_from_slice(ipv6_ntop(v6).as_bytes()),
    }
}

fn ipv6_ntop(ip: &Ipv6Addr) -> String {
    let w = ip.segments();
    // longest run of zero words (first one wins on ties), only if at least 2 long
    let (mut best_base, mut best_len) = (usize::MAX, 0usize);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let start = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_base = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_base = usize::MAX;
    }
    let mut out = String::with_capacity(39);
    let in_best = |i: usize| best_base != usize::MAX && i >= best_base && i < best_base + best_len;
    for i in 0..8 {
        if in_best(i) {
            if i == best_base {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        // embedded IPv4 for ::a.b.c.d and ::ffff:a.b.c.d, as glibc prints them
        if i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            let _ = write!(
                out,
                "{}.{}.{}.{}",
                w[6] >> 8,
                w[6] & 0xff,
                w[7] >> 8,
                w[7] & 0xff
            );
            return out;
        }
        let _ = write!(out, "{:x}", w[i]);
    }
    if best_base != usize::MAX && best_base + best_len == 8 {
        out.push(':');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        parse_ip(s.as_bytes()).map(|ip| ip_to_string(&ip))
    }

    #[test]
    fn dovecot_forms() {
        assert_eq!(p("10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(p("5").as_deref(), Some("0.0.0.5"));
        assert_eq!(p("10.1").as_deref(), Some("10.0.0.1"));
        // leading zeros in a dotted quad are decimal for Dovecot (real director: 0010.0.0.3 = 10.0.0.3)
        assert_eq!(p("0010.0.0.3").as_deref(), Some("10.0.0.3"));
        assert_eq!(p("0x0a000001").as_deref(), Some("10.0.0.1"));
        assert_eq!(p("2001:DB8::0001").as_deref(), Some("2001:db8::1"));
        assert_eq!(p("[2001:db8::1]").as_deref(), Some("2001:db8::1"));
        assert_eq!(p("4294967295").as_deref(), Some("255.255.255.255"));
        assert_eq!(p("4294967296"), None);
        assert_eq!(p("10.0.0.256"), None);
        assert_eq!(p("host.example"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("-1"), None);
    }

    /// The dotted-quad rule as first written, with `str::split` and `u8::from_str`.
    fn strict_v4_reference(s: &str) -> Option<Ipv4Addr> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return None;
        }
        if !s.contains('.') {
            return s.parse::<u32>().ok().map(Ipv4Addr::from);
        }
        let mut octets = [0u8; 4];
        let mut n = 0;
        for part in s.split('.') {
            if n == 4 || part.is_empty() {
                return None;
            }
            octets[n] = part.parse::<u8>().ok()?;
            n += 1;
        }
        (n == 4).then(|| Ipv4Addr::from(octets))
    }

    #[test]
    fn byte_parser_is_the_reference_rule() {
        let mut cases: Vec<String> = [
            "",
            ".",
            "..",
            "...",
            "....",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "0256.1.1.1",
            "00000000255.0.0.1",
            "1.2.3.4a",
            "1.2.3.-4",
            "255.255.255.255",
            "255.255.255.256",
            "999.1.1.1",
            "0.0.0.0",
            "4294967295",
            "4294967296",
            "12a",
            "1.2.3.4 ",
            " 1.2.3.4",
            "01.02.03.04",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for o in [0, 1, 9, 10, 25, 99, 100, 199, 254, 255, 256, 300, 1000] {
            cases.push(format!("{o}.{o}.1.{o}"));
            cases.push(format!("10.0.{o}"));
        }
        for c in &cases {
            assert_eq!(parse_strict_v4(c), strict_v4_reference(c), "{c:?}");
        }
    }

    #[test]
    fn ipv4_text_matches_display_everywhere_it_can_differ() {
        // Display is glibc's dotted quad for IPv4; every octet value in every position.
        for o in 0..=255u8 {
            for ip in [
                Ipv4Addr::new(o, 0, 9, 255),
                Ipv4Addr::new(10, o, 100, 1),
                Ipv4Addr::new(99, 5, o, 0),
                Ipv4Addr::new(255, 255, 255, o),
            ] {
                let want = ip.to_string();
                assert_eq!(ipv4_text(&ip, &mut [0; IPV4_MAX]), want);
                let mut out = b"x".to_vec();
                push_ip(&mut out, &IpAddr::V4(ip));
                assert_eq!(out, [b"x", want.as_bytes()].concat());
            }
        }
        assert_eq!(p("255.255.255.255").as_deref(), Some("255.255.255.255"));
        assert_eq!(p("0").as_deref(), Some("0.0.0.0"));
    }

    #[test]
    fn ntop_matches_glibc() {
        let cases = [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("1:0:0:2::", "1:0:0:2::"),
            ("1:0:2:0:0:3::", "1:0:2::3:0:0"),
            ("::ffff:0:0", "::ffff:0.0.0.0"),
            ("::0:1:0", "::0.1.0.0"),
            ("0:0:0:0:0:1:0:0", "::1:0:0"),
            ("1:0:3:4:5:6:7:8", "1:0:3:4:5:6:7:8"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ];
        for (input, want) in cases {
            assert_eq!(p(input).as_deref(), Some(want), "{input}");
        }
    }
}
