//! A lab proxy with move/kick settings (`user_kick_delay`, `max_parallel_moves`,
//! `flush_socket`, an alternative-username passdb field), for the kick, move and flush tests.
//!
//! Same layout as [`super::proxy`]: a real Dovecot imap/pop3/lmtp proxy whose director is
//! either the real `service director` or our `directord` in its `base_dir`. The settings
//! are written into `dovecot.conf` for the reference and into our TOML for ours, so both
//! directors run with the same values.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::backend::{service_conf, wait_listening};
use super::bounded::bounded;
use super::proxy::mail_servers;
use super::{mail_user, Backend, ProxyKind, PASSWORD, PORTS};
use crate::dovecot::Dovecot;
use crate::{err, loopback, Instance, InstanceBuilder};

/// How long `directord` may take to create its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a SIGTERM-ed `directord` gets before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(8);
/// Bound on one `doveadm`/`directorctl` run (a director that never answers would hang it).
const CLIENT_LIMIT: Duration = Duration::from_secs(30);
/// Polling step.
const POLL: Duration = Duration::from_millis(20);

/// Director settings shared by both variants.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// `director_user_expire`, seconds.
    pub user_expire_secs: u64,
    /// `director_user_kick_delay`, seconds.
    pub kick_delay_secs: u64,
    /// `director_max_parallel_moves`, if not the default.
    pub max_parallel_moves: Option<u32>,
    /// `director_flush_socket` (e.g. `unix:flush-capture`, relative to `base_dir`).
    pub flush_socket: Option<String>,
    /// An extra passdb field `user_<name>=<template>` (alternative username for `kick -f`).
    pub alt_username: Option<(String, String)>,
    /// Make the director a ring member (`None`: stand-alone).
    pub ring: Option<RingTuning>,
}

/// A ring member's addresses: it listens for clients and for the ring on `me`.
#[derive(Debug, Clone)]
pub struct RingTuning {
    /// This proxy's address (clients and ring listener).
    pub me: std::net::Ipv4Addr,
    /// Every director's address (`director_servers`), all on [`RING_PORT`].
    pub servers: Vec<std::net::Ipv4Addr>,
}

/// The ring port of lab ring members.
pub const RING_PORT: u16 = 9090;

impl RingTuning {
    /// `director_servers`: `ip:port` words.
    fn servers(&self) -> String {
        self.servers
            .iter()
            .map(|ip| format!("{ip}:{RING_PORT}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            user_expire_secs: 60,
            kick_delay_secs: 2,
            max_parallel_moves: None,
            flush_socket: None,
            alt_username: None,
            ring: None,
        }
    }
}

/// A running tuned proxy (and, for [`ProxyKind::Ours`], our daemon).
#[derive(Debug)]
pub struct TunedProxy {
    /// Which director it uses.
    pub kind: ProxyKind,
    // Field order matters: our daemon stops before the master it serves.
    daemon: Option<OurDaemon>,
    /// The Dovecot proxy instance.
    pub instance: Instance,
}

impl TunedProxy {
    /// Starts a proxy in front of `backends` with `tuning`.
    pub fn start(
        dovecot: &Dovecot,
        kind: ProxyKind,
        backends: &[Backend],
        tuning: &Tuning,
    ) -> std::io::Result<TunedProxy> {
        let (uid, gid) = mail_user::ensure_mail_user()?;
        let servers = mail_servers(backends);
        let ip = match &tuning.ring {
            Some(r) => r.me,
            None => loopback::free_ip(&PORTS)?,
        };
        let name = format!("kick-proxy-{}", kind.label());
        let mut director_conf = String::new();
        let builder = match kind {
            ProxyKind::Reference => {
                let _ = writeln!(
                    director_conf,
                    "director_user_kick_delay = {} s",
                    tuning.kick_delay_secs
                );
                if let Some(n) = tuning.max_parallel_moves {
                    let _ = writeln!(director_conf, "director_max_parallel_moves = {n}");
                }
                if let Some(f) = &tuning.flush_socket {
                    let _ = writeln!(director_conf, "director_flush_socket = {f}");
                }
                if let Some(r) = &tuning.ring {
                    let _ = writeln!(director_conf, "director_servers = {}", r.servers());
                    let _ = writeln!(
                        director_conf,
                        "service director {{\n  inet_listener director {{\n    \
                         address = {ip}\n    port = {RING_PORT}\n  }}\n}}"
                    );
                }
                InstanceBuilder::director(&name, &servers)
            }
            // See `proxy.rs`: mode 0 frees `director-admin` for ours.
            ProxyKind::Ours => InstanceBuilder::new(&name).conf(
                "service director {\n  unix_listener director-admin {\n    mode = 0\n  }\n}\n",
            ),
        };
        let alt = tuning
            .alt_username
            .as_ref()
            .map(|(k, v)| format!(" user_{k}={v}"))
            .unwrap_or_default();
        let conf = format!(
            "director_user_expire = {expire} s\n\
             {director_conf}\
             passdb {{\n  driver = static\n  args = password={PASSWORD} proxy=y{alt}\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid}\n}}\n\
             lmtp_proxy = yes\n\
             protocol lmtp {{\n  auth_socket_path = director-userdb\n}}\n\
             service imap-login {{\n  executable = imap-login director\n}}\n\
             service pop3-login {{\n  executable = pop3-login director\n}}\n",
            expire = tuning.user_expire_secs,
        );
        let instance = builder
            .listen(IpAddr::V4(ip))
            .protocols("imap pop3 lmtp")
            .conf(&service_conf())
            .conf(&conf)
            .start(dovecot)?;
        let daemon = match kind {
            ProxyKind::Reference => None,
            ProxyKind::Ours => Some(OurDaemon::start(&instance, &servers, tuning)?),
        };
        wait_listening(ip, &instance)?;
        Ok(TunedProxy {
            kind,
            daemon,
            instance,
        })
    }

