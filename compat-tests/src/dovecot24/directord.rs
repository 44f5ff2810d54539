//! Our `directord`, run on the host (outside the chroot) with a generated TOML config whose
//! paths are host paths into the chroot. Stopped by the pid of the child we spawned.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::err;

/// How long `directord` may take to create its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a SIGTERM-ed `directord` gets (its own shutdown grace is 5 s) before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(8);
/// Polling step while waiting.
const POLL: Duration = Duration::from_millis(20);

/// Our `directord` binary: `$DIRECTORD`, else next to the running test binary's profile
/// directory (`target/<profile>/deps/x` → `target/<profile>/directord`), which
/// `cargo test --workspace` builds (for this package alone: `cargo build --bin directord`).
pub fn directord_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("DIRECTORD").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("DIRECTORD={} is not a file", p.display()))
        };
    }
    crate::ours::our_binary("directord").ok_or_else(|| {
        "our `directord` is not built next to this test; run `cargo build --bin directord` \
         (or `cargo test --workspace`), or set DIRECTORD"
            .to_string()
    })
}

/// A running `directord`. Dropping it stops it (SIGTERM, bounded wait, SIGKILL).
#[derive(Debug)]
pub struct Directord {
    child: Option<Child>,
    log_path: PathBuf,
    config_path: PathBuf,
}

impl Directord {
    /// Writes `toml` to `<work_dir>/directord.toml`, starts `bin -c` on it with its log in
    /// `<work_dir>/directord.log`, and waits until every path in `wait_for` exists.
    pub fn start(
        bin: &Path,
        work_dir: &Path,
        toml: &str,
        wait_for: &[PathBuf],
    ) -> std::io::Result<Directord> {
        let config_path = work_dir.join("directord.toml");
        let log_path = work_dir.join("directord.log");
        fs::write(&config_path, toml)?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config_path)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut d = Directord {
            child: Some(child),
            log_path,
            config_path,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        for path in wait_for {
            while fs::symlink_metadata(path).is_err() {
                if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    return Err(err(format!("directord exited ({status}):\n{}", d.log())));
                }
                if Instant::now() > deadline {
                    return Err(err(format!(
                        "directord did not create {}:\n{}",
                        path.display(),
                        d.log()
                    )));
                }
                std::thread::sleep(POLL);
            }
        }
        Ok(d)
    }

    /// The process id (`None` once stopped).
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// The generated config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Everything `directord` logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Stops it: SIGTERM, wait up to 8 s, then SIGKILL; reaps the child. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        crate::stop::stop_child(&mut child, STOP_TIMEOUT);
    }
}

impl Drop for Directord {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- directord log ---\n{}--- end of log ---", self.log());
        }
    }
}
