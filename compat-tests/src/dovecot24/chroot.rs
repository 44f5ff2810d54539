//! The Debian 13 chroot with Dovecot 2.4.1 (built by `scripts/chroot24.sh`), and mapping paths
//! between the host's view and the chroot's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where `chroot24.sh` puts the chroot unless `DIRECTOR_CHROOT24` says otherwise.
pub const DEFAULT_ROOT: &str = "/var/cache/director-compat/trixie";
/// The marker file `chroot24.sh` writes once a chroot is complete.
const MARKER: &str = ".director-compat-ok";
/// The mail user `chroot24.sh` creates for the backends.
const MAIL_USER: &str = "dcompatmail";
/// Programs that must exist inside (one per package the tests use).
const PROGRAMS: &[&str] = &[
    "usr/sbin/dovecot",
    "usr/lib/dovecot/imap-login",
    "usr/lib/dovecot/pop3-login",
    "usr/lib/dovecot/lmtp",
    "usr/lib/dovecot/submission-login",
];

/// A usable chroot: its root and what the tests need to know about its insides.
#[derive(Debug, Clone)]
pub struct Chroot24 {
    /// The chroot's root directory on the host.
    pub root: PathBuf,
    /// `dovecot --version` inside, e.g. `2.4.1-4 (7d8c0e5759)`.
    pub version: String,
    /// uid of the backends' mail user in the chroot's `etc/passwd` (not the host's).
    pub mail_uid: u32,
    /// gid of the backends' mail user.
    pub mail_gid: u32,
}

impl Chroot24 {
    /// The chroot's path: `DIRECTOR_CHROOT24` or [`DEFAULT_ROOT`].
    pub fn root_path() -> PathBuf {
        match std::env::var_os("DIRECTOR_CHROOT24") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(DEFAULT_ROOT),
        }
    }

    /// The build script shipped with this package.
    pub fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/chroot24.sh")
    }

    /// Checks the chroot at [`Chroot24::root_path`], or says why it cannot be used.
    pub fn locate() -> Result<Chroot24, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root (chroot and a Dovecot master need it)".into());
        }
        let root = Self::root_path();
        if !root.join(MARKER).is_file() {
            return Err(format!(
                "no finished chroot at {} (build it with {})",
                root.display(),
                Self::script().display()
            ));
        }
        if let Some(p) = PROGRAMS.iter().find(|p| !root.join(p).is_file()) {
            return Err(format!(
                "{} lacks /{p}; rerun {} to add the package",
                root.display(),
                Self::script().display()
            ));
        }
        let out = Command::new("chroot")
            .arg(&root)
            .args(["/usr/sbin/dovecot", "--version"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("chroot {} dovecot --version: {e}", root.display()))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !version.starts_with("2.4.1") {
            return Err(format!("the chroot has Dovecot '{version}', not 2.4.1"));
        }
        let passwd = fs::read_to_string(root.join("etc/passwd"))
            .map_err(|e| format!("read {}/etc/passwd: {e}", root.display()))?;
        let (mail_uid, mail_gid) = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == MAIL_USER)
            .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .ok_or_else(|| format!("no user {MAIL_USER} in the chroot"))?;
        Ok(Chroot24 {
            root,
            version,
            mail_uid,
            mail_gid,
        })
    }

    /// Runs `chroot24.sh` (builds the chroot if missing; a minute or three), then
    /// [`Chroot24::locate`].
    pub fn build_and_locate() -> Result<Chroot24, String> {
        let status = Command::new("bash")
            .arg(Self::script())
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("{}: {e}", Self::script().display()))?;
        if !status.success() {
            return Err(format!("{} failed ({status})", Self::script().display()));
        }
        Self::locate()
    }

    /// The host path of a path as Dovecot inside the chroot sees it.
    pub fn host_path(&self, inner: &Path) -> PathBuf {
        self.root.join(inner.strip_prefix("/").unwrap_or(inner))
    }

    /// The chroot's view of a host path under the root, if it is under the root.
    pub fn inner_path(&self, host: &Path) -> Option<PathBuf> {
        host.strip_prefix(&self.root)
            .ok()
            .map(|rel| Path::new("/").join(rel))
    }

    /// `chroot <root> <program>`, ready for more arguments; stdin is `/dev/null`.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("chroot");
        c.arg(&self.root).arg(program).stdin(Stdio::null());
        c
    }
}

/// The chroot to test in, or `None` (after a loud notice) when it cannot be had.
///
/// With `CI=true` a missing chroot is built with `chroot24.sh`, and failing that the test
/// panics: CI is where these tests must run, so a silent skip there would prove nothing.
/// Elsewhere the chroot is not built behind the caller's back (it downloads ~250 MB).
pub fn require_dovecot24() -> Option<Chroot24> {
    let why = match Chroot24::locate() {
        Ok(c) => return Some(c),
        Err(why) => why,
    };
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        match Chroot24::build_and_locate() {
            Ok(c) => return Some(c),
            Err(e) => panic!(
                "CI=true but the Dovecot 2.4.1 chroot cannot be had: {why}; building it: {e}"
            ),
        }
    }
    // Straight to fd 2: libtest captures eprintln!, and a skip must be seen.
    let msg = format!(
        "\n!! SKIPPED: Dovecot 2.4 compat test: {why}\n!! (set CI=true to build the chroot and turn this skip into a failure)\n"
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), msg.as_bytes());
    None
}
