//! Any bytes as a raw message: parsing (and the signals and bounce facts read at parse time)
//! never panics; a message it cannot read is an `Unparseable` with a reason.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mailroom_core::parse::parse(data);
});
