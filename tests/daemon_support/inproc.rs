//! The daemon run in-process, its clock advanced by test events instead of sleeping.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use director::config::Config;
use director::daemon::events::Event;
use director::daemon::RunningDaemon;

use super::{connect, log_buffer, read_lines, Admin};

/// A daemon started in this process on a temporary base_dir; shut down on drop.
pub struct InProc {
    rt: tokio::runtime::Runtime,
    daemon: Option<RunningDaemon>,
    _dir: tempfile::TempDir,
    base: PathBuf,
}

impl InProc {
    /// Starts a daemon on the TOML `config` (log captured by [`log_buffer`]).
    pub fn start(config: &str) -> InProc {
        log_buffer();
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let config = Config::from_toml(config, &base).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let daemon = rt.block_on(director::daemon::start(config)).unwrap();
        InProc {
            rt,
            daemon: Some(daemon),
            _dir: dir,
            base,
        }
    }

    /// A path under the daemon's base_dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    /// Sends an owner event and waits until it has been applied (an admin round trip on the
    /// same queue follows it); returns the DIRECTOR-LIST of that round trip.
    pub fn event(&self, admin: &mut Admin, ev: Event) -> String {
        let owner = self.daemon.as_ref().unwrap().owner().clone();
        assert!(self.rt.block_on(owner.send(ev)));
        admin.list("DIRECTOR-LIST")
    }

    /// Advances the owner's clock by `secs`, like [`InProc::event`].
    pub fn advance(&self, admin: &mut Admin, secs: u64) -> String {
        self.event(admin, Event::AdvanceClock(Duration::from_secs(secs)))
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            self.rt.block_on(d.shutdown());
        }
    }
}

/// Connects to a `*-authreply` socket and does its VERSION handshake.
pub fn authreply(path: &Path) -> std::os::unix::net::UnixStream {
    let mut s = connect(path);
    assert_eq!(
        read_lines(&mut s, 1),
        b"VERSION\tdirector-authreply-server\t1\t0\n"
    );
    s.write_all(b"VERSION\tdirector-authreply-client\t1\t0\n")
        .unwrap();
    s
}
