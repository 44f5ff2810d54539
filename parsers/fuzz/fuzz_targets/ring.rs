#![no_main]
//! Ring protocol: parsing never panics, and parse -> encode -> parse gives the same command.
use director_parsers::ring::{Command, Context};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The framer never yields a line containing LF.
    if data.contains(&b'\n') {
        return;
    }
    for ctx in [Context::Ring, Context::HostList, Context::LegacyHandshakeUsers] {
        if let Ok(cmd) = Command::parse_in(data, ctx) {
            let line = cmd.to_line();
            assert_eq!(line.iter().position(|&b| b == b'\n'), Some(line.len() - 1));
            let again = Command::parse_in(&line[..line.len() - 1], ctx);
            assert_eq!(again, Ok(cmd));
        }
    }
    let _ = director_parsers::ring::origin_prefix(data);
});