    /// The address clients connect to.
    pub fn ip(&self) -> IpAddr {
        self.instance.listen_ip()
    }

    /// `<base_dir>/<rel>`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.instance.path(rel)
    }

    /// The director admin socket, real or ours.
    pub fn admin_socket(&self) -> PathBuf {
        self.instance.path("director-admin")
    }

    /// `doveadm -c <conf> director <args> -a <admin socket>` (the stock client), stopped
    /// after 30 s.
    pub fn doveadm(&self, args: &[&str]) -> Output {
        let mut cmd = self.instance.doveadm();
        cmd.env("TZ", "UTC")
            .arg("director")
            .args(args)
            .arg("-a")
            .arg(self.admin_socket());
        bounded(&cmd, CLIENT_LIMIT)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| failed_output(&format!("doveadm: {e}")))
    }

    /// `directorctl -a <admin socket> <args>` (our client), stopped after 30 s.
    pub fn directorctl(&self, args: &[&str]) -> Output {
        let Some(bin) = crate::ours::our_binary("directorctl") else {
            return failed_output("directorctl is not built");
        };
        let mut cmd = Command::new(bin);
        cmd.env("TZ", "UTC")
            .arg("-a")
            .arg(self.admin_socket())
            .args(args);
        bounded(&cmd, CLIENT_LIMIT)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| failed_output(&format!("directorctl: {e}")))
    }

    /// The director's log: Dovecot's for the reference, ours plus Dovecot's otherwise.
    pub fn logs(&self) -> String {
        match &self.daemon {
            Some(d) => format!(
                "--- directord ---\n{}--- dovecot ---\n{}",
                d.log(),
                self.instance.log()
            ),
            None => self.instance.log(),
        }
    }

    /// How many proxied sessions the login processes closed, per `(user, reason)`, from
    /// log lines `proxy(<user>,<ip>:<port>): Disconnected by proxy: <reason>: user=<...`.
    pub fn proxy_disconnects(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for line in self.instance.log().lines() {
            let Some((head, rest)) = line.split_once("): Disconnected by proxy: ") else {
                continue;
            };
            let Some(user) = head
                .rsplit_once("proxy(")
                .and_then(|(_, u)| u.split(',').next())
            else {
                continue;
            };
            let reason = rest.split(": user=<").next().unwrap_or(rest);
            *out.entry((user.to_string(), reason.to_string()))
                .or_default() += 1;
        }
        out
    }

    /// Only the director's own log lines (ours, or the reference's `director:` lines).
    pub fn director_log(&self) -> String {
        match &self.daemon {
            Some(d) => d.log(),
            None => self
                .instance
                .log()
                .lines()
                .filter(|l| l.contains("director: "))
                .map(|l| format!("{l}\n"))
                .collect(),
        }
    }
}

/// An `Output` standing for a command that could not run (exit 127, reason on stderr).
fn failed_output(why: &str) -> Output {
    use std::os::unix::process::ExitStatusExt;
    Output {
        status: std::process::ExitStatus::from_raw(127 << 8),
        stdout: Vec::new(),
        stderr: why.as_bytes().to_vec(),
    }
}

/// Our `directord` serving a proxy's `base_dir`, stopped by pid on drop.
#[derive(Debug)]
struct OurDaemon {
    child: Option<Child>,
    log: PathBuf,
}

impl OurDaemon {
    fn start(instance: &Instance, servers: &str, t: &Tuning) -> std::io::Result<OurDaemon> {
        let bin = crate::ours::our_binary("directord").ok_or_else(|| {
            err("our directord is not built: run `cargo build --workspace --bins` first")
        })?;
        let base_dir = instance.base_dir();
        let mut toml = format!(
            "base_dir = \"{}\"\n[director]\nmail_servers = \"{servers}\"\n\
             user_expire = \"{} s\"\nuser_kick_delay = \"{} s\"\nusername_hash = \"%Lu\"\n",
            base_dir.display(),
            t.user_expire_secs,
            t.kick_delay_secs
        );
        if let Some(n) = t.max_parallel_moves {
            let _ = writeln!(toml, "max_parallel_moves = {n}");
        }
        if let Some(f) = &t.flush_socket {
            let _ = writeln!(toml, "flush_socket = \"{f}\"");
        }
        if let Some(r) = &t.ring {
            let _ = writeln!(toml, "listen = \"{}:{RING_PORT}\"", r.me);
            let _ = writeln!(toml, "servers = \"{}\"", r.servers());
        }
        let conf = instance.root().join("directord.toml");
        fs::write(&conf, toml)?;
        let log = instance.root().join("directord.log");
        let out = fs::File::create(&log)?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&conf)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let mut d = OurDaemon {
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        for rel in ["login/director", "director-userdb", "director-admin"] {
            while fs::symlink_metadata(base_dir.join(rel)).is_err() {
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

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OurDaemon {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        crate::stop::stop_child(&mut child, STOP_TIMEOUT);
    }
}
