//! The Gateway API on the real node: with `ingress.gateway`, the app gets an HTTPRoute instead
//! of an Ingress, attached to the test cluster's Gateway `kubectl-rails-ingress/web`, which
//! HAProxy Ingress serves on the same ports as its Ingresses; the page answers through it,
//! maintenance turns it, and `status` and `doctor` read it.
//!
//! HAProxy Ingress v0.16 (the newest the module proxy serves) writes no status on Gateways or
//! routes, so the deploy says the Gateway did not report. Where the test needs a report, it writes
//! the route's status itself, through the status subresource as a Gateway controller does, and
//! says so: what is proven there is how the plugin reads a real API server's answer.

use std::time::Duration;

use super::maintenance::{fetch, within};
use super::{RealNode, blog_app, deploy, version_on};
use crate::support::TestNs;

/// The Gateway `tests/cluster/ingress` makes.
const GATEWAY: &str = "kubectl-rails-ingress/web";

/// The spec of `dir` with its hosts routed through [`GATEWAY`]: TLS is the listener's, so the
/// Ingress-only keys go. Returns the spec as it was.
fn route_through_gateway(dir: &std::path::Path) -> String {
    let path = dir.join("config/kubernetes.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = Vec::new();
    let mut in_ingress = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_ingress = line == "ingress:";
        }
        if in_ingress && (line.starts_with("  tls:") || line.starts_with("  issuer:")) {
            continue;
        }
        out.push(line.to_string());
        if line == "ingress:" {
            out.push(format!("  gateway: {GATEWAY}"));
        }
    }
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    text
}

/// Writes the route's status for the Gateway, as its controller would: `accepted` is the
/// `Accepted` condition's status, `ResolvedRefs` is true.
fn report(ns: &TestNs, accepted: &str, reason: &str, message: &str) {
    let generation = ns.jsonpath("httproute", "blog", "{.metadata.generation}");
    let generation: i64 = generation.parse().unwrap();
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        serde_json::json!({
            "type": kind, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": "2026-12-06T00:00:00Z",
        })
    };
    let patch = serde_json::json!({"status": {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                      "namespace": "kubectl-rails-ingress", "name": "web"},
        "controllerName": "kubectl-rails.dev/e2e-stand-in",
        "conditions": [
            condition("Accepted", accepted, reason, message),
            condition("ResolvedRefs", "True", "ResolvedRefs", "every backend found"),
        ],
    }]}});
    ns.kubectl(&[
        "patch",
        "httproute",
        "blog",
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ])
    .success();
}

