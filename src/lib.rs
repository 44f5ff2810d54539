//! director: a drop-in replacement for the Dovecot 2.3 director.
//!
//! The library holds everything the two binaries (`directord`, `directorctl`) share: the pure
//! user-directory core (`username_hash`, `mail_hosts`, `state`), Dovecot's setting value
//! syntax (`values`), the admin client and its doveadm-identical output (`ctl`), and the
//! daemon (`config`, `daemon`).

pub mod config;
pub mod ctl;
pub mod daemon;
pub mod kick;
pub mod mail_hosts;
pub mod ring;
pub mod state;
pub mod username_hash;
pub mod values;
