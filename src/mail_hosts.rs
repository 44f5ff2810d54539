//! `director_mail_servers`: the configured backends.
//!
//! Mirrors `mail_hosts_parse_and_add()` in Dovecot's `src/director/mail-host.c`
//! (`user-directory.md` §3): space-separated `<item>[@<tag>]` tokens where an item is an
//! `ip1-ip2` range, an IP literal or a DNS name. Every error is collected (Dovecot logs each
//! one) and the director then refuses to start. Name resolution is the caller's closure, so
//! this module does no I/O.

use crate::state::Tag;
use director_parsers::ip::{ip_to_string, parse_ip};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One configured backend, in configuration order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailHostSpec {
    /// The backend's address.
    pub ip: IpAddr,
    /// The tag after `@`, default tag if none.
    pub tag: Tag,
    /// The DNS name it was resolved from, if it was given as a name.
    pub hostname: Option<String>,
}

/// Why `director_mail_servers` is unusable: every message Dovecot would log, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailServersError {
    /// E.g. `IP addresses reversed: 10.0.0.9-10.0.0.1`, `Unknown mail host: x`, and last
    /// `Empty server list` or `No valid servers specified` when no host remained.
    pub messages: Vec<String>,
}

impl fmt::Display for MailServersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Invalid value for director_mail_servers setting: {}",
            self.messages.join("; ")
        )
    }
}

impl std::error::Error for MailServersError {}

/// Parse `director_mail_servers`, resolving DNS names with `resolve`.
///
/// Any error, or an empty result, fails the whole setting (the director exits at startup).
pub fn parse_mail_servers(
    spec: &str,
    resolve: &mut dyn FnMut(&str) -> Result<Vec<IpAddr>, String>,
) -> Result<Vec<MailHostSpec>, MailServersError> {
    let mut hosts = Vec::new();
    let mut messages = Vec::new();
    for token in spec.split(' ').filter(|t| !t.is_empty()) {
        let (item, tag) = match token.split_once('@') {
            Some((item, tag)) => (item, Tag::from(tag)),
            None => (token, Tag::default()),
        };
        if let Some((a, b)) = item.split_once('-') {
            if let (Some(ip1), Some(ip2)) = (parse_ip(a.as_bytes()), parse_ip(b.as_bytes())) {
                match expand_range(ip1, ip2) {
                    Ok(ips) => hosts.extend(ips.into_iter().map(|ip| MailHostSpec {
                        ip,
                        tag: tag.clone(),
                        hostname: None,
                    })),
                    Err(msg) => messages.push(msg),
                }
                continue;
            }
        }
        if let Some(ip) = parse_ip(item.as_bytes()) {
            hosts.push(MailHostSpec {
                ip,
                tag,
                hostname: None,
            });
            continue;
        }
        match resolve(item) {
            Ok(ips) if !ips.is_empty() => hosts.extend(ips.into_iter().map(|ip| MailHostSpec {
                ip,
                tag: tag.clone(),
                hostname: (!item.is_empty()).then(|| item.to_owned()),
            })),
            _ => messages.push(format!("Unknown mail host: {item}")),
        }
    }
    if hosts.is_empty() {
        messages.push(
            if messages.is_empty() {
                "Empty server list"
            } else {
                "No valid servers specified"
            }
            .to_owned(),
        );
    }
    if messages.is_empty() {
        Ok(hosts)
    } else {
        Err(MailServersError { messages })
    }
}

