//! Shared helpers for the `tests/daemon_*.rs` integration tests: start the real `directord`
//! binary on a temporary base_dir, talk to its sockets with deadline-bounded reads, watch its
//! log, and play the peers it connects to (auth-login, auth-userdb, ipc).
#![allow(dead_code)]

mod inproc;
#[allow(unused_imports)]
pub use inproc::{authreply, InProc};

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Default deadline for anything a test waits for.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A running `directord` child process with its own base_dir.
pub struct Daemon {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub base: PathBuf,
    log: Arc<Mutex<String>>,
}

/// The usual test backends: the spec's verified vectors use 10.0.0.1-10.0.0.3.
pub const HOSTS3: &str = "[director]\nmail_servers = \"10.0.0.1-10.0.0.3\"\n";

impl Daemon {
    /// Starts `directord -c <config>`; `config` is TOML without `base_dir` (added here).
    pub fn start(config: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("run");
        std::fs::create_dir_all(&base).unwrap();
        let conf = dir.path().join("directord.toml");
        std::fs::write(
            &conf,
            format!("base_dir = {:?}\n{config}", base.to_str().unwrap()),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_directord"));
        cmd.arg("--config").arg(&conf);
        Self::spawn(cmd, dir, base)
    }

    /// Starts an arbitrary `directord` command line whose sockets end up in `base`.
    pub fn spawn(mut cmd: Command, dir: tempfile::TempDir, base: PathBuf) -> Daemon {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            // The config's `[log] level` decides (default info).
            .env_remove("RUST_LOG");
        let mut child = cmd.spawn().expect("spawn directord");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("running with") {
                    let _ = tx.send(());
                }
            }
        });
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(stderr);
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    log.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        let mut d = Daemon {
            child: Some(child),
            dir,
            base,
            log,
        };
        if rx.recv_timeout(DEADLINE).is_err() {
            let status = d.child.as_mut().unwrap().try_wait();
            panic!("directord did not start: {status:?}\n{}", d.log());
        }
        d
    }

    /// Path of a socket in base_dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; panics with the log after the deadline.
    pub fn wait_log(&self, needle: &str) {
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("log never contained {needle:?}; log:\n{}", self.log());
    }

    /// How many times `needle` occurs in the log.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Sends SIGTERM and waits for the exit (bounded); returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > end {
                let _ = child.kill();
                panic!("directord did not stop on SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The pid, while running.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// A handshaked admin connection.
    pub fn admin(&self) -> Admin {
        Admin::connect(&self.path("director-admin"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Connects to a UNIX socket with read/write timeouts.
pub fn connect(path: &Path) -> UnixStream {
    let s = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {path:?}: {e}"));
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.set_write_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Reads until `buf` ends with `end` (or EOF / deadline); returns everything read.
pub fn read_until(s: &mut UnixStream, end: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + DEADLINE;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(end) && Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    buf
}

/// Reads exactly `n` complete lines (LF-terminated), bounded by the deadline.
pub fn read_lines(s: &mut UnixStream, n: usize) -> Vec<u8> {
    let deadline = Instant::now() + DEADLINE;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    // One byte per read so nothing past the n-th line is consumed; count LFs as they arrive
    // (recounting the buffer each time made 16 KiB lines quadratic and flaky under load).
    let mut lines = 0;
    while lines < n && Instant::now() < deadline {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                buf.push(byte[0]);
                lines += usize::from(byte[0] == b'\n');
            }
            Err(_) => break,
        }
    }
    buf
}

/// True when the peer closed: a read returns EOF (or reset) within the deadline.
pub fn is_closed(s: &mut UnixStream) -> bool {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
    false
}

/// Escaped view of bytes for assertion messages.
pub fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// A doveadm-protocol client.
pub struct Admin {
    pub s: UnixStream,
}

impl Admin {
    /// Connects, checks the greeting and sends doveadm's handshake.
    pub fn connect(path: &Path) -> Admin {
        let mut s = connect(path);
        s.write_all(b"VERSION\tdirector-doveadm\t1\t0\n").unwrap();
        let greeting = read_lines(&mut s, 1);
        assert_eq!(show(&greeting), show(b"VERSION\tdirector-doveadm\t1\t0\n"));
        Admin { s }
    }

    /// Sends one command line (LF added) and reads a one-line reply.
    pub fn line(&mut self, cmd: &str) -> String {
        self.s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        String::from_utf8_lossy(&read_lines(&mut self.s, 1)).into_owned()
    }

    /// Sends one command line and reads a list reply (up to the empty line).
    pub fn list(&mut self, cmd: &str) -> String {
        self.s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        let mut out = Vec::new();
        loop {
            let l = read_lines(&mut self.s, 1);
            if l.is_empty() {
                break;
            }
            out.extend_from_slice(&l);
            if l == b"\n" {
                break;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A scripted stand-in for an upstream service (auth-login, auth-userdb, ipc): a listening
/// UNIX socket whose accepted connections the test takes one by one.
pub struct FakeServer {
    listener: UnixListener,
    pub path: PathBuf,
}

impl FakeServer {
    /// Listens on `path`.
    pub fn bind(path: &Path) -> FakeServer {
        let listener = UnixListener::bind(path).unwrap();
        FakeServer {
            listener,
            path: path.to_path_buf(),
        }
    }

    /// The next connection the daemon made (bounded wait).
    pub fn accept(&self) -> UnixStream {
        self.listener.set_nonblocking(true).unwrap();
        let end = Instant::now() + DEADLINE;
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(DEADLINE)).unwrap();
                    s.set_write_timeout(Some(DEADLINE)).unwrap();
                    return s;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("fake server {:?}: no connection: {e}", self.path),
            }
        }
    }
}

/// A login process connected through `login/director` (or LMTP through `director-userdb`),
/// paired with the fake auth server's side of the relayed connection.
pub struct Relay {
    pub client: UnixStream,
    pub upstream: UnixStream,
}

impl Relay {
    /// Connects a client to `listener` and takes the daemon's upstream connection from `auth`.
    pub fn open(d: &Daemon, listener: &str, auth: &FakeServer) -> Relay {
        let client = connect(&d.path(listener));
        let upstream = auth.accept();
        Relay { client, upstream }
    }

    /// The auth server sends `line` (LF added); returns the line the client gets (with LF).
    pub fn reply(&mut self, line: &[u8]) -> Vec<u8> {
        let mut l = line.to_vec();
        l.push(b'\n');
        self.upstream.write_all(&l).unwrap();
        read_lines(&mut self.client, 1)
    }
}

/// Everything the in-process daemons of one test binary log (a process-wide subscriber).
pub fn log_buffer() -> Arc<Mutex<String>> {
    static LOG: OnceLock<Arc<Mutex<String>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(String::new()));
        let w = buf.clone();
        let make = move || LogWriter(w.clone());
        tracing_subscriber::fmt()
            .with_writer(make)
            .with_ansi(false)
            .with_target(false)
            .init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<String>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().push_str(&String::from_utf8_lossy(b));
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
