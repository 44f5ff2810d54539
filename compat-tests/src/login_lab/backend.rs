//! A lab backend: a private Dovecot with IMAP, POP3 and LMTP that names itself to clients.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{mail_user, IMAP_PORT, PASSWORD, PORTS};
use crate::dovecot::Dovecot;
use crate::{err, loopback, Instance, InstanceBuilder};

/// How long a fresh instance may take to accept on its ports.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A running backend.
#[derive(Debug)]
pub struct Backend {
    /// `be1`, `be2`, ...: what its IMAP `ID` and POP3 `UIDL`s say.
    pub name: String,
    /// The Dovecot instance (stopped on drop).
    pub instance: Instance,
    homes: tempfile::TempDir,
}

impl Backend {
    /// Starts backend `name` on a free loopback address.
    pub fn start(dovecot: &Dovecot, name: &str) -> std::io::Result<Backend> {
        let (uid, gid) = mail_user::ensure_mail_user()?;
        let homes = tempfile::Builder::new()
            .prefix(&format!("dcompat-{name}-homes-"))
            .tempdir()?;
        fs::set_permissions(homes.path(), fs::Permissions::from_mode(0o755))?;
        std::os::unix::fs::chown(homes.path(), Some(uid), Some(gid))?;
        let ip = loopback::free_ip(&PORTS)?;
        let conf = format!(
            "mail_location = maildir:~/Maildir\n\
             imap_id_send = name * x-lab-backend {name}\n\
             pop3_uidl_format = {name}-%08Xv%08Xu\n\
             passdb {{\n  driver = static\n  args = password={PASSWORD}\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={homes}/%u\n}}\n",
            homes = homes.path().display(),
        );
        let instance = InstanceBuilder::new(name)
            .listen(IpAddr::V4(ip))
            .protocols("imap pop3 lmtp")
            .setting("first_valid_uid", &uid.to_string())
            .conf(&service_conf())
            .conf(&conf)
            .start(dovecot)?;
        wait_listening(ip, &instance)?;
        Ok(Backend {
            name: name.to_string(),
            instance,
            homes,
        })
    }

    /// The backend's address (what the director hands out as `host=`).
    pub fn ip(&self) -> IpAddr {
        self.instance.listen_ip()
    }

    /// `<homes>/<user>/Maildir`; Dovecot lowercases login names (`auth_username_format`).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.homes.path().join(user.to_lowercase()).join("Maildir")
    }

    /// Number of messages in `user`'s INBOX here (`new/` plus `cur/`).
    pub fn message_count(&self, user: &str) -> usize {
        let dir = self.maildir(user);
        ["new", "cur"]
            .iter()
            .map(|sub| count_files(&dir.join(sub)))
            .sum()
    }
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|rd| rd.flatten().filter(|e| e.path().is_file()).count())
        .unwrap_or(0)
}

/// Settings shared by backends and proxies: plaintext logins, trusted loopback, the ports.
pub(crate) fn service_conf() -> String {
    format!(
        "auth_mechanisms = plain login\n\
         auth_verbose = yes\n\
         verbose_proctitle = yes\n\
         login_trusted_networks = 127.0.0.0/8\n\
         shutdown_clients = yes\n\
         service imap-login {{\n  inet_listener imap {{\n    port = {IMAP_PORT}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
         service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
         service lmtp {{\n  inet_listener lmtp {{\n    port = {lmtp}\n  }}\n}}\n",
        pop3 = super::POP3_PORT,
        lmtp = super::LMTP_PORT,
    )
}

/// Waits (bounded) until `ip` accepts on every lab port.
pub(crate) fn wait_listening(ip: Ipv4Addr, inst: &Instance) -> std::io::Result<()> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    for port in PORTS {
        let addr = SocketAddr::new(IpAddr::V4(ip), port);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(err(format!("{addr} never accepted; log:\n{}", inst.log())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Starts `be1` .. `be<n>`.
pub fn start_backends(dovecot: &Dovecot, n: usize) -> std::io::Result<Vec<Backend>> {
    (1..=n)
        .map(|i| Backend::start(dovecot, &format!("be{i}")))
        .collect()
}
