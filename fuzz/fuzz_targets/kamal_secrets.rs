#![no_main]
//! The `.kamal/secrets` reader: lines with valid keys, or an error naming a line of the file,
//! never a panic. An error never repeats a bad line's text (it may be a pasted secret): a
//! `\x01` byte, which no valid key and no message of ours holds, must never reach one.

use kubectl_rails_core::validate::is_env_key;
use kubectl_rails_secrets::SecretsError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let count = text.lines().count();
    match kubectl_rails_secrets::kamal::parse(text) {
        Ok(lines) => {
            for l in lines {
                assert!(is_env_key(&l.key), "{l:?}");
                assert!(l.line >= 1 && l.line <= count, "{l:?}");
            }
        }
        Err(e @ SecretsError::BadLine { line, .. }) => {
            assert!(line >= 1 && line <= count, "{e}");
            assert!(!e.to_string().contains('\u{1}'), "the line's text shows: {e:?}");
        }
        Err(e) => panic!("not a line error: {e:?}"),
    }
});
