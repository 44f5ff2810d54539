//! Process life cycle: readiness through `$NOTIFY_SOCKET` (systemd `Type=notify`), clean
//! shutdown on SIGTERM and SIGINT (sockets removed, exit 0), stale sockets replaced.

mod daemon_support;

use std::os::unix::net::{UnixDatagram, UnixListener};
use std::process::Command;

use daemon_support::*;

fn config(dir: &std::path::Path, base: &std::path::Path) -> std::path::PathBuf {
    let conf = dir.join("directord.toml");
    std::fs::write(
        &conf,
        format!("base_dir = {:?}\n{HOSTS3}", base.to_str().unwrap()),
    )
    .unwrap();
    conf
}

const SOCKETS: [&str; 4] = [
    "login/director",
    "login/proxy-notify",
    "director-userdb",
    "director-admin",
];

#[test]
fn sd_notify_ready_and_stopping_then_sigterm_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("run");
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_directord"));
    cmd.arg("-c").arg(config(dir.path(), &base));
    cmd.env("NOTIFY_SOCKET", &notify_path);
    let mut d = Daemon::spawn(cmd, tempfile::tempdir().unwrap(), base.clone());
    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1\n");
    assert!(d.stop().success());
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1\n");
    for s in SOCKETS {
        assert!(!base.join(s).exists(), "{s} left behind");
    }
}

#[test]
fn sigint_shuts_down_cleanly_and_stale_sockets_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("run");
    std::fs::create_dir_all(base.join("login")).unwrap();
    // Leftovers of a crashed run: a socket nobody listens on, and a FIFO.
    drop(UnixListener::bind(base.join("director-admin")).unwrap());
    let c = std::ffi::CString::new(base.join("login/proxy-notify").to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_directord"));
    cmd.arg("-c").arg(config(dir.path(), &base));
    let d = Daemon::spawn(cmd, tempfile::tempdir().unwrap(), base.clone());
    let mut a = d.admin();
    assert_eq!(a.line("HOST-UP\t10.0.0.1"), "OK\n");
    // An open admin connection does not hold up shutdown.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(d.pid() as i32, libc::SIGINT) };
    assert!(is_closed(&mut a.s));
    d.wait_log("SIGINT received, shutting down");
    let end = std::time::Instant::now() + DEADLINE;
    while SOCKETS.iter().any(|s| base.join(s).exists()) {
        assert!(std::time::Instant::now() < end, "sockets left behind");
        std::thread::yield_now();
    }
}
