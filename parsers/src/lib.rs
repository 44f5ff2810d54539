//! Sans-IO parsers and encoders for every protocol the Dovecot director speaks.
//!
//! No I/O, no clock, no async runtime: bytes in, typed messages out, and an encoder for each
//! message. Framing ([`framing`]) is separate from parsing: callers cut complete lines first,
//! then hand each line to the protocol module's `parse`.
//!
//! Fields are bytes, not strings: Dovecot does not guarantee UTF-8 usernames.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod anvil;
pub mod auth_client;
pub mod auth_master;
pub mod authreply;
pub mod error;
pub mod escape;
pub mod field;
pub mod flush;
pub mod framing;
pub mod ip;
pub mod ipc;
pub mod master_admin;
pub mod notify;
pub mod passdb;
pub mod ring;
#[cfg(test)]
mod testing;

pub use error::{ParseError, ParseErrorKind};
