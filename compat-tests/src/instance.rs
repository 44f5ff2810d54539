//! A private Dovecot master instance: its own config, `base_dir`, `state_dir` and log, in a
//! temporary directory. Nothing under `/etc/dovecot` is read. Stopped through the master pid
//! from `<base_dir>/master.pid` when dropped, never by process name.

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::dovecot::Dovecot;
use crate::{err, loopback};

/// How long startup may take before we give up (the master is normally ready in ~20 ms).
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a SIGTERM-ed master gets before SIGKILL (it usually needs 1-3 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Polling step while waiting for files and processes.
const POLL: Duration = Duration::from_millis(20);

/// Builds the configuration of a private instance, then starts it.
#[derive(Debug, Clone)]
pub struct InstanceBuilder {
    name: String,
    listen: Option<IpAddr>,
    protocols: String,
    body: String,
    wait_for: Vec<String>,
}

impl InstanceBuilder {
    /// An instance without protocols; `name` becomes part of `instance_name`.
    pub fn new(name: &str) -> Self {
        InstanceBuilder {
            name: name.to_string(),
            listen: None,
            protocols: "none".into(),
            body: String::new(),
            wait_for: Vec::new(),
        }
    }

    /// A stand-alone real director (`director_servers` empty) for `director_mail_servers`,
    /// with the login, proxy-notify and userdb listeners of `settings.md` §2 enabled.
    pub fn director(name: &str, mail_servers: &str) -> Self {
        Self::new(name)
            .setting("director_mail_servers", mail_servers)
            .conf(
                "service director {\n  unix_listener login/director {\n    mode = 0666\n  }\n  \
                 fifo_listener login/proxy-notify {\n    mode = 0666\n  }\n  \
                 unix_listener director-userdb {\n    mode = 0666\n  }\n}\n",
            )
            .wait_for("director-admin")
            .wait_for("login/director")
    }

    /// The address for `listen` (default: a random free loopback address).
    pub fn listen(mut self, ip: IpAddr) -> Self {
        self.listen = Some(ip);
        self
    }

    /// The `protocols` setting (default `none`).
    pub fn protocols(mut self, protocols: &str) -> Self {
        self.protocols = protocols.to_string();
        self
    }

    /// Appends `key = value`.
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        let _ = writeln!(self.body, "{key} = {value}");
        self
    }

    /// Appends raw configuration text (blocks such as `service x { ... }`).
    pub fn conf(mut self, text: &str) -> Self {
        self.body.push_str(text);
        if !text.ends_with('\n') {
            self.body.push('\n');
        }
        self
    }

    /// Makes `start` wait until this path (relative to `base_dir`) exists.
    pub fn wait_for(mut self, rel: &str) -> Self {
        self.wait_for.push(rel.to_string());
        self
    }

    /// Writes the config and starts `dovecot -c <conf>`; returns once the master's pid file
    /// and every `wait_for` path exist.
    pub fn start(self, dovecot: &Dovecot) -> std::io::Result<Instance> {
        let dir = tempfile::Builder::new().prefix("dcompat-").tempdir()?;
        // The director and login processes run as dovecot/dovenull and chroot below here.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let root = dir.path().to_path_buf();
        for sub in ["run", "state", "log"] {
            fs::create_dir(root.join(sub))?;
        }
        let listen = match self.listen {
            Some(ip) => ip,
            None => IpAddr::V4(loopback::free_ip(&[]).unwrap_or(Ipv4Addr::new(127, 0, 0, 1))),
        };
        let conf = format!(
            "# private compat-tests instance '{name}' for Dovecot {version}\n\
             instance_name = dcompat-{name}-{pid}\n\
             base_dir = {root}/run\n\
             state_dir = {root}/state\n\
             log_path = {root}/log/dovecot.log\n\
             protocols = {protocols}\n\
             listen = {listen}\n\
             ssl = no\n\
             disable_plaintext_auth = no\n\
             default_internal_user = dovecot\n\
             {body}",
            name = self.name,
            version = dovecot.version,
            pid = std::process::id(),
            root = root.display(),
            protocols = self.protocols,
            body = self.body,
        );
        let conf_path = root.join("dovecot.conf");
        fs::write(&conf_path, conf)?;
        let mut inst = Instance {
            dir: Some(dir),
            root,
            listen,
            pid: None,
            dovecot: dovecot.clone(),
            name: self.name.clone(),
            wait_for: self.wait_for.clone(),
        };
        inst.launch()?;
        Ok(inst)
    }
}

/// A running private Dovecot master. Dropping it stops the master (by pid) and deletes the
/// directory, unless `COMPAT_KEEP=1` is set (then the path is printed).
#[derive(Debug)]
pub struct Instance {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    listen: IpAddr,
    pid: Option<i32>,
    dovecot: Dovecot,
    name: String,
    wait_for: Vec<String>,
}

