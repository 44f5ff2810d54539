//! The ipc kicker against the REAL Dovecot 2.3 ipc service and imap-login proxy.
//!
//! Ignored by default: it needs root and `/usr/sbin/dovecot` (2.3.19.1 here). Run with
//! `cargo test --test kick_real_ipc -- --ignored`. It starts a private Dovecot master (own
//! base_dir in a temp dir, imap-login on 127.0.0.9 proxying to a fake IMAP backend on
//! 127.0.0.10), logs users in through the real proxy, kicks them through the real
//! `<base_dir>/ipc` and checks the replies and that the client connections close. The
//! master is stopped by its pid.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use director::kick::{spawn_ipc, KickCommand};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(10);

/// Answers every tagged command with OK, and an AUTHENTICATE continuation with OK too.
async fn fake_backend(listener: TcpListener) {
    while let Ok((s, _)) = listener.accept().await {
        tokio::spawn(async move {
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            let _ = w.write_all(b"* OK [CAPABILITY IMAP4rev1] fake\r\n").await;
            let mut tag = String::new();
            let mut line = String::new();
            while r.read_line(&mut line).await.unwrap_or(0) > 0 {
                let mut words = line.split_whitespace();
                let first = words.next().unwrap_or("").to_string();
                let cmd = words.next().unwrap_or("").to_ascii_uppercase();
                if cmd == "AUTHENTICATE" && words.nth(1).is_none() {
                    tag = first;
                    let _ = w.write_all(b"+ \r\n").await;
                } else if !tag.is_empty() {
                    let _ = w.write_all(format!("{tag} OK done\r\n").as_bytes()).await;
                    tag.clear();
                } else {
                    let _ = w.write_all(format!("{first} OK done\r\n").as_bytes()).await;
                }
                line.clear();
            }
        });
    }
}

async fn login(addr: SocketAddr, user: &str) -> BufReader<TcpStream> {
    let mut c = BufReader::new(timeout(T, TcpStream::connect(addr)).await.unwrap().unwrap());
    let mut line = String::new();
    timeout(T, c.read_line(&mut line)).await.unwrap().unwrap();
    assert!(line.starts_with("* OK"), "{line}");
    c.get_mut()
        .write_all(format!("a LOGIN {user} secret\r\n").as_bytes())
        .await
        .unwrap();
    loop {
        line.clear();
        timeout(T, c.read_line(&mut line)).await.unwrap().unwrap();
        if line.starts_with("a ") {
            assert!(line.starts_with("a OK"), "{line}");
            return c;
        }
    }
}

/// The session must end: EOF (or a BYE and then EOF) soon.
async fn closed(mut c: BufReader<TcpStream>) {
    let mut rest = Vec::new();
    timeout(T, c.read_to_end(&mut rest)).await.unwrap().unwrap();
}

async fn still_open(c: &mut BufReader<TcpStream>) {
    c.get_mut().write_all(b"n NOOP\r\n").await.unwrap();
    let mut line = String::new();
    timeout(T, c.read_line(&mut line)).await.unwrap().unwrap();
    assert_eq!(line, "n OK done\r\n");
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Master(u32);

impl Drop for Master {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of the master we started, by its pid.
        unsafe { libc::kill(self.0 as i32, libc::SIGTERM) };
    }
}

fn start_dovecot(dir: &Path, imap_port: u16, backend_port: u16) -> Master {
    let base = dir.join("run");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let conf = format!(
        "base_dir = {base}\nstate_dir = {dir}/state\nlog_path = {dir}/dovecot.log\n\
         instance_name = kick-real-{imap_port}\nprotocols = imap\nlisten = 127.0.0.9\n\
         ssl = no\ndisable_plaintext_auth = no\nlogin_trusted_networks = 127.0.0.0/8\n\
         passdb {{\n  driver = static\n  args = proxy=y host=127.0.0.10 port={backend_port} nopassword=y\n}}\n\
         userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home=/nonexistent\n}}\n\
         service imap-login {{\n  inet_listener imap {{\n    port = {imap_port}\n  }}\n\
         inet_listener imaps {{\n    port = 0\n  }}\n  service_count = 0\n\
         process_min_avail = 1\n  process_limit = 1\n}}\n",
        base = base.display(),
        dir = dir.display(),
    );
    let conf_path = dir.join("dovecot.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let st = std::process::Command::new("/usr/sbin/dovecot")
        .arg("-c")
        .arg(&conf_path)
        .status()
        .unwrap();
    assert!(st.success());
    // The daemonized master writes its pid file a little later.
    for _ in 0..100 {
        if let Ok(pid) = std::fs::read_to_string(base.join("master.pid")) {
            if let Ok(pid) = pid.trim().parse() {
                return Master(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no master.pid in {}", base.display());
}

#[tokio::test]
#[ignore = "needs root and a real Dovecot 2.3 (/usr/sbin/dovecot)"]
async fn real_ipc_kicks_real_proxied_sessions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let backend = TcpListener::bind("127.0.0.10:0").await.unwrap();
    let backend_port = backend.local_addr().unwrap().port();
    tokio::spawn(fake_backend(backend));
    let imap_port = free_port("127.0.0.9");
    let _master = start_dovecot(dir.path(), imap_port, backend_port);
    let addr: SocketAddr = format!("127.0.0.9:{imap_port}").parse().unwrap();
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_ok() && dir.path().join("run/ipc").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kicker = spawn_ipc(dir.path().join("run/ipc"));

    // Nobody of that name: the login process answers a bare `+` for KICK (observed).
    let r = timeout(T, kicker.kick(KickCommand::kick(b"nobody")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.count, r.data.as_str()), (None, ""));

    let alice = login(addr, "alice").await;
    let mut bob = login(addr, "bob").await;
    let r = timeout(T, kicker.kick(KickCommand::kick(b"alice")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.data, "1", "{r:?}");
    closed(alice).await;
    still_open(&mut bob).await;

    // bob's hash with the login's default director_username_hash (%Lu), user-directory.md
    // §2.4 [verified]. The except IP is bob's backend, so his session is spared (`+0`).
    let except = KickCommand::KickDirectorHash {
        hash: 2677887420,
        except_ip: Some("127.0.0.10".parse().unwrap()),
    };
    let r = timeout(T, kicker.kick(except)).await.unwrap().unwrap();
    assert_eq!(r.data, "0", "{r:?}");
    still_open(&mut bob).await;
    let by_hash = KickCommand::KickDirectorHash {
        hash: 2677887420,
        except_ip: None,
    };
    let r = timeout(T, kicker.kick(by_hash)).await.unwrap().unwrap();
    assert_eq!(r.data, "1", "{r:?}");
    closed(bob).await;

    let carol = login(addr, "carol").await;
    let alt = KickCommand::kick_alt(b"user_nothing", b"x");
    let r = timeout(T, kicker.kick(alt)).await.unwrap().unwrap();
    assert_eq!(r.data, "0", "{r:?}");
    drop(carol);
}
