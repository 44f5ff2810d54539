//! Unit tests of the ring I/O table: outgoing connections from our own IP, the output byte
//! limit, and close-after-flush.

use super::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A table whose events land in the returned receiver.
fn table(self_ip: &str, limit: u64) -> (RingNet, mpsc::Receiver<Event>, mpsc::Sender<Event>) {
    let (tx, rx) = mpsc::channel(64);
    let net = RingNet::new(
        self_ip.parse().unwrap(),
        limit,
        tx.downgrade(),
        TaskTracker::new(),
        CancellationToken::new(),
    );
    (net, rx, tx)
}

async fn next_ring(rx: &mut mpsc::Receiver<Event>) -> RingIo {
    let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("event in time")
        .expect("queue open");
    match ev {
        Event::Ring(io) => io,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn outgoing_connection_binds_our_ip_and_flushes_before_closing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (mut net, mut rx, _tx) = table("127.0.0.7", 1 << 20);
    let id = OUTGOING_BIT | 1;
    net.connect(id, "127.0.0.1".parse().unwrap(), port);
    let (peer, from) = listener.accept().await.unwrap();
    assert_eq!(from.ip(), "127.0.0.7".parse::<IpAddr>().unwrap());
    match next_ring(&mut rx).await {
        RingIo::Connected { conn, peer_ip } => {
            assert_eq!(conn, id);
            assert_eq!(peer_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        }
        other => panic!("unexpected {other:?}"),
    }
    net.send(id, b"VERSION\tdirector\t1\t9\n".to_vec()).unwrap();
    net.send(id, b"QUIT\tShutting down\n".to_vec()).unwrap();
    net.close(id);
    assert_eq!(net.send(id, b"late\n".to_vec()), Err(SendError::Gone));
    let (r, mut w) = peer.into_split();
    let mut lines = BufReader::new(r).lines();
    assert_eq!(
        lines.next_line().await.unwrap().unwrap(),
        "VERSION\tdirector\t1\t9"
    );
    assert_eq!(
        lines.next_line().await.unwrap().unwrap(),
        "QUIT\tShutting down"
    );
    assert_eq!(lines.next_line().await.unwrap(), None);
    // A close the owner asked for is not reported back.
    let _ = w.write_all(b"ignored\n").await;
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv())
        .await
        .is_err());
}

#[tokio::test]
async fn connect_failure_is_reported() {
    // Nothing listens on this port any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (mut net, mut rx, _tx) = table("127.0.0.1", 1 << 20);
    net.connect(OUTGOING_BIT | 2, "127.0.0.1".parse().unwrap(), port);
    match next_ring(&mut rx).await {
        RingIo::Closed {
            conn,
            why: CloseWhy::ConnectFailed(e),
        } => {
            assert_eq!(conn, OUTGOING_BIT | 2);
            assert_eq!(e, "Connection refused");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn output_limit_counts_unwritten_bytes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (mut net, mut rx, _tx) = table("127.0.0.1", 100);
    let client = TcpStream::connect(addr).await.unwrap();
    let (_server, _) = listener.accept().await.unwrap();
    let id = net.adopt(client);
    assert!(id < OUTGOING_BIT);
    // A current-thread runtime: the writer task cannot run before we yield, so everything
    // sent here is still queued. Exactly the limit fits, one byte more does not.
    net.send(id, vec![b'a'; 60]).unwrap();
    net.send(id, vec![b'b'; 40]).unwrap();
    assert_eq!(net.send(id, vec![b'c'; 1]), Err(SendError::Full(100)));
    // Once written, the bytes no longer count.
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while net.stats(id).unwrap().buffered > 0 && tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = net.stats(id).unwrap();
    assert_eq!((s.buffered, s.bytes_out, s.peak_buffered), (0, 100, 100));
    net.send(id, vec![b'd'; 100]).unwrap();
    assert!(rx.try_recv().is_err());
}
