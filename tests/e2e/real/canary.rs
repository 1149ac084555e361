//! `deploy --canary 20` on the real node, through the real ingress (HAProxy Ingress): the new
//! release gets about a fifth of the requests beside the current one, a client keeping its
//! cookie stays on one release, `canary status` shows both with their shares, `promote` moves
//! every request to the new release and removes the canary, and `abort` leaves none on it.
//! `--bake --promote` aborts a canary whose page raises (exit 3) and promotes one that holds.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{RealNode, blog_app, deploy, version_on};
use crate::support::TestNs;

/// `n` requests to `https://HOST/` in one curl run (one connection, each request balanced on
/// its own), with the cookie jar `jar` kept between them when given: the version each page
/// shows (`"-"` for an answer other than 200).
fn versions(node: &RealNode, host: &str, n: usize, jar: Option<&Path>) -> Vec<String> {
    let port = node.get("INGRESS_HTTPS_PORT");
    let url = format!("https://{host}:{port}/");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "--max-time",
        "120",
        "--cacert",
        node.get("REGISTRY_CA"),
        "--resolve",
        &format!("{host}:{port}:127.0.0.1"),
        "-w",
        "\n@@%{http_code}@@\n",
    ]);
    if let Some(jar) = jar {
        let jar = jar.to_str().unwrap();
        cmd.args(["-b", jar, "-c", jar]);
    }
    for _ in 0..n {
        cmd.arg(&url);
    }
    let out = cmd.output().expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut seen = Vec::new();
    let mut rest: &str = &text;
    while let Some(at) = rest.find("\n@@") {
        let body = &rest[..at];
        let after = &rest[at + 3..];
        let end = after.find("@@").unwrap_or(after.len());
        let code = &after[..end];
        seen.push(if code == "200" {
            version_on(body).unwrap_or_else(|| "?".into())
        } else {
            "-".into()
        });
        rest = after.get(end + 3..).unwrap_or("");
    }
    assert_eq!(
        seen.len(),
        n,
        "curl answered {} of {n}: {text:.400}",
        seen.len()
    );
    seen
}

/// The version label of the web Deployment's pods (its image runs pinned by digest).
fn web_version(ns: &TestNs) -> String {
    ns.jsonpath(
        "deployment",
        "blog-web",
        r"{.spec.template.metadata.labels.app\.kubernetes\.io/version}",
    )
}

fn count(seen: &[String], version: &str) -> usize {
    seen.iter().filter(|v| *v == version).count()
}

