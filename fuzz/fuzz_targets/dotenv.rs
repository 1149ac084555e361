#![no_main]
//! The `.env` parser: entries or an error with a line number, never a panic; no error message
//! repeats more than a short prefix of the line (values may be secrets).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match kubectl_rails_core::dotenv::parse(text) {
        Ok(entries) => {
            for e in entries {
                assert!(kubectl_rails_core::validate::is_env_key(&e.key));
            }
        }
        Err(e) => assert!(e.line >= 1 && e.line <= text.lines().count().max(1)),
    }
});
