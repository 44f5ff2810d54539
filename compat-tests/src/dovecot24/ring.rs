//! A ring of two of our `directord`s with a real 2.4.1 proxy attached to one of them
//! (issue 7: "the same 2.4 proxy attached to one director of a ring of ours").
//!
//! Director A is the lab's (layout A, in the proxy's `base_dir`); director B runs on the
//! host with a `base_dir` of its own and no Dovecot. Both list each other in `[director]
//! servers` and listen on loopback addresses of their own, on one port.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::chroot::Chroot24;
use super::conf::LoginMode;
use super::directord::Directord;
use super::lab::{Lab24, Layout};
use crate::admin::AdminClient;
use crate::{err, loopback};

/// How long two directors may take to sync (normally well under a second).
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// The lab with a second director in its ring. Dropping it stops B, then the lab.
#[derive(Debug)]
pub struct Ring24 {
    /// Director B, not attached to any Dovecot (`None` once stopped).
    pub peer: Option<Directord>,
    /// The proxy, backends and director A.
    pub lab: Lab24,
    /// Ring addresses of A and B.
    pub ips: [Ipv4Addr; 2],
    /// The ring port both listen on.
    pub port: u16,
    peer_dir: tempfile::TempDir,
}

/// Two loopback addresses on which one port is free on both.
fn ring_addrs() -> std::io::Result<(Ipv4Addr, Ipv4Addr, u16)> {
    for _ in 0..20 {
        let a = loopback::free_ip(&[])?;
        let port = TcpListener::bind((a, 0))?.local_addr()?.port();
        let b = loopback::free_ip(&[port])?;
        if a != b && TcpListener::bind((a, port)).is_ok() {
            return Ok((a, b, port));
        }
    }
    Err(err("no two loopback addresses with a common free port"))
}

impl Ring24 {
    /// Starts the lab (layout A, contrib login mode) with director A in a ring with a new
    /// director B, and waits until both say the ring is synced.
    pub fn start(chroot: &Chroot24, bin: &Path, user_expire_secs: u32) -> std::io::Result<Self> {
        let (a, b, port) = ring_addrs()?;
        let ring = |me: Ipv4Addr| {
            format!("listen = \"{me}:{port}\"\nservers = \"{a}:{port} {b}:{port}\"\n")
        };
        let lab = Lab24::start_full(
            chroot,
            bin,
            Layout::InBaseDir,
            user_expire_secs,
            LoginMode::Performance,
            &ring(a),
        )?;
        let peer_dir = tempfile::Builder::new()
            .prefix("dcompat24-peer-")
            .tempdir()?;
        let base = peer_dir.path().join("run");
        let toml = format!(
            "base_dir = \"{}\"\n[director]\nmail_servers = \"{}\"\nuser_expire = {user_expire_secs}\n{}",
            base.display(),
            lab.mail_servers(),
            ring(b)
        );
        let peer = Directord::start(bin, peer_dir.path(), &toml, &[base.join("director-admin")])?;
        let ring = Ring24 {
            peer: Some(peer),
            lab,
            ips: [a, b],
            port,
            peer_dir,
        };
        ring.wait_synced()?;
        Ok(ring)
    }

    /// Director B's admin socket.
    pub fn peer_admin(&self) -> PathBuf {
        self.peer_dir.path().join("run/director-admin")
    }

    /// One admin request on `socket`, the reply's first line.
    pub fn admin(socket: &Path, cmd: &str) -> std::io::Result<String> {
        let mut c = AdminClient::connect(socket, Duration::from_secs(5))?;
        let reply = c.request(cmd.as_bytes())?;
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    /// Both directors' `DIRECTOR-LIST`.
    pub fn director_lists(&self) -> std::io::Result<Vec<String>> {
        [self.lab.admin_socket(), self.peer_admin()]
            .iter()
            .map(|p| {
                let mut c = AdminClient::connect(p, Duration::from_secs(5))?;
                c.send(b"DIRECTOR-LIST")?;
                let lines = c.read_list()?;
                Ok(lines
                    .iter()
                    .map(|l| format!("{}\n", String::from_utf8_lossy(l)))
                    .collect())
            })
            .collect()
    }

    /// Waits until both directors list both, the ring synced, nobody handshaking or syncing.
    pub fn wait_synced(&self) -> std::io::Result<()> {
        let deadline = Instant::now() + SYNC_TIMEOUT;
        loop {
            let lists = self.director_lists()?;
            let done = lists.iter().all(|l| {
                self.ips.iter().all(|ip| l.contains(&format!("{ip}\t")))
                    && l.contains("\tring synced\t")
                    && !l.contains("handshaking")
                    && !l.contains("syncing")
            });
            if done {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "the ring did not sync: {lists:#?}\n{}",
                    self.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every log, for failure messages.
    pub fn logs(&self) -> String {
        let peer = self.peer.as_ref().map(|d| d.log()).unwrap_or_default();
        format!("{}--- directord B (ring peer) ---\n{peer}", self.lab.logs())
    }
}

impl Drop for Ring24 {
    fn drop(&mut self) {
        if let Some(mut p) = self.peer.take() {
            p.stop();
        }
    }
}
