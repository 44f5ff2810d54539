//! Every line captured from real Dovecot on the auth-side legs goes decode → encode (same
//! bytes) → decode (same value); decorated replies must be exactly what [`passdb::decorate`]
//! makes of the undecorated line.
//!
//! Legs: `login/director`, `auth-login` (auth client protocol), `director-userdb`,
//! `auth-userdb` (auth master protocol), `ipc`, `login/proxy-notify`, and the Dovecot 2.4
//! lab's `…/login-director`, `…/proxy-notify`, `anvil`, `anvil-tap`. Fixtures:
//! `parsers/tests/fixtures/` or `$DIRECTOR_FIXTURES`.

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;

use common::{show, Stream};
use director_parsers::anvil::{
    self, AnvilRequest, ConnectDumpHeader, ConnectDumpSession, KickReply,
};
use director_parsers::auth_client::{ClientLine, ServerLine};
use director_parsers::auth_master::{MasterReply, MasterRequest};
use director_parsers::ipc::{IpcReply, IpcRequest};
use director_parsers::notify::NotifyLine;
use director_parsers::passdb::{self, ReplyKind};
use director_parsers::ParseError;

/// Lines a non-empty fixture directory must yield on these legs at least.
const MIN_LINES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Proto {
    AuthClient,
    AuthMaster,
    Ipc,
    Notify,
    Anvil,
}

fn proto(leg: &str) -> Option<Proto> {
    match leg {
        "login/director" | "auth-login" => Some(Proto::AuthClient),
        l if l.ends_with("/login-director") => Some(Proto::AuthClient),
        "director-userdb" | "auth-userdb" => Some(Proto::AuthMaster),
        "ipc" => Some(Proto::Ipc),
        l if l.ends_with("proxy-notify") => Some(Proto::Notify),
        "anvil" | "anvil-tap" => Some(Proto::Anvil),
        _ => None,
    }
}

/// Whether the stream flows from the client towards the server of its protocol.
fn is_request(p: Proto, s: &Stream) -> bool {
    let (from, to) = (s.from.as_str(), s.to.as_str());
    let known = match p {
        Proto::AuthClient => ["login", "director", "auth"].contains(&from),
        Proto::AuthMaster => ["lmtp", "client", "director", "auth"].contains(&from),
        Proto::Ipc => ["director", "ipc"].contains(&from),
        Proto::Notify => true,
        Proto::Anvil => ["tap", "client", "server"].contains(&from),
    };
    assert!(
        known,
        "{}: unknown direction {from}->{to} on {}",
        s.file.display(),
        s.leg
    );
    match p {
        Proto::AuthClient => from == "login" || to == "auth",
        Proto::AuthMaster => from == "lmtp" || from == "client" || to == "auth",
        Proto::Ipc => to == "ipc",
        Proto::Notify => true,
        Proto::Anvil => to == "server" || from == "client",
    }
}

/// decode → encode must give the line back, and decoding that must give the same value.
fn check<T: PartialEq + Debug>(
    s: &Stream,
    line: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, ParseError>,
    encode: impl Fn(&T, &mut Vec<u8>),
) -> T {
    let ctx = || {
        format!(
            "{} {}#{} {}->{}: {}",
            s.file.display(),
            s.leg,
            s.conn,
            s.from,
            s.to,
            show(line)
        )
    };
    let value = parse(line).unwrap_or_else(|e| panic!("{}: {e}", ctx()));
    let mut out = Vec::new();
    encode(&value, &mut out);
    assert_eq!(
        show(&out),
        show(&[line, b"\n"].concat()),
        "re-encoding {}",
        ctx()
    );
    let again = parse(&out[..out.len() - 1]).unwrap_or_else(|e| panic!("re-parse {}: {e}", ctx()));
    assert_eq!(again, value, "{}", ctx());
    value
}

/// A reply the director sent downstream: either unchanged (then it needed no host, or was
/// a proxy-maybe "self" answer) or the original line plus `proxy_refresh`/`host`[/`hostip`].
fn check_decoration(s: &Stream, line: &[u8], kind: ReplyKind) -> bool {
    let at = |needle: &[u8]| line.windows(needle.len()).rposition(|w| w == needle);
    let Some(cut) = at(b"\tproxy_refresh=") else {
        if let Some(ex) = passdb::examine(line, kind) {
            assert!(
                !ex.needs_host() || ex.proxy_maybe,
                "{}: undecorated but needs a host: {}",
                s.file.display(),
                show(line)
            );
        }
        return false;
    };
    let original = &line[..cut];
    let ex = passdb::examine(original, kind)
        .unwrap_or_else(|| panic!("decorated non-reply {}", show(line)));
    assert!(
        ex.needs_host(),
        "{}: decorated a line that needs no host: {}",
        s.file.display(),
        show(line)
    );
    let tail = std::str::from_utf8(&line[cut + 1..]).expect("decoration is ASCII");
    let parts: Vec<&str> = tail.split('\t').collect();
    let refresh = parts[0]
        .strip_prefix("proxy_refresh=")
        .unwrap()
        .parse()
        .unwrap();
    let host = parts[1].strip_prefix("host=").unwrap();
    let hostip = parts.get(2).and_then(|p| p.strip_prefix("hostip="));
    // the 2.4 lab relay may add `user_director_hash=<hash>` (dovecot-2.4.md §6.5)
    let alt = parts
        .last()
        .filter(|p| p.starts_with("user_"))
        .map(|p| p.split_once('=').unwrap());
    let want_parts = 2 + usize::from(hostip.is_some()) + usize::from(alt.is_some());
    assert_eq!(parts.len(), want_parts, "{}", show(line));
    let mut out = Vec::new();
    match alt {
        None => passdb::decorate(original, refresh, host, hostip, &mut out),
        Some((field, hash)) => {
            let hash = hash.parse().unwrap();
            passdb::decorate_with_hash(original, refresh, host, hostip, field, hash, &mut out)
        }
    }
    assert_eq!(
        show(&out),
        show(&[line, b"\n"].concat()),
        "{}",
        s.file.display()
    );
    true
}

