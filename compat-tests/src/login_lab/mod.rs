//! A login-proxy lab on loopback: three real Dovecot backends and one real Dovecot proxy
//! (imap-login/pop3-login `director` mode, LMTP proxy) whose director is either the real
//! Dovecot `service director` ([`ProxyKind::Reference`]) or our `directord` running in the
//! proxy's `base_dir` ([`ProxyKind::Ours`]).
//!
//! # Layout
//! - [`mail_user`]: the system user that owns the backends' maildirs.
//! - [`backend`]: a backend instance that tells clients who it is (IMAP `ID`, POP3 `UIDL`).
//! - [`proxy`]: the proxy instance, in both variants.
//! - [`directord`]: running our `directord`, stopped by pid.
//! - [`bounded`]: client programs (`doveadm`, `directorctl`) with a time limit.
//! - [`clients`]: small blocking IMAP/POP3/LMTP clients with bounded timeouts.
//! - [`ring_pair`]: two tuned proxies whose directors form a ring.
//!
//! Mirrors `/work/shared/lab/up.sh`, but with private instances on random loopback addresses.

pub mod backend;
pub mod bounded;
pub mod clients;
pub mod directord;
pub mod flush_capture;
pub mod mail_user;
pub mod proxy;
pub mod ring_pair;
pub mod session;
pub mod tuned;

pub use backend::{start_backends, Backend};
pub use bounded::bounded;
pub use directord::{Directord, DirectordConfig};
pub use proxy::{Proxy, ProxyKind};

/// Every user's password, on backends and proxies alike.
pub const PASSWORD: &str = "pass";
/// IMAP port on every lab address (the proxy connects to backends on the default ports).
pub const IMAP_PORT: u16 = 143;
/// POP3 port on every lab address.
pub const POP3_PORT: u16 = 110;
/// LMTP port on every lab address.
pub const LMTP_PORT: u16 = 24;
/// The three ports every lab address must have free.
pub const PORTS: [u16; 3] = [IMAP_PORT, POP3_PORT, LMTP_PORT];
