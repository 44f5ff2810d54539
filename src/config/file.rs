//! The TOML file as written by the operator, before validation (sozu's `FileConfig`).
//!
//! Every struct denies unknown fields and nothing is flattened (serde#1547), so a typo is an
//! error naming the key. Values that accept both Dovecot's own syntax and natural TOML forms
//! (`"15 min"` or `900`, `"a b"` or `["a", "b"]`) are kept as raw [`toml::Value`]s here and
//! interpreted by [`super::Config::from_file`], which can then name the key in its errors.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where sockets are created and `auth-login`/`auth-userdb`/`ipc` are looked for.
    pub base_dir: Option<String>,
    /// Every `director_*` Dovecot setting, without the prefix.
    #[serde(default)]
    pub director: DirectorSection,
    /// Upstream sockets.
    #[serde(default)]
    pub auth: AuthSection,
    /// Which Dovecot the login processes run.
    #[serde(default)]
    pub dovecot: DovecotSection,
    /// Listener overrides keyed by path relative to `base_dir` (`"login/director"`).
    #[serde(default)]
    pub listeners: BTreeMap<String, ListenerSection>,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
}

/// `[director]`: Dovecot's `director_*` settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorSection {
    /// `director_servers`: string or array of strings.
    pub servers: Option<toml::Value>,
    /// The ring listener (Dovecot's director `inet_listener`): `"IP:PORT"`, `"*:PORT"` or a
    /// port; only used when `servers` is not empty.
    pub listen: Option<toml::Value>,
    /// `director_mail_servers`: string or array of strings.
    pub mail_servers: Option<toml::Value>,
    /// `director_username_hash`.
    pub username_hash: Option<String>,
    /// `director_user_expire`: time string or integer seconds.
    pub user_expire: Option<toml::Value>,
    /// `director_user_kick_delay`: time.
    pub user_kick_delay: Option<toml::Value>,
    /// `director_flush_socket`.
    pub flush_socket: Option<String>,
    /// `director_ping_idle_timeout`: time.
    pub ping_idle_timeout: Option<toml::Value>,
    /// `director_ping_max_timeout`: time.
    pub ping_max_timeout: Option<toml::Value>,
    /// `director_max_parallel_moves`: integer or decimal string.
    pub max_parallel_moves: Option<toml::Value>,
    /// `director_max_parallel_kicks`: integer or decimal string.
    pub max_parallel_kicks: Option<toml::Value>,
    /// `director_output_buffer_size`: size string or integer bytes.
    pub output_buffer_size: Option<toml::Value>,
    /// `master_user_separator` (2.3.19) / `auth_master_user_separator` (2.3.20+).
    pub master_user_separator: Option<String>,
}

/// `[auth]`: the sockets we connect to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Upstream of `login/director` (default `<base_dir>/auth-login`).
    pub login_socket: Option<String>,
    /// Upstream of `director-userdb` (default `<base_dir>/auth-userdb`).
    pub userdb_socket: Option<String>,
    /// Dovecot's ipc service, for kicks (default `<base_dir>/ipc`).
    pub ipc_socket: Option<String>,
    /// Dovecot 2.4's anvil, for kicks (default `<base_dir>/anvil`).
    pub anvil_socket: Option<String>,
}

/// `[dovecot]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DovecotSection {
    /// `"2.3"` (kick through ipc), `"2.4"` (through anvil) or `"auto"` (default).
    pub version: Option<String>,
}

/// One `[listeners."<path>"]` table, like Dovecot's `unix_listener <path> { mode = ... }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    /// Permission bits: octal string (`"0666"`) or integer (`0o666`); 0 disables.
    pub mode: Option<toml::Value>,
    /// `"unix"` (default) or `"fifo"`.
    #[serde(rename = "type")]
    pub kind_of_socket: Option<String>,
    /// Connection kind; default derived from the name as Dovecot does.
    pub kind: Option<String>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// A `tracing` filter (`info`, `debug`, `director=debug`); `RUST_LOG` overrides it.
    pub level: Option<String>,
}
