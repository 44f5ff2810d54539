//! The Dovecot 2.3 ipc kicker against a scripted fake ipc service on a UNIX socket.
//! Request bytes are the [verified] lines of auth-proxy.md §10.2 and the lab transcripts
//! (`doveadm-kick.txt`, `doveadm-kick-alt.txt`, which also show the real `+(null)` reply).

use std::time::Duration;

use director::kick::{spawn_ipc, KickCommand, KickError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);

/// Reads one request line (LF included) from the fake server's side.
async fn read_line(r: &mut BufReader<UnixStream>) -> Vec<u8> {
    let mut line = Vec::new();
    timeout(T, r.read_until(b'\n', &mut line))
        .await
        .unwrap()
        .unwrap();
    line
}

async fn accept(l: &UnixListener) -> BufReader<UnixStream> {
    BufReader::new(timeout(T, l.accept()).await.unwrap().unwrap().0)
}

#[tokio::test]
async fn exact_request_bytes_and_replies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipc");
    let listener = UnixListener::bind(&path).unwrap();
    let kicker = spawn_ipc(path);

    let k = kicker.clone();
    let client = tokio::spawn(async move {
        let a = k.kick(KickCommand::kick(b"alice")).await;
        let b = k.kick(KickCommand::kick_alt(b"user_foo", b"bar")).await;
        let c = k
            .kick(KickCommand::KickDirectorHash {
                hash: 1669653170,
                except_ip: None,
            })
            .await;
        let d = k
            .kick(KickCommand::KickDirectorHash {
                hash: 7,
                except_ip: Some("10.0.0.2".parse().unwrap()),
            })
            .await;
        let e = k.kick(KickCommand::kick(b"tab\tuser")).await;
        (a, b, c, d, e)
    });
    let mut s = accept(&listener).await;
    assert_eq!(read_line(&mut s).await, b"proxy\t*\tKICK\talice\n");
    s.get_mut().write_all(b"+1\n").await.unwrap();
    assert_eq!(
        read_line(&mut s).await,
        b"proxy\t*\tKICK-ALT\tuser_foo\tbar\n"
    );
    s.get_mut().write_all(b"+(null)\n").await.unwrap();
    assert_eq!(
        read_line(&mut s).await,
        b"proxy\t*\tKICK-DIRECTOR-HASH\t1669653170\n"
    );
    s.get_mut().write_all(b"-no such thing\n").await.unwrap();
    assert_eq!(
        read_line(&mut s).await,
        b"proxy\t*\tKICK-DIRECTOR-HASH\t7\t10.0.0.2\n"
    );
    // An intermediate line does not finish the command.
    s.get_mut().write_all(b":partial\n+3\n").await.unwrap();
    assert_eq!(read_line(&mut s).await, b"proxy\t*\tKICK\ttab\x01tuser\n");
    s.get_mut().write_all(b"+0\n").await.unwrap();

    let (a, b, c, d, e) = timeout(T, client).await.unwrap().unwrap();
    let a = a.unwrap();
    assert_eq!((a.count, a.data.as_str()), (Some(1), "1"));
    let b = b.unwrap();
    assert_eq!((b.count, b.data.as_str()), (None, "(null)"));
    let c = c.unwrap_err();
    assert_eq!(c, KickError::Failed("no such thing".into()));
    assert_eq!(c.to_string(), "no such thing");
    assert_eq!(d.unwrap().count, Some(3));
    assert_eq!(e.unwrap().count, Some(0));
    assert_eq!(kicker.outstanding(), 0);
}

#[tokio::test]
async fn pipelined_replies_match_in_order_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipc");
    let listener = UnixListener::bind(&path).unwrap();
    let kicker = spawn_ipc(path);
    let mut rx = Vec::new();
    for user in [&b"u1"[..], b"u2", b"u3"] {
        let (tx, r) = tokio::sync::oneshot::channel();
        kicker.send(KickCommand::kick(user), tx);
        rx.push(r);
    }
    assert_eq!(kicker.outstanding(), 3);
    let mut s = accept(&listener).await;
    // All three are on the wire before any reply.
    assert_eq!(read_line(&mut s).await, b"proxy\t*\tKICK\tu1\n");
    assert_eq!(read_line(&mut s).await, b"proxy\t*\tKICK\tu2\n");
    assert_eq!(read_line(&mut s).await, b"proxy\t*\tKICK\tu3\n");
    s.get_mut().write_all(b"+10\n+20\n+30\n").await.unwrap();
    let mut counts = Vec::new();
    for r in rx {
        counts.push(timeout(T, r).await.unwrap().unwrap().unwrap().count);
    }
    assert_eq!(counts, [Some(10), Some(20), Some(30)]);
    assert_eq!(kicker.outstanding(), 0);
}