#[test]
fn a_canary_takes_its_share_sticks_per_browser_and_is_promoted_or_aborted() {
    let (node, _alone) = RealNode::take();
    let host = &format!("canary-{}.example.com", std::process::id());
    let ns = TestNs::restricted("real-canary");
    let url = node.database("canary");
    let app = blog_app(node, &ns, host, "1", &url);
    let dir = app.path();
    deploy(&ns, dir, &[]).success();
    node.shows_version(host, "1.0.0");

    // 2.0.0 as a canary at 20%: the web Deployment keeps running 1.0.0.
    let run = deploy(&ns, dir, &["--tag", "2.0.0", "--canary", "20"]).success();
    run.stderr_has("as a canary taking about 20% of the requests");
    run.stdout_has("canary");
    assert_eq!(
        web_version(&ns),
        "1.0.0",
        "the web Deployment is left as it was"
    );
    // The ingress controller picks the new pods and weights up a moment after they are Ready.
    RealNode::eventually(Duration::from_secs(30), "the canary gets requests", || {
        count(&versions(node, host, 20, None), "2.0.0") > 0
    });

    let seen = versions(node, host, 500, None);
    let (old, new) = (count(&seen, "1.0.0"), count(&seen, "2.0.0"));
    let share = 100.0 * new as f64 / seen.len() as f64;
    // The figure BENCHMARKS.md quotes (seen with `--nocapture`).
    #[allow(clippy::print_stdout, reason = "the measured share, for BENCHMARKS.md")]
    {
        println!(
            "canary 20%: of 500 requests without a cookie, {new} reached 2.0.0 ({share:.1}%), {old} 1.0.0"
        );
    }
    assert_eq!(
        old + new,
        500,
        "every request answered by one release: {seen:?}"
    );
    assert!(
        (13.0..=27.0).contains(&share),
        "{share:.1}% reached the canary, not 20% ± 7%"
    );

    // A browser keeping its cookie sees one release; fresh browsers land on both.
    let jars = tempfile::tempdir().unwrap();
    let mut landed = Vec::new();
    for i in 0..8 {
        let jar = jars.path().join(format!("browser-{i}"));
        let seen = versions(node, host, 30, Some(&jar));
        let first = seen[0].clone();
        assert!(
            seen.iter().all(|v| *v == first),
            "browser {i} with its cookie saw {seen:?}"
        );
        landed.push(first);
    }
    #[allow(
        clippy::print_stdout,
        reason = "the measured stickiness, for BENCHMARKS.md"
    )]
    {
        println!(
            "canary 20%: 8 browsers keeping their cookie, 30 requests each, each saw one release: {landed:?}"
        );
    }

    // Both releases and their shares.
    let status = ns
        .rails(dir, &["canary", "status", "-o", "json"])
        .success()
        .json();
    let releases = status["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 2, "{status}");
    assert_eq!(releases[0]["track"], "stable", "{status}");
    assert_eq!(releases[0]["version"], "1.0.0", "{status}");
    assert_eq!(releases[0]["share"], 80.0, "{status}");
    assert_eq!(releases[1]["track"], "canary", "{status}");
    assert_eq!(releases[1]["version"], "2.0.0", "{status}");
    assert_eq!(releases[1]["share"], 20.0, "{status}");
    assert_eq!(status["routing"], "haproxy-weights", "{status}");
    assert_eq!(status["sticky"], true, "{status}");
    let text = ns.rails(dir, &["canary", "status"]).success();
    text.stdout_has("80%");
    text.stdout_has("20%");
    text.stdout_has("sticky per browser");
    let overall = ns.rails(dir, &["status"]).success();
    overall.stdout_has("Canary of blog");
    // A plain deploy would replace web under the canary: refused.
    let refused = deploy(&ns, dir, &["--tag", "2.0.0"]).code(1);
    refused.stderr_has("a canary of `blog` is running");
    refused.stderr_has("kubectl rails canary promote");

    // Promote: every request on 2.0.0, the canary gone.
    ns.rails(dir, &["canary", "promote", "--timeout", "180s"])
        .success();
    ns.kubectl(&["get", "deployment", "blog-web-canary"])
        .code(1);
    node.shows_version(host, "2.0.0");
    RealNode::eventually(Duration::from_secs(20), "only 2.0.0 answers", || {
        count(&versions(node, host, 20, None), "2.0.0") == 20
    });
    let seen = versions(node, host, 100, None);
    assert_eq!(count(&seen, "2.0.0"), 100, "after promote: {seen:?}");

    // A new canary, aborted: nothing reaches it, its pods are gone, web is untouched.
    deploy(&ns, dir, &["--tag", "1.0.0", "--canary", "20"]).success();
    RealNode::eventually(
        Duration::from_secs(30),
        "the new canary gets requests",
        || count(&versions(node, host, 20, None), "1.0.0") > 0,
    );
    ns.rails(dir, &["canary", "abort"]).success();
    assert_eq!(
        ns.pod_names("kubectl-rails.dev/track=canary"),
        "",
        "the canary's pods are gone"
    );
    let seen = versions(node, host, 100, None);
    assert_eq!(count(&seen, "2.0.0"), 100, "after abort: {seen:?}");
    assert_eq!(
        web_version(&ns),
        "2.0.0",
        "abort leaves the web Deployment as it was"
    );
    ns.rails(dir, &["canary", "status"])
        .success()
        .stdout_has("no canary of `blog` is running");

    // `--bake --promote`: a canary whose page raises fails its bake, is aborted, exit 3; web
    // keeps 2.0.0. A healthy one holds and is promoted.
    let traffic = node.request_loop(host, 20);
    let run = deploy(
        &ns,
        dir,
        &[
            "--tag",
            "7.0.0-broken-page",
            "--canary",
            "50",
            "--bake",
            "60s",
            "--promote",
        ],
    )
    .code(3);
    run.stderr_has("the canary failed its bake");
    run.stderr_has("was aborted; the current release serves every request");
    assert_eq!(
        web_version(&ns),
        "2.0.0",
        "a failed canary is never promoted"
    );
    assert_eq!(ns.pod_names("kubectl-rails.dev/track=canary"), "");
    let run = deploy(
        &ns,
        dir,
        &[
            "--tag",
            "1.0.0",
            "--canary",
            "50",
            "--bake",
            "10s",
            "--promote",
        ],
    )
    .success();
    run.stderr_has("the canary held for 10s");
    assert_eq!(web_version(&ns), "1.0.0", "a canary that holds is promoted");
    ns.kubectl(&["get", "deployment", "blog-web-canary"])
        .code(1);
    assert!(
        traffic.settle_on("1.0.0", 20, Duration::from_secs(20)),
        "the promoted release serves"
    );
    let (answers, _) = traffic.stop();
    let failed = answers.iter().filter(|(code, _)| *code != 200).count();
    #[allow(clippy::print_stdout, reason = "the measured cost, for BENCHMARKS.md")]
    {
        println!(
            "canary 50% of a broken page, --bake 60s --promote: {failed} of {} requests failed until it was aborted",
            answers.len()
        );
    }

    // The history: the canaries and their ends are on the releases.
    let releases = ns.rails(dir, &["releases", "-o", "json"]).success().json();
    let all = releases.as_array().unwrap();
    let v2 = all
        .iter()
        .find(|r| r["revision"] == 2)
        .expect("v2 recorded");
    assert!(
        v2["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("promoted canary")),
        "{v2}"
    );
    let events: Vec<String> = all
        .iter()
        .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    for wanted in ["started at 20%", "promoted from the canary", "aborted by"] {
        assert!(
            events.iter().any(|e| e.contains(wanted)),
            "no event with `{wanted}`: {events:?}"
        );
    }
}
