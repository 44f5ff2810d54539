//! The `director_flush_socket` runner (auth-proxy.md §11) against fake flush servers on a
//! UNIX socket, on loopback TCP and as `exec:` shell scripts. The request bytes are the
//! [verified] example of §11.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use director::kick::flush::FlushRunner;
use director::kick::FlushTemplate;
use director_parsers::flush::{FlushRequest, FlushResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

const REQUEST: &[u8] =
    b"VERSION\tscript\t4\t0\n-\nFLUSH\n1669653170\n10.0.0.2\n10.0.0.1\nup\n100\n\n";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn request() -> FlushRequest {
    FlushRequest {
        hash: 1669653170,
        old_ip: ip("10.0.0.2"),
        new_ip: ip("10.0.0.1"),
        old_host_down: false,
        old_vhost_count: 100,
    }
}

fn runner(template: &str, base: &Path, timeout_ms: u64) -> FlushRunner {
    FlushRunner::new(
        FlushTemplate::parse(template).unwrap(),
        base.to_path_buf(),
        Duration::from_millis(timeout_ms),
    )
}

/// Log lines written while the returned guard lives (this thread only).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn start() -> (Capture, tracing::subscriber::DefaultGuard) {
        let cap = Capture::default();
        let w = cap.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .finish();
        (cap, tracing::subscriber::set_default(sub))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A one-shot socket flush server: reads the request to EOF (so the client must
/// half-close), checks it, answers `reply` and closes.
async fn serve_once<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    reply: &'static [u8],
) {
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, REQUEST);
    s.write_all(reply).await.unwrap();
}

#[tokio::test]
async fn unix_success_with_relative_path_and_expansion() {
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixListener::bind(dir.path().join("flush-10.0.0.1")).unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        serve_once(s, b"flushed\n+\n").await;
    });
    let r = runner("unix:flush-%i", dir.path(), 5000);
    assert_eq!(r.run(&request(), None).await, FlushResult::Success);
    server.await.unwrap();
}

#[tokio::test]
async fn unix_failure_logs_each_output_line() {
    let (cap, _guard) = Capture::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flush");
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        serve_once(s, b"first problem\nsecond problem\n-\n").await;
    });
    let template = format!("unix:{}", path.display());
    let r = runner(&template, dir.path(), 5000);
    assert_eq!(r.run(&request(), None).await, FlushResult::Failure);
    server.await.unwrap();
    let log = cap.text();
    for line in ["first problem", "second problem"] {
        let want =
            format!("{template}: Failed to flush user hash 1669653170 in host 10.0.0.1: {line}");
        assert!(log.contains(&want), "{log}");
    }
}

#[tokio::test]
async fn tcp_success_and_failure_without_output() {
    let (cap, _guard) = Capture::start();
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        serve_once(s, b"+\n").await;
        let (s, _) = listener.accept().await.unwrap();
        serve_once(s, b"-\n").await;
    });
    let template = format!("tcp:127.0.0.1:{port}");
    let r = runner(&template, dir.path(), 5000);
    assert_eq!(r.run(&request(), None).await, FlushResult::Success);
    assert_eq!(r.run(&request(), None).await, FlushResult::Failure);
    server.await.unwrap();
    let want = format!(
        "{template}: Failed to flush user hash 1669653170 in host 10.0.0.1: (no output to stdout)"
    );
    assert!(cap.text().contains(&want), "{}", cap.text());
}

#[tokio::test]
async fn garbage_result_and_missing_result_are_internal_failures() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        for reply in [&b"ok\n"[..], b"", b"+"] {
            let (s, _) = listener.accept().await.unwrap();
            serve_once(s, reply).await;
        }
    });
    let r = runner(&format!("tcp:127.0.0.1:{port}"), dir.path(), 5000);
    for _ in 0..3 {
        assert_eq!(r.run(&request(), None).await, FlushResult::InternalFailure);
    }
    server.await.unwrap();
}

#[tokio::test]
async fn hanging_server_is_bounded_by_the_run_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flush");
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(s);
    });
    let r = runner("unix:flush", dir.path(), 300);
    let start = Instant::now();
    assert_eq!(r.run(&request(), None).await, FlushResult::InternalFailure);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    server.abort();
}

#[tokio::test]
async fn unreachable_targets_are_internal_failures() {
    let dir = tempfile::tempdir().unwrap();
    for template in ["unix:nothing-here", "exec:no-such-program", "http:%i"] {
        let r = runner(template, dir.path(), 2000);
        assert_eq!(
            r.run(&request(), None).await,
            FlushResult::InternalFailure,
            "{template}"
        );
    }
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn exec_gets_argv_and_exit_status_decides() {
    let (cap, _guard) = Capture::start();
    let dir = tempfile::tempdir().unwrap();
    let args = dir.path().join("args");
    let ok = script(
        dir.path(),
        "ok.sh",
        &format!(
            "echo \"$# $@\" > {}\nread line && echo stdin-not-empty >> {}\necho \"${{HOME:-noenv}}\" >> {}\nexit 0",
            args.display(),
            args.display(),
            args.display()
        ),
    );
    let r = runner(&format!("exec:{ok}"), dir.path(), 5000);
    assert_eq!(r.run(&request(), None).await, FlushResult::Success);
    assert_eq!(
        std::fs::read_to_string(&args).unwrap(),
        "6 FLUSH 1669653170 10.0.0.2 10.0.0.1 up 100\nnoenv\n"
    );

    // Relative to base_dir, %h expanded; exit 1 = failure, stdout lines logged.
    script(
        dir.path(),
        "fail-mx1.sh",
        "echo no luck\necho at all\nexit 1",
    );
    let r = runner("exec:fail-%h.sh", dir.path(), 5000);
    assert_eq!(r.run(&request(), Some("mx1")).await, FlushResult::Failure);
    let log = cap.text();
    for line in ["no luck", "at all"] {
        let want = format!(
            "exec:fail-mx1.sh: Failed to flush user hash 1669653170 in host 10.0.0.1: {line}"
        );
        assert!(log.contains(&want), "{log}");
    }

    let killed = script(dir.path(), "killed.sh", "kill -9 $$");
    let r = runner(&format!("exec:{killed}"), dir.path(), 5000);
    assert_eq!(r.run(&request(), None).await, FlushResult::InternalFailure);
}

#[tokio::test]
async fn exec_hang_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let hang = script(dir.path(), "hang.sh", "exec sleep 20");
    let r = runner(&format!("exec:{hang}"), dir.path(), 300);
    let start = Instant::now();
    assert_eq!(r.run(&request(), None).await, FlushResult::InternalFailure);
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn run_timeout_is_capped_at_the_move_timeout() {
    let dir = Path::new("/");
    assert_eq!(
        runner("unix:x", dir, 60_000).run_timeout(),
        Duration::from_secs(30)
    );
    assert_eq!(
        runner("unix:x", dir, 2_000).run_timeout(),
        Duration::from_secs(2)
    );
}
