//! Known answers for [`Reply`]: spec §§6-7 [verified] examples and the lab transcripts.

use super::*;
use crate::admin::strategies;
use crate::admin::{
    ConnPeer, ConnStatus, ConnType, DirectorConn, DirectorHost, HostType, LocalStatus, RingStatus,
};
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

fn host(ip_text: &str, vhost: u32, users: u32, tag: &[u8], down: bool, ts: i64) -> Reply {
    Reply::Host(HostEntry {
        ip: ip(ip_text),
        vhost_count: vhost,
        user_count: users,
        tag: tag.to_vec(),
        down,
        last_updown_change: ts,
    })
}

fn lookup(current: Option<(&str, u32)>, hashed: Option<&str>, config: Option<&str>) -> Reply {
    Reply::UserLookup(UserLookup {
        current: current.map(|(i, expire)| UserCurrent { ip: ip(i), expire }),
        hashed: hashed.map(ip),
        config: config.map(ip),
    })
}

fn user(hash: u32, expire: u32, ip_text: &str) -> Reply {
    Reply::User(UserEntry {
        hash,
        expire,
        ip: ip(ip_text),
    })
}

fn local_host(ip_text: &str, port: u16, ring: RingStatus, ms: u32) -> Reply {
    Reply::Director(DirectorLine::Host(DirectorHost {
        ip: ip(ip_text),
        port,
        kind: HostType::Local,
        last_failed: 0,
        local: Some(LocalStatus {
            ring,
            last_sync_ms: ms,
        }),
    }))
}

fn conn(
    peer: Option<(&str, u16, ConnType)>,
    status: ConnStatus,
    n: [u64; 5],
    t: [i64; 2],
) -> Reply {
    Reply::Director(DirectorLine::Conn(DirectorConn {
        peer: peer.map(|(i, port, kind)| ConnPeer {
            ip: ip(i),
            port,
            kind,
            last_failed: 0,
        }),
        status,
        ping_ms: n[0] as u32,
        bytes_in: n[1],
        bytes_out: n[2],
        buffered: n[3],
        peak_buffered: n[4],
        last_in: t[0],
        last_out: t[1],
    }))
}

fn other_host(ip_text: &str, port: u16, kind: HostType, last_failed: i64) -> Reply {
    Reply::Director(DirectorLine::Host(DirectorHost {
        ip: ip(ip_text),
        port,
        kind,
        last_failed,
        local: None,
    }))
}

/// (command answered, line, parsed, canonical encoding when the line is not canonical)
type Case = (Command, &'static [u8], Reply, Option<&'static [u8]>);

