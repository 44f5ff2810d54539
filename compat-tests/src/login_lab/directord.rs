//! Running our `directord` as a child process, stopped by its pid.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::err;

/// How long `directord` may take to create its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a SIGTERM-ed `directord` gets before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(8);
/// Polling step.
const POLL: Duration = Duration::from_millis(20);

/// The settings a lab `directord` runs with.
#[derive(Debug, Clone)]
pub struct DirectordConfig {
    /// Where our sockets go (a Dovecot proxy's `base_dir`, so its logins find them).
    pub base_dir: PathBuf,
    /// `director_mail_servers`, Dovecot syntax.
    pub mail_servers: String,
    /// `director_user_expire` in seconds.
    pub user_expire_secs: u64,
    /// More `[director]` lines (e.g. the ring's `servers` and `listen`), verbatim.
    pub extra: String,
}

impl DirectordConfig {
    /// The TOML text of this configuration.
    pub fn to_toml(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "base_dir = \"{}\"", self.base_dir.display());
        let _ = writeln!(s, "[director]");
        let _ = writeln!(s, "mail_servers = \"{}\"", self.mail_servers);
        let _ = writeln!(s, "user_expire = \"{} s\"", self.user_expire_secs);
        let _ = writeln!(s, "username_hash = \"%Lu\"");
        s.push_str(&self.extra);
        s
    }
}

/// A running `directord`; dropping it stops the process by pid.
#[derive(Debug)]
pub struct Directord {
    child: Option<Child>,
    log: PathBuf,
    base_dir: PathBuf,
}

impl Directord {
    /// Writes `<work_dir>/directord.toml`, starts `directord --config` with its output in
    /// `<work_dir>/directord.log`, and waits until its listeners exist.
    pub fn start(config: &DirectordConfig, work_dir: &Path) -> std::io::Result<Directord> {
        let bin = crate::ours::our_binary("directord").ok_or_else(|| {
            err("our directord is not built: run `cargo build --workspace --bins` first")
        })?;
        let conf = work_dir.join("directord.toml");
        fs::write(&conf, config.to_toml())?;
        let log = work_dir.join("directord.log");
        let out = fs::File::create(&log)?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&conf)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let mut d = Directord {
            child: Some(child),
            log,
            base_dir: config.base_dir.clone(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        for rel in ["login/director", "director-userdb", "director-admin"] {
            while fs::symlink_metadata(config.base_dir.join(rel)).is_err() {
                let exited = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                if exited.is_some() || Instant::now() > deadline {
                    return Err(err(format!(
                        "directord did not create {rel} ({exited:?}); log:\n{}",
                        d.log()
                    )));
                }
                std::thread::sleep(POLL);
            }
        }
        Ok(d)
    }

    /// Our admin socket.
    pub fn admin_socket(&self) -> PathBuf {
        self.base_dir.join("director-admin")
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything `directord` printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL (a crash: no QUIT to ring peers, sockets left behind) and reap. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, bounded wait, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        crate::stop::stop_child(&mut child, STOP_TIMEOUT);
    }
}

impl Drop for Directord {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- directord log ---\n{}--- end of log ---", self.log());
        }
    }
}
