//! The deploy lock is a lock: a deploy that was stopped until its lease expired and another
//! deploy took it writes nothing more, says who holds the lease, and leaves that lease alone.

use crate::deploy::{rails71_app, web_image};
use crate::support::{TestNs, finish, signal, spawn, wait_for};

fn lease_holder(ns: &TestNs) -> String {
    ns.jsonpath("lease", "imagestorage-deploy", "{.spec.holderIdentity}")
}

#[test]
fn a_deploy_whose_lease_expired_and_was_taken_writes_nothing_more() {
    let ns = TestNs::restricted("lease-race");
    let app = rails71_app(&ns, "2");
    let deploy = |tag: &str| {
        spawn(
            &ns,
            app.path(),
            &["deploy", "--no-input", "--timeout", "120s", "--tag", tag],
        )
    };
    // A takes the lease, then stops (a laptop lid closed, a paused CI runner).
    let (a, a_err) = deploy("a-1");
    let a_seen = wait_for(&a_err, "validating");
    signal(a.id(), "-STOP");
    let a_holder = lease_holder(&ns);
    assert!(
        a_holder.contains("(run "),
        "the holder names a run: {a_holder}"
    );
    assert!(a_holder.contains('@'), "and user@host: {a_holder}");
    // Its lease runs out while it is stopped (forced here rather than waited for).
    ns.kubectl(&[
        "patch",
        "lease",
        "imagestorage-deploy",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"renewTime":"2000-01-01T00:00:00.000000Z","leaseDurationSeconds":1}}"#,
    ])
    .success();
    // B takes the expired lease; A wakes up while B holds it (B waits meanwhile, so that its
    // lease is certainly still there when A looks).
    let (b, b_err) = deploy("b-2");
    let b_seen = wait_for(&b_err, "validating");
    signal(b.id(), "-STOP");
    let b_holder = lease_holder(&ns);
    assert_ne!(b_holder, a_holder, "B holds the lease now");
    signal(a.id(), "-CONT");
    let a = finish(a, a_err, a_seen);
    signal(b.id(), "-CONT");
    let b = finish(b, b_err, b_seen);
    assert_eq!(b.code, 0, "B deploys:\n{}", b.stderr);
    assert_eq!(a.code, 1, "A stops:\n{}", a.stderr);
    a.stderr_has(&format!("taken over by {b_holder}"));
    assert_eq!(
        web_image(&ns, "imagestorage-web"),
        "docker-registry.example.dev/imagestorage:b-2",
        "only B's release was applied"
    );
    let releases: serde_json::Value = serde_json::from_str(
        &ns.rails(app.path(), &["releases", "-o", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    let images: Vec<&str> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        images,
        ["docker-registry.example.dev/imagestorage:b-2"],
        "exactly one release recorded"
    );
    let leases = ns
        .kubectl(&["get", "leases", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(leases.trim(), "", "no lease is left behind");
}
