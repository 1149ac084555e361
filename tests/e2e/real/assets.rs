//! Rollouts a browser never notices, on the real node: the example app's releases have
//! fingerprinted assets that differ per version, and a browser-like load (a page, then every
//! asset it names) through the real ingress during rollouts in both directions, a rollback
//! among them, gets no asset 404 and no 5xx: the `<app>-assets` pods hold both releases' files.

use super::{RealNode, blog_app, deploy};
use crate::support::TestNs;

#[test]
fn every_asset_of_both_releases_answers_through_rollouts_both_ways() {
    let (node, _alone) = RealNode::take();
    let host = &format!("assets-{}.example.com", std::process::id());
    let ns = TestNs::restricted("real-assets");
    let url = node.database("assets");
    let app = blog_app(node, &ns, host, "2", &url);
    let dir = app.path();
    // `init` read the Dockerfile's `assets:precompile` and asked for the asset server.
    let spec = std::fs::read_to_string(dir.join("config/kubernetes.yml")).unwrap();
    assert!(spec.contains("\nassets:"), "{spec}");

    deploy(&ns, dir, &[]).success();
    node.first_page(host);
    let v1 = node.load_page(host);
    assert_eq!(v1.version.as_deref(), Some("1.0.0"));
    assert_eq!(v1.assets.len(), 2, "the page names its CSS and JS: {v1:?}");
    assert!(v1.assets.iter().all(|(_, code)| *code == 200), "{v1:?}");

    let traffic = node.browser_loop(host, 20);
    for (args, version) in [
        (vec!["--tag", "2.0.0"], "2.0.0"),
        (vec!["--tag", "1.0.0"], "1.0.0"),
        (vec!["--tag", "2.0.0"], "2.0.0"),
    ] {
        deploy(&ns, dir, &args).success();
        node.shows_version(host, version);
    }
    // A rollback goes back to 1.0.0: the other direction, through `rollback`.
    ns.rails(dir, &["rollback", "--no-input", "--timeout", "180s"])
        .success();
    node.shows_version(host, "1.0.0");
    let loads = traffic.stop();
    let counts = super::real_node::count_loads(&loads);
    #[allow(clippy::print_stdout)]
    {
        println!("assets: 4 rollouts, {counts:?}");
    }
    let bad: Vec<_> = loads
        .iter()
        .filter(|l| l.code != 200 || l.assets.iter().any(|(_, c)| *c != 200))
        .take(5)
        .collect();
    assert!(
        bad.is_empty(),
        "{counts:?}; the first failed loads: {bad:#?}"
    );
    assert!(counts.pages > 100, "the load ran: {counts:?}");
    let versions: std::collections::BTreeSet<_> =
        loads.iter().filter_map(|l| l.version.as_deref()).collect();
    assert_eq!(
        versions.len(),
        2,
        "pages of both releases were loaded: {versions:?}"
    );

    // After the rollback, the assets of 2.0.0 still answer (a tab left open on it), and 1.0.0's.
    let v2_assets: Vec<String> = loads
        .iter()
        .find(|l| l.version.as_deref() == Some("2.0.0"))
        .map(|l| l.assets.iter().map(|(p, _)| p.clone()).collect())
        .unwrap();
    let v1_assets: Vec<String> = v1.assets.iter().map(|(p, _)| p.clone()).collect();
    assert_ne!(
        v1_assets, v2_assets,
        "each release has its own fingerprints"
    );
    for _ in 0..5 {
        let both = [v1_assets.clone(), v2_assets.clone()].concat();
        let codes = node.statuses(host, &both);
        assert!(codes.iter().all(|c| *c == 200), "{both:?}: {codes:?}");
    }
}
