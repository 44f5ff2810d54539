//! `directord` configuration: the TOML file ([`mod@file`]), validated once into [`Config`].
//!
//! Parse, don't validate (aesthetics.md §8.4 rule 19): [`Config::from_file`] resolves
//! defaults (Dovecot's, `settings.md` §1) and cross-field rules, and the rest of the daemon only
//! sees [`Config`]. Errors name the key as `[section] key` so `--check-config` can point at it.
//! Settings could later also come from a Dovecot config (`settings.md` §4.7); that would be
//! another constructor of the same [`Config`].

pub mod file;
pub(crate) mod glue;
pub mod ring;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::listener::{ConnKind, ListenerSource, ListenerSpec};
use file::{FileConfig, ListenerSection};
pub use ring::RingConfig;

/// The configuration `directord` runs with when no `--config` is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../contrib/directord-default.toml");

/// A configuration error: which key (or the file) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `[section] key`, or empty for file-level errors (syntax, unknown keys).
    pub key: String,
    /// Human-readable reason.
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The `director_*` settings, with Dovecot's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorSettings {
    /// `director_servers`; empty = stand-alone.
    pub servers: Vec<String>,
    /// `director_mail_servers` in Dovecot's syntax (space-separated).
    pub mail_servers: String,
    /// `director_username_hash`.
    pub username_hash: String,
    /// `director_user_expire`.
    pub user_expire: Duration,
    /// `director_user_kick_delay`.
    pub user_kick_delay: Duration,
    /// `director_flush_socket`; empty = none.
    pub flush_socket: String,
    /// `director_ping_idle_timeout` (ring only).
    pub ping_idle_timeout: Duration,
    /// `director_ping_max_timeout` (ring only).
    pub ping_max_timeout: Duration,
    /// `director_max_parallel_moves`.
    pub max_parallel_moves: u32,
    /// `director_max_parallel_kicks`.
    pub max_parallel_kicks: u32,
    /// `director_output_buffer_size` in bytes (ring only).
    pub output_buffer_size: u64,
    /// Master-user separator; only its first character is used.
    pub master_user_separator: String,
}

impl Default for DirectorSettings {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            mail_servers: String::new(),
            username_hash: "%Lu".into(),
            user_expire: Duration::from_secs(15 * 60),
            user_kick_delay: Duration::from_secs(2),
            flush_socket: String::new(),
            ping_idle_timeout: Duration::from_secs(30),
            ping_max_timeout: Duration::from_secs(60),
            max_parallel_moves: 100,
            max_parallel_kicks: 100,
            output_buffer_size: 10 * 1024 * 1024,
            master_user_separator: String::new(),
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Absolute base directory.
    pub base_dir: PathBuf,
    /// `director_*` settings.
    pub director: DirectorSettings,
    /// Upstream of `login/director`.
    pub auth_login_socket: PathBuf,
    /// Upstream of `director-userdb`.
    pub auth_userdb_socket: PathBuf,
    /// Dovecot's ipc service socket (kicks).
    pub ipc_socket: PathBuf,
    /// Dovecot 2.4's anvil socket (kicks).
    pub anvil_socket: PathBuf,
    /// `[dovecot] version`: which of the two kick sockets to use.
    pub dovecot_version: crate::kick::DovecotVersion,
    /// Enabled listeners.
    pub listeners: Vec<ListenerSpec>,
    /// `tracing` filter from `[log] level`.
    pub log_level: Option<String>,
    /// The ring listener and directors; `None` = stand-alone (`director_servers` empty).
    pub ring: Option<RingConfig>,
}

/// Dovecot's built-in listeners, with the modes the project's compat config uses.
const DEFAULT_LISTENERS: [(&str, u32, bool); 4] = [
    ("login/director", 0o666, false),
    ("login/proxy-notify", 0o666, true),
    ("director-userdb", 0o666, false),
    ("director-admin", 0o600, false),
];

impl Config {
    /// Parses and validates TOML text. `default_base_dir` is used when the file has no
    /// `base_dir`; relative paths are taken relative to the current directory.
    pub fn from_toml(text: &str, default_base_dir: &Path) -> Result<Config, ConfigError> {
        let file: FileConfig =
            toml::from_str(text).map_err(|e| ConfigError::new("", e.to_string().trim_end()))?;
        Config::from_file(file, default_base_dir)
    }

