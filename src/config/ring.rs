//! The ring part of the configuration: `[director] servers` and `[director] listen`
//! (`settings.md` §1, §3; `ring-protocol.md` §3.1).
//!
//! Mirrors Dovecot's `director_host_add_string()` (`src/director/director-host.c`) with
//! `net_str2hostport()`: each space-separated word is `host`, `host:port`, `[v6]`, `[v6]:port`
//! or a bare IPv6 address; a missing port is the ring listener's port; names resolve to all
//! their addresses; duplicates are dropped. The list is kept in ring order (sorted by IP, then
//! port), which is also the order self discovery tries the addresses in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `listen` when `servers` is set but no ring listener is: Dovecot's fatal text.
pub const NO_LISTENER: &str =
    "No inet_listeners defined for director service (for standalone keep director_servers empty)";

/// The ring listener and the configured directors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingConfig {
    /// The IP the ring listener binds; `None` = wildcard (`*`, `0.0.0.0`, `::`).
    pub listen_ip: Option<IpAddr>,
    /// Whether a wildcard listener binds IPv6 (`::`) rather than IPv4 (`*`, `0.0.0.0`).
    pub listen_v6_any: bool,
    /// The ring listener's port (never 0).
    pub listen_port: u16,
    /// `director_servers`, resolved, deduplicated, sorted by (IP, port).
    pub servers: Vec<(IpAddr, u16)>,
}

impl RingConfig {
    /// The address the ring listener binds.
    pub fn bind_addr(&self) -> std::net::SocketAddr {
        let ip = match self.listen_ip {
            Some(ip) => ip,
            None if self.listen_v6_any => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        std::net::SocketAddr::new(ip, self.listen_port)
    }

    /// Dovecot's `director_find_self()`: a specific listen IP is ours; with a wildcard the
    /// first listed IP that `can_bind` accepts is. The pair must be listed.
    pub fn find_self(&self, can_bind: impl Fn(IpAddr) -> bool) -> Result<(IpAddr, u16), String> {
        let ip = match self.listen_ip {
            Some(ip) => ip,
            None => self
                .servers
                .iter()
                .map(|(ip, _)| *ip)
                .find(|ip| can_bind(*ip))
                .ok_or_else(|| "director_servers doesn't list ourself".to_string())?,
        };
        if !self.servers.contains(&(ip, self.listen_port)) {
            return Err(format!(
                "director_servers doesn't list ourself ({}:{})",
                director_parsers::ip::ip_to_string(&ip),
                self.listen_port
            ));
        }
        Ok((ip, self.listen_port))
    }

    /// Whether an accepted connection's source IP belongs to a configured director.
    pub fn lists_ip(&self, ip: IpAddr) -> bool {
        self.servers.iter().any(|(s, _)| *s == ip)
    }
}

/// Parses `listen`: `IP:PORT`, `[v6]:PORT`, `*:PORT` or a bare port (wildcard IPv4).
/// Returns (IP or `None` for a wildcard, wildcard-is-IPv6, port).
pub fn parse_listen(s: &str) -> Result<(Option<IpAddr>, bool, u16), String> {
    let s = s.trim();
    let bad = || format!("invalid listen address '{s}' (expected IP:PORT, [IPv6]:PORT or *:PORT)");
    let (host, port) = if s.bytes().all(|b| b.is_ascii_digit()) {
        ("*", s)
    } else if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h, p)
    } else {
        let (h, p) = s.rsplit_once(':').ok_or_else(bad)?;
        if h.contains(':') {
            return Err(bad());
        }
        (h, p)
    };
    let port = parse_port(port).ok_or_else(bad)?;
    if host == "*" {
        return Ok((None, false, port));
    }
    let ip = director_parsers::ip::parse_ip(host.as_bytes()).ok_or_else(bad)?;
    if ip.is_unspecified() {
        return Ok((None, ip.is_ipv6(), port));
    }
    Ok((Some(ip), false, port))
}

/// Dovecot's `net_str2port()`: decimal digits only, 1..=65535.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match s.parse::<u64>() {
        Ok(n) if (1..=65535).contains(&n) => Some(n as u16),
        _ => None,
    }
}

/// Dovecot's `net_str2hostport()`: (host, port) with `default_port` when none is given.
fn split_host_port(word: &str, default_port: u16) -> Option<(&str, u16)> {
    let (host, rest) = if let Some(inner) = word.strip_prefix('[') {
        let end = inner.find(']')?;
        (&inner[..end], &inner[end + 1..])
    } else {
        match word.find(':') {
            // No colon, or more than one (a bare IPv6 address): all host.
            None => return Some((word, default_port)),
            Some(i) if word[i + 1..].contains(':') => return Some((word, default_port)),
            Some(i) => (&word[..i], &word[i..]),
        }
    };
    if rest.is_empty() {
        return Some((host, default_port));
    }
    let port = parse_port(rest.strip_prefix(':')?)?;
    Some((host, port))
}

