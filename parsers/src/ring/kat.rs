//! Known-answer tables: every example line of ring-protocol.md, plus lines captured from real
//! 2.3.19.1 directors (lab transcripts) for the commands the spec only gives as templates.
//! Each parses to the expected command and re-encodes to the identical bytes.

use std::net::IpAddr;

use super::*;
use crate::field::Field;

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

/// A verbatim (still escaped) field.
fn w(s: &[u8]) -> Field {
    Field::from_raw(s).unwrap()
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
                extra: vec![w(b"x"), w(b"")],
            },
        ),
        (
            b"VERSION\tdirector\t1\t10\tfuture",
            Ring,
            Command::Version {
                minor: 10,
                extra: vec![w(b"future")],
            },
        ),
        (
            b"DONE\tx\x01y",
            Ring,
            Command::Done {
                extra: vec![w(b"x\x01y")],
            },
        ),
        // lenient PING/PONG, QUIT reason with TABs
        (b"PING", Ring, Command::Ping(Pulse::Raw(vec![]))),
        (
            b"PONG\tabc\t5",
            Ring,
            Command::Pong(Pulse::Raw(vec![w(b"abc"), w(b"5")])),
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
