//! A director ring lab on loopback: real Dovecot 2.3 directors and our `directord`s in one
//! TCP ring, each member on its own 127.x address and the same ring port, all with the same
//! `director_servers`; every member also runs a real Dovecot `imap-login director` proxy
//! in front of the same real backends, so logins go through real login processes attached
//! to different directors.
//!
//! # Layout
//! - [`member`]: one member (real or ours): start, real `doveadm` against it, crash, restart.
//! - [`state`]: what `doveadm director ring status` / `status` / `map` say on each member,
//!   and whether they all agree (with a diff when not).
//! - [`load`]: a bounded IMAP login load through the members' proxies.
//! - [`checks`]: logins, user status and host changes agree on every member.
//! - [`faults`]: a member crashes under login load, comes back, and the ring heals.
//!
//! Nothing here stops a process it did not start; crashes are SIGKILLs by pid (group).

pub mod checks;
pub mod faults;
pub mod load;
pub mod member;
pub mod state;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use member::{Kind, Member, MemberSpec};
pub use state::{Converged, Strictness};

use crate::dovecot::Dovecot;
use crate::login_lab::proxy::mail_servers;
use crate::login_lab::{start_backends, Backend, IMAP_PORT};
use crate::{err, loopback};

/// The ring port of every member (each on its own address).
pub const RING_PORT: u16 = 9090;
/// `director_user_expire` on every member: longer than any test, so nothing expires.
pub const USER_EXPIRE_SECS: u64 = 300;
/// Real backends behind every proxy.
const BACKENDS: usize = 2;

/// The lab: backends, the planned members in ring order, the started ones.
#[derive(Debug)]
pub struct RingLab {
    dovecot: Dovecot,
    // Field order matters: members (and our daemons) stop before the backends.
    members: Vec<Option<Member>>,
    kinds: Vec<Kind>,
    ips: Vec<Ipv4Addr>,
    /// The backends (`be1`, `be2`).
    pub backends: Vec<Backend>,
    users_file: tempfile::NamedTempFile,
    /// The users the lab logs in (also the users file of `doveadm director map -f`).
    pub users: Vec<String>,
    /// `director_user_expire` of members started from now on.
    pub user_expire_secs: u64,
}

