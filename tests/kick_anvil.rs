//! The Dovecot 2.4 anvil kicker against a fake anvil on a UNIX socket. Handshake and
//! command forms are the [verified] ones of dovecot-2.4.md §6.2; user hashes are the
//! [verified] vectors of user-directory.md §2.4 (`alice` = 1669653170, `Alice@Example.COM`
//! = 3244357836 with `%Lu`, `bob` = 2677887420).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use director::kick::{spawn_anvil, KickCommand, KickError};
use director::username_hash::UsernameHash;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);

type Log = Arc<Mutex<Vec<String>>>;

const DUMP: &str = "user_director_hash\n\
    11153\talice\timap-login\t127.0.0.1\t2825213264240c6b912b000083ecc375\t10.0.0.1\t1669653170\n\
    11154\tALICE\tpop3-login\t127.0.0.5\t0000000000000000000000000000000a\t10.0.0.2\t1669653170\n\
    11155\tbob\timap-login\t127.0.0.1\t0000000000000000000000000000000b\t10.0.0.1\t2677887420\n\
    11156\tAlice@Example.COM\timap-login\t127.0.0.1\t0000000000000000000000000000000c\t10.0.0.1\t3244357836\n\
    \n";

/// A fake anvil: checks the handshake, logs every command line, answers with `reply`
/// (`None` closes the connection). Serves connections one after another.
fn fake_anvil(
    listener: UnixListener,
    reply: impl Fn(&str) -> Option<String> + Send + 'static,
) -> Log {
    let log: Log = Arc::default();
    let log2 = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut s = BufReader::new(stream);
            let mut line = String::new();
            s.read_line(&mut line).await.unwrap();
            assert_eq!(line, "VERSION\tanvil-client\t2\t0\n");
            line.clear();
            s.read_line(&mut line).await.unwrap();
            assert_eq!(line, "\n");
            s.get_mut()
                .write_all(b"VERSION\tanvil-server\t2\t0\n")
                .await
                .unwrap();
            loop {
                line.clear();
                if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                    break;
                }
                log2.lock().unwrap().push(line.clone());
                match reply(line.trim_end_matches('\n')) {
                    Some(r) => s.get_mut().write_all(r.as_bytes()).await.unwrap(),
                    None => break,
                }
            }
        }
    });
    log
}

fn counts(cmd: &str) -> Option<String> {
    if cmd == "CONNECT-DUMP" {
        Some(DUMP.to_string())
    } else if cmd.starts_with("KICK-USER\t") {
        Some("1\n".into())
    } else if cmd.starts_with("KICK-ALT-USER\t") {
        Some("2\n".into())
    } else {
        None
    }
}

/// An anvil whose sessions are those of [`DUMP`]: `KICK-USER` answers how many it matched
/// and, if `honour` (login services with `restart_request_count = unlimited`), removes
/// them from later dumps; otherwise they stay, as with 2.4's default login mode (§6.4).
fn sessions(honour: bool) -> impl Fn(&str) -> Option<String> {
    let mut lines: Vec<String> = DUMP.lines().map(|l| format!("{l}\n")).collect();
    lines.pop(); // the final empty line
    let header = lines.remove(0);
    let state = Mutex::new(lines);
    move |cmd: &str| {
        let mut lines = state.lock().unwrap();
        if cmd == "CONNECT-DUMP" {
            return Some(format!("{header}{}\n", lines.concat()));
        }
        let args: Vec<&str> = cmd.split('\t').collect();
        let alt = match args[0] {
            "KICK-USER" => false,
            // The dump's only alternative field is user_director_hash (column 7).
            "KICK-ALT-USER" if args[1] == "user_director_hash" => true,
            _ => return None,
        };
        let hit = |l: &String| {
            let f: Vec<&str> = l.trim_end().split('\t').collect();
            if alt {
                f[6] == args[2]
            } else {
                f[1] == args[1] && args.get(2).map_or(true, |g| f[4] == *g)
            }
        };
        let n = lines.iter().filter(|l| hit(l)).count();
        if honour {
            lines.retain(|l| !hit(l));
        }
        Some(format!("{n}\n"))
    }
}

