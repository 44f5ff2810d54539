//! Thin adapters from the config validator to the project's value parsers
//! ([`crate::values`], [`crate::username_hash`]), turning their errors into strings the
//! validator prefixes with the key.

use std::time::Duration;

/// Dovecot's time syntax (`settings.md` §1), surrounding whitespace ignored.
pub(crate) fn parse_time(s: &str) -> Result<Duration, String> {
    crate::values::parse_time(s.trim())
        .map(Duration::from_secs)
        .map_err(|e| e.to_string())
}

/// Dovecot's size syntax, surrounding whitespace ignored.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    crate::values::parse_size(s.trim()).map_err(|e| e.to_string())
}

/// Dovecot's unsigned number syntax.
pub(crate) fn parse_uint(s: &str) -> Result<u32, String> {
    crate::values::parse_uint(s.trim()).map_err(|e| e.to_string())
}

/// `director_mail_servers` must yield at least one host (names are resolved now).
pub(crate) fn check_mail_servers(s: &str) -> Result<(), String> {
    crate::mail_hosts::parse_mail_servers(s, &mut resolve)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Resolves a DNS name of `director_mail_servers` with the system resolver (blocking; used
/// at startup and for HOST-LIST-REMOVED, as Dovecot does).
pub(crate) fn resolve(name: &str) -> Result<Vec<std::net::IpAddr>, String> {
    use std::net::ToSocketAddrs;
    (name, 0)
        .to_socket_addrs()
        .map(|it| {
            let mut v: Vec<std::net::IpAddr> = Vec::new();
            for a in it {
                if !v.contains(&a.ip()) {
                    v.push(a.ip());
                }
            }
            v
        })
        .map_err(|e| e.to_string())
}

/// `director_username_hash` must be a format we can expand exactly like Dovecot.
pub(crate) fn check_username_hash(s: &str) -> Result<(), String> {
    crate::username_hash::UsernameHash::new(s)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
