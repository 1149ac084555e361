#![no_main]
//! The Docker config reader: any `config.json` gives credentials or an error, never a panic.
//! Only plain `auths` are exercised: helpers would run programs.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = kubectl_rails_secrets::docker::parse_config(text, "ghcr.io");
});