/// Resolves `director_servers` words into the sorted, deduplicated director list.
/// `resolve` maps a name (or IP literal) to its addresses.
pub fn parse_servers(
    words: &[String],
    default_port: u16,
    resolve: &mut dyn FnMut(&str) -> Result<Vec<IpAddr>, String>,
) -> Result<Vec<(IpAddr, u16)>, String> {
    let mut out: Vec<(IpAddr, u16)> = Vec::new();
    for word in words {
        let (host, port) = split_host_port(word, default_port)
            .ok_or_else(|| format!("Invalid director host:port in '{word}'"))?;
        let ips = match director_parsers::ip::parse_ip(host.as_bytes()) {
            Some(ip) => vec![ip],
            None => match resolve(host) {
                Ok(ips) if !ips.is_empty() => ips,
                _ => return Err(format!("Unknown director host: {host}")),
            },
        };
        for ip in ips {
            if !out.contains(&(ip, port)) {
                out.push((ip, port));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn host_port_forms_follow_net_str2hostport() {
        assert_eq!(split_host_port("10.0.0.1", 9090), Some(("10.0.0.1", 9090)));
        assert_eq!(split_host_port("10.0.0.1:1", 9090), Some(("10.0.0.1", 1)));
        assert_eq!(split_host_port("[::1]:7", 9090), Some(("::1", 7)));
        assert_eq!(split_host_port("[::1]", 9090), Some(("::1", 9090)));
        assert_eq!(split_host_port("::1", 9090), Some(("::1", 9090)));
        assert_eq!(split_host_port("a:0", 9090), None);
        assert_eq!(split_host_port("a:65536", 9090), None);
        assert_eq!(split_host_port("a:", 9090), None);
        assert_eq!(split_host_port("a:+1", 9090), None);
        assert_eq!(split_host_port("[::1", 9090), None);
        assert_eq!(split_host_port("[::1]x", 9090), None);
    }

    #[test]
    fn servers_sorted_deduplicated_and_errors_are_dovecots() {
        let mut no_dns = |h: &str| Err::<Vec<IpAddr>, _>(format!("no {h}"));
        let words: Vec<String> = ["10.0.0.2", "10.0.0.1:9091", "10.0.0.2:9090", "[::1]"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            parse_servers(&words, 9090, &mut no_dns).unwrap(),
            vec![
                (ip("10.0.0.1"), 9091),
                (ip("10.0.0.2"), 9090),
                (ip("::1"), 9090)
            ]
        );
        let e = parse_servers(&["host:99999".into()], 9090, &mut no_dns).unwrap_err();
        assert_eq!(e, "Invalid director host:port in 'host:99999'");
        let e = parse_servers(&["nosuch:1".into()], 9090, &mut no_dns).unwrap_err();
        assert_eq!(e, "Unknown director host: nosuch");
        let mut two = |_: &str| Ok(vec![ip("10.0.0.9"), ip("10.0.0.8")]);
        assert_eq!(
            parse_servers(&["name".into()], 5, &mut two).unwrap(),
            vec![(ip("10.0.0.8"), 5), (ip("10.0.0.9"), 5)]
        );
    }

    #[test]
    fn listen_forms() {
        assert_eq!(
            parse_listen("127.0.0.2:9090"),
            Ok((Some(ip("127.0.0.2")), false, 9090))
        );
        assert_eq!(parse_listen("*:9090"), Ok((None, false, 9090)));
        assert_eq!(parse_listen("0.0.0.0:9090"), Ok((None, false, 9090)));
        assert_eq!(parse_listen("[::]:9090"), Ok((None, true, 9090)));
        assert_eq!(
            parse_listen("[::1]:9090"),
            Ok((Some(ip("::1")), false, 9090))
        );
        assert_eq!(parse_listen("9090"), Ok((None, false, 9090)));
        assert!(parse_listen("127.0.0.1:0").is_err());
        assert!(parse_listen("127.0.0.1").is_err());
        assert!(parse_listen("::1:9090").is_err());
        assert!(parse_listen("name:9090").is_err());
    }

    #[test]
    fn find_self_like_director_find_self() {
        let rc = RingConfig {
            listen_ip: None,
            listen_v6_any: false,
            listen_port: 9090,
            servers: vec![(ip("127.0.0.3"), 9090), (ip("192.0.2.1"), 9090)],
        };
        assert_eq!(rc.find_self(|_| true), Ok((ip("127.0.0.3"), 9090)));
        assert_eq!(
            rc.find_self(|i| i == ip("192.0.2.1")),
            Ok((ip("192.0.2.1"), 9090))
        );
        assert_eq!(
            rc.find_self(|_| false).unwrap_err(),
            "director_servers doesn't list ourself"
        );
        let rc = RingConfig {
            listen_ip: Some(ip("127.0.0.5")),
            ..rc
        };
        assert_eq!(
            rc.find_self(|_| true).unwrap_err(),
            "director_servers doesn't list ourself (127.0.0.5:9090)"
        );
    }
}
