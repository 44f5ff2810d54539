//! Dovecot 2.4's per-process admin socket, `BASE/srv.<service>/<pid>` (`dovecot-2.4.md` §6.4).
//!
//! Mirrors `src/lib-master/master-admin-client.c` (tag 2.4.1): the client writes
//! [`CLIENT_HANDSHAKE`], the process answers `VERSION\tmaster-admin-server\t1\t0`, then each
//! command gets one reply line, `+<n>` or `-<error>` (parse it with
//! [`crate::ipc::IpcReply`]). The one command the director sends is `KICK-USER\t<user>\t<conn-guid>`,
//! the same line as anvil's (encode it with [`crate::anvil::AnvilRequest::KickUser`]). Unlike
//! anvil's kick, it ends the session in 2.4's default login mode too. No I/O.

use crate::error::ParseError;
use crate::field::version_string_verify;

/// `major_version` of `master_admin_conn_set`.
pub const MASTER_ADMIN_MAJOR_VERSION: u32 = 1;
/// What the client sends on connect.
pub const CLIENT_HANDSHAKE: &[u8] = b"VERSION\tmaster-admin-client\t1\t0\n";

/// Check the process's greeting `VERSION\tmaster-admin-server\t1\t<minor>`; returns the minor.
pub fn parse_server_greeting(line: &[u8]) -> Result<u32, ParseError> {
    version_string_verify(line, b"master-admin-server", MASTER_ADMIN_MAJOR_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anvil::AnvilRequest;
    use crate::field::Field;
    use crate::ipc::IpcReply;

    /// The exchange observed with a real 2.4.1 imap-login in its default mode.
    #[test]
    fn verified_kick_exchange() {
        assert_eq!(
            parse_server_greeting(b"VERSION\tmaster-admin-server\t1\t0"),
            Ok(0)
        );
        assert!(parse_server_greeting(b"VERSION\tanvil-server\t2\t0").is_err());
        assert!(parse_server_greeting(b"VERSION\tmaster-admin-server\t2\t0").is_err());
        let mut line = Vec::new();
        AnvilRequest::KickUser {
            user: Field::escaped(b"xuser1"),
            conn_guid: Some(Field::wire(b"dabb820a11550c6b7b52000083ecc375")),
        }
        .encode(&mut line);
        assert_eq!(
            line,
            b"KICK-USER\txuser1\tdabb820a11550c6b7b52000083ecc375\n"
        );
        assert_eq!(IpcReply::parse(b"+1").unwrap().kicked_count(), Some(1));
    }
}
