//! The 2.4 configurations of the lab: backends that say who they are, and a proxy built from
//! the very fragments shipped in `contrib/dovecot-2.4/` (so those are what the tests prove).

use std::net::SocketAddr;
use std::path::Path;

use super::chroot::Chroot24;
use super::instance::Instance24;

/// The password every lab user has (static passdbs).
pub const PASSWORD: &str = "pass";

/// `contrib/dovecot-2.4/` fragments, in the order a site would include them.
pub const FRAGMENTS: [(&str, &str); 4] = [
    (
        "director-imap.conf",
        include_str!("../../../contrib/dovecot-2.4/director-imap.conf"),
    ),
    (
        "director-pop3.conf",
        include_str!("../../../contrib/dovecot-2.4/director-pop3.conf"),
    ),
    (
        "director-submission.conf",
        include_str!("../../../contrib/dovecot-2.4/director-submission.conf"),
    ),
    (
        "director-lmtp.conf",
        include_str!("../../../contrib/dovecot-2.4/director-lmtp.conf"),
    ),
];

/// The layout-B fragment; its placeholder directory is [`LAYOUT_B_DIR`].
pub const OUTSIDE_BASE_DIR: &str =
    include_str!("../../../contrib/dovecot-2.4/director-outside-base-dir.conf");
/// The directory `director-outside-base-dir.conf` names for directord's `base_dir`.
pub const LAYOUT_B_DIR: &str = "/run/directord";
/// `contrib/dovecot-2.4/directord-in-base-dir.toml` (layout A).
pub const DIRECTORD_IN_BASE_DIR: &str =
    include_str!("../../../contrib/dovecot-2.4/directord-in-base-dir.toml");
/// `contrib/dovecot-2.4/directord-outside-base-dir.toml` (layout B).
pub const DIRECTORD_OUTSIDE_BASE_DIR: &str =
    include_str!("../../../contrib/dovecot-2.4/directord-outside-base-dir.toml");
/// Dovecot's `base_dir` as the example TOMLs name it.
pub const EXAMPLE_DOVECOT_BASE: &str = "/run/dovecot";

/// Replaces each `(from, to)` in `text`; a `from` that does not occur is an error, so an
/// example that drifts away from what the lab substitutes fails loudly.
pub fn substitute(text: &str, pairs: &[(&str, String)]) -> Result<String, String> {
    let mut out = text.to_string();
    for (from, to) in pairs {
        if !out.contains(from) {
            return Err(format!("{from:?} not found in the example:\n{text}"));
        }
        out = out.replace(from, to);
    }
    Ok(out)
}

/// The example passdb fragment (its password is replaced by [`PASSWORD`]).
pub const PASSDB_EXAMPLE: &str = include_str!("../../../contrib/dovecot-2.4/passdb-example.conf");

/// A backend: static passdb/userdb, maildir homes in its directory. A client can tell which
/// backend it reached: IMAP `ID` answers `"x-dcompat-backend" "<name>"`, POP3 UIDLs start
/// with `<name>-`, submission's EHLO names `<name>.dcompat.test`.
/// `relay` is the SMTP server its submission service relays to (see [`super::smtp_relay`]).
pub fn backend(inst: &Instance24, chroot: &Chroot24, relay: SocketAddr) -> String {
    let name = inst.name();
    let r = inst.inner_root().display();
    format!(
        "{common}\
         hostname = {name}.dcompat.test\n\
         first_valid_uid = {uid}\n\
         mail_uid = {uid}\n\
         mail_gid = {gid}\n\
         mail_driver = maildir\n\
         mail_path = ~/Maildir\n\
         mail_home = {r}/home/%{{user}}\n\
         imap_id_send {{\n  x-dcompat-backend = {name}\n}}\n\
         pop3_uidl_format = {name}-%{{uid | hex(8)}}\n\
         submission_relay_host = {relay_ip}\n\
         submission_relay_port = {relay_port}\n\
         passdb static {{\n  password = {PASSWORD}\n}}\n\
         userdb static {{\n}}\n",
        common = inst.common_conf("imap pop3 lmtp submission"),
        uid = chroot.mail_uid,
        gid = chroot.mail_gid,
        relay_ip = relay.ip(),
        relay_port = relay.port(),
    )
}

/// How the proxy's login processes run (`dovecot-2.4.md` §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMode {
    /// The contrib fragments as shipped: `restart_request_count = unlimited` (one login
    /// process serves many clients; kicks through anvil work).
    Performance,
    /// 2.4's default (`restart_request_count = 1`): the fragments without that setting.
    /// Anvil acknowledges kicks but the login processes ignore them.
    Default,
}

/// The setting the contrib fragments use for [`LoginMode::Performance`].
pub const PERFORMANCE_SETTING: &str = "restart_request_count = unlimited";

/// The proxy: the contrib fragments (passdb example with our password, IMAP, POP3,
/// submission, LMTP), plus `director-outside-base-dir.conf` with `director_dir` (the
/// chroot's view of directord's `base_dir`) when given (layout B). `mode` Default drops
/// the fragments' [`PERFORMANCE_SETTING`].
pub fn proxy(inst: &Instance24, director_dir: Option<&Path>, mode: LoginMode) -> String {
    let mut conf = inst.common_conf("imap pop3 lmtp submission");
    conf.push_str("# contrib/dovecot-2.4/passdb-example.conf\n");
    conf.push_str(&PASSDB_EXAMPLE.replace("password = secret", &format!("password = {PASSWORD}")));
    for (name, text) in FRAGMENTS {
        let text = match mode {
            LoginMode::Performance => text.to_string(),
            LoginMode::Default => text.replace(PERFORMANCE_SETTING, "# (2.4 default mode)"),
        };
        conf.push_str(&format!("# contrib/dovecot-2.4/{name}\n{text}"));
    }
    if let Some(dir) = director_dir {
        conf.push_str("# contrib/dovecot-2.4/director-outside-base-dir.conf\n");
        conf.push_str(&OUTSIDE_BASE_DIR.replace(LAYOUT_B_DIR, &dir.display().to_string()));
    }
    conf
}
