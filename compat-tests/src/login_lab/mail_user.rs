//! The unprivileged system user owning the backends' maildirs (the lab's `dlabmail`).

use std::process::{Command, Stdio};

use crate::err;

/// Name of the mail user, shared with `/work/shared/lab/up.sh`.
pub const MAIL_USER: &str = "dlabmail";

/// `(uid, gid)` of [`MAIL_USER`], creating it (system user, no home, no shell) if missing.
pub fn ensure_mail_user() -> std::io::Result<(u32, u32)> {
    if let Some(ids) = lookup(MAIL_USER) {
        return Ok(ids);
    }
    let status = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            MAIL_USER,
        ])
        .stdin(Stdio::null())
        .status()?;
    // A parallel test may have created it in between; only the lookup decides.
    lookup(MAIL_USER).ok_or_else(|| err(format!("useradd {MAIL_USER} failed ({status})")))
}

fn lookup(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}
