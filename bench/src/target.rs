//! A director under test, real or ours, with the fake auth server behind it. Both kinds are
//! stopped through the pid this program started or read from the master's pid file, never
//! by name, and everything they wrote lives in one temporary directory that is removed.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::fake_auth::FakeAuth;
use crate::procstat;

/// How long start-up may take.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERM-ed process gets before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Polling step while waiting for files and processes.
pub const POLL: Duration = Duration::from_millis(20);

/// The configuration both directors get.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `director_mail_servers`.
    pub mail_servers: String,
    /// `director_user_expire`.
    pub user_expire: String,
    /// Ring membership; `None` = stand-alone.
    pub ring: Option<RingSpot>,
}

/// A director's place in a ring on loopback.
#[derive(Debug, Clone)]
pub struct RingSpot {
    /// Its own address (`listen`, and the ring listener's address).
    pub me: std::net::Ipv4Addr,
    /// The ring port, the same for every director.
    pub port: u16,
    /// `director_servers`: every director as `ip:port`, space separated.
    pub servers: String,
}

/// Which implementation a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Dovecot 2.3's `director` under a private master.
    Real,
    /// Our `directord`.
    Ours,
}

impl Kind {
    /// Lower-case label for messages.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Real => "real",
            Kind::Ours => "ours",
        }
    }
}

/// What to stop when the target goes away.
pub enum Owned {
    /// A daemonized Dovecot master, by the pid from its pid file.
    Master(i32),
    /// A child process we spawned.
    Child(Child),
}

/// A running director.
pub struct Target {
    /// Real or ours.
    pub kind: Kind,
    /// The process doing the director's work (CPU and memory are read from it).
    pub pid: i32,
    /// Its `base_dir`.
    pub base_dir: PathBuf,
    root: PathBuf,
    owned: Option<Owned>,
    auth: Option<FakeAuth>,
}

impl Target {
    /// Wraps a started process; from here on every error path stops it.
    pub fn new(kind: Kind, pid: i32, root: PathBuf, owned: Owned) -> Target {
        Target {
            kind,
            pid,
            base_dir: root.join("run"),
            root,
            owned: Some(owned),
            auth: None,
        }
    }

    /// Keeps the fake auth server alive as long as the target.
    pub fn attach_auth(&mut self, auth: FakeAuth) {
        self.auth = Some(auth);
    }

    /// The `login/director` socket the load client connects to.
    pub fn login_socket(&self) -> PathBuf {
        self.base_dir.join("login/director")
    }

    /// The `director-admin` socket.
    pub fn admin_socket(&self) -> PathBuf {
        self.base_dir.join("director-admin")
    }

    /// The director's CPU time so far, in nanoseconds.
    pub fn cpu_ns(&self) -> io::Result<u64> {
        procstat::cpu_ns(self.pid)
    }

    /// The director's CPU time so far as (user, system) nanoseconds.
    pub fn cpu_split_ns(&self) -> io::Result<(u64, u64)> {
        procstat::cpu_split_ns(self.pid)
    }

    /// The director's resident memory in bytes.
    pub fn rss(&self) -> io::Result<u64> {
        procstat::rss_bytes(self.pid)
    }

    /// `AUTH` requests the fake auth server behind this target has answered.
    pub fn auth_answered(&self) -> u64 {
        self.auth.as_ref().map_or(0, FakeAuth::answered)
    }

    /// The director's peak resident memory in bytes.
    pub fn hwm(&self) -> io::Result<u64> {
        procstat::hwm_bytes(self.pid)
    }

    /// The last lines of the target's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.root)
    }

    /// Stops the process (SIGTERM, bounded wait, SIGKILL), the fake auth server, and removes
    /// the directory. Idempotent.
    pub fn stop(&mut self) {
        if self.owned.is_some() {
            crate::progress(&format!(
                "{}: stopping; the fake auth server answered {} requests in all",
                self.kind.label(),
                self.auth_answered()
            ));
        }
        match self.owned.take() {
            Some(Owned::Master(pid)) => {
                procstat::signal(pid, libc::SIGTERM);
                let deadline = Instant::now() + STOP_TIMEOUT;
                while procstat::alive(pid) && Instant::now() < deadline {
                    std::thread::sleep(POLL);
                }
                if procstat::alive(pid) {
                    procstat::signal(pid, libc::SIGKILL);
                }
            }
            Some(Owned::Child(mut child)) => {
                // A BENCH_OURS_WRAPPER such as strace runs directord as its own child; stop
                // that one too, or it outlives the wrapper.
                let pid = child.id() as i32;
                for (grandchild, _) in procstat::children(pid) {
                    procstat::signal(grandchild, libc::SIGTERM);
                }
                procstat::signal(pid, libc::SIGTERM);
                let deadline = Instant::now() + STOP_TIMEOUT;
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(POLL);
                }
                if matches!(child.try_wait(), Ok(None)) {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            None => return,
        }
        self.auth = None;
        if std::env::var_os("BENCH_KEEP").is_some() {
            eprintln!("BENCH_KEEP: kept {}", self.root.display());
        } else {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh directory for one target (mode 0755: Dovecot's unprivileged processes chroot
/// below it), with `run/` and `log/` inside.
pub fn make_root(kind: Kind) -> io::Result<PathBuf> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let root = std::env::temp_dir().join(format!(
        "director-bench-{}-{}-{}",
        std::process::id(),
        kind.label(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("run"))?;
    fs::create_dir_all(root.join("log"))?;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755))?;
    fs::set_permissions(root.join("run"), fs::Permissions::from_mode(0o755))?;
    Ok(root)
}

/// Waits until every path exists, or fails with `why` and the log.
pub fn wait_for_paths(
    root: &Path,
    paths: &[PathBuf],
    mut still_ok: impl FnMut() -> bool,
) -> io::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    for p in paths {
        while fs::symlink_metadata(p).is_err() {
            if !still_ok() {
                return Err(io::Error::other(format!(
                    "process exited before {} appeared; log:\n{}",
                    p.display(),
                    log_tail(root)
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{} never appeared; log:\n{}",
                    p.display(),
                    log_tail(root)
                )));
            }
            std::thread::sleep(POLL);
        }
    }
    Ok(())
}

fn log_tail(root: &Path) -> String {
    let mut out = String::new();
    if let Ok(rd) = fs::read_dir(root.join("log")) {
        for e in rd.flatten() {
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(20);
            out.push_str(&format!("--- {} ---\n", e.path().display()));
            for l in &lines[from..] {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}
