//! The whole lab of `dovecot-2.4.md` §2: two 2.4.1 backends, a 2.4.1 proxy whose logins and
//! LMTP ask our `directord`, and `directord` itself on the host, in either layout.
//!
//! Path mapping: Dovecot sees `/tmp/dcompat24-proxy-XXXX/run` as its `base_dir`; `directord`
//! runs outside the chroot and is given the same directory as the host sees it,
//! `<chroot>/tmp/dcompat24-proxy-XXXX/run`. Every socket name relative to `base_dir` is then
//! the same on both sides. In layout B `directord`'s `base_dir` is a directory of its own
//! (also inside the chroot, so that the login processes can reach it) and its `[auth]`
//! sockets are absolute host paths into the proxy's `base_dir`.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use director::mail_hosts::parse_mail_servers;
use director::state::{Directory, Tag};
use director::username_hash::UsernameHash;

use super::chroot::Chroot24;
use super::conf::{self, LoginMode};
use super::directord::Directord;
use super::instance::{Instance24, PORTS};
use super::smtp_relay::SmtpRelay;
use crate::admin::AdminClient;
use crate::{err, loopback};

/// Where `directord`'s sockets live relative to Dovecot's `base_dir` (`dovecot-2.4.md` §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// §2.1: inside the proxy's `base_dir`; `directord` must start after the master.
    InBaseDir,
    /// §2.2: login services without chroot, `directord` in a directory of its own; any order.
    OutsideBaseDir,
}

/// A running lab. Dropping it stops `directord`, then the proxy, then the backends.
#[derive(Debug)]
pub struct Lab24 {
    /// Our daemon (`None` while stopped).
    pub director: Option<Directord>,
    /// The 2.4 proxy.
    pub proxy: Instance24,
    /// `be1`, `be2`.
    pub backends: Vec<Instance24>,
    /// The chroot everything runs in.
    pub chroot: Chroot24,
    layout: Layout,
    directord_bin: PathBuf,
    user_expire_secs: u32,
    /// Extra `[director]` lines of `directord`'s TOML.
    director_extra: String,
    proxy_conf: String,
    /// Layout B: `directord`'s own base_dir (inside the chroot).
    own_dir: Option<tempfile::TempDir>,
    /// `directord`'s config and log.
    work: tempfile::TempDir,
    /// The backends' submission relay.
    relay: SmtpRelay,
}

impl Lab24 {
    /// Starts backends, proxy and `directord` in the order the layout needs (B: `directord`
    /// first, to show that it may). `user_expire_secs` becomes `[director] user_expire`
    /// (so `proxy_refresh` is half of it).
    pub fn start(
        chroot: &Chroot24,
        directord_bin: &Path,
        layout: Layout,
        user_expire_secs: u32,
    ) -> std::io::Result<Lab24> {
        Self::start_mode(
            chroot,
            directord_bin,
            layout,
            user_expire_secs,
            LoginMode::Performance,
        )
    }

    /// [`Lab24::start`] with the proxy's login processes in `mode`.
    pub fn start_mode(
        chroot: &Chroot24,
        directord_bin: &Path,
        layout: Layout,
        user_expire_secs: u32,
        mode: LoginMode,
    ) -> std::io::Result<Lab24> {
        Self::start_full(chroot, directord_bin, layout, user_expire_secs, mode, "")
    }