/// The addresses of an inclusive range in which only the last 8 (IPv4) or 16 (IPv6) bits
/// may differ.
fn expand_range(ip1: IpAddr, ip2: IpAddr) -> Result<Vec<IpAddr>, String> {
    let (a, b) = (ip_to_string(&ip1), ip_to_string(&ip2));
    if ip1.is_ipv4() != ip2.is_ipv4() {
        return Err(format!("IP address family mismatch: {a} vs {b}"));
    }
    if ip1 > ip2 {
        return Err(format!("IP addresses reversed: {a}-{b}"));
    }
    let too_large = || format!("IP address range too large: {a}-{b}");
    match (ip1, ip2) {
        (IpAddr::V4(x), IpAddr::V4(y)) => {
            let (x, y) = (u32::from(x), u32::from(y));
            if x >> 8 != y >> 8 {
                return Err(too_large());
            }
            Ok((x..=y).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect())
        }
        (IpAddr::V6(x), IpAddr::V6(y)) => {
            let (x, y) = (u128::from(x), u128::from(y));
            if x >> 16 != y >> 16 {
                return Err(too_large());
            }
            Ok((x..=y).map(|n| IpAddr::V6(Ipv6Addr::from(n))).collect())
        }
        _ => unreachable!("families were checked equal above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_dns(name: &str) -> Result<Vec<IpAddr>, String> {
        Err(format!("no DNS in tests: {name}"))
    }

    fn parse(spec: &str) -> Result<Vec<MailHostSpec>, MailServersError> {
        parse_mail_servers(spec, &mut no_dns)
    }

    fn ips(spec: &str) -> Vec<String> {
        parse(spec)
            .unwrap()
            .iter()
            .map(|h| ip_to_string(&h.ip))
            .collect()
    }

    fn errors(spec: &str) -> Vec<String> {
        parse(spec).unwrap_err().messages
    }

    #[test]
    fn plain_list_with_extra_spaces_and_tags() {
        let hosts = parse("  10.0.0.1   10.0.0.2@tagA 2001:DB8::0001@ ").unwrap();
        assert_eq!(hosts.len(), 3);
        assert_eq!(hosts[0].tag, Tag::default());
        assert_eq!(hosts[1].tag, Tag::from("tagA"));
        assert_eq!(ip_to_string(&hosts[2].ip), "2001:db8::1");
        assert_eq!(hosts[2].tag, Tag::default());
        assert!(hosts.iter().all(|h| h.hostname.is_none()));
    }

    #[test]
    fn ranges() {
        assert_eq!(
            ips("10.0.0.1-10.0.0.3"),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        );
        assert_eq!(ips("10.0.0.5-10.0.0.5"), ["10.0.0.5"]);
        // Spec [verified]: allowed, the last 16 bits of an IPv6 address may differ.
        assert_eq!(
            ips("2001:db8::fffe-2001:db8::ffff"),
            ["2001:db8::fffe", "2001:db8::ffff"]
        );
        assert_eq!(ips("10.0.0.0-10.0.0.255").len(), 256);
        let tagged = parse("10.0.1.1-10.0.1.2@t").unwrap();
        assert!(tagged.iter().all(|h| h.tag == Tag::from("t")));
    }

    /// Error texts of `user-directory.md` §3 ([verified] for the "too large" case).
    #[test]
    fn range_errors() {
        assert_eq!(
            errors("10.0.0.250-10.0.1.2"),
            [
                "IP address range too large: 10.0.0.250-10.0.1.2",
                "No valid servers specified"
            ]
        );
        assert_eq!(
            errors("10.0.0.9-10.0.0.1 10.0.0.7"),
            ["IP addresses reversed: 10.0.0.9-10.0.0.1"]
        );
        assert_eq!(
            errors("10.0.0.1-::1")[0],
            "IP address family mismatch: 10.0.0.1 vs ::1"
        );
        assert_eq!(
            errors("2001:db8::1:0-2001:db8::2:0")[0],
            "IP address range too large: 2001:db8::1:0-2001:db8::2:0"
        );
    }

    #[test]
    fn empty_list() {
        assert_eq!(errors(""), ["Empty server list"]);
        assert_eq!(errors("   "), ["Empty server list"]);
    }

    #[test]
    fn names_go_to_the_resolver() {
        let mut asked = Vec::new();
        let mut resolve = |name: &str| {
            asked.push(name.to_owned());
            match name {
                "mail-1.example.com" => {
                    Ok(vec!["10.0.0.7".parse().unwrap(), "::7".parse().unwrap()])
                }
                "empty.example.com" => Ok(vec![]),
                _ => Err("NXDOMAIN".to_owned()),
            }
        };
        let r = parse_mail_servers(
            "mail-1.example.com@x nosuch.example.com empty.example.com 10.1",
            &mut resolve,
        );
        assert_eq!(
            r.unwrap_err().messages,
            [
                "Unknown mail host: nosuch.example.com",
                "Unknown mail host: empty.example.com"
            ]
        );
        let hosts = parse_mail_servers("mail-1.example.com@x", &mut resolve).unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].hostname.as_deref(), Some("mail-1.example.com"));
        assert_eq!(hosts[1].tag, Tag::from("x"));
        // A `-` inside a name is not a range when the halves are not both IPs.
        assert_eq!(asked[0], "mail-1.example.com");
    }

    #[test]
    fn inet_aton_forms_are_ips() {
        assert_eq!(ips("10.1"), ["10.0.0.1"]);
        assert_eq!(ips("10.1-10.3"), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    }
}
