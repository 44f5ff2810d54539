//! Running client programs with a time limit: `doveadm director` has no timeout after its
//! handshake, so a director that never answers would hang a test forever.

use std::process::Command;
use std::time::Duration;

/// Exit code of coreutils `timeout` when it had to stop the program.
pub const TIMED_OUT: i32 = 124;

/// `cmd` wrapped in coreutils `timeout --kill-after=2 <limit>`, with the same arguments,
/// environment and working directory.
pub fn bounded(cmd: &Command, limit: Duration) -> Command {
    let mut c = Command::new("timeout");
    c.arg("--kill-after=2")
        .arg(format!("{}", limit.as_secs().max(1)))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => c.env(key, v),
            None => c.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        c.current_dir(dir);
    }
    c
}
