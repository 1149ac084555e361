#![no_main]
//! The Kamal importers: `config/deploy.yml` and `.kamal/secrets` never panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = kubectl_rails_core::detect::parse_kamal(text);
    let _ = kubectl_rails_secrets::kamal::parse(text);
});
