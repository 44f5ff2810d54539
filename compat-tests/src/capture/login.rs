//! Auth-side fixtures: a real director with real `imap-login`/`pop3-login` proxies, LMTP
//! proxy, auth and a real backend. Relays sit on the director's sockets (the lab's legs:
//! `login/director`, `auth-login`, `director-userdb`, `auth-userdb`, `ipc`,
//! `login/proxy-notify`, plus `director-admin` for the doveadm commands that cause kicks).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Scenario, Session};
use crate::dovecot::Dovecot;
use crate::instance::{Instance, InstanceBuilder};
use crate::loopback::free_ip;
use crate::mailclient::{imap_login, imap_logout, lmtp_deliver, pop3_session};
use crate::relay::{Access, Leg, Relay};
use crate::{err, tcp_listening};

const TIMEOUT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "pass";
/// The lowest allowed value: logins then refresh through proxy-notify every 5 s.
const USER_EXPIRE: &str = "10s";

/// Listeners of both instances: IMAP 143, POP3 110, LMTP 24 on the instance's own address.
fn listeners(director: bool) -> String {
    let exe = |p: &str| {
        if director {
            format!("  executable = {p}-login director\n")
        } else {
            String::new()
        }
    };
    format!(
        "service imap-login {{\n{}  inet_listener imap {{\n    port = 143\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
         service pop3-login {{\n{}  inet_listener pop3 {{\n    port = 110\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
         service lmtp {{\n  inet_listener lmtp {{\n    port = 24\n  }}\n}}\n",
        exe("imap"),
        exe("pop3"),
    )
}

fn start_backend(dovecot: &Dovecot, homes: &Path) -> std::io::Result<Instance> {
    let ip = free_ip(&[143, 110, 24])?;
    let inst = InstanceBuilder::new("backend")
        .listen(IpAddr::V4(ip))
        .protocols("imap pop3 lmtp")
        .setting("auth_mechanisms", "plain login")
        .setting("login_trusted_networks", "127.0.0.0/8")
        .setting("mail_location", "maildir:~/Maildir")
        .conf(&format!(
            "passdb {{\n  driver = static\n  args = password={PASSWORD}\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={}/%u\n}}\n",
            homes.display()
        ))
        .conf(&listeners(false))
        .start(dovecot)?;
    wait_listening(&inst, &[143, 110, 24])?;
    Ok(inst)
}

fn start_director(dovecot: &Dovecot, backend: IpAddr) -> std::io::Result<Instance> {
    let ip = free_ip(&[143, 110, 24])?;
    let inst = InstanceBuilder::director("auth-capture", &backend.to_string())
        .listen(IpAddr::V4(ip))
        .protocols("imap pop3 lmtp")
        .setting("auth_mechanisms", "plain login")
        .setting("login_trusted_networks", "127.0.0.0/8")
        .setting("director_user_expire", USER_EXPIRE)
        .setting("lmtp_proxy", "yes")
        .conf(&format!(
            "passdb {{\n  driver = static\n  args = password={PASSWORD} proxy=y\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup\n}}\n\
             protocol lmtp {{\n  auth_socket_path = director-userdb\n}}\n"
        ))
        .conf(&listeners(true))
        .wait_for("auth-login")
        .wait_for("auth-userdb")
        .wait_for("ipc")
        .wait_for("login/proxy-notify")
        .start(dovecot)?;
    wait_listening(&inst, &[143, 110, 24])?;
    Ok(inst)
}

fn wait_listening(inst: &Instance, ports: &[u16]) -> std::io::Result<()> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    // Checked in /proc, not by connecting: a login process started now would keep an auth
    // connection that bypasses the relays put in place afterwards.
    while !ports.iter().all(|&p| tcp_listening(inst.listen_ip(), p)) {
        if std::time::Instant::now() > deadline {
            return Err(err(format!(
                "{} never listened on {ports:?}:\n{}",
                inst.listen_ip(),
                inst.log()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The uid and gid of a system user (the relays' sockets must be reachable by it).
fn user_ids(name: &str) -> std::io::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == name)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .ok_or_else(|| err(format!("no system user {name}")))
}

fn relays(inst: &Instance, s: &Session) -> std::io::Result<Vec<Relay>> {
    let (uid, _) = user_ids("dovecot")?;
    let private = Access {
        mode: 0o600,
        owner: Some((uid, 0)),
    };
    let open_dovecot = Access {
        mode: 0o666,
        owner: Some((uid, 0)),
    };
    let rec = &s.rec;
    Ok(vec![
        Relay::unix_in_front(
            &inst.path("login/director"),
            rec,
            Leg::new("login/director", "login", "director"),
            Access::OPEN,
        )?,
        Relay::unix_in_front(
            &inst.path("auth-login"),
            rec,
            Leg::new("auth-login", "director", "auth"),
            private,
        )?,
        Relay::unix_in_front(
            &inst.path("director-userdb"),
            rec,
            Leg::new("director-userdb", "lmtp", "director"),
            Access::OPEN,
        )?,
        Relay::unix_in_front(
            &inst.path("auth-userdb"),
            rec,
            Leg::new("auth-userdb", "client", "auth"),
            open_dovecot,
        )?,
        Relay::unix_in_front(
            &inst.path("ipc"),
            rec,
            Leg::new("ipc", "director", "ipc"),
            private,
        )?,
        Relay::fifo_in_front(
            &inst.path("login/proxy-notify"),
            rec,
            Leg::new("login/proxy-notify", "login", "director"),
            Access::OPEN,
        )?,
        Relay::unix_in_front(
            &inst.path("director-admin"),
            rec,
            Leg::new("director-admin", "doveadm", "director"),
            Access {
                mode: 0o600,
                owner: None,
            },
        )?,
    ])
}

/// Runs every auth-side scenario; files go to `<out>/auth/`.
pub fn capture(dovecot: &Dovecot, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let homes = tempfile::Builder::new()
        .prefix("dcompat-homes-")
        .tempdir()?;
    let (nobody, nogroup) = user_ids("nobody")?;
    std::fs::set_permissions(
        homes.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    std::os::unix::fs::chown(homes.path(), Some(nobody), Some(nogroup))?;
    let backend = start_backend(dovecot, homes.path())?;
    let director = start_director(dovecot, backend.listen_ip())?;
    let setup = format!(
        "real director + imap-login/pop3-login proxies + LMTP proxy + auth (static passdb password={PASSWORD} proxy=y) \
         at $DIRECTOR, director_mail_servers = $BACKEND (a real Dovecot backend), director_user_expire = {USER_EXPIRE}; \
         relays sit on the director's sockets"
    );
    let mut s = Session::new(dovecot, out, "auth", &setup)?;
    s.hide(director.root(), "$ROOT");
    let _relays = relays(&director, &s)?;
    let d = director.listen_ip();
    let run = Run {
        d,
        backend: backend.listen_ip(),
        director: &director,
    };
    let result = run.scenarios(&mut s);
    if let Err(e) = &result {
        eprintln!(
            "auth capture failed: {e}\n--- director log ---\n{}",
            director.log()
        );
    }
    result?;
    Ok(std::mem::take(&mut s.written))
}

struct Run<'a> {
    d: IpAddr,
    backend: IpAddr,
    director: &'a Instance,
}

impl Run<'_> {
    fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.d, port)
    }

    fn show(&self, text: &str) -> String {
        text.replace(&self.d.to_string(), "$DIRECTOR")
            .replace(&self.backend.to_string(), "$BACKEND")
    }

    fn doveadm(&self, s: &Session, sc: &mut Scenario, args: &[&str]) -> std::io::Result<()> {
        let mut cmd = self.director.doveadm();
        cmd.arg("director").args(args);
        s.run(
            sc,
            &format!("doveadm director {}", args.join(" ")),
            &mut cmd,
        )?;
        Ok(())
    }

    fn imap(
        &self,
        s: &Session,
        sc: &mut Scenario,
        user: &str,
        pass: &str,
        source: Option<IpAddr>,
    ) -> std::io::Result<crate::mailclient::LineClient> {
        let (c, reply) = imap_login(self.addr(143), source, user, pass, TIMEOUT)?;
        s.note(
            sc,
            &format!("IMAP a LOGIN {user} {pass} -> {}", self.show(&reply)),
        );
        Ok(c)
    }

    fn scenarios(&self, s: &mut Session) -> std::io::Result<()> {
        let mut sc = s.begin("auth-imap-login-success", "IMAP LOGIN of a new user (cap01): imap-login <-> login/director <-> director <-> auth-login <-> auth; the director adds host= and proxy_refresh=");
        imap_logout(self.imap(s, &mut sc, "cap01", PASSWORD, None)?);
        s.end(sc)?;

        let mut sc = s.begin(
            "auth-imap-login-success-known-user",
            "the same user (cap01) logs in again: already assigned",
        );
        imap_logout(self.imap(s, &mut sc, "cap01", PASSWORD, None)?);
        s.end(sc)?;

        let mut sc = s.begin("auth-imap-login-failure", "IMAP LOGIN with a wrong password (from another source address, so its auth penalty does not delay later logins): FAIL passes through unchanged");
        let other = match self.d {
            IpAddr::V4(v4) => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) ^ 0x80)),
            v6 => v6,
        };
        imap_logout(self.imap(s, &mut sc, "cap02", "wrong", Some(other))?);
        s.end(sc)?;

        let mut sc = s.begin(
            "auth-pop3-login-success",
            "POP3 USER/PASS of a new user (cap03)",
        );
        let reply = pop3_session(self.addr(110), None, "cap03", PASSWORD, TIMEOUT)?;
        s.note(&mut sc, &format!("POP3 PASS -> {reply}"));
        s.end(sc)?;

        let mut sc = s.begin("lmtp-delivery", "LMTP delivery through the director's LMTP proxy to a known user (cap01) and a new one (cap04): lmtp <-> director-userdb <-> director <-> auth-userdb <-> auth");
        let replies = lmtp_deliver(self.addr(24), &["cap01", "cap04"], TIMEOUT)?;
        s.note(
            &mut sc,
            &format!("LMTP replies: {}", self.show(&replies.join(" | "))),
        );
        s.end(sc)?;

        let mut sc = s.begin(
            "doveadm-kick-live",
            "doveadm director kick <user> while cap01 has an IMAP session: ipc KICK",
        );
        let held = self.imap(s, &mut sc, "cap01", PASSWORD, None)?;
        self.doveadm(s, &mut sc, &["kick", "cap01"])?;
        imap_logout(held);
        s.end(sc)?;

        let mut sc = s.begin(
            "doveadm-kick-alt-live",
            "doveadm director kick -f <field> <value> (USER-KICK-ALT): ipc KICK-ALT",
        );
        self.doveadm(s, &mut sc, &["kick", "-f", "director_tag", "foo"])?;
        s.end(sc)?;

        let mut sc = s.begin("proxy-notify", "an IMAP session of cap05 held for 6 s: imap-login writes the user to login/proxy-notify every proxy_refresh (5 s)");
        let held = self.imap(s, &mut sc, "cap05", PASSWORD, None)?;
        std::thread::sleep(Duration::from_secs(6));
        imap_logout(held);
        s.end(sc)?;

        let mut sc = s.begin("doveadm-map-userdb-list", "doveadm director map without a users file: doveadm asks auth-userdb to LIST users (the static userdb cannot)");
        self.doveadm(s, &mut sc, &["map"])?;
        s.end(sc)?;

        let mut sc = s.begin("doveadm-move-live", "doveadm director move <user> <host> while cap01 has an IMAP session: ipc KICK-DIRECTOR-HASH");
        let held = self.imap(s, &mut sc, "cap01", PASSWORD, None)?;
        // A second host where nothing listens, added only now so that earlier logins all
        // reach the real backend; moving there makes the director kick the live session.
        let dead = free_ip(&[143])?.to_string();
        self.doveadm(s, &mut sc, &["add", &dead])?;
        self.doveadm(s, &mut sc, &["move", "cap01", &dead])?;
        imap_logout(held);
        std::thread::sleep(Duration::from_millis(2500));
        s.end(sc)?;
        Ok(())
    }
}
