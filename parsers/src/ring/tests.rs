//! Ring parser behaviour tables: parse contexts, the error cases of ring-protocol.md §2,
//! logging helpers and the per-command minimum minor version.

use std::net::IpAddr;

use super::*;
use crate::error::ParseErrorKind as K;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn o(s: &str, port: u16, seq: u32) -> Origin {
    Origin {
        ip: ip(s),
        port,
        seq,
    }
}

fn v(s: &[u8]) -> Vec<u8> {
    s.to_vec()
}

fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

#[test]
fn context_decides_ambiguous_lines() {
    let line = b"USER\t1\t10.0.0.1\t5\tw";
    assert!(matches!(
        Command::parse(line),
        Ok(Command::User {
            timestamp: Some(5),
            ..
        })
    ));
    assert!(matches!(
        Command::parse_in(line, Context::LegacyHandshakeUsers),
        Ok(Command::LegacyHandshakeUser(HandshakeUser {
            weak: true,
            ..
        }))
    ));
    // two fields: a ring USER even in the legacy handshake
    assert!(matches!(
        Command::parse_in(b"USER\t1\t10.0.0.1", Context::LegacyHandshakeUsers),
        Ok(Command::User {
            timestamp: None,
            ..
        })
    ));
    // a handshake HOST line read as a ring HOST: "100" is a port, "" is no seq
    let e = Command::parse(b"HOST\t10.0.0.1\t100\t\tU0\t").unwrap_err();
    assert_eq!((e.kind, e.field), (K::BadNumber, 3));
    // a handshake user's weak flag is read like Dovecot: 4th field starting with 'w'
    let c = Command::parse(b"U\t1\t10.0.0.1\t5\twx").unwrap();
    let Command::HandshakeUser(u) = &c else {
        panic!("{c:?}")
    };
    assert!(u.weak && u.extra.len() == 1 && u.extra[0].as_bytes() == b"wx");
    assert_eq!(c.to_line(), b"U\t1\t10.0.0.1\t5\twx\n");
    let c = Command::parse(b"U\t1\t10.0.0.1\t5\t\tw").unwrap();
    assert!(matches!(
        &c,
        Command::HandshakeUser(HandshakeUser { weak: false, .. })
    ));
    assert_eq!(c.to_line(), b"U\t1\t10.0.0.1\t5\t\tw\n");
}

