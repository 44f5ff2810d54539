#![no_main]
//! Auth master (userdb) lines and the authreply handshake: no panics, stable round trips.
use director_parsers::auth_master::{MasterReply, MasterRequest};
use director_parsers::authreply::ClientHandshake;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = MasterRequest::parse(data) {
        let mut out = Vec::new();
        line.encode(&mut out);
        assert_eq!(out.pop(), Some(b'\n'));
        assert_eq!(MasterRequest::parse(&out), Ok(line));
    }
    if let Ok(line) = MasterReply::parse(data) {
        let mut out = Vec::new();
        line.encode(&mut out);
        assert_eq!(out.pop(), Some(b'\n'));
        assert_eq!(MasterReply::parse(&out), Ok(line));
    }
    if let Ok(hs) = ClientHandshake::parse(data) {
        let mut out = Vec::new();
        hs.encode(&mut out);
        assert_eq!(out.pop(), Some(b'\n'));
        assert_eq!(ClientHandshake::parse(&out), Ok(hs));
    }
});
