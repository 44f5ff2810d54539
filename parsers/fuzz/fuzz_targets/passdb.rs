#![no_main]
//! Reply examination and rewriting: no panics; a decorated line never needs a host again;
//! the temp-fail answer is never itself examined.
use director_parsers::passdb::{decorate, examine, temp_fail, ReplyKind};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    for kind in [ReplyKind::AuthOk, ReplyKind::UserdbPass] {
        let Some(ex) = examine(data, kind) else { continue };
        let _ = ex.is_self(IpAddr::from([127, 0, 0, 1]));
        let _ = ex.lookup_name(Some(b'*'));
        let mut out = Vec::new();
        decorate(data, 450, "10.0.0.1", None, &mut out);
        assert_eq!(out.pop(), Some(b'\n'));
        let again = examine(&out, kind).expect("prefix kept");
        assert!(again.host_present && !again.needs_host());
        assert_eq!(again.id, ex.id);
        let mut fail = Vec::new();
        temp_fail(data, &mut fail);
        assert!(fail.starts_with(b"FAIL\t") && fail.ends_with(b"\tcode=temp_fail\n"));
        assert!(examine(&fail, ReplyKind::AuthOk).is_none());
    }
});
