//! A stand-in `director_flush_socket` service (`auth-proxy.md` §11): a UNIX socket that
//! records every request byte for byte and answers with a fixed result (`+\n`).

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Accept polling step.
const POLL: Duration = Duration::from_millis(20);
/// Bound on reading one request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on the bytes of one request.
const MAX_REQUEST: u64 = 64 * 1024;
/// Bound on the server's life, whatever the test does.
const MAX_LIFETIME: Duration = Duration::from_secs(120);

/// A running capture server; stopped (and its socket removed) on drop.
#[derive(Debug)]
pub struct FlushCapture {
    path: PathBuf,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FlushCapture {
    /// Listens on `path` (mode 0666: the real director runs as the internal user) and
    /// answers every request with `reply`.
    pub fn start(path: &Path, reply: &'static [u8]) -> std::io::Result<FlushCapture> {
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        listener.set_nonblocking(true)?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || serve(&listener, reply, &requests, &stop))
        };
        Ok(FlushCapture {
            path: path.to_path_buf(),
            requests,
            stop,
            thread: Some(thread),
        })
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits (bounded) until at least `n` requests have arrived; returns them.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.requests();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for FlushCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(listener: &UnixListener, reply: &[u8], requests: &Mutex<Vec<Vec<u8>>>, stop: &AtomicBool) {
    let deadline = Instant::now() + MAX_LIFETIME;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let mut conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(POLL);
                continue;
            }
            Err(_) => return,
        };
        // The client half-closes after its request, so EOF ends it.
        let mut request = Vec::new();
        let read = conn
            .set_nonblocking(false)
            .and_then(|()| conn.set_read_timeout(Some(READ_TIMEOUT)))
            .and_then(|()| (&mut conn).take(MAX_REQUEST).read_to_end(&mut request));
        if let Err(e) = read {
            request.extend_from_slice(format!("<read error: {e}>").as_bytes());
        }
        if let Ok(mut r) = requests.lock() {
            r.push(request);
        }
        let _ = conn.write_all(reply);
    }
}
