//! Known-answer tables: every example line of ring-protocol.md, lines from the lab captures
//! of real 2.3.19.1 directors for the commands the spec only gives as templates, and the
//! error cases of §2.

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

fn stats(time: u64, buffered: u64) -> Pulse {
    Pulse::Stats {
        time,
        buffered,
        extra: vec![],
    }
}

fn hs_host(addr: &str, vhosts: u32, down: bool, ts: u64) -> Command {
    Command::HandshakeHost(HostInfo::full(ip(addr), vhosts, b"", down, ts, b""))
}

fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// Lines whose re-encoding must be byte-identical (what real directors send).
fn exact_cases() -> Vec<(&'static [u8], Context, Command)> {
    use Context::{HostList, LegacyHandshakeUsers as Legacy, Ring};
    vec![
        // ring-protocol.md §4.2, §12
        (
            b"VERSION\tdirector\t1\t9",
            Ring,
            Command::Version {
                minor: 9,
                extra: vec![],
            },
        ),
        (
            b"ME\t127.0.0.1\t9090\t1795953368",
            Ring,
            Command::Me {
                ip: ip("127.0.0.1"),
                port: 9090,
                timestamp: Some(1795953368),
                extra: vec![],
            },
        ),
        (
            b"ME\t127.0.0.2\t9090\t1795953368",
            Ring,
            Command::Me {
                ip: ip("127.0.0.2"),
                port: 9090,
                timestamp: Some(1795953368),
                extra: vec![],
            },
        ),
        (
            b"DIRECTOR\t127.0.0.1\t9090",
            Ring,
            Command::Director {
                ip: ip("127.0.0.1"),
                port: 9090,
                extra: vec![],
            },
        ),
        (
            b"DIRECTOR\t127.0.0.2\t9090",
            Ring,
            Command::Director {
                ip: ip("127.0.0.2"),
                port: 9090,
                extra: vec![],
            },
        ),
        (
            b"HOST-HAND-START\t0",
            Ring,
            Command::HostHandStart {
                handshaked: false,
                extra: vec![],
            },
        ),
        (
            b"HOST-HAND-START\t1",
            Ring,
            Command::HostHandStart {
                handshaked: true,
                extra: vec![],
            },
        ),
        (
            b"HOST\t10.0.0.1\t100\t\tU0\t",
            HostList,
            hs_host("10.0.0.1", 100, false, 0),
        ),
        (
            b"HOST\t10.0.0.2\t100\t\tU0\t",
            HostList,
            hs_host("10.0.0.2", 100, false, 0),
        ),
        (b"HOST-HAND-END\t0", HostList, Command::host_hand_end(false)),
        (b"HOST-HAND-END\t1", HostList, Command::host_hand_end(true)),
        (
            b"U\t617210206\t10.0.0.2\t1795953363",
            Ring,
            Command::HandshakeUser(HandshakeUser {
                hash: 617210206,
                ip: ip("10.0.0.2"),
                timestamp: 1795953363,
                weak: false,
                extra: vec![],
            }),
        ),
        (b"OPTIONS\tconsistent-hashing", Ring, Command::options_2_3()),
        (b"DONE", Ring, Command::Done { extra: vec![] }),
        (
            b"SYNC\t127.0.0.2\t9090\t5\t9\t1795953368\t697653630",
            Ring,
            Command::Sync(Sync::full(
                o("127.0.0.2", 9090, 5),
                9,
                1795953368,
                697653630,
            )),
        ),
        (
            b"SYNC\t127.0.0.2\t9090\t6\t9\t1795953368\t697653630",
            Ring,
            Command::Sync(Sync::full(
                o("127.0.0.2", 9090, 6),
                9,
                1795953368,
                697653630,
            )),
        ),
        (
            b"SYNC\t127.0.0.1\t9090\t24\t9\t1795953378\t2281556207",
            Ring,
            Command::Sync(Sync::full(
                o("127.0.0.1", 9090, 24),
                9,
                1795953378,
                2281556207,
            )),
        ),
        (
            b"PING\t1795953368\t5",
            Ring,
            Command::Ping(stats(1795953368, 5)),
        ),
        (
            b"PING\t1795953378\t64",
            Ring,
            Command::Ping(stats(1795953378, 64)),
        ),
        (
            b"PONG\t1795953368\t0",
            Ring,
            Command::Pong(stats(1795953368, 0)),
        ),
        (
            b"PONG\t1795953368\t110",
            Ring,
            Command::Pong(stats(1795953368, 110)),
        ),
        (
            b"HOST\t127.0.0.1\t9090\t2\t10.0.0.1\t100\t\tD1795953378\t",
            Ring,
            Command::Host {
                origin: o("127.0.0.1", 9090, 2),
                host: HostInfo::full(ip("10.0.0.1"), 100, b"", true, 1795953378, b""),
            },
        ),
        (
            b"QUIT\tShutting down",
            Ring,
            Command::Quit {
                reason: Some(v(b"Shutting down")),
            },
        ),
        // lab transcripts (real 2.3.19.1 traffic) for the template-only commands
        (
            b"HOST\t127.0.0.2\t9090\t2\t127.0.1.5\t100\ttagA\tU0\t",
            Ring,
            Command::Host {
                origin: o("127.0.0.2", 9090, 2),
                host: HostInfo::full(ip("127.0.1.5"), 100, b"tagA", false, 0, b""),
            },
        ),
        (
            b"HOST-REMOVE\t127.0.0.2\t9090\t7\t127.0.1.5",
            Ring,
            Command::HostRemove {
                origin: o("127.0.0.2", 9090, 7),
                ip: ip("127.0.1.5"),
            },
        ),
        (
            b"HOST-FLUSH\t127.0.0.2\t9090\t12\t127.0.1.3",
            Ring,
            Command::HostFlush {
                origin: o("127.0.0.2", 9090, 12),
                ip: ip("127.0.1.3"),
            },
        ),
        (
            b"DIRECTOR-REMOVE\t127.0.0.4\t9090",
            Ring,
            Command::DirectorRemove {
                ip: ip("127.0.0.4"),
                port: 9090,
                extra: vec![],
            },
        ),
        (
            b"USER\t1180792497\t127.0.1.2\t1795955871",
            Ring,
            Command::User {
                hash: 1180792497,
                ip: ip("127.0.1.2"),
                timestamp: Some(1795955871),
                extra: vec![],
            },
        ),
        (
            b"USER-MOVE\t127.0.0.2\t9090\t8\t1180792497\t127.0.1.3",
            Ring,
            Command::UserMove {
                origin: o("127.0.0.2", 9090, 8),
                hash: 1180792497,
                ip: ip("127.0.1.3"),
            },
        ),
        (
            b"USER-KILLED\t1180792497",
            Ring,
            Command::UserKilled { hash: 1180792497 },
        ),
        (
            b"USER-KILLED-EVERYWHERE\t127.0.0.2\t9090\t9\t1180792497",
            Ring,
            Command::UserKilledEverywhere {
                origin: o("127.0.0.2", 9090, 9),
                hash: 1180792497,
            },
        ),
        (
            b"USER-KICK\t127.0.0.2\t9090\t10\tcap03",
            Ring,
            Command::UserKick {
                origin: o("127.0.0.2", 9090, 10),
                username: v(b"cap03"),
            },
        ),
        (
            b"USER-KICK-ALT\t127.0.0.2\t9090\t11\tdirector_tag\tfoo",
            Ring,
            Command::UserKickAlt {
                origin: o("127.0.0.2", 9090, 11),
                field: v(b"director_tag"),
                value: v(b"foo"),
            },
        ),
        (
            b"QUIT\tInvalid input: QUIT",
            Ring,
            Command::Quit {
                reason: Some(v(b"Invalid input: QUIT")),
            },
        ),
        // template forms of §5.3 instantiated the way director.c prints them
        (
            b"USER-WEAK\t127.0.0.1\t9090\t3\t617210206\t10.0.0.2",
            Ring,
            Command::UserWeak {
                origin: o("127.0.0.1", 9090, 3),
                hash: 617210206,
                ip: ip("10.0.0.2"),
            },
        ),
        (
            b"USER-KICK-HASH\t127.0.0.1\t9090\t4\t617210206\t10.0.0.1",
            Ring,
            Command::UserKickHash {
                origin: o("127.0.0.1", 9090, 4),
                hash: 617210206,
                except_ip: ip("10.0.0.1"),
            },
        ),
        (
            b"CONNECT\t127.0.0.3\t9090",
            Ring,
            Command::Connect {
                ip: ip("127.0.0.3"),
                port: 9090,
            },
        ),
        (
            b"USER\t617210206\t10.0.0.2",
            Ring,
            Command::User {
                hash: 617210206,
                ip: ip("10.0.0.2"),
                timestamp: None,
                extra: vec![],
            },
        ),
        (
            b"SYNC\t127.0.0.1\t9090\t3",
            Ring,
            Command::Sync(Sync {
                origin: o("127.0.0.1", 9090, 3),
                minor: None,
                timestamp: None,
                hosts_hash: None,
                extra: vec![],
            }),
        ),
        (
            b"U\t617210206\t10.0.0.2\t1795953363\tw",
            Ring,
            Command::HandshakeUser(HandshakeUser {
                hash: 617210206,
                ip: ip("10.0.0.2"),
                timestamp: 1795953363,
                weak: true,
                extra: vec![],
            }),
        ),
        (
            b"USER\t617210206\t10.0.0.2\t1795953363\tw",
            Legacy,
            Command::LegacyHandshakeUser(HandshakeUser {
                hash: 617210206,
                ip: ip("10.0.0.2"),
                timestamp: 1795953363,
                weak: true,
                extra: vec![],
            }),
        ),
        // older senders: HOST without up/down (minor 5) or without tag (minor < 5)
        (
            b"HOST\t10.0.0.1\t100",
            HostList,
            Command::HandshakeHost(HostInfo {
                ip: ip("10.0.0.1"),
                vhost_count: 100,
                tag: None,
                updown: None,
                hostname: None,
                extra: vec![],
            }),
        ),
        (
            b"HOST\t127.0.0.1\t9090\t5\t10.0.0.1\t0\tt1",
            Ring,
            Command::Host {
                origin: o("127.0.0.1", 9090, 5),
                host: HostInfo {
                    ip: ip("10.0.0.1"),
                    vhost_count: 0,
                    tag: Some(v(b"t1")),
                    updown: None,
                    hostname: None,
                    extra: vec![],
                },
            },
        ),
        // free-text fields are escaped by the sender
        (
            b"USER-KICK\t127.0.0.1\t9090\t6\tbad\x01tuser\x01n",
            Ring,
            Command::UserKick {
                origin: o("127.0.0.1", 9090, 6),
                username: v(b"bad\tuser\n"),
            },
        ),
        (
            b"USER-KICK-ALT\t127.0.0.1\t9090\t7\tf\x011\tv\x010",
            Ring,
            Command::UserKickAlt {
                origin: o("127.0.0.1", 9090, 7),
                field: v(b"f\x01"),
                value: v(b"v\0"),
            },
        ),
        (
            b"HOST\t10.0.0.9\t5\tt\x01ta\tD7\tmail\x01r.example",
            HostList,
            Command::HandshakeHost(HostInfo::full(
                ip("10.0.0.9"),
                5,
                b"t\ta",
                true,
                7,
                b"mail\r.example",
            )),
        ),
        // ignored extra fields survive re-encoding
        (
            b"DIRECTOR\t127.0.0.1\t9090\tx\t",
            Ring,
            Command::Director {
                ip: ip("127.0.0.1"),
                port: 9090,
                extra: vec![v(b"x"), v(b"")],
            },
        ),
        (
            b"VERSION\tdirector\t1\t10\tfuture",
            Ring,
            Command::Version {
                minor: 10,
                extra: vec![v(b"future")],
            },
        ),
        (
            b"DONE\tx\x01y",
            Ring,
            Command::Done {
                extra: vec![v(b"x\x01y")],
            },
        ),
        // lenient PING/PONG, QUIT reason with TABs
        (b"PING", Ring, Command::Ping(Pulse::Raw(vec![]))),
        (
            b"PONG\tabc\t5",
            Ring,
            Command::Pong(Pulse::Raw(vec![v(b"abc"), v(b"5")])),
        ),
        (b"QUIT", Ring, Command::Quit { reason: None }),
        (
            b"QUIT\tInvalid input: FOO\tbar",
            Ring,
            Command::Quit {
                reason: Some(v(b"Invalid input: FOO\tbar")),
            },
        ),
        (
            b"HOST-HAND-END",
            HostList,
            Command::HostHandEnd { args: vec![] },
        ),
    ]
}

