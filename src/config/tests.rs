//! Unit tests of config validation (integration tests live in `tests/daemon_config.rs`).

use super::*;

fn cfg(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("/tmp/director-test"))
}

const MIN: &str = "[director]\nmail_servers = \"10.0.0.1\"\n";

#[test]
fn defaults_are_dovecots() {
    let c = cfg(MIN).unwrap();
    assert_eq!(c.director.user_expire, Duration::from_secs(900));
    assert_eq!(c.director.user_kick_delay, Duration::from_secs(2));
    assert_eq!(c.director.username_hash, "%Lu");
    assert_eq!(c.director.max_parallel_moves, 100);
    assert_eq!(c.director.output_buffer_size, 10 << 20);
    assert_eq!(c.base_dir, PathBuf::from("/tmp/director-test"));
    assert_eq!(
        c.auth_login_socket,
        PathBuf::from("/tmp/director-test/auth-login")
    );
    assert_eq!(c.listeners.len(), 4);
    assert_eq!(c.proxy_refresh_secs(), 450);
}

#[test]
fn listener_mode_zero_disables_and_kind_follows_name() {
    let c = cfg(&format!(
        "{MIN}[listeners.\"login/director\"]\nmode = 0\n[listeners.\"foo-authreply\"]\nmode = \"0660\"\n"
    ))
    .unwrap();
    assert!(!c.listeners.iter().any(|l| l.name == "login/director"));
    let ar = c
        .listeners
        .iter()
        .find(|l| l.name == "foo-authreply")
        .unwrap();
    assert_eq!(ar.kind, ConnKind::AuthReply);
    assert!(matches!(
        ar.source,
        ListenerSource::Path { mode: 0o660, .. }
    ));
}

#[test]
fn errors_name_the_key() {
    let e = cfg("[director]\nmail_servers = \"10.0.0.1\"\nuser_expire = \"9s\"\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "[director] user_expire: director_user_expire is too low"
    );
    let e = cfg("[director]\nmail_servers = \"10.0.0.1\"\nuser_expire = \"15\"\n").unwrap_err();
    assert_eq!(e.key, "[director] user_expire");
    let e = cfg("[director]\nmail_servers = \"10.0.0.1\"\nbogus = 1\n").unwrap_err();
    assert!(e.to_string().contains("bogus"), "{e}");
    let e = cfg(&format!("{MIN}[listeners.\"x\"]\nmode = \"9\"\n")).unwrap_err();
    assert_eq!(e.key, "[listeners.\"x\"] mode");
}
