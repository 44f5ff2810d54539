//! Kicks and flushes that really disconnect sessions (the transport half).
//!
//! Replaces the director's use of `src/lib-master/ipc-client.c` (Dovecot 2.3 kicks,
//! `auth-proxy.md` §10), its anvil equivalent for Dovecot 2.4 (`dovecot-2.4.md` §6) and the
//! `director_flush_socket` program client (`auth-proxy.md` §11). The move timers that
//! use them live with the state owner (`crate::daemon`).
//!
//! * [`KickHandle`] is the one API the state owner uses for every kick, whatever the
//!   backend: [`spawn_ipc`] or [`spawn_anvil`] (chosen with [`Backend::resolve`]) start the
//!   task behind it. [`KickHandle::send`] never waits, so the owner can call it.
//! * [`flush::FlushRunner`] runs the flush program for one move.

mod admin_socket;
pub mod anvil;
mod conn;
pub mod flush;
mod flush_target;
mod handle;
pub mod ipc;
pub mod login_mode;

use std::path::{Path, PathBuf};

pub use admin_socket::admin_sockets_reachable;
pub use anvil::{spawn_anvil, spawn_anvil_with};
pub use director_parsers::ipc::KickCommand;
pub use flush_target::{FlushConfigError, FlushTarget, FlushTemplate};
pub use handle::{KickError, KickHandle, KickOutcome, KickResult, KickSink};
pub use ipc::{spawn_ipc, spawn_ipc_with};

/// Which Dovecot the login processes belong to (`[dovecot] version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DovecotVersion {
    /// 2.3: kicks through `<base_dir>/ipc`.
    V2_3,
    /// 2.4: kicks through `<base_dir>/anvil`.
    V2_4,
    /// `ipc` if `<base_dir>/ipc` exists, else `anvil`.
    Auto,
}

impl DovecotVersion {
    /// Parse the setting's value (`2.3`, `2.4` or `auto`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "2.3" => Some(Self::V2_3),
            "2.4" => Some(Self::V2_4),
            "auto" => Some(Self::Auto),
            _ => None,
        }
    }
}

/// The kick transport to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Dovecot 2.3's ipc service socket.
    Ipc(PathBuf),
    /// Dovecot 2.4's anvil socket.
    Anvil(PathBuf),
}

impl Backend {
    /// Pick the transport for `version` given the two socket paths. `Auto` takes ipc if its
    /// socket exists, else anvil if that exists, else `None` (Dovecot not started yet).
    pub fn resolve(version: DovecotVersion, ipc: &Path, anvil: &Path) -> Option<Backend> {
        match version {
            DovecotVersion::V2_3 => Some(Backend::Ipc(ipc.to_path_buf())),
            DovecotVersion::V2_4 => Some(Backend::Anvil(anvil.to_path_buf())),
            DovecotVersion::Auto if ipc.exists() => Some(Backend::Ipc(ipc.to_path_buf())),
            DovecotVersion::Auto if anvil.exists() => Some(Backend::Anvil(anvil.to_path_buf())),
            DovecotVersion::Auto => None,
        }
    }

    /// Start the backend's task. `hasher` is only used by anvil, to emulate
    /// `KICK-DIRECTOR-HASH`. Must be called inside a tokio runtime.
    pub fn spawn(self, hasher: crate::username_hash::UsernameHash) -> KickHandle {
        self.spawn_with(hasher)
    }

    /// [`Backend::spawn`] with results delivered to sinks of type `S`.
    pub fn spawn_with<S: KickSink>(
        self,
        hasher: crate::username_hash::UsernameHash,
    ) -> KickHandle<S> {
        match self {
            Backend::Ipc(path) => spawn_ipc_with(path),
            Backend::Anvil(path) => spawn_anvil_with(path, hasher),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_an_existing_ipc_socket() {
        let dir = tempfile::tempdir().unwrap();
        let (ipc, anvil) = (dir.path().join("ipc"), dir.path().join("anvil"));
        assert_eq!(Backend::resolve(DovecotVersion::Auto, &ipc, &anvil), None);
        std::fs::write(&anvil, b"").unwrap();
        let found = Backend::resolve(DovecotVersion::Auto, &ipc, &anvil);
        assert_eq!(found, Some(Backend::Anvil(anvil.clone())));
        std::fs::write(&ipc, b"").unwrap();
        let found = Backend::resolve(DovecotVersion::Auto, &ipc, &anvil);
        assert_eq!(found, Some(Backend::Ipc(ipc.clone())));
        let forced = Backend::resolve(DovecotVersion::V2_4, &ipc, &anvil);
        assert_eq!(forced, Some(Backend::Anvil(anvil.clone())));
        assert_eq!(DovecotVersion::parse("2.3"), Some(DovecotVersion::V2_3));
        assert_eq!(DovecotVersion::parse("2.5"), None);
    }
}