#[rustfmt::skip]
fn accepted() -> Vec<Case> {
    use Command as C;
    let t = 1795955881;
    vec![
        // §6.1 [verified] and §8.2 [verified].
        (C::HostList, b"10.0.0.1\t100\t0\t\tU\t0", host("10.0.0.1", 100, 0, b"", false, 0), None),
        (C::HostList, b"10.0.0.2\t100\t2\t\tD\t1795953118", host("10.0.0.2", 100, 2, b"", true, 1795953118), None),
        (C::HostList, b"10.0.0.2\t100\t2\t\tD\t0", host("10.0.0.2", 100, 2, b"", true, 0), None),
        (C::HostList, b"10.0.0.3\t100\t1\t\tU\t0", host("10.0.0.3", 100, 1, b"", false, 0), None),
        // Lab transcripts.
        (C::HostList, b"127.0.1.5\t100\t0\ttagA\tU\t0", host("127.0.1.5", 100, 0, b"tagA", false, 0), None),
        (C::HostList, b"127.0.1.4\t10\t0\t\tU\t0", host("127.0.1.4", 10, 0, b"", false, 0), None),
        (C::HostList, b"127.0.1.1\t100\t2\t\tU\t1795955889", host("127.0.1.1", 100, 2, b"", false, 1795955889), None),
        (C::HostList, b"", Reply::End, None),
        // §6.1: the tag is tab-escaped; `%ld` may be negative.
        (C::HostList, b"::1\t5\t0\ta\x01tb\tU\t-1", host("::1", 5, 0, b"a\tb", false, -1), None),
        // Real director: tags are printed escaped, '@' kept.
        (C::HostList, b"10.0.0.8\t100\t0\tx\x01ty\tU\t0", host("10.0.0.8", 100, 0, b"x\ty", false, 0), None),
        (C::HostList, b"10.0.0.9\t100\t0\ta@b\tU\t0", host("10.0.0.9", 100, 0, b"a@b", false, 0), None),
        (C::HostListRemoved, b"127.0.1.3", Reply::RemovedHost(RemovedHost { ip: ip("127.0.1.3") }), None),
        (C::HostListRemoved, b"", Reply::End, None),
        // §6.8 [verified] and transcripts.
        (C::UserLookup, b"10.0.0.2\t1795954033\t10.0.0.2\t10.0.0.2", lookup(Some(("10.0.0.2", 1795954033)), Some("10.0.0.2"), Some("10.0.0.2")), None),
        (C::UserLookup, b"\t0\t10.0.0.2\t10.0.0.2", lookup(None, Some("10.0.0.2"), Some("10.0.0.2")), None),
        (C::UserLookup, b"\t0\t\t", lookup(None, None, None), None),
        (C::UserLookup, b"127.0.1.3\t1795956792\t127.0.1.2\t127.0.1.2", lookup(Some(("127.0.1.3", 1795956792)), Some("127.0.1.2"), Some("127.0.1.2")), None),
        (C::UserLookup, b"TRYAGAIN", Reply::Status(Status::TryAgain), None),
        // §6.9, transcripts.
        (C::UserList, b"1642137491\t1795956766\t127.0.1.1", user(1642137491, 1795956766, "127.0.1.1"), None),
        (C::UserList, b"3131388798\t1795956776\t127.0.1.2", user(3131388798, 1795956776, "127.0.1.2"), None),
        (C::UserList, b"", Reply::End, None),
        // §6.13 [verified] stand-alone line, and the lab ring.
        (C::DirectorList, b"127.0.0.1\t0\tself\t0\tring synced\t0", local_host("127.0.0.1", 0, RingStatus::Synced, 0), None),
        (C::DirectorList, b"127.0.0.2\t9090\tself\t0\tring synced\t0", local_host("127.0.0.2", 9090, RingStatus::Synced, 0), None),
        (C::DirectorList, b"127.0.0.2\t9090\tself\t0\tring handshaking\t7", local_host("127.0.0.2", 9090, RingStatus::Handshaking, 7), None),
        (C::DirectorList, b"127.0.0.2\t9090\tself\t0\tring syncing - last sync 12 secs ago\t3", local_host("127.0.0.2", 9090, RingStatus::Syncing { secs_ago: 12 }, 3), None),
        (C::DirectorList, b"127.0.0.3\t9090\tleft\t0\tsynced\t0\t449\t311\t0\t18\t1795955881\t1795955881",
            conn(Some(("127.0.0.3", 9090, ConnType::Left)), ConnStatus::Synced, [0, 449, 311, 0, 18], [t, t]), None),
        (C::DirectorList, b"127.0.0.3\t9090\tright\t0\tsynced\t0\t109\t671\t0\t239\t1795955881\t1795955881",
            conn(Some(("127.0.0.3", 9090, ConnType::Right)), ConnStatus::Synced, [0, 109, 671, 0, 239], [t, t]), None),
        (C::DirectorList, b"handshaking - 3 USERs received\t1\t2\t3\t4\t5\t6\t7",
            conn(None, ConnStatus::HandshakingReceived(3), [1, 2, 3, 4, 5], [6, 7]), None),
        (C::DirectorList, b"10.0.0.9\t9090\tout\t0\thandshaking - 0 USERs sent\t1\t2\t3\t4\t5\t6\t7",
            conn(Some(("10.0.0.9", 9090, ConnType::Out)), ConnStatus::HandshakingSent(0), [1, 2, 3, 4, 5], [6, 7]), None),
        // Real stand-alone director after DIRECTOR-ADD with and without a port.
        (C::DirectorList, b"10.0.0.5\t9090\t\t0\t", other_host("10.0.0.5", 9090, HostType::Other, 0), None),
        (C::DirectorList, b"10.0.0.6\t0\t\t0\t", other_host("10.0.0.6", 0, HostType::Other, 0), None),
        (C::DirectorList, b"127.0.0.4\t9090\tremoved\t1795955881\t", other_host("127.0.0.4", 9090, HostType::Removed, t), None),
        (C::DirectorList, b"", Reply::End, None),
        // §7 status lines, and a canonicalised IP.
        (C::HostSet, b"OK", Reply::Status(Status::Ok), None),
        (C::HostUpdate, b"NOTFOUND", Reply::Status(Status::NotFound), None),
        (C::UserMove, b"TRYAGAIN", Reply::Status(Status::TryAgain), None),
        (C::HostSet, b"vhost count too large", Reply::Status(Status::VhostCountTooLarge), None),
        (C::HostSet, b"host tag can't be changed", Reply::Status(Status::TagCantBeChanged), None),
        (C::HostUp, b"host is already being updated - try again later", Reply::Status(Status::HostBeingUpdated), None),
        (C::DirectorAdd, b"Ring sync timed out", Reply::Status(Status::RingSyncTimedOut), None),
        (C::UserList, b"7\t0\t10.1", user(7, 0, "10.0.0.1"), Some(b"7\t0\t10.0.0.1")),
    ]
}

