//! The lab proxy: a real Dovecot imap/pop3/lmtp proxy whose logins ask a director.

use std::net::IpAddr;
use std::path::PathBuf;

use super::backend::{service_conf, wait_listening};
use super::directord::{Directord, DirectordConfig};
use super::{mail_user, Backend, PASSWORD, PORTS};
use crate::dovecot::Dovecot;
use crate::{loopback, Instance, InstanceBuilder};

/// Which director the proxy's logins talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// The real Dovecot `service director` inside the proxy instance.
    Reference,
    /// Our `directord`, serving the proxy's `base_dir`; the instance has no director service.
    Ours,
}

impl ProxyKind {
    /// `"reference"` or `"ours"`.
    pub fn label(self) -> &'static str {
        match self {
            ProxyKind::Reference => "reference",
            ProxyKind::Ours => "ours",
        }
    }
}

/// A running proxy (and, for [`ProxyKind::Ours`], our daemon).
#[derive(Debug)]
pub struct Proxy {
    /// Which director it uses.
    pub kind: ProxyKind,
    // Field order matters: our daemon stops before the master it serves.
    directord: Option<Directord>,
    /// The Dovecot proxy instance.
    pub instance: Instance,
}

impl Proxy {
    /// Starts a proxy in front of `backends`; users expire `user_expire_secs` after their
    /// last session ended.
    pub fn start(
        dovecot: &Dovecot,
        kind: ProxyKind,
        backends: &[Backend],
        user_expire_secs: u64,
    ) -> std::io::Result<Proxy> {
        let (uid, gid) = mail_user::ensure_mail_user()?;
        let mail_servers = mail_servers(backends);
        let ip = loopback::free_ip(&PORTS)?;
        let name = format!("proxy-{}", kind.label());
        let builder = match kind {
            ProxyKind::Reference => InstanceBuilder::director(&name, &mail_servers),
            // The built-in `service director` always binds `director-admin` (mode 0600);
            // mode 0 disables that listener, so the path is free for ours.
            ProxyKind::Ours => InstanceBuilder::new(&name).conf(
                "service director {\n  unix_listener director-admin {\n    mode = 0\n  }\n}\n",
            ),
        };
        let conf = format!(
            "director_user_expire = {user_expire_secs} s\n\
             passdb {{\n  driver = static\n  args = password={PASSWORD} proxy=y\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid}\n}}\n\
             lmtp_proxy = yes\n\
             protocol lmtp {{\n  auth_socket_path = director-userdb\n}}\n\
             service imap-login {{\n  executable = imap-login director\n}}\n\
             service pop3-login {{\n  executable = pop3-login director\n}}\n"
        );
        let instance = builder
            .listen(IpAddr::V4(ip))
            .protocols("imap pop3 lmtp")
            .conf(&service_conf())
            .conf(&conf)
            .start(dovecot)?;
        let directord = match kind {
            ProxyKind::Reference => None,
            ProxyKind::Ours => {
                let cfg = DirectordConfig {
                    base_dir: instance.base_dir(),
                    mail_servers: mail_servers.clone(),
                    user_expire_secs,
                    extra: String::new(),
                };
                Some(Directord::start(&cfg, instance.root())?)
            }
        };
        wait_listening(ip, &instance)?;
        Ok(Proxy {
            kind,
            directord,
            instance,
        })
    }

    /// The address clients connect to.
    pub fn ip(&self) -> IpAddr {
        self.instance.listen_ip()
    }

    /// The director admin socket (`<base_dir>/director-admin`), real or ours.
    pub fn admin_socket(&self) -> PathBuf {
        self.instance.path("director-admin")
    }

    /// Our daemon, for [`ProxyKind::Ours`].
    pub fn directord(&self) -> Option<&Directord> {
        self.directord.as_ref()
    }

    /// The director's log: Dovecot's for the reference, ours plus Dovecot's otherwise.
    pub fn logs(&self) -> String {
        match &self.directord {
            Some(d) => format!(
                "--- directord ---\n{}--- dovecot ---\n{}",
                d.log(),
                self.instance.log()
            ),
            None => self.instance.log(),
        }
    }
}

/// `director_mail_servers` for `backends`, space separated.
pub fn mail_servers(backends: &[Backend]) -> String {
    backends
        .iter()
        .map(|b| b.ip().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}
