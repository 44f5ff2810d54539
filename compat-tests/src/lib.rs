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
//! - [`usernames`]: seeded random usernames for hash comparisons.
//! - [`loopback`]: picking free loopback addresses.
//!
//! Nothing here reads `/etc/dovecot` or stops a process it did not start.

pub mod admin;
pub mod capture;
pub mod doveadm;
pub mod dovecot;
pub mod dovecot24;
pub mod instance;
pub mod loopback;
pub mod relay;
pub mod transcript;
pub mod usernames;

pub use dovecot::{require_dovecot, Dovecot};
pub use instance::{Instance, InstanceBuilder};

/// Shorthand for an `io::Error` with a message, the harness's one error type.
pub(crate) fn err(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::other(msg.into())
}
