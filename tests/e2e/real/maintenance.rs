//! Maintenance mode on the real node: the app's hosts answer 503 with the app's page and
//! `Retry-After` through the real ingress controller while the app's pods keep running, a
//! deploy keeps the page, and `off` brings the app back.

use std::process::Command;
use std::time::{Duration, Instant};

use super::{RealNode, blog_app, deploy, version_on};
use crate::support::TestNs;

/// `GET https://HOST/` through the ingress: status, headers (lower-cased) and body.
pub(super) fn fetch(node: &RealNode, host: &str) -> (u16, String, String) {
    let port = node.get("INGRESS_HTTPS_PORT");
    let out = Command::new("curl")
        .args([
            "-s",
            "-i",
            "--max-time",
            "10",
            "--cacert",
            node.get("REGISTRY_CA"),
            "--resolve",
            &format!("{host}:{port}:127.0.0.1"),
            &format!("https://{host}:{port}/"),
        ])
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_lowercase(), body.to_string())
}

/// How long until `check` holds, polling every 100 ms for at most 20 s.
pub(super) fn within(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what}: not within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

#[test]
fn maintenance_answers_503_through_the_ingress_keeps_the_pods_and_survives_a_deploy() {
    let (node, _alone) = RealNode::take();
    let host = &format!("maintenance-{}.example.com", std::process::id());
    let ns = TestNs::restricted("real-maintenance");
    let url = node.database("maintenance");
    let app = blog_app(node, &ns, host, "1", &url);
    let dir = app.path();
    std::fs::create_dir_all(dir.join("public")).unwrap();
    std::fs::write(
        dir.join("public/503.html"),
        "<!DOCTYPE html><title>Resting</title><h1>The blog is resting</h1>\n",
    )
    .unwrap();
    deploy(&ns, dir, &[]).success();
    assert_eq!(
        version_on(&node.first_page(host).1).as_deref(),
        Some("1.0.0")
    );

    // On: the app's own page, 503 with Retry-After, within 2 s of the command's end.
    let run = ns.rails(dir, &["maintenance", "on"]).success();
    run.stderr_has("maintenance is on since");
    let mut last = (0, String::new(), String::new());
    let took = within("503 after `maintenance on`", || {
        last = fetch(node, host);
        last.0 == 503
    });
    assert!(took < Duration::from_secs(2), "503 came after {took:?}");
    let (_, headers, body) = &last;
    assert!(body.contains("The blog is resting"), "{body}");
    assert!(headers.contains("retry-after: 300"), "{headers}");

    // The app's pods keep running: `exec` reaches web.
    ns.rails(dir, &["exec", "--", "echo", "still-here"])
        .success()
        .stdout_has("still-here");
    ns.rails(dir, &["status"])
        .success()
        .stdout_has("Maintenance: on since");

    // A deploy of a new release keeps the page: no request gets the app meanwhile.
    let traffic = node.request_loop(host, 10);
    let run = deploy(&ns, dir, &["--tag", "2.0.0"]).success();
    run.stderr_has("maintenance is on");
    std::thread::sleep(Duration::from_secs(2));
    let (answers, _) = traffic.stop();
    let leaked: Vec<_> = answers.iter().filter(|(code, _)| *code != 503).collect();
    assert!(
        leaked.is_empty(),
        "{} of {} answers were not the maintenance page: {leaked:?}",
        leaked.len(),
        answers.len()
    );
    let version = ns.jsonpath(
        "deployment",
        "blog-web",
        "{.spec.template.metadata.labels.app\\.kubernetes\\.io/version}",
    );
    assert_eq!(
        version, "2.0.0",
        "the deploy rolled web out behind the page"
    );

    // Off: the new release answers within 2 s, and the page's objects are gone.
    ns.rails(dir, &["maintenance", "off"])
        .success()
        .stderr_has("maintenance is off");
    let took = within("200 after `maintenance off`", || {
        let (code, _, body) = fetch(node, host);
        code == 200 && version_on(&body).as_deref() == Some("2.0.0")
    });
    assert!(took < Duration::from_secs(2), "200 came after {took:?}");
    for kind in ["deployment", "service", "configmap"] {
        ns.kubectl(&["get", kind, "blog-maintenance"]).code(1);
    }

    // The history says when maintenance was on, and which release deployed during it.
    let releases = ns.rails(dir, &["releases", "-o", "json"]).success().json();
    let events: Vec<String> = releases
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    for wanted in [
        "maintenance on by",
        "deployed during maintenance",
        "maintenance off by",
    ] {
        assert!(
            events.iter().any(|e| e.starts_with(wanted)),
            "`{wanted}` in {events:?}"
        );
    }
}
