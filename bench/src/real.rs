//! The real Dovecot 2.3 director under a private master: its own `dovecot.conf` and
//! `base_dir` in a temporary directory, nothing under `/etc/dovecot` read.
//!
//! The director connects to `<base_dir>/auth-login`. Dovecot's own auth service would
//! listen there, so its listener is moved aside (`path = auth-login-unused`) and the fake
//! auth server binds the real name, with mode 0666 because the director runs as `dovecot`.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::fake_auth::FakeAuth;
use crate::procstat;
use crate::target::{self, Kind, Owned, Settings, Target, POLL, START_TIMEOUT};

/// The Dovecot master binary.
pub const DOVECOT: &str = "/usr/sbin/dovecot";

/// `dovecot --version`, or why it is unusable.
pub fn version() -> Result<String, String> {
    let out = Command::new(DOVECOT)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{DOVECOT} --version: {e}"))?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if v.starts_with("2.3.") {
        Ok(v)
    } else {
        Err(format!("Dovecot {v:?} found; the director needs 2.3.x"))
    }
}

/// Starts a stand-alone real director with `settings`.
pub fn start(settings: &Settings) -> io::Result<Target> {
    let root = target::make_root(Kind::Real)?;
    let run = root.join("run");
    // In a ring: listen on our own address, and the ring listener there too (as
    // compat-tests' ring captures do).
    let (listen, ring_conf, ring_listener) = match &settings.ring {
        None => ("127.0.0.1".to_string(), String::new(), String::new()),
        Some(r) => (
            r.me.to_string(),
            format!("director_servers = {}\n", r.servers),
            format!(
                "  inet_listener director {{\n    address = {}\n    port = {}\n  }}\n",
                r.me, r.port
            ),
        ),
    };
    let conf = format!(
        "# director-bench: private instance, real director\n\
         instance_name = director-bench-{pid}\n\
         base_dir = {run}\n\
         state_dir = {root}/state\n\
         log_path = {root}/log/dovecot.log\n\
         protocols = none\n\
         listen = {listen}\n\
         ssl = no\n\
         default_internal_user = dovecot\n\
         director_mail_servers = {mail}\n\
         director_user_expire = {expire}\n\
         {ring_conf}\
         service director {{\n  unix_listener login/director {{\n    mode = 0666\n  }}\n  \
         fifo_listener login/proxy-notify {{\n    mode = 0666\n  }}\n  \
         unix_listener director-userdb {{\n    mode = 0666\n  }}\n{ring_listener}}}\n\
         service auth {{\n  unix_listener auth-login {{\n    path = auth-login-unused\n  }}\n}}\n",
        pid = std::process::id(),
        run = run.display(),
        root = root.display(),
        mail = settings.mail_servers,
        expire = settings.user_expire,
    );
    fs::create_dir_all(root.join("state"))?;
    let conf_path = root.join("dovecot.conf");
    fs::write(&conf_path, conf)?;
    // The daemonized master keeps the stdio it was started with: never give it a pipe.
    let startup = fs::File::create(root.join("log/startup.log"))?;
    let status = Command::new(DOVECOT)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(startup.try_clone()?)
        .stderr(startup)
        .status()?;
    let master = wait_master(&root, &run.join("master.pid"));
    let master = match (status.success(), master) {
        (true, Ok(pid)) => pid,
        (_, Ok(pid)) => {
            procstat::signal(pid, libc::SIGTERM);
            return Err(io::Error::other(format!("dovecot -c failed ({status})")));
        }
        (_, Err(e)) => return Err(e),
    };
    let mut t = Target::new(Kind::Real, master, root.clone(), Owned::Master(master));
    target::wait_for_paths(
        &root,
        &[run.join("login/director"), run.join("director-admin")],
        || procstat::alive(master),
    )?;
    t.attach_auth(FakeAuth::start(&run.join("auth-login"))?);
    // The master starts the director on the first connection; an admin handshake does it.
    let _ = crate::admin::user_list(&t.admin_socket());
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(pid) = procstat::child_named(master, "director") {
            t.pid = pid;
            return Ok(t);
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "no director process under master {master}; log:\n{}",
                t.log_tail()
            )));
        }
        std::thread::sleep(POLL);
    }
}

fn wait_master(root: &Path, pid_file: &Path) -> io::Result<i32> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let pid = fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|&p| p > 1 && procstat::alive(p));
        if let Some(pid) = pid {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            let log = fs::read_to_string(root.join("log/startup.log")).unwrap_or_default();
            return Err(io::Error::other(format!(
                "dovecot master did not start:\n{log}"
            )));
        }
        std::thread::sleep(POLL);
    }
}
