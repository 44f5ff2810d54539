//! Locating the installed Dovecot 2.3 binaries, and skipping (or failing, in CI) without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Directories searched for the `dovecot` master binary, in order.
const SBIN_DIRS: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"];
/// Directories searched for Dovecot's helper programs (`director`, `imap-login`, ...).
const LIBEXEC_DIRS: &[&str] = &[
    "/usr/lib/dovecot",
    "/usr/libexec/dovecot",
    "/usr/local/libexec/dovecot",
];

/// The installed Dovecot: its programs and version.
#[derive(Debug, Clone)]
pub struct Dovecot {
    /// The master binary (`dovecot`).
    pub master: PathBuf,
    /// The `doveadm` binary.
    pub doveadm: PathBuf,
    /// Directory holding `director`, `imap-login`, `auth`, ...
    pub libexec: PathBuf,
    /// `dovecot --version` output, e.g. `2.3.19.1 (9b53102964)`.
    pub version: String,
}

impl Dovecot {
    /// Finds a usable Dovecot 2.3 with a director, or says why there is none.
    ///
    /// `DOVECOT_SBIN_DIR` / `DOVECOT_LIBEXEC_DIR` override the search paths.
    pub fn locate() -> Result<Dovecot, String> {
        let sbin = dirs_from_env("DOVECOT_SBIN_DIR", SBIN_DIRS);
        let libexec_dirs = dirs_from_env("DOVECOT_LIBEXEC_DIR", LIBEXEC_DIRS);
        let master = find_in(&sbin, "dovecot").ok_or("no `dovecot` binary found")?;
        let doveadm = find_in(&sbin, "doveadm").ok_or("no `doveadm` binary found")?;
        let libexec = libexec_dirs
            .into_iter()
            .find(|d| d.join("director").is_file())
            .ok_or("no Dovecot `director` program found (is dovecot-core 2.3 installed?)")?;
        let out = Command::new(&master)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{} --version: {e}", master.display()))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !version.starts_with("2.3.") {
            return Err(format!("Dovecot {version} found; the director needs 2.3.x"));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root (a private Dovecot master needs root)".into());
        }
        Ok(Dovecot {
            master,
            doveadm,
            libexec,
            version,
        })
    }

    /// Path of a helper program, e.g. `program("imap-login")`.
    pub fn program(&self, name: &str) -> PathBuf {
        self.libexec.join(name)
    }
}

fn dirs_from_env(var: &str, defaults: &[&str]) -> Vec<PathBuf> {
    match std::env::var_os(var) {
        Some(v) => vec![PathBuf::from(v)],
        None => defaults.iter().map(PathBuf::from).collect(),
    }
}

fn find_in(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| Path::is_file(p))
}

/// The Dovecot to test against, or `None` (after a loud notice) when it cannot run here.
///
/// With `CI=true` a missing Dovecot is a failure, not a skip: CI installs it, so its absence
/// means the compat tests would silently prove nothing.
pub fn require_dovecot() -> Option<Dovecot> {
    match Dovecot::locate() {
        Ok(d) => Some(d),
        Err(why) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            if ci {
                panic!("CI=true but real Dovecot is not usable: {why}. Install dovecot-core, dovecot-imapd, dovecot-pop3d, dovecot-lmtpd (Debian 12) and run as root.");
            }
            // Written to fd 2 directly: libtest captures eprintln!, and a skip must be seen.
            let notice = format!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !! SKIPPED: compat test needs real Dovecot 2.3: {why}\n\
                 !! (set CI=true to turn this skip into a failure)\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), notice.as_bytes());
            None
        }
    }
}
