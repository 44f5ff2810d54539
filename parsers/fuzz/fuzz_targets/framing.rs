#![no_main]
use libfuzzer_sys::fuzz_target;
fuzz_target!(|data: &[u8]| {
    let mut f = director_parsers::framing::LineFramer::new(1024);
    let _ = f.next_line(data);
});
