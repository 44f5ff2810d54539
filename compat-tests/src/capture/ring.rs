//! Ring fixtures: two real directors in a ring, each started with `-t 9091` so that it
//! connects to its peer on port 9091, where a recording relay forwards to the peer's real
//! ring port 9090 (Dovecot's own director-test interposer works the same way).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Scenario, Session};
use crate::admin::AdminClient;
use crate::dovecot::Dovecot;
use crate::err;
use crate::instance::{Instance, InstanceBuilder};
use crate::loopback::free_ip;
use crate::relay::Relay;

const RING_PORT: u16 = 9090;
const TEST_PORT: u16 = 9091;
const MAIL_SERVERS: &str = "10.0.0.1-10.0.0.3";
const TIMEOUT: Duration = Duration::from_secs(40);

fn director(dovecot: &Dovecot, name: &str, me: IpAddr, servers: &str) -> std::io::Result<Instance> {
    InstanceBuilder::new(name)
        .listen(me)
        .setting("director_servers", servers)
        .setting("director_mail_servers", MAIL_SERVERS)
        .conf(
            "passdb {\n  driver = static\n  args = nopassword=y proxy=y\n}\n\
             userdb {\n  driver = static\n  args = uid=nobody gid=nogroup\n}\n",
        )
        .conf(&format!(
            "service director {{\n  executable = director -t {TEST_PORT}\n  \
             unix_listener login/director {{\n    mode = 0666\n  }}\n  \
             fifo_listener login/proxy-notify {{\n    mode = 0666\n  }}\n  \
             unix_listener director-userdb {{\n    mode = 0666\n  }}\n  \
             inet_listener director {{\n    address = {me}\n    port = {RING_PORT}\n  }}\n}}\n"
        ))
        .wait_for("director-admin")
        .wait_for("login/director")
        .start(dovecot)
}

/// Whether `inst`'s director says the ring is synced and has a left and a right connection.
fn synced(inst: &Instance) -> bool {
    let Ok(mut c) = AdminClient::connect(&inst.path("director-admin"), Duration::from_secs(5))
    else {
        return false;
    };
    let Ok(list) = c.request(b"DIRECTOR-LIST").and_then(|first| {
        let mut all = vec![first];
        all.extend(c.read_list()?);
        Ok(all)
    }) else {
        return false;
    };
    let text: Vec<String> = list
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    text.iter()
        .any(|l| l.contains("\tself\t") && l.contains("ring synced"))
        && text.iter().any(|l| l.contains("\tleft\t"))
        && text.iter().any(|l| l.contains("\tright\t"))
}

