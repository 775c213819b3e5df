//! A filter pattern and a value from the same input (split at the first NUL): building the
//! pattern never panics, and matching stays linear (libFuzzer's -timeout catches a blow-up).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (pattern, value) = text.split_once('\0').unwrap_or((&text, ""));
    if let Ok(p) = mailroom_core::filters::Pattern::new(pattern) {
        let _ = p.matches(value);
        let _ = p.matches_folded(value);
    }
});