impl Instance {
    /// The instance's `base_dir` (sockets, `master.pid`).
    pub fn base_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// A path relative to `base_dir`, e.g. `path("director-admin")`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.base_dir().join(rel)
    }

    /// The generated `dovecot.conf`.
    pub fn conf_path(&self) -> PathBuf {
        self.root.join("dovecot.conf")
    }

    /// The temporary directory holding everything of this instance.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `listen` address.
    pub fn listen_ip(&self) -> IpAddr {
        self.listen
    }

    /// The master's pid (`None` once stopped).
    pub fn master_pid(&self) -> Option<i32> {
        self.pid
    }

    /// The whole Dovecot log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("log/dovecot.log")).unwrap_or_default()
    }

    fn startup_log(&self) -> String {
        fs::read_to_string(self.root.join("log/startup.log")).unwrap_or_default()
    }

    /// A `doveadm -c <this config>` command, ready for more arguments.
    pub fn doveadm(&self) -> Command {
        let mut c = Command::new(&self.dovecot.doveadm);
        c.arg("-c").arg(self.conf_path()).stdin(Stdio::null());
        c
    }

    /// The pid of the master's child whose process name is `comm` (e.g. `director`).
    pub fn child_pid(&self, comm: &str) -> Option<i32> {
        let master = self.pid?;
        for entry in fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // stat: "pid (comm) state ppid ..."; comm may contain spaces, so split at the last ')'.
            let Some((head, tail)) = stat.rsplit_once(')') else {
                continue;
            };
            let name = head.split_once('(').map(|(_, n)| n).unwrap_or("");
            let ppid = tail
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<i32>().ok());
            if name == comm && ppid == Some(master) {
                return Some(pid);
            }
        }
        None
    }

    /// Runs `dovecot -c <conf>` and waits for the master's pid and the `wait_for` paths.
    fn launch(&mut self) -> std::io::Result<()> {
        let conf_path = self.conf_path();
        // The daemonized master keeps the stdio it was started with: never give it a pipe.
        let startup = fs::File::create(self.root.join("log/startup.log"))?;
        let status = Command::new(&self.dovecot.master)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(startup.try_clone()?)
            .stderr(startup)
            .status()?;
        if !status.success() {
            return Err(err(format!(
                "dovecot -c {} failed ({status}):\n{}",
                conf_path.display(),
                self.startup_log()
            )));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(pid) = read_pid(&self.base_dir().join("master.pid")).filter(|&p| alive(p)) {
                self.pid = Some(pid);
                break;
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "master of '{}' did not start:\n{}{}",
                    self.name,
                    self.startup_log(),
                    self.log()
                )));
            }
            std::thread::sleep(POLL);
        }
        for rel in &self.wait_for {
            let path = self.base_dir().join(rel);
            while fs::symlink_metadata(&path).is_err() {
                if Instant::now() > deadline {
                    return Err(err(format!(
                        "{} never appeared; log:\n{}",
                        path.display(),
                        self.log()
                    )));
                }
                std::thread::sleep(POLL);
            }
        }
        Ok(())
    }

    /// Starts a stopped instance again with the same configuration and directory.
    pub fn start_again(&mut self) -> std::io::Result<()> {
        if self.pid.is_some() {
            return Err(err("instance is still running"));
        }
        self.launch()
    }

    /// Crashes the instance: SIGKILL to the master's whole process group at once, so no
    /// process gets to shut down cleanly (a director sends no QUIT) and the master restarts
    /// nothing. Waits (bounded) until they are gone. Idempotent.
    pub fn crash(&mut self) {
        let Some(master) = self.pid.take() else {
            return;
        };
        let mut procs = self.children();
        procs.push(master);
        // The daemonized master leads its own process group (setsid); its children stay in it.
        if pgid(master) == Some(master) {
            crate::stop::signal(-master, libc::SIGKILL);
        } else {
            for &p in &procs {
                crate::stop::signal(p, libc::SIGKILL);
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while procs.iter().any(|&p| alive(p)) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
    }

    /// The pids of the master's direct children.
    fn children(&self) -> Vec<i32> {
        let Some(master) = self.pid else {
            return Vec::new();
        };
        let Ok(rd) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
            .filter(|&p| stat_field(p, 1) == Some(master))
            .collect()
    }

    /// Stops the master: SIGTERM, bounded wait, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            crate::stop::stop_pid(pid, STOP_TIMEOUT);
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- Dovecot log of {} ---\n{}--- end of log ---",
                self.root.display(),
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

/// Field `n` after the command name of `/proc/<pid>/stat` (0 = state, 1 = ppid, 2 = pgrp).
fn stat_field(pid: i32, n: usize) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, tail) = stat.rsplit_once(')')?;
    tail.split_whitespace().nth(n)?.parse().ok()
}

fn pgid(pid: i32) -> Option<i32> {
    stat_field(pid, 2)
}

pub use crate::stop::alive;