fn hasher() -> UsernameHash {
    UsernameHash::new("%Lu").unwrap()
}

#[tokio::test]
async fn kick_and_kick_alt_map_to_anvil_commands() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anvil");
    let log = fake_anvil(UnixListener::bind(&path).unwrap(), counts);
    let kicker = spawn_anvil(path, hasher());
    let a = timeout(T, kicker.kick(KickCommand::kick(b"kick02")))
        .await
        .unwrap();
    assert_eq!(a.unwrap().count, Some(1));
    let b = timeout(T, kicker.kick(KickCommand::kick_alt(b"user_foo", b"b\tar")))
        .await
        .unwrap();
    assert_eq!(b.unwrap().count, Some(2));
    assert_eq!(
        *log.lock().unwrap(),
        [
            "CONNECT-DUMP\n",
            "KICK-USER\tkick02\n",
            "CONNECT-DUMP\n",
            "KICK-ALT-USER\tuser_foo\tb\x01tar\n"
        ],
        "every kick first lists the sessions it targets (none of them here)"
    );
    assert_eq!(kicker.outstanding(), 0);
}

#[tokio::test]
async fn kick_director_hash_is_emulated_with_connect_dump() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anvil");
    let reply = sessions(true);
    let log = fake_anvil(UnixListener::bind(&path).unwrap(), reply);
    let kicker = spawn_anvil(path, hasher());
    // "All but backend 10.0.0.2": the except IP is compared with the dest-IP column. The
    // first kick of imap-login sessions is checked with a second dump.
    let but = KickCommand::KickDirectorHash {
        hash: 1669653170,
        except_ip: Some("10.0.0.2".parse().unwrap()),
    };
    let r = timeout(T, kicker.kick(but)).await.unwrap().unwrap();
    assert_eq!((r.count, r.ignored), (Some(1), 0));
    assert_eq!(
        std::mem::take(&mut *log.lock().unwrap()),
        [
            "CONNECT-DUMP\n",
            "KICK-USER\talice\t2825213264240c6b912b000083ecc375\n",
            "CONNECT-DUMP\n",
        ]
    );
    let all = KickCommand::KickDirectorHash {
        hash: 1669653170,
        except_ip: None,
    };
    let r = timeout(T, kicker.kick(all)).await.unwrap().unwrap();
    assert_eq!(r.count, Some(1));
    assert_eq!(
        std::mem::take(&mut *log.lock().unwrap()),
        [
            "CONNECT-DUMP\n",
            "KICK-USER\tALICE\t0000000000000000000000000000000a\n",
            "CONNECT-DUMP\n",
        ],
        "pop3-login's first kick is checked too"
    );
    let other = KickCommand::KickDirectorHash {
        hash: 3244357836,
        except_ip: None,
    };
    let r = timeout(T, kicker.kick(other)).await.unwrap().unwrap();
    assert_eq!(r.count, Some(1));
    assert_eq!(
        *log.lock().unwrap(),
        [
            "CONNECT-DUMP\n",
            "KICK-USER\tAlice@Example.COM\t0000000000000000000000000000000c\n"
        ],
        "imap-login is known to honour anvil's kicks: no second dump"
    );
}

/// A login process's admin socket (`srv.<service>/<pid>`) that answers like 2.4.1's.
fn fake_admin_socket(path: &std::path::Path) -> Log {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let listener = UnixListener::bind(path).unwrap();
    let log: Log = Arc::default();
    let log2 = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut s = BufReader::new(stream);
            s.get_mut()
                .write_all(b"VERSION\tmaster-admin-server\t1\t0\n")
                .await
                .unwrap();
            let mut line = String::new();
            while s.read_line(&mut line).await.unwrap_or(0) > 0 {
                log2.lock().unwrap().push(std::mem::take(&mut line));
                if log2.lock().unwrap().len() % 2 == 0 {
                    s.get_mut().write_all(b"+1\n").await.unwrap();
                }
            }
        }
    });
    log
}

