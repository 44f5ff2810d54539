//! The configuration contract: every `[director]` key in both syntaxes (Dovecot's strings and
//! natural TOML), Dovecot's defaults (`settings.md` §1), unknown keys rejected everywhere,
//! `--check-config` exit codes and messages, every `contrib/` TOML file valid (and invalid
//! once an unknown key is injected), and the embedded default configuration starting.

mod daemon_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use daemon_support::*;
use director::config::Config;
use director::daemon::listener::{ConnKind, ListenerSource};
use director::kick::DovecotVersion;

fn parse(text: &str) -> Result<Config, String> {
    Config::from_toml(text, Path::new("/tmp/base")).map_err(|e| e.to_string())
}

const MS: &str = "mail_servers = \"10.0.0.1\"\n";

#[test]
fn every_director_key_in_both_syntaxes() {
    let dovecot = parse(
        "[director]\n\
         servers = \"\"\n\
         mail_servers = \"10.0.0.1-10.0.0.3 10.0.1.1@gold\"\n\
         username_hash = \"%Ln\"\n\
         user_expire = \"20 mins\"\n\
         user_kick_delay = \"3 secs\"\n\
         flush_socket = \"unix:flush-%i\"\n\
         ping_idle_timeout = \"1 min\"\n\
         ping_max_timeout = \"2 mins\"\n\
         max_parallel_moves = \"7\"\n\
         max_parallel_kicks = \"8\"\n\
         output_buffer_size = \"2 M\"\n\
         master_user_separator = \"*\"\n",
    )
    .unwrap();
    let toml = parse(
        "[director]\n\
         servers = []\n\
         mail_servers = [\"10.0.0.1-10.0.0.3\", \"10.0.1.1@gold\"]\n\
         username_hash = \"%Ln\"\n\
         user_expire = 1200\n\
         user_kick_delay = 3\n\
         flush_socket = \"unix:flush-%i\"\n\
         ping_idle_timeout = 60\n\
         ping_max_timeout = 120\n\
         max_parallel_moves = 7\n\
         max_parallel_kicks = 8\n\
         output_buffer_size = 2097152\n\
         master_user_separator = \"*\"\n",
    )
    .unwrap();
    assert_eq!(dovecot, toml);
    let d = &dovecot.director;
    assert!(d.servers.is_empty());
    assert_eq!(d.mail_servers, "10.0.0.1-10.0.0.3 10.0.1.1@gold");
    assert_eq!(d.username_hash, "%Ln");
    assert_eq!(d.user_expire, Duration::from_secs(1200));
    assert_eq!(d.user_kick_delay, Duration::from_secs(3));
    assert_eq!(d.ping_idle_timeout, Duration::from_secs(60));
    assert_eq!(d.ping_max_timeout, Duration::from_secs(120));
    assert_eq!((d.max_parallel_moves, d.max_parallel_kicks), (7, 8));
    assert_eq!(d.output_buffer_size, 2 << 20);
    assert_eq!(d.master_user_separator, "*");
    assert_eq!(dovecot.proxy_refresh_secs(), 600);
}

