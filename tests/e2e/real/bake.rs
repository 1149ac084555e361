//! `deploy --bake` on the real node, under load through the real ingress: a healthy release
//! holds its bake without losing a request, and a release that boots and passes `/up` but
//! answers 500 on its main page is rolled back before its bake ends. Without a bake, the same
//! release deploys, and `kubectl rollout status` calls it a success.

use std::time::{Duration, Instant};

use super::{RealNode, blog_app, deploy, version_on};
use crate::support::TestNs;

#[test]
fn a_release_that_fails_its_requests_is_rolled_back_during_its_bake_and_a_healthy_one_holds() {
    let (node, _alone) = RealNode::take();
    let host = &format!("bake-{}.example.com", std::process::id());
    let ns = TestNs::restricted("real-bake");
    let url = node.database("bake");
    let app = blog_app(node, &ns, host, "1", &url);
    let dir = app.path();
    deploy(&ns, dir, &[]).success();
    assert_eq!(
        version_on(&node.first_page(host).1).as_deref(),
        Some("1.0.0")
    );

    // A healthy release holds its bake, and the load loses nothing.
    let traffic = node.request_loop(host, 20);
    let run = deploy(&ns, dir, &["--tag", "2.0.0", "--bake", "30s"]).success();
    run.stderr_has("release v2 held for 30s");
    assert!(
        traffic.settle_on("2.0.0", 20, Duration::from_secs(20)),
        "the healthy release serves"
    );
    let (answers, _) = traffic.stop();
    let lost: Vec<_> = answers.iter().filter(|(code, _)| *code != 200).collect();
    assert!(
        lost.is_empty(),
        "{} of {} requests failed during a healthy bake: {lost:?}",
        lost.len(),
        answers.len()
    );

    // A release whose main page raises: Ready, and rolled back by its bake.
    let traffic = node.request_loop(host, 20);
    let started = Instant::now();
    let run = deploy(&ns, dir, &["--tag", "7.0.0-broken-page", "--bake", "120s"]).code(3);
    let took = started.elapsed();
    run.stderr_has("release v3 failed its bake");
    run.stderr_has("requests answered 5xx");
    run.stderr_has("rolled back to v2");
    assert!(
        run.stderr.contains("this page fails on purpose"),
        "the release's own error is shown:\n{}",
        run.stderr
    );
    // Well before the bake's 120 s: the rollout, a few seconds of 500s, the rollback.
    assert!(
        took < Duration::from_secs(100),
        "the deploy took {took:?} with a 120 s bake"
    );
    assert!(
        traffic.settle_on("2.0.0", 20, Duration::from_secs(20)),
        "the release before serves again"
    );
    let (answers, _) = traffic.stop();
    let failed = answers.iter().filter(|(code, _)| *code != 200).count();
    // The figure BENCHMARKS.md quotes (seen with `--nocapture`).
    #[allow(clippy::print_stdout)]
    {
        println!(
            "bake: rolled back after {took:?}; {failed} of {} requests failed",
            answers.len()
        );
    }
    // The 500s the load saw before the rollback: bounded by the detection and the rollback,
    // not by the bake's length (20 req/s for 120 s would be 2400).
    assert!(
        failed > 0 && failed < 600,
        "{failed} of {} requests failed",
        answers.len()
    );

    // The history: v3 failed with why, v4 is the automatic rollback to v2.
    let releases = ns.rails(dir, &["releases", "-o", "json"]).success().json();
    let by_revision = |r: u64| {
        releases
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["revision"] == r)
            .cloned()
            .unwrap_or_else(|| panic!("no v{r} in {releases}"))
    };
    let v3 = by_revision(3);
    assert_eq!(v3["status"], "failed", "{v3}");
    assert!(
        v3["events"][0].as_str().is_some_and(
            |e| e.starts_with("bake failed:") && e.ends_with("rolled back automatically to v2")
        ),
        "{v3}"
    );
    let v4 = by_revision(4);
    assert_eq!(v4["status"], "deployed", "{v4}");
    assert!(
        v4["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("automatic rollback of v3 to v2")),
        "{v4}"
    );

    // What readiness alone says of that release: a deploy without a bake succeeds, and
    // `kubectl rollout status` (what `helm --wait` waits on too) exits 0, while the page fails.
    deploy(&ns, dir, &["--tag", "7.0.0-broken-page"]).success();
    ns.kubectl(&[
        "rollout",
        "status",
        "deployment/blog-web",
        "--timeout",
        "60s",
    ])
    .success()
    .stdout_has("successfully rolled out");
    RealNode::eventually(Duration::from_secs(20), "the broken page serves", || {
        node.get_page(host, "/").0 == 500
    });
}
