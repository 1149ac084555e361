#![no_main]
//! The spec file parser and validator: any text gives a spec or a located error, never a panic.
//! A spec that parses must render, and its YAML must parse back to the same spec.

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(loaded) = kubectl_rails_core::file::parse(text, Path::new("kubernetes.yml")) {
        let _ = kubectl_rails_core::render::render(&loaded.spec, &Default::default());
        let again = kubectl_rails_core::file::to_yaml(&loaded.spec);
        let reparsed = kubectl_rails_core::file::parse(&again, Path::new("kubernetes.yml")).expect("written specs parse");
        assert_eq!(reparsed.spec, loaded.spec);
    }
});