#[test]
fn dovecot_defaults() {
    let c = parse(&format!("[director]\n{MS}")).unwrap();
    let d = &c.director;
    assert_eq!(d.username_hash, "%Lu");
    assert_eq!(d.user_expire, Duration::from_secs(15 * 60));
    assert_eq!(d.user_kick_delay, Duration::from_secs(2));
    assert_eq!(d.ping_idle_timeout, Duration::from_secs(30));
    assert_eq!(d.ping_max_timeout, Duration::from_secs(60));
    assert_eq!((d.max_parallel_moves, d.max_parallel_kicks), (100, 100));
    assert_eq!(d.output_buffer_size, 10 << 20);
    assert_eq!(d.master_user_separator, "");
    assert_eq!(c.base_dir, Path::new("/tmp/base"));
    assert_eq!(c.auth_login_socket, Path::new("/tmp/base/auth-login"));
    assert_eq!(c.auth_userdb_socket, Path::new("/tmp/base/auth-userdb"));
    assert_eq!(c.ipc_socket, Path::new("/tmp/base/ipc"));
    assert_eq!(c.anvil_socket, Path::new("/tmp/base/anvil"));
    assert_eq!(c.dovecot_version, DovecotVersion::Auto);
    let modes: Vec<(String, ConnKind, u32, bool)> = c
        .listeners
        .iter()
        .map(|l| match &l.source {
            ListenerSource::Path { mode, fifo, .. } => (l.name.clone(), l.kind, *mode, *fifo),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        modes,
        [
            ("login/director".into(), ConnKind::Auth, 0o666, false),
            ("login/proxy-notify".into(), ConnKind::Notify, 0o666, true),
            ("director-userdb".into(), ConnKind::Userdb, 0o666, false),
            ("director-admin".into(), ConnKind::Admin, 0o600, false),
        ]
    );
}

#[test]
fn auth_paths_and_listeners_override() {
    let c = parse(&format!(
        "base_dir = \"/srv/d\"\n[director]\n{MS}[auth]\nlogin_socket = \"/run/dovecot/auth-login\"\n\
         userdb_socket = \"x/auth-userdb\"\n\
         [listeners.\"director-admin\"]\nmode = 0o660\n\
         [listeners.\"login/proxy-notify\"]\nmode = 0\n\
         [listeners.\"ext-authreply\"]\nmode = \"0666\"\n\
         [listeners.\"n\"]\ntype = \"fifo\"\nmode = \"0644\"\n"
    ))
    .unwrap();
    assert_eq!(c.auth_login_socket, Path::new("/run/dovecot/auth-login"));
    assert_eq!(c.auth_userdb_socket, Path::new("/srv/d/x/auth-userdb"));
    let find = |n: &str| c.listeners.iter().find(|l| l.name == n);
    assert!(find("login/proxy-notify").is_none());
    assert!(matches!(
        find("director-admin").unwrap().source,
        ListenerSource::Path { mode: 0o660, .. }
    ));
    assert_eq!(find("ext-authreply").unwrap().kind, ConnKind::AuthReply);
    assert_eq!(find("n").unwrap().kind, ConnKind::Notify);
}

#[test]
fn dovecot_version_and_flush_programs() {
    let c = parse(&format!(
        "[dovecot]\nversion = \"2.4\"\n[director]\n{MS}flush_socket = \"exec:/bin/true\"\n\
         [auth]\nanvil_socket = \"/run/dovecot/anvil\"\n"
    ))
    .unwrap();
    assert_eq!(c.dovecot_version, DovecotVersion::V2_4);
    assert_eq!(c.anvil_socket, Path::new("/run/dovecot/anvil"));
    assert_eq!(c.director.flush_socket, "exec:/bin/true");
    let c = parse(&format!("[dovecot]\nversion = \"2.3\"\n[director]\n{MS}")).unwrap();
    assert_eq!(c.dovecot_version, DovecotVersion::V2_3);
    let e = parse(&format!("[dovecot]\nversion = \"2.2\"\n[director]\n{MS}")).unwrap_err();
    assert!(e.starts_with("[dovecot] version: expected"), "{e}");
    let e = parse(&format!("[dovecot]\nvresion = \"2.3\"\n[director]\n{MS}")).unwrap_err();
    assert!(e.contains("vresion"), "{e}");
}

#[test]
fn bad_values_name_the_key() {
    let cases = [
        (
            "user_expire = \"9s\"",
            "[director] user_expire: director_user_expire is too low",
        ),
        (
            "user_expire = 5",
            "[director] user_expire: director_user_expire is too low",
        ),
        (
            "user_expire = \"15\"",
            "[director] user_expire: Time interval '15' is missing units",
        ),
        (
            "user_kick_delay = \"2 parsecs\"",
            "[director] user_kick_delay: Invalid time interval: 2 parsecs",
        ),
        (
            "ping_idle_timeout = true",
            "[director] ping_idle_timeout: expected a time",
        ),
        ("max_parallel_moves = -1", "[director] max_parallel_moves:"),
        (
            "max_parallel_kicks = \"x\"",
            "[director] max_parallel_kicks: Invalid number x",
        ),
        (
            "output_buffer_size = \"10 Q\"",
            "[director] output_buffer_size: Invalid size: 10 Q",
        ),
        ("username_hash = \"%x\"", "[director] username_hash:"),
        (
            "servers = \"10.0.0.1:9090\"",
            "[director] listen: No inet_listeners defined for director service",
        ),
        (
            "flush_socket = \"unix:%x\"",
            "[director] flush_socket: unknown variable %x",
        ),
        (
            "flush_socket = \"flush\"",
            "[director] flush_socket: Unsupported program client scheme 'flush'",
        ),
    ];
    for (line, want) in cases {
        let e = parse(&format!("[director]\n{MS}{line}\n")).unwrap_err();
        assert!(e.starts_with(want), "{line}: got {e:?}, want {want:?}");
    }
    let e = parse("[director]\nmail_servers = \"10.0.0.250-10.0.1.2\"\n").unwrap_err();
    assert_eq!(
        e,
        "[director] mail_servers: Invalid value for director_mail_servers setting: \
         IP address range too large: 10.0.0.250-10.0.1.2; No valid servers specified"
    );
    let e = parse("[director]\n").unwrap_err();
    assert!(e.starts_with("[director] mail_servers: Invalid value for director_mail_servers setting: Empty server list"), "{e}");
    let e = parse(&format!(
        "[director]\n{MS}[listeners.\"x\"]\ntype = \"tcp\"\n"
    ))
    .unwrap_err();
    assert!(e.starts_with("[listeners.\"x\"] type:"), "{e}");
    let e = parse(&format!(
        "[director]\n{MS}[listeners.\"x\"]\nkind = \"ring\"\n"
    ))
    .unwrap_err();
    assert!(e.starts_with("[listeners.\"x\"] kind:"), "{e}");
}

#[test]
fn unknown_keys_are_rejected_everywhere() {
    for text in [
        format!("basedir = \"/x\"\n[director]\n{MS}"),
        format!("[director]\n{MS}user_expiry = 20\n"),
        format!("[director]\n{MS}[auth]\nlogin = \"x\"\n"),
        format!("[director]\n{MS}[listeners.\"director-admin\"]\nperms = \"0600\"\n"),
        format!("[director]\n{MS}[log]\nlvl = \"debug\"\n"),
        format!("[director]\n{MS}[ring]\n"),
    ] {
        let e = parse(&text).unwrap_err();
        assert!(e.contains("unknown field"), "{text}: {e}");
    }
}

#[test]
fn contrib_configs_parse_and_reject_an_injected_unknown_key() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let bad = text.replacen("[director]", "[director]\nno_such_key = 1", 1);
        assert!(parse(&bad).is_err(), "{}", path.display());
        n += 1;
    }
    assert!(
        n >= 2,
        "expected the default and an example config in contrib/"
    );
}

