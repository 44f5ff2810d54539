//! Harness for testing `director` against the real Dovecot 2.3 binaries.
//!
//! # Layout
//! - [`dovecot`]: finding the installed Dovecot and deciding whether a test can run.
//! - [`instance`]: a private `dovecot` master (own config, base_dir, logs), stopped by pid.
//! - [`admin`]: a small `director-doveadm` protocol client.
//! - [`capture`]: recording fixture transcripts for the parser tests (`capture_fixtures`).
//! - [`doveadm`]: running the real `doveadm` binary.
//! - [`transcript`]: the transcript row format shared with `parsers/tests/common/mod.rs`.
//! - [`relay`]: recording relays (UNIX socket, TCP, FIFO) that write transcripts.
//! - [`hostsets`]: the host sets compared with a real director, built on both sides.
//! - [`golden`]: the committed golden file of real USER-LOOKUP answers.
//! - [`usernames`]: seeded random usernames for hash comparisons.
//! - [`loopback`]: picking free loopback addresses.
//! - [`ours`]: locating our own binaries (`directorctl`) built next to the test binary.
//! - [`mailclient`]: minimal IMAP/POP3/LMTP clients for driving real login and LMTP proxies.
//! - [`ring_lab`]: mixed rings of real directors and ours, with real login proxies.
//!
//! Nothing here reads `/etc/dovecot` or stops a process it did not start.

pub mod admin;
pub mod capture;
pub mod doveadm;
pub mod dovecot;
pub mod dovecot24;
pub mod golden;
pub mod hostsets;
pub mod instance;
pub mod login_lab;
pub mod loopback;
pub mod mailclient;
pub mod ours;
pub mod relay;
pub mod ring_lab;
pub mod stop;
pub mod transcript;
pub mod usernames;

pub use dovecot::{require_dovecot, Dovecot};
pub use instance::{Instance, InstanceBuilder};

/// Shorthand for an `io::Error` with a message, the harness's one error type.
pub(crate) fn err(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::other(msg.into())
}

/// Whether something listens on TCP `ip:port` (IPv4), from `/proc/net/tcp`, without connecting.
pub fn tcp_listening(ip: std::net::IpAddr, port: u16) -> bool {
    let std::net::IpAddr::V4(v4) = ip else {
        return false;
    };
    let want = format!("{:08X}:{port:04X}", u32::from_le_bytes(v4.octets()));
    std::fs::read_to_string("/proc/net/tcp")
        .map(|t| {
            t.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1] == want && f[3] == "0A"
            })
        })
        .unwrap_or(false)
}
