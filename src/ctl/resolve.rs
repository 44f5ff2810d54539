//! Host name resolution the way doveadm does it (`net_addr2ip`, then `getaddrinfo` with
//! `SOCK_STREAM`, every address in resolver order), with the C library's error texts.

use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use director_parsers::ip::parse_ip;

/// Resolves `host`: an IP literal as is, else every address `getaddrinfo` returns.
/// The error is `gai_strerror`'s text.
pub fn resolve_host(host: &[u8]) -> Result<Vec<IpAddr>, String> {
    if let Some(ip) = parse_ip(host) {
        return Ok(vec![ip]);
    }
    gethostbyname(host)
}

/// Dovecot's `net_gethostbyname`: `[v6]` literals directly, else `getaddrinfo`.
pub fn gethostbyname(host: &[u8]) -> Result<Vec<IpAddr>, String> {
    if host.first() == Some(&b'[') {
        if let Some(ip) = parse_ip(host) {
            return Ok(vec![ip]);
        }
    }
    let Ok(c_host) = CString::new(host) else {
        // an embedded NUL: C would have seen the text up to it
        let end = host.iter().position(|&b| b == 0).unwrap_or(host.len());
        return gethostbyname(&host[..end]);
    };
    let mut ips = Vec::new();
    // SAFETY: `hints` is a zeroed C struct (valid); `c_host` outlives the call; on success
    // `res` is a list owned by libc that we walk read-only and free exactly once.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_socktype = libc::SOCK_STREAM;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        let rc = libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res);
        if rc != 0 {
            return Err(CStr::from_ptr(libc::gai_strerror(rc))
                .to_string_lossy()
                .into_owned());
        }
        let mut ai = res;
        while !ai.is_null() {
            let addr = (*ai).ai_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        let b = sin.sin_addr.s_addr.to_ne_bytes();
                        ips.push(IpAddr::V4(Ipv4Addr::from(b)));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        ips.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            ai = (*ai).ai_next;
        }
        libc::freeaddrinfo(res);
    }
    Ok(ips)
}

/// The C library's text for errno `code` (`%m`).
pub fn strerror(code: i32) -> String {
    // SAFETY: `strerror` returns a pointer to a NUL-terminated static or thread-local string;
    // it is copied before any other libc call could overwrite it.
    unsafe {
        CStr::from_ptr(libc::strerror(code))
            .to_string_lossy()
            .into_owned()
    }
}

/// `%m` for an I/O error (its errno text, or Rust's text when it has no errno).
pub fn io_strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => strerror(code),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost() {
        assert_eq!(
            resolve_host(b"10.1").unwrap(),
            vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))]
        );
        assert_eq!(
            resolve_host(b"[::1]").unwrap(),
            vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        assert!(resolve_host(b"localhost")
            .unwrap()
            .contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn unknown_host_error_text() {
        // doveadm: "gethostname(127.0.1.5@tagA) failed: Name or service not known"
        assert_eq!(
            resolve_host(b"127.0.1.5@tagA").unwrap_err(),
            "Name or service not known"
        );
    }
}
