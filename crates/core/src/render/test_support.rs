//! Fixtures for the render tests: the `shop` spec with a few extra lines, an object by kind.

use serde_json::Value;

use super::Release;
use crate::file;
use crate::model::AppSpec;

/// The `shop` app's spec with `extra` spec-file lines appended.
pub(super) fn spec(extra: &str) -> AppSpec {
    let text = format!(
        "name: shop\nimage: {{repository: ghcr.io/acme/shop, tag: '1.0'}}\nweb: {{port: 3000, replicas: 2}}\n{extra}"
    );
    file::parse(&text, std::path::Path::new("kubernetes.yml"))
        .unwrap()
        .spec
}

/// The release's first object of `kind`.
pub(super) fn object<'a>(release: &'a Release, kind: &str) -> &'a Value {
    &release
        .objects
        .iter()
        .find(|o| o.kind == kind)
        .unwrap()
        .value
}
