#![no_main]
//! ipc and anvil kicks, proxy-notify lines and the flush-script protocol: no panics,
//! stable round trips.
use director_parsers::anvil::{AnvilRequest, ConnectDumpSession, KickReply};
use director_parsers::flush::{classify, FlushRequest};
use director_parsers::ipc::{IpcReply, IpcRequest};
use director_parsers::notify::NotifyLine;
use libfuzzer_sys::fuzz_target;

macro_rules! roundtrip {
    ($ty:ty, $data:expr) => {
        if let Ok(v) = <$ty>::parse($data) {
            let mut out = Vec::new();
            v.encode(&mut out);
            assert_eq!(out.pop(), Some(b'\n'));
            assert_eq!(<$ty>::parse(&out), Ok(v));
        }
    };
}

fuzz_target!(|data: &[u8]| {
    roundtrip!(IpcRequest, data);
    roundtrip!(IpcReply, data);
    roundtrip!(NotifyLine, data);
    roundtrip!(AnvilRequest, data);
    roundtrip!(KickReply, data);
    roundtrip!(ConnectDumpSession, data);
    if let Ok(req) = FlushRequest::parse(data) {
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(FlushRequest::parse(&out), Ok(req));
    }
    let reply = classify(data);
    assert!(reply.output.len() <= data.len());
    let _ = reply.lines();
});
