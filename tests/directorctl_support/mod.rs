//! Shared helpers for the directorctl integration tests: a scripted fake peer on a UNIX socket
//! (admin or auth-userdb) and a runner for the real `directorctl` binary.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One step of a peer script: `(true, bytes)` = the client must send exactly these bytes next,
/// `(false, bytes)` = the peer writes these bytes.
pub type Step = (bool, &'static [u8]);

/// Bound on every wait, so a hanging client or peer fails the test instead of blocking it.
const LIMIT: Duration = Duration::from_secs(10);

/// A fake peer listening on `path`: serves one connection by its script, then closes it.
/// Joining returns `Err(description)` when the client deviated from the script.
pub fn fake_peer(path: &Path, script: Vec<Step>) -> JoinHandle<Result<(), String>> {
    let listener = UnixListener::bind(path).expect("bind fake socket");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(_) if start.elapsed() < LIMIT => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(format!("no client connected: {e}")),
            }
        };
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(LIMIT))
            .map_err(|e| e.to_string())?;
        for (i, (expect, bytes)) in script.iter().enumerate() {
            if *expect {
                let mut got = vec![0u8; bytes.len()];
                stream
                    .read_exact(&mut got)
                    .map_err(|e| format!("step {i}: waiting for {:?}: {e}", show(bytes)))?;
                if got != *bytes {
                    return Err(format!(
                        "step {i}: client sent {:?}, expected {:?}",
                        show(&got),
                        show(bytes)
                    ));
                }
            } else {
                stream
                    .write_all(bytes)
                    .map_err(|e| format!("step {i}: write: {e}"))?;
            }
        }
        // the client must not send anything more
        let mut rest = Vec::new();
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = stream.read_to_end(&mut rest);
        if !rest.is_empty() {
            return Err(format!("client sent extra bytes {:?}", show(&rest)));
        }
        Ok(())
    })
}

/// Printable form of protocol bytes for failure messages.
pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What a directorctl run produced.
#[derive(Debug)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub code: i32,
}

/// Runs the directorctl binary with `args`, `TZ=UTC` and an empty stdin.
pub fn run_ctl(args: &[&str]) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_directorctl"))
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn directorctl");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_end(&mut stdout)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_end(&mut stderr)
                .unwrap();
            return Outcome {
                stdout,
                stderr,
                code: status.code().unwrap_or(-1),
            };
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("directorctl {args:?} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
