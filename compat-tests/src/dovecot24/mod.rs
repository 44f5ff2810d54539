//! Harness for testing `directord` in front of real Dovecot **2.4.1** proxies
//! (`shared/spec/dovecot-2.4.md`).
//!
//! Dovecot 2.4.1 runs in a Debian 13 chroot built by `compat-tests/scripts/chroot24.sh`;
//! our `directord` runs on the host, on the proxy's `base_dir` as the host sees it.
//!
//! - [`chroot`]: finding the chroot ([`require_dovecot24`]) and mapping paths into it.
//! - [`instance`]: a private 2.4.1 master in the chroot, stopped by pid.
//! - [`conf`]: backend and proxy configs; the proxy's come from `contrib/dovecot-2.4/`.
//! - [`directord`]: our daemon as a child process, stopped by pid.
//! - [`lab`]: two backends, a proxy and `directord`, in either layout.
//! - [`ring`]: the lab with a second `directord` in a ring with the first.
//! - [`smtp_relay`]: a fake SMTP relay for the backends' submission services.
//! - [`client`]: IMAP, POP3, LMTP and submission clients that tell which backend answered.

pub mod chroot;
pub mod client;
pub mod conf;
pub mod directord;
pub mod instance;
pub mod lab;
pub mod ring;
pub mod smtp_relay;

pub use chroot::{require_dovecot24, Chroot24};
pub use directord::{directord_binary, Directord};
pub use instance::Instance24;
pub use lab::{Lab24, Layout};
pub use ring::Ring24;