fn wait_synced(a: &Instance, b: &Instance) -> std::io::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while !(synced(a) && synced(b)) {
        if Instant::now() > deadline {
            return Err(err(format!("ring never synced:\n{}\n{}", a.log(), b.log())));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A login process's view: one AUTH on `login/director`; returns the director's reply line.
fn login_request(inst: &Instance, user: &str) -> std::io::Result<String> {
    let mut c = UnixStream::connect(inst.path("login/director"))?;
    c.set_read_timeout(Some(TIMEOUT))?;
    let resp = base64(format!("\0{user}\0pass").as_bytes());
    let ip = inst.listen_ip();
    c.write_all(format!("VERSION\t1\t2\nCPID\t{}\n", std::process::id()).as_bytes())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Handshake reply ends with DONE; then one reply to our AUTH.
    let mut sent = false;
    loop {
        let n = c.read(&mut buf)?;
        if n == 0 {
            return Err(err("director closed login connection"));
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if !sent && text.contains("DONE\n") {
            c.write_all(
                format!("AUTH\t1\tPLAIN\tservice=imap\tlip={ip}\trip=127.0.0.1\tlport=143\trport=40000\tresp={resp}\n")
                    .as_bytes(),
            )?;
            sent = true;
        }
        if let Some(line) = text
            .lines()
            .find(|l| l.starts_with("OK\t1\t") || l.starts_with("FAIL\t1\t"))
        {
            return Ok(line.to_string());
        }
    }
}

/// Runs every ring scenario; files go to `<out>/ring/`.
pub fn capture(dovecot: &Dovecot, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let ip1 = IpAddr::V4(free_ip(&[RING_PORT, TEST_PORT])?);
    let ip2 = loop {
        let ip = IpAddr::V4(free_ip(&[RING_PORT, TEST_PORT])?);
        if ip != ip1 {
            break ip;
        }
    };
    let servers = format!("{ip1}:{RING_PORT} {ip2}:{RING_PORT}");
    let setup = format!(
        "two real directors in a ring: dir1 = $DIR1, dir2 = $DIR2 (ring port {RING_PORT}), \
         director_mail_servers = {MAIL_SERVERS}; both run `director -t {TEST_PORT}` and reach \
         each other through recording relays on port {TEST_PORT}"
    );
    let mut s = Session::new(dovecot, out, "ring", &setup)?;
    let names = vec![(ip1, "dir1".to_string()), (ip2, "dir2".to_string())];
    let _relays = [
        Relay::tcp_ring(
            SocketAddr::new(ip1, TEST_PORT),
            SocketAddr::new(ip1, RING_PORT),
            &s.rec,
            names.clone(),
        )?,
        Relay::tcp_ring(
            SocketAddr::new(ip2, TEST_PORT),
            SocketAddr::new(ip2, RING_PORT),
            &s.rec,
            names,
        )?,
    ];
    let sc = s.begin(
        "ring-handshake",
        "both directors start (dir1 first, dir2 on dir1's connection); both handshakes, then SYNC",
    );
    let d1 = director(dovecot, "dir1", ip1, &servers)?;
    let mut d2 = director(dovecot, "dir2", ip2, &servers)?;
    s.hide(d1.root(), "$ROOT1");
    s.hide(d2.root(), "$ROOT2");
    wait_synced(&d1, &d2)?;
    std::thread::sleep(Duration::from_millis(1500));
    s.end(sc)?;
    let run = Run { d1: &d1, ip1, ip2 };
    let result = run.scenarios(&mut s, &mut d2);
    if let Err(e) = &result {
        eprintln!(
            "ring capture failed: {e}\n--- dir1 log ---\n{}\n--- dir2 log ---\n{}",
            d1.log(),
            d2.log()
        );
    }
    result?;
    Ok(std::mem::take(&mut s.written))
}

struct Run<'a> {
    d1: &'a Instance,
    ip1: IpAddr,
    ip2: IpAddr,
}

impl Run<'_> {
    fn show(&self, t: &str) -> String {
        t.replace(&self.ip1.to_string(), "$DIR1")
            .replace(&self.ip2.to_string(), "$DIR2")
    }

    /// `doveadm director <args>` against dir1.
    fn doveadm(&self, s: &Session, sc: &mut Scenario, args: &[&str]) -> std::io::Result<()> {
        let mut cmd = self.d1.doveadm();
        cmd.arg("director").args(args);
        s.run(
            sc,
            &self.show(&format!("doveadm director {} (on dir1)", args.join(" "))),
            &mut cmd,
        )?;
        Ok(())
    }

    fn one(
        &self,
        s: &mut Session,
        name: &str,
        desc: &str,
        cmds: &[&[&str]],
        settle: Duration,
    ) -> std::io::Result<()> {
        let mut sc = s.begin(name, desc);
        for args in cmds {
            self.doveadm(s, &mut sc, args)?;
        }
        std::thread::sleep(settle);
        s.end(sc)?;
        Ok(())
    }

    fn scenarios(&self, s: &mut Session, d2: &mut Instance) -> std::io::Result<()> {
        let short = Duration::from_millis(500);
        let mut sc = s.begin("ring-user-login", "a login request for a new user (ring01) on dir1's login/director: dir1 assigns a host and sends USER to the ring");
        let reply = login_request(self.d1, "ring01")?;
        s.note(
            &mut sc,
            &self.show(&format!("director reply: {}", reply.replace('\t', "\\t"))),
        );
        std::thread::sleep(short);
        s.end(sc)?;

        let sc = s.begin(
            "ring-user-login-known",
            "the same user logs in again: USER with a new timestamp",
        );
        login_request(self.d1, "ring01")?;
        login_request(self.d1, "ring02")?;
        std::thread::sleep(short);
        s.end(sc)?;

        let mut sc = s.begin("ring-proxy-notify", "a login process writes ring01 into dir1's login/proxy-notify FIFO: USER refresh to the ring");
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.d1.path("login/proxy-notify"))?
            .write_all(b"ring01\n")?;
        s.note(&mut sc, "wrote \"ring01\\n\" into login/proxy-notify");
        std::thread::sleep(Duration::from_millis(1500));
        s.end(sc)?;

        self.one(
            s,
            "ring-host-add",
            "add a host on dir1: HOST to the ring, then SYNC",
            &[&["add", "10.0.0.4", "50"]],
            short,
        )?;
        self.one(
            s,
            "ring-host-add-tag",
            "add a tagged host",
            &[&["add", "-t", "tagA", "10.0.1.5"]],
            short,
        )?;
        self.one(
            s,
            "ring-host-update",
            "update a host's vhost count",
            &[&["update", "10.0.0.4", "10"]],
            short,
        )?;
        self.one(
            s,
            "ring-host-down",
            "host down",
            &[&["down", "10.0.0.4"]],
            short,
        )?;
        self.one(s, "ring-host-up", "host up", &[&["up", "10.0.0.4"]], short)?;
        self.one(
            s,
            "ring-user-move",
            "move a user: USER-MOVE, then USER-KILLED / USER-KILLED-EVERYWHERE",
            &[&["move", "ring01", "10.0.0.4"]],
            Duration::from_secs(3),
        )?;
        self.one(
            s,
            "ring-user-kick",
            "kick a user: USER-KICK",
            &[&["kick", "ring01"]],
            short,
        )?;
        self.one(
            s,
            "ring-user-kick-alt",
            "kick by passdb field: USER-KICK-ALT",
            &[&["kick", "-f", "director_tag", "foo"]],
            short,
        )?;
        self.one(
            s,
            "ring-host-reset-users",
            "flush <host> (gracefully re-home its users)",
            &[&["flush", "10.0.0.4"]],
            Duration::from_secs(3),
        )?;
        self.one(
            s,
            "ring-host-flush",
            "flush -F <host>: HOST-FLUSH to the ring",
            &[&["flush", "-F", "10.0.0.1"]],
            short,
        )?;
        self.one(
            s,
            "ring-host-flush-all",
            "flush -F all",
            &[&["flush", "-F", "all"]],
            short,
        )?;
        self.one(
            s,
            "ring-host-remove",
            "remove hosts: HOST-REMOVE to the ring",
            &[&["remove", "10.0.0.4"], &["remove", "10.0.1.5"]],
            short,
        )?;
        login_request(self.d1, "ring03")?;
        self.one(
            s,
            "ring-director-add",
            "ring add <ip> <port> of a director that does not run: DIRECTOR to the ring",
            &[&["ring", "add", "127.0.0.99", "9090"]],
            Duration::from_secs(1),
        )?;
        self.one(
            s,
            "ring-director-remove",
            "ring remove <ip> <port>: DIRECTOR-REMOVE",
            &[&["ring", "remove", "127.0.0.99", "9090"]],
            Duration::from_secs(1),
        )?;

        let sc = s.begin(
            "ring-director-leaves",
            "dir2's Dovecot is stopped (SIGTERM to its master): QUIT",
        );
        d2.stop();
        std::thread::sleep(Duration::from_secs(2));
        s.end(sc)?;

        let sc = s.begin(
            "ring-director-rejoins",
            "dir2 starts again and gets the full state (hosts, users) from dir1",
        );
        d2.start_again()?;
        wait_synced(self.d1, d2)?;
        std::thread::sleep(Duration::from_millis(1500));
        s.end(sc)?;
        Ok(())
    }
}