impl RingLab {
    /// Plans a ring with one member per entry of `kinds`, in ring order (their addresses
    /// are sorted, so member 0 has the lowest), and starts the backends. No member runs yet.
    pub fn new(dovecot: &Dovecot, kinds: &[Kind], users: usize) -> std::io::Result<RingLab> {
        let mut ips: Vec<Ipv4Addr> = Vec::new();
        while ips.len() < kinds.len() {
            let ip = loopback::free_ip(&[IMAP_PORT, RING_PORT])?;
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        ips.sort();
        let users: Vec<String> = (1..=users).map(|i| format!("ringuser{i:02}")).collect();
        let mut users_file = tempfile::Builder::new()
            .prefix("dcompat-ring-users-")
            .tempfile()?;
        for u in &users {
            writeln!(users_file, "{u}")?;
        }
        users_file.flush()?;
        Ok(RingLab {
            dovecot: dovecot.clone(),
            backends: start_backends(dovecot, BACKENDS)?,
            members: kinds.iter().map(|_| None).collect(),
            kinds: kinds.to_vec(),
            ips,
            users_file,
            users,
            user_expire_secs: USER_EXPIRE_SECS,
        })
    }

    /// `director_servers`: every planned member, `ip:port`.
    pub fn servers(&self) -> String {
        self.ring()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Every planned member's ring address, in ring order.
    pub fn ring(&self) -> Vec<SocketAddr> {
        self.ips
            .iter()
            .map(|ip| SocketAddr::new(IpAddr::V4(*ip), RING_PORT))
            .collect()
    }

    /// Starts planned member `i`.
    pub fn start(&mut self, i: usize) -> std::io::Result<()> {
        let kind = self.kinds[i];
        let spec = MemberSpec {
            name: format!("{}{i}", kind.label()),
            kind,
            ip: self.ips[i],
            servers: self.servers(),
            mail_servers: mail_servers(&self.backends),
            user_expire_secs: self.user_expire_secs,
        };
        self.members[i] = Some(Member::start(&self.dovecot, spec)?);
        Ok(())
    }

    /// Starts every planned member that is not running, in ring order.
    pub fn start_all(&mut self) -> std::io::Result<()> {
        for i in 0..self.members.len() {
            if self.members[i].is_none() {
                self.start(i)?;
            }
        }
        Ok(())
    }

    /// Started member `i`.
    pub fn member(&self, i: usize) -> std::io::Result<&Member> {
        self.members
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| err(format!("member {i} was not started")))
    }

    /// Started member `i`, mutable (crash, restart).
    pub fn member_mut(&mut self, i: usize) -> std::io::Result<&mut Member> {
        self.members
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or_else(|| err(format!("member {i} was not started")))
    }

    /// The started members among `idx`.
    pub fn pick(&self, idx: &[usize]) -> Vec<&Member> {
        idx.iter()
            .filter_map(|&i| self.members.get(i).and_then(Option::as_ref))
            .collect()
    }

    /// Every started member.
    pub fn started(&self) -> Vec<&Member> {
        self.members.iter().flatten().collect()
    }

    /// The IMAP addresses of members `idx` (where load is sent).
    pub fn proxies(&self, idx: &[usize]) -> Vec<IpAddr> {
        self.pick(idx).iter().map(|m| m.ip()).collect()
    }

    /// Waits until members `idx` are synced and agree on hosts and users (see
    /// [`state::converged`]); every planned member must be listed in their ring status.
    pub fn wait_converged(
        &self,
        idx: &[usize],
        within: Duration,
    ) -> Result<(Converged, Duration), String> {
        self.wait_agree(idx, Strictness::Exact, within)
    }

    /// [`RingLab::wait_converged`] with a choice of what must agree.
    pub fn wait_agree(
        &self,
        idx: &[usize],
        strict: Strictness<'_>,
        within: Duration,
    ) -> Result<(Converged, Duration), String> {
        state::wait_converged(
            &self.pick(idx),
            &self.ring(),
            self.users_file.path(),
            strict,
            within,
        )
    }

    /// Adds users to [`RingLab::users`] and to the users file (users that logged in later).
    pub fn add_users(&mut self, users: &[String]) -> std::io::Result<()> {
        for u in users {
            if !self.users.contains(u) {
                writeln!(self.users_file, "{u}")?;
                self.users.push(u.clone());
            }
        }
        self.users_file.flush()
    }

    /// The address of backend `i` (as the directors list it).
    pub fn backend_ip(&self, i: usize) -> IpAddr {
        self.backends[i].ip()
    }

    /// Every member of `idx`'s user map as `doveadm director map -f <users file>` prints it,
    /// labelled by member.
    pub fn map_tables(&self, idx: &[usize]) -> Result<Vec<(String, state::Table)>, String> {
        let file = self.users_file.path().display().to_string();
        self.pick(idx)
            .into_iter()
            .map(|m| Ok((m.label(), state::doveadm_table(m, &["map", "-f", &file])?)))
            .collect()
    }

    /// Every member of `idx`'s user map (`doveadm director map -f <users file>`) as
    /// user -> host, labelled by member.
    pub fn user_maps(&self, idx: &[usize]) -> Result<Vec<(String, UserMap)>, String> {
        let mut out = Vec::new();
        for (label, t) in self.map_tables(idx)? {
            let (Some(u), Some(h)) = (t.col("user"), t.col("mail server ip")) else {
                return Err(format!("{label}: map header {:?}", t.header));
            };
            let map = t
                .rows
                .iter()
                .filter_map(|r| Some((r.get(u)?.clone(), self.backend_name(r.get(h)?))))
                .collect();
            out.push((label, map));
        }
        Ok(out)
    }

    /// Which kind member `i` is.
    pub fn kind(&self, i: usize) -> Kind {
        self.kinds[i]
    }

    /// `be<n>` of a backend address, for reports.
    pub fn backend_name(&self, ip: &str) -> String {
        self.backends
            .iter()
            .find(|b| b.ip().to_string() == ip)
            .map_or_else(|| ip.to_string(), |b| b.name.clone())
    }
}

/// One member's users: login name -> backend name (`be1`, ...).
pub type UserMap = BTreeMap<String, String>;

/// Prints one line of measured numbers (`RING-NUMBERS <test>: ...`) to stderr directly,
/// so it shows even when libtest captures output.
pub fn report(test: &str, line: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("RING-NUMBERS {test}: {line}\n").as_bytes());
}
