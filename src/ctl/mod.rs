//! `directorctl`: the director admin client, a byte-for-byte stand-in for Dovecot 2.3's
//! `doveadm director ...` (same subcommands, options, output, messages and exit codes),
//! speaking the `director-doveadm` protocol on `<base_dir>/director-admin`.
//!
//! Entry point: [`run`]. Everything is single-threaded and blocking, like doveadm.

pub mod authlist;
pub mod cli;
pub mod client;
pub mod commands;
pub mod format;
pub mod getopt;
pub mod hash;
pub mod hostcmds;
pub mod resolve;
pub mod settings;
pub mod timefmt;

use std::io::Write;

pub use cli::run;

/// Exit code: command line usage error (`EX_USAGE`).
pub const EX_USAGE: i32 = 64;
/// Exit code: host or director not found (doveadm's `DOVEADM_EX_NOTFOUND` = `EX_NOHOST`).
pub const EX_NOTFOUND: i32 = 68;
/// Exit code: temporary failure (`EX_TEMPFAIL`), also every `Fatal:`.
pub const EX_TEMPFAIL: i32 = 75;
/// Exit code: protocol error (`EX_PROTOCOL`).
pub const EX_PROTOCOL: i32 = 76;
/// Exit code of a bad global option (Dovecot's `FATAL_DEFAULT`).
pub const EX_FATAL_DEFAULT: i32 = 89;

/// Where stdout and stderr bytes go (the real streams, or buffers in tests).
pub trait Sink {
    /// Appends to stdout.
    fn out(&mut self, bytes: &[u8]);
    /// Appends to stderr.
    fn err(&mut self, bytes: &[u8]);
}

/// The process's real stdout/stderr.
#[derive(Debug, Default)]
pub struct StdSink;

impl Sink for StdSink {
    fn out(&mut self, bytes: &[u8]) {
        let mut o = std::io::stdout().lock();
        // Nothing useful can be done when stdout is gone (doveadm ignores it too).
        let _ = o.write_all(bytes).and_then(|()| o.flush());
    }
    fn err(&mut self, bytes: &[u8]) {
        let _ = std::io::stderr().lock().write_all(bytes);
    }
}

/// Captured output, for tests.
#[derive(Debug, Default, Clone)]
pub struct BufSink {
    /// Bytes written to stdout.
    pub stdout: Vec<u8>,
    /// Bytes written to stderr.
    pub stderr: Vec<u8>,
}

impl Sink for BufSink {
    fn out(&mut self, bytes: &[u8]) {
        self.stdout.extend_from_slice(bytes);
    }
    fn err(&mut self, bytes: &[u8]) {
        self.stderr.extend_from_slice(bytes);
    }
}
