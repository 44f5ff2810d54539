//! Replays captured `director-admin` conversations (doveadm <-> real Dovecot director).
//!
//! Every doveadm line must parse as the handshake or a [`Request`] and re-encode to the same
//! bytes; every director line must parse as the reply form of the request it answers (replies
//! come back in request order) and re-encode to the same bytes.

mod common;

use std::collections::BTreeMap;

use director_parsers::admin::{Command, Handshake, Reply, Request};

use common::{load_streams, show, Stream};

fn encoded(encode: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    encode(&mut out);
    out
}

fn check_same(what: &str, s: &Stream, line: &[u8], out: &[u8]) {
    let mut want = line.to_vec();
    want.push(b'\n');
    assert_eq!(
        show(out),
        show(&want),
        "{what} re-encoding differs in {}#{} ({})",
        s.leg,
        s.conn,
        s.file.display()
    );
}

/// One connection's two directions: doveadm's and the director's.
type Conn<'a> = (Option<&'a Stream>, Option<&'a Stream>);

/// Check one direction's handshake (its first line) and return the rest.
fn handshake(s: &Stream) -> &[Vec<u8>] {
    let Some((first, rest)) = s.lines.split_first() else {
        return &[];
    };
    let hs = Handshake::parse(first)
        .unwrap_or_else(|e| panic!("{}#{} handshake {}: {e}", s.leg, s.conn, show(first)));
    check_same("handshake", s, first, &encoded(|o| hs.encode(o)));
    rest
}

#[test]
fn admin_transcripts_roundtrip() {
    let streams = load_streams(|leg| leg == "director-admin");
    let mut by_conn: BTreeMap<(String, String), Conn> = BTreeMap::new();
    for s in &streams {
        let key = (s.file.display().to_string(), s.conn.clone());
        let slot = by_conn.entry(key).or_default();
        match s.from.as_str() {
            "director" => slot.1 = Some(s),
            _ => slot.0 = Some(s),
        }
    }

    let (mut requests, mut replies) = (0usize, 0usize);
    for ((file, conn), (client, server)) in &by_conn {
        let mut commands = Vec::new();
        if let Some(c) = client {
            requests += c.lines.len().min(1);
            for line in handshake(c) {
                let req = Request::parse(line)
                    .unwrap_or_else(|e| panic!("{file}#{conn} request {}: {e}", show(line)));
                check_same("request", c, line, &encoded(|o| req.encode(o)));
                commands.push(req.command());
                requests += 1;
            }
        }
        let Some(s) = server else { continue };
        replies += s.lines.len().min(1);
        let mut pending = commands.iter();
        let mut current: Option<Command> = None;
        for line in handshake(s) {
            let cmd = match current {
                Some(cmd) => cmd,
                None => *pending
                    .next()
                    .unwrap_or_else(|| panic!("{file}#{conn}: reply {} to no request", show(line))),
            };
            let reply = Reply::parse_for(cmd, line)
                .unwrap_or_else(|e| panic!("{file}#{conn} {cmd} reply {}: {e}", show(line)));
            check_same("reply", s, line, &encoded(|o| reply.encode(o)));
            current = (!reply.is_last()).then_some(cmd);
            replies += 1;
        }
    }
    println!(
        "director-admin: {} connections, {requests} doveadm lines and {replies} director lines round-tripped",
        by_conn.len()
    );
}
