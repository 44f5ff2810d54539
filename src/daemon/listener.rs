//! Where the daemon's listening sockets come from, and what kind of connection each serves.
//!
//! Mirrors the listener handling of Dovecot's `src/director/main.c` (`director_client_connected`
//! and the name rule of `listener_get_type`) plus the socket creation Dovecot's master normally
//! does for a service (`src/master/service-listen.c`): stale sockets are removed, new ones get
//! the configured mode, and a FIFO is opened read-write so that it never reports EOF.
//! Sockets we created are removed again when the [`BoundListener`] is dropped, but only if the
//! path still names the very inode we created.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};

use tokio::net::unix::pipe;
use tokio::net::UnixListener;

/// What a connection accepted on a listener is used for (`settings.md` §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    /// `login/director`: auth client protocol proxied to `auth-login`.
    Auth,
    /// `director-userdb`: auth master protocol proxied to `auth-userdb`.
    Userdb,
    /// `*-authreply`: reply lines decorated on request.
    AuthReply,
    /// `login/proxy-notify` or `*-notify`: user refresh lines.
    Notify,
    /// `director-admin`: the doveadm protocol.
    Admin,
}

impl ConnKind {
    /// The kind Dovecot derives from a listener name: the part after the last `/`, then after
    /// the last `-`; unknown names on a non-TCP socket fall back to auth.
    pub fn from_listener_name(name: &str) -> ConnKind {
        let base = name.rsplit('/').next().unwrap_or(name);
        let suffix = base.rsplit('-').next().unwrap_or(base);
        match suffix {
            "userdb" => ConnKind::Userdb,
            "authreply" => ConnKind::AuthReply,
            "admin" | "doveadm" => ConnKind::Admin,
            "notify" => ConnKind::Notify,
            _ => ConnKind::Auth,
        }
    }

    /// The configuration spelling of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnKind::Auth => "auth",
            ConnKind::Userdb => "userdb",
            ConnKind::AuthReply => "authreply",
            ConnKind::Notify => "notify",
            ConnKind::Admin => "admin",
        }
    }

    /// Parses the configuration spelling of a kind.
    pub fn parse(s: &str) -> Option<ConnKind> {
        Some(match s {
            "auth" => ConnKind::Auth,
            "userdb" => ConnKind::Userdb,
            "authreply" => ConnKind::AuthReply,
            "notify" => ConnKind::Notify,
            "admin" => ConnKind::Admin,
            _ => return None,
        })
    }
}

/// How a listener comes into existence. Only `Path` is used today; the other forms are how a
/// Dovecot master (`SOCKET<n>_SETTINGS`, fd 7+n) or systemd socket activation hand us sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerSource {
    /// We create the socket (or FIFO) at this path with this mode.
    Path {
        /// Absolute path (already resolved against `base_dir`).
        path: PathBuf,
        /// Permission bits applied after creation.
        mode: u32,
        /// A FIFO instead of a UNIX stream socket.
        fifo: bool,
    },
    /// An already listening socket (or FIFO opened read-write) inherited from our parent.
    InheritedFd {
        /// The descriptor number.
        fd: RawFd,
        /// Whether the descriptor is a FIFO rather than a listening socket.
        fifo: bool,
    },
}

/// One listener as configured: its name (for logs and the kind rule), kind and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Name as in Dovecot's config, e.g. `login/director`.
    pub name: String,
    /// Connection kind; a FIFO is always [`ConnKind::Notify`].
    pub kind: ConnKind,
    /// Where the socket comes from.
    pub source: ListenerSource,
}

/// A ready listener. Dropping it removes the path we created, if it is still ours.
#[derive(Debug)]
pub struct BoundListener {
    /// The listener's configuration.
    pub spec: ListenerSpec,
    /// The socket or FIFO.
    pub io: ListenerIo,
    created: Option<(PathBuf, u64, u64)>,
}

/// The I/O object behind a listener.
#[derive(Debug)]
pub enum ListenerIo {
    /// A listening UNIX stream socket.
    Unix(UnixListener),
    /// The read side of a FIFO (opened read-write so it never sees EOF).
    Fifo(pipe::Receiver),
}