fn directord() -> Command {
    Command::new(env!("CARGO_BIN_EXE_directord"))
}

#[test]
fn check_config_exit_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, format!("[director]\n{MS}")).unwrap();
    let out = directord()
        .args(["--check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, format!("[director]\n{MS}user_expire = \"9s\"\n")).unwrap();
    let out = directord()
        .args(["--check-config", "-c"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[director] user_expire: director_user_expire is too low"),
        "{err}"
    );

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, format!("[director]\n{MS}bogus_key = 1\n")).unwrap();
    let out = directord()
        .args(["--check-config", "-c"])
        .arg(&unknown)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus_key"));

    let out = directord()
        .args(["--check-config", "-c", "/nonexistent/directord.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));

    // No --config: the embedded default is valid.
    let out = directord().arg("--check-config").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    // Running with a bad config exits before creating any socket.
    let out = directord().arg("-c").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn embedded_default_starts_and_answers_doveadm() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = directord();
    cmd.env("XDG_RUNTIME_DIR", dir.path());
    let base = dir.path().join("directord");
    let mut d = Daemon::spawn(cmd, tempfile::tempdir().unwrap(), base.clone());
    let mut a = Admin::connect(&base.join("director-admin"));
    assert_eq!(
        a.list("HOST-LIST"),
        "127.0.1.1\t100\t0\t\tU\t0\n127.0.1.2\t100\t0\t\tU\t0\n127.0.1.3\t100\t0\t\tU\t0\n\n"
    );
    for s in [
        "login/director",
        "login/proxy-notify",
        "director-userdb",
        "director-admin",
    ] {
        assert!(base.join(s).exists(), "{s}");
    }
    drop(a);
    assert!(d.stop().success());
    // Our sockets are removed at shutdown.
    for s in [
        "login/director",
        "login/proxy-notify",
        "director-userdb",
        "director-admin",
    ] {
        assert!(!base.join(s).exists(), "{s} left behind");
    }
}

#[test]
fn stale_sockets_are_replaced_and_live_ones_refused() {
    let d = Daemon::start(&format!("[director]\n{MS}"));
    // A second daemon on the same base_dir must not steal the live sockets.
    let conf = d.dir.path().join("directord.toml");
    let out = directord().arg("-c").arg(&conf).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use"),
        "{out:?}"
    );
    let mut a = d.admin();
    assert_eq!(
        a.list("DIRECTOR-LIST"),
        "127.0.0.1\t0\tself\t0\tring synced\t0\n\n"
    );
}
