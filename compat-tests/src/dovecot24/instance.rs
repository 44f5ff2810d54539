//! A private Dovecot 2.4.1 master running inside the chroot: its own directory under the
//! chroot's `/tmp` (config, `base_dir`, `state_dir`, log, mail homes), stopped through the
//! master pid from `<base_dir>/master.pid` when dropped, never by process name.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::chroot::Chroot24;
use crate::err;
use crate::instance::alive;

/// How long a master may take to start listening (normally well under a second).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERM-ed master gets before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Polling step while waiting.
const POLL: Duration = Duration::from_millis(20);

/// The ports every instance listens on. Standard ones, because a 2.4 proxy without `port=`
/// connects to the protocol's default port (LMTP: the port its own client used).
pub const IMAP_PORT: u16 = 143;
/// POP3 port.
pub const POP3_PORT: u16 = 110;
/// LMTP port.
pub const LMTP_PORT: u16 = 24;
/// Submission port.
pub const SUBMISSION_PORT: u16 = 587;
/// All of them, for picking a free address.
pub const PORTS: [u16; 4] = [IMAP_PORT, POP3_PORT, LMTP_PORT, SUBMISSION_PORT];

/// A private 2.4.1 master. Dropping it stops the master (by pid) and deletes its directory,
/// unless `COMPAT_KEEP=1` is set.
#[derive(Debug)]
pub struct Instance24 {
    dir: Option<tempfile::TempDir>,
    name: String,
    host_root: PathBuf,
    inner_root: PathBuf,
    listen: Ipv4Addr,
    pid: Option<i32>,
}

impl Instance24 {
    /// Creates the instance's directory (nothing runs yet); `start` writes the config.
    pub fn create(chroot: &Chroot24, name: &str, listen: Ipv4Addr) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("dcompat24-{name}-"))
            .tempdir_in(chroot.root.join("tmp"))?;
        // Login and mail processes run as dovenull / the mail user below here.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let host_root = dir.path().to_path_buf();
        let inner_root = chroot
            .inner_path(&host_root)
            .ok_or_else(|| err("instance directory outside the chroot"))?;
        for sub in ["run", "state", "log"] {
            fs::create_dir(host_root.join(sub))?;
        }
        Ok(Instance24 {
            dir: Some(dir),
            name: name.to_string(),
            host_root,
            inner_root,
            listen,
            pid: None,
        })
    }

    /// The settings every instance shares (2.4 syntax), for `protocols`.
    pub fn common_conf(&self, protocols: &str) -> String {
        let r = self.inner_root.display();
        let mut listeners = String::new();
        for (service, listener, port) in [
            ("imap-login", "imap", IMAP_PORT),
            ("pop3-login", "pop3", POP3_PORT),
            ("lmtp", "lmtp", LMTP_PORT),
            ("submission-login", "submission", SUBMISSION_PORT),
        ] {
            listeners.push_str(&format!(
                "service {service} {{\n  inet_listener {listener} {{\n    port = {port}\n  }}\n}}\n"
            ));
        }
        format!(
            "# private compat-tests instance '{name}' (Dovecot 2.4 syntax)\n\
             dovecot_config_version = 2.4.1\n\
             dovecot_storage_version = 2.4.1\n\
             instance_name = dcompat24-{name}-{pid}\n\
             base_dir = {r}/run\n\
             state_dir = {r}/state\n\
             log_path = {r}/log/dovecot.log\n\
             protocols = {protocols}\n\
             listen = {listen}\n\
             ssl = no\n\
             auth_allow_cleartext = yes\n\
             auth_mechanisms = plain login\n\
             auth_verbose = yes\n\
             login_trusted_networks = 127.0.0.0/8\n\
             shutdown_clients = yes\n\
             service imap-login {{\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service pop3-login {{\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
             service submission-login {{\n  inet_listener submissions {{\n    port = 0\n  }}\n}}\n\
             {listeners}",
            name = self.name,
            pid = std::process::id(),
            listen = self.listen,
        )
    }

    /// Writes `conf` as the instance's `dovecot.conf` and starts the master inside the
    /// chroot; returns once it listens on IMAP.
    pub fn start(&mut self, chroot: &Chroot24, conf: &str) -> std::io::Result<()> {
        fs::write(self.host_root.join("dovecot.conf"), conf)?;
        // The daemonised master keeps the stdio it was started with: never give it a pipe.
        let startup = fs::File::create(self.host_root.join("log/startup.log"))?;
        let status = chroot
            .command("/usr/sbin/dovecot")
            .arg("-c")
            .arg(self.inner_root.join("dovecot.conf"))
            .stdout(startup.try_clone()?)
            .stderr(Stdio::from(startup))
            .status()?;
        if !status.success() {
            return Err(err(format!(
                "{}: dovecot -c failed ({status}):\n{}",
                self.name,
                self.startup_log()
            )));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let imap = SocketAddr::new(IpAddr::V4(self.listen), IMAP_PORT);
        loop {
            if self.pid.is_none() {
                self.pid = read_pid(&self.host_path("run/master.pid")).filter(|&p| alive(p));
            }
            if self.pid.is_some() && TcpStream::connect_timeout(&imap, POLL).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "{}: master did not start listening:\n{}{}",
                    self.name,
                    self.startup_log(),
                    self.log()
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// `doveadm -c <this config>` inside the chroot, ready for more arguments.
    pub fn doveadm(&self, chroot: &Chroot24) -> std::process::Command {
        let mut c = chroot.command("/usr/bin/doveadm");
        c.arg("-c").arg(self.inner_root.join("dovecot.conf"));
        c
    }

    /// The instance's name (`be1`, `proxy`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `listen` address.
    pub fn ip(&self) -> Ipv4Addr {
        self.listen
    }

    /// `ip:port` of this instance.
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.listen), port)
    }

    /// The instance's directory as Dovecot inside the chroot sees it.
    pub fn inner_root(&self) -> &Path {
        &self.inner_root
    }

    /// A path relative to the instance's directory, from the host.
    pub fn host_path(&self, rel: &str) -> PathBuf {
        self.host_root.join(rel)
    }

    /// `base_dir` from the host (where our `directord` puts its sockets in layout A).
    pub fn host_base_dir(&self) -> PathBuf {
        self.host_root.join("run")
    }

    /// The master's pid (`None` before start and once stopped).
    pub fn master_pid(&self) -> Option<i32> {
        self.pid
    }

    /// The whole Dovecot log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.host_path("log/dovecot.log")).unwrap_or_default()
    }

    fn startup_log(&self) -> String {
        fs::read_to_string(self.host_path("log/startup.log")).unwrap_or_default()
    }

    /// Stops the master: SIGTERM, bounded wait, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            crate::stop::stop_pid(pid, STOP_TIMEOUT);
        }
    }
}

impl Drop for Instance24 {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- Dovecot 2.4 log of {} ({}) ---\n{}{}--- end of log ---",
                self.name,
                self.host_root.display(),
                self.startup_log(),
                self.log()
            );
        }
        if std::env::var_os("COMPAT_KEEP").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("COMPAT_KEEP: kept {}", dir.keep().display());
            }
        }
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&p| p > 1)
}