impl BoundListener {
    /// Creates or adopts the listener described by `spec`. Must run inside a tokio runtime.
    pub fn bind(spec: ListenerSpec) -> io::Result<BoundListener> {
        match &spec.source {
            ListenerSource::Path { path, mode, fifo } => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| annotate(e, "mkdir", parent))?;
                }
                remove_stale(path)?;
                let io = if *fifo {
                    make_fifo(path)?;
                    fs::set_permissions(path, fs::Permissions::from_mode(*mode))
                        .map_err(|e| annotate(e, "chmod", path))?;
                    ListenerIo::Fifo(open_fifo(path)?)
                } else {
                    let l = UnixListener::bind(path).map_err(|e| annotate(e, "bind", path))?;
                    fs::set_permissions(path, fs::Permissions::from_mode(*mode))
                        .map_err(|e| annotate(e, "chmod", path))?;
                    ListenerIo::Unix(l)
                };
                let meta = fs::symlink_metadata(path).map_err(|e| annotate(e, "stat", path))?;
                let created = Some((path.clone(), meta.dev(), meta.ino()));
                Ok(BoundListener { spec, io, created })
            }
            ListenerSource::InheritedFd { fd, fifo } => {
                // SAFETY: the descriptor was handed to us by our parent for this purpose and
                // nothing else in the process owns it.
                let io = if *fifo {
                    let file = unsafe { std::fs::File::from_raw_fd(*fd) };
                    ListenerIo::Fifo(pipe::Receiver::from_file_unchecked(file)?)
                } else {
                    let l = unsafe { std::os::unix::net::UnixListener::from_raw_fd(*fd) };
                    l.set_nonblocking(true)?;
                    ListenerIo::Unix(UnixListener::from_std(l)?)
                };
                Ok(BoundListener {
                    spec,
                    io,
                    created: None,
                })
            }
        }
    }

    /// The path we created, if any.
    pub fn path(&self) -> Option<&Path> {
        self.created.as_ref().map(|(p, _, _)| p.as_path())
    }
}

impl Drop for BoundListener {
    fn drop(&mut self) {
        if let Some((path, dev, ino)) = &self.created {
            // Only remove what is still our socket: a newer daemon may have replaced it.
            if let Ok(meta) = fs::symlink_metadata(path) {
                if meta.dev() == *dev && meta.ino() == *ino {
                    let _ = fs::remove_file(path);
                }
            }
        }
    }
}

fn annotate(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what}({}) failed: {e}", path.display()))
}

/// Removes a socket or FIFO left behind by a previous run. A socket somebody still accepts
/// on is not stale: refuse to steal it. Regular files and directories are never removed.
fn remove_stale(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(annotate(e, "stat", path)),
    };
    let ft = meta.file_type();
    if ft.is_socket() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}: socket is in use by another process", path.display()),
            ));
        }
    } else if !ft.is_fifo() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: exists and is not a socket or FIFO", path.display()),
        ));
    }
    fs::remove_file(path).map_err(|e| annotate(e, "unlink", path))
}

fn make_fifo(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(annotate(io::Error::last_os_error(), "mkfifo", path));
    }
    Ok(())
}

fn open_fifo(path: &Path) -> io::Result<pipe::Receiver> {
    // Read-write: we are then a writer too, so the FIFO never returns EOF when the last
    // login process closes its end (what Dovecot's master does for fifo_listeners).
    pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(path)
        .map_err(|e| annotate(e, "open", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_rule_matches_settings_spec() {
        let cases = [
            ("login/director", ConnKind::Auth),
            ("director", ConnKind::Auth),
            ("director-admin", ConnKind::Admin),
            ("director-doveadm", ConnKind::Admin),
            ("doveadm", ConnKind::Admin),
            ("director-userdb", ConnKind::Userdb),
            ("login/proxy-notify", ConnKind::Notify),
            ("foo-authreply", ConnKind::AuthReply),
            ("whatever", ConnKind::Auth),
        ];
        for (name, kind) in cases {
            assert_eq!(ConnKind::from_listener_name(name), kind, "{name}");
        }
    }

    #[tokio::test]
    async fn creates_with_mode_and_removes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("login/director");
        let spec = ListenerSpec {
            name: "login/director".into(),
            kind: ConnKind::Auth,
            source: ListenerSource::Path {
                path: path.clone(),
                mode: 0o666,
                fifo: false,
            },
        };
        let l = BoundListener::bind(spec.clone()).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o666);
        // A second bind while the first still listens must not steal the socket.
        assert!(BoundListener::bind(spec.clone()).is_err());
        drop(l);
        assert!(!path.exists());
        // A stale socket (nobody listening) is replaced.
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        let l = BoundListener::bind(spec).unwrap();
        drop(l);
    }

    #[tokio::test]
    async fn fifo_is_created_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("login/proxy-notify");
        let spec = ListenerSpec {
            name: "login/proxy-notify".into(),
            kind: ConnKind::Notify,
            source: ListenerSource::Path {
                path: path.clone(),
                mode: 0o620,
                fifo: true,
            },
        };
        let l = BoundListener::bind(spec).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_fifo());
        assert_eq!(meta.permissions().mode() & 0o777, 0o620);
        assert!(matches!(l.io, ListenerIo::Fifo(_)));
        drop(l);
        assert!(!path.exists());
    }
}