#[test]
fn the_app_answers_through_an_http_route_of_the_gateway() {
    let (node, _alone) = RealNode::take();
    let host = &format!("gateway-{}.example.com", std::process::id());
    let ns = TestNs::restricted("real-gateway");
    let url = node.database("gateway");
    let app = blog_app(node, &ns, host, "1", &url);
    let dir = app.path();
    let with_ingress = route_through_gateway(dir);

    // The deploy routes through the Gateway: an HTTPRoute, no Ingress; HAProxy Ingress v0.16
    // says nothing of the route, and the deploy says so rather than wait for ever.
    let run = deploy(&ns, dir, &[]).success();
    run.stderr_has(&format!(
        "the Gateway `{GATEWAY}` did not report on HTTPRoute `blog` within 10s"
    ));
    assert_eq!(
        ns.kubectl(&["get", "ingress", "-o", "name"])
            .success()
            .stdout
            .trim(),
        "",
        "no Ingress behind a Gateway"
    );
    assert_eq!(
        ns.jsonpath("httproute", "blog", "{.spec.parentRefs[0].name}"),
        "web"
    );
    let (code, page) = node.first_page(host);
    assert_eq!(code, 200, "{page}");
    assert_eq!(version_on(&page).as_deref(), Some("1.0.0"));

    // `status` gives the URL (the Gateway's HTTPS listener takes *.example.com).
    ns.rails(dir, &["status"]).success().stdout_has(&format!(
        "Route: https://{host} through Gateway `{GATEWAY}` (HTTPRoute not reported)"
    ));
    // `doctor` finds the API, the Gateway's listener for the host, and says what it could not
    // check: HAProxy Ingress never reports the class or the Gateway.
    let doctor = ns.rails(dir, &["doctor", "-o", "json"]).json();
    let finding = |check: &str| -> serde_json::Value {
        doctor
            .as_array()
            .or_else(|| doctor["findings"].as_array())
            .unwrap()
            .iter()
            .find(|f| f["check"] == check)
            .unwrap_or_else(|| panic!("no `{check}` finding in {doctor}"))
            .clone()
    };
    assert_eq!(finding("Gateway API")["outcome"], "ok");
    let listener = finding(&format!("listener for {host}"));
    assert_eq!(listener["outcome"], "ok", "{listener}");
    assert!(
        listener["detail"]
            .as_str()
            .unwrap()
            .contains("TLS by its HTTPS listener"),
        "{listener}"
    );
    assert_eq!(finding("GatewayClass")["outcome"], "not-checked");

    // Maintenance turns the route: 503 within 2 s, then the app again within 2 s.
    ns.rails(dir, &["maintenance", "on"]).success();
    let took = within("503 through the route", || fetch(node, host).0 == 503);
    assert!(took < Duration::from_secs(2), "503 came after {took:?}");
    assert_eq!(
        ns.jsonpath("httproute", "blog", "{.spec.rules[-1].backendRefs[0].name}"),
        "blog-maintenance"
    );
    ns.rails(dir, &["maintenance", "off"]).success();
    let took = within("200 through the route", || fetch(node, host).0 == 200);
    assert!(took < Duration::from_secs(2), "200 came after {took:?}");

    // A Gateway that refuses the route ends the deploy with its reason. The test stands in for
    // the controller HAProxy Ingress v0.16 is not: it writes the refusal. The release's pods
    // serve by then, so it is recorded as deployed, with the refusal.
    report(
        &ns,
        "False",
        "NotAllowedByListeners",
        "no listener lets routes of this namespace attach",
    );
    let run = deploy(&ns, dir, &["--tag", "2.0.0"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    run.stderr_has(
        "the Gateway `kubectl-rails-ingress/web` did not accept HTTPRoute `blog`: `Accepted` is false (NotAllowedByListeners: no listener lets routes of this namespace attach); release v2 is deployed (its pods run)",
    );
    let releases = ns.rails(dir, &["releases", "-o", "json"]).success().json();
    let newest = releases.as_array().unwrap().last().unwrap().clone();
    assert_eq!(newest["revision"], 2, "{releases}");
    assert_eq!(newest["status"], "deployed", "{releases}");
    assert!(
        newest["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("route not accepted")),
        "{newest}"
    );
    ns.rails(dir, &["status"])
        .success()
        .stdout_has("(HTTPRoute refused (Accepted false: NotAllowedByListeners))");
    // Deploying again with nothing changed asks the Gateway again: still refused.
    let again = deploy(&ns, dir, &["--tag", "2.0.0"]);
    assert_ne!(again.code, 0, "{}", again.stderr);
    again.stderr_has("did not accept HTTPRoute `blog`");

    // Once the Gateway accepts it, that same deploy ends as soon as it reads so.
    report(&ns, "True", "Accepted", "attached to listener http");
    let outcome = deploy(&ns, dir, &["--tag", "2.0.0", "-o", "json"])
        .success()
        .json();
    assert_eq!(outcome["changed"], false, "{outcome}");
    assert_eq!(outcome["route"]["state"], "accepted", "{outcome}");
    assert_eq!(outcome["route"]["gateway"], GATEWAY, "{outcome}");
    node.shows_version(host, "2.0.0");

    // Back to an Ingress (with its TLS): the deploy prunes the HTTPRoute the releases before
    // made, and the page answers through the Ingress.
    std::fs::write(dir.join("config/kubernetes.yml"), &with_ingress).unwrap();
    let run = deploy(&ns, dir, &["--tag", "1.0.0"]).success();
    run.stderr_has("HTTPRoute `blog` pruned: the spec no longer renders it");
    ns.kubectl(&["get", "httproute", "blog"]).code(1);
    ns.kubectl(&["get", "ingress", "blog"]).success();
    node.shows_version(host, "1.0.0");
}
