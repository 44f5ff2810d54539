//! Stopping the processes a test started, by pid only: SIGTERM, a bounded wait, then SIGKILL.

use std::process::Child;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);

/// Sends `sig` to `pid`, a process this harness started (callers check it is > 1).
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit_once(')')
                .and_then(|(_, t)| t.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// Stops a process that is not our child (a Dovecot master that daemonized).
pub fn stop_pid(pid: i32, grace: Duration) {
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    if alive(pid) {
        signal(pid, libc::SIGKILL);
    }
}

/// Stops and reaps our own child process.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // The child is not reaped yet, so its pid cannot have been reused.
    if let Ok(pid) = i32::try_from(child.id()) {
        signal(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
}