    /// Reads, parses and validates a TOML file.
    pub fn load(path: &Path, default_base_dir: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("read({}) failed: {e}", path.display())))?;
        Config::from_toml(&text, default_base_dir)
    }

    /// Validates a parsed file.
    pub fn from_file(file: FileConfig, default_base_dir: &Path) -> Result<Config, ConfigError> {
        let base_dir = match &file.base_dir {
            Some(s) if s.is_empty() => {
                return Err(ConfigError::new("base_dir", "must not be empty"))
            }
            Some(s) => absolute(Path::new(s)),
            None => absolute(default_base_dir),
        };
        let director = director_settings(&file.director)?;
        let in_base =
            |v: &Option<String>, key: &str, default: &str| -> Result<PathBuf, ConfigError> {
                match v {
                    Some(s) if s.is_empty() => Err(ConfigError::new(key, "must not be empty")),
                    Some(s) => Ok(base_dir.join(s)),
                    None => Ok(base_dir.join(default)),
                }
            };
        let auth_login_socket =
            in_base(&file.auth.login_socket, "[auth] login_socket", "auth-login")?;
        let auth_userdb_socket = in_base(
            &file.auth.userdb_socket,
            "[auth] userdb_socket",
            "auth-userdb",
        )?;
        let ipc_socket = in_base(&file.auth.ipc_socket, "[auth] ipc_socket", "ipc")?;
        let anvil_socket = in_base(&file.auth.anvil_socket, "[auth] anvil_socket", "anvil")?;
        let dovecot_version = match file.dovecot.version.as_deref() {
            None => crate::kick::DovecotVersion::Auto,
            Some(v) => crate::kick::DovecotVersion::parse(v).ok_or_else(|| {
                ConfigError::new("[dovecot] version", "expected \"2.3\", \"2.4\" or \"auto\"")
            })?,
        };
        let listeners = listeners(&file.listeners, &base_dir)?;
        let ring = ring_config(&file.director, &director)?;
        Ok(Config {
            base_dir,
            director,
            auth_login_socket,
            auth_userdb_socket,
            ipc_socket,
            anvil_socket,
            dovecot_version,
            listeners,
            log_level: file.log.level.clone(),
            ring,
        })
    }

    /// `proxy_refresh` sent to login processes: half of `director_user_expire`, in seconds.
    pub fn proxy_refresh_secs(&self) -> u64 {
        self.director.user_expire.as_secs() / 2
    }

    /// The admin socket path, if an admin listener we create exists.
    pub fn admin_socket(&self) -> Option<&Path> {
        self.listeners
            .iter()
            .find_map(|l| match (&l.kind, &l.source) {
                (ConnKind::Admin, ListenerSource::Path { path, .. }) => Some(path.as_path()),
                _ => None,
            })
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

fn director_settings(d: &file::DirectorSection) -> Result<DirectorSettings, ConfigError> {
    let mut s = DirectorSettings::default();
    let key = |k: &str| format!("[director] {k}");
    if let Some(v) = &d.servers {
        s.servers = word_list(v, &key("servers"))?;
    }
    if let Some(v) = &d.mail_servers {
        s.mail_servers = word_list(v, &key("mail_servers"))?.join(" ");
    }
    glue::check_mail_servers(&s.mail_servers)
        .map_err(|e| ConfigError::new(key("mail_servers"), e))?;
    if let Some(v) = &d.username_hash {
        s.username_hash = v.clone();
    }
    glue::check_username_hash(&s.username_hash)
        .map_err(|e| ConfigError::new(key("username_hash"), e))?;
    let time = |v: &Option<toml::Value>, k: &str, dflt: Duration| match v {
        None => Ok(dflt),
        Some(v) => time_value(v).map_err(|e| ConfigError::new(key(k), e)),
    };
    s.user_expire = time(&d.user_expire, "user_expire", s.user_expire)?;
    if s.user_expire < Duration::from_secs(10) {
        return Err(ConfigError::new(
            key("user_expire"),
            "director_user_expire is too low",
        ));
    }
    s.user_kick_delay = time(&d.user_kick_delay, "user_kick_delay", s.user_kick_delay)?;
    s.ping_idle_timeout = time(
        &d.ping_idle_timeout,
        "ping_idle_timeout",
        s.ping_idle_timeout,
    )?;
    s.ping_max_timeout = time(&d.ping_max_timeout, "ping_max_timeout", s.ping_max_timeout)?;
    if let Some(v) = &d.flush_socket {
        s.flush_socket = v.clone();
    }
    if !s.flush_socket.is_empty() {
        crate::daemon::flush::validate(&s.flush_socket)
            .map_err(|e| ConfigError::new(key("flush_socket"), e))?;
    }
    if let Some(v) = &d.max_parallel_moves {
        s.max_parallel_moves =
            uint_value(v).map_err(|e| ConfigError::new(key("max_parallel_moves"), e))?;
    }
    if let Some(v) = &d.max_parallel_kicks {
        s.max_parallel_kicks =
            uint_value(v).map_err(|e| ConfigError::new(key("max_parallel_kicks"), e))?;
    }
    if let Some(v) = &d.output_buffer_size {
        s.output_buffer_size =
            size_value(v).map_err(|e| ConfigError::new(key("output_buffer_size"), e))?;
    }
    if let Some(v) = &d.master_user_separator {
        s.master_user_separator = v.clone();
    }
    Ok(s)
}

/// The ring settings: `None` when `servers` is empty (stand-alone, `listen` ignored).
fn ring_config(
    d: &file::DirectorSection,
    s: &DirectorSettings,
) -> Result<Option<RingConfig>, ConfigError> {
    if s.servers.is_empty() {
        return Ok(None);
    }
    let listen_key = "[director] listen";
    let (listen_ip, listen_v6_any, listen_port) = match &d.listen {
        None => return Err(ConfigError::new(listen_key, ring::NO_LISTENER)),
        Some(toml::Value::String(v)) => ring::parse_listen(v),
        Some(toml::Value::Integer(n)) => ring::parse_listen(&n.to_string()),
        Some(other) => Err(format!("expected \"IP:PORT\" or a port, not {other}")),
    }
    .map_err(|e| ConfigError::new(listen_key, e))?;
    let servers = ring::parse_servers(&s.servers, listen_port, &mut glue::resolve)
        .map_err(|e| ConfigError::new("[director] servers", e))?;
    Ok(Some(RingConfig {
        listen_ip,
        listen_v6_any,
        listen_port,
        servers,
    }))
}

/// A space-separated string (Dovecot) or an array of strings (TOML).
fn word_list(v: &toml::Value, key: &str) -> Result<Vec<String>, ConfigError> {
    match v {
        toml::Value::String(s) => Ok(s.split_whitespace().map(str::to_owned).collect()),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                toml::Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
                other => Err(ConfigError::new(
                    key,
                    format!("array items must be non-empty strings, not {other}"),
                )),
            })
            .collect(),
        other => Err(ConfigError::new(
            key,
            format!("expected a string or an array of strings, not {other}"),
        )),
    }
}