#[test]
fn known_answers_accepted() {
    for (cmd, line, want, canonical) in accepted() {
        let got = Reply::parse_for(cmd, line);
        assert_eq!(got.as_ref(), Ok(&want), "{cmd} {}", show(line));
        let mut out = Vec::new();
        want.encode(&mut out);
        let mut expect = canonical.unwrap_or(line).to_vec();
        expect.push(b'\n');
        assert_eq!(show(&out), show(&expect), "encode {want:?}");
        let ends = !cmd.replies_with_list() || want == Reply::End;
        assert_eq!(want.is_last(), ends, "{want:?}");
    }
}

#[test]
fn known_answers_rejected() {
    use Command as C;
    let cases: &[(Command, &[u8])] = &[
        (C::HostSet, b""),
        (C::HostSet, b"ok"),
        (C::HostSet, b"OK "),
        (C::HostSet, b"something else"),
        (C::HostList, b"OK"),
        (C::HostList, b"10.0.0.1\t100\t0\t\tX\t0"),
        (C::HostList, b"10.0.0.1\t100\t0\t\tUp\t0"),
        (C::HostList, b"10.0.0.1\t100\t0\t\tU"),
        (C::HostList, b"10.0.0.1\t100\t0\t\tU\t0\t"),
        (C::HostList, b"10.0.0.1\t-1\t0\t\tU\t0"),
        (C::HostList, b"10.0.0.1\t100\t0\t\tU\tx"),
        (C::HostList, b"host\t100\t0\t\tU\t0"),
        (C::HostListRemoved, b"10.0.0.1\t"),
        (C::UserLookup, b"\t5\t\t"),
        (C::UserLookup, b"\t\t\t"),
        (C::UserLookup, b"\t0\t\t\t"),
        (C::UserLookup, b"OK"),
        (C::UserLookup, b"x\t0\t\t"),
        (C::UserList, b"1\t2"),
        (C::UserList, b"a\t2\t10.0.0.1"),
        (C::DirectorList, b"127.0.0.1\t0\tself\t0"),
        (C::DirectorList, b"127.0.0.1\t0\tself\t0\tx"),
        (C::DirectorList, b"127.0.0.1\t0\tleft\t0\t"),
        (C::DirectorList, b"127.0.0.1\t65536\t\t0\t"),
        (C::DirectorList, b"127.0.0.1\t0\tself\t0\tring synced\t-1"),
        (
            C::DirectorList,
            b"127.0.0.1\t0\tself\t0\tring syncing - last sync x secs ago\t0",
        ),
        (
            C::DirectorList,
            b"127.0.0.3\t9090\tself\t0\tsynced\t0\t449\t311\t0\t18\t1\t1",
        ),
        (C::DirectorList, b"synced\t0\t449\t311\t0\t18\t1"),
        (
            C::DirectorList,
            b"handshaking - x USERs sent\t1\t2\t3\t4\t5\t6\t7",
        ),
        (C::DirectorList, b"OK"),
    ];
    for &(cmd, line) in cases {
        assert!(Reply::parse_for(cmd, line).is_err(), "{cmd} {}", show(line));
    }
}

proptest! {
    #[test]
    fn typed_roundtrip((cmd, reply) in strategies::reply()) {
        let mut out = Vec::new();
        reply.encode(&mut out);
        prop_assert_eq!(out.pop(), Some(b'\n'));
        prop_assert!(!out.contains(&b'\n') && !out.contains(&0));
        prop_assert_eq!(Reply::parse_for(cmd, &out), Ok(reply));
    }

    #[test]
    fn bytes_never_panic_and_reparse(
        cmd in proptest::sample::select(Command::ALL.to_vec()),
        line in proptest::collection::vec(
            prop_oneof![Just(b'\t'), Just(b'0'), Just(b'1'), Just(b'.'), Just(b':'), any::<u8>()],
            0..80,
        ),
    ) {
        if let Ok(reply) = Reply::parse_for(cmd, &line) {
            let mut out = Vec::new();
            reply.encode(&mut out);
            prop_assert_eq!(Reply::parse_for(cmd, &out[..out.len() - 1]), Ok(reply));
        }
    }
}
