//! Running the real `doveadm` binary and collecting what it printed.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

use crate::dovecot::Dovecot;
use crate::err;

/// What one `doveadm` run printed, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Standard output bytes.
    pub stdout: Vec<u8>,
    /// Standard error bytes.
    pub stderr: Vec<u8>,
    /// Exit code (`-1` if killed by a signal).
    pub code: i32,
}

impl Output {
    /// Runs `cmd` with stdin closed and collects its output.
    pub fn of(cmd: &mut Command) -> std::io::Result<Output> {
        let out = cmd.stdin(Stdio::null()).output()?;
        Ok(Output {
            stdout: out.stdout,
            stderr: out.stderr,
            code: out.status.code().unwrap_or(-1),
        })
    }

    /// Stdout as (lossy) text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A `doveadm` that needs no running master: a throw-away config that only sets paths, so
/// `/etc/dovecot` is never read. Good for `director map -u`, which hashes locally.
#[derive(Debug)]
pub struct StandaloneDoveadm {
    dovecot: Dovecot,
    dir: tempfile::TempDir,
}

impl StandaloneDoveadm {
    /// Writes the private config.
    pub fn new(dovecot: &Dovecot) -> std::io::Result<StandaloneDoveadm> {
        let dir = tempfile::Builder::new()
            .prefix("dcompat-doveadm-")
            .tempdir()?;
        let root = dir.path().display().to_string();
        let conf = format!(
            "base_dir = {root}\nstate_dir = {root}\nlog_path = {root}/doveadm.log\n\
             default_internal_user = dovecot\nssl = no\nprotocols = none\n"
        );
        std::fs::write(dir.path().join("dovecot.conf"), conf)?;
        Ok(StandaloneDoveadm {
            dovecot: dovecot.clone(),
            dir,
        })
    }

    /// `doveadm -c <conf> <args...>`.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(&self.dovecot.doveadm);
        c.arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .args(args);
        c
    }

    /// The hash real doveadm computes: `doveadm -o director_username_hash=<fmt> director
    /// map -u <user>`.
    pub fn map_u(&self, format: &str, user: &OsStr) -> std::io::Result<(u32, Output)> {
        let out = self.map_u_output(format, user)?;
        let text = out.stdout_text();
        let hash = text.trim().parse::<u32>().map_err(|_| {
            err(format!(
                "doveadm map -u printed {text:?} (exit {}): {}",
                out.code,
                String::from_utf8_lossy(&out.stderr)
            ))
        })?;
        Ok((hash, out))
    }

    /// Everything `doveadm -o director_username_hash=<fmt> director map -u -- <user>` prints.
    pub fn map_u_output(&self, format: &str, user: &OsStr) -> std::io::Result<Output> {
        let opt = format!("director_username_hash={format}");
        let mut cmd = self.command(["-o", &opt, "director", "map", "-u", "--"]);
        cmd.arg(user);
        Output::of(&mut cmd)
    }
}