/// Anvil replies depend on the request they answer; walk both streams of a connection.
fn check_anvil(req: Option<&Stream>, rep: Option<&Stream>) -> usize {
    let mut n = 0;
    let mut requests = Vec::new();
    if let Some(s) = req {
        let mut lines = s.lines.iter();
        if let Some(v) = lines.next() {
            assert_eq!(
                [v.as_slice(), b"\n"].concat(),
                anvil::CLIENT_HANDSHAKE
                    .split_inclusive(|&b| b == b'\n')
                    .next()
                    .unwrap()
            );
            assert_eq!(
                lines.next().map(Vec::as_slice),
                Some(&b""[..]),
                "empty handshake line"
            );
            n += 2;
        }
        for line in lines {
            requests.push(check(s, line, AnvilRequest::parse, AnvilRequest::encode));
            n += 1;
        }
    }
    if let Some(s) = rep {
        let mut lines = s.lines.iter();
        if let Some(v) = lines.next() {
            anvil::parse_server_greeting(v).unwrap_or_else(|e| panic!("greeting {}: {e}", show(v)));
            n += 1;
        }
        for r in &requests {
            if *r != AnvilRequest::ConnectDump {
                let Some(line) = lines.next() else { break };
                check(s, line, KickReply::parse, KickReply::encode);
                n += 1;
                continue;
            }
            let Some(header) = lines.next() else { break };
            check(
                s,
                header,
                ConnectDumpHeader::parse,
                ConnectDumpHeader::encode,
            );
            n += 1;
            for line in lines.by_ref() {
                n += 1;
                if line.is_empty() {
                    break;
                }
                check(
                    s,
                    line,
                    ConnectDumpSession::parse,
                    ConnectDumpSession::encode,
                );
            }
        }
        assert!(
            lines.next().is_none(),
            "{}: anvil reply without a request",
            s.file.display()
        );
    }
    n
}

fn fixture_files(dir: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                fixture_files(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "txt"))
            }
        })
        .sum()
}

#[test]
fn auth_legs_roundtrip() {
    let streams = common::load_streams(|leg| proto(leg).is_some());
    let mut counts: BTreeMap<Proto, usize> = BTreeMap::new();
    let mut decorated = 0;
    let mut anvil_conns: BTreeMap<(String, String, String), [Option<&Stream>; 2]> = BTreeMap::new();
    for s in &streams {
        let p = proto(&s.leg).unwrap();
        let request = is_request(p, s);
        if p == Proto::Anvil {
            let key = (s.file.display().to_string(), s.leg.clone(), s.conn.clone());
            anvil_conns.entry(key).or_default()[usize::from(!request)] = Some(s);
            continue;
        }
        let downstream = s.from == "director" && (s.to == "login" || s.to == "lmtp");
        for line in &s.lines {
            match (p, request) {
                (Proto::AuthClient, true) => {
                    drop(check(s, line, ClientLine::parse, ClientLine::encode))
                }
                (Proto::AuthClient, false) => {
                    drop(check(s, line, ServerLine::parse, ServerLine::encode))
                }
                (Proto::AuthMaster, true) => {
                    drop(check(s, line, MasterRequest::parse, MasterRequest::encode))
                }
                (Proto::AuthMaster, false) => {
                    drop(check(s, line, MasterReply::parse, MasterReply::encode))
                }
                (Proto::Ipc, true) => drop(check(s, line, IpcRequest::parse, IpcRequest::encode)),
                (Proto::Ipc, false) => drop(check(s, line, IpcReply::parse, IpcReply::encode)),
                (Proto::Notify, _) => drop(check(s, line, NotifyLine::parse, NotifyLine::encode)),
                (Proto::Anvil, _) => unreachable!("handled per connection"),
            }
            if downstream {
                let kind = if p == Proto::AuthClient {
                    ReplyKind::AuthOk
                } else {
                    ReplyKind::UserdbPass
                };
                decorated += usize::from(check_decoration(s, line, kind));
            }
            *counts.entry(p).or_default() += 1;
        }
    }
    for [req, rep] in anvil_conns.values() {
        *counts.entry(Proto::Anvil).or_default() += check_anvil(*req, *rep);
    }
    let total: usize = counts.values().sum();
    println!("auth legs: {total} lines round-tripped {counts:?}; {decorated} decorated replies reproduced");
    let dir = common::fixtures_dir();
    if fixture_files(&dir) > 0 {
        assert!(
            total >= MIN_LINES,
            "only {total} auth-leg lines in {}",
            dir.display()
        );
    }
}
