//! One ring member: a real Dovecot 2.3 login proxy (`imap-login director`) on its own
//! loopback address whose director is either the real `service director` of the same
//! instance ([`Kind::Real`]) or our `directord` in its `base_dir` ([`Kind::Ours`]). Both
//! listen for the ring on that address and the lab's shared ring port.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use super::RING_PORT;
use crate::dovecot::Dovecot;
use crate::login_lab::backend::service_conf;
use crate::login_lab::{bounded, mail_user, Directord, DirectordConfig, PASSWORD};
use crate::{err, tcp_listening, Instance, InstanceBuilder};

/// Bound on one `doveadm` run (a director that never answers would hang it).
const CLIENT_LIMIT: Duration = Duration::from_secs(30);
/// How long a (re)started director may take to listen on the ring port.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Which director a member runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The real Dovecot 2.3 `service director`.
    Real,
    /// Our `directord`.
    Ours,
}

impl Kind {
    /// `"real"` or `"ours"`.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Real => "real",
            Kind::Ours => "ours",
        }
    }
}

/// What a member is started with.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// Name in logs and reports (`real0`, `ours1`, ...).
    pub name: String,
    /// Which director.
    pub kind: Kind,
    /// The member's address (ring listener, IMAP).
    pub ip: Ipv4Addr,
    /// `director_servers`, the same on every member.
    pub servers: String,
    /// `director_mail_servers`.
    pub mail_servers: String,
    /// `director_user_expire`, seconds.
    pub user_expire_secs: u64,
}

/// A running (or crashed) member.
#[derive(Debug)]
pub struct Member {
    /// What it was started with.
    pub spec: MemberSpec,
    // Field order matters: our daemon stops before the master it serves.
    ours: Option<Directord>,
    /// The Dovecot instance: the login proxy, and for [`Kind::Real`] the director too.
    pub instance: Instance,
}

impl Member {
    /// Starts the member and waits until its director listens on the ring port.
    pub fn start(dovecot: &Dovecot, spec: MemberSpec) -> std::io::Result<Member> {
        let (uid, gid) = mail_user::ensure_mail_user()?;
        let ip = spec.ip;
        let proxy = format!(
            "director_user_expire = {expire} s\n\
             passdb {{\n  driver = static\n  args = password={PASSWORD} proxy=y\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid}\n}}\n\
             service imap-login {{\n  executable = imap-login director\n}}\n",
            expire = spec.user_expire_secs
        );
        let builder = match spec.kind {
            Kind::Real => InstanceBuilder::new(&spec.name)
                .setting("director_servers", &spec.servers)
                .setting("director_mail_servers", &spec.mail_servers)
                .conf(&format!(
                    "service director {{\n  unix_listener login/director {{\n    mode = 0666\n  }}\n  \
                     fifo_listener login/proxy-notify {{\n    mode = 0666\n  }}\n  \
                     unix_listener director-userdb {{\n    mode = 0666\n  }}\n  \
                     inet_listener director {{\n    address = {ip}\n    port = {RING_PORT}\n  }}\n}}\n"
                ))
                .wait_for("director-admin")
                .wait_for("login/director"),
            // See `login_lab/proxy.rs`: mode 0 frees `director-admin` for ours.
            Kind::Ours => InstanceBuilder::new(&spec.name).conf(
                "service director {\n  unix_listener director-admin {\n    mode = 0\n  }\n}\n",
            ),
        };
        let instance = builder
            .listen(IpAddr::V4(ip))
            .protocols("imap")
            .conf(&service_conf())
            .conf(&proxy)
            .start(dovecot)?;
        let mut m = Member {
            spec,
            ours: None,
            instance,
        };
        if m.spec.kind == Kind::Ours {
            m.ours = Some(Directord::start(&m.ours_config(), m.instance.root())?);
        }
        m.wait_ring_listener()?;
        Ok(m)
    }

    fn ours_config(&self) -> DirectordConfig {
        DirectordConfig {
            base_dir: self.instance.base_dir(),
            mail_servers: self.spec.mail_servers.clone(),
            user_expire_secs: self.spec.user_expire_secs,
            extra: format!(
                "servers = \"{}\"\nlisten = \"{}:{RING_PORT}\"\n",
                self.spec.servers, self.spec.ip
            ),
        }
    }