#[test]
fn known_answers_parse_and_reencode_exactly() {
    for (line, ctx, want) in exact_cases() {
        let got = Command::parse_in(line, ctx)
            .unwrap_or_else(|e| panic!("parse {} ({ctx:?}): {e}", show(line)));
        assert_eq!(got, want, "parse {}", show(line));
        let mut enc = line.to_vec();
        enc.push(b'\n');
        assert_eq!(show(&want.to_line()), show(&enc), "encode {want:?}");
    }
}

/// Accepted input forms that re-encode canonically (as a real director would print them).
#[test]
fn canonicalising_cases() {
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"DIRECTOR\t2001:DB8::0001\t9090",
            b"DIRECTOR\t2001:db8::1\t9090\n",
        ),
        (b"USER-KILLED\t007", b"USER-KILLED\t7\n"),
        (b"USER-KILLED\t12\x013", b"USER-KILLED\t123\n"),
        (b"CONNECT\t10.1\t9090", b"CONNECT\t10.0.0.1\t9090\n"),
        (b"HOST-HAND-START\t2", b"HOST-HAND-START\t1\n"),
        (b"US\x01ER-KILLED\t1", b"USER-KILLED\t1\n"),
    ];
    for (line, want) in cases {
        let c = Command::parse(line).unwrap_or_else(|e| panic!("{}: {e}", show(line)));
        assert_eq!(show(&c.to_line()), show(want));
    }
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
    assert!(u.weak && u.extra == vec![v(b"wx")]);
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
