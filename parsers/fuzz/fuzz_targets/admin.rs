#![no_main]
//! Admin protocol: no input panics, and whatever parses re-encodes to an equal message.
use director_parsers::admin::{Command, Handshake, Reply, Request};
use libfuzzer_sys::fuzz_target;

fn reparse<T: PartialEq + std::fmt::Debug>(
    msg: T,
    encode: impl Fn(&T, &mut Vec<u8>),
    parse: impl Fn(&[u8]) -> Option<T>,
) {
    let mut out = Vec::new();
    encode(&msg, &mut out);
    assert_eq!(out.pop(), Some(b'\n'));
    assert_eq!(parse(&out).as_ref(), Some(&msg), "{}", out.escape_ascii());
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, line)) = data.split_first() else {
        return;
    };
    if let Ok(hs) = Handshake::parse(line) {
        reparse(hs, Handshake::encode, |l| Handshake::parse(l).ok());
    }
    match Request::parse(line) {
        Ok(req) => reparse(req, Request::encode, |l| Request::parse(l).ok()),
        Err(e) => {
            let _ = director_parsers::admin::Rejection::classify(line, &e).to_string();
        }
    }
    let cmd = Command::ALL[usize::from(selector) % Command::ALL.len()];
    if let Ok(reply) = Reply::parse_for(cmd, line) {
        reparse(reply, Reply::encode, |l| Reply::parse_for(cmd, l).ok());
    }
});