#[test]
fn errors() {
    use Context::{HostList, Ring};
    let cases: &[(&[u8], Context, K, usize)] = &[
        (b"", Ring, K::Empty, 0),
        (b"FOO\t1", Ring, K::UnknownCommand, 0),
        (b"\t", Ring, K::UnknownCommand, 0),
        (b"DONE\r", Ring, K::UnknownCommand, 0),
        (b"VERSION\tdirector-doveadm\t1\t0", Ring, K::BadHandshake, 1),
        (b"VERSION\tdirector\t2\t0", Ring, K::BadHandshake, 2),
        (b"VERSION\tdirector\t1", Ring, K::BadArgCount, 3),
        (b"VERSION\tdirector\t1\t-1", Ring, K::BadNumber, 3),
        (b"ME\thost.example\t9090", Ring, K::BadIp, 1),
        (b"ME\t127.0.0.1\t65536", Ring, K::BadPort, 2),
        (b"ME\t127.0.0.1\t0", Ring, K::BadPort, 2),
        (b"ME\t127.0.0.1", Ring, K::BadArgCount, 2),
        (b"ME\t127.0.0.1\t9090\tsoon", Ring, K::BadNumber, 3),
        (b"DIRECTOR\t127.0.0.1", Ring, K::BadArgCount, 2),
        (b"HOST-HAND-START", Ring, K::BadArgCount, 1),
        (b"HOST-HAND-START\tyes", Ring, K::BadNumber, 1),
        (b"CONNECT\t10.0.0.1\t9090\tx", Ring, K::BadArgCount, 3),
        (b"CONNECT\t10.0.0.1", Ring, K::BadArgCount, 2),
        (b"USER-WEAK\t127.0.0.1\t9090\t1\t5", Ring, K::BadArgCount, 5),
        (
            b"USER-WEAK\t127.0.0.1\t9090\t1\t5\t10.0.0.1\t",
            Ring,
            K::BadArgCount,
            6,
        ),
        (
            b"USER-MOVE\t127.0.0.1\t9090\t1\t5\t10.0.0.1\tx",
            Ring,
            K::BadArgCount,
            6,
        ),
        (
            b"USER-KICK-ALT\t127.0.0.1\t9090\t1\tf",
            Ring,
            K::BadArgCount,
            5,
        ),
        (
            b"USER-KICK-HASH\t127.0.0.1\t9090\t1\t5",
            Ring,
            K::BadArgCount,
            5,
        ),
        (
            b"USER-KICK-HASH\t127.0.0.1\t9090\t1\t5\tnowhere",
            Ring,
            K::BadIp,
            5,
        ),
        (
            b"HOST-REMOVE\t127.0.0.1\t9090\t1\t10.0.0.1\tx",
            Ring,
            K::BadArgCount,
            5,
        ),
        (b"HOST-FLUSH\t127.0.0.2\t9090\t12", Ring, K::BadArgCount, 4),
        (
            b"USER-KICK\t127.0.0.1\t9090\t1\ta\tb",
            Ring,
            K::BadArgCount,
            5,
        ),
        (b"USER-KICK\t127.0.0.1\t9090\t1", Ring, K::BadArgCount, 4),
        (
            b"USER-KILLED-EVERYWHERE\t127.0.0.1\t9090\t9\t1\t2",
            Ring,
            K::BadArgCount,
            5,
        ),
        (b"USER-KILLED\t1\t2", Ring, K::BadArgCount, 2),
        (b"USER-KILLED", Ring, K::BadArgCount, 1),
        (b"USER-KILLED\t4294967296", Ring, K::BadNumber, 1),
        (b"USER-KILLED\t+1", Ring, K::BadNumber, 1),
        (b"USER-MOVE\t127.0.0.1\t9090", Ring, K::BadArgCount, 3),
        (
            b"USER-MOVE\t127.0.0.1\t9090\tx\t5\t10.0.0.1",
            Ring,
            K::BadNumber,
            3,
        ),
        (
            b"HOST\t127.0.0.1\t9090\t2\t10.0.0.1\t100\t\tX0\t",
            Ring,
            K::BadValue,
            7,
        ),
        (
            b"HOST\t127.0.0.1\t9090\t2\t10.0.0.1\t100\t\t\t",
            Ring,
            K::BadValue,
            7,
        ),
        (
            b"HOST\t127.0.0.1\t9090\t2\t10.0.0.1\t100\t\tU\t",
            Ring,
            K::BadNumber,
            7,
        ),
        (
            b"HOST\t127.0.0.1\t9090\t2\t10.0.0.1\t100\t\tU-1\t",
            Ring,
            K::BadNumber,
            7,
        ),
        (
            b"HOST\t127.0.0.1\t9090\t2\t10.0.0.1",
            Ring,
            K::BadArgCount,
            5,
        ),
        (b"HOST\t10.0.0.1", HostList, K::BadArgCount, 2),
        (b"HOST\t10.0.0.1\tmany", HostList, K::BadNumber, 2),
        (b"USER\t4294967296\t10.0.0.1", Ring, K::BadNumber, 1),
        (b"USER\t1\t10.0.0.1\t-5", Ring, K::BadNumber, 3),
        (b"USER\t1", Ring, K::BadArgCount, 2),
        (b"U\t1\t10.0.0.1", Ring, K::BadArgCount, 3),
        (b"U\t1\t10.0.0.1\t4294967296", Ring, K::BadNumber, 3),
        (b"SYNC\t127.0.0.1\t0\t1", Ring, K::BadPort, 2),
        (b"SYNC\t127.0.0.1\t9090\t1\tx", Ring, K::BadNumber, 4),
        (
            b"SYNC\t127.0.0.1\t9090\t1\t9\t4294967296",
            Ring,
            K::BadNumber,
            5,
        ),
        (b"SYNC\t127.0.0.1\t9090", Ring, K::BadArgCount, 3),
    ];
    for &(line, ctx, kind, field) in cases {
        let e = Command::parse_in(line, ctx).expect_err(&show(line));
        assert_eq!((e.kind, e.field), (kind, field), "{}", show(line));
    }
    // a ring USER's timestamp is a time_t, wider than a handshake user's
    assert!(Command::parse(b"USER\t1\t10.0.0.1\t4294967296").is_ok());
}

