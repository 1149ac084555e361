//! The private registry on the real node: a pull with the wrong password is refused with the
//! registry's own 401 and the deploy says so at once; with `secrets registry` it goes through.

use std::time::Instant;

use std::time::Duration;

use super::{RealNode, blog_app, deploy, registry_login, version_on};
use crate::support::{TestNs, leaks};

#[test]
fn a_wrong_registry_password_fails_fast_with_the_401_and_the_right_one_deploys() {
    let (node, _alone) = RealNode::take();
    let ns = TestNs::restricted("real-registry");
    let host = &format!("registry-{}.example.com", std::process::id());
    let url = node.database("registry");
    let app = blog_app(node, &ns, host, "1", &url);
    let dir = app.path();

    let image = node.fresh_tag("1.0.0", &format!("pull-{}", std::process::id()));
    let wrong = "Nt7-Wrong-Qx5pz";
    leaks::register(wrong);
    registry_login(node, &ns, dir, wrong).success();
    let started = Instant::now();
    let run = deploy(&ns, dir, &["--image", &image]).code(1);
    assert!(
        started.elapsed().as_secs() < 60,
        "a refused pull is called at once, not at the timeout: {:?}",
        started.elapsed()
    );
    run.stderr_has("401 Unauthorized");
    run.stderr_has("kubectl rails secrets registry");

    registry_login(node, &ns, dir, node.get("REGISTRY_PASSWORD")).success();
    let run = deploy(&ns, dir, &["--image", &image]).success();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("web ") && l.contains("1/1")),
        "{}",
        run.stdout
    );
    assert_eq!(node.first_page(host).0, 200);
}

/// One digest per release (#34): the deploy resolves the tag to its digest, pods run that
/// digest even after the tag is pushed again with other content, a new deploy of the tag takes
/// the new digest, and a rollback brings the first one back.
#[test]
fn a_tag_pushed_again_changes_nothing_until_the_next_deploy() {
    let (node, _alone) = RealNode::take();
    let ns = TestNs::restricted("real-pin");
    let host = &format!("pin-{}.example.com", std::process::id());
    let url = node.database("pin");
    let app = blog_app(node, &ns, host, "1", &url);
    let dir = app.path();
    let tag = format!("pin-{}", std::process::id());
    let image = node.fresh_tag("1.0.0", &tag);

    let run = deploy(&ns, dir, &["--image", &image]).success();
    run.stderr_has("this release runs that digest");
    let pinned = ns.jsonpath(
        "deployment",
        "blog-web",
        "{.spec.template.spec.containers[0].image}",
    );
    let (repository, digest) = pinned.split_once('@').expect("an image by digest");
    assert_eq!(repository, image.rsplit_once(':').unwrap().0);
    assert!(digest.starts_with("sha256:"), "{pinned}");
    let tag_kept = ns.jsonpath(
        "deployment",
        "blog-web",
        "{.spec.template.metadata.annotations.kubectl-rails\\.dev/image-tag}",
    );
    assert_eq!(tag_kept, tag);
    node.shows_version(host, "1.0.0");

    // The tag now names 2.0.0. A pod started now (its predecessor deleted) still runs 1.0.0.
    node.fresh_tag("2.0.0", &tag);
    ns.kubectl(&[
        "delete",
        "pod",
        "-l",
        "app.kubernetes.io/component=web",
        "--wait=false",
    ])
    .success();
    RealNode::eventually(Duration::from_secs(120), "a new web pod is Ready", || {
        let ready = ns.pods(
            "app.kubernetes.io/component=web",
            "{range .items[?(@.metadata.deletionTimestamp)]}x{end}{range .items[*]}{.status.containerStatuses[0].ready} {end}",
        );
        !ready.contains('x') && ready.trim() == "true"
    });
    let image_id = ns.pods(
        "app.kubernetes.io/component=web",
        "{.items[0].status.containerStatuses[0].imageID}",
    );
    assert!(image_id.ends_with(digest), "{image_id} runs {digest}");
    node.shows_version(host, "1.0.0");

    // `status` and `releases` say the tag and the short digest.
    let short = &digest["sha256:".len().."sha256:".len() + 12];
    let shown = format!("{image} ({short})");
    ns.rails(dir, &["status"]).success().stdout_has(&shown);
    ns.rails(dir, &["releases"]).success().stdout_has(&shown);

    // The next deploy of the same tag resolves it again: release v2 runs 2.0.0.
    let run = deploy(&ns, dir, &["--image", &image]).success();
    assert!(
        run.stdout.starts_with("Deployed blog as release v2"),
        "{}",
        run.stdout
    );
    let second = ns.jsonpath(
        "deployment",
        "blog-web",
        "{.spec.template.spec.containers[0].image}",
    );
    assert_ne!(second, pinned);
    node.shows_version(host, "2.0.0");
    let page = node.get_page(host, "/").1;
    assert_eq!(version_on(&page).as_deref(), Some("2.0.0"));

    // A rollback restores the digest, not the tag (which names 2.0.0 now).
    ns.rails(dir, &["rollback", "--timeout", "180s"]).success();
    let restored = ns.jsonpath(
        "deployment",
        "blog-web",
        "{.spec.template.spec.containers[0].image}",
    );
    assert_eq!(restored, pinned);
    node.shows_version(host, "1.0.0");
}