#[tokio::test]
async fn garbage_fails_first_disconnects_rest_then_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipc");
    let listener = UnixListener::bind(&path).unwrap();
    let kicker = spawn_ipc(path);
    let (tx1, r1) = tokio::sync::oneshot::channel();
    let (tx2, r2) = tokio::sync::oneshot::channel();
    kicker.send(KickCommand::kick(b"a"), tx1);
    kicker.send(KickCommand::kick(b"b"), tx2);
    let mut s = accept(&listener).await;
    read_line(&mut s).await;
    read_line(&mut s).await;
    s.get_mut().write_all(b"?what\n").await.unwrap();
    let r1 = timeout(T, r1).await.unwrap().unwrap();
    let r2 = timeout(T, r2).await.unwrap().unwrap();
    assert_eq!(r1, Err(KickError::InvalidInput));
    assert_eq!(r2, Err(KickError::Disconnected));
    // The client closed its side.
    let mut rest = Vec::new();
    let n = timeout(T, s.read_until(b'\n', &mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
    // The next kick opens a new connection.
    let k = kicker.clone();
    let next = tokio::spawn(async move { k.kick(KickCommand::kick(b"c")).await });
    let mut s2 = accept(&listener).await;
    assert_eq!(read_line(&mut s2).await, b"proxy\t*\tKICK\tc\n");
    s2.get_mut().write_all(b"+1\n").await.unwrap();
    assert_eq!(
        timeout(T, next).await.unwrap().unwrap().unwrap().count,
        Some(1)
    );
}

#[tokio::test]
async fn disconnect_mid_request_fails_all_pending() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipc");
    let listener = UnixListener::bind(&path).unwrap();
    let kicker = spawn_ipc(path);
    let mut rx = Vec::new();
    for user in [&b"x"[..], b"y"] {
        let (tx, r) = tokio::sync::oneshot::channel();
        kicker.send(KickCommand::kick(user), tx);
        rx.push(r);
    }
    let mut s = accept(&listener).await;
    read_line(&mut s).await;
    // Half a reply, then the service goes away.
    s.get_mut().write_all(b"+1").await.unwrap();
    drop(s);
    for r in rx {
        assert_eq!(
            timeout(T, r).await.unwrap().unwrap(),
            Err(KickError::Disconnected)
        );
    }
    assert_eq!(kicker.outstanding(), 0);
}

#[tokio::test]
async fn server_absent_then_present() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipc");
    let kicker = spawn_ipc(path.clone());
    let err = timeout(T, kicker.kick(KickCommand::kick(b"a")))
        .await
        .unwrap();
    assert_eq!(err, Err(KickError::ConnectFailed));
    assert_eq!(err.unwrap_err().to_string(), "ipc connect failed");
    assert_eq!(kicker.outstanding(), 0);

    let listener = UnixListener::bind(&path).unwrap();
    let k = kicker.clone();
    let next = tokio::spawn(async move { k.kick(KickCommand::kick(b"a")).await });
    let mut s = accept(&listener).await;
    assert_eq!(read_line(&mut s).await, b"proxy\t*\tKICK\ta\n");
    s.get_mut().write_all(b"+2\n").await.unwrap();
    assert_eq!(
        timeout(T, next).await.unwrap().unwrap().unwrap().count,
        Some(2)
    );
}

#[tokio::test]
async fn unexpected_input_without_pending_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipc");
    let listener = UnixListener::bind(&path).unwrap();
    let kicker = spawn_ipc(path);
    let k = kicker.clone();
    let first = tokio::spawn(async move { k.kick(KickCommand::kick(b"a")).await });
    let mut s = accept(&listener).await;
    read_line(&mut s).await;
    // The reply, then a stray line while nothing is pending: logged, connection kept.
    s.get_mut().write_all(b"+1\n+9\n").await.unwrap();
    assert_eq!(
        timeout(T, first).await.unwrap().unwrap().unwrap().count,
        Some(1)
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let k = kicker.clone();
    let second = tokio::spawn(async move { k.kick(KickCommand::kick(b"b")).await });
    assert_eq!(read_line(&mut s).await, b"proxy\t*\tKICK\tb\n");
    s.get_mut().write_all(b"+4\n").await.unwrap();
    assert_eq!(
        timeout(T, second).await.unwrap().unwrap().unwrap().count,
        Some(4)
    );
}

/// A sink like the daemon's: forwards `(token, result)` into the owner's bounded queue.
struct OwnerSink {
    token: u64,
    tx: tokio::sync::mpsc::Sender<(u64, director::kick::KickResult)>,
}

impl director::kick::KickSink for OwnerSink {
    async fn done(self, result: director::kick::KickResult) {
        let _ = self.tx.send((self.token, result)).await;
    }
}

#[tokio::test]
async fn custom_sink_gets_results_in_request_order_and_drop_fails_pending() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipc");
    let listener = UnixListener::bind(&path).unwrap();
    let kicker = director::kick::spawn_ipc_with::<OwnerSink>(path);
    // A queue of one: the kicker waits on it, as it would on a busy owner.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    for token in 1..=4 {
        let sink = OwnerSink {
            token,
            tx: tx.clone(),
        };
        assert!(kicker.send(KickCommand::kick(format!("u{token}").as_bytes()), sink));
    }
    let mut s = accept(&listener).await;
    for _ in 0..4 {
        read_line(&mut s).await;
    }
    s.get_mut().write_all(b"+1\n-nope\n").await.unwrap();
    let (t1, r1) = timeout(T, rx.recv()).await.unwrap().unwrap();
    let (t2, r2) = timeout(T, rx.recv()).await.unwrap().unwrap();
    assert_eq!((t1, r1.unwrap().count), (1, Some(1)));
    assert_eq!((t2, r2), (2, Err(KickError::Failed("nope".into()))));
    assert_eq!(kicker.outstanding(), 2);
    // Every handle gone: the task ends and fails what is still pending.
    drop(kicker);
    let (t3, r3) = timeout(T, rx.recv()).await.unwrap().unwrap();
    let (t4, r4) = timeout(T, rx.recv()).await.unwrap().unwrap();
    assert_eq!((t3, r3), (3, Err(KickError::Disconnected)));
    assert_eq!((t4, r4), (4, Err(KickError::Disconnected)));
}
