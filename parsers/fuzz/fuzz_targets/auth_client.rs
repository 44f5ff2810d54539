#![no_main]
//! Auth client protocol lines: parse never panics; parse → encode → parse is the identity.
use director_parsers::auth_client::{ClientLine, ServerLine};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = ClientLine::parse(data) {
        let mut out = Vec::new();
        line.encode(&mut out);
        assert_eq!(out.pop(), Some(b'\n'));
        assert_eq!(ClientLine::parse(&out), Ok(line));
    }
    if let Ok(line) = ServerLine::parse(data) {
        let mut out = Vec::new();
        line.encode(&mut out);
        assert_eq!(out.pop(), Some(b'\n'));
        assert_eq!(ServerLine::parse(&out), Ok(line));
    }
});