#[tokio::test]
async fn default_login_mode_sessions_are_kicked_through_admin_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anvil");
    let reply = sessions(false);
    let log = fake_anvil(UnixListener::bind(&path).unwrap(), reply);
    let admin = fake_admin_socket(&dir.path().join("srv.imap-login/11155"));
    let kicker = spawn_anvil(path, hasher());
    let started = std::time::Instant::now();
    let r = timeout(T, kicker.kick(KickCommand::kick(b"bob")))
        .await
        .unwrap()
        .unwrap();
    // Anvil counted bob's session, it stayed listed for the whole probe, so the admin
    // socket of its process got the kick.
    assert_eq!((r.count, r.ignored), (Some(1), 0));
    assert!(started.elapsed() >= director::kick::login_mode::PROBE_TIMEOUT);
    assert_eq!(
        *admin.lock().unwrap(),
        [
            "VERSION\tmaster-admin-client\t1\t0\n",
            "KICK-USER\tbob\t0000000000000000000000000000000b\n"
        ]
    );
    let log = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(log[..2], ["CONNECT-DUMP\n", "KICK-USER\tbob\n"]);
    assert!(log[2..].iter().all(|l| l == "CONNECT-DUMP\n"), "{log:?}");

    // imap-login is known now: a kick by alternative username (bob's hash) goes to the
    // admin socket at once, without a second probe.
    let started = std::time::Instant::now();
    let r = timeout(
        T,
        kicker.kick(KickCommand::kick_alt(b"user_director_hash", b"2677887420")),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((r.count, r.ignored), (Some(1), 0));
    assert!(started.elapsed() < director::kick::login_mode::PROBE_TIMEOUT);
    assert_eq!(admin.lock().unwrap().len(), 4, "a second admin kick");

    // No admin socket for alice's process: the kick is reported as ignored, not counted.
    let r = timeout(T, kicker.kick(KickCommand::kick(b"alice")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.count, r.ignored), (Some(0), 1));
}

#[tokio::test]
async fn no_match_sends_no_kick() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anvil");
    let log = fake_anvil(UnixListener::bind(&path).unwrap(), counts);
    let kicker = spawn_anvil(path, hasher());
    let none = KickCommand::KickDirectorHash {
        hash: 12345,
        except_ip: None,
    };
    assert_eq!(
        timeout(T, kicker.kick(none)).await.unwrap().unwrap().count,
        Some(0)
    );
    assert_eq!(*log.lock().unwrap(), ["CONNECT-DUMP\n"]);
}

#[tokio::test]
async fn drop_and_garbage_fail_the_kick_and_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anvil");
    let log = fake_anvil(UnixListener::bind(&path).unwrap(), |cmd| {
        if cmd == "CONNECT-DUMP" {
            Some("\n\n".into())
        } else if cmd.ends_with("\tdrop") {
            None
        } else if cmd.ends_with("\tjunk") {
            Some("+1\n".into())
        } else {
            Some("3\n".into())
        }
    });
    let kicker = spawn_anvil(path, hasher());
    let r = timeout(T, kicker.kick(KickCommand::kick(b"drop")))
        .await
        .unwrap();
    assert_eq!(r, Err(KickError::Disconnected));
    let r = timeout(T, kicker.kick(KickCommand::kick(b"junk")))
        .await
        .unwrap();
    assert_eq!(r, Err(KickError::InvalidInput));
    let r = timeout(T, kicker.kick(KickCommand::kick(b"ok")))
        .await
        .unwrap();
    assert_eq!(r.unwrap().count, Some(3));
    assert_eq!(log.lock().unwrap().len(), 6, "a dump and a kick each time");
}

#[tokio::test]
async fn absent_anvil_then_bad_greeting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anvil");
    let kicker = spawn_anvil(path.clone(), hasher());
    let r = timeout(T, kicker.kick(KickCommand::kick(b"a")))
        .await
        .unwrap();
    assert_eq!(r, Err(KickError::ConnectFailed));
    // A 2.3-style peer that greets with something else.
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"VERSION\tanvil-server\t1\t0\n").await.unwrap();
        tokio::time::sleep(T).await;
    });
    let r = timeout(T, kicker.kick(KickCommand::kick(b"a")))
        .await
        .unwrap();
    assert_eq!(r, Err(KickError::ConnectFailed));
}
