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
        ["KICK-USER\tkick02\n", "KICK-ALT-USER\tuser_foo\tb\x01tar\n"]
    );
    assert_eq!(kicker.outstanding(), 0);
}

#[tokio::test]
async fn kick_director_hash_is_emulated_with_connect_dump() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anvil");
    let log = fake_anvil(UnixListener::bind(&path).unwrap(), counts);
    let kicker = spawn_anvil(path, hasher());
    let all = KickCommand::KickDirectorHash {
        hash: 1669653170,
        except_ip: None,
    };
    let r = timeout(T, kicker.kick(all)).await.unwrap().unwrap();
    assert_eq!(r.count, Some(2));
    assert_eq!(
        std::mem::take(&mut *log.lock().unwrap()),
        [
            "CONNECT-DUMP\n",
            "KICK-USER\talice\t2825213264240c6b912b000083ecc375\n",
            "KICK-USER\tALICE\t0000000000000000000000000000000a\n",
        ]
    );
    // "All but backend 10.0.0.2": the except IP is compared with the dest-IP column.
    let but = KickCommand::KickDirectorHash {
        hash: 1669653170,
        except_ip: Some("10.0.0.2".parse().unwrap()),
    };
    let r = timeout(T, kicker.kick(but)).await.unwrap().unwrap();
    assert_eq!(r.count, Some(1));
    assert_eq!(
        std::mem::take(&mut *log.lock().unwrap()),
        [
            "CONNECT-DUMP\n",
            "KICK-USER\talice\t2825213264240c6b912b000083ecc375\n"
        ]
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
        ]
    );
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
        if cmd.ends_with("\tdrop") {
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
    assert_eq!(log.lock().unwrap().len(), 3);
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