fn time_value(v: &toml::Value) -> Result<Duration, String> {
    match v {
        toml::Value::Integer(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
        toml::Value::Integer(n) => Err(format!("invalid time interval: {n}")),
        toml::Value::String(s) => glue::parse_time(s),
        other => Err(format!(
            "expected a time (\"15 min\") or integer seconds, not {other}"
        )),
    }
}

fn uint_value(v: &toml::Value) -> Result<u32, String> {
    match v {
        toml::Value::Integer(n) => u32::try_from(*n).map_err(|_| format!("invalid number: {n}")),
        toml::Value::String(s) => glue::parse_uint(s),
        other => Err(format!("expected an unsigned integer, not {other}")),
    }
}

fn size_value(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(n) => u64::try_from(*n).map_err(|_| format!("invalid size: {n}")),
        toml::Value::String(s) => glue::parse_size(s),
        other => Err(format!(
            "expected a size (\"10 M\") or integer bytes, not {other}"
        )),
    }
}

fn mode_value(v: &toml::Value) -> Result<u32, String> {
    let mode = match v {
        toml::Value::Integer(n) => u32::try_from(*n).map_err(|_| format!("invalid mode: {n}"))?,
        toml::Value::String(s) => u32::from_str_radix(s, 8)
            .map_err(|_| format!("invalid mode '{s}': expected octal digits like \"0666\""))?,
        other => {
            return Err(format!(
                "expected an octal string like \"0666\", not {other}"
            ))
        }
    };
    if mode > 0o7777 {
        return Err(format!("invalid mode {mode:o}: too large"));
    }
    Ok(mode)
}

fn listeners(
    overrides: &std::collections::BTreeMap<String, ListenerSection>,
    base_dir: &Path,
) -> Result<Vec<ListenerSpec>, ConfigError> {
    let mut out = Vec::new();
    let mut names: Vec<(String, u32, bool)> = DEFAULT_LISTENERS
        .iter()
        .map(|(n, m, f)| (n.to_string(), *m, *f))
        .collect();
    for name in overrides.keys() {
        if !names.iter().any(|(n, _, _)| n == name) {
            names.push((name.clone(), 0o600, false));
        }
    }
    for (name, default_mode, default_fifo) in names {
        let key = format!("[listeners.\"{name}\"]");
        if name.is_empty() || name.starts_with('/') || name.split('/').any(|c| c == "..") {
            return Err(ConfigError::new(
                key,
                "listener names are paths relative to base_dir",
            ));
        }
        let sec = overrides.get(&name);
        let mode = match sec.and_then(|s| s.mode.as_ref()) {
            Some(v) => mode_value(v).map_err(|e| ConfigError::new(format!("{key} mode"), e))?,
            None => default_mode,
        };
        let fifo = match sec.and_then(|s| s.kind_of_socket.as_deref()) {
            None => default_fifo,
            Some("unix") => false,
            Some("fifo") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    format!("{key} type"),
                    format!("unknown listener type '{other}' (expected \"unix\" or \"fifo\")"),
                ))
            }
        };
        let kind = match sec.and_then(|s| s.kind.as_deref()) {
            None if fifo => ConnKind::Notify,
            None => ConnKind::from_listener_name(&name),
            Some(k) => {
                let kind = ConnKind::parse(k).ok_or_else(|| {
                    ConfigError::new(
                        format!("{key} kind"),
                        format!(
                            "unknown listener kind '{k}' (expected auth, userdb, authreply, notify or admin)"
                        ),
                    )
                })?;
                if fifo && kind != ConnKind::Notify {
                    return Err(ConfigError::new(
                        format!("{key} kind"),
                        "a fifo listener can only be of kind notify",
                    ));
                }
                kind
            }
        };
        if mode == 0 {
            // Dovecot's convention: mode 0 disables the listener.
            continue;
        }
        out.push(ListenerSpec {
            name: name.clone(),
            kind,
            source: ListenerSource::Path {
                path: base_dir.join(&name),
                mode,
                fifo,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