    /// [`Lab24::start_mode`] with `director_extra` (TOML lines, e.g. a ring's `listen` and
    /// `servers`) added to `directord`'s `[director]` section.
    pub fn start_full(
        chroot: &Chroot24,
        directord_bin: &Path,
        layout: Layout,
        user_expire_secs: u32,
        mode: LoginMode,
        director_extra: &str,
    ) -> std::io::Result<Lab24> {
        let mut ips: Vec<Ipv4Addr> = Vec::new();
        while ips.len() < 3 {
            let ip = loopback::free_ip(&PORTS)?;
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        let mut backends = Vec::new();
        for (i, ip) in ips[1..].iter().enumerate() {
            backends.push(Instance24::create(chroot, &format!("be{}", i + 1), *ip)?);
        }
        let proxy = Instance24::create(chroot, "proxy", ips[0])?;
        let own_dir = match layout {
            Layout::InBaseDir => None,
            Layout::OutsideBaseDir => {
                let d = tempfile::Builder::new()
                    .prefix("dcompat24-directord-")
                    .tempdir_in(chroot.root.join("tmp"))?;
                fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755))?;
                Some(d)
            }
        };
        let proxy_conf = match &own_dir {
            None => conf::proxy(&proxy, None, mode),
            Some(d) => {
                let inner = chroot
                    .inner_path(d.path())
                    .ok_or_else(|| err("directord's directory is outside the chroot"))?;
                conf::proxy(&proxy, Some(&inner), mode)
            }
        };
        let mut lab = Lab24 {
            director: None,
            proxy,
            backends,
            chroot: chroot.clone(),
            layout,
            directord_bin: directord_bin.to_path_buf(),
            user_expire_secs,
            director_extra: director_extra.to_string(),
            proxy_conf,
            own_dir,
            work: tempfile::Builder::new()
                .prefix("dcompat24-work-")
                .tempdir()?,
            relay: SmtpRelay::start(ips[0])?,
        };
        if layout == Layout::OutsideBaseDir {
            lab.start_director()?;
        }
        for be in &mut lab.backends {
            let home = be.host_path("home");
            fs::create_dir(&home)?;
            chown(&home, chroot.mail_uid, chroot.mail_gid)?;
            let text = conf::backend(be, chroot, lab.relay.addr());
            be.start(chroot, &text)?;
        }
        lab.start_proxy()?;
        if layout == Layout::InBaseDir {
            lab.start_director()?;
        }
        Ok(lab)
    }

    /// (Re)starts the proxy's master with its config.
    pub fn start_proxy(&mut self) -> std::io::Result<()> {
        let conf = self.proxy_conf.clone();
        self.proxy.start(&self.chroot, &conf)
    }

    /// The proxy's dovecot.conf.
    pub fn proxy_conf(&self) -> &str {
        &self.proxy_conf
    }

    /// The layout this lab runs.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// `directord`'s `base_dir` on the host.
    pub fn director_base(&self) -> PathBuf {
        match &self.own_dir {
            Some(d) => d.path().to_path_buf(),
            None => self.proxy.host_base_dir(),
        }
    }

    /// `director_mail_servers`: the backends' IPs.
    pub fn mail_servers(&self) -> String {
        let ips: Vec<String> = self.backends.iter().map(|b| b.ip().to_string()).collect();
        ips.join(" ")
    }

    /// The TOML `directord` runs with: the matching example of `contrib/dovecot-2.4/` with
    /// this lab's paths, backends and `user_expire`.
    pub fn director_toml(&self) -> std::io::Result<String> {
        let common = [
            (
                "mail_servers = \"10.0.0.1-10.0.0.3\"",
                format!("mail_servers = \"{}\"", self.mail_servers()),
            ),
            (
                "user_expire = \"15 min\"",
                format!(
                    "user_expire = {}\n{}",
                    self.user_expire_secs, self.director_extra
                ),
            ),
        ];
        let proxy_base = self.proxy.host_base_dir().display().to_string();
        let text = match self.layout {
            Layout::InBaseDir => conf::substitute(
                conf::DIRECTORD_IN_BASE_DIR,
                &[(
                    "base_dir = \"/run/dovecot\"",
                    format!("base_dir = \"{proxy_base}\""),
                )],
            ),
            Layout::OutsideBaseDir => conf::substitute(
                conf::DIRECTORD_OUTSIDE_BASE_DIR,
                &[
                    (
                        conf::LAYOUT_B_DIR,
                        self.director_base().display().to_string(),
                    ),
                    (conf::EXAMPLE_DOVECOT_BASE, proxy_base),
                ],
            ),
        };
        text.and_then(|t| conf::substitute(&t, &common))
            .map_err(err)
    }

    /// Starts `directord` (if not running) and waits for its login socket, userdb socket and
    /// proxy-notify FIFO.
    pub fn start_director(&mut self) -> std::io::Result<()> {
        if self.director.is_some() {
            return Ok(());
        }
        let base = self.director_base();
        let wait: Vec<PathBuf> = ["login/director", "director-userdb"]
            .iter()
            .map(|r| base.join(r))
            .collect();
        let toml = self.director_toml()?;
        let d = Directord::start(&self.directord_bin, self.work.path(), &toml, &wait)?;
        self.director = Some(d);
        Ok(())
    }

    /// Stops `directord` (by pid).
    pub fn stop_director(&mut self) {
        if let Some(mut d) = self.director.take() {
            d.stop();
        }
    }

    /// The proxy-notify FIFO's host path.
    pub fn notify_fifo(&self) -> PathBuf {
        self.director_base().join("login/proxy-notify")
    }

    /// `directord`'s admin socket.
    pub fn admin_socket(&self) -> PathBuf {
        self.director_base().join("director-admin")
    }

    /// The backend our director's algorithm picks for a new `user` (default hash `%Lu`,
    /// default tag, all hosts up with 100 vhosts), from the `director` library.
    pub fn expected_backend(&self, user: &str) -> std::io::Result<Ipv4Addr> {
        let specs = parse_mail_servers(&self.mail_servers(), &mut |n| {
            Err(format!("no DNS here: {n}"))
        })
        .map_err(|e| err(e.to_string()))?;
        let dir = Directory::new(specs, self.user_expire_secs);
        let hash = UsernameHash::default().hash(user.as_bytes());
        match dir.choose(&Tag::default(), hash) {
            Some(IpAddr::V4(ip)) => Ok(ip),
            other => Err(err(format!("no IPv4 host chosen for {user}: {other:?}"))),
        }
    }

    /// The backend instance with this name.
    pub fn backend_ip(&self, name: &str) -> Option<Ipv4Addr> {
        self.backends
            .iter()
            .find(|b| b.name() == name)
            .map(|b| b.ip())
    }

    /// The backend instance with this address.
    pub fn backend_name(&self, ip: Ipv4Addr) -> Option<&str> {
        self.backends
            .iter()
            .find(|b| b.ip() == ip)
            .map(|b| b.name())
    }

    /// Gives `user` one message on every backend, so a POP3 `UIDL` through the proxy names
    /// the backend it reached.
    pub fn seed_pop3_mailbox(&self, user: &str) -> std::io::Result<()> {
        for be in &self.backends {
            let home = be.host_path(&format!("home/{user}"));
            let maildir = home.join("Maildir");
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(maildir.join(sub))?;
            }
            let msg = maildir.join(format!("cur/1.dcompat.{}:2,S", be.name()));
            fs::write(
                &msg,
                "From: seed@example.com\r\nSubject: seed\r\n\r\nseed\r\n",
            )?;
            for p in [&home, &maildir, &msg] {
                chown(p, self.chroot.mail_uid, self.chroot.mail_gid)?;
            }
            for sub in ["cur", "new", "tmp"] {
                chown(
                    &maildir.join(sub),
                    self.chroot.mail_uid,
                    self.chroot.mail_gid,
                )?;
            }
        }
        Ok(())
    }

    /// Messages in `user`'s INBOX (`new` + `cur`) on the backend named `name`.
    pub fn maildir_count(&self, name: &str, user: &str) -> usize {
        let Some(be) = self.backends.iter().find(|b| b.name() == name) else {
            return 0;
        };
        ["new", "cur"]
            .iter()
            .map(|sub| {
                fs::read_dir(be.host_path(&format!("home/{user}/Maildir/{sub}")))
                    .map(|d| d.count())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// `USER-LOOKUP` on `directord`'s admin socket: `(current ip, expire time, hashed ip)`
    /// (`admin-protocol.md` §6.8; current is empty when the user has no live entry).
    pub fn user_lookup(&self, user: &str) -> std::io::Result<(String, u64, String)> {
        let mut c = AdminClient::connect(&self.admin_socket(), Duration::from_secs(5))?;
        let line = c.request(format!("USER-LOOKUP\t{user}").as_bytes())?;
        let text = String::from_utf8_lossy(&line).into_owned();
        let f: Vec<&str> = text.split('\t').collect();
        if f.len() != 4 {
            return Err(err(format!("USER-LOOKUP reply {text:?}")));
        }
        let expire = f[1]
            .parse()
            .map_err(|_| err(format!("USER-LOOKUP expire {text:?}")))?;
        Ok((f[0].to_string(), expire, f[2].to_string()))
    }

    /// Every log of the lab, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.director {
            s.push_str(&format!("--- directord ---\n{}", d.log()));
        }
        for inst in std::iter::once(&self.proxy).chain(self.backends.iter()) {
            s.push_str(&format!("--- {} ---\n{}", inst.name(), inst.log()));
        }
        s
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}
