//! Personality files: any text (valid TOML or not) gives a personality or an error
//! message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(reason) = bot::personality::parse("fuzz", text) {
        assert!(!reason.is_empty());
    }
});