    fn wait_ring_listener(&self) -> std::io::Result<()> {
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        while !tcp_listening(self.ip(), RING_PORT) {
            if Instant::now() > deadline {
                return Err(err(format!(
                    "{} never listened on its ring port; log:\n{}",
                    self.spec.name,
                    self.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The member's address (IMAP clients and the ring).
    pub fn ip(&self) -> IpAddr {
        IpAddr::V4(self.spec.ip)
    }

    /// The director's ring address.
    pub fn ring_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip(), RING_PORT)
    }

    /// `<name> (<kind> <ip>)`, for reports.
    pub fn label(&self) -> String {
        format!(
            "{} ({} {})",
            self.spec.name,
            self.spec.kind.label(),
            self.spec.ip
        )
    }

    /// `doveadm -f tab director <args> -a <this member's admin socket>`, real doveadm
    /// against either director, stopped after 30 s.
    pub fn doveadm(&self, args: &[&str]) -> Output {
        let mut cmd = self.instance.doveadm();
        cmd.env("TZ", "UTC")
            .args(["-f", "tab", "director"])
            .args(args)
            .arg("-a")
            .arg(self.instance.path("director-admin"));
        bounded(&cmd, CLIENT_LIMIT)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                use std::os::unix::process::ExitStatusExt;
                Output {
                    status: std::process::ExitStatus::from_raw(127 << 8),
                    stdout: Vec::new(),
                    stderr: format!("doveadm: {e}").into_bytes(),
                }
            })
    }

    /// The director's process id (ours, or the real member's `director` child), if running.
    pub fn director_pid(&self) -> Option<i32> {
        match self.spec.kind {
            Kind::Ours => self
                .ours
                .as_ref()
                .and_then(Directord::pid)
                .and_then(|p| i32::try_from(p).ok()),
            Kind::Real => self.instance.child_pid("director"),
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the director: its connections stay up, but it
    /// reads and forwards nothing meanwhile (a slow director).
    pub fn freeze(&self, frozen: bool) -> std::io::Result<()> {
        let pid = self
            .director_pid()
            .filter(|&p| p > 1)
            .ok_or_else(|| err(format!("{}: no director process", self.spec.name)))?;
        crate::stop::signal(pid, if frozen { libc::SIGSTOP } else { libc::SIGCONT });
        Ok(())
    }

    /// Kills the director with SIGKILL: ours alone, or the real member's whole Dovecot
    /// (the master would restart a killed `director` at once). No QUIT reaches the ring.
    pub fn crash(&mut self) {
        match self.spec.kind {
            Kind::Ours => {
                if let Some(d) = self.ours.as_mut() {
                    d.kill();
                }
            }
            Kind::Real => self.instance.crash(),
        }
    }

    /// Starts a crashed member's director again (same configuration and state directory).
    pub fn restart(&mut self) -> std::io::Result<()> {
        match self.spec.kind {
            Kind::Ours => {
                // The crash left our sockets behind; removing them lets start() wait for new ones.
                for rel in ["login/director", "director-userdb", "director-admin"] {
                    let _ = std::fs::remove_file(self.instance.path(rel));
                }
                if let Some(mut old) = self.ours.take() {
                    old.stop();
                }
                // start() truncates directord.log; keep the crashed run's log for reports.
                let root = self.instance.root();
                let _ = std::fs::rename(root.join("directord.log"), root.join("directord.log.1"));
                self.ours = Some(Directord::start(&self.ours_config(), self.instance.root())?);
            }
            Kind::Real => self.instance.start_again()?,
        }
        self.wait_ring_listener()
    }

    /// The director's log (ours, or the Dovecot log with the real director's lines).
    pub fn logs(&self) -> String {
        match &self.ours {
            Some(d) => format!(
                "--- directord (before a crash) ---\n{}--- directord ---\n{}--- dovecot ---\n{}",
                std::fs::read_to_string(self.instance.root().join("directord.log.1"))
                    .unwrap_or_default(),
                d.log(),
                self.instance.log()
            ),
            None => self.instance.log(),
        }
    }
}
