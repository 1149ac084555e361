//! The private registry on the real node: a pull with the wrong password is refused with the
//! registry's own 401 and the deploy says so at once; with `secrets registry` it goes through.

use std::time::Instant;

use super::{RealNode, blog_app, deploy, registry_login};
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
