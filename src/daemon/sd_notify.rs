//! A std-only `sd_notify(3)` sender for `Type=notify` systemd units (no libsystemd).
//!
//! Sends one datagram to `$NOTIFY_SOCKET`: a filesystem path, or a Linux abstract socket
//! when it starts with `@`. Without the variable (not under systemd) nothing happens.

use std::io;
use std::os::unix::net::UnixDatagram;

/// Tells systemd the daemon is ready (`READY=1`).
pub fn ready() -> io::Result<bool> {
    notify("READY=1\n")
}

/// Tells systemd the daemon is stopping (`STOPPING=1`).
pub fn stopping() -> io::Result<bool> {
    notify("STOPPING=1\n")
}

/// Sends `state`; `Ok(false)` when `$NOTIFY_SOCKET` is not set.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let sock = UnixDatagram::unbound()?;
    let bytes = target.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), &target)?;
    }
    Ok(true)
}