#[test]
fn command_name_for_logging() {
    assert_eq!(&*command_name(b"FOO\tbar"), b"FOO");
    assert_eq!(&*command_name(b"QUIT"), b"QUIT");
    assert_eq!(&*command_name(b"A\x01tB\tx"), b"A\tB");
}

#[test]
fn quit_reason_as_dovecot_logs_it() {
    assert_eq!(
        Command::quit_reason_text(b"Invalid input: FOO\tbar"),
        b"Invalid input: FOO bar"
    );
    assert_eq!(Command::quit_reason_text(b"a\x01tb"), b"a\tb");
    // a reason is one line: an LF cannot be sent
    let q = Command::Quit {
        reason: Some(v(b"x\ny")),
    };
    assert_eq!(q.to_line(), b"QUIT\tx y\n");
}

#[test]
fn origin_prefix_reads_only_the_triple() {
    let o1 = origin_prefix(b"HOST-REMOVE\t127.0.0.1\t9090\t7\tgarbage\tmore")
        .unwrap()
        .unwrap();
    assert_eq!(o1, o("127.0.0.1", 9090, 7));
    assert!(origin_prefix(b"USER-KILLED\t1").is_none());
    assert!(origin_prefix(b"").is_none());
    let e = origin_prefix(b"USER-KICK\t127.0.0.1\t9090")
        .unwrap()
        .unwrap_err();
    assert_eq!((e.kind, e.field), (K::BadArgCount, 3));
}

#[test]
fn min_minor_per_spec_table() {
    let cases: &[(&[u8], Context, u32)] = &[
        (b"VERSION\tdirector\t1\t9", Context::Ring, 0),
        (b"DIRECTOR\t127.0.0.1\t9090", Context::Ring, 0),
        (
            b"DIRECTOR-REMOVE\t127.0.0.4\t9090",
            Context::Ring,
            DIRECTOR_VERSION_RING_REMOVE,
        ),
        (b"QUIT\tShutting down", Context::Ring, DIRECTOR_VERSION_QUIT),
        (b"USER-KICK\t127.0.0.2\t9090\t10\tcap03", Context::Ring, 4),
        (
            b"USER-KICK-HASH\t127.0.0.1\t9090\t4\t1\t10.0.0.1",
            Context::Ring,
            4,
        ),
        (
            b"USER-KICK-ALT\t127.0.0.2\t9090\t11\tdirector_tag\tfoo",
            Context::Ring,
            8,
        ),
        (b"OPTIONS\tconsistent-hashing", Context::Ring, 5),
        (b"U\t1\t10.0.0.2\t5", Context::Ring, 9),
        (b"USER\t1\t10.0.0.2\t5", Context::Ring, 9),
        (b"USER\t1\t10.0.0.2", Context::Ring, 0),
        (b"SYNC\t127.0.0.1\t9090\t3", Context::Ring, 0),
        (b"SYNC\t127.0.0.1\t9090\t3\t9\t5\t1", Context::Ring, 1),
        (b"HOST\t10.0.0.1\t100", Context::HostList, 0),
        (b"HOST\t10.0.0.1\t100\t\tU0\t", Context::HostList, 6),
        (
            b"HOST\t127.0.0.2\t9090\t2\t127.0.1.5\t100\ttagA\tU0\t",
            Context::Ring,
            7,
        ),
        (
            b"USER-WEAK\t127.0.0.1\t9090\t3\t1\t10.0.0.2",
            Context::Ring,
            0,
        ),
        (b"PING\t1\t0", Context::Ring, 0),
    ];
    for &(line, ctx, want) in cases {
        assert_eq!(
            Command::parse_in(line, ctx).unwrap().min_minor(),
            want,
            "{}",
            show(line)
        );
    }
}
