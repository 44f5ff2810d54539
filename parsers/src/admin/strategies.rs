//! proptest generators for every admin message (test-only).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::{NonZeroU16, NonZeroU32};

use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

use super::*;

/// Field bytes as Dovecot can carry them: anything but NUL (a C string ends there).
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(1u8..=255, 0..12),
        vec(
            prop_oneof![
                Just(b'\t'),
                Just(1u8),
                Just(b'\r'),
                Just(b'\n'),
                Just(b'@'),
                Just(b'1'),
                Just(b'a')
            ],
            0..8
        ),
    ]
}

pub fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        any::<u16>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(u128::from(n)))),
        any::<u32>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(0xffff_0000_0000u128 | u128::from(n)))),
    ]
}

fn user_arg() -> impl Strategy<Value = UserArg> {
    prop_oneof![
        any::<u32>().prop_map(UserArg::Hash),
        bytes().prop_map(|b| UserArg::from_bytes(&b)),
    ]
}

fn host_spec() -> impl Strategy<Value = HostSpec> {
    (ip(), of(bytes())).prop_map(|(ip, tag)| HostSpec { ip, tag })
}

fn port() -> impl Strategy<Value = Option<NonZeroU16>> {
    of(any::<u16>()).prop_map(|p| p.and_then(NonZeroU16::new))
}

pub fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::HostList),
        Just(Request::HostListRemoved),
        Just(Request::DirectorList),
        (host_spec(), of(any::<u32>()))
            .prop_map(|(host, vhost_count)| Request::HostSet { host, vhost_count }),
        (host_spec(), any::<u32>())
            .prop_map(|(host, vhost_count)| Request::HostUpdate { host, vhost_count }),
        ip().prop_map(|ip| Request::HostUp { ip }),
        ip().prop_map(|ip| Request::HostDown { ip }),
        ip().prop_map(|ip| Request::HostRemove { ip }),
        of(ip()).prop_map(|ip| Request::HostFlush { ip }),
        (of(ip()), of(1u32..)).prop_map(|(ip, n)| Request::HostResetUsers {
            ip,
            max_parallel: n.and_then(NonZeroU32::new),
        }),
        (user_arg(), bytes()).prop_map(|(user, tag)| Request::UserLookup { user, tag }),
        of(ip()).prop_map(|ip| Request::UserList { ip }),
        (user_arg(), ip()).prop_map(|(user, ip)| Request::UserMove { user, ip }),
        (bytes(), any::<bool>()).prop_map(|(user, nowait)| Request::UserKick { user, nowait }),
        (bytes(), bytes(), any::<bool>()).prop_map(|(field, value, nowait)| Request::UserKickAlt {
            field,
            value,
            nowait
        }),
        (ip(), port()).prop_map(|(ip, port)| Request::DirectorAdd { ip, port }),
        (ip(), port()).prop_map(|(ip, port)| Request::DirectorRemove { ip, port }),
    ]
}

fn director_line() -> impl Strategy<Value = DirectorLine> {
    let host_type = prop_oneof![
        Just(HostType::Local),
        Just(HostType::Removed),
        Just(HostType::Other)
    ];
    let ring = prop_oneof![
        Just(RingStatus::Handshaking),
        Just(RingStatus::Synced),
        any::<i32>().prop_map(|secs_ago| RingStatus::Syncing { secs_ago }),
    ];
    let local =
        of((ring, any::<u32>())
            .prop_map(|(ring, last_sync_ms)| LocalStatus { ring, last_sync_ms }));
    let host = (ip(), any::<u16>(), host_type, any::<i64>(), local).prop_map(
        |(ip, port, kind, last_failed, local)| {
            DirectorLine::Host(DirectorHost {
                ip,
                port,
                kind,
                last_failed,
                local,
            })
        },
    );
    let conn_type = prop_oneof![
        Just(ConnType::Left),
        Just(ConnType::Right),
        Just(ConnType::In),
        Just(ConnType::Out)
    ];
    let peer = of((ip(), any::<u16>(), conn_type, any::<i64>()).prop_map(
        |(ip, port, kind, last_failed)| ConnPeer {
            ip,
            port,
            kind,
            last_failed,
        },
    ));
    let status = prop_oneof![
        any::<u32>().prop_map(ConnStatus::HandshakingReceived),
        any::<u32>().prop_map(ConnStatus::HandshakingSent),
        Just(ConnStatus::Synced),
        Just(ConnStatus::Syncing),
    ];
    let conn = (
        peer,
        status,
        any::<u32>(),
        any::<[u64; 4]>(),
        any::<[i64; 2]>(),
    )
        .prop_map(|(peer, status, ping_ms, b, t)| {
            DirectorLine::Conn(DirectorConn {
                peer,
                status,
                ping_ms,
                bytes_in: b[0],
                bytes_out: b[1],
                buffered: b[2],
                peak_buffered: b[3],
                last_in: t[0],
                last_out: t[1],
            })
        });
    prop_oneof![host, conn]
}

/// A reply together with the command it can answer.
pub fn reply() -> impl Strategy<Value = (Command, Reply)> {
    let status = prop_oneof![
        Just(Status::Ok),
        Just(Status::NotFound),
        Just(Status::TryAgain),
        Just(Status::VhostCountTooLarge),
        Just(Status::TagCantBeChanged),
        Just(Status::HostBeingUpdated),
        Just(Status::RingSyncTimedOut),
    ];
    let status_cmd = proptest::sample::select(
        Command::ALL
            .into_iter()
            .filter(|c| !c.replies_with_list() && *c != Command::UserLookup)
            .collect::<Vec<_>>(),
    );
    let list_cmd = proptest::sample::select(
        Command::ALL
            .into_iter()
            .filter(|c| c.replies_with_list())
            .collect::<Vec<_>>(),
    );
    let host = (
        ip(),
        any::<u32>(),
        any::<u32>(),
        bytes(),
        any::<bool>(),
        any::<i64>(),
    )
        .prop_map(
            |(ip, vhost_count, user_count, tag, down, last_updown_change)| HostEntry {
                ip,
                vhost_count,
                user_count,
                tag,
                down,
                last_updown_change,
            },
        );
    let current = of((ip(), any::<u32>()).prop_map(|(ip, expire)| UserCurrent { ip, expire }));
    let lookup = (current, of(ip()), of(ip())).prop_map(|(current, hashed, config)| UserLookup {
        current,
        hashed,
        config,
    });
    let user = (any::<u32>(), any::<u32>(), ip()).prop_map(|(hash, expire, ip)| UserEntry {
        hash,
        expire,
        ip,
    });
    prop_oneof![
        (status_cmd, status).prop_map(|(c, s)| (c, Reply::Status(s))),
        list_cmd.prop_map(|c| (c, Reply::End)),
        host.prop_map(|h| (Command::HostList, Reply::Host(h))),
        ip().prop_map(|ip| (
            Command::HostListRemoved,
            Reply::RemovedHost(RemovedHost { ip })
        )),
        lookup.prop_map(|l| (Command::UserLookup, Reply::UserLookup(l))),
        Just((Command::UserLookup, Reply::Status(Status::TryAgain))),
        user.prop_map(|u| (Command::UserList, Reply::User(u))),
        director_line().prop_map(|d| (Command::DirectorList, Reply::Director(d))),
    ]
}
